//! Test support for the end-to-end tests: a throwaway world with a bare git remote holding a
//! small Python project, a local forge (or a fake GitHub) with labelled issues, a scripted agent
//! (`agent.py`) behind the `command` backend, a configuration, and helpers to run the real
//! binary and read back what it did (forge files, the remote's branches, the ledger, the journal).

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![allow(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

pub mod checkout;
pub mod git;
pub mod github;
pub mod hostile;
pub mod postgres;
pub mod workflow;

use std::path::{Path, PathBuf};
use std::process::Output;

use issueloop::ledger::{Journal, Ledger, SqliteLedger};

pub const REPO: &str = "acme/app";
pub const MAINTAINER: &str = "alice";

/// The project in the remote: a package, a test, a workflow file.
const PROJECT: &[(&str, &str)] = &[
    ("app/__init__.py", ""),
    ("tests/__init__.py", ""),
    (
        "tests/test_base.py",
        "import unittest\n\n\nclass BaseTest(unittest.TestCase):\n    def test_ok(self):\n        self.assertTrue(True)\n",
    ),
    (
        ".github/workflows/ci.yml",
        "name: ci\non: [push]\njobs: {}\n",
    ),
    (".gitignore", "__pycache__/\n"),
];

pub struct World {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub remote: PathBuf,
    pub forge_repo: PathBuf,
    pub agent_log: PathBuf,
    next_issue: u64,
}

/// Configuration knobs a test may change.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub daily_cap: f64,
    pub run_cost: f64,
    pub max_runs_per_day: u32,
    pub reflect_attempts: u32,
    pub max_concurrent_runs: u32,
    pub wall_clock: &'static str,
    pub reservation_grace: &'static str,
    /// `[service] shutdown_grace`: how long `serve` lets running work finish after SIGTERM.
    pub shutdown_grace: &'static str,
    /// Extra TOML appended to the configuration (e.g. a `[forge]` table for a fake GitHub).
    pub forge_toml: Option<String>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            daily_cap: 10.0,
            run_cost: 1.0,
            max_runs_per_day: 20,
            reflect_attempts: 2,
            max_concurrent_runs: 1,
            wall_clock: "2m",
            reservation_grace: "1m",
            shutdown_grace: "5s",
            forge_toml: None,
        }
    }
}

