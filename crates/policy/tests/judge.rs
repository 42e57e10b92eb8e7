//! Table tests of every diff-policy rule on hand-built change facts (no I/O): each default
//! denied path, renames judged on both sides, symlinks, submodules, limits, secrets that never
//! appear in the verdict, ignored files, and fix hints naming the configuration table.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use issueloop_config::{EffectivePolicy, RepoName, RepoPolicy, builtin_policy};
use issueloop_policy::{
    AddedLine, AddedLines, ChangeFacts, ChangeKind, ChangedPath, CompiledPolicy, FileMode,
    LinkResolution, Rule, Symlink, Verdict, approve, judge,
};

fn acme() -> RepoName {
    "acme/api".parse().unwrap()
}

/// The built-in policy for `acme/api`, with that repository's table adjusted by `edit`.
fn policy_with(edit: impl FnOnce(&mut RepoPolicy)) -> CompiledPolicy {
    let mut config = builtin_policy();
    let mut repo = RepoPolicy::default();
    edit(&mut repo);
    config.repos.insert(acme(), repo);
    CompiledPolicy::new(&config.for_repo(Some(&acme()))).unwrap()
}

fn default_policy() -> CompiledPolicy {
    policy_with(|_| {})
}

fn effective() -> EffectivePolicy {
    builtin_policy().for_repo(Some(&acme()))
}

fn file(path: &str, kind: ChangeKind) -> ChangedPath {
    let mut p = ChangedPath::new(path, kind.clone());
    if kind != ChangeKind::Deleted {
        p.new_mode = Some(FileMode::Regular);
        p.size = Some(10);
    }
    if kind != ChangeKind::Added {
        p.old_mode = Some(FileMode::Regular);
    }
    p
}

fn added(path: &str) -> ChangedPath {
    file(path, ChangeKind::Added)
}

fn facts(paths: Vec<ChangedPath>) -> ChangeFacts {
    ChangeFacts {
        base: Some("0".repeat(40)),
        paths,
        ..ChangeFacts::default()
    }
}

fn rules_of(v: &Verdict) -> Vec<(Rule, Option<&str>)> {
    v.violations
        .iter()
        .map(|v| (v.rule, v.path.as_deref()))
        .collect()
}

#[test]
fn each_default_denied_path_is_denied_with_its_glob() {
    let table = [
        (".github/workflows/ci.yml", ".github/**"),
        (".github/CODEOWNERS", ".github/**"),
        (".git/hooks/pre-commit", ".git/**"),
        (".env", ".env"),
        (".env.local", ".env.*"),
        ("services/web/.env", "**/.env"),
        ("services/web/.env.production", "**/.env.*"),
        ("server.pem", "*.pem"),
        ("deploy/certs/server.pem", "**/*.pem"),
        ("tls.key", "*.key"),
        ("deploy/tls.key", "**/*.key"),
        ("id_rsa", "id_*"),
        ("home/.ssh/id_ed25519", "**/id_ed25519*"),
        ("config/secrets/db.txt", "**/secrets/**"),
    ];
    let policy = default_policy();
    for (path, glob) in table {
        let v = judge(&facts(vec![added(path)]), &policy);
        assert_eq!(rules_of(&v), vec![(Rule::DeniedPath, Some(path))], "{path}");
        let expected = format!("`{path}` matches denied `{glob}`");
        assert_eq!(v.violations[0].message, expected, "{path}");
    }
}

#[test]
fn ordinary_paths_are_clean() {
    let policy = default_policy();
    for path in [
        "src/main.rs",
        "README.md",
        "docs/env.md",
        "environment.py",
        "keys.rs",
        "src/pem.rs",
        "github/notes.md",
        "tests/fixtures/identity.txt",
    ] {
        let v = judge(&facts(vec![added(path)]), &policy);
        assert!(v.is_clean(), "{path}: {v}");
    }
}

