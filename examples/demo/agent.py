#!/usr/bin/env python3
"""A stand-in coding agent for the issueloop demo.

issueloop runs it through the `command` backend, in the run's worktree, with the brief on stdin
and in the file named by `ISSUELOOP_BRIEF_FILE`. It recognises the demo issues by a phrase in
the brief, makes the change each one asks for (the same change every time, so a repair attempt
after failing gates is harmless), and prints a Claude Code `stream-json` event stream on stdout:
`system`/`init`, `assistant` and `user` frames for each file it writes, and a final `result`
frame with `total_cost_usd`. Progress goes to stderr. Python 3 standard library only.
"""

import json
import os
import sys
import uuid
from pathlib import Path

# Every demo run reports the same cost. With the demo's $0.50 run budget and $1.00 daily cap,
# two runs spend the day's cap exactly, so the third issue is skipped with `daily_cap_reached`.
DEFAULT_COST_USD = 0.50
MODEL = "demo-agent-1"

SLUGIFY_MODULE = '''"""Turning titles into URL slugs."""

import re
import unicodedata


def slugify(text: str) -> str:
    """Lower-case ASCII words of `text` joined by hyphens: "Hello, World!" -> "hello-world"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))
'''

SLUGIFY_TESTS = '''from textkit import slugify


def test_punctuation_and_spaces_become_single_hyphens():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  many   spaces  ") == "many-spaces"


def test_accents_are_folded_to_ascii():
    assert slugify("Crème brûlée") == "creme-brulee"


def test_nothing_left_gives_an_empty_slug():
    assert slugify("!!!") == ""
'''

TRUNCATE_FUNCTION = '''

def truncate_words(text: str, limit: int) -> str:
    """The first `limit` words of `text`, followed by "…" when words were dropped."""
    words = text.split()
    if len(words) <= limit:
        return " ".join(words)
    return " ".join(words[:limit]) + "…"
'''

TRUNCATE_TESTS = '''from textkit.words import truncate_words


def test_short_text_is_unchanged():
    assert truncate_words("one two", 3) == "one two"


def test_long_text_is_cut_with_an_ellipsis():
    assert truncate_words("one two three four", 2) == "one two…"
'''


def log(message):
    print(f"demo-agent: {message}", file=sys.stderr, flush=True)


def read_brief():
    """The brief from the file issueloop names, else from stdin."""
    path = os.environ.get("ISSUELOOP_BRIEF_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as e:
            log(f"cannot read the brief file {path!r} ({e}); reading stdin instead")
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.read()


def write(path, text):
    """Write `text` to `path` (relative to the worktree); returns whether anything changed."""
    target = Path(path)
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True


def add_slugify():
    write("src/textkit/slugify.py", SLUGIFY_MODULE)
    write("tests/test_slugify.py", SLUGIFY_TESTS)
    init = Path("src/textkit/__init__.py")
    text = init.read_text(encoding="utf-8")
    if "slugify" not in text:
        text = text.replace(
            "from textkit.words import",
            "from textkit.slugify import slugify\nfrom textkit.words import",
        ).replace('__all__ = ["title_case"', '__all__ = ["slugify", "title_case"')
        write(init, text)
    return (
        ["src/textkit/slugify.py", "tests/test_slugify.py", "src/textkit/__init__.py"],
        "Added `textkit.slugify` (ASCII-folded, lower-case words joined by hyphens) with tests.",
    )


def add_truncate_words():
    words = Path("src/textkit/words.py")
    text = words.read_text(encoding="utf-8")
    if "def truncate_words" not in text:
        write(words, text.rstrip("\n") + "\n" + TRUNCATE_FUNCTION)
    write("tests/test_truncate.py", TRUNCATE_TESTS)
    return (
        ["src/textkit/words.py", "tests/test_truncate.py"],
        "Added `textkit.words.truncate_words` with tests.",
    )


def test_newer_python_in_ci():
    ci = Path(".github/workflows/ci.yml")
    text = ci.read_text(encoding="utf-8")
    text = text.replace('python: ["3.12"]', 'python: ["3.12", "3.13"]')
    write(ci, text)
    return (
        [str(ci)],
        "Added Python 3.13 to the CI test matrix in `.github/workflows/ci.yml`.",
    )


# The phrase that identifies each demo issue in its brief, checked in this order.
TASKS = [
    (".github/workflows/ci.yml", test_newer_python_in_ci),
    ("slugify", add_slugify),
    ("truncate_words", add_truncate_words),
]


class Stream:
    """Claude Code `--output-format stream-json` frames on stdout."""

    def __init__(self):
        self.session = str(uuid.uuid4())

    def emit(self, frame):
        frame.setdefault("session_id", self.session)
        frame.setdefault("uuid", str(uuid.uuid4()))
        print(json.dumps(frame), flush=True)

    def init(self):
        self.emit({
            "type": "system",
            "subtype": "init",
            "cwd": os.getcwd(),
            "tools": ["Read", "Edit", "Write"],
            "mcp_servers": [],
            "model": MODEL,
            "permissionMode": "acceptEdits",
            "claude_code_version": "demo",
        })

    def assistant(self, content):
        self.emit({
            "type": "assistant",
            "message": {
                "model": MODEL,
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "content": content,
                "stop_reason": None,
                "usage": {"input_tokens": 120, "output_tokens": 80},
            },
            "parent_tool_use_id": None,
        })

    def wrote(self, path):
        tool_id = f"toolu_{uuid.uuid4().hex[:24]}"
        self.assistant([{"type": "tool_use", "id": tool_id, "name": "Write",
                         "input": {"file_path": path}}])
        self.emit({
            "type": "user",
            "message": {"role": "user", "content": [{
                "tool_use_id": tool_id, "type": "tool_result",
                "content": f"wrote {path}", "is_error": False,
            }]},
            "parent_tool_use_id": None,
        })

    def result(self, text, cost, turns, failed=False):
        frame = {
            "type": "result",
            "subtype": "error_during_execution" if failed else "success",
            "is_error": failed,
            "duration_ms": 50,
            "duration_api_ms": 0,
            "num_turns": turns,
            "total_cost_usd": cost,
            "usage": {"input_tokens": 120 * turns, "output_tokens": 80 * turns},
            "permission_denials": [],
        }
        # Claude Code puts the final text in `result` on success and in `errors` otherwise.
        if failed:
            frame["errors"] = [text]
        else:
            frame["result"] = text
        self.emit(frame)


def main():
    cost = float(os.environ.get("ISSUELOOP_DEMO_COST_USD", DEFAULT_COST_USD))
    brief = read_brief()
    stream = Stream()
    stream.init()
    for phrase, task in TASKS:
        if phrase in brief:
            log(f"recognised the issue by {phrase!r}")
            stream.assistant([{"type": "text", "text": "Reading the issue and making the change."}])
            paths, summary = task()
            for path in paths:
                stream.wrote(path)
            stream.assistant([{"type": "text", "text": summary}])
            stream.result(summary, cost, 1 + len(paths))
            return 0
    message = "This demo agent only knows the demo issues; nothing was changed."
    log(message)
    stream.result(message, cost, 1, failed=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
