#!/usr/bin/env python3
"""A scripted model server for the real-CLI tests: it speaks just enough of each model API for a
coding-agent CLI to run one scripted session against it.

    python3 model_server.py --script script.json --port-file PORT --log requests.jsonl

It listens on 127.0.0.1 (a free port, written to --port-file once it listens), and answers every
model request the same way, whatever API it arrives on:

  1. a request whose conversation does not yet hold a tool result gets a tool call per scripted
     file, using the write tool the CLI declared in the request (its own name and parameter
     names: `Write{file_path,content}`, `write{path,content}`, `write_file{file_path,content}`,
     Codex's `apply_patch`, ...);
  2. a request holding a tool result gets the scripted final text message;
  3. a request that declares no tools (titles, summaries, checks) gets the final text too.

Every response carries the scripted token usage. APIs, each over its streaming protocol
(and as plain JSON when the request does not ask for a stream):

  POST .../messages                      Anthropic Messages (SSE)             Claude Code
  POST .../responses                     OpenAI Responses (SSE)               Codex
  POST .../chat/completions              OpenAI chat completions (SSE)        Pi, OpenCode
  POST .../models/M:streamGenerateContent, :generateContent   Gemini API     Gemini CLI

The script (JSON):

  {"files": [{"path": "app/feature.py", "content": "..."}],
   "final": "Added app/feature.py.",
   "usage": {"input_tokens": 1000, "output_tokens": 100},   # per response
   "delay_s": 0,          # wait before every model response (a wall-clock kill test)
   "status": 200,         # another status answers every model request with an API error
   "error_message": "...",
   "require_key": "sk-…"} # a request without this key (x-api-key, x-goog-api-key, a bearer
                          # token or ?key=) gets 401

Every request is appended to --log as one JSON line: method, path, the request body and what
was answered. The server exits when its stdin closes (the test that started it ended) or after
--lifetime seconds, whichever comes first.
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTER = [0]


def next_id(prefix):
    with LOCK:
        COUNTER[0] += 1
        return "%s_%04d" % (prefix, COUNTER[0])


# ---------------------------------------------------------------------------------------------
# Finding the write tool a CLI declares, and the arguments it takes.

PATH_KEYS = ("file_path", "filePath", "path", "absolute_path", "filename")


def schema_props(schema):
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def write_call(tools, files):
    """(tool name, [arguments per file]) for the declared write tool, or None."""
    best = None
    for name, schema, kind in tools:
        props = schema_props(schema)
        lname = name.lower()
        if kind == "custom" and "patch" in lname or (lname == "apply_patch"):
            best = best or (name, "patch", kind)
            continue
        path_key = next((k for k in PATH_KEYS if k in props), None)
        if path_key and "content" in props and ("write" in lname or "create" in lname):
            return (name, [{path_key: f["path"], "content": f["content"]} for f in files], kind)
    if best is None:
        shell = shell_call(tools, files)
        if shell:
            return shell
    if best:
        name, _, kind = best
        patch = "*** Begin Patch\n"
        for f in files:
            patch += "*** Add File: %s\n" % f["path"]
            for line in f["content"].splitlines():
                patch += "+" + line + "\n"
        patch += "*** End Patch\n"
        if kind == "custom":
            return (name, [patch], kind)
        return (name, [{"input": patch}], kind)
    return None


def shell_script(files):
    """A POSIX shell command that writes `files` (base64, so no quoting can go wrong)."""
    import base64
    import shlex

    steps = []
    for f in files:
        data = base64.b64encode(f["content"].encode("utf-8")).decode("ascii")
        d = os.path.dirname(f["path"])
        if d:
            steps.append("mkdir -p %s" % shlex.quote(d))
        steps.append("printf %%s %s | base64 -d > %s" % (data, shlex.quote(f["path"])))
    return " && ".join(steps)


def shell_call(tools, files):
    """A CLI without a write tool (Codex with a model it has no metadata for): its shell tool."""
    for name, schema, kind in tools:
        props = schema_props(schema)
        if kind != "function":
            continue
        if "cmd" in props and isinstance(props["cmd"], dict) and props["cmd"].get("type") == "string":
            return (name, [{"cmd": shell_script(files)}], kind)
        if "command" in props and name in ("shell", "local_shell", "container.exec"):
            cmd = props["command"]
            if isinstance(cmd, dict) and cmd.get("type") == "array":
                return (name, [{"command": ["bash", "-lc", shell_script(files)]}], kind)
            return (name, [{"command": shell_script(files)}], kind)
    return None


def absolute(files, cwd):
    if not cwd:
        return files
    return [dict(f, path=os.path.join(cwd, f["path"])) for f in files]


def find_cwd(text):
    """The working directory a CLI tells its model about, if its prompt names one."""
    import re

    for pat in (
        r"[Ww]orking directory: ?(/[^\s<`'\"]+)",
        r"Current working directory: ?(/[^\s<`'\"]+)",
        r"<cwd>(/[^<]+)</cwd>",
        r"current working directory(?: is)?:? ?`?(/[^\s`'\"]+)",
        r"I'm currently working in the directory: ?(/[^\s<`'\"]+)",
    ):
        m = re.search(pat, text)
        if m:
            return m.group(1).rstrip(".,")
    return None


# ---------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted-model/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def record(self, body, answer):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items() if k.lower() in ("user-agent", "content-type")},
            "body": body,
            "answer": answer,
            "tools": len(body.get("tools") or []) if isinstance(body, dict) else 0,
            "at": time.time(),
        }
        with LOCK:
            with open(self.server.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding", "") == "gzip":
            import gzip

            raw = gzip.decompress(raw)
        elif self.headers.get("Content-Encoding", "") == "zstd":
            return None
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            return None

    def do_GET(self):
        path = self.path.split("?")[0]
        self.record(None, "models")
        if path.endswith("/models"):
            return self.send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}], "models": []})
        return self.send_json(404, {"error": {"message": "not found: " + path}})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.read_body()
        path = self.path.split("?")[0]
        script = self.server.script
        if path.endswith("/count_tokens"):
            self.record(body, "count_tokens")
            return self.send_json(200, {"input_tokens": 100})
        api = None
        if path.endswith("/messages"):
            api = "anthropic"
        elif path.endswith("/responses"):
            api = "responses"
        elif path.endswith("/chat/completions"):
            api = "chat"
        elif ":streamGenerateContent" in path or ":generateContent" in path:
            api = "gemini"
        elif ":countTokens" in path:
            self.record(body, "count_tokens")
            return self.send_json(200, {"totalTokens": 100})
        if api is None or not isinstance(body, dict):
            self.record(body, "unknown")
            return self.send_json(404, {"error": {"message": "the scripted model server does not serve " + path}})
        key = script.get("require_key")
        if key and not self.has_key(key):
            self.record(body, "error 401")
            return self.send_json(401, {"type": "error", "error": {"type": "authentication_error", "code": "invalid_api_key", "status": "UNAUTHENTICATED", "message": "Incorrect API key provided (scripted model server)"}})
        delay = float(script.get("delay_s") or 0)
        if delay:
            self.record(body, "delayed %gs" % delay)
            time.sleep(delay)
        status = int(script.get("status") or 200)
        if status != 200:
            self.record(body, "error %d" % status)
            msg = script.get("error_message") or "scripted error"
            return self.send_json(status, {"type": "error", "error": {"type": "api_error", "message": msg, "code": status, "status": "UNAVAILABLE"}})
        getattr(self, "serve_" + api)(body, path)

    # -- plumbing ---------------------------------------------------------------------------

    def has_key(self, key):
        from urllib.parse import parse_qs, urlparse

        given = [
            self.headers.get("x-api-key", ""),
            self.headers.get("x-goog-api-key", ""),
            self.headers.get("Authorization", "").replace("Bearer ", "", 1),
        ]
        given += parse_qs(urlparse(self.path).query).get("key", [])
        return key in given

    def send_json(self, status, obj):
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, obj, event=None):
        text = ""
        if event:
            text += "event: %s\n" % event
        text += "data: %s\n\n" % (obj if isinstance(obj, str) else json.dumps(obj))
        self.wfile.write(text.encode("utf-8"))
        self.wfile.flush()

    def plan(self, tools, has_result, prompt_text):
        """("tool", name, [args], kind) or ("text", final)."""
        script = self.server.script
        files = script.get("files") or []
        if has_result or not tools or not files:
            return ("text", script.get("final") or "Done.")
        call = write_call(tools, absolute(files, find_cwd(prompt_text)) if script.get("absolute") else files)
        if call is None:
            return ("text", script.get("final") or "Done.")
        return ("tool",) + call

    def usage(self):
        u = self.server.script.get("usage") or {}
        return int(u.get("input_tokens", 1000)), int(u.get("output_tokens", 100))

    # -- Anthropic Messages -----------------------------------------------------------------

    def serve_anthropic(self, body, path):
        tools = [(t.get("name", ""), t.get("input_schema"), t.get("type", "function")) for t in body.get("tools") or [] if isinstance(t, dict)]
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        content = last.get("content") if isinstance(last, dict) else None
        has_result = isinstance(content, list) and any(isinstance(c, dict) and c.get("type") == "tool_result" for c in content)
        plan = self.plan(tools, has_result, json.dumps(body.get("system", "")) + json.dumps(msgs[:1]))
        model = body.get("model", "claude-sonnet-4-5")
        inp, out = self.usage()
        mid = next_id("msg")
        if plan[0] == "tool":
            _, name, args, _kind = plan
            blocks = [{"type": "tool_use", "id": next_id("toolu"), "name": name, "input": a} for a in args]
            stop = "tool_use"
        else:
            blocks = [{"type": "text", "text": plan[1]}]
            stop = "end_turn"
        self.record(body, plan[0] if plan[0] == "text" else "tool " + plan[1])
        usage = {"input_tokens": inp, "output_tokens": out, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not body.get("stream"):
            return self.send_json(200, {"id": mid, "type": "message", "role": "assistant", "model": model, "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage})
        self.start_sse()
        self.sse({"type": "message_start", "message": {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None, "stop_sequence": None, "usage": dict(usage, output_tokens=1)}}, "message_start")
        for i, b in enumerate(blocks):
            if b["type"] == "text":
                self.sse({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}, "content_block_start")
                self.sse({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": b["text"]}}, "content_block_delta")
            else:
                self.sse({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}}, "content_block_start")
                self.sse({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}}, "content_block_delta")
            self.sse({"type": "content_block_stop", "index": i}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": out}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")

    # -- OpenAI chat completions ------------------------------------------------------------

    def serve_chat(self, body, path):
        tools = []
        for t in body.get("tools") or []:
            f = t.get("function") if isinstance(t, dict) else None
            if isinstance(f, dict):
                tools.append((f.get("name", ""), f.get("parameters"), "function"))
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        has_result = isinstance(last, dict) and last.get("role") == "tool"
        plan = self.plan(tools, has_result, json.dumps(msgs[:2]))
        model = body.get("model", "scripted")
        inp, out = self.usage()
        cid = next_id("chatcmpl")
        usage = {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out, "prompt_tokens_details": {"cached_tokens": 0}}
        if plan[0] == "tool":
            _, name, args, _kind = plan
            calls = [{"index": i, "id": next_id("call"), "type": "function", "function": {"name": name, "arguments": json.dumps(a)}} for i, a in enumerate(args)]
            message = {"role": "assistant", "content": None, "tool_calls": [{k: v for k, v in c.items() if k != "index"} for c in calls]}
            finish = "tool_calls"
        else:
            calls = None
            message = {"role": "assistant", "content": plan[1]}
            finish = "stop"
        self.record(body, plan[0] if plan[0] == "text" else "tool " + plan[1])
        if not body.get("stream"):
            return self.send_json(200, {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})
        self.start_sse()
        base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        if calls:
            self.sse(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": calls}, "finish_reason": None}]))
        else:
            self.sse(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
            self.sse(dict(base, choices=[{"index": 0, "delta": {"content": plan[1]}, "finish_reason": None}]))
        self.sse(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]))
        self.sse(dict(base, choices=[], usage=usage))
        self.sse("[DONE]")

    # -- OpenAI Responses -------------------------------------------------------------------

    def serve_responses(self, body, path):
        tools = []
        for t in body.get("tools") or []:
            if not isinstance(t, dict):
                continue
            if t.get("type") == "function":
                tools.append((t.get("name", ""), t.get("parameters"), "function"))
            elif t.get("type") == "custom":
                tools.append((t.get("name", ""), None, "custom"))
        items = body.get("input") or []
        has_result = False
        for it in items if isinstance(items, list) else []:
            if isinstance(it, dict):
                if it.get("type") in ("function_call_output", "custom_tool_call_output"):
                    has_result = True
                elif it.get("role") == "user" and it.get("type", "message") == "message":
                    has_result = False
        plan = self.plan(tools, has_result, json.dumps(body.get("instructions", "")) + json.dumps(items[:3] if isinstance(items, list) else ""))
        model = body.get("model", "scripted")
        inp, out = self.usage()
        rid = next_id("resp")
        if plan[0] == "tool":
            _, name, args, kind = plan
            output = []
            for a in args:
                if kind == "custom":
                    output.append({"type": "custom_tool_call", "id": next_id("ctc"), "call_id": next_id("call"), "name": name, "input": a, "status": "completed"})
                else:
                    output.append({"type": "function_call", "id": next_id("fc"), "call_id": next_id("call"), "name": name, "arguments": json.dumps(a), "status": "completed"})
        else:
            output = [{"type": "message", "id": next_id("msg"), "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": plan[1], "annotations": []}]}]
        self.record(body, plan[0] if plan[0] == "text" else "tool " + plan[1])
        usage = {"input_tokens": inp, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": inp + out}
        response = {"id": rid, "object": "response", "created_at": int(time.time()), "status": "completed", "model": model, "output": output, "usage": usage}
        if not body.get("stream"):
            return self.send_json(200, response)
        self.start_sse()
        self.sse({"type": "response.created", "response": dict(response, status="in_progress", output=[], usage=None)}, "response.created")
        for i, item in enumerate(output):
            self.sse({"type": "response.output_item.added", "output_index": i, "item": item}, "response.output_item.added")
            self.sse({"type": "response.output_item.done", "output_index": i, "item": item}, "response.output_item.done")
        self.sse({"type": "response.completed", "response": response}, "response.completed")

    # -- Gemini -----------------------------------------------------------------------------

    def serve_gemini(self, body, path):
        tools = []
        for t in body.get("tools") or []:
            for f in (t.get("functionDeclarations") or []) if isinstance(t, dict) else []:
                tools.append((f.get("name", ""), f.get("parametersJsonSchema") or f.get("parameters"), "function"))
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        parts = last.get("parts") if isinstance(last, dict) else None
        has_result = isinstance(parts, list) and any(isinstance(p, dict) and "functionResponse" in p for p in parts)
        plan = self.plan(tools, has_result, json.dumps(body.get("systemInstruction", "")) + json.dumps(contents[:2]))
        model = path.split("/models/")[-1].split(":")[0] if "/models/" in path else "gemini"
        inp, out = self.usage()
        if plan[0] == "tool":
            _, name, args, _kind = plan
            out_parts = [{"functionCall": {"name": name, "args": a, "id": next_id("fc")}} for a in args]
        else:
            out_parts = [{"text": plan[1]}]
        self.record(body, plan[0] if plan[0] == "text" else "tool " + plan[1])
        response = {
            "candidates": [{"content": {"role": "model", "parts": out_parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": inp, "candidatesTokenCount": out, "totalTokenCount": inp + out},
            "modelVersion": model,
            "responseId": next_id("gresp"),
        }
        if ":generateContent" in path:
            return self.send_json(200, response)
        self.start_sse()
        self.sse(response)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=600.0)
    args = ap.parse_args()
    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.script = script
    server.log_path = args.log
    open(args.log, "a").close()
    port = server.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    print(port, flush=True)

    def watch_stdin():
        # The parent test holds our stdin; when it ends (or closes it), so do we.
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        os._exit(0)

    def watch_clock():
        time.sleep(args.lifetime)
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Thread(target=watch_clock, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
