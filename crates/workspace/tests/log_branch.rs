//! A log branch shared by two clones through a bare remote on disk: the first push creates the
//! branch, a clone that appends on a stale tip is rejected and changes nothing, and after a fetch
//! its appends land after the other clone's. What the git command line reads on the remote is
//! what the clones wrote.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::Path;
use std::time::Duration;

use issueloop_workspace::hermetic::git_command;
use issueloop_workspace::{CasOutcome, LogClone, RemoteSpec};

const BRANCH: &str = "issueloop/state";
const TRACKING: &str = "refs/remotes/state/tip";
const TIMEOUT: Duration = Duration::from_secs(30);

fn append(path: &str, text: &str) -> Vec<(String, String)> {
    vec![(path.to_owned(), text.to_owned())]
}

/// Run git in `dir`; its stdout, or a panic with its stderr.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read(clone: &LogClone, at: issueloop_workspace::CommitId, path: &str) -> String {
    String::from_utf8(
        clone
            .tree_at(Some(at))
            .unwrap()
            .read(path)
            .unwrap()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn two_clones_append_in_turn_and_a_stale_push_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let remote_path = dir.path().join("remote.git");
    LogClone::open_or_init(&remote_path).unwrap();
    let remote = RemoteSpec::new(remote_path.display().to_string(), None);
    let a = LogClone::open_or_init(&dir.path().join("a/cache.git")).unwrap();
    let b = LogClone::open_or_init(&dir.path().join("b/cache.git")).unwrap();

    // No branch yet: both see nothing.
    assert_eq!(a.fetch(&remote, BRANCH, TRACKING, TIMEOUT).unwrap(), None);
    assert_eq!(b.fetch(&remote, BRANCH, TRACKING, TIMEOUT).unwrap(), None);

    // A creates the branch.
    let first = a
        .commit_appends(None, &append("ledger/d.jsonl", "a1\n"), "a1")
        .unwrap();
    assert_eq!(
        a.push_cas(&remote, BRANCH, first, None, TIMEOUT).unwrap(),
        CasOutcome::Updated
    );

    // B, still believing the branch absent, tries to create it too: refused.
    let stale = b
        .commit_appends(None, &append("ledger/d.jsonl", "b1\n"), "b1")
        .unwrap();
    let refused = b.push_cas(&remote, BRANCH, stale, None, TIMEOUT).unwrap();
    assert!(
        matches!(refused, CasOutcome::Rejected { .. }),
        "{refused:?}"
    );
    let on_remote = format!("refs/heads/{BRANCH}");
    assert_eq!(
        git(&remote_path, &["rev-parse", &on_remote]).trim(),
        first.to_string()
    );

    // B fetches, appends on the tip it read, and wins.
    let tip = b.fetch(&remote, BRANCH, TRACKING, TIMEOUT).unwrap();
    assert_eq!(tip, Some(first));
    assert_eq!(read(&b, first, "ledger/d.jsonl"), "a1\n");
    let second = b
        .commit_appends(tip, &append("ledger/d.jsonl", "b1\n"), "b1")
        .unwrap();
    assert_eq!(
        b.push_cas(&remote, BRANCH, second, tip, TIMEOUT).unwrap(),
        CasOutcome::Updated
    );

    // A's next push on its old tip is refused; the remote holds both lines, in order.
    let late = a
        .commit_appends(Some(first), &append("ledger/d.jsonl", "a2\n"), "a2")
        .unwrap();
    let refused = a
        .push_cas(&remote, BRANCH, late, Some(first), TIMEOUT)
        .unwrap();
    assert!(
        matches!(refused, CasOutcome::Rejected { .. }),
        "{refused:?}"
    );
    assert_eq!(
        git(
            &remote_path,
            &["show", &format!("{on_remote}:ledger/d.jsonl")]
        ),
        "a1\nb1\n"
    );
    assert_eq!(
        git(&remote_path, &["rev-list", "--count", &on_remote]).trim(),
        "2"
    );
    assert_eq!(
        a.fetch(&remote, BRANCH, TRACKING, TIMEOUT).unwrap(),
        Some(second)
    );
    assert_eq!(read(&a, second, "ledger/d.jsonl"), "a1\nb1\n");
}
