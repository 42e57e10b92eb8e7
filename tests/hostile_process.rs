//! Invariant 8 against hostile agents, through the binary on the local forge: a `command` agent
//! per attack tries to read the GitHub token through `/proc`, rewrite the ledger, leave a
//! `setsid` daemon behind, and outlive a `kill -9` of issueloop. Each test asserts the effect.
//! The same attacks with `[sandbox] mode = "off"` show which of them only the sandbox stops.
//! On the GitHub forge (the fake GitHub), the token stays out of the agent's reach by every
//! route while it is in use for the API, through to the draft PR.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::time::Duration;

use support::hostile::{self, ATTACK_COST, Attack, Sandbox, TOKEN};
use support::{World, run_of};

fn run(w: &World, token: bool) -> serde_json::Value {
    let mut cmd = w.command();
    if token {
        cmd.env("GITHUB_TOKEN", TOKEN);
    }
    let out = cmd.args(["--json", "run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr:\n{stderr}"))
}

/// What today's ledger charges for the world's one run.
fn charged(w: &World) -> f64 {
    w.entries()
        .iter()
        .filter_map(|e| e.cost.map(|c| c.dollars()))
        .sum()
}

#[test]
fn the_token_cannot_be_read_through_proc() {
    let w = hostile::world(Attack::Token, Sandbox::On);
    let report = run(&w, true);
    let findings = hostile::findings(&w, Attack::Token);
    assert!(findings.contains("nothing"), "{findings}\n{report:#}");
    assert!(!findings.contains("FOUND"), "{findings}");
    // The run itself went on normally, and its journal says how it was contained.
    assert_eq!(run_of(&report, 1)["status"], "pr_opened", "{report:#}");
    let journal = w.journal();
    assert!(
        journal
            .iter()
            .any(|(_, events, _)| events.iter().any(|e| e == "sandbox")),
        "{journal:?}"
    );
}

#[test]
fn the_ledger_cannot_be_rewritten() {
    let w = hostile::world(Attack::Ledger, Sandbox::On);
    let report = run(&w, false);
    let findings = hostile::findings(&w, Attack::Ledger);
    assert!(findings.contains("refused"), "{findings}");
    assert!(
        charged(&w) >= ATTACK_COST,
        "the day shows {} for a run that spent {ATTACK_COST}\n{report:#}",
        charged(&w)
    );
}

#[test]
fn a_setsid_daemon_ends_with_its_run() {
    let w = hostile::world(Attack::Daemon, Sandbox::On);
    let report = run(&w, false);
    let pid = hostile::wait_for_pid(&w, "daemon.pid", Duration::from_secs(1))
        .unwrap_or_else(|| panic!("the daemon never started\n{report:#}"));
    let ended = hostile::ends_within(pid, Duration::from_secs(1));
    hostile::cleanup(pid);
    assert!(
        ended,
        "the setsid daemon {pid} outlived its run by more than a second"
    );
}

