//! Runners that share a daily cap through the `github` state backend: each has a folder of its
//! own (configuration, `[git] cache_dir`, local state file), all talk to one fake GitHub whose
//! repository is a real bare git repository, and the ledger lives on its `issueloop/state`
//! branch.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]
#![allow(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use issueloop::ledger::{LedgerEntry, Usd};
use issueloop_fake_github::TOKEN;
use issueloop_state_github::{DayLedger, parse_day, replay_day};

use super::github::{GithubWorld, assert_token_absent, printed};

/// `[state]` of the world's configuration, switched to the `github` backend.
pub fn use_github_state(g: &GithubWorld) {
    let config = std::fs::read_to_string(&g.world.config).unwrap();
    let switched = config.replace(
        "[state]\npath = \"state.sqlite\"\n",
        "[state]\nbackend = \"github\"\npath = \"state.sqlite\"\n",
    );
    assert_ne!(config, switched, "the world's [state] table moved");
    std::fs::write(&g.world.config, switched).unwrap();
}

/// A second runner's folder under the world: the same configuration, so its relative paths
/// (`cache`, `state.sqlite`) are its own.
pub fn runner_folder(g: &GithubWorld, name: &str) -> PathBuf {
    let dir = g.world.root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(&g.world.config).unwrap();
    // The agent's log (how the test counts agent runs) is the world's, shared by all: the
    // sandbox lets the agent write it only where the configuration says, by absolute path.
    let observe = g.world.root().join("observe");
    let text = text.replace(
        "extra_writable = [\"observe\"]",
        &format!("extra_writable = [\"{}\"]", observe.display()),
    );
    assert!(text.contains(&observe.display().to_string()), "{text}");
    std::fs::write(dir.join("issueloop.toml"), text).unwrap();
    dir
}

/// `issueloop --json run --once` with the configuration in `folder`, run from that folder.
pub fn run_once_in(g: &GithubWorld, folder: &Path) -> (Option<i32>, serde_json::Value, String) {
    finish(spawn_run_once_in(g, folder))
}

/// [`run_once_in`], started and not waited for: several runners at once.
pub fn spawn_run_once_in(g: &GithubWorld, folder: &Path) -> std::process::Child {
    run_once_command(g, folder)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The exit code, the JSON report and everything a runner printed (checked for the token).
pub fn finish(child: std::process::Child) -> (Option<i32>, serde_json::Value, String) {
    let out: Output = child.wait_with_output().unwrap();
    let text = printed(&out);
    assert_token_absent(&text);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{text}"));
    (out.status.code(), json, text)
}

fn run_once_command(g: &GithubWorld, folder: &Path) -> std::process::Command {
    // Like `World::std_command`, with the folder's own configuration, relative, from the folder.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_issueloop"));
    cmd.current_dir(folder)
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GH_TOKEN")
        .env_remove("ISSUELOOP_FAILPOINT")
        .env("GITHUB_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .env("E2E_AGENT_LOG", &g.world.agent_log)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["--config", "issueloop.toml", "--json", "run", "--once"]);
    cmd
}

/// Today's ledger as any machine computes it: the day file on the state branch of the bare
/// repository, replayed.
pub fn replayed_today(remote: &Path) -> DayLedger {
    let day = issueloop::ledger::utc_day(jiff::Timestamp::now());
    let text = super::git::git_ok(
        remote,
        &[
            "show",
            &format!("refs/heads/issueloop/state:ledger/{day}.jsonl"),
        ],
    )
    .expect("the state branch holds today's ledger");
    replay_day(day, &parse_day(&text).unwrap())
}

pub fn spent(ledger: &DayLedger) -> Usd {
    let day = issueloop::ledger::utc_day(jiff::Timestamp::now());
    ledger.usage(day).spent
}

pub fn settled(ledger: &DayLedger) -> Vec<LedgerEntry> {
    ledger
        .sorted()
        .into_iter()
        .filter(|e| e.state.id() == "settled")
        .collect()
}
