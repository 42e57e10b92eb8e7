//! `issueloop policy check` through the real binary on real repositories: clean changes exit
//! 0, violations exit 1 with the fix, `--json`, `--base`, the configured repository's policy,
//! and usage errors exit 2. No configuration file is needed.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

use std::path::Path;

use assert_cmd::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A checkout with one commit, cloned from `https://github.com/acme/api.git` on paper.
fn checkout() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    git(dir, &["init", "-q", "-b", "main"]);
    write(dir, "src/lib.rs", "pub fn answer() -> u32 { 42 }\n");
    write(dir, ".github/workflows/ci.yml", "on: push\n");
    write(dir, ".gitignore", ".env\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "initial"]);
    git(
        dir,
        &["remote", "add", "origin", "https://github.com/acme/api.git"],
    );
    tmp
}

/// The binary, run from an empty directory (no `issueloop.toml` there).
fn issueloop(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("issueloop").unwrap();
    cmd.env_remove("ISSUELOOP_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
        .current_dir(cwd);
    cmd
}

#[test]
fn a_clean_change_passes_with_the_builtin_policy() {
    let repo = checkout();
    let cwd = tempfile::tempdir().unwrap();
    write(repo.path(), "src/lib.rs", "pub fn answer() -> u32 { 43 }\n");
    write(repo.path(), "src/new.rs", "// new\n");
    let out = issueloop(cwd.path())
        .args(["policy", "check", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  M src/lib.rs\n  A src/new.rs\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("policy ok: 2 changed files, no violations"),
        "{stdout}"
    );
}

#[test]
fn violations_exit_1_with_rule_path_and_fix_but_never_the_secret() {
    let repo = checkout();
    let cwd = tempfile::tempdir().unwrap();
    let token = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
    write(
        repo.path(),
        ".github/workflows/ci.yml",
        "on: pull_request\n",
    );
    write(
        repo.path(),
        "src/conf.py",
        &format!("TOKEN = \"{token}\"\n"),
    );
    write(repo.path(), ".env", "KEY=1\n");
    let out = issueloop(cwd.path())
        .args(["policy", "check", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for expected in [
        "policy violated: 2 changed files, 3 violations",
        "denied_path: `.env` matches denied `.env` (an ignored file",
        "denied_path: `.github/workflows/ci.yml` matches denied `.github/**`",
        "fix: allow it with `allow_denied = [\".github/**\"]` in [policy.repos.\"owner/name\"]",
        "secret: `src/conf.py` line 1: an added line matches the secret pattern `GitHub token`",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert!(!stdout.contains(token));
}

#[test]
fn json_output_lists_changes_and_violations() {
    let repo = checkout();
    let cwd = tempfile::tempdir().unwrap();
    git(repo.path(), &["mv", "src/lib.rs", ".github/lib.rs"]);
    let out = issueloop(cwd.path())
        .args(["policy", "check", "--json", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["policy"], "[policy]");
    assert_eq!(v["changed"][0]["path"], ".github/lib.rs");
    assert_eq!(v["changed"][0]["kind"], "renamed");
    assert_eq!(v["changed"][0]["from"], "src/lib.rs");
    assert_eq!(v["violations"][0]["rule"], "denied_path");
    assert_eq!(v["violations"][0]["path"], ".github/lib.rs");
    assert!(
        v["violations"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("allow_denied")
    );
}

#[test]
fn base_judges_committed_changes_too() {
    let repo = checkout();
    let cwd = tempfile::tempdir().unwrap();
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    write(repo.path(), ".github/workflows/release.yml", "on: push\n");
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "sneak a workflow in"]);
    let run = |extra: &[&str]| {
        issueloop(cwd.path())
            .args(["policy", "check", "--repo"])
            .arg(repo.path())
            .args(extra)
            .output()
            .unwrap()
    };
    assert_eq!(run(&[]).status.code(), Some(0), "nothing uncommitted");
    let out = run(&["--base", &first]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".github/workflows/release.yml"));
    let out = run(&["--base", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`no-such-branch`"));
}

#[test]
fn the_configured_repository_policy_applies_to_its_checkout() {
    let repo = checkout();
    let cwd = tempfile::tempdir().unwrap();
    write(
        cwd.path(),
        "issueloop.toml",
        "repos = [\"acme/api\"]\n\n[policy.repos.\"acme/api\"]\n\
         allow_denied = [\".github/**\"]\nallowed_paths = [\"src/**\", \".github/**\"]\n",
    );
    write(
        repo.path(),
        ".github/workflows/ci.yml",
        "on: pull_request\n",
    );
    write(repo.path(), "docs/notes.md", "notes\n");
    let out = issueloop(cwd.path())
        .args(["policy", "check", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("judged by the policy of [policy.repos.\"acme/api\"]"),
        "{stdout}"
    );
    assert!(!stdout.contains("denied_path"), "{stdout}");
    assert!(
        stdout.contains("not_allowed_path: `docs/notes.md` is outside the allowed paths"),
        "{stdout}"
    );
    let out = issueloop(cwd.path())
        .args(["policy", "check", "--as", "acme/other", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`acme/other` is not a repository"));
}

#[test]
fn a_directory_outside_git_is_a_usage_error() {
    let cwd = tempfile::tempdir().unwrap();
    let out = issueloop(cwd.path())
        .args(["policy", "check", "--repo"])
        .arg(cwd.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a git working tree"));
}
