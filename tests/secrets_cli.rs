//! `issueloop config check` through the real binary never shows a secret: generated secrets of
//! every shape in every key of `docs/configuration.md`, in the text and the `--json` output, and
//! the values of the secret environment variables wherever a configuration echoes them.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, TestRunner};

fn issueloop(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("issueloop").unwrap();
    cmd.current_dir(dir)
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS");
    cmd
}

/// Every key the reference documents, as a dotted TOML path with placeholders filled in.
fn documented_keys() -> Vec<String> {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let fill = |s: &str| {
        s.replace("<backend>", "claude_code")
            .replace("\"<label>\"", "\"loop:budget-large\"")
            .replace("<stage>", "execute")
            .replace("owner/name", "o/r")
    };
    let mut keys = Vec::new();
    let mut section: Option<String> = None;
    for line in doc.lines() {
        if let Some(head) = line.strip_prefix("### ") {
            section = if head == "top level" {
                Some(String::new())
            } else {
                head.strip_prefix("`[")
                    .and_then(|h| h.strip_suffix("]`"))
                    .map(fill)
            };
            continue;
        }
        let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) else {
            continue;
        };
        let first_cell = format!("`{}", row.split(" |").next().unwrap_or_default());
        let mut prefix = String::new();
        for (i, name) in first_cell.split('`').skip(1).step_by(2).enumerate() {
            let name = fill(name);
            if name.starts_with("loop:budget") {
                continue;
            }
            let full = if i == 0 {
                if let Some((p, _)) = name.rsplit_once('.') {
                    prefix = format!("{p}.");
                }
                name
            } else {
                format!("{prefix}{name}")
            };
            keys.push(if section.is_empty() {
                full
            } else {
                format!("{section}.{full}")
            });
        }
    }
    keys
}

/// A TOML document holding `value` at the dotted `key` (quoted segments kept whole).
fn document(key: &str, value: &str) -> String {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in key.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '.' if !quoted => segments.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    segments.push(current);
    let (last, tables) = segments.split_last().unwrap();
    let repos = if key == "repos" {
        ""
    } else {
        "repos = [\"o/r\"]\n"
    };
    if tables.is_empty() {
        format!("{repos}{last} = {value}\n")
    } else {
        format!("{repos}[{}]\n{last} = {value}\n", tables.join("."))
    }
}

/// `config check` in text and in `--json`: everything it printed, and the exit codes.
fn check(dir: &Path, toml: &str, env: &[(&str, &str)]) -> (String, Vec<Option<i32>>) {
    std::fs::write(dir.join("issueloop.toml"), toml).unwrap();
    let mut all = String::new();
    let mut codes = Vec::new();
    for json in [false, true] {
        let mut cmd = issueloop(dir);
        if json {
            cmd.arg("--json");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(["config", "check"]).output().unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        all.push_str(&String::from_utf8_lossy(&out.stderr));
        codes.push(out.status.code());
    }
    (all, codes)
}

#[test]
fn a_secret_in_any_documented_key_is_refused_and_never_shown() {
    let keys = documented_keys();
    assert!(keys.len() > 50, "{keys:?}");
    let dir = tempfile::tempdir().unwrap();
    let prefixes = [
        "ghp_",
        "github_pat_11A",
        "ghs_",
        "sk-ant-api03-",
        "sk-proj-",
        "sk-",
        "xoxb-1234-",
    ];
    let mut runner = TestRunner::new(Config {
        cases: 1,
        ..Config::default()
    });
    let tail = "[A-Za-z]{8,20}[0-9][A-Za-z0-9]{12,30}";
    for (i, key) in keys.iter().enumerate() {
        let generated = tail
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_else(|_| "AbCdEfGh0123456789abcdef".into());
        let secret = format!("{}{generated}", prefixes[i % prefixes.len()]);
        let value = if i % 2 == 0 {
            format!("\"{secret}\"")
        } else {
            format!("[\"{secret}\"]")
        };
        let (shown, codes) = check(dir.path(), &document(key, &value), &[]);
        assert_eq!(codes, [Some(2), Some(2)], "{key}: {shown}");
        let visible = &secret[secret.len() - 16..];
        assert!(!shown.contains(visible), "{key} = {value} shown:\n{shown}");
        assert!(shown.contains("a secret-looking value"), "{key}: {shown}");
    }
}

#[test]
fn values_of_secret_variables_are_treated_as_secrets_whatever_their_shape() {
    let dir = tempfile::tempdir().unwrap();
    // Not secret-shaped: only the environment says it is the model key.
    let value = "plainvalue-of-a-model-key";
    let toml = format!("repos = [\"o/r\"]\n[backends.claude_code]\nmodel = \"{value}\"\n");
    let (shown, codes) = check(dir.path(), &toml, &[("ANTHROPIC_API_KEY", value)]);
    assert_eq!(codes, [Some(2), Some(2)], "{shown}");
    assert!(!shown.contains(value), "{shown}");
    assert!(shown.contains("a secret-looking value"), "{shown}");
    // Without the variable the same value is ordinary text, resolved and printed back.
    let (shown, codes) = check(dir.path(), &toml, &[]);
    assert_eq!(codes, [Some(0), Some(0)], "{shown}");
    assert!(shown.contains(value), "{shown}");
}
