//! Loads every configuration fixture: valid ones load, each invalid one yields the error its
//! header describes (key path, line, hint), and five defects in one file are reported together.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};

use issueloop_config::{ConfigError, LoadError, load_file};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[derive(Default, Debug)]
struct Expect {
    key: Option<String>,
    line: Option<usize>,
    hint: Option<String>,
    message: Option<String>,
    file: Option<String>,
}

fn expectations(text: &str) -> Expect {
    let mut e = Expect::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# expect-") else {
            continue;
        };
        let (k, v) = rest.split_once(':').unwrap();
        let v = v.trim().to_owned();
        match k {
            "key" => e.key = Some(v),
            "line" => e.line = Some(v.parse().unwrap()),
            "hint" => e.hint = Some(v),
            "message" => e.message = Some(v),
            "file" => e.file = Some(v),
            other => panic!("unknown expectation `{other}`"),
        }
    }
    e
}

fn matches(err: &ConfigError, e: &Expect, fixture: &Path) -> bool {
    let file_ok = match &e.file {
        Some(f) => err.file.ends_with(f),
        None => err.file == fixture,
    };
    file_ok
        && e.key.as_ref().is_none_or(|k| &err.key == k)
        && e.line.is_none_or(|l| err.line == Some(l))
        && e.hint.as_ref().is_none_or(|h| {
            err.hint
                .as_deref()
                .is_some_and(|eh| eh.contains(h.as_str()))
        })
        && e.message
            .as_ref()
            .is_none_or(|m| err.message.contains(m.as_str()))
}

#[test]
fn every_invalid_fixture_reports_its_defect_where_it_is() {
    let files = toml_files(&fixtures().join("invalid"));
    assert!(
        files.len() >= 40,
        "expected the full fixture set, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let expect = expectations(&text);
        assert!(
            expect.key.is_some(),
            "{} has no `# expect-key:`",
            f.display()
        );
        match load_file(f) {
            Ok(_) => failures.push(format!("{}: loaded without error", f.display())),
            Err(LoadError::Invalid { errors }) => {
                if !errors.iter().any(|e| matches(e, &expect, f)) {
                    failures.push(format!(
                        "{}: no error matches {expect:?}; got:\n{}",
                        f.display(),
                        errors
                            .iter()
                            .map(|e| format!("  {e:?}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
            Err(other) => failures.push(format!("{}: unexpected {other}", f.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn five_defects_are_reported_at_once() {
    let f = fixtures().join("five_defects.toml");
    let Err(LoadError::Invalid { errors }) = load_file(&f) else {
        panic!("five_defects.toml must be invalid");
    };
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "runtime_profle",
            "budget.daily_cap_usd",
            "runtime_profile.stages.interveiw",
            "runtime_profile.stages.execute",
            "service.cron",
        ],
        "{errors:#?}"
    );
    assert!(errors.iter().all(|e| e.line.is_some()));
}

#[test]
fn valid_fixtures_and_the_example_load() {
    let mut files = toml_files(&fixtures().join("valid"));
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/issueloop.toml"));
    for f in files {
        if let Err(e) = load_file(&f) {
            panic!("{} should load: {e}", f.display());
        }
    }
}

#[test]
fn a_pasted_token_is_never_echoed() {
    let f = fixtures().join("invalid/github_token_pasted.toml");
    let err = load_file(&f).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("ghp_AbCd"), "{text}");
}

#[test]
fn loosenings_are_recorded() {
    let config = load_file(&fixtures().join("valid/loosened.toml")).unwrap();
    let keys: Vec<&str> = config
        .policy
        .loosenings
        .iter()
        .map(|l| l.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "policy.max_changed_files",
            "policy.repos.\"acme/api\".allow_denied[0]",
            "policy.repos.\"acme/api\".allow_submodules",
        ]
    );
}

#[test]
fn file_level_problems_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = load_file(&dir.path().join("nope.toml")).unwrap_err();
    assert!(matches!(missing, LoadError::NotFound { .. }), "{missing}");
    let is_dir = load_file(dir.path()).unwrap_err();
    assert!(matches!(is_dir, LoadError::IsDirectory { .. }), "{is_dir}");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "  \n\n").unwrap();
    assert!(matches!(
        load_file(&empty).unwrap_err(),
        LoadError::Empty { .. }
    ));
    let latin1 = dir.path().join("latin1.toml");
    std::fs::write(&latin1, b"repos = [\"acme/caf\xe9\"]\n").unwrap();
    match load_file(&latin1).unwrap_err() {
        LoadError::NotUtf8 { line, column, .. } => assert_eq!((line, column), (1, 19)),
        other => panic!("{other}"),
    }
}

#[test]
fn a_database_password_is_never_echoed() {
    let config = load_file(&fixtures().join("valid/postgres_state.toml")).unwrap();
    assert_eq!(
        config.state.backend,
        issueloop_config::StateBackend::Postgres
    );
    let url = config.state.url.as_ref().unwrap();
    assert!(url.expose().contains("s3cret-pw"));
    let shown = format!(
        "{} {:?} {}",
        url,
        config.state,
        serde_json::to_string(&config).unwrap()
    );
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(
        shown.contains("postgres://loop:***@db.internal:5432/issueloop"),
        "{shown}"
    );
    let err = load_file(&fixtures().join("invalid/state_url_not_postgres.toml")).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cret-pw"), "{text}");
}

#[test]
fn the_github_state_backend_names_its_repository_and_branch() {
    let config = load_file(&fixtures().join("valid/github_state.toml")).unwrap();
    assert_eq!(config.state.backend, issueloop_config::StateBackend::Github);
    assert_eq!(config.state.branch, "issueloop/ledger");
    assert_eq!(
        config.state.repo.as_ref().map(|r| r.full()),
        Some("acme/ops".to_owned())
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // The defaults: the first repository, branch `issueloop/state`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("issueloop.toml");
    std::fs::write(
        &file,
        "repos = [\"acme/api\"]\n[state]\nbackend = \"github\"\n",
    )
    .unwrap();
    let config = load_file(&file).unwrap();
    assert_eq!(config.state.branch, "issueloop/state");
    assert_eq!(config.state.repo, None);
}

#[test]
fn gate_options_allowed_by_a_policy_file_are_validated_and_listed_as_loosenings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("issueloop.toml");
    std::fs::write(
        &config,
        "repos = [\"acme/api\"]\n\n[policy]\nfiles = [\"team.toml\"]\n",
    )
    .unwrap();
    let team = dir.path().join("team.toml");
    std::fs::write(
        &team,
        "[[gates.allow]]\nprogram = \"uv\"\nsubcommands = [\"run\"]\noptions = [\"--with\"]\n",
    )
    .unwrap();
    let loaded = load_file(&config).unwrap();
    let uv = loaded
        .policy
        .allowlist
        .iter()
        .find(|r| r.source == "team.toml")
        .unwrap();
    assert_eq!(uv.options, ["--with"]);
    assert!(
        loaded
            .policy
            .loosenings
            .iter()
            .any(|l| l.key == "gates.allow[program = \"uv\"].options"
                && l.description.contains("`uv --with`")),
        "{:?}",
        loaded.policy.loosenings
    );

    std::fs::write(
        &team,
        "[[gates.allow]]\nprogram = \"cargo\"\noptions = [\"--with\"]\n",
    )
    .unwrap();
    let err = load_file(&config).unwrap_err().to_string();
    assert!(err.contains("team.toml:3:"), "{err}");
    assert!(err.contains("gates.allow[0].options[0]"), "{err}");
    assert!(err.contains("`--config`"), "the hint lists cargo's: {err}");
}
