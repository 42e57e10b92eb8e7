//! Change facts and verdicts on real worktrees: every change kind, each default denied path,
//! a rename into a denied path, symlinks escaping the worktree, submodule bumps, executable
//! bits, secrets in added lines (never in the verdict), and an ignored `.env`.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod common;

use common::{Fixture, git, set_executable, symlink, write};
use issueloop_config::{RepoPolicy, builtin_policy};
use issueloop_policy::{
    ChangeFacts, ChangeKind, ChangedPath, CompiledPolicy, FileMode, LinkResolution, Rule, Verdict,
    judge,
};
use issueloop_workspace::change_facts_at;

fn policy() -> CompiledPolicy {
    CompiledPolicy::new(&builtin_policy().for_repo(Some(&Fixture::repo()))).unwrap()
}

fn policy_with(edit: impl FnOnce(&mut RepoPolicy)) -> CompiledPolicy {
    let mut config = builtin_policy();
    let mut repo = RepoPolicy::default();
    edit(&mut repo);
    config.repos.insert(Fixture::repo(), repo);
    CompiledPolicy::new(&config.for_repo(Some(&Fixture::repo()))).unwrap()
}

fn find<'a>(facts: &'a ChangeFacts, path: &str) -> &'a ChangedPath {
    facts
        .paths
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("`{path}` not in {:#?}", facts.paths))
}

fn rules(v: &Verdict) -> Vec<(Rule, String)> {
    v.violations
        .iter()
        .map(|v| (v.rule, v.path.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn a_fresh_worktree_has_no_change() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let facts = wt.run_change_facts().unwrap();
    assert_eq!(facts.paths, vec![]);
    assert_eq!(facts.base, Some(wt.start_commit()));
    assert!(judge(&facts, &policy()).is_clean());
}

#[test]
fn line_ending_attributes_do_not_make_a_fresh_worktree_dirty() {
    let fx = Fixture::new();
    fx.push_as_someone_else(
        "main",
        &[
            (".gitattributes", "*.txt eol=crlf\n*.bin binary\n"),
            ("notes.txt", "one\ntwo\n"),
        ],
    );
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    assert_eq!(wt.run_change_facts().unwrap().paths, vec![]);
    write(wt.path(), "notes.txt", "one\ntwo\nthree\n");
    let facts = wt.run_change_facts().unwrap();
    let added: Vec<&str> = facts.paths[0]
        .added
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(added, vec!["three"]);
}

#[test]
fn every_change_kind_is_a_fact() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let dir = wt.path();
    write(dir, "src/lib.rs", "pub fn answer() -> u32 {\n    43\n}\n"); // modified
    write(dir, "src/new/deep/mod.rs", "// new\n"); // untracked, in new directories
    write(dir, "staged.txt", "staged\n");
    git(dir, &["add", "staged.txt"]); // added to the index
    std::fs::remove_file(dir.join("README.md")).unwrap(); // deleted
    std::fs::rename(dir.join("docs/ci.yml"), dir.join("docs/pipeline.yml")).unwrap(); // renamed
    set_executable(dir, "scripts/run.sh", true); // executable bit
    std::fs::remove_file(dir.join(".gitmodules")).unwrap();
    symlink(dir, ".gitmodules", "README.md"); // a file became a symlink: type change
    symlink(dir, "latest", "src/lib.rs"); // a new symlink
    write(dir, "assets/logo.bin", [0u8, 1, 2, 3, 0, 255]); // binary

    let facts = wt.run_change_facts().unwrap();
    let summary: Vec<(&str, &str)> = facts
        .paths
        .iter()
        .map(|p| (p.path.as_str(), p.kind.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (".gitmodules", "type_changed"),
            ("README.md", "deleted"),
            ("assets/logo.bin", "added"),
            ("docs/pipeline.yml", "renamed"),
            ("latest", "added"),
            ("scripts/run.sh", "modified"),
            ("src/lib.rs", "modified"),
            ("src/new/deep/mod.rs", "added"),
            ("staged.txt", "added"),
        ]
    );
    assert_eq!(
        find(&facts, "docs/pipeline.yml").kind,
        ChangeKind::Renamed {
            from: "docs/ci.yml".into()
        }
    );
    let run = find(&facts, "scripts/run.sh");
    assert_eq!(
        (run.old_mode, run.new_mode),
        (Some(FileMode::Regular), Some(FileMode::Executable))
    );
    assert!(run.exec_bit_changed());
    let tc = find(&facts, ".gitmodules");
    assert_eq!(
        (tc.old_mode, tc.new_mode),
        (Some(FileMode::Regular), Some(FileMode::Symlink))
    );
    let link = find(&facts, "latest");
    let target = link.symlink.as_ref().unwrap();
    assert_eq!(target.target, "src/lib.rs");
    assert_eq!(
        target.resolves_to,
        LinkResolution::Inside("src/lib.rs".into())
    );
    let bin = find(&facts, "assets/logo.bin");
    assert!(bin.binary);
    assert_eq!(bin.size, Some(6));
    let lib = find(&facts, "src/lib.rs");
    assert!(!lib.binary);
    assert_eq!(lib.size, Some(34));
    let added: Vec<(u32, &str)> = lib
        .added
        .lines
        .iter()
        .map(|l| (l.number, l.text.as_str()))
        .collect();
    assert_eq!(added, vec![(2, "    43")], "only the added line");
    assert_eq!(find(&facts, "README.md").size, None);
    assert!(
        judge(&facts, &policy()).is_clean(),
        "{}",
        judge(&facts, &policy())
    );
}

#[test]
fn commits_the_agent_made_are_part_of_the_run_change() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    write(wt.path(), "committed.txt", "by the agent\n");
    git(wt.path(), &["add", "."]);
    git(wt.path(), &["commit", "-q", "-m", "agent commit"]);
    write(wt.path(), "uncommitted.txt", "later\n");
    let run = wt.run_change_facts().unwrap();
    let paths: Vec<&str> = run.paths.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, vec!["committed.txt", "uncommitted.txt"]);
    let head = git(wt.path(), &["rev-parse", "HEAD"]);
    let since_head = wt.change_facts(Some(&head)).unwrap();
    let paths: Vec<&str> = since_head.paths.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, vec!["uncommitted.txt"]);
}