#[test]
fn denied_fix_names_the_repository_table_and_the_glob() {
    let v = judge(
        &facts(vec![file(".github/workflows/ci.yml", ChangeKind::Modified)]),
        &default_policy(),
    );
    assert_eq!(
        v.violations[0].fix,
        "allow it with `allow_denied = [\".github/**\"]` in [policy.repos.\"acme/api\"] if this \
         is intended"
    );
}

#[test]
fn denied_fix_without_a_repository_shows_where_the_table_goes() {
    let policy = CompiledPolicy::new(&builtin_policy().for_repo(None)).unwrap();
    let v = judge(&facts(vec![added(".github/x.yml")]), &policy);
    assert!(
        v.violations[0]
            .fix
            .contains("[policy.repos.\"owner/name\"]"),
        "{}",
        v.violations[0].fix
    );
}

#[test]
fn allow_denied_excepts_exactly_what_it_matches() {
    let policy = policy_with(|r| r.allow_denied = vec![".github/dependabot.yml".into()]);
    let v = judge(
        &facts(vec![
            added(".github/dependabot.yml"),
            added(".github/workflows/ci.yml"),
        ]),
        &policy,
    );
    assert_eq!(
        rules_of(&v),
        vec![(Rule::DeniedPath, Some(".github/workflows/ci.yml"))]
    );
}

#[test]
fn denied_matches_any_case_and_the_directory_itself() {
    let policy = default_policy();
    let mut link = added(".github");
    link.new_mode = Some(FileMode::Symlink);
    link.symlink = Some(Symlink {
        target: "ci".into(),
        resolves_to: LinkResolution::Inside("ci".into()),
    });
    let v = judge(
        &facts(vec![added(".GitHub/workflows/x.yml"), link]),
        &policy,
    );
    assert_eq!(
        rules_of(&v),
        vec![
            (Rule::DeniedPath, Some(".GitHub/workflows/x.yml")),
            (Rule::DeniedPath, Some(".github")),
        ]
    );
}

#[test]
fn renames_are_judged_on_both_paths() {
    let policy = default_policy();
    let into = file(
        ".github/workflows/ci.yml",
        ChangeKind::Renamed {
            from: "docs/ci.yml".into(),
        },
    );
    let v = judge(&facts(vec![into]), &policy);
    assert_eq!(
        rules_of(&v),
        vec![(Rule::DeniedPath, Some(".github/workflows/ci.yml"))]
    );

    let out_of = file(
        "docs/ci.yml",
        ChangeKind::Renamed {
            from: ".github/workflows/ci.yml".into(),
        },
    );
    let v = judge(&facts(vec![out_of]), &policy);
    assert_eq!(
        rules_of(&v),
        vec![(Rule::DeniedPath, Some(".github/workflows/ci.yml"))]
    );
    assert_eq!(
        v.violations[0].message,
        "`docs/ci.yml` is renamed from `.github/workflows/ci.yml`, which matches denied \
         `.github/**`"
    );
}

#[test]
fn deleting_a_denied_path_is_a_violation() {
    let v = judge(
        &facts(vec![file(".github/workflows/ci.yml", ChangeKind::Deleted)]),
        &default_policy(),
    );
    assert_eq!(
        rules_of(&v),
        vec![(Rule::DeniedPath, Some(".github/workflows/ci.yml"))]
    );
}

#[test]
fn allowed_paths_limit_where_a_change_may_go_and_denied_still_wins() {
    let policy = policy_with(|r| {
        r.allowed_paths = Some(vec!["src/**".into(), "tests/**".into(), "*.md".into()])
    });
    let v = judge(
        &facts(vec![
            added("src/lib.rs"),
            added("README.md"),
            added("docs/guide.md"),
            added("src/.env"),
            file(
                "build.rs",
                ChangeKind::Renamed {
                    from: "src/build.rs".into(),
                },
            ),
        ]),
        &policy,
    );
    assert_eq!(
        rules_of(&v),
        vec![
            (Rule::DeniedPath, Some("src/.env")),
            (Rule::NotAllowedPath, Some("docs/guide.md")),
            (Rule::NotAllowedPath, Some("build.rs")),
        ]
    );
    assert!(
        v.violations[1]
            .message
            .contains("`allowed_paths` are `src/**`, `tests/**`, `*.md`"),
        "{}",
        v.violations[1].message
    );
}

