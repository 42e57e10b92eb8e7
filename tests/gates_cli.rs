//! `issueloop gates prepare` and `issueloop gates run` through the real binary: the JSON shapes
//! and exit codes, explicit gates and policy files from the configuration, and one run with real
//! `uv` that leaves the checkout untouched.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// A temporary checkout (a git repository) plus an empty git configuration outside it.
struct Checkout {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Checkout {
    fn new(files: &[(&str, &str)]) -> Checkout {
        let c = Checkout {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        std::fs::write(c.git_config(), "").unwrap();
        for (path, text) in files {
            c.write(path, text);
        }
        c.git(&["init", "-q", "-b", "main"]);
        c.git(&["add", "-A"]);
        c.git(&["commit", "-q", "--allow-empty", "-m", "initial"]);
        c
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git_config(&self) -> PathBuf {
        self.home.path().join("gitconfig")
    }

    fn write(&self, path: &str, text: &str) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", self.git_config())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `issueloop gates …` run from a folder without a configuration file.
    fn issueloop(&self, args: &[&str]) -> Output {
        let mut cmd = Command::cargo_bin("issueloop").unwrap();
        cmd.env_remove("ISSUELOOP_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("GITHUB_ACTIONS")
            .env("GIT_CONFIG_GLOBAL", self.git_config())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("UV_CACHE_DIR", uv_cache())
            .current_dir(self.home.path())
            .arg("gates")
            .args(args);
        cmd.output().unwrap()
    }

    fn repo_arg(&self) -> String {
        self.path().display().to_string()
    }
}

fn uv_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uv-cache")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const GROUP_PYPROJECT: &str = "[project]\nname = \"svc\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = []\n\n[dependency-groups]\ndev = [\"pytest\"]\n";

fn group_checkout() -> Checkout {
    Checkout::new(&[
        ("pyproject.toml", GROUP_PYPROJECT),
        ("uv.lock", "version = 1\n"),
    ])
}

#[test]
fn prepare_prints_the_prepared_argv_and_the_allowlist_decision() {
    let c = group_checkout();
    let out = c.issueloop(&[
        "prepare",
        "--repo",
        &c.repo_arg(),
        "--json",
        "--",
        "ruff",
        "check",
        ".",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&out),
        serde_json::json!({
            "argv": ["uv", "run", "--locked", "--group", "dev", "ruff", "check", "."],
            "allowed": true,
            "reason": null,
        })
    );
}

#[test]
fn prepare_reports_a_rejection_and_still_exits_0() {
    let c = group_checkout();
    let out = c.issueloop(&[
        "prepare",
        "--repo",
        &c.repo_arg(),
        "--json",
        "--",
        "uv",
        "pip",
        "install",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["argv"], serde_json::json!(["uv", "pip", "install", "x"]));
    assert_eq!(v["allowed"], false);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("`uv pip install` is not allowed"),
        "{reason}"
    );
    assert!(reason.contains("builtin:policies/default.toml"), "{reason}");
}

#[test]
fn prepare_fails_closed_with_exit_1() {
    let c = group_checkout();
    let out = c.issueloop(&[
        "prepare",
        "--repo",
        &c.repo_arg(),
        "--json",
        "--",
        "uv",
        "run",
        "--no-dev",
        "pytest",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "excludes_dev_set");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("remove `--no-dev`"), "{message}");
}

#[test]
fn prepare_names_a_malformed_pyproject() {
    let c = Checkout::new(&[(
        "pyproject.toml",
        "[project]\nname = \"x\"\n[dependency-groups\n",
    )]);
    let out = c.issueloop(&["prepare", "--repo", &c.repo_arg(), "--json", "--", "pytest"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "malformed_file");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("pyproject.toml` line 3"), "{message}");
}

#[test]
fn prepare_text_output() {
    let c = group_checkout();
    let out = c.issueloop(&[
        "prepare",
        "--repo",
        &c.repo_arg(),
        "--",
        "pytest",
        "-k",
        "not slow",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "uv run --locked --group dev pytest -k 'not slow'\nallowed\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    let c = group_checkout();
    let missing = c.path().join("nope");
    let out = c.issueloop(&[
        "prepare",
        "--repo",
        &missing.display().to_string(),
        "--",
        "pytest",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = c.issueloop(&["prepare", "--repo", &c.repo_arg()]);
    assert_eq!(out.status.code(), Some(2), "the argv is required");
    let out = c.issueloop(&[
        "run",
        "--repo",
        &c.repo_arg(),
        "--changed",
        "../elsewhere.py",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = c.issueloop(&["run", "--repo", &c.repo_arg(), "--changed", "absent.py"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`absent.py` does not exist"));
}

/// A configuration naming the repository, with explicit gates and a policy file allowing `sh`.
fn write_config(c: &Checkout, commands: &str) -> PathBuf {
    let dir = c.home.path();
    std::fs::write(dir.join("team.toml"), "[[gates.allow]]\nprogram = \"sh\"\n").unwrap();
    let config = dir.join("issueloop.toml");
    std::fs::write(
        &config,
        format!(
            "repos = [\"acme/api\"]\n\n[policy]\nfiles = [\"team.toml\"]\n\n[gates.repos.\"acme/api\"]\ncommands = {commands}\n"
        ),
    )
    .unwrap();
    config
}

#[test]
fn run_uses_the_configured_repository_gates_and_policy() {
    let c = Checkout::new(&[("README.md", "# api\n")]);
    let config = write_config(
        &c,
        r#"[["sh", "-c", "echo checked"], ["sh", "-c", "echo broken >&2; exit 4"], ["curl", "https://example.com"]]"#,
    );
    let config = config.display().to_string();
    let out = c.issueloop(&[
        "run",
        "--repo",
        &c.repo_arg(),
        "--repo-name",
        "acme/api",
        "--config",
        &config,
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["repo_name"], "acme/api");
    let gates = v["gates"].as_array().unwrap();
    let statuses: Vec<&str> = gates
        .iter()
        .map(|g| g["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["passed", "failed", "rejected"]);
    assert_eq!(gates[0]["origin"], "explicit");
    assert_eq!(gates[0]["output"], "checked\n");
    assert_eq!(gates[1]["exit_code"], 4);
    assert!(gates[1]["output"].as_str().unwrap().contains("broken"));
    assert!(
        gates[2]["reason"]
            .as_str()
            .unwrap()
            .contains("program `curl` is not in the gate allowlist")
    );
    for key in [
        "argv",
        "command",
        "duration_ms",
        "output_bytes",
        "left_files",
    ] {
        assert!(gates[0].get(key).is_some(), "missing `{key}`");
    }
    assert_eq!(v["leftover_check"]["status"], "checked");

    // A name the configuration does not list is a usage error.
    let out = c.issueloop(&[
        "run",
        "--repo",
        &c.repo_arg(),
        "--repo-name",
        "acme/web",
        "--config",
        &config,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_reports_files_a_gate_left_behind() {
    let c = Checkout::new(&[("README.md", "# api\n")]);
    let config = write_config(&c, r#"[["sh", "-c", "echo x > stray.txt"]]"#);
    let out = c.issueloop(&[
        "run",
        "--repo",
        &c.repo_arg(),
        "--repo-name",
        "acme/api",
        "--config",
        &config.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("left behind: stray.txt"), "{stdout}");
    assert!(stdout.trim_end().ends_with("FAILED"), "{stdout}");
}

#[test]
fn run_with_real_uv_passes_and_leaves_the_checkout_untouched() {
    let c = Checkout::new(&[
        ("pyproject.toml", GROUP_PYPROJECT),
        ("svc.py", "def ping():\n    return 'pong'\n"),
        (
            "tests/test_svc.py",
            "def test_ping():\n    assert 1 + 1 == 2\n",
        ),
        ("docs/usage.md", "# Usage\n"),
    ]);
    let lock = std::process::Command::new("uv")
        .args(["lock", "--quiet"])
        .current_dir(c.path())
        .env("UV_CACHE_DIR", uv_cache())
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    assert!(
        lock.status.success(),
        "{}",
        String::from_utf8_lossy(&lock.stderr)
    );
    c.git(&["add", "-A"]);
    c.git(&["commit", "-q", "-m", "lock"]);
    let lock_before = std::fs::read(c.path().join("uv.lock")).unwrap();

    let out = c.issueloop(&[
        "run",
        "--repo",
        &c.repo_arg(),
        "--changed",
        "svc.py",
        "docs/usage.md",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json(&out);
    assert_eq!(v["ok"], true);
    let commands: Vec<&str> = v["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "uv run --locked --group dev pytest -p no:cacheprovider",
            "builtin:utf8-check docs/usage.md"
        ]
    );
    assert_eq!(
        std::fs::read(c.path().join("uv.lock")).unwrap(),
        lock_before
    );
    assert_eq!(
        c.git(&["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
}
