//! The compare-and-swap push to a local remote: of writers racing to create or move a branch,
//! exactly one wins each round, on this machine as on a server.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use git2::{Oid, Repository, Signature};
use issueloop_workspace::{CasOutcome, RemoteSpec, push_branch_cas};

/// A commit of writer `n` (one file) on `parent` in `repo`. Commits are reproducible (fixed
/// author and time), so every writer can make the same base commit in its own repository.
fn commit(repo: &Repository, n: usize, parent: Option<Oid>) -> Oid {
    let blob = repo.blob(format!("writer {n}\n").as_bytes()).unwrap();
    let mut builder = repo.treebuilder(None).unwrap();
    builder.insert("who", blob, 0o100_644).unwrap();
    let tree = repo.find_tree(builder.write().unwrap()).unwrap();
    let who = Signature::new("w", "w@example.invalid", &git2::Time::new(0, 0)).unwrap();
    let parents: Vec<git2::Commit<'_>> = parent
        .map(|p| repo.find_commit(p).unwrap())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(None, &who, &who, &format!("writer {n}"), &tree, &parents)
        .unwrap()
}

/// A writer's own repository with its commit: an orphan, or a child of the shared base.
fn writer_commit(dir: &std::path::Path, n: usize, on_base: bool) -> (Repository, Oid) {
    let repo = Repository::init_bare(dir).unwrap();
    let parent = on_base.then(|| commit(&repo, BASE, None));
    let tip = commit(&repo, n, parent);
    (repo, tip)
}

const BASE: usize = usize::MAX;

/// Eight writers push at once to `remote`'s `branch`, expecting `expected`; the commits that
/// were accepted.
fn race(
    remote: &RemoteSpec,
    dir: &std::path::Path,
    branch: &str,
    expected: Option<Oid>,
) -> Vec<Oid> {
    const WRITERS: usize = 8;
    let barrier = Arc::new(Barrier::new(WRITERS));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|n| {
                let barrier = barrier.clone();
                let dir = dir.join(format!("w{n}.git"));
                s.spawn(move || {
                    let (repo, tip) = writer_commit(&dir, n, expected.is_some());
                    barrier.wait();
                    let outcome = push_branch_cas(
                        &repo,
                        remote,
                        branch,
                        tip,
                        expected,
                        Duration::from_secs(30),
                    )
                    .unwrap();
                    matches!(outcome, CasOutcome::Updated).then_some(tip)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    })
}

fn tip(remote: &std::path::Path, branch: &str) -> Oid {
    Repository::open_bare(remote)
        .unwrap()
        .find_reference(&format!("refs/heads/{branch}"))
        .unwrap()
        .target()
        .unwrap()
}

/// libgit2's non-forced create checks that the branch is absent before it takes the ref's lock:
/// a writer that checked, then was scheduled out while another created the branch, used to
/// overwrite it (two winners, the first one's commit lost). The window is inside one libgit2
/// call, so only a race can show it: many rounds, with the state store's nested branch name.
#[test]
fn of_writers_creating_one_branch_at_once_exactly_one_wins() {
    const BRANCH: &str = "issueloop/state";
    for round in 0..150 {
        let dir = tempfile::tempdir().unwrap();
        let remote_path = dir.path().join("remote.git");
        Repository::init_bare(&remote_path).unwrap();
        let remote = RemoteSpec::new(remote_path.display().to_string(), None);
        let winners = race(&remote, dir.path(), BRANCH, None);
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(tip(&remote_path, BRANCH), winners[0], "round {round}");
    }
}

#[test]
fn of_writers_moving_one_branch_from_the_same_tip_exactly_one_wins() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let remote_path = dir.path().join("remote.git");
        Repository::init_bare(&remote_path).unwrap();
        let remote = RemoteSpec::new(remote_path.display().to_string(), None);
        let first = Repository::init_bare(dir.path().join("first.git")).unwrap();
        let base = commit(&first, BASE, None);
        let created = push_branch_cas(
            &first,
            &remote,
            "state",
            base,
            None,
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(matches!(created, CasOutcome::Updated));
        let winners = race(&remote, dir.path(), "state", Some(base));
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(tip(&remote_path, "state"), winners[0], "round {round}");
    }
}