fn symlink(path: &str, target: &str, resolves_to: LinkResolution) -> ChangedPath {
    let mut p = added(path);
    p.new_mode = Some(FileMode::Symlink);
    p.symlink = Some(Symlink {
        target: target.into(),
        resolves_to,
    });
    p
}

#[test]
fn symlinks_leaving_the_worktree_or_entering_git_are_violations() {
    use LinkResolution::*;
    let table = [
        (
            "docs/passwd",
            "../../etc/passwd",
            Dangling,
            Some("outside the worktree"),
        ),
        (
            "passwd",
            "/etc/passwd",
            Outside,
            Some("outside the worktree"),
        ),
        ("docs/cfg", "../.git/config", Dangling, Some("into `.git`")),
        (
            "hooks",
            ".git/hooks",
            Inside(".git/hooks".into()),
            Some("into `.git`"),
        ),
        // Inside on paper, outside on disk: an existing link on the way leaves the worktree.
        (
            "docs/x",
            "vendor/etc",
            Outside,
            Some("outside the worktree"),
        ),
        (
            "docs/readme",
            "../README.md",
            Inside("README.md".into()),
            None,
        ),
        ("src/current", "v2", Dangling, None),
        ("a/b/c", "../../d/./e", Inside("d/e".into()), None),
    ];
    let policy = default_policy();
    for (path, target, resolves, expected) in table {
        let v = judge(&facts(vec![symlink(path, target, resolves)]), &policy);
        match expected {
            Some(reason) => {
                assert_eq!(
                    rules_of(&v),
                    vec![(Rule::SymlinkEscape, Some(path))],
                    "{path}"
                );
                assert!(
                    v.violations[0].message.ends_with(reason),
                    "{}",
                    v.violations[0].message
                );
            }
            None => assert!(v.is_clean(), "{path}: {v}"),
        }
    }
}

fn submodule(path: &str, old: Option<&str>, new: Option<&str>) -> ChangedPath {
    let kind = match (old, new) {
        (None, _) => ChangeKind::Added,
        (_, None) => ChangeKind::Deleted,
        _ => ChangeKind::Modified,
    };
    let mut p = ChangedPath::new(path, kind);
    p.old_mode = old.map(|_| FileMode::Submodule);
    p.new_mode = new.map(|_| FileMode::Submodule);
    p.old_id = old.map(str::to_owned);
    p.new_id = new.map(str::to_owned);
    p
}

#[test]
fn submodule_changes_are_denied_unless_allowed() {
    let a = "a".repeat(40);
    let b = "b".repeat(40);
    let change = facts(vec![
        submodule("vendor/lib", Some(&a), Some(&b)),
        submodule("vendor/new", None, Some(&b)),
        submodule("vendor/old", Some(&a), None),
    ]);
    let v = judge(&change, &default_policy());
    assert_eq!(
        v.violations
            .iter()
            .map(|v| v.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "submodule `vendor/lib` moves from `aaaaaaaaaa` to `bbbbbbbbbb`",
            "submodule `vendor/new` is added",
            "submodule `vendor/old` is removed",
        ]
    );
    assert!(v.violations[0].fix.contains("`allow_submodules = true`"));
    let allowing = policy_with(|r| r.allow_submodules = true);
    assert!(judge(&change, &allowing).is_clean());
}

#[test]
fn an_executable_bit_flip_is_a_fact_not_a_violation() {
    let mut p = file("scripts/run.sh", ChangeKind::Modified);
    p.new_mode = Some(FileMode::Executable);
    assert!(p.exec_bit_changed());
    assert!(judge(&facts(vec![p]), &default_policy()).is_clean());
    let mut p = file(".github/run.sh", ChangeKind::Modified);
    p.new_mode = Some(FileMode::Executable);
    assert_eq!(
        rules_of(&judge(&facts(vec![p]), &default_policy())),
        vec![(Rule::DeniedPath, Some(".github/run.sh"))]
    );
}

