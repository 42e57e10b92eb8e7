//! `run_gates` with real subprocesses in real git repositories: statuses, timeouts that stop the
//! whole process group, bounded output, the scrubbed environment, rejected gates never spawned,
//! and files left behind attributed to the gate that left them.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use issueloop_config::AllowRule;
use issueloop_gates::{
    Gate, GateOrigin, GateReport, GateSpec, GateStatus, LeftoverCheck, RepoFacts, RunOptions, plan,
    run_gates,
};
use support::Repo;

fn gate(argv: &[&str]) -> Gate {
    Gate {
        name: argv.join(" "),
        origin: GateOrigin::Explicit,
        spec: GateSpec::Command(argv.iter().map(|s| (*s).to_owned()).collect()),
    }
}

/// Rules of these tests: the default policy plus `sh` and a program that does not exist.
fn rules() -> Vec<AllowRule> {
    let mut rules = issueloop_config::builtin_policy().allowlist;
    for program in ["sh", "no-such-program-issueloop"] {
        rules.push(AllowRule {
            program: program.into(),
            subcommands: None,
            options: Vec::new(),
            source: "tests".into(),
        });
    }
    rules
}

async fn run(repo: &Repo, gates: &[Gate], opts: &RunOptions) -> GateReport {
    let planned = plan(gates, &RepoFacts::default(), &rules());
    run_gates(repo.path(), &planned, opts)
        .await
        .expect("gates set up")
}

fn committed_repo() -> Repo {
    let repo = Repo::new(&[("README.md", "# x\n"), ("a.txt", "a\n")]);
    repo.commit_all();
    repo
}

#[tokio::test]
async fn statuses_exit_codes_and_not_found() {
    let repo = committed_repo();
    let report = run(
        &repo,
        &[
            gate(&["sh", "-c", "echo hello; echo oops >&2"]),
            gate(&["sh", "-c", "exit 3"]),
            gate(&["no-such-program-issueloop", "--flag"]),
        ],
        &repo.run_options(),
    )
    .await;
    let [ok, failed, missing] = &report.results[..] else {
        panic!("three results: {report:?}");
    };
    assert_eq!(ok.status, GateStatus::Passed);
    assert_eq!(ok.exit_code, Some(0));
    assert!(
        ok.output.contains("hello") && ok.output.contains("oops"),
        "{}",
        ok.output
    );
    assert_eq!(failed.status, GateStatus::Failed);
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(missing.status, GateStatus::NotFound);
    let reason = missing.reason.as_deref().unwrap_or("");
    assert!(
        reason.contains("`no-such-program-issueloop` was not found"),
        "{reason}"
    );
    assert_eq!(report.leftover_check, LeftoverCheck::Checked);
    assert!(!report.passed());
}

#[tokio::test]
async fn rejected_gates_are_never_spawned() {
    let repo = committed_repo();
    let planned = plan(
        &[
            gate(&["sh", "-c", "touch spawned"]),
            gate(&["uv", "run", "--no-dev", "pytest"]),
        ],
        &RepoFacts {
            pyproject: true,
            dev_group: true,
            uv_lock: true,
            ..RepoFacts::default()
        },
        // The default policy has no `sh`.
        &issueloop_config::builtin_policy().allowlist,
    );
    let report = run_gates(repo.path(), &planned, &repo.run_options())
        .await
        .unwrap();
    for r in &report.results {
        assert_eq!(r.status, GateStatus::Rejected, "{r:?}");
        assert!(r.reason.is_some());
    }
    assert!(
        report.results[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("program `sh` is not in the gate allowlist")
    );
    assert!(
        report.results[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("remove `--no-dev`")
    );
    assert!(!repo.path().join("spawned").exists());
    assert_eq!(repo.status(), "");
}

fn alive(pid: u32) -> bool {
    // A zombie (not yet reaped by its new parent) is dead for this purpose.
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}

async fn wait_until_gone(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .expect("the gate wrote its child's pid")
        .trim()
        .parse()
        .expect("a pid")
}

#[tokio::test]
async fn timeout_stops_the_whole_process_group() {
    let repo = committed_repo();
    let outside = tempfile::tempdir().unwrap();
    let pidfile: PathBuf = outside.path().join("pid");
    let script = format!(
        "sleep 300 & echo $! > {}; echo started; wait",
        pidfile.display()
    );
    let opts = RunOptions {
        timeout: Duration::from_millis(700),
        kill_grace: Duration::from_millis(300),
        ..repo.run_options()
    };
    let started = std::time::Instant::now();
    let report = run(&repo, &[gate(&["sh", "-c", &script])], &opts).await;
    let r = &report.results[0];
    assert_eq!(r.status, GateStatus::TimedOut, "{r:?}");
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("did not finish within")
    );
    assert!(r.output.contains("started"));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        wait_until_gone(read_pid(&pidfile)).await,
        "the grandchild survived the timeout"
    );
}

