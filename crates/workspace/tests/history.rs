//! What a run's branch holds beyond the default branch: the fork point and the committed diff
//! stat, on branches someone pushed before the run; and a seeded bare repository.

mod common;

use common::{Fixture, git};
use issueloop_workspace::{FileDiffStat, Identity, seed_bare_repository};

#[test]
fn a_fresh_branch_forks_at_its_start_and_holds_no_change() {
    let f = Fixture::new();
    let ws = f.workspace();
    let wt = f.prepare(&ws, "loop/1-fresh");
    let main = f.remote_rev("refs/heads/main").unwrap();
    assert!(!wt.continued_existing_branch());
    assert_eq!(wt.fork_point(&main).unwrap(), wt.start_commit());
    assert_eq!(wt.committed_diff_stat(&main).unwrap(), Vec::new());
}

#[test]
fn a_continued_branch_forks_at_the_default_branch_and_counts_its_lines() {
    let f = Fixture::new();
    let main = f.remote_rev("refs/heads/main").unwrap();
    let tip = f.push_as_someone_else(
        "loop/2-carried",
        &[
            ("README.md", "# demo\n\nChanged.\n"),
            ("notes/b.txt", "one\ntwo\n"),
        ],
    );
    let ws = f.workspace();
    let wt = f.prepare(&ws, "loop/2-carried");
    assert!(wt.continued_existing_branch());
    assert_eq!(wt.start_commit(), tip);
    assert_eq!(wt.fork_point(&main).unwrap(), main);
    assert_eq!(
        wt.committed_diff_stat(&main).unwrap(),
        vec![
            FileDiffStat {
                path: "README.md".into(),
                insertions: 1,
                deletions: 1,
            },
            FileDiffStat {
                path: "notes/b.txt".into(),
                insertions: 2,
                deletions: 0,
            },
        ]
    );
    // A base that is no commit id is an error, not a guess.
    assert!(wt.fork_point("main").is_err());
    assert!(wt.committed_diff_stat("not-a-commit").is_err());
}

#[test]
fn a_seeded_repository_holds_one_commit_of_the_files_on_main() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("seeded.git");
    let author = Identity {
        name: "Seeder".into(),
        email: "seeder@example.invalid".into(),
    };
    let id = seed_bare_repository(
        &path,
        &[("README.md", "# hi\n"), ("src/lib.rs", "pub fn f() {}\n")],
        &author,
        "first",
    )
    .unwrap();
    assert_eq!(git(&path, &["rev-parse", "refs/heads/main"]), id);
    assert_eq!(git(&path, &["rev-list", "--count", "main"]), "1");
    assert_eq!(git(&path, &["show", "main:src/lib.rs"]), "pub fn f() {}");
    assert_eq!(
        git(&path, &["log", "-1", "--format=%an <%ae> %s", "main"]),
        "Seeder <seeder@example.invalid> first"
    );
    assert_eq!(git(&path, &["rev-parse", "--is-bare-repository"]), "true");
}