#[test]
fn too_many_files_counts_committed_paths_only() {
    let max = effective().max_changed_files as usize;
    let mut paths: Vec<ChangedPath> = (0..max).map(|i| added(&format!("src/f{i}.rs"))).collect();
    let mut ignored = added("target/debug/out.o");
    ignored.ignored = true;
    paths.push(ignored);
    assert!(judge(&facts(paths.clone()), &default_policy()).is_clean());
    paths.push(added("src/one_more.rs"));
    let v = judge(&facts(paths), &default_policy());
    assert_eq!(rules_of(&v), vec![(Rule::TooManyFiles, None)]);
    assert_eq!(
        v.violations[0].message,
        format!(
            "the change touches {} files, more than `max_changed_files` = {max}",
            max + 1
        )
    );
    let raised = policy_with(|r| r.max_changed_files = Some(100));
    assert!(
        judge(
            &facts((0..50).map(|i| added(&format!("f{i}"))).collect()),
            &raised
        )
        .is_clean()
    );
}

#[test]
fn files_larger_than_the_limit_are_violations() {
    let limit = effective().max_file_bytes;
    let mut big = added("data/dump.json");
    big.size = Some(limit + 1);
    let mut exact = added("data/ok.json");
    exact.size = Some(limit);
    let v = judge(&facts(vec![big, exact]), &default_policy());
    assert_eq!(
        rules_of(&v),
        vec![(Rule::FileTooLarge, Some("data/dump.json"))]
    );
}

const FAKE_TOKEN: &str = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";

fn with_lines(path: &str, lines: &[&str]) -> ChangedPath {
    let mut p = added(path);
    p.added = AddedLines {
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, t)| AddedLine {
                number: i as u32 + 1,
                text: t.to_string(),
            })
            .collect(),
        truncated: false,
    };
    p
}

#[test]
fn secrets_are_reported_by_file_and_line_never_by_value() {
    let change = facts(vec![with_lines(
        "src/client.py",
        &[
            "import os",
            &format!("TOKEN = \"{FAKE_TOKEN}\""),
            "key = 'AKIAABCDEFGHIJKLMNOP'",
            "-----BEGIN RSA PRIVATE KEY-----",
            "password = os.environ['DB_PASSWORD']",
        ],
    )]);
    let v = judge(&change, &default_policy());
    let found: Vec<(Option<u32>, &str)> = v
        .violations
        .iter()
        .map(|v| (v.line, v.message.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                Some(2),
                "`src/client.py` line 2: an added line matches the secret pattern `GitHub token`"
            ),
            (
                Some(3),
                "`src/client.py` line 3: an added line matches the secret pattern `AWS access key id`"
            ),
            (
                Some(4),
                "`src/client.py` line 4: an added line matches the secret pattern `private key`"
            ),
        ]
    );
    let everything = format!(
        "{v}\n{}\n{:?}\n{:?}\n{}",
        serde_json::to_string(&v).unwrap(),
        v,
        change,
        serde_json::to_string(&change).unwrap()
    );
    for secret in [FAKE_TOKEN, "AKIAABCDEFGHIJKLMNOP", "BEGIN RSA"] {
        assert!(!everything.contains(secret), "`{secret}` leaked");
    }
}

#[test]
fn a_truncated_secret_scan_is_a_violation() {
    let mut p = with_lines("data/big.txt", &["harmless"]);
    p.added.truncated = true;
    let v = judge(&facts(vec![p]), &default_policy());
    assert_eq!(
        rules_of(&v),
        vec![(Rule::SecretScanIncomplete, Some("data/big.txt"))]
    );
}

#[test]
fn ignored_files_are_judged_on_denied_paths_only() {
    let mut env = added(".env");
    env.ignored = true;
    let mut big_ignored = added("build/huge.bin");
    big_ignored.ignored = true;
    big_ignored.size = Some(u64::MAX);
    let mut outside_allowed = added("node_cache/x");
    outside_allowed.ignored = true;
    let policy = policy_with(|r| {
        r.allowed_paths = Some(vec!["src/**".into()]);
        r.allow_denied = vec![".env".into()];
    });
    let v = judge(&facts(vec![env, big_ignored, outside_allowed]), &policy);
    assert_eq!(rules_of(&v), vec![(Rule::DeniedPath, Some(".env"))]);
    assert!(v.violations[0].message.contains("an ignored file"));
    assert!(
        v.violations[0]
            .fix
            .starts_with("delete `.env` from the worktree")
    );
    assert_eq!(v.changed_files, 0);
}