#[tokio::test]
async fn background_processes_do_not_outlive_their_gate() {
    let repo = committed_repo();
    let outside = tempfile::tempdir().unwrap();
    let pidfile = outside.path().join("pid");
    let script = format!("sleep 300 & echo $! > {}; exit 0", pidfile.display());
    let started = std::time::Instant::now();
    let report = run(&repo, &[gate(&["sh", "-c", &script])], &repo.run_options()).await;
    assert_eq!(report.results[0].status, GateStatus::Passed);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited for the background process"
    );
    assert!(
        wait_until_gone(read_pid(&pidfile)).await,
        "the background process survived"
    );
}

#[tokio::test]
async fn output_is_bounded_head_and_tail() {
    let repo = committed_repo();
    let opts = RunOptions {
        output_limit_bytes: 1024,
        ..repo.run_options()
    };
    let script =
        "echo FIRST; i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done; echo LAST";
    let report = run(&repo, &[gate(&["sh", "-c", script])], &opts).await;
    let r = &report.results[0];
    assert_eq!(r.status, GateStatus::Passed);
    assert!(r.output_bytes > 100_000, "{}", r.output_bytes);
    assert!(r.output.len() < 1200, "{}", r.output.len());
    assert!(r.output.starts_with("FIRST"));
    assert!(r.output.trim_end().ends_with("LAST"));
    assert!(r.output.contains("bytes left out"));
}

#[tokio::test]
async fn environment_is_built_from_an_allowlist() {
    let repo = committed_repo();
    let mut opts = repo.run_options();
    for var in issueloop_config::CREDENTIAL_VARS {
        opts.env.set(*var, "ghp_shouldneverleak0000000000000000000");
    }
    opts.env.set("UV_NO_DEV", "1");
    opts.env.set("UV_FROZEN", "1");
    opts.env.set("PIP_INDEX_URL", "http://example.invalid");
    opts.env.set("VIRTUAL_ENV", "/somewhere");
    opts.env.set("PYTHONPATH", "/somewhere");
    let report = run(&repo, &[gate(&["sh", "-c", "env"])], &opts).await;
    let r = &report.results[0];
    assert_eq!(r.status, GateStatus::Passed);
    let vars: Vec<&str> = r
        .output
        .lines()
        .filter_map(|l| l.split('=').next())
        .collect();
    for gone in [
        "UV_NO_DEV",
        "UV_FROZEN",
        "PIP_INDEX_URL",
        "VIRTUAL_ENV",
        "PYTHONPATH",
    ]
    .iter()
    .chain(issueloop_config::CREDENTIAL_VARS)
    {
        assert!(!vars.contains(gone), "{gone} reached the gate");
    }
    assert!(!r.output.contains("ghp_"));
    assert!(r.output.contains("PYTHONDONTWRITEBYTECODE=1"));
    assert!(vars.contains(&"PATH") && vars.contains(&"PYTHONPYCACHEPREFIX"));
}

