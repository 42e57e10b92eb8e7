//! How the binary reports an error, run the way a user runs it (from a checkout, relative
//! paths): `error:` with what failed, a `Caused by:` line per cause, `hint:` lines, the exit
//! code, `--json` carrying the same chain as lists, and no secret anywhere.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::path::Path;

use assert_cmd::Command;

fn issueloop(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("issueloop").unwrap();
    cmd.current_dir(dir)
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The stderr lines of an error, checked for the shape: one `error:` line first, then only
/// `  Caused by:` lines, then only `hint:` lines.
#[track_caller]
fn shape(text: &str) -> (String, Vec<String>, Vec<String>) {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let error = first
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("no `error:` first:\n{text}"))
        .to_owned();
    let (mut causes, mut hints) = (Vec::new(), Vec::new());
    for line in lines {
        if let Some(c) = line.strip_prefix("  Caused by: ") {
            assert!(hints.is_empty(), "a cause after a hint:\n{text}");
            causes.push(c.to_owned());
        } else if let Some(h) = line.strip_prefix("hint: ") {
            hints.push(h.to_owned());
        } else {
            panic!("a line that is neither a cause nor a hint: `{line}`\n{text}");
        }
    }
    (error, causes, hints)
}

#[test]
fn a_missing_config_file_says_so_with_a_hint_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = issueloop(dir.path())
        .args(["config", "check", "--config", "nope/issueloop.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    let (error, causes, hints) = shape(&text);
    assert!(
        error.contains("configuration file `") && error.contains("nope/issueloop.toml` not found"),
        "{text}"
    );
    assert!(causes.is_empty(), "{text}");
    assert_eq!(hints.len(), 1, "{text}");

    let out = issueloop(dir.path())
        .args([
            "config",
            "check",
            "--json",
            "--config",
            "nope/issueloop.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "config");
    assert_eq!(v["error"]["message"].as_str().unwrap(), error);
    assert_eq!(v["error"]["causes"], serde_json::json!([]));
    assert_eq!(v["error"]["hints"], serde_json::json!(hints));
    assert_eq!(v["error"]["errors"][0]["hint"], serde_json::json!(hints[0]));
}

#[test]
fn an_unreadable_config_path_names_the_cause_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    // A path through a file: reading it fails with "Not a directory", not "not found".
    let out = issueloop(dir.path())
        .args(["config", "check", "--config", "a-file/issueloop.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    let (error, causes, _) = shape(&text);
    assert!(
        error.starts_with("cannot read `") && error.ends_with("a-file/issueloop.toml`"),
        "{text}"
    );
    assert_eq!(causes.len(), 1, "{text}");
    assert!(causes[0].contains("Not a directory"), "{text}");

    let out = issueloop(dir.path())
        .args([
            "--json",
            "config",
            "check",
            "--config",
            "a-file/issueloop.toml",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["message"].as_str().unwrap(), error);
    assert_eq!(v["error"]["causes"], serde_json::json!(causes));
}

#[test]
fn a_state_file_from_a_newer_version_is_refused_with_a_hint_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("issueloop.toml"),
        "repos = [\"acme/api\"]\n\n[state]\npath = \"state/ledger.sqlite\"\n",
    )
    .unwrap();
    let db = dir.path().join("state/ledger.sqlite");
    drop(issueloop_ledger::SqliteLedger::open(&db).unwrap());
    {
        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap();
        raw.pragma_update(None, "user_version", issueloop_ledger::SCHEMA_VERSION + 1)
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for args in [&["ledger", "show"][..], &["runs", "list"][..]] {
        let out = issueloop(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let text = stderr(&out);
        let (error, _, hints) = shape(&text);
        assert!(
            error.contains("ledger.sqlite` was written by a newer issueloop"),
            "{text}"
        );
        assert!(error.contains("left untouched"), "{text}");
        assert_eq!(hints, ["upgrade issueloop to use it"], "{text}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn a_rejected_github_token_is_reported_with_what_to_do_and_never_shown() {
    let g = support::github::GithubWorld::new(support::Knobs::default());
    let wrong = "ghp_WrongWrongWrongWrongWrongWrongWrong12";
    let out = g
        .world
        .command()
        .env("GITHUB_TOKEN", wrong)
        .args(["--json", "run", "--once"])
        .output()
        .unwrap();
    let printed = support::github::printed(&out);
    assert!(!printed.contains(wrong), "the token is shown:\n{printed}");
    assert_eq!(out.status.code(), Some(1), "{printed}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("GitHub token invalid or expired"),
        "{printed}"
    );
    // The hint travels with the message wherever a forge error is kept as text.
    assert!(
        errors.contains("set `GITHUB_TOKEN` (or `GH_TOKEN`) to a valid token"),
        "{printed}"
    );
}
