//! Runs killed with SIGKILL at every checkpoint of preparing, committing and removing a
//! worktree (stopped there, or killed on the fly while they keep going) leave nothing that the
//! next `cleanup_stale` does not remove; a live run's worktree survives it. And a hostile
//! environment (inherited `GIT_DIR`/`GIT_WORK_TREE`/`GIT_INDEX_FILE`, a user configuration
//! that ignores everything and rewrites URLs) changes nothing.
//!
//! The child process is this test binary again, running [`child_role`] with a role set in
//! its environment.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe and reads its own test settings from the environment"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::{Fixture, branches, set_executable, write};
use issueloop_config::builtin_policy;
use issueloop_policy::{CompiledPolicy, approve};
use issueloop_workspace::{BaseRef, CheckpointHook, RemoteSpec, Workspace};

const ROLE: &str = "ISSUELOOP_WORKSPACE_TEST_ROLE";
const BRANCH: &str = "loop/9-crash";

/// Every checkpoint of a run, in order (a fresh cache: the first run clones the mirror).
const CHECKPOINTS: &[&str] = &[
    "owner_written",
    "mirror_locked",
    "mirror_initialized",
    "fetch_progress",
    "fetched",
    "branch_created",
    "worktree_registered",
    "checkout_progress",
    "worktree_added",
    "ready",
    "commit_tree_written",
    "commit_written",
    "branch_updated",
    "checkout_removed",
    "mirror_entry_removed",
];

/// The child's half; does nothing in a normal test run.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    match role.as_str() {
        "run" => child_run(&var("CACHE"), &var("REMOTE"), &var("STOP_AT")),
        "facts" => child_facts(&var("CACHE"), &var("REMOTE")),
        other => panic!("unknown role {other}"),
    }
}

/// Prepare, change, commit, remove; report each checkpoint and stop forever at `stop_at`.
fn child_run(cache: &str, remote: &str, stop_at: &str) {
    let stop_at = stop_at.to_owned();
    let hook: CheckpointHook = Arc::new(move |name: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "CHECKPOINT {name}");
        let _ = out.flush();
        if name == stop_at {
            loop {
                std::thread::park();
            }
        }
    });
    let ws = Workspace::new(cache).with_checkpoint_hook(hook);
    let mut wt = ws
        .prepare_worktree(
            &Fixture::repo(),
            &RemoteSpec::new(remote, None),
            BRANCH,
            &BaseRef::DefaultBranch,
        )
        .unwrap();
    write(wt.path(), "src/crash.rs", "// written before the crash\n");
    let policy = CompiledPolicy::new(&builtin_policy().for_repo(None)).unwrap();
    let change = approve(wt.run_change_facts().unwrap(), &policy).unwrap();
    wt.commit(&change, "crash test\n").unwrap();
    wt.remove().unwrap();
    println!("FINISHED");
}

