//! Committing approved changes and pushing them: exactly the judged paths and content, the bot
//! identity, the run's branch only, fast-forward pushes, divergence reported and never
//! overwritten.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod common;

use common::{Fixture, git, set_executable, symlink, write};
use issueloop_config::builtin_policy;
use issueloop_policy::{ApprovedChange, CompiledPolicy, approve};
use issueloop_workspace::{
    CommitOutcome, Identity, PushOutcome, RemoteSpec, WorkspaceError, Worktree, commit_message,
};

fn approved(wt: &Worktree) -> ApprovedChange {
    let policy = CompiledPolicy::new(&builtin_policy().for_repo(Some(&Fixture::repo()))).unwrap();
    let facts = wt.run_change_facts().unwrap();
    approve(facts, &policy).unwrap_or_else(|v| panic!("{v}"))
}

fn committed_id(outcome: CommitOutcome) -> String {
    match outcome {
        CommitOutcome::Committed { id, .. } => id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_commit_holds_exactly_the_judged_change() {
    let fx = Fixture::new();
    let ws = fx.workspace().with_identity(Identity {
        name: "loop-bot".into(),
        email: "bot@example.com".into(),
    });
    let mut wt = fx.prepare(&ws, "loop/7-answer");
    let dir = wt.path().to_owned();
    write(&dir, "src/lib.rs", "pub fn answer() -> u32 {\n    43\n}\n");
    write(&dir, "src/new.rs", "// new\n");
    std::fs::remove_file(dir.join("README.md")).unwrap();
    git(&dir, &["mv", "docs/ci.yml", "docs/pipeline.yml"]);
    set_executable(&dir, "scripts/run.sh", true);
    symlink(&dir, "latest", "src/lib.rs");
    write(&dir, "debug.log", "ignored, never committed\n");
    let change = approved(&wt);
    let message = commit_message(7, "Answer 43");
    let outcome = wt.commit(&change, &message).unwrap();
    let CommitOutcome::Committed { id, parent } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(parent, wt.start_commit());
    assert_eq!(wt.tip_commit(), id);

    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), id);
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%an <%ae>|%cn|%s"]),
        "loop-bot <bot@example.com>|loop-bot|issueloop: Answer 43 (#7)"
    );
    let changed = git(
        &dir,
        &["diff", "--name-status", "-M", &format!("{parent}..{id}")],
    );
    assert_eq!(
        changed,
        "D\tREADME.md\nR100\tdocs/ci.yml\tdocs/pipeline.yml\nA\tlatest\nM\tscripts/run.sh\nM\tsrc/lib.rs\nA\tsrc/new.rs"
    );
    assert_eq!(
        git(&dir, &["ls-tree", &id, "scripts/run.sh"])
            .split(' ')
            .next(),
        Some("100755")
    );
    assert_eq!(
        git(&dir, &["ls-tree", &id, "latest"]).split(' ').next(),
        Some("120000")
    );
    assert_eq!(
        git(&dir, &["cat-file", "-p", &format!("{id}:latest")]),
        "src/lib.rs"
    );
    assert_eq!(
        git(&dir, &["status", "--porcelain"]),
        "",
        "the worktree is clean after"
    );
    assert_eq!(
        git(&dir, &["ls-tree", "-r", "--name-only", &id, "vendor"]),
        "vendor/lib",
        "the submodule pointer stays"
    );
}

#[test]
fn commits_the_agent_made_are_folded_into_one() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/1-a");
    write(wt.path(), "a.txt", "a\n");
    git(wt.path(), &["add", "."]);
    git(wt.path(), &["commit", "-q", "-m", "agent: wip"]);
    write(wt.path(), "b.txt", "b\n");
    let change = approved(&wt);
    let id = committed_id(wt.commit(&change, "issueloop: a and b (#1)\n").unwrap());
    assert_eq!(
        git(
            wt.path(),
            &[
                "rev-list",
                "--count",
                &format!("{}..{id}", wt.start_commit())
            ]
        ),
        "1"
    );
    assert_eq!(
        git(
            wt.path(),
            &["ls-tree", "--name-only", &id, "a.txt", "b.txt"]
        ),
        "a.txt\nb.txt"
    );
}

