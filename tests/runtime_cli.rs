//! `issueloop runtime parse`, `doctor` and `setup --runtime codex` through the real binary.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const TOKEN: &str = "ghp_0123456789abcdefghijABCDEFGHIJklmnop";

fn issueloop(home: &Path, path: &str) -> Command {
    let mut cmd = Command::cargo_bin("issueloop").unwrap();
    cmd.env_clear().env("PATH", path).env("HOME", home);
    cmd
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/runtime/tests/fixtures/harness")
        .join(rel)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---- runtime parse ----

#[test]
fn parse_explains_a_failed_claude_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args(["runtime", "parse", "--harness", "claude"])
        .arg(fixture("claude/stream_error_max_turns.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "harness        claude_code",
        "status         failed",
        "error          Reached maximum number of turns (1)",
        "cost           $0.0913 (reported by the harness)",
        "usage          10 input, 4 output, 17254 cache read, 3556 cache write tokens",
        "lines          4 read, 0 skipped (0 over the line limit), 0 unknown events",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn parse_prices_codex_tokens_as_json_and_reads_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let stream = std::fs::read(fixture("codex/exec_success.jsonl")).unwrap();
    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args([
            "runtime",
            "parse",
            "--harness",
            "codex",
            "--model",
            "gpt-5",
            "--json",
            "-",
        ])
        .write_stdin(stream)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["harness"], "codex");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["cost_source"], "priced");
    // $0.00466975 at the table's prices, each kind of token rounded up to the micro-dollar.
    assert_eq!(v["cost_usd"], 0.00467);
    assert_eq!(v["usage"]["cache_read_tokens"], 24448);
    assert_eq!(v["skipped_lines"], 0);
    assert!(v["final_message"].as_str().unwrap().contains("README.md"));
}

#[test]
fn parse_counts_skipped_lines_and_uses_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let mut stream = b"npm WARN deprecated something\n".to_vec();
    stream.extend(std::fs::read(fixture("pi/pion_success.jsonl")).unwrap());
    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args([
            "runtime",
            "parse",
            "--harness",
            "pi",
            "--json",
            "--exit-code",
            "143",
        ])
        .write_stdin(stream.clone())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["skipped_lines"], 1);
    assert_eq!(v["exit_code"], 143);
    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args(["runtime", "parse", "--harness", "pi"])
        .write_stdin(stream)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 skipped"));
}

#[test]
fn parse_refuses_unknown_harnesses_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args(["runtime", "parse", "--harness", "cursor", "x.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown harness `cursor`"),
        "{}",
        stderr(&out)
    );
    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args(["runtime", "parse", "--harness", "codex", "missing.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read `missing.jsonl`"),
        "{}",
        stderr(&out)
    );
}

// ---- doctor ----

fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A configuration (claude by default, codex for `execute`) and a `bin` folder for programs.
fn doctor_setup(forge: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let config = tmp.path().join("issueloop.toml");
    std::fs::write(
        &config,
        format!(
            "repos = [\"acme/api\"]\n[forge]\nkind = \"{forge}\"\n[runtime_profile.stages]\nexecute = \"codex\"\n[backends.codex]\nmodel = \"gpt-5\"\n[state]\npath = \"state/issueloop.sqlite\"\n"
        ),
    )
    .unwrap();
    (tmp, bin, config)
}

