//! A secret pasted into any key of `docs/configuration.md` is refused and never shown: not in the
//! error text, its `Debug` form, nor the JSON the command line prints.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};

use issueloop_config::{LoadError, load_str};
use proptest::prelude::*;

/// Every key the reference documents, as a TOML dotted path with placeholders filled in.
fn documented_keys() -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .expect("docs/configuration.md is readable");
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
        // A cell may name several keys: "`repos.\"o/r\".max_changed_files`, `max_file_bytes`".
        let names: Vec<&str> = first_cell.split('`').skip(1).step_by(2).collect();
        let mut prefix = String::new();
        for (i, name) in names.iter().enumerate() {
            let name = fill(name);
            if name == "key" || name.starts_with("loop:budget") {
                continue; // table headers, and the defaults table of budget labels
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

fn fill(s: &str) -> String {
    s.replace("<backend>", "claude_code")
        .replace("\"<label>\"", "\"loop:budget-large\"")
        .replace("<stage>", "execute")
        .replace("owner/name", "o/r")
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
    let (last, tables) = segments.split_last().expect("a key has a segment");
    let repos = if key == "repos" {
        String::new()
    } else {
        "repos = [\"o/r\"]\n".to_owned()
    };
    if tables.is_empty() {
        format!("{repos}{last} = {value}\n")
    } else {
        format!("{repos}[{}]\n{last} = {value}\n", tables.join("."))
    }
}

fn secret() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_11A",
        "sk-ant-api03-",
        "sk-proj-",
        "sk-",
        "xoxb-1234-",
    ]);
    (prefix, "[A-Za-z]{10,30}[0-9][A-Za-z0-9]{9,30}").prop_map(|(p, t)| format!("{p}{t}"))
}

fn everything_shown(err: &LoadError) -> String {
    let json = serde_json::to_string(&err.errors()).unwrap_or_default();
    format!("{err}\n{err:?}\n{json}")
}

fn tail(secret: &str) -> &str {
    &secret[secret.len() - 16..]
}

#[test]
fn the_reference_lists_the_keys() {
    let keys = documented_keys();
    for expected in [
        "repos",
        "forge.kind",
        "labels.priority",
        "budget.default.wall_clock",
        "budget.daily_cap_usd",
        "runtime_profile.default",
        "runtime_profile.stages.execute",
        "backends.claude_code.binary",
        "gates.repos.\"o/r\".commands",
        "policy.repos.\"o/r\".max_file_bytes",
        "state.path",
    ] {
        assert!(keys.iter().any(|k| k == expected), "{expected} in {keys:?}");
    }
}

/// The cases issue reports named, each shown before the fix in full.
#[test]
fn named_cases_never_echo_the_secret() {
    let cases = [
        ("labels.priority", "\"ghp_AbCdEfGhIjKlMnOpQrSt0123456789\""),
        (
            "budget.default.wall_clock",
            "\"ghp_AbCdEfGhIjKlMnOpQrSt0123456789\"",
        ),
        ("forge.kind", "\"ghp_AbCdEfGhIjKlMnOpQrSt0123456789\""),
        (
            "runtime_profile.default",
            "\"github_pat_11AbCdEfGhIjKlMnOpQrSt0123456789\"",
        ),
        (
            "budget.daily_cap_usd",
            "\"sk-ant-api03-AbCdEfGhIjKlMnOpQrSt0123456789\"",
        ),
    ];
    for (key, value) in cases {
        let text = document(key, value);
        let err = load_str(&text, &PathBuf::from("issueloop.toml")).expect_err(key);
        let shown = everything_shown(&err);
        assert!(!shown.contains("KlMnOpQrSt0123456789"), "{key}: {shown}");
        assert!(shown.contains("a secret-looking value"), "{key}: {shown}");
        assert!(shown.contains(key), "{key} is named: {shown}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_secret_in_any_documented_key_is_never_shown(
        index in 0usize..1000,
        secret in secret(),
        in_array in any::<bool>(),
    ) {
        let keys = documented_keys();
        let key = &keys[index % keys.len()];
        let value = if in_array { format!("[\"{secret}\"]") } else { format!("\"{secret}\"") };
        let text = document(key, &value);
        let err = load_str(&text, &PathBuf::from("issueloop.toml"));
        // A secret anywhere is refused.
        prop_assert!(err.is_err(), "{text}");
        if let Err(err) = err {
            let shown = everything_shown(&err);
            prop_assert!(!shown.contains(tail(&secret)), "{text}\n{shown}");
        }
    }
}
