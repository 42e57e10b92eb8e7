//! `issueloop serve` as a process on the local forge, on a schedule that fires every second, with
//! the scripted agent told to take its time: SIGTERM during a run lets an agent that finishes
//! within the grace period publish, stops one that does not and gives its issue back (claim
//! released, money settled, worktree removed), and exits 0 either way; and a tick never starts
//! while another runs. (The schedule itself is tested on paused time in `tests/service.rs`.)

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use issueloop::ledger::Journal;
use support::{Knobs, MAINTAINER, World};

/// Upper bound on any wait for the service: reaching it means a hang, and fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `issueloop serve`, its log (JSON lines) in a file.
struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(w: &World) -> Service {
        let log = w.root().join("serve.log");
        let child = w
            .std_command()
            .args(["--log-format", "json", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Service { child, log }
    }

    fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "cannot signal the service");
    }

    /// Waits for the process to exit; fails the test after [`PATIENCE`].
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the service did not exit:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `(message, tick)` of every log line, in order.
    fn messages(&self) -> Vec<(String, Option<u64>)> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let fields = &v["fields"];
                (
                    fields["message"].as_str().unwrap_or_default().to_owned(),
                    fields["tick"].as_u64(),
                )
            })
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A failed assertion must not leave the service running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `ready` until it holds; fails the test after [`PATIENCE`].
fn wait_until(what: &str, service: &Service, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}:\n{}",
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process still runs (a zombie does not).
fn alive(pid: i32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    std::fs::read_to_string(stat).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn exit_code(status: ExitStatus, service: &Service) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {status:?}\n{}", service.log_text()))
}

#[test]
fn sigterm_stops_an_agent_that_outlives_the_grace_period_and_gives_the_issue_back() {
    let mut w = World::new(Knobs {
        shutdown_grace: "1s",
        ..Knobs::default()
    });
    let n = w.add_issue("Slow", "scenario: good\nsleep: 30", MAINTAINER);
    let mut service = Service::start(&w);
    wait_until("the agent to start", &service, || w.agent_pids().len() == 1);
    assert!(
        w.labels(n).contains(&"loop:in-progress".to_owned()),
        "the run holds its claim while the agent works"
    );
    let agent = w.agent_pids()[0];

    let signalled = Instant::now();
    service.terminate();
    let status = service.wait();
    let took = signalled.elapsed();
    assert_eq!(exit_code(status, &service), 0, "{}", service.log_text());
    assert!(
        took >= Duration::from_secs(1),
        "the agent was given its grace period before being stopped ({took:?})"
    );
    assert!(!alive(agent), "the agent (pid {agent}) was stopped");

    let labels = w.labels(n);
    assert!(
        !labels.contains(&"loop:in-progress".to_owned()),
        "claim released: {labels:?}"
    );
    assert!(
        !labels.contains(&"loop:failed".to_owned()),
        "a shutdown is not the issue's failure: {labels:?}"
    );
    assert!(w.claim_files().is_empty(), "{:?}", w.claim_files());
    assert!(w.pulls().is_empty());
    assert!(w.remote_branches().is_empty(), "{:?}", w.remote_branches());
    assert!(w.worktrees_left().is_empty(), "{:?}", w.worktrees_left());

    let entries = w.entries();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0].state.id(), "settled", "{entries:#?}");
    assert_eq!(
        entries[0].cost,
        Some(entries[0].reserved),
        "what a stopped agent spent is unknown: charged its whole budget"
    );
    let journal = w.journal();
    let (_, events, status) = journal.last().unwrap();
    assert_eq!(status.id(), "skipped", "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("run_finished"));
    let log = service.log_text();
    assert!(log.contains("shutting_down"), "{log}");
    assert!(!log.contains("\"level\":\"ERROR\""), "{log}");

    assert_eq!(w.agent_calls(), ["execute good"]);
}