#[tokio::test]
async fn files_left_behind_are_attributed_to_their_gate() {
    let repo = committed_repo();
    let report = run(
        &repo,
        &[
            gate(&["sh", "-c", "true"]),
            gate(&["sh", "-c", "mkdir -p cache && echo x > cache/left.txt"]),
            gate(&["sh", "-c", "echo changed >> a.txt"]),
            gate(&["sh", "-c", "true"]),
        ],
        &repo.run_options(),
    )
    .await;
    let left: Vec<(&str, Vec<String>)> = report
        .left_behind()
        .into_iter()
        .map(|(g, f)| (g, f.to_vec()))
        .collect();
    assert_eq!(
        left,
        [
            (
                "sh -c mkdir -p cache && echo x > cache/left.txt",
                vec!["cache/left.txt".to_owned()]
            ),
            ("sh -c echo changed >> a.txt", vec!["a.txt".to_owned()]),
        ]
    );
    assert!(
        report
            .results
            .iter()
            .all(|r| r.status == GateStatus::Passed)
    );
    assert!(!report.passed(), "files left behind fail the report");
}

#[tokio::test]
async fn a_change_to_an_already_dirty_file_is_seen() {
    let repo = committed_repo();
    // The agent's change, before the gates.
    repo.write("a.txt", "agent\n");
    repo.write("new.txt", "agent\n");
    let report = run(
        &repo,
        &[
            gate(&["sh", "-c", "true"]),
            gate(&["sh", "-c", "echo gate >> new.txt"]),
        ],
        &repo.run_options(),
    )
    .await;
    assert!(report.results[0].left_files.is_empty());
    assert_eq!(report.results[1].left_files, ["new.txt"]);
}

#[tokio::test]
async fn builtin_utf8_check_runs_in_process() {
    let repo = committed_repo();
    repo.write("docs/bad.md", "caf\u{e9}\n");
    std::fs::write(repo.path().join("docs/latin1.md"), b"caf\xe9\n").unwrap();
    let gates = [Gate {
        name: "utf8-check".into(),
        origin: GateOrigin::Auto,
        spec: GateSpec::Utf8Check(vec!["docs/bad.md".into(), "docs/latin1.md".into()]),
    }];
    // No rule at all: the built-in check runs no program, so the allowlist does not apply.
    let planned = plan(&gates, &RepoFacts::default(), &[]);
    let report = run_gates(repo.path(), &planned, &repo.run_options())
        .await
        .unwrap();
    let r = &report.results[0];
    assert_eq!(r.status, GateStatus::Failed);
    assert_eq!(
        r.argv,
        ["builtin:utf8-check", "docs/bad.md", "docs/latin1.md"]
    );
    assert!(
        r.output.contains("docs/latin1.md:1:4: invalid UTF-8"),
        "{}",
        r.output
    );
    assert!(!r.output.contains("docs/bad.md:"), "{}", r.output);
}

#[tokio::test]
async fn outside_a_git_checkout_the_leftover_check_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let repo_like = Repo::new(&[]);
    let mut opts = repo_like.run_options();
    // Stop git from finding an enclosing repository of the temporary folder.
    opts.env.set(
        "GIT_CEILING_DIRECTORIES",
        dir.path().parent().unwrap().display().to_string(),
    );
    let planned = plan(
        &[gate(&["sh", "-c", "true"])],
        &RepoFacts::default(),
        &rules(),
    );
    let report = run_gates(dir.path(), &planned, &opts).await.unwrap();
    assert_eq!(report.results[0].status, GateStatus::Passed);
    assert!(matches!(
        report.leftover_check,
        LeftoverCheck::Unavailable { .. }
    ));
    assert!(!report.passed());
}

#[tokio::test]
async fn a_scratch_folder_inside_the_worktree_is_refused() {
    let repo = committed_repo();
    let opts = RunOptions {
        scratch_dir: Some(repo.path().join("scratch")),
        ..repo.run_options()
    };
    let planned = plan(
        &[gate(&["sh", "-c", "true"])],
        &RepoFacts::default(),
        &rules(),
    );
    let err = run_gates(repo.path(), &planned, &opts).await.unwrap_err();
    assert_eq!(err.kind(), "scratch");
    assert!(err.to_string().contains("outside the worktree"), "{err}");
    assert_eq!(repo.status(), "", "nothing created in the worktree");
}
