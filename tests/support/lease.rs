//! Support for the lease scenarios: a short `[service] lease_ttl`, a slow test in the remote's
//! project (so the gates outlast the run's wall clock plus grace), a second runner's
//! configuration with its own state file and cache folder, and a way to run either runner.

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![allow(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::World;

/// Sets `[service] lease_ttl` in the world's configuration.
pub fn set_lease_ttl(world: &World, ttl: &str) {
    let text = std::fs::read_to_string(&world.config).unwrap();
    let text = text.replacen(
        "[service]\n",
        &format!("[service]\nlease_ttl = \"{ttl}\"\n"),
        1,
    );
    std::fs::write(&world.config, text).unwrap();
}

/// Raises `[forge] max_writes_per_minute`: on GitHub each renewal is two writes (a commit and a
/// ref update), and a 3 s lease renews every second.
pub fn raise_write_limit(world: &World) {
    let text = std::fs::read_to_string(&world.config).unwrap();
    let text = text.replacen("[forge]\n", "[forge]\nmax_writes_per_minute = 1000\n", 1);
    std::fs::write(&world.config, text).unwrap();
}

/// Adds `tests/test_slow.py`, which sleeps `secs` seconds, to `main` of the remote: every gate
/// run (the unittest discovery) takes that long.
pub fn add_slow_test(remote: &Path, secs: u32) {
    let text = format!(
        "import time\nimport unittest\n\n\nclass SlowTest(unittest.TestCase):\n    def test_slow(self):\n        time.sleep({secs})\n"
    );
    super::git::commit_file_to_bare(
        remote,
        "main",
        "tests/test_slow.py",
        &text,
        "A slow test",
        ("maintainer", "maintainer@example.com"),
    );
}

/// A second runner's configuration next to the first's: the same forge and repositories, its
/// own state file and cache folder (another machine, as far as issueloop can tell).
pub fn second_runner_config(world: &World) -> PathBuf {
    let text = std::fs::read_to_string(&world.config).unwrap();
    let text = text
        .replacen(
            "path = \"state.sqlite\"",
            "path = \"state-b/state.sqlite\"",
            1,
        )
        .replacen("cache_dir = \"cache\"", "cache_dir = \"cache-b\"", 1);
    let path = world.root().join("issueloop-b.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A runner process and the files its output goes to (files, not pipes: nothing blocks on a
/// full pipe while the test waits, and a killed runner's output stays readable).
pub struct Runner {
    pub child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// `issueloop --config <config> --json run --once`, as the world runs it (its environment and
/// working directory), with `token` as `GITHUB_TOKEN` when given; `name` names its output files.
pub fn runner(world: &World, name: &str, config: &Path, token: Option<&str>) -> Runner {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_issueloop"));
    cmd.current_dir(world.root())
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("ISSUELOOP_FAILPOINT")
        .env("RUST_LOG", "info")
        .env("E2E_AGENT_LOG", &world.agent_log)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("--config")
        .arg(config)
        .args(["--json", "run", "--once"]);
    if let Some(token) = token {
        cmd.env("GITHUB_TOKEN", token);
    }
    let stdout = world.root().join(format!("{name}.stdout"));
    let stderr = world.root().join(format!("{name}.stderr"));
    cmd.stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()));
    Runner {
        child: cmd.spawn().unwrap(),
        stdout,
        stderr,
    }
}

impl Runner {
    /// Everything it printed so far.
    pub fn printed(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Waits for its end (at most two minutes): the exit code, the parsed report, the output.
    pub fn finish(mut self) -> (Option<i32>, serde_json::Value, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                panic!(
                    "the runner did not finish within two minutes:\n{}",
                    self.printed()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let printed = self.printed();
        let stdout = std::fs::read(&self.stdout).unwrap_or_default();
        let json = serde_json::from_slice(&stdout)
            .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{printed}"));
        (status.code(), json, printed)
    }

    /// Whether it is still running.
    pub fn child_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no clean-up, no more renewals.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Waits (at most a minute) until the scripted agent has been called `n` times.
pub fn wait_for_agent_calls(world: &World, n: usize) {
    let started = Instant::now();
    while world.agent_calls().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the agent was not called {n} time(s) within a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The labels, sorted.
pub fn sorted(mut labels: Vec<String>) -> Vec<String> {
    labels.sort();
    labels
}

/// Every commit object in the world's remote, reachable or not, except the GitHub forge's lease
/// commits (written through the API, never pushed): what runs pushed, plus `main`.
pub fn pushed_commit_objects(world: &World) -> usize {
    super::git::all_objects(&world.remote)
        .iter()
        .filter(|(_, kind)| kind == "commit")
        .filter(|(id, _)| {
            !super::git::git(&world.remote, &["log", "-1", "--format=%B", id])
                .starts_with("issueloop lease on issue #")
        })
        .count()
}
