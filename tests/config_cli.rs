//! `issueloop config check` through the real binary: the example resolves, every invalid
//! fixture exits 2 naming the key and line, file-level problems are one line, never a panic.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn issueloop() -> Command {
    let mut cmd = Command::cargo_bin("issueloop").unwrap();
    cmd.env_remove("ISSUELOOP_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS");
    cmd
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn example_config_resolves_with_the_stage_table() {
    let out = issueloop()
        .args(["config", "check", "--config"])
        .arg(root().join("examples/issueloop.toml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    for line in [
        "interview    claude_code    runtime_profile.default",
        "execute      codex          runtime_profile.stages",
        "evaluate     claude_code    runtime_profile.stages",
        "reflect      claude_code    runtime_profile.default",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert!(
        stdout.contains("policy files builtin:policies/default.toml"),
        "{stdout}"
    );
}

#[test]
fn example_config_as_json() {
    let out = issueloop()
        .args(["config", "check", "--json", "--config"])
        .arg(root().join("examples/issueloop.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stages"]["execute"]["backend"], "codex");
    assert_eq!(v["stages"]["evaluate"]["backend"], "claude_code");
    assert_eq!(v["budget"]["daily_cap_usd"], 10.0);
    assert_eq!(v["budget"]["labels"]["loop:budget-xl"]["cost_usd"], 10.0);
    assert_eq!(v["repos"][0], "acme/api");
}

#[test]
fn every_invalid_fixture_exits_2_with_key_and_line() {
    let dir = root().join("crates/config/tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let header = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# expect-{name}:")))
                .map(|v| v.trim().to_owned())
        };
        let out = issueloop()
            .args(["config", "check", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", f.display());
        assert!(!stderr.contains("panicked"), "{}: {stderr}", f.display());
        if let Some(key) = header("key").filter(|k| !k.is_empty()) {
            assert!(
                stderr.contains(&format!("`{key}`")),
                "{}: key `{key}` not in {stderr}",
                f.display()
            );
        }
        if let Some(line) = header("line") {
            assert!(
                stderr.contains(&format!(":{line}:")),
                "{}: line {line} not in {stderr}",
                f.display()
            );
        }
        if let Some(hint) = header("hint") {
            assert!(
                stderr.contains(&hint),
                "{}: hint `{hint}` not in {stderr}",
                f.display()
            );
        }
    }
}

#[test]
fn json_errors_carry_key_line_and_hint() {
    let f = root().join("crates/config/tests/fixtures/five_defects.toml");
    let out = issueloop()
        .args(["config", "check", "--json", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = v["error"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5, "{v:#}");
    assert_eq!(errors[0]["key"], "runtime_profle");
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["hint"], "did you mean `runtime_profile`?");
}

#[test]
fn file_level_problems_are_one_line_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let cases: [(&Path, &str); 4] = [
        (&dir.path().join("missing.toml"), "not found"),
        (dir.path(), "is a directory"),
        (&empty, "is empty"),
        (&binary, "not valid UTF-8"),
    ];
    for (path, what) in cases {
        let out = issueloop()
            .args(["config", "check", "--config"])
            .arg(path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "one error line and one hint line: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(what),
            "{stderr}"
        );
        assert!(lines[1].trim_start().starts_with("hint: "), "{stderr}");
    }
}

#[test]
fn config_path_from_the_environment() {
    let out = issueloop()
        .env("ISSUELOOP_CONFIG", root().join("examples/issueloop.toml"))
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = issueloop().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