#[test]
fn an_incomplete_look_at_ignored_files_is_a_violation() {
    let mut change = facts(vec![]);
    change.ignored_scan.truncated = true;
    change.ignored_scan.checked = 50_000;
    let v = judge(&change, &default_policy());
    assert_eq!(rules_of(&v), vec![(Rule::IgnoredScanIncomplete, None)]);
}

#[test]
fn non_utf8_paths_are_violations() {
    let mut p = added("src/\u{fffd}.rs");
    p.path_not_utf8 = true;
    let v = judge(&facts(vec![p]), &default_policy());
    assert_eq!(
        rules_of(&v),
        vec![(Rule::NonUtf8Path, Some("src/\u{fffd}.rs"))]
    );
}

#[test]
fn every_violation_is_collected_before_deciding() {
    let mut big = added("assets/blob.bin");
    big.size = Some(u64::MAX);
    let change = facts(vec![
        added(".github/workflows/ci.yml"),
        symlink("etc", "/etc", LinkResolution::Outside),
        submodule("vendor/x", Some(&"a".repeat(40)), Some(&"b".repeat(40))),
        big,
        with_lines("src/a.py", &[&format!("t = '{FAKE_TOKEN}'")]),
    ]);
    let v = judge(&change, &default_policy());
    assert_eq!(
        rules_of(&v),
        vec![
            (Rule::DeniedPath, Some(".github/workflows/ci.yml")),
            (Rule::SymlinkEscape, Some("etc")),
            (Rule::SubmoduleChange, Some("vendor/x")),
            (Rule::FileTooLarge, Some("assets/blob.bin")),
            (Rule::Secret, Some("src/a.py")),
        ]
    );
    assert_eq!(v.changed_files, 5);
    let text = v.to_string();
    assert!(
        text.starts_with("policy violated: 5 changed files, 5 violations\n"),
        "{text}"
    );
    assert!(text.contains("\n  fix: "), "{text}");
}

#[test]
fn approve_yields_a_change_only_for_a_clean_verdict() {
    let clean = facts(vec![added("src/lib.rs")]);
    let approved = approve(clean.clone(), &default_policy()).unwrap();
    assert_eq!(approved.facts(), &clean);
    let dirty = facts(vec![added(".github/x.yml")]);
    let verdict = approve(dirty, &default_policy()).unwrap_err();
    assert_eq!(verdict.violations.len(), 1);
}

#[test]
fn verdict_json_names_rule_path_line_message_fix() {
    let v = judge(&facts(vec![added(".env")]), &default_policy());
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["violations"][0]["rule"], "denied_path");
    assert_eq!(json["violations"][0]["path"], ".env");
    assert!(json["violations"][0].get("line").is_none());
    assert!(
        json["violations"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("allow_denied")
    );
}

#[test]
fn facts_serialize_flat_and_round_trip_without_added_lines() {
    let mut renamed = file(
        "src/new.rs",
        ChangeKind::Renamed {
            from: "src/old.rs".into(),
        },
    );
    renamed.added = AddedLines {
        lines: vec![AddedLine {
            number: 1,
            text: FAKE_TOKEN.into(),
        }],
        truncated: false,
    };
    let change = facts(vec![renamed.clone()]);
    let json = serde_json::to_value(&change).unwrap();
    assert_eq!(json["paths"][0]["kind"], "renamed");
    assert_eq!(json["paths"][0]["from"], "src/old.rs");
    assert!(!json.to_string().contains(FAKE_TOKEN));
    let back: ChangeFacts = serde_json::from_value(json).unwrap();
    renamed.added = AddedLines::default();
    assert_eq!(back.paths, vec![renamed]);
}