#[test]
fn kill_9_of_issueloop_takes_the_agent_and_its_daemon_with_it() {
    let w = hostile::world(Attack::Hang, Sandbox::On);
    let mut child = w
        .std_command()
        .args(["run", "--once"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let agent = hostile::wait_for_pid(&w, "agent.pid", Duration::from_secs(60));
    let daemon = hostile::wait_for_pid(&w, "daemon.pid", Duration::from_secs(5));
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let agent = agent.expect("the agent never started");
    let daemon = daemon.expect("the daemon never started");
    let agent_ended = hostile::ends_within(agent, Duration::from_secs(1));
    let daemon_ended = hostile::ends_within(daemon, Duration::from_secs(1));
    hostile::cleanup(agent);
    hostile::cleanup(daemon);
    assert!(
        agent_ended,
        "the agent {agent} outlived issueloop by more than a second"
    );
    assert!(
        daemon_ended,
        "its setsid daemon {daemon} outlived issueloop by more than a second"
    );
}

/// The same attacks with the sandbox off: the ones only the sandbox stops succeed (so the tests
/// above can fail), and `doctor` says the sandbox is off. The process containment (daemons,
/// `kill -9`) does not depend on the sandbox and holds either way.
#[test]
fn with_the_sandbox_off_the_attacks_succeed_and_doctor_says_so() {
    for attack in [Attack::Token, Attack::Ledger, Attack::Daemon] {
        let w = hostile::world(attack, Sandbox::Off);
        let report = run(&w, attack == Attack::Token);
        let findings = hostile::findings(&w, attack);
        match attack {
            Attack::Token => {
                // Reading another process's memory needs CAP_SYS_PTRACE against a non-dumpable
                // issueloop: only root's agent gets that far without the sandbox.
                // SAFETY: geteuid has no preconditions.
                if unsafe { libc::geteuid() } == 0 {
                    assert!(findings.contains("FOUND memory"), "{findings}");
                } else {
                    assert!(findings.contains("nothing"), "{findings}");
                }
                // Never through `/proc/<pid>/environ`: the value left the environment block.
                assert!(!findings.contains("environ"), "{findings}");
            }
            Attack::Ledger => {
                assert!(findings.contains("deleted"), "{findings}");
                assert!(charged(&w) < ATTACK_COST, "{report:#}");
            }
            Attack::Daemon => {
                let pid = hostile::wait_for_pid(&w, "daemon.pid", Duration::from_secs(1))
                    .expect("the daemon never started");
                let ended = hostile::ends_within(pid, Duration::from_secs(1));
                hostile::cleanup(pid);
                assert!(ended, "daemons end with their run whatever the sandbox");
            }
            Attack::Hang | Attack::GithubToken => {}
        }
        let doctor = w.command().arg("doctor").output().unwrap();
        let text = String::from_utf8_lossy(&doctor.stdout);
        assert!(text.contains("sandbox      off"), "{text}");
    }
}

/// One hostile run on the fake GitHub: the run's report, its stdout+stderr, the findings, and the
/// world (kept alive for the caller's checks).
fn github_token_run(
    sandbox: Sandbox,
) -> (
    support::github::GithubWorld,
    u64,
    serde_json::Value,
    String,
    String,
) {
    let (g, n) = hostile::github_world(sandbox);
    let out = g
        .world
        .command()
        .env("GITHUB_TOKEN", TOKEN)
        .args(["--json", "run", "--once"])
        .output()
        .unwrap();
    let printed = support::github::printed(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{printed}"));
    let findings = hostile::findings(&g.world, Attack::GithubToken);
    eprintln!("findings with the sandbox {sandbox:?}:\n{findings}");
    (g, n, report, printed, findings)
}

/// What holds whatever the sandbox: the run reached its draft PR with the token in use, the
/// agent did try every route, and the token is in nothing it printed or left behind.
fn assert_github_run_kept_the_token(
    g: &support::github::GithubWorld,
    n: u64,
    report: &serde_json::Value,
    printed: &str,
    findings: &str,
) {
    assert_eq!(
        run_of(report, n)["status"],
        "pr_opened",
        "{report:#}\n{printed}"
    );
    let pulls = g.fake.pulls(support::REPO);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert!(pulls[0].draft);
    // The agent's routes all ran (so "nothing" means something).
    for route in [
        "own environment",
        "git config of the worktree",
        "git config of the mirror",
        "git credential fill for 127.0.0.1",
        ".git-credentials",
        "the worktree's gitdir",
        "the cache (",
        "the worktree (",
        "the run directory (",
    ] {
        assert!(findings.contains(route), "{route} not tried:\n{findings}");
    }
    assert!(!findings.contains("crashed"), "{findings}");
    assert!(!findings.contains(TOKEN), "{findings}");
    assert!(!printed.contains(TOKEN), "{printed}");
    // Nothing in the world holds the token once the run is over: not the worktrees and run
    // leftovers under the cache, not the observe folder the agent may write, not the state
    // database (journal and report), not the configuration.
    let leaks = hostile::files_containing(g.world.root(), TOKEN.as_bytes());
    assert!(leaks.is_empty(), "the token is written in {leaks:?}");
}

#[test]
fn on_the_github_forge_the_token_is_never_visible_to_the_agent() {
    let (g, n, report, printed, findings) = github_token_run(Sandbox::On);
    assert_github_run_kept_the_token(&g, n, &report, &printed, &findings);
    assert!(!findings.contains("FOUND"), "{findings}");
    assert!(
        findings.contains("\nnothing\n") && findings.contains("nothing by any other route"),
        "{findings}"
    );
    let journal = g.world.journal();
    assert!(
        journal
            .iter()
            .any(|(_, events, _)| events.iter().any(|e| e == "sandbox")),
        "{journal:?}"
    );
}

/// The same attack with `[sandbox] mode = "off"`, to show which containment closes which route.
/// Without the sandbox every route but one stays closed: issueloop took the token out of its
/// environment block at start (so no `/proc/<pid>/environ` holds it), never gives it to a child's
/// environment, git configuration, credential store or any file, and is non-dumpable, so an agent
/// of the same user cannot read its memory. But an agent running as root has CAP_SYS_PTRACE,
/// which overrides non-dumpability: it reads the token out of issueloop's memory through
/// `/proc/<ppid>/mem`. Only the Landlock sandbox (which forbids ptrace access to processes outside
/// the sandboxed one's domain, whatever the capabilities) closes that route.
#[test]
fn on_the_github_forge_without_the_sandbox_only_roots_agent_reads_the_token_from_memory() {
    let (g, n, report, printed, findings) = github_token_run(Sandbox::Off);
    assert_github_run_kept_the_token(&g, n, &report, &printed, &findings);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(findings.contains("FOUND memory of"), "{findings}");
    } else {
        assert!(findings.contains("\nnothing\n"), "{findings}");
    }
    assert!(!findings.contains("environ of"), "{findings}");
    assert!(
        findings.contains("nothing by any other route"),
        "{findings}"
    );
}
