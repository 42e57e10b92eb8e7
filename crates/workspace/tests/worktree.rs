//! Worktrees on real repositories: mirror cloned once and fetched after, the run's branch from
//! the default head or continued from the remote branch, removal on success, drop and error,
//! protected branches, concurrent runs, and no credentials written anywhere.

mod common;

use std::path::Path;

use common::{Fixture, branches, git, write};
use issueloop_config::Secret;
use issueloop_workspace::{
    BaseRef, Credentials, RemoteSpec, Workspace, WorkspaceError, branch_name,
};

fn mirror(fx: &Fixture) -> std::path::PathBuf {
    fx.cache.join("mirrors/acme/api.git")
}

#[test]
fn a_worktree_starts_at_the_default_head_on_the_run_branch() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let branch = branch_name("loop/", 12, "Fix the answer");
    let wt = fx.prepare(&ws, &branch);
    assert_eq!(wt.branch(), "loop/12-fix-the-answer");
    assert_eq!(wt.default_branch(), Some("main"));
    assert_eq!(Some(wt.start_commit()), fx.remote_rev("main"));
    assert!(!wt.continued_existing_branch());
    for (path, content) in common::FILES {
        let on_disk = std::fs::read_to_string(wt.path().join(path)).unwrap();
        assert_eq!(&on_disk, content, "{path}");
    }
    assert_eq!(
        git(wt.path(), &["symbolic-ref", "HEAD"]),
        "refs/heads/loop/12-fix-the-answer"
    );
    assert_eq!(
        git(wt.path(), &["status", "--porcelain"]),
        "",
        "a fresh worktree is clean"
    );
    let dir = wt.path().parent().unwrap().to_owned();
    let name = wt
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(dir.join(format!("{name}.ready")).exists());
    assert!(dir.join(format!("{name}.owner.json")).exists());
    assert!(mirror(&fx).join("worktrees").join(&name).exists());

    let path = wt.path().to_owned();
    wt.remove().unwrap();
    assert!(!path.exists());
    assert!(!mirror(&fx).join("worktrees").join(&name).exists());
    assert_eq!(
        branches(&mirror(&fx)),
        Vec::<String>::new(),
        "local branch removed"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "markers removed"
    );
    assert_eq!(
        fx.remote_rev("refs/heads/loop/12-fix-the-answer"),
        None,
        "nothing pushed"
    );
}

#[test]
fn dropping_a_worktree_removes_it() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let path = {
        let wt = fx.prepare(&ws, "loop/1-drop");
        write(wt.path(), "new.txt", "x");
        wt.path().to_owned()
    };
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        0
    );
}

#[test]
fn the_mirror_is_cloned_once_and_fetched_after() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    fx.prepare(&ws, "loop/1-a").remove().unwrap();
    let marker = mirror(&fx).join("issueloop-test-marker");
    std::fs::write(&marker, "").unwrap();
    let newer = fx.push_as_someone_else("main", &[("CHANGELOG.md", "news\n")]);
    let wt = fx.prepare(&ws, "loop/2-b");
    assert!(marker.exists(), "the mirror was reused, not cloned again");
    assert_eq!(wt.start_commit(), newer, "fetched the new default head");
    assert!(wt.path().join("CHANGELOG.md").exists());
}

#[test]
fn deleted_remote_branches_are_pruned_from_the_mirror() {
    let fx = Fixture::new();
    fx.push_as_someone_else("feature", &[("f.txt", "f\n")]);
    let ws = fx.workspace();
    fx.prepare(&ws, "loop/1-a").remove().unwrap();
    let has = |m: &Path| !git(m, &["for-each-ref", "refs/remotes/origin/feature"]).is_empty();
    assert!(has(&mirror(&fx)));
    git(&fx.remote, &["branch", "-D", "feature"]);
    fx.prepare(&ws, "loop/2-b").remove().unwrap();
    assert!(!has(&mirror(&fx)));
}

#[test]
fn a_rerun_continues_on_the_remote_branch_without_discarding_commits() {
    let fx = Fixture::new();
    let theirs = fx.push_as_someone_else("loop/5-x", &[("from-a-human.txt", "hi\n")]);
    let wt = fx.prepare(&fx.workspace(), "loop/5-x");
    assert!(wt.continued_existing_branch());
    assert_eq!(wt.start_commit(), theirs);
    assert!(wt.path().join("from-a-human.txt").exists());
}

#[test]
fn a_base_branch_or_commit_can_be_chosen() {
    let fx = Fixture::new();
    let first = fx.remote_rev("main").unwrap();
    let dev = fx.push_as_someone_else("develop", &[("dev.txt", "dev\n")]);
    let ws = fx.workspace();
    let wt = ws
        .prepare_worktree(
            &Fixture::repo(),
            &fx.spec(),
            "loop/1-a",
            &BaseRef::Branch("develop".into()),
        )
        .unwrap();
    assert_eq!(wt.start_commit(), dev);
    let wt2 = ws
        .prepare_worktree(
            &Fixture::repo(),
            &fx.spec(),
            "loop/2-b",
            &BaseRef::Commit(first.clone()),
        )
        .unwrap();
    assert_eq!(wt2.start_commit(), first);
    let err = ws
        .prepare_worktree(
            &Fixture::repo(),
            &fx.spec(),
            "loop/3-c",
            &BaseRef::Branch("nope".into()),
        )
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::BaseNotFound { .. }), "{err}");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[test]
fn protected_branches_are_refused() {
    let fx = Fixture::with_default_branch("trunk");
    let ws = fx
        .workspace()
        .with_protected_branches(vec!["release".into()]);
    for branch in ["release", "trunk"] {
        let err = ws
            .prepare_worktree(
                &Fixture::repo(),
                &fx.spec(),
                branch,
                &BaseRef::DefaultBranch,
            )
            .unwrap_err();
        assert!(
            matches!(err, WorkspaceError::ProtectedBranch { .. }),
            "{branch}: {err}"
        );
        assert!(err.to_string().contains(&format!("`{branch}`")), "{err}");
    }
    let dir = fx.cache.join("worktrees/acme/api");
    assert_eq!(
        std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
        0,
        "nothing left"
    );
    assert_eq!(branches(&mirror(&fx)), Vec::<String>::new());
}