#[test]
fn each_default_denied_path_is_caught_in_a_real_worktree() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let dir = wt.path();
    let created = [
        ".github/workflows/release.yml",
        ".env.local",
        "services/api/.env.production",
        "server.pem",
        "deploy/certs/server.pem",
        "tls.key",
        "deploy/tls.key",
        "id_rsa",
        "home/.ssh/id_ed25519",
        "config/secrets/db.txt",
    ];
    for path in created {
        write(dir, path, "x\n");
    }
    // `.gitignore` ignores `.env`; the denied check sees it anyway (next test). Here: a
    // tracked `.env` in a subdirectory, added explicitly.
    write(dir, "app/.env", "x\n");
    let facts = wt.run_change_facts().unwrap();
    let verdict = judge(&facts, &policy_with(|r| r.max_changed_files = Some(100)));
    let mut denied: Vec<String> = verdict
        .violations
        .iter()
        .filter(|v| v.rule == Rule::DeniedPath)
        .map(|v| v.path.clone().unwrap())
        .collect();
    denied.sort();
    let mut expected: Vec<String> = created.iter().map(|s| s.to_string()).collect();
    expected.push("app/.env".into());
    expected.sort();
    assert_eq!(denied, expected);
    // `.git/**`: git never reports a path inside `.git`; the rule is table-tested in the
    // policy crate, and a repository the agent creates inside the worktree is a submodule.
    write(dir, "nested/README", "x\n");
    git(&dir.join("nested"), &["init", "-q"]);
    git(&dir.join("nested"), &["add", "."]);
    git(&dir.join("nested"), &["commit", "-q", "-m", "nested"]);
    let facts = wt.run_change_facts().unwrap();
    let nested = find(&facts, "nested");
    assert_eq!(nested.new_mode, Some(FileMode::Submodule));
    let verdict = judge(&facts, &policy_with(|r| r.max_changed_files = Some(100)));
    assert!(rules(&verdict).contains(&(Rule::SubmoduleChange, "nested".into())));
}

#[test]
fn an_ignored_env_file_created_by_the_agent_is_denied() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let dir = wt.path();
    write(dir, ".env", "API_KEY=abc\n");
    write(dir, "debug.log", "noise\n"); // ignored, not denied
    write(dir, "build/out/app.pem", "x\n"); // inside an ignored directory, denied
    write(
        dir,
        "target/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    );
    write(dir, "target/debug/test.key", "x\n"); // in a tagged cache: not looked into
    write(dir, ".venv/pyvenv.cfg", "home = /usr\n");
    write(dir, ".venv/lib/certifi/cacert.pem", "x\n"); // in a virtualenv: not looked into
    assert_eq!(
        git(dir, &["status", "--porcelain"]),
        "",
        "git shows nothing"
    );

    let facts = wt.run_change_facts().unwrap();
    assert!(facts.is_empty(), "nothing would be committed");
    let ignored: Vec<&str> = facts
        .paths
        .iter()
        .filter(|p| p.ignored)
        .map(|p| p.path.as_str())
        .collect();
    assert_eq!(ignored, vec![".env", "build/out/app.pem", "debug.log"]);
    assert_eq!(facts.ignored_scan.skipped_dirs, vec![".venv", "target"]);
    let verdict = judge(&facts, &policy());
    assert_eq!(
        rules(&verdict),
        vec![
            (Rule::DeniedPath, ".env".into()),
            (Rule::DeniedPath, "build/out/app.pem".into()),
        ]
    );
    assert!(verdict.violations[0].message.contains("an ignored file"));
    assert!(!verdict.to_string().contains("abc"));
}

