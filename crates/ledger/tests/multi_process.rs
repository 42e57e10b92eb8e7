//! Real processes against one store, on every backend: eight processes reserving against a $10
//! cap never reserve more than $10 between them; a process that dies between reserve and
//! settle leaves its reservations counting, and they are charged in full once they expire.
//! The children are this test binary itself, re-run on an ignored test with the store in the
//! environment.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe and reads its own test settings from the environment"
)]

mod support;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use issueloop_ledger::{
    EntryState, ReserveOutcome, ReserveRequest, RunId, SkipReason, Usd, utc_day,
};
use jiff::Timestamp;
use support::{Backend, TestStore};

const PROCESSES: usize = 8;
const RESERVATIONS: usize = 50;
const CAP: Usd = Usd::from_micros(10_000_000);
const SPEC_VAR: &str = "ISSUELOOP_LEDGER_TEST_CHILD_STORE";
const INDEX_VAR: &str = "ISSUELOOP_LEDGER_TEST_CHILD_INDEX";
const NOW: &str = "2026-11-21T12:00:00Z";

/// $0.05 to $0.35, varying within and across processes.
fn amount(process: usize, k: usize) -> Usd {
    Usd::from_micros(((process * 7 + k * 3) % 7 + 1) as i64 * 50_000)
}

const MAX_AMOUNT: Usd = Usd::from_micros(7 * 50_000);

fn child(test: &str, store: &TestStore, index: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SPEC_VAR, store.spec())
        .env(INDEX_VAR, index.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn eight_processes_never_reserve_more_than_the_cap(backend: Backend) {
    let Some(store) = TestStore::new(backend, "eight_processes_never_reserve_more_than_the_cap")
    else {
        return;
    };
    // Create the schema up front, so the children race on reservations, not on migrations.
    drop(store.open());
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|i| child("child_reserves", &store, i))
        .collect();
    // Every child is started and waiting on its stdin; let them all go at once.
    for child in &mut children {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "go").unwrap();
    }
    let mut reserved_by_children = Usd::ZERO;
    let mut reserved_count = 0;
    let mut refused_count = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // The test harness's own `test child_reserves ... ` may share a line with a report.
        for line in stdout.lines() {
            if let Some((_, micros)) = line.split_once("RESERVED ") {
                reserved_by_children = reserved_by_children
                    .saturating_add(Usd::from_micros(micros.trim().parse().unwrap()));
                reserved_count += 1;
            } else if line.contains("REFUSED") {
                refused_count += 1;
            }
        }
    }
    assert_eq!(
        reserved_count + refused_count,
        PROCESSES * RESERVATIONS,
        "every attempt reported"
    );
    let ledger = store.open();
    let day = utc_day(NOW.parse().unwrap());
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!(
        usage.reserved, reserved_by_children,
        "the store and the children agree"
    );
    assert_eq!(usage.runs as usize, reserved_count);
    assert_eq!(ledger.entries(day).unwrap().len(), reserved_count);
    assert!(
        usage.reserved <= CAP,
        "reserved {} > cap {CAP}",
        usage.reserved
    );
    // $80 was asked for in all: the cap was reached, and no reservation was refused while
    // it still fitted (what is left only shrinks, so it must be below the largest refused).
    assert!(refused_count > 0);
    assert!(
        usage.left(CAP) < MAX_AMOUNT,
        "{} left although reservations were refused",
        usage.left(CAP)
    );
}

#[test]
fn eight_processes_never_reserve_more_than_the_cap_sqlite() {
    eight_processes_never_reserve_more_than_the_cap(Backend::Sqlite);
}

#[test]
fn eight_processes_never_reserve_more_than_the_cap_postgres() {
    eight_processes_never_reserve_more_than_the_cap(Backend::Postgres);
}

/// The child side of the test above; does nothing unless run by it.
#[test]
#[ignore = "run by eight_processes_never_reserve_more_than_the_cap as a child process"]
fn child_reserves() {
    let (Ok(spec), Ok(index)) = (std::env::var(SPEC_VAR), std::env::var(INDEX_VAR)) else {
        return;
    };
    let index: usize = index.parse().unwrap();
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
    let ledger = support::open_spec(&spec);
    let now: Timestamp = NOW.parse().unwrap();
    let mut out = std::io::stdout().lock();
    for k in 0..RESERVATIONS {
        let amount = amount(index, k);
        let req = ReserveRequest {
            run_id: RunId::parse(&format!("p{index}-r{k}")).unwrap(),
            repo: "acme/api".into(),
            issue: k as u64,
            amount,
            cap: CAP,
            max_runs: 10_000,
            wall_clock: Duration::from_secs(45 * 60),
            grace: Duration::from_secs(15 * 60),
            soft_claim: Duration::ZERO,
            now: now + Duration::from_millis(k as u64),
        };
        match ledger.reserve(&req).unwrap() {
            ReserveOutcome::Reserved(r) => writeln!(out, "RESERVED {}", r.amount.micros()).unwrap(),
            ReserveOutcome::Refused { reason, .. } => {
                assert_eq!(reason, SkipReason::DailyCapReached);
                writeln!(out, "REFUSED").unwrap();
            }
        }
    }
}

