//! Invariant 8 against hostile agents, through the binary on the local forge: a `command` agent
//! per attack tries to read the GitHub token through `/proc`, rewrite the ledger, leave a
//! `setsid` daemon behind, and outlive a `kill -9` of issueloop. Each test asserts the effect.
//! The same attacks with `[sandbox] mode = "off"` show which of them only the sandbox stops.

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
            Attack::Hang => {}
        }
        let doctor = w.command().arg("doctor").output().unwrap();
        let text = String::from_utf8_lossy(&doctor.stdout);
        assert!(text.contains("sandbox      off"), "{text}");
    }
}
