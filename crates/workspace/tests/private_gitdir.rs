//! A worktree's private git directory (what the agent's sandbox may write) comes from what
//! issueloop recorded, not from the checkout's `.git` file the agent can rewrite.

mod common;

use common::{Fixture, git};

#[test]
fn the_private_gitdir_is_the_recorded_one_whatever_the_git_file_says() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let wt = fx.prepare(&ws, "loop/3-gitdir");
    let recorded = wt.private_gitdir();
    let mirror = fx.cache.join("mirrors/acme/api.git");
    assert!(recorded.starts_with(&mirror), "{}", recorded.display());
    assert!(recorded.join("HEAD").is_file());
    let from_git = git(wt.path(), &["rev-parse", "--absolute-git-dir"]);
    assert_eq!(
        std::fs::canonicalize(from_git.trim()).unwrap(),
        std::fs::canonicalize(&recorded).unwrap()
    );
    // The agent points `.git` at the mirror itself: the sandbox's path does not follow.
    std::fs::write(
        wt.path().join(".git"),
        format!("gitdir: {}\n", mirror.display()),
    )
    .unwrap();
    assert_eq!(wt.private_gitdir(), recorded);
    assert_ne!(wt.private_gitdir(), mirror);
}