/// A process reserves three budgets and dies (abort: no destructor, no settle). Its
/// reservations keep counting against the day; one millisecond before their expiry (wall clock
/// plus grace) nothing is charged; at it, each is charged its full amount, once.
fn a_process_that_dies_between_reserve_and_settle_is_charged_in_full(backend: Backend) {
    let Some(store) = TestStore::new(backend, "a_process_that_dies_between_reserve_and_settle")
    else {
        return;
    };
    drop(store.open());
    let mut dying = child("child_reserves_and_dies", &store, 0);
    writeln!(dying.stdin.take().unwrap(), "go").unwrap();
    let out = dying.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the child was meant to die: {stdout}"
    );
    assert_eq!(stdout.matches("RESERVED").count(), 3, "{stdout}");

    let ledger = store.open();
    let now: Timestamp = NOW.parse().unwrap();
    let day = utc_day(now);
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!(
        (usage.spent, usage.reserved, usage.runs),
        (Usd::ZERO, Usd::from_dollars(1.5), 3)
    );
    // Another process may not take what the dead one holds: $8.50 left of $10.
    let too_much = ReserveRequest {
        run_id: RunId::parse("survivor").unwrap(),
        repo: "acme/api".into(),
        issue: 9,
        amount: Usd::from_dollars(9.0),
        cap: CAP,
        max_runs: 100,
        wall_clock: Duration::from_secs(60),
        grace: Duration::from_secs(60),
        soft_claim: Duration::ZERO,
        now,
    };
    assert!(matches!(
        ledger.reserve(&too_much).unwrap(),
        ReserveOutcome::Refused {
            reason: SkipReason::DailyCapReached,
            ..
        }
    ));
    let expiry = now + Duration::from_secs(45 * 60 + 15 * 60);
    assert!(
        ledger
            .expire(expiry - Duration::from_millis(1))
            .unwrap()
            .is_empty()
    );
    let expired = ledger.expire(expiry + Duration::from_millis(2)).unwrap();
    assert_eq!(expired.len(), 3);
    assert!(
        ledger
            .expire(expiry + Duration::from_secs(60))
            .unwrap()
            .is_empty()
    );
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!(
        (usage.spent, usage.reserved, usage.runs),
        (Usd::from_dollars(1.5), Usd::ZERO, 3)
    );
    for e in ledger.entries(day).unwrap() {
        assert_eq!((e.state, e.cost), (EntryState::Expired, Some(e.reserved)));
    }
}

#[test]
fn a_process_that_dies_between_reserve_and_settle_is_charged_in_full_sqlite() {
    a_process_that_dies_between_reserve_and_settle_is_charged_in_full(Backend::Sqlite);
}

#[test]
fn a_process_that_dies_between_reserve_and_settle_is_charged_in_full_postgres() {
    a_process_that_dies_between_reserve_and_settle_is_charged_in_full(Backend::Postgres);
}

/// The child side of the test above: three reservations of $0.50, then death.
#[test]
#[ignore = "run by a_process_that_dies_between_reserve_and_settle_is_charged_in_full"]
fn child_reserves_and_dies() {
    let Ok(spec) = std::env::var(SPEC_VAR) else {
        return;
    };
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
    let ledger = support::open_spec(&spec);
    let now: Timestamp = NOW.parse().unwrap();
    let mut out = std::io::stdout().lock();
    for k in 0..3u64 {
        let req = ReserveRequest {
            run_id: RunId::parse(&format!("dies-{k}")).unwrap(),
            repo: "acme/api".into(),
            issue: k,
            amount: Usd::from_dollars(0.5),
            cap: CAP,
            max_runs: 100,
            wall_clock: Duration::from_secs(45 * 60),
            grace: Duration::from_secs(15 * 60),
            soft_claim: Duration::ZERO,
            now: now + Duration::from_millis(k),
        };
        assert!(matches!(
            ledger.reserve(&req).unwrap(),
            ReserveOutcome::Reserved(_)
        ));
        writeln!(out, "RESERVED").unwrap();
        out.flush().unwrap();
    }
    // Killed between reserve and settle: no settle, no release, no destructor.
    std::process::abort();
}

/// The same death, seen by the next tick on the same host: the dead process's reservations are
/// charged in full at once (its pid is gone), not only at their expiry; once.
fn a_dead_process_is_charged_at_the_next_tick_on_its_host(backend: Backend) {
    if issueloop_ledger::ProcessOwner::current().is_none() {
        return; // no `/proc`: only the clock applies
    }
    let Some(store) = TestStore::new(backend, "a_dead_process_is_charged_at_the_next_tick") else {
        return;
    };
    drop(store.open());
    let mut dying = child("child_reserves_and_dies", &store, 0);
    writeln!(dying.stdin.take().unwrap(), "go").unwrap();
    let out = dying.wait_with_output().unwrap();
    assert!(!out.status.success());
    let ledger = store.open();
    let now: Timestamp = NOW.parse().unwrap();
    let tick = now + Duration::from_secs(60);
    let charged = ledger.expire_dead(tick).unwrap();
    assert_eq!(charged.len(), 3, "{charged:?}");
    assert!(ledger.expire_dead(tick).unwrap().is_empty(), "once");
    let usage = ledger.day_usage(utc_day(now)).unwrap();
    assert_eq!(
        (usage.spent, usage.reserved),
        (Usd::from_dollars(1.5), Usd::ZERO)
    );
}

#[test]
fn a_dead_process_is_charged_at_the_next_tick_on_its_host_sqlite() {
    a_dead_process_is_charged_at_the_next_tick_on_its_host(Backend::Sqlite);
}

#[test]
fn a_dead_process_is_charged_at_the_next_tick_on_its_host_postgres() {
    a_dead_process_is_charged_at_the_next_tick_on_its_host(Backend::Postgres);
}