#[test]
fn doctor_shows_each_stage_with_its_program_and_version() {
    let (tmp, bin, config) = doctor_setup("local");
    script(&bin, "claude", "echo '2.1.7 (Claude Code)'");
    script(&bin, "codex", "echo 'codex-cli 0.66.0'");
    let out = issueloop(tmp.path(), bin.to_str().unwrap())
        .args(["doctor", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stages"]["execute"]["backend"], "codex");
    assert_eq!(v["stages"]["execute"]["binary"], "codex");
    assert_eq!(v["stages"]["execute"]["found"], true);
    assert_eq!(v["stages"]["execute"]["version"], "codex-cli 0.66.0");
    assert_eq!(v["stages"]["interview"]["backend"], "claude_code");
    assert_eq!(v["stages"]["reflect"]["version"], "2.1.7 (Claude Code)");
    assert_eq!(v["problems"], serde_json::json!([]));

    let out = issueloop(tmp.path(), bin.to_str().unwrap())
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("execute      codex"), "{text}");
    assert!(text.contains("codex-cli 0.66.0"), "{text}");
    assert!(text.contains("ready:"), "{text}");
}

#[test]
fn doctor_exits_1_when_a_configured_backend_is_missing() {
    let (tmp, bin, config) = doctor_setup("local");
    script(&bin, "claude", "echo '2.1.7 (Claude Code)'");
    let out = issueloop(tmp.path(), bin.to_str().unwrap())
        .args(["doctor", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stages"]["execute"]["found"], false);
    assert_eq!(v["stages"]["execute"]["version"], serde_json::Value::Null);
    assert_eq!(v["problems"][0]["kind"], "backend_missing");
    let message = v["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains("`codex`"), "{message}");
    let out = issueloop(tmp.path(), bin.to_str().unwrap())
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("refuse to start"), "{}", stdout(&out));
}

#[test]
fn doctor_reports_a_missing_token_and_never_prints_one() {
    let (tmp, bin, config) = doctor_setup("github");
    script(&bin, "claude", "echo 2.1.7");
    script(&bin, "codex", "echo codex-cli 0.66.0");
    let out = issueloop(tmp.path(), bin.to_str().unwrap())
        .args(["doctor", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"][0]["kind"], "github_token");

    // A script that would print its environment as its "version": the token must not be there.
    script(&bin, "codex", "echo \"codex $GITHUB_TOKEN\"");
    let out = issueloop(tmp.path(), bin.to_str().unwrap())
        .env("GITHUB_TOKEN", TOKEN)
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!stdout(&out).contains(TOKEN));
    assert!(!stderr(&out).contains(TOKEN));
}

// ---- setup --runtime codex ----

const USER_CONFIG: &str = r#"# My Codex settings
model = "o3"   # the fast one
approval_policy = "on-request"

[profiles.deep]
model = "gpt-5"
model_reasoning_effort = "high" # slow but careful

[profiles.deep.sandbox_workspace_write]
network_access = true
writable_roots = ["/tmp/scratch"]

[mcp_servers.docs]
command = "docs-mcp"
args = ["--port", "7777"]
"#;

#[test]
fn setup_adds_the_profile_and_a_rerun_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let codex = tmp.path().join("codex.toml");
    std::fs::write(&codex, USER_CONFIG).unwrap();
    let run = || {
        issueloop(tmp.path(), "/usr/bin:/bin")
            .current_dir(tmp.path())
            .args(["setup", "--runtime", "codex", "--codex-config"])
            .arg(&codex)
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added `[profiles.issueloop-worker]`"),
        "{}",
        stdout(&out)
    );
    let first = std::fs::read_to_string(&codex).unwrap();
    assert!(issueloop_runtime::has_codex_profile(&codex, "issueloop-worker").unwrap());
    assert!(first.contains(
        "[profiles.issueloop-worker]\napproval_policy = \"never\"\nsandbox_mode = \"workspace-write\"\n"
    ));
    // Every line of the user's file is still there, in order, byte for byte.
    let managed_start = first.find("\n# Managed by issueloop").unwrap();
    let managed_end = first[managed_start..]
        .find("\n\n")
        .map(|i| managed_start + i + 1)
        .unwrap();
    let without = format!("{}{}", &first[..managed_start], &first[managed_end..]);
    assert_eq!(without, USER_CONFIG);

    for _ in 0..2 {
        let out = run();
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("nothing changed"), "{}", stdout(&out));
        assert_eq!(
            std::fs::read_to_string(&codex).unwrap(),
            first,
            "rerun changed the file"
        );
    }
}

#[test]
fn setup_refuses_a_scalar_profiles_and_invalid_toml_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let codex = tmp.path().join("config.toml");
    for text in [
        "model = \"o3\"\nprofiles = \"x\"\n",
        "model = \"o3\n[profiles\n",
    ] {
        std::fs::write(&codex, text).unwrap();
        let out = issueloop(tmp.path(), "/usr/bin:/bin")
            .current_dir(tmp.path())
            .args(["setup", "--runtime", "codex", "--codex-config"])
            .arg(&codex)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        assert!(stderr(&out).contains("left untouched"), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&codex).unwrap(), text);
        let leftovers = std::fs::read_dir(tmp.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }
}

#[test]
fn setup_uses_the_configured_profile_name_and_the_default_location() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("issueloop.toml"),
        "repos = [\"acme/api\"]\n[runtime_profile]\nbackend_profile = \"review\"\n",
    )
    .unwrap();
    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args(["setup", "--runtime", "codex_cli", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"], "issueloop-review");
    assert_eq!(v["changed"], true);
    let written = std::fs::read_to_string(tmp.path().join(".codex/config.toml")).unwrap();
    assert!(written.contains("[profiles.issueloop-review]"), "{written}");

    let out = issueloop(tmp.path(), "/usr/bin:/bin")
        .current_dir(tmp.path())
        .args(["setup", "--runtime", "claude"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing to set up"),
        "{}",
        stderr(&out)
    );
}