#[test]
fn a_rename_from_an_allowed_into_a_denied_path_is_denied() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    git(
        wt.path(),
        &["mv", "docs/ci.yml", ".github/workflows/release.yml"],
    );
    let facts = wt.run_change_facts().unwrap();
    let moved = find(&facts, ".github/workflows/release.yml");
    assert_eq!(
        moved.kind,
        ChangeKind::Renamed {
            from: "docs/ci.yml".into()
        }
    );
    let verdict = judge(&facts, &policy());
    assert_eq!(
        rules(&verdict),
        vec![(Rule::DeniedPath, ".github/workflows/release.yml".into())]
    );
    assert!(
        verdict.violations[0]
            .fix
            .contains("[policy.repos.\"acme/api\"]")
    );
}

#[test]
fn symlinks_escaping_the_worktree_are_caught() {
    let fx = Fixture::new();
    let outside = fx.root().join("outside-secret.txt");
    std::fs::write(&outside, "secret\n").unwrap();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let dir = wt.path();
    symlink(dir, "docs/passwd", "../../../../../../../../etc/passwd");
    symlink(dir, "hosts", "/etc/hosts");
    symlink(dir, "gitdir", ".git");
    symlink(dir, "src/ok", "../README.md");
    // Inside on paper, outside on disk: through an existing link that leaves the worktree.
    symlink(dir, "escape", outside.parent().unwrap().to_str().unwrap());
    symlink(dir, "sneaky", "escape/outside-secret.txt");
    let facts = wt.run_change_facts().unwrap();
    assert_eq!(
        find(&facts, "sneaky").symlink.as_ref().unwrap().resolves_to,
        LinkResolution::Outside
    );
    let verdict = judge(&facts, &policy());
    assert_eq!(
        rules(&verdict),
        vec![
            (Rule::SymlinkEscape, "docs/passwd".into()),
            (Rule::SymlinkEscape, "escape".into()),
            (Rule::SymlinkEscape, "gitdir".into()),
            (Rule::SymlinkEscape, "hosts".into()),
            (Rule::SymlinkEscape, "sneaky".into()),
        ]
    );
}

#[test]
fn submodule_bumps_are_caught_staged_or_checked_out() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let dir = wt.path();
    let [old, new] = [&fx.lib_commits[0], &fx.lib_commits[1]];
    // Staged only: the agent's index records a new pointer, the working files do not. The
    // agent's index is not read: this is no change, and no commit would carry it.
    let ignore_key = "submodule.vendor/lib.ignore";
    git(dir, &["config", "-f", ".gitmodules", ignore_key, "all"]);
    git(
        dir,
        &[
            "update-index",
            "--cacheinfo",
            &format!("160000,{new},vendor/lib"),
        ],
    );
    let facts = wt.run_change_facts().unwrap();
    assert_eq!(
        facts
            .paths
            .iter()
            .map(|p| p.path.as_str())
            .collect::<Vec<_>>(),
        [".gitmodules"]
    );
    git(dir, &["checkout", "-q", "--", ".gitmodules"]);

    // Checked out: the submodule's own HEAD moved. `ignore = all` (which makes `git status`
    // quiet about the submodule) does not hide it.
    git(
        dir,
        &[
            "update-index",
            "--cacheinfo",
            &format!("160000,{old},vendor/lib"),
        ],
    );
    assert!(wt.run_change_facts().unwrap().paths.is_empty());
    let lib = dir.join("vendor/lib");
    std::fs::remove_dir_all(&lib).unwrap();
    git(
        dir,
        &[
            "clone",
            "-q",
            fx.root().join("lib.git").to_str().unwrap(),
            "vendor/lib",
        ],
    );
    git(&lib, &["checkout", "-q", new]);
    git(dir, &["config", "-f", ".gitmodules", ignore_key, "all"]);
    let facts = wt.run_change_facts().unwrap();
    let sub = find(&facts, "vendor/lib");
    assert_eq!(
        (sub.old_id.as_deref(), sub.new_id.as_deref()),
        (Some(old.as_str()), Some(new.as_str()))
    );
    assert!(sub.is_submodule_change());
    let verdict = judge(&facts, &policy());
    assert_eq!(
        rules(&verdict)
            .into_iter()
            .filter(|(_, p)| p == "vendor/lib")
            .collect::<Vec<_>>(),
        vec![(Rule::SubmoduleChange, "vendor/lib".into())]
    );
    assert!(
        !judge(&facts, &policy_with(|r| r.allow_submodules = true))
            .violations
            .iter()
            .any(|v| v.rule == Rule::SubmoduleChange)
    );
    git(dir, &["checkout", "-q", "--", ".gitmodules"]);
    git(&lib, &["checkout", "-q", old]);
    assert!(
        wt.run_change_facts().unwrap().paths.is_empty(),
        "back at the recorded commit"
    );
}