#[test]
fn a_failed_prepare_leaves_nothing_behind() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let spec = RemoteSpec::new(fx.root().join("missing.git").to_str().unwrap(), None);
    let err = ws
        .prepare_worktree(&Fixture::repo(), &spec, "loop/1-a", &BaseRef::DefaultBranch)
        .unwrap_err();
    assert!(err.to_string().contains("cannot fetch"), "{err}");
    let left: Vec<String> = fx
        .cache_listing()
        .into_iter()
        .filter(|p| p.starts_with("worktrees/acme/api/") || p.contains(".tmp-"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn the_same_branch_cannot_be_worked_on_twice_at_once() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let first = fx.prepare(&ws, "loop/1-a");
    let err = ws
        .prepare_worktree(
            &Fixture::repo(),
            &fx.spec(),
            "loop/1-a",
            &BaseRef::DefaultBranch,
        )
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::BranchInUse { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("`{}`", first.path().display())),
        "{err}"
    );
    assert!(
        first.path().join("README.md").exists(),
        "the first run is untouched"
    );
    assert_eq!(git(first.path(), &["status", "--porcelain"]), "");
    drop(first);
    fx.prepare(&ws, "loop/1-a").remove().unwrap();
}

#[test]
fn two_runs_on_one_repository_work_side_by_side() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=3)
            .map(|n| {
                let ws = ws.clone();
                let fx = &fx;
                s.spawn(move || {
                    let mut wt = fx.prepare(&ws, &format!("loop/{n}-run"));
                    write(
                        wt.path(),
                        &format!("src/run{n}.rs"),
                        format!("// run {n}\n"),
                    );
                    let facts = wt.run_change_facts().unwrap();
                    let paths: Vec<String> = facts.paths.iter().map(|p| p.path.clone()).collect();
                    let policy = issueloop_policy::CompiledPolicy::new(
                        &issueloop_config::builtin_policy().for_repo(None),
                    )
                    .unwrap();
                    let approved = issueloop_policy::approve(facts, &policy).unwrap();
                    wt.commit(&approved, &format!("run {n}\n")).unwrap();
                    let pushed = wt.push(&fx.spec()).unwrap();
                    (paths, pushed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (n, (paths, pushed)) in results.into_iter().enumerate() {
        let n = n + 1;
        assert_eq!(paths, vec![format!("src/run{n}.rs")]);
        assert!(
            matches!(pushed, issueloop_workspace::PushOutcome::Created { .. }),
            "{pushed:?}"
        );
        assert!(fx.remote_rev(&format!("refs/heads/loop/{n}-run")).is_some());
    }
}

#[test]
fn credentials_never_land_in_urls_config_or_files() {
    let fx = Fixture::new();
    let token = "ghp_TESTTOKEN0123456789abcdefghijklmnop";
    let spec = RemoteSpec::new(
        fx.remote.to_str().unwrap(),
        Some(Credentials::github_token(Secret::new(token.into()))),
    );
    let ws = fx.workspace();
    let wt = ws
        .prepare_worktree(&Fixture::repo(), &spec, "loop/1-a", &BaseRef::DefaultBranch)
        .unwrap();
    let config = std::fs::read_to_string(mirror(&fx).join("config")).unwrap();
    assert!(
        !config.contains("[remote"),
        "no remote is configured: {config}"
    );
    for rel in fx.cache_listing() {
        let path = fx.cache.join(&rel);
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(token),
                "token found in {rel}"
            );
        }
    }
    drop(wt);

    let url = format!("https://x-access-token:{token}@github.com/acme/api.git");
    let err = ws
        .prepare_worktree(
            &Fixture::repo(),
            &RemoteSpec::new(url, None),
            "loop/1-a",
            &BaseRef::DefaultBranch,
        )
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::CredentialsInUrl { .. }));
    assert!(!err.to_string().contains(token), "{err}");
}

#[test]
fn invalid_branch_names_are_refused() {
    let fx = Fixture::new();
    let err = fx
        .workspace()
        .prepare_worktree(
            &Fixture::repo(),
            &fx.spec(),
            "loop/a..b",
            &BaseRef::DefaultBranch,
        )
        .unwrap_err();
    assert!(
        matches!(err, WorkspaceError::InvalidBranchName { .. }),
        "{err}"
    );
}

#[test]
fn cleanup_leaves_live_worktrees_alone() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let wt = fx.prepare(&ws, "loop/1-live");
    let report = Workspace::new(&fx.cache).cleanup_stale().unwrap();
    assert_eq!(report.removed, Vec::<String>::new());
    assert!(wt.path().join("README.md").exists());
    assert_eq!(branches(&mirror(&fx)), vec!["loop/1-live".to_owned()]);
}
