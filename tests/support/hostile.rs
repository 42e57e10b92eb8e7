//! Hostile agents for the containment tests: a `command` agent per attack, written as a Python
//! script with the world's paths baked in, that tries its attack, writes what it achieved into
//! the world's `observe/` folder (the one place the tests let it write), then reports a normal
//! result so the run carries on.

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use issueloop_fake_github::FakeOptions;

use super::github::GithubWorld;
use super::{Knobs, World};

/// What the agent reports spending (the ledger test checks the day keeps it).
pub const ATTACK_COST: f64 = 0.4;

/// A GitHub token shape the agent searches for (it does not know the value).
pub const TOKEN: &str = "ghp_HostileTestToken0123456789abcdefghij";

/// Whether the run's children are sandboxed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sandbox {
    /// The default: `[sandbox] mode = "required"`.
    On,
    Off,
}

/// One attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Read the token from `/proc/<pid>/environ` of every process and from the memory of its
    /// parent and grandparent (the keeper, issueloop).
    Token,
    /// Delete the day's ledger entries in `state.sqlite`.
    Ledger,
    /// Leave a `setsid` daemon behind.
    Daemon,
    /// Hang (after starting a daemon), for a `kill -9` of issueloop.
    Hang,
    /// [`Attack::Token`] on the GitHub forge, plus every other route to the token: the agent's
    /// own environment, `git config` of its worktree and of the mirror, the git credential
    /// stores and `git credential fill`, its gitdir, every file under the cache (objects and
    /// packs aside), its run directory and its worktree.
    GithubToken,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::Token => "token",
            Attack::Ledger => "ledger",
            Attack::Daemon => "daemon",
            Attack::Hang => "hang",
            Attack::GithubToken => "ghtoken",
        }
    }
}

/// A world whose agent is the hostile script for `attack`.
pub fn world(attack: Attack, sandbox: Sandbox) -> World {
    let mut w = World::new(Knobs::default());
    hostile_config(&w, attack, sandbox);
    w.add_issue("Add a feature", "scenario: good", super::MAINTAINER);
    w
}

/// A world on the fake GitHub, which accepts [`TOKEN`], whose agent is the hostile script for
/// [`Attack::GithubToken`], with one approved issue (returned).
pub fn github_world(sandbox: Sandbox) -> (GithubWorld, u64) {
    let g = GithubWorld::with_options(
        Knobs::default(),
        FakeOptions {
            tokens: vec![TOKEN.to_owned()],
            ..FakeOptions::default()
        },
    );
    hostile_config(&g.world, Attack::GithubToken, sandbox);
    let n = g.approved_issue("Add a feature", "scenario: good\n", super::MAINTAINER);
    (g, n)
}

fn hostile_config(w: &World, attack: Attack, sandbox: Sandbox) {
    let root = w.root().to_owned();
    let observe = root.join("observe");
    let script = root.join(format!("hostile-{}.py", attack.name()));
    std::fs::write(&script, agent_script(attack, &root, &observe)).unwrap();
    let config = std::fs::read_to_string(&w.config).unwrap();
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/agent.py");
    let mut config = config.replace(&agent.display().to_string(), &script.display().to_string());
    if sandbox == Sandbox::Off {
        // `[sandbox]` is the configuration's last table.
        config.push_str("mode = \"off\"\n");
    }
    std::fs::write(&w.config, config).unwrap();
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            out.extend(files_containing(&p, needle));
        } else if kind.is_file()
            && let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            out.push(p);
        }
    }
    out
}

/// The file the attack writes its findings to.
pub fn findings(w: &World, attack: Attack) -> String {
    std::fs::read_to_string(
        w.root()
            .join("observe")
            .join(format!("{}.out", attack.name())),
    )
    .unwrap_or_default()
}

