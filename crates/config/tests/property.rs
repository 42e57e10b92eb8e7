//! No input makes the loader panic: arbitrary bytes, and arbitrary TOML built from the real key
//! names (so the generator reaches the semantic pass, not only the parser).

use std::path::Path;

use proptest::prelude::*;

const KEYS: &[&str] = &[
    "forge",
    "kind",
    "api_url",
    "local_path",
    "app",
    "app_id",
    "private_key_path",
    "repos",
    "labels",
    "prefix",
    "approved",
    "priority",
    "budget",
    "daily_cap_usd",
    "max_runs_per_day",
    "min_useful_usd",
    "default",
    "cost_usd",
    "wall_clock",
    "max_turns",
    "loop:budget-xl",
    "runtime_profile",
    "stages",
    "execute",
    "interview",
    "backend_profile",
    "backends",
    "claude_code",
    "command",
    "argv",
    "format",
    "env",
    "gates",
    "timeout",
    "commands",
    "policy",
    "files",
    "denied_paths",
    "allowed_paths",
    "allow_denied",
    "service",
    "cron",
    "timezone",
    "state",
    "path",
    "git",
    "branch_prefix",
    "publish",
    "draft_fallback",
    "acme/api",
    "x",
];

fn value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        "[ -~]{0,12}".prop_map(toml::Value::String),
        prop::sample::select(vec![
            "acme/api",
            "claude",
            "*/5 * * * *",
            "45m",
            "src/**",
            "{",
            "ghp_0123456789abcdefghijKLMN"
        ])
        .prop_map(|s| toml::Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..6).prop_map(|m| {
                toml::Value::Table(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("issueloop.toml");
        std::fs::write(&f, &bytes).unwrap();
        let _ = issueloop_config::load_file(&f);
        let text = String::from_utf8_lossy(&bytes);
        let _ = issueloop_config::load_str(&text, Path::new("issueloop.toml"));
    }

    #[test]
    fn arbitrary_toml_never_panics(
        table in prop::collection::btree_map(prop::sample::select(KEYS), value(), 0..8)
    ) {
        let table: toml::Table = table.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if let Ok(text) = toml::to_string(&table) {
            match issueloop_config::load_str(&text, Path::new("issueloop.toml")) {
                Ok(_) => {}
                Err(e) => {
                    // Every error names a file, and a located one carries a line.
                    for err in e.errors() {
                        prop_assert!(!err.file.as_os_str().is_empty());
                        prop_assert!(!err.message.is_empty());
                    }
                }
            }
        }
    }
}