#[test]
fn content_changed_after_judging_is_refused() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/1-a");
    write(wt.path(), "src/new.rs", "// judged\n");
    let change = approved(&wt);
    write(wt.path(), "src/new.rs", "// swapped after judging\n");
    let err = wt.commit(&change, "x\n").unwrap_err();
    assert!(
        matches!(err, WorkspaceError::ChangedSinceJudged { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("`src/new.rs`"), "{err}");
    assert_eq!(
        git(wt.path(), &["rev-parse", "HEAD"]),
        wt.start_commit(),
        "nothing committed"
    );
}

#[test]
fn files_not_in_the_judged_change_are_not_committed() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/1-a");
    write(wt.path(), "judged.txt", "judged\n");
    let change = approved(&wt);
    write(wt.path(), "late.txt", "appeared after judging\n");
    let id = committed_id(wt.commit(&change, "x\n").unwrap());
    assert_eq!(
        git(
            wt.path(),
            &["ls-tree", "--name-only", &id, "judged.txt", "late.txt"]
        ),
        "judged.txt"
    );
}

#[test]
fn facts_against_another_base_are_refused() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/1-a");
    write(wt.path(), "a.txt", "a\n");
    git(wt.path(), &["add", "."]);
    git(wt.path(), &["commit", "-q", "-m", "agent"]);
    write(wt.path(), "b.txt", "b\n");
    let policy = CompiledPolicy::new(&builtin_policy().for_repo(None)).unwrap();
    let head = git(wt.path(), &["rev-parse", "HEAD"]);
    let since_head = approve(wt.change_facts(Some(&head)).unwrap(), &policy).unwrap();
    let err = wt.commit(&since_head, "x\n").unwrap_err();
    assert!(
        matches!(err, WorkspaceError::FactsBaseMismatch { .. }),
        "{err}"
    );
}

#[test]
fn an_empty_change_commits_nothing() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/1-a");
    let change = approved(&wt);
    assert_eq!(
        wt.commit(&change, "x\n").unwrap(),
        CommitOutcome::NothingToCommit
    );
}

#[test]
fn push_creates_then_fast_forwards_then_is_up_to_date() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/3-push");
    write(wt.path(), "one.txt", "1\n");
    let first = committed_id(wt.commit(&approved(&wt), "one\n").unwrap());
    assert_eq!(
        wt.push(&fx.spec()).unwrap(),
        PushOutcome::Created {
            commit: first.clone()
        }
    );
    assert_eq!(fx.remote_rev("refs/heads/loop/3-push"), Some(first.clone()));

    write(wt.path(), "two.txt", "2\n");
    let second = committed_id(wt.commit(&approved(&wt), "two\n").unwrap());
    assert_eq!(git(wt.path(), &["rev-parse", &format!("{second}^")]), first);
    assert_eq!(
        wt.push(&fx.spec()).unwrap(),
        PushOutcome::FastForwarded {
            from: first,
            to: second.clone()
        }
    );
    assert_eq!(
        wt.push(&fx.spec()).unwrap(),
        PushOutcome::UpToDate {
            commit: second.clone()
        }
    );
    assert_eq!(fx.remote_rev("refs/heads/loop/3-push"), Some(second));
    assert_eq!(
        fx.remote_rev("refs/heads/main"),
        Some(wt.start_commit()),
        "main untouched"
    );
}

#[test]
fn a_diverged_remote_branch_is_reported_and_never_overwritten() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/4-race");
    write(wt.path(), "mine.txt", "mine\n");
    let mine = committed_id(wt.commit(&approved(&wt), "mine\n").unwrap());
    let theirs = fx.push_as_someone_else("loop/4-race", &[("theirs.txt", "theirs\n")]);
    assert_eq!(
        wt.push(&fx.spec()).unwrap(),
        PushOutcome::Diverged {
            remote: theirs.clone(),
            local: mine
        }
    );
    assert_eq!(
        fx.remote_rev("refs/heads/loop/4-race"),
        Some(theirs.clone()),
        "not overwritten"
    );
    drop(wt);

    // A rerun continues on top of their commit and pushes a fast-forward.
    let mut rerun = fx.prepare(&fx.workspace(), "loop/4-race");
    assert!(rerun.continued_existing_branch());
    assert!(rerun.path().join("theirs.txt").exists());
    write(rerun.path(), "mine.txt", "mine\n");
    let next = committed_id(rerun.commit(&approved(&rerun), "mine again\n").unwrap());
    assert_eq!(
        rerun.push(&fx.spec()).unwrap(),
        PushOutcome::FastForwarded {
            from: theirs,
            to: next
        }
    );
}

#[test]
fn pushing_refuses_credentials_in_the_url() {
    let fx = Fixture::new();
    let mut wt = fx.prepare(&fx.workspace(), "loop/1-a");
    write(wt.path(), "a.txt", "a\n");
    wt.commit(&approved(&wt), "a\n").unwrap();
    let err = wt
        .push(&RemoteSpec::new(
            "https://user:hunter2@example.com/acme/api.git",
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::CredentialsInUrl { .. }));
    assert!(!err.to_string().contains("hunter2"));
}
