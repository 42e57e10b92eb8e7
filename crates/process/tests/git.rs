//! The git launcher's environment, seen by git itself, while issueloop's own environment holds
//! credentials and variables that would point git elsewhere. Its own test binary: it sets this
//! process's environment, which no other test may read meanwhile.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_methods,
    reason = "a test reads its own test settings from the environment"
)]

use std::path::Path;
use std::time::Duration;

const PLANTED: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "ghp_plantedsecret0000000000000000000000"),
    ("GH_TOKEN", "ghp_plantedsecret0000000000000000000000"),
    ("ANTHROPIC_API_KEY", "sk-ant-plantedsecret"),
    ("ISSUELOOP_DATABASE_URL", "postgres://u:plantedsecret@db/x"),
    ("GIT_DIR", "/nonexistent/elsewhere.git"),
    ("GIT_WORK_TREE", "/nonexistent/elsewhere"),
    ("GIT_INDEX_FILE", "/nonexistent/index"),
    ("GIT_CONFIG_COUNT", "1"),
    ("GIT_CONFIG_KEY_0", "user.name"),
    ("GIT_CONFIG_VALUE_0", "planted"),
    ("GIT_SSH_COMMAND", "/nonexistent/prog"),
    ("HOME", "/nonexistent/home"),
];

fn git_in(dir: &Path, args: &[&str]) -> issueloop_process::Output {
    let path = std::env::var("PATH").ok();
    issueloop_process::git(dir, path.as_deref())
        .args(args)
        .timeout(Duration::from_secs(30))
        .output_blocking()
        .expect("git starts")
}

#[test]
fn no_credential_or_inherited_git_variable_reaches_git() {
    // SAFETY: the only test of this binary, before it starts any thread or child.
    for (k, v) in PLANTED {
        unsafe { std::env::set_var(k, v) };
    }
    let dir = tempfile::tempdir().unwrap();
    let init = git_in(dir.path(), &["init", "-q", "."]);
    assert!(init.success(), "{init:?}");
    // Git's own view of its environment: an alias runs `env` with exactly what git got.
    let out = git_in(dir.path(), &["-c", "alias.showenv=!env", "showenv"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout_complete());
    let seen = String::from_utf8_lossy(&out.stdout);
    for (name, _) in PLANTED {
        assert!(
            !seen.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} reached git:\n{seen}"
        );
    }
    assert!(!seen.contains("plantedsecret"), "{seen}");
    for fixed in [
        "GIT_CONFIG_NOSYSTEM=1",
        "GIT_CONFIG_GLOBAL=/dev/null",
        "LC_ALL=C",
    ] {
        assert!(seen.lines().any(|l| l == fixed), "{fixed} missing:\n{seen}");
    }
    // The repository is the one in `dir`, not the inherited GIT_DIR's.
    let gitdir = git_in(dir.path(), &["rev-parse", "--absolute-git-dir"]);
    assert!(gitdir.success(), "{gitdir:?}");
    let expected = dir.path().canonicalize().unwrap().join(".git");
    assert_eq!(
        Path::new(String::from_utf8_lossy(&gitdir.stdout).trim()),
        expected
    );
    // No inherited configuration either.
    let name = git_in(dir.path(), &["config", "user.name"]);
    assert!(!name.success() && name.stdout.is_empty(), "{name:?}");
}
