//! Gates under the Landlock sandbox: they write their worktree and scratch caches, and nothing
//! else (a gate runs code the change under test wrote).

mod support;

use issueloop_config::AllowRule;
use issueloop_gates::{Gate, GateOrigin, GateSpec, GateStatus, RepoFacts, plan, run_gates};
use issueloop_process::Sandbox;
use support::Repo;

fn gate(argv: &[&str]) -> Gate {
    Gate {
        name: argv.join(" "),
        origin: GateOrigin::Explicit,
        spec: GateSpec::Command(argv.iter().map(|s| (*s).to_owned()).collect()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandboxed_gate_writes_only_its_worktree() {
    if !issueloop_process::support().is_available() {
        eprintln!("skipped: no Landlock on this kernel");
        return;
    }
    let repo = Repo::new(&[("README.md", "# x\n")]);
    repo.commit_all();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("planted");
    let script = format!(
        "echo x > {}; echo y > in-worktree.txt; python3 -c 'import compileall' ",
        target.display()
    );
    let mut rules = issueloop_config::builtin_policy().allowlist;
    rules.push(AllowRule {
        program: "sh".into(),
        subcommands: None,
        options: Vec::new(),
        source: "tests".into(),
    });
    let planned = plan(
        &[gate(&["sh", "-c", &script])],
        &RepoFacts::default(),
        &rules,
    );
    for sandbox in [Some(Sandbox::new([repo.path().to_owned()])), None] {
        let sandboxed = sandbox.is_some();
        let mut opts = repo.run_options();
        opts.sandbox = sandbox;
        let report = run_gates(repo.path(), &planned, &opts).await.unwrap();
        let r = &report.results[0];
        assert_eq!(r.status, GateStatus::Passed, "{r:?}");
        assert!(repo.path().join("in-worktree.txt").exists());
        // The effect: the file outside the worktree exists only when the gate was unsandboxed.
        assert_eq!(target.exists(), !sandboxed, "sandboxed: {sandboxed}; {r:?}");
        std::fs::remove_file(repo.path().join("in-worktree.txt")).unwrap();
    }
}
