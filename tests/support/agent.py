#!/usr/bin/env python3
"""A scripted coding agent for the end-to-end tests (the `command` backend, Claude Code
stream-json output). The issue body says what to do, one directive per line:

  scenario: good       add app/feature.py and a passing test
  scenario: shrink     rewrite one line of tests/test_base.py (a change with a deletion)
  scenario: denied     edit .github/workflows/ci.yml (the diff policy refuses it)
  scenario: failing    add a test that always fails (the gates fail, every repair too)
  scenario: secret     add a file with an AWS access key id
  scenario: nothing    change nothing
  cost: 0.30           the total_cost_usd it reports (default 0.25)
  sleep: 2.5           seconds to wait before changing anything (default 0); while it waits,
                       its pid is in $E2E_AGENT_LOG.pids

Every invocation appends one line to $E2E_AGENT_LOG (when set): the stage it thinks it is in.
"""
import json
import os
import pathlib
import sys
import time


def brief():
    path = os.environ.get("ISSUELOOP_BRIEF_FILE")
    if path and os.path.exists(path):
        return pathlib.Path(path).read_text(encoding="utf-8")
    return sys.stdin.read()


def directive(text, key, default):
    for line in text.splitlines():
        line = line.strip().strip("`")
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return default


def write(path, text):
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")


def main():
    text = brief()
    scenario = directive(text, "scenario", "good")
    cost = float(directive(text, "cost", "0.25"))
    stage = "reflect" if "repair attempt" in text else "execute"
    log = os.environ.get("E2E_AGENT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{stage} {scenario}\n")
    pause = float(directive(text, "sleep", "0"))
    if pause > 0:
        if log:
            with open(log + ".pids", "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(pause)
    if scenario == "good":
        write("app/feature.py", "def feature():\n    return 42\n")
        write("tests/test_feature.py",
              "import unittest\nfrom app.feature import feature\n\n\n"
              "class FeatureTest(unittest.TestCase):\n    def test_feature(self):\n"
              "        self.assertEqual(feature(), 42)\n")
    elif scenario == "shrink":
        write("tests/test_base.py",
              "import unittest\n\n\nclass BaseTest(unittest.TestCase):\n    def test_ok(self):\n        pass\n")
    elif scenario == "denied":
        write(".github/workflows/ci.yml", "name: ci\non: [push, pull_request]\njobs: {}\n")
    elif scenario == "failing":
        write("tests/test_broken.py",
              "import unittest\n\n\nclass BrokenTest(unittest.TestCase):\n"
              "    def test_broken(self):\n        self.assertEqual(1, 2)\n")
    elif scenario == "secret":
        write("app/settings.py", 'AWS_KEY = "AKIAABCDEFGHIJKLMNOP"\n')
    events = [
        {"type": "system", "subtype": "init", "session_id": "e2e", "model": "claude-sonnet-4-5",
         "cwd": os.getcwd(), "tools": []},
        {"type": "assistant", "session_id": "e2e",
         "message": {"id": "m1", "model": "claude-sonnet-4-5", "role": "assistant",
                     "content": [{"type": "text", "text": f"did {scenario}"}],
                     "usage": {"input_tokens": 10, "output_tokens": 5}}},
        {"type": "result", "subtype": "success", "is_error": False, "session_id": "e2e",
         "result": f"Did the {scenario} change.", "num_turns": 1, "duration_ms": 5,
         "total_cost_usd": cost,
         "usage": {"input_tokens": 10, "output_tokens": 5}},
    ]
    for e in events:
        print(json.dumps(e), flush=True)


if __name__ == "__main__":
    main()