#[test]
fn sigterm_lets_an_agent_that_finishes_within_the_grace_period_publish() {
    let mut w = World::new(Knobs {
        shutdown_grace: "30s",
        ..Knobs::default()
    });
    let n = w.add_issue("Add feature", "scenario: good\nsleep: 1.5", MAINTAINER);
    let mut service = Service::start(&w);
    wait_until("the agent to start", &service, || w.agent_pids().len() == 1);
    let signalled = Instant::now();
    service.terminate();
    let status = service.wait();
    let took = signalled.elapsed();
    assert_eq!(exit_code(status, &service), 0, "{}", service.log_text());
    assert!(
        took < Duration::from_secs(30),
        "exits once the running work is done, within the 30 s grace ({took:?})"
    );
    assert!(
        service
            .messages()
            .iter()
            .any(|(m, _)| m.starts_with("stop requested")),
        "the signal came mid-tick:\n{}",
        service.log_text()
    );

    assert_eq!(w.pulls().len(), 1, "{}", service.log_text());
    let labels = w.labels(n);
    assert!(labels.contains(&"loop:pr-opened".to_owned()), "{labels:?}");
    assert!(
        !labels.contains(&"loop:in-progress".to_owned()),
        "{labels:?}"
    );
    assert!(w.claim_files().is_empty());
    assert!(w.worktrees_left().is_empty(), "{:?}", w.worktrees_left());
    let states: Vec<&str> = w.entries().iter().map(|e| e.state.id()).collect();
    assert_eq!(states, ["settled"]);
    assert_eq!(w.journal()[0].2.id(), "succeeded");
    // Stopping means taking no new work: no tick started after the signal.
    let ticks = service
        .messages()
        .iter()
        .filter(|(m, _)| m == "tick started")
        .count();
    assert_eq!(ticks, 1, "{}", service.log_text());
}

#[test]
fn ticks_never_overlap() {
    // One run per tick (one slot), each longer than the one-second schedule: were ticks to
    // overlap, the second issue's run would start while the first one's still runs.
    let mut w = World::new(Knobs::default());
    let first = w.add_issue("First", "scenario: good\nsleep: 2", MAINTAINER);
    let second = w.add_issue("Second", "scenario: good\nsleep: 2", MAINTAINER);
    let mut service = Service::start(&w);
    wait_until("both runs to finish", &service, || {
        w.try_journal().is_some_and(|runs| {
            runs.len() == 2 && runs.iter().all(|(_, _, s)| s.id() != "interrupted")
        })
    });
    service.terminate();
    let status = service.wait();
    assert_eq!(exit_code(status, &service), 0, "{}", service.log_text());
    assert_eq!(w.pulls().len(), 2);
    for n in [first, second] {
        assert!(w.labels(n).contains(&"loop:pr-opened".to_owned()));
    }

    // The journal: each run's events form one unbroken stretch of the journal's sequence.
    let ledger = w.ledger();
    let mut spans: Vec<(u64, u64, String)> = ledger
        .runs(100)
        .unwrap()
        .iter()
        .map(|r| {
            let events = ledger.events(&r.run_id).unwrap();
            let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
            (
                *seqs.iter().min().unwrap(),
                *seqs.iter().max().unwrap(),
                r.run_id.to_string(),
            )
        })
        .collect();
    spans.sort();
    assert_eq!(spans.len(), 2);
    assert!(
        spans[0].1 < spans[1].0,
        "the runs interleave in the journal: {spans:?}"
    );

    // The log: every tick finishes before the next one starts, and the fires that came due
    // while a tick ran were skipped, not queued.
    let mut running: Option<u64> = None;
    let mut ticks = 0;
    for (message, tick) in service.messages() {
        match message.as_str() {
            "tick started" => {
                assert_eq!(running, None, "tick {tick:?} started while {running:?} ran");
                running = tick;
                ticks += 1;
            }
            "tick finished" => {
                assert_eq!(running, tick, "{}", service.log_text());
                running = None;
            }
            _ => {}
        }
    }
    assert!(ticks >= 2, "{}", service.log_text());
    assert!(
        service
            .messages()
            .iter()
            .any(|(m, _)| m == "tick ran past later fire times; skipped them"),
        "a two-second run under a one-second schedule skips fires:\n{}",
        service.log_text()
    );
}