/// Wait until the attack has written `name` in `observe/` (a pid).
pub fn wait_for_pid(w: &World, name: &str, limit: Duration) -> Option<i32> {
    let path = w.root().join("observe").join(name);
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(s) = std::fs::read_to_string(&path)
            && let Ok(pid) = s.trim().parse()
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether `pid` is a live process (a zombie has ended).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Wait up to `limit` for `pid` to end; whether it did.
pub fn ends_within(pid: i32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Kill a leftover process (after a failed assertion, so nothing outlives the test).
pub fn cleanup(pid: i32) {
    // SAFETY: kill only sends a signal.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

fn agent_script(attack: Attack, root: &Path, observe: &Path) -> String {
    let state: PathBuf = root.join("state.sqlite");
    let attack_code = match attack {
        Attack::Token => TOKEN_ATTACK.to_owned(),
        Attack::Ledger => LEDGER_ATTACK.to_owned(),
        Attack::Daemon => DAEMON_ATTACK.to_owned(),
        Attack::Hang => HANG_ATTACK.to_owned(),
        Attack::GithubToken => format!("{TOKEN_ATTACK}{EVERY_ROUTE_ATTACK}"),
    };
    format!(
        r#"#!/usr/bin/env python3
import json, os, re, subprocess, sys, time
OBSERVE = {observe:?}
STATE = {state:?}
CACHE = {cache:?}
NAME = {name:?}

def report(text):
    with open(os.path.join(OBSERVE, NAME + ".out"), "a") as f:
        f.write(text + "\n")

{attack_code}

sys.stdin.read() if not os.environ.get("ISSUELOOP_BRIEF_FILE") else None
try:
    attack()
except Exception as e:
    report("attack crashed: %r" % (e,))
os.makedirs("app", exist_ok=True)
os.makedirs("tests", exist_ok=True)
with open("app/feature.py", "w") as f:
    f.write("def feature():\n    return 42\n")
with open("tests/test_feature.py", "w") as f:
    f.write("import unittest\nfrom app.feature import feature\n\n\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.assertEqual(feature(), 42)\n")
for e in [
    {{"type": "system", "subtype": "init", "session_id": "h", "model": "claude-sonnet-4-5", "cwd": os.getcwd(), "tools": []}},
    {{"type": "result", "subtype": "success", "is_error": False, "session_id": "h", "result": "done", "num_turns": 1,
      "duration_ms": 5, "total_cost_usd": {cost}, "usage": {{"input_tokens": 10, "output_tokens": 5}}}},
]:
    print(json.dumps(e), flush=True)
"#,
        observe = observe.display().to_string(),
        state = state.display().to_string(),
        cache = root.join("cache").display().to_string(),
        name = attack.name(),
        cost = ATTACK_COST,
    )
}

const TOKEN_ATTACK: &str = r#"
# The shape of the test token only, so a real token elsewhere on the machine does not count.
PATTERN = re.compile(rb"ghp_HostileTestToken[A-Za-z0-9]{20}")

def ppid_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

def attack():
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if PATTERN.search(f.read()):
                    found.append("environ of %s" % entry)
        except OSError:
            pass
    parent = os.getppid()
    for pid in {parent, ppid_of(parent)}:
        try:
            maps = open("/proc/%d/maps" % pid).read().splitlines()
            mem = open("/proc/%d/mem" % pid, "rb")
        except OSError as e:
            report("memory of %d: %s" % (pid, e))
            continue
        budget = 1 << 30
        for line in maps:
            parts = line.split()
            if "rw" not in parts[1] or (len(parts) > 5 and parts[5].startswith("/")):
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if end - start > budget:
                continue
            budget -= end - start
            try:
                mem.seek(start)
                if PATTERN.search(mem.read(end - start)):
                    found.append("memory of %d" % pid)
                    break
            except (OSError, ValueError, OverflowError):
                pass
    report("FOUND " + "; ".join(found) if found else "nothing")
"#;

const LEDGER_ATTACK: &str = r#"
import sqlite3
def attack():
    try:
        db = sqlite3.connect(STATE, timeout=5)
        n = db.execute("DELETE FROM ledger_entries").rowcount
        db.commit()
        report("deleted %d" % n)
    except Exception as e:
        report("refused: %s" % (e,))
"#;

const DAEMON_ATTACK: &str = r#"
def attack():
    pidfile = os.path.join(OBSERVE, "daemon.pid")
    subprocess.Popen(["setsid", "sh", "-c", "echo $$ > %s; exec sleep 300" % pidfile],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    for _ in range(200):
        if os.path.exists(pidfile):
            break
        time.sleep(0.01)
    report("daemon started")
"#;

const HANG_ATTACK: &str = r#"
def attack():
    pidfile = os.path.join(OBSERVE, "daemon.pid")
    subprocess.Popen(["setsid", "sh", "-c", "echo $$ > %s; exec sleep 300" % pidfile],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    with open(os.path.join(OBSERVE, "agent.pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    time.sleep(300)
"#;

/// Appended to [`TOKEN_ATTACK`] (whose `attack` it wraps): every route to the token other than
/// `/proc/*/environ` and the memory of the agent's parent and grandparent. Writes one line per
/// route it tried and a summary: `FOUND …` naming the routes that held the token, or `nothing`.
const EVERY_ROUTE_ATTACK: &str = r#"
import pwd
proc_attack = attack

def attack():
    proc_attack()
    found, tried = [], []
    def check(route, data):
        if isinstance(data, str):
            data = data.encode()
        tried.append(route)
        if PATTERN.search(data):
            found.append(route)
    def git(args, cwd=".", stdin=None):
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/false", SSH_ASKPASS="/bin/false")
        p = subprocess.run(["git"] + args, cwd=cwd, input=stdin, capture_output=True, timeout=30, env=env)
        return p.stdout + p.stderr
    def walk(route, top, skip=()):
        n = 0
        for d, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if x not in skip]
            for name in files:
                path = os.path.join(d, name)
                try:
                    if os.path.islink(path) or os.path.getsize(path) > (64 << 20):
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                n += 1
                if PATTERN.search(data):
                    found.append("%s: %s" % (route, path))
        tried.append("%s (%d files)" % (route, n))
        return n

    check("own environment", "\n".join("%s=%s" % kv for kv in os.environ.items()))
    check("/proc/self/environ", open("/proc/self/environ", "rb").read())
    worktree = os.getcwd()
    check("git config of the worktree", git(["config", "--list", "--show-origin"]))
    common = git(["rev-parse", "--path-format=absolute", "--git-common-dir"]).decode().strip()
    check("git config of the mirror %s" % common,
          git(["--git-dir=" + common, "config", "--list", "--show-origin"], cwd="/"))
    for host in ["github.com", "127.0.0.1", "localhost"]:
        check("git credential fill for %s" % host,
              git(["credential", "fill"], stdin=("protocol=https\nhost=%s\n\n" % host).encode()))
    homes = {os.path.expanduser("~"), pwd.getpwuid(os.getuid()).pw_dir}
    xdg = os.environ.get("XDG_CONFIG_HOME")
    for path in sorted(
        [os.path.join(h, ".git-credentials") for h in homes]
        + [os.path.join(h, ".config", "git", "credentials") for h in homes]
        + ([os.path.join(xdg, "git", "credentials")] if xdg else [])
    ):
        try:
            check(path, open(path, "rb").read())
        except OSError as e:
            tried.append("%s (%s)" % (path, e.strerror))
    with open(".git") as f:
        gitdir = f.read().split("gitdir:", 1)[1].strip()
    gitdir = os.path.join(worktree, gitdir)
    walk("the worktree's gitdir %s" % gitdir, gitdir, skip=("objects",))
    walk("the cache", CACHE, skip=("objects", "pack", "packs"))
    walk("the worktree", worktree, skip=(".git",))
    tmp = os.environ.get("TMPDIR", "")
    if os.path.basename(os.path.dirname(tmp)).startswith("issueloop-run-"):
        walk("the run directory", os.path.dirname(tmp))
    else:
        tried.append("no run directory (TMPDIR=%s)" % tmp)
    report("tried: " + " | ".join(tried))
    report("FOUND " + "; ".join(found) if found else "nothing by any other route")
"#;