impl World {
    pub fn new(knobs: Knobs) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let remote = root.join("app.git");
        seed_remote(&remote);
        let forge_repo = root.join("forge").join(REPO);
        std::fs::create_dir_all(forge_repo.join("issues")).unwrap();
        std::fs::write(
            forge_repo.join("repo.toml"),
            format!(
                "remote = \"../../../app.git\"\ndefault_branch = \"main\"\nbot = \"issueloop\"\n\n[permissions]\n{MAINTAINER} = \"maintain\"\nmallory = \"triage\"\n"
            ),
        )
        .unwrap();
        let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/agent.py");
        let forge_toml = knobs
            .forge_toml
            .clone()
            .unwrap_or_else(|| "[forge]\nkind = \"local\"\nlocal_path = \"forge\"\n".into());
        let config = root.join("issueloop.toml");
        std::fs::write(
            &config,
            format!(
                r#"repos = ["{REPO}"]

{forge_toml}

[budget]
daily_cap_usd = {cap}
max_runs_per_day = {runs}
min_useful_usd = 0.10
reservation_grace = "{grace}"

[budget.default]
cost_usd = {cost}
wall_clock = "{wall}"
max_turns = 5

[runtime_profile]
default = "command"

[backends.command]
argv = ["python3", "{agent}"]
format = "claude_code"
env = ["E2E_AGENT_LOG"]

[run]
reflect_attempts = {reflect}

[gates]
timeout = "1m"

[gates.repos."{REPO}"]
commands = [["python3", "-m", "unittest", "discover", "-s", "tests", "-t", "."]]

[git]
cache_dir = "cache"

[service]
max_concurrent_runs = {conc}
cron = "* * * * * *"
shutdown_grace = "{shutdown}"

[state]
path = "state.sqlite"

[sandbox]
# Where the tests watch the agent from (its log); the rest of this folder (state, mirrors,
# config) stays closed to it. Kept last: a test may append keys to this table.
extra_writable = ["observe"]
"#,
                cap = knobs.daily_cap,
                runs = knobs.max_runs_per_day,
                grace = knobs.reservation_grace,
                cost = knobs.run_cost,
                wall = knobs.wall_clock,
                agent = agent.display(),
                reflect = knobs.reflect_attempts,
                conc = knobs.max_concurrent_runs,
                shutdown = knobs.shutdown_grace,
            ),
        )
        .unwrap();
        std::fs::create_dir_all(root.join("observe")).unwrap();
        World {
            agent_log: root.join("observe").join("agent.log"),
            dir,
            config,
            remote,
            forge_repo,
            next_issue: 1,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Add an issue labelled `loop:approved` by `labeller`; returns its number.
    pub fn add_issue(&mut self, title: &str, body: &str, labeller: &str) -> u64 {
        let n = self.next_issue;
        self.next_issue += 1;
        let created = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(60 - n as i64);
        let labelled = created + jiff::SignedDuration::from_secs(10);
        let text = format!(
            "+++\ntitle = {title:?}\nstate = \"open\"\nauthor = \"bob\"\ncreated_at = \"{created}\"\nlabels = [\"loop:approved\"]\n\n[[events]]\nlabel = \"loop:approved\"\nactor = \"{labeller}\"\nat = \"{labelled}\"\naction = \"labeled\"\n+++\n{body}\n"
        );
        std::fs::write(self.forge_repo.join("issues").join(format!("{n}.md")), text).unwrap();
        n
    }

    pub fn issue_text(&self, n: u64) -> String {
        std::fs::read_to_string(self.forge_repo.join("issues").join(format!("{n}.md"))).unwrap()
    }

    /// The issue's current labels, from its front matter.
    pub fn labels(&self, n: u64) -> Vec<String> {
        let text = self.issue_text(n);
        let front = text
            .strip_prefix("+++\n")
            .and_then(|rest| rest.split_once("\n+++\n"))
            .map(|(front, _)| front)
            .unwrap_or_else(|| panic!("issue {n} has no front matter:\n{text}"));
        let value: toml::Table = toml::from_str(front).unwrap();
        value["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    }

    /// PR records on the local forge.
    pub fn pulls(&self) -> Vec<String> {
        let dir = self.forge_repo.join("pulls");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    }

    /// Branches of the remote other than `main`.
    pub fn remote_branches(&self) -> Vec<String> {
        git::branches_except_main(&self.remote)
    }

    /// Commits on a remote branch that are not on `main`.
    pub fn commits_ahead(&self, branch: &str) -> usize {
        git::git(
            &self.remote,
            &[
                "rev-list",
                "--count",
                &format!("refs/heads/main..refs/heads/{branch}"),
            ],
        )
        .parse()
        .unwrap()
    }

    /// Refs of the remote under `prefix` (`refs/issueloop/`).
    pub fn remote_refs(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> =
            git::git(&self.remote, &["for-each-ref", "--format=%(refname)"])
                .lines()
                .filter(|n| n.starts_with(prefix))
                .map(str::to_owned)
                .collect();
        names.sort();
        names
    }

    /// Creates `branch` in the remote at the tip of `at`.
    pub fn create_remote_branch(&self, branch: &str, at: &str) {
        git::git(
            &self.remote,
            &["branch", branch, &format!("refs/heads/{at}")],
        );
    }

    pub fn delete_remote_branch(&self, branch: &str) {
        git::git(&self.remote, &["branch", "-D", branch]);
    }

    /// Every commit object in the remote, reachable or not: a push that was later undone (its
    /// branch deleted) still leaves its commits here.
    pub fn remote_commit_objects(&self) -> usize {
        git::all_objects(&self.remote)
            .iter()
            .filter(|(_, kind)| kind == "commit")
            .count()
    }

    pub fn ledger(&self) -> SqliteLedger {
        SqliteLedger::open(self.root().join("state.sqlite")).unwrap()
    }

    pub fn state_exists(&self) -> bool {
        self.root().join("state.sqlite").exists()
    }

    /// Today's ledger entries.
    pub fn entries(&self) -> Vec<issueloop::ledger::LedgerEntry> {
        let day = issueloop::ledger::utc_day(jiff::Timestamp::now());
        self.ledger().entries(day).unwrap()
    }

    /// Event types of every journalled run, oldest run first.
    pub fn journal(&self) -> Vec<(String, Vec<String>, issueloop::ledger::RunStatus)> {
        let ledger = self.ledger();
        let mut runs = ledger.runs(1000).unwrap();
        runs.reverse();
        runs.into_iter()
            .map(|r| {
                let events = ledger.events(&r.run_id).unwrap();
                let types = events.iter().map(|e| e.kind.clone()).collect();
                (r.run_id.to_string(), types, r.status)
            })
            .collect()
    }

    /// [`World::journal`] while another process may still be creating the state file: `None`
    /// until it can be read.
    pub fn try_journal(&self) -> Option<Vec<(String, Vec<String>, issueloop::ledger::RunStatus)>> {
        if !self.state_exists() {
            return None;
        }
        let ledger = SqliteLedger::open(self.root().join("state.sqlite")).ok()?;
        let mut runs = ledger.runs(1000).ok()?;
        runs.reverse();
        runs.into_iter()
            .map(|r| {
                let events = ledger.events(&r.run_id).ok()?;
                let types = events.iter().map(|e| e.kind.clone()).collect();
                Some((r.run_id.to_string(), types, r.status))
            })
            .collect()
    }

    /// Worktrees left in the cache.
    pub fn worktrees_left(&self) -> Vec<PathBuf> {
        let dir = self.root().join("cache").join("worktrees");
        let mut out = Vec::new();
        walk_dirs(&dir, 0, &mut out);
        out
    }

    /// Claim lock files left on the local forge (`claims/*`).
    pub fn claim_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.forge_repo.join("claims")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub fn agent_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.agent_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Pids of agents that were told to sleep (`sleep: N`), in the order they started.
    pub fn agent_pids(&self) -> Vec<i32> {
        let path = format!("{}.pids", self.agent_log.display());
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }

    pub fn command(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.std_command());
        cmd.timeout(std::time::Duration::from_secs(120));
        cmd
    }

    /// The binary with the world's environment and `--config`, for processes a test spawns and
    /// signals itself.
    pub fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_issueloop"));
        cmd.current_dir(self.root())
            .env_remove("ISSUELOOP_CONFIG")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GH_TOKEN")
            .env_remove("ISSUELOOP_FAILPOINT")
            .env("RUST_LOG", "info")
            .env("E2E_AGENT_LOG", &self.agent_log)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    /// `issueloop run --once --json [extra…]`: the exit code and the parsed JSON report.
    pub fn run_once(&self, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
        let out: Output = self
            .command()
            .args(["--json", "run", "--once"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}):\nstdout: {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code(), json, stderr)
    }
}

fn walk_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    // cache/worktrees/<owner>/<name>/<worktree>
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if depth == 2 {
                out.push(p);
            } else {
                walk_dirs(&p, depth + 1, out);
            }
        }
    }
}

/// A bare repository holding the project, one commit on `main`.
pub fn seed_remote(path: &Path) {
    let author = issueloop::workspace::Identity {
        name: "acme".into(),
        email: "acme@example.invalid".into(),
    };
    issueloop::workspace::seed_bare_repository(path, PROJECT, &author, "app").unwrap();
}

/// The runs of a JSON report, by issue number.
pub fn run_of(report: &serde_json::Value, issue: u64) -> &serde_json::Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["issue"] == issue)
        .unwrap_or_else(|| panic!("issue {issue} not in {report:#}"))
}
pub mod hostile_git;
pub mod lease;
pub mod model_server;
pub mod snap;
pub mod state_github;