const FAKE_TOKEN: &str = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";

#[test]
fn a_secret_in_an_added_line_is_reported_without_its_value() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let dir = wt.path();
    write(
        dir,
        "src/lib.rs",
        format!("pub fn answer() -> u32 {{\n    42\n}}\n\nconst TOKEN: &str = \"{FAKE_TOKEN}\";\n"),
    );
    // Marking sources binary (no diff) does not hide them from the scan.
    write(dir, ".gitattributes", "*.rs binary\n");
    let mut binary = vec![0u8, 1, 2];
    binary.extend_from_slice(b"\nAKIAABCDEFGHIJKLMNOP\n");
    write(dir, "assets/blob.bin", binary);
    let facts = wt.run_change_facts().unwrap();
    let verdict = judge(&facts, &policy());
    let found: Vec<(Rule, Option<&str>, Option<u32>)> = verdict
        .violations
        .iter()
        .map(|v| (v.rule, v.path.as_deref(), v.line))
        .collect();
    assert_eq!(
        found,
        vec![
            (Rule::Secret, Some("assets/blob.bin"), Some(2)),
            (Rule::Secret, Some("src/lib.rs"), Some(5)),
        ]
    );
    let shown = format!(
        "{verdict}{}{}{:?}",
        serde_json::to_string(&verdict).unwrap(),
        serde_json::to_string(&facts).unwrap(),
        facts
    );
    assert!(!shown.contains(FAKE_TOKEN) && !shown.contains("AKIAABCDEFGHIJKLMNOP"));
}

#[test]
fn sizes_and_limits_use_the_file_on_disk() {
    let fx = Fixture::new();
    let wt = fx.prepare(&fx.workspace(), "loop/1-a");
    write(wt.path(), "data/big.txt", "a\n".repeat(600));
    let facts = wt.run_change_facts().unwrap();
    assert_eq!(find(&facts, "data/big.txt").size, Some(1200));
    let small = policy_with(|r| r.max_file_bytes = Some(1000));
    assert_eq!(
        rules(&judge(&facts, &small)),
        vec![(Rule::FileTooLarge, "data/big.txt".into())]
    );
}

#[test]
fn change_facts_at_judges_any_checkout_and_a_base() {
    let fx = Fixture::new();
    let checkout = fx.root().join("checkout");
    git(
        fx.root(),
        &[
            "clone",
            "-q",
            fx.remote.to_str().unwrap(),
            checkout.to_str().unwrap(),
        ],
    );
    write(&checkout, "src/extra.rs", "// extra\n");
    let facts = change_facts_at(&checkout.join("src"), None).unwrap();
    assert_eq!(facts.paths.len(), 1);
    assert_eq!(
        facts.paths[0].path, "src/extra.rs",
        "paths are relative to the root"
    );
    git(&checkout, &["add", "."]);
    git(&checkout, &["commit", "-q", "-m", "extra"]);
    assert!(change_facts_at(&checkout, None).unwrap().paths.is_empty());
    let since = change_facts_at(&checkout, Some("origin/main")).unwrap();
    assert_eq!(since.paths.len(), 1);
    let err = change_facts_at(&checkout, Some("no-such-ref")).unwrap_err();
    assert!(err.to_string().contains("`no-such-ref`"), "{err}");
    let err = change_facts_at(fx.root(), None).unwrap_err();
    assert!(
        err.to_string().contains("not inside a git working tree"),
        "{err}"
    );
}

#[test]
fn a_repository_without_commits_counts_everything_as_added() {
    let fx = Fixture::new();
    let fresh = fx.root().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    git(&fresh, &["init", "-q"]);
    write(&fresh, "a.txt", "a\n");
    let facts = change_facts_at(&fresh, None).unwrap();
    assert_eq!(facts.base, None);
    assert_eq!(facts.paths[0].kind, ChangeKind::Added);
}