fn spawn_child(role: &str, envs: &[(&str, &Path)], stop_at: &str) -> (Child, Receiver<String>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_role",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(ROLE, role)
    .env("STOP_AT", stop_at)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait for the child to report `checkpoint`, then kill it with SIGKILL.
fn kill_at(child: &mut Child, lines: &Receiver<String>, checkpoint: &str) {
    let wanted = format!("CHECKPOINT {checkpoint}");
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            // The first line shares its line with the test harness's `test child_role ... `.
            Ok(line) if line.ends_with(&wanted) => break,
            Ok(line) if line.ends_with("FINISHED") => {
                panic!("the run finished before `{checkpoint}`")
            }
            Ok(_) => {}
            Err(e) => panic!("no `{checkpoint}` from the child: {e}"),
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// After `cleanup_stale`, the cache holds a healthy mirror and nothing of any run.
fn assert_clean(fx: &Fixture, context: &str) {
    let ws = fx.workspace();
    let report = ws.cleanup_stale().unwrap();
    let mirror = fx.cache.join("mirrors/acme/api.git");
    let leftovers: Vec<String> = fx
        .cache_listing()
        .into_iter()
        .filter(|p| {
            p.starts_with("worktrees/acme/api/")
                || p.contains(".tmp-")
                || p.starts_with("mirrors/acme/api.git/worktrees/")
                || (p.starts_with("mirrors/acme/api.git/") && p.ends_with(".lock"))
                || p.contains("_git2_")
                || p.contains("/tmp_")
        })
        .collect();
    assert_eq!(leftovers, Vec::<String>::new(), "{context}: {report:?}");
    if mirror.exists() {
        assert_eq!(
            branches(&mirror),
            Vec::<String>::new(),
            "{context}: {report:?}"
        );
    }
    // The next run on the same branch works and cleans up after itself.
    let wt = fx.prepare(&ws, BRANCH);
    assert!(wt.path().join("README.md").exists(), "{context}");
    wt.remove().unwrap();
    assert_eq!(
        std::fs::read_dir(fx.cache.join("worktrees/acme/api"))
            .unwrap()
            .count(),
        0,
        "{context}"
    );
}

fn envs(fx: &Fixture) -> Vec<(&'static str, &Path)> {
    vec![
        ("CACHE", fx.cache.as_path()),
        ("REMOTE", fx.remote.as_path()),
    ]
}

#[test]
fn a_run_stopped_and_killed_at_any_checkpoint_is_cleaned_at_the_next_start() {
    for checkpoint in CHECKPOINTS {
        let fx = Fixture::new();
        let (mut child, lines) = spawn_child("run", &envs(&fx), checkpoint);
        kill_at(&mut child, &lines, checkpoint);
        assert_clean(&fx, &format!("killed at {checkpoint}"));
    }
}

#[test]
fn a_run_killed_on_the_fly_after_any_checkpoint_is_cleaned_at_the_next_start() {
    // The child keeps going after reporting a checkpoint; SIGKILL lands wherever it got to
    // (inside a fetch, a checkout, a ref update, a removal).
    for checkpoint in CHECKPOINTS {
        let fx = Fixture::new();
        let (mut child, lines) = spawn_child("run", &envs(&fx), "never");
        kill_at(&mut child, &lines, checkpoint);
        assert_clean(&fx, &format!("killed after {checkpoint}"));
    }
}

#[test]
fn cleanup_spares_a_live_run_and_removes_it_once_dead() {
    let fx = Fixture::new();
    let (mut child, lines) = spawn_child("run", &envs(&fx), "ready");
    let wanted = "CHECKPOINT ready";
    while !lines
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .ends_with(wanted)
    {}
    let report = fx.workspace().cleanup_stale().unwrap();
    assert_eq!(
        report.removed,
        Vec::<String>::new(),
        "the live run is left alone"
    );
    let live: Vec<String> = fx
        .cache_listing()
        .into_iter()
        .filter(|p| p.starts_with("worktrees/acme/api/") && p.ends_with(".ready"))
        .collect();
    assert_eq!(live.len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let report = fx.workspace().cleanup_stale().unwrap();
    assert!(
        report
            .removed
            .iter()
            .any(|l| l.contains("stale worktree") && l.contains(BRANCH)),
        "{report:?}"
    );
    assert_clean(&fx, "after the live run died");
}

#[test]
fn stale_lock_files_in_the_mirror_are_removed() {
    let fx = Fixture::new();
    fx.prepare(&fx.workspace(), "loop/1-a").remove().unwrap();
    let mirror = fx.cache.join("mirrors/acme/api.git");
    for lock in ["packed-refs.lock", "refs/heads/loop/1-a.lock", "HEAD.lock"] {
        write(&mirror, lock, "");
    }
    let report = fx.workspace().cleanup_stale().unwrap();
    assert_eq!(report.removed.len(), 3, "{report:?}");
    assert_clean(&fx, "after stale locks");
}

/// Prepare, change like an agent, and print the facts and the committed tree.
fn child_facts(cache: &str, remote: &str) {
    let ws = Workspace::new(cache);
    let mut wt = ws
        .prepare_worktree(
            &Fixture::repo(),
            &RemoteSpec::new(remote, None),
            BRANCH,
            &BaseRef::DefaultBranch,
        )
        .unwrap();
    let dir = wt.path().to_owned();
    write(
        &dir,
        "src/lib.rs",
        "pub fn answer() -> u32 {\r\n    43\r\n}\r\n",
    );
    write(&dir, "src/new.rs", "// new\n");
    set_executable(&dir, "scripts/run.sh", true);
    write(&dir, ".env", "X=1\n");
    std::os::unix::fs::symlink("src/lib.rs", dir.join("latest")).unwrap();
    let facts = wt.run_change_facts().unwrap();
    let facts_json = serde_json::to_string(&facts).unwrap();
    let mut committed = facts.clone();
    committed.paths.retain(|p| !p.ignored);
    let policy = CompiledPolicy::new(&builtin_policy().for_repo(None)).unwrap();
    let change = approve(committed, &policy).unwrap();
    let outcome = wt.commit(&change, "hermetic\n").unwrap();
    let tree = match outcome {
        issueloop_workspace::CommitOutcome::Committed { id, .. } => {
            common::git(&dir, &["rev-parse", &format!("{id}^{{tree}}")])
        }
        other => panic!("{other:?}"),
    };
    // Facts carry the base commit id, which is the same remote commit for both processes.
    println!("FACTS {facts_json}");
    println!("TREE {tree}");
}

fn read_child_output(fx: &Fixture, extra: &[(&str, &Path)], cache: &Path) -> (String, String) {
    let mut all = vec![("CACHE", cache), ("REMOTE", fx.remote.as_path())];
    all.extend_from_slice(extra);
    let (mut child, lines) = spawn_child("facts", &all, "never");
    let mut facts = None;
    let mut tree = None;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
        if let Some((_, f)) = line.split_once("FACTS ") {
            facts = Some(f.to_owned());
        } else if let Some((_, t)) = line.split_once("TREE ") {
            tree = Some(t.to_owned());
        }
    }
    assert!(child.wait().unwrap().success());
    (facts.expect("facts printed"), tree.expect("tree printed"))
}

#[test]
fn a_hostile_environment_changes_nothing() {
    let fx = Fixture::new();
    let root = fx.root();
    let plain = read_child_output(&fx, &[], &root.join("cache-plain"));

    // A decoy repository the inherited variables point at.
    let decoy = root.join("decoy");
    std::fs::create_dir_all(&decoy).unwrap();
    common::git(&decoy, &["init", "-q"]);
    // A user configuration that would change what is seen, committed and fetched.
    let home = root.join("home");
    write(&home, "ignore-all", "*\n");
    let hostile = format!(
        "[core]\n\texcludesFile = {}\n\tautocrlf = true\n\tfilemode = false\n\tsymlinks = false\n\
         [url \"file:///nonexistent/\"]\n\tinsteadOf = {}\n\
         [user]\n\tname = Someone Else\n\temail = else@example.com\n",
        home.join("ignore-all").display(),
        fx.remote.parent().unwrap().display()
    );
    write(&home, ".gitconfig", &hostile);
    write(&home, ".config/git/config", &hostile);
    let decoy_git = decoy.join(".git");
    let decoy_index = decoy.join(".git/index");
    let gitconfig = home.join(".gitconfig");
    let xdg = home.join(".config");
    let hostile_env: Vec<(&str, &Path)> = vec![
        ("GIT_DIR", decoy_git.as_path()),
        ("GIT_WORK_TREE", decoy.as_path()),
        ("GIT_INDEX_FILE", decoy_index.as_path()),
        ("HOME", home.as_path()),
        ("XDG_CONFIG_HOME", xdg.as_path()),
        ("GIT_CONFIG_GLOBAL", gitconfig.as_path()),
    ];
    let hostile_run = read_child_output(&fx, &hostile_env, &root.join("cache-hostile"));
    assert_eq!(plain.0, hostile_run.0, "facts differ");
    assert_eq!(plain.1, hostile_run.1, "committed tree differs");
    let facts: serde_json::Value = serde_json::from_str(&plain.0).unwrap();
    let paths: Vec<&str> = facts["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            ".env",
            "latest",
            "scripts/run.sh",
            "src/lib.rs",
            "src/new.rs"
        ]
    );
    assert_eq!(
        common::git(&decoy, &["status", "--porcelain"]),
        "",
        "the decoy is untouched"
    );
}

#[test]
fn a_dead_run_lock_on_its_branch_goes_even_while_another_run_is_live() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let live = fx.prepare(&ws, "loop/1-live");
    let (mut child, lines) = spawn_child("run", &envs(&fx), "ready");
    kill_at(&mut child, &lines, "ready");
    // As if it died while updating its branch.
    let mirror = fx.cache.join("mirrors/acme/api.git");
    write(&mirror, &format!("refs/heads/{BRANCH}.lock"), "");
    let report = ws.cleanup_stale().unwrap();
    assert!(
        report.removed.iter().any(|l| l.contains("stale worktree")),
        "{report:?}"
    );
    assert_eq!(branches(&mirror), vec!["loop/1-live".to_owned()]);
    assert!(!mirror.join(format!("refs/heads/{BRANCH}.lock")).exists());
    assert!(
        live.path().join("README.md").exists(),
        "the live run is untouched"
    );
    drop(live);
    assert_clean(&fx, "after both");
}
