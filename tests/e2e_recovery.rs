//! Fast recovery on the same host: a run SIGKILLed mid-way leaves a reservation and a claim; the
//! next tick on the same host sees the run's process is gone, charges the reservation in full
//! as the ledger's rules say and takes the issue again at once, well within the wall clock that
//! other hosts wait out.

mod support;

use std::os::unix::process::ExitStatusExt;

use support::{Knobs, MAINTAINER, World, run_of};

const SIGKILL: i32 = 9;

#[test]
fn a_killed_run_is_charged_and_its_issue_taken_again_by_the_next_tick() {
    // A wall clock far longer than the test: only the dead-process rule can free the issue.
    let mut w = World::new(Knobs {
        wall_clock: "30m",
        reservation_grace: "15m",
        ..Knobs::default()
    });
    let n = w.add_issue("Add feature", "scenario: good\ncost: 0.40\n", MAINTAINER);
    let crashed = w
        .command()
        .env("ISSUELOOP_FAILPOINT", "after_agent")
        .args(["--json", "run", "--once"])
        .output()
        .unwrap();
    assert_eq!(
        crashed.status.signal(),
        Some(SIGKILL),
        "{}",
        String::from_utf8_lossy(&crashed.stderr)
    );
    let entries = w.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].state.id(),
        "reserved",
        "the dead run's reservation"
    );

    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        run_of(&report, n)["status"],
        "pr_opened",
        "{report:#}\n{stderr}"
    );
    let mut states: Vec<&str> = w.entries().iter().map(|e| e.state.id()).collect();
    states.sort_unstable();
    assert_eq!(
        states,
        ["expired", "settled"],
        "charged in full, then the new run settled"
    );
    let dead = w
        .entries()
        .into_iter()
        .find(|e| e.state.id() == "expired")
        .unwrap();
    assert_eq!(
        dead.cost.map(|c| c.dollars()),
        Some(1.0),
        "the full reservation"
    );
    assert!(
        dead.closed_at.unwrap() < dead.expires_at,
        "charged before its expiry, not by the clock"
    );
    assert_eq!(w.agent_calls().len(), 2);
    assert_eq!(w.pulls().len(), 1);
    assert!(
        stderr.contains("process of a run on this host is gone"),
        "{stderr}"
    );
}

#[test]
fn a_live_run_on_this_host_is_not_taken_over() {
    let mut w = World::new(Knobs {
        wall_clock: "30m",
        reservation_grace: "15m",
        ..Knobs::default()
    });
    let n = w.add_issue("Slow one", "scenario: good\nsleep: 20\n", MAINTAINER);
    let mut first = w
        .std_command()
        .args(["--json", "run", "--once"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the agent to be running (it records its pid while it sleeps).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while w.agent_pids().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!w.agent_pids().is_empty(), "the agent never started");
    let (code, report, stderr) = w.run_once(&[]);
    let _ = first.kill();
    let _ = first.wait();
    for pid in w.agent_pids() {
        // SAFETY: kill(2) with a pid this test's agent recorded; no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(run_of(&report, n)["status"], "skipped", "{report:#}");
    assert_eq!(run_of(&report, n)["reason"], "claimed", "{report:#}");
    assert!(
        w.entries().iter().all(|e| e.state.id() != "expired"),
        "a live run's reservation is not charged"
    );
}
