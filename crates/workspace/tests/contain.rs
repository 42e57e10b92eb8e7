//! The mirror is issueloop's: what an agent writes into the shared mirror's configuration or
//! into its worktree's gitdir (`.git` file, index, `HEAD`) changes neither where issueloop
//! fetches and pushes, nor the change it judges and commits.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod common;

use common::{Fixture, git, write};
use issueloop_config::builtin_policy;
use issueloop_policy::{CompiledPolicy, approve};
use issueloop_workspace::{CommitOutcome, PushOutcome};

/// The mirror as the agent finds it from its worktree.
fn common_dir(worktree: &std::path::Path) -> std::path::PathBuf {
    let rel = git(worktree, &["rev-parse", "--git-common-dir"]);
    worktree.join(rel).canonicalize().unwrap()
}

#[test]
fn insteadof_in_the_mirror_redirects_neither_push_nor_fetch_and_is_removed() {
    let fx = Fixture::new();
    let other = fx.root().join("other.git");
    git(
        fx.root(),
        &["clone", "-q", "--bare", "remote.git", "other.git"],
    );
    let ws = fx.workspace();
    let mut wt = fx.prepare(&ws, "loop/1-a");
    let mirror = common_dir(wt.path());
    let config = mirror.join("config");
    let clean = std::fs::read_to_string(&config).unwrap();
    let remote = fx.remote.to_str().unwrap();
    for key in ["insteadOf", "pushInsteadOf"] {
        let name = format!("url.{}.{key}", other.display());
        git(
            wt.path(),
            &["config", "-f", config.to_str().unwrap(), &name, remote],
        );
    }
    git(
        wt.path(),
        &[
            "config",
            "-f",
            config.to_str().unwrap(),
            "core.fsmonitor",
            "/bin/false",
        ],
    );
    std::fs::write(mirror.join("shallow"), format!("{}\n", wt.start_commit())).unwrap();

    write(wt.path(), "src/new.rs", "pub fn new() {}\n");
    let policy = CompiledPolicy::new(&builtin_policy().for_repo(Some(&Fixture::repo()))).unwrap();
    let change = approve(wt.run_change_facts().unwrap(), &policy).unwrap();
    let CommitOutcome::Committed { id, .. } = wt.commit(&change, "x\n").unwrap() else {
        panic!("nothing committed");
    };
    assert!(matches!(
        wt.push(&fx.spec()).unwrap(),
        PushOutcome::Created { .. }
    ));
    assert_eq!(
        fx.remote_rev("refs/heads/loop/1-a").as_deref(),
        Some(id.as_str())
    );
    let other_branch = git_ok(
        &other,
        &["rev-parse", "-q", "--verify", "refs/heads/loop/1-a"],
    );
    assert!(!other_branch, "nothing reached the other repository");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        clean,
        "configuration repaired"
    );
    assert!(!mirror.join("shallow").exists());
    wt.remove().unwrap();

    // The next fetch comes from the real remote too, even with the redirection written again.
    let name = format!("url.{}.insteadOf", other.display());
    git(
        fx.root(),
        &["config", "-f", config.to_str().unwrap(), &name, remote],
    );
    git(
        &fx.remote,
        &["update-ref", "refs/heads/only-real", "refs/heads/loop/1-a"],
    );
    let wt = ws
        .prepare_worktree(
            &Fixture::repo(),
            &fx.spec(),
            "loop/2-b",
            &issueloop_workspace::BaseRef::Branch("only-real".into()),
        )
        .unwrap();
    assert_eq!(wt.start_commit(), id);
}

fn git_ok(dir: &std::path::Path, args: &[&str]) -> bool {
    common::git_output(dir, args).status.success()
}

#[test]
fn the_agents_index_head_and_git_file_are_not_read() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let mut wt = fx.prepare(&ws, "loop/1-a");
    let dir = wt.path().to_owned();
    write(
        &dir,
        ".github/workflows/ci.yml",
        "name: ci\non: [push, pull_request]\n",
    );
    write(&dir, "README.md", "# demo\n\nChanged.\n");
    // Hide one edit in the index, stage another file that is not on disk, and move HEAD.
    git(
        &dir,
        &[
            "update-index",
            "--assume-unchanged",
            ".github/workflows/ci.yml",
        ],
    );
    git(&dir, &["update-index", "--skip-worktree", "README.md"]);
    write(&dir, "staged-only.txt", "staged\n");
    git(&dir, &["add", "staged-only.txt"]);
    std::fs::remove_file(dir.join("staged-only.txt")).unwrap();
    git(&dir, &["commit", "-q", "-m", "agent"]);
    // Then point `.git` at a repository of the agent's own.
    let fake = fx.root().join("fake.git");
    git(fx.root(), &["init", "-q", "--bare", "fake.git"]);
    std::fs::write(dir.join(".git"), format!("gitdir: {}\n", fake.display())).unwrap();

    let facts = wt.run_change_facts().unwrap();
    let paths: Vec<&str> = facts.paths.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, [".github/workflows/ci.yml", "README.md"]);
    assert_eq!(facts.base.as_deref(), Some(wt.start_commit().as_str()));

    // With the denied path removed, the commit holds exactly the working files' change and
    // lands in the mirror, whatever `.git` says.
    std::fs::write(
        dir.join(".github/workflows/ci.yml"),
        "name: ci\non: push\njobs: {}\n",
    )
    .unwrap();
    let policy = CompiledPolicy::new(&builtin_policy().for_repo(Some(&Fixture::repo()))).unwrap();
    let change = approve(wt.run_change_facts().unwrap(), &policy).unwrap();
    let CommitOutcome::Committed { id, parent } = wt.commit(&change, "x\n").unwrap() else {
        panic!("nothing committed");
    };
    assert_eq!(parent, wt.start_commit());
    assert!(matches!(
        wt.push(&fx.spec()).unwrap(),
        PushOutcome::Created { .. }
    ));
    let files = git(&fx.remote, &["diff", "--name-only", &parent, &id]);
    assert_eq!(files, "README.md");
}
