//! Property: over random interleavings of reserve / settle / release / expire / process death
//! across several days, on every backend (a real SQLite file; a real PostgreSQL database), the
//! ledger agrees with a simple model, a day's recorded spend never exceeds the cap except by
//! settles above their reservation, and no reservation is lost (each ends settled, released or
//! expired). One model, one body: the backends are chosen by a factory.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use issueloop_ledger::{
    EntryState, LedgerError, ReserveOutcome, ReserveRequest, RunId, SkipReason, StateStore, Usd,
    utc_day,
};
use jiff::Timestamp;
use jiff::civil::Date;
use proptest::prelude::*;
use support::{Backend, TestStore};

const CAP: Usd = Usd::from_micros(10_000_000);
const MAX_RUNS: u32 = 6;
const GRACE: Duration = Duration::from_secs(15 * 60);
const PROCESSES: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// A process reserves a budget (in cents) with a wall clock (in minutes).
    Reserve {
        process: usize,
        cents: i64,
        minutes: u64,
    },
    /// The owner of a live run settles it at `percent` of its reservation (above 100: overspent).
    Settle { pick: usize, percent: i64 },
    /// The owner of a live run releases it (its agent never started).
    Release { pick: usize },
    /// Time passes.
    Advance { minutes: u64 },
    /// A tick's start: expire overdue reservations.
    Expire,
    /// A process dies: its runs are never settled or released; a new process takes its place.
    Die { process: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PROCESSES, 1i64..=800, 1u64..=180)
            .prop_map(|(process, cents, minutes)| Op::Reserve { process, cents, minutes }),
        3 => (any::<usize>(), 0i64..=140).prop_map(|(pick, percent)| Op::Settle { pick, percent }),
        1 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        3 => (1u64..=400).prop_map(|minutes| Op::Advance { minutes }),
        2 => Just(Op::Expire),
        1 => (0..PROCESSES).prop_map(|process| Op::Die { process }),
    ]
}

/// What the model believes about one run.
#[derive(Clone, Debug)]
struct ModelRun {
    day: Date,
    amount: Usd,
    expires_at: Timestamp,
    state: EntryState,
    cost: Option<Usd>,
    /// The process that holds it, `None` once that process died.
    owner: Option<usize>,
}

struct World<'a> {
    store: &'a TestStore,
    processes: Vec<Arc<dyn StateStore>>,
    now: Timestamp,
    runs: BTreeMap<RunId, ModelRun>,
    next: u64,
}

impl<'a> World<'a> {
    fn new(store: &'a TestStore) -> World<'a> {
        World {
            store,
            processes: (0..PROCESSES).map(|_| store.open()).collect(),
            now: "2026-11-20T18:00:00Z".parse().unwrap(),
            runs: BTreeMap::new(),
            next: 0,
        }
    }

    fn model_usage(&self, day: Date) -> (Usd, Usd, u32) {
        let of_day = || self.runs.values().filter(move |r| r.day == day);
        let spent = of_day().filter_map(|r| r.cost).sum();
        let reserved = of_day()
            .filter(|r| r.state == EntryState::Reserved)
            .map(|r| r.amount)
            .sum();
        let runs = of_day().filter(|r| r.state != EntryState::Released).count() as u32;
        (spent, reserved, runs)
    }

    /// Live runs: held by a living process, not yet settled or released by it.
    fn live(&self) -> Vec<RunId> {
        self.runs
            .iter()
            .filter(|(_, r)| {
                r.owner.is_some() && matches!(r.state, EntryState::Reserved | EntryState::Expired)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Reserve {
                process,
                cents,
                minutes,
            } => {
                self.next += 1;
                let run_id = RunId::parse(&format!("run-{}", self.next)).unwrap();
                let amount = Usd::from_micros(cents * 10_000);
                let day = utc_day(self.now);
                let (spent, reserved, runs) = self.model_usage(day);
                let expected = if runs >= MAX_RUNS {
                    Some(SkipReason::DailyRunsReached)
                } else if spent.saturating_add(reserved).saturating_add(amount) > CAP {
                    Some(SkipReason::DailyCapReached)
                } else {
                    None
                };
                let wall_clock = Duration::from_secs(minutes * 60);
                let req = ReserveRequest {
                    run_id: run_id.clone(),
                    repo: "acme/api".into(),
                    issue: self.next,
                    amount,
                    cap: CAP,
                    max_runs: MAX_RUNS,
                    wall_clock,
                    grace: GRACE,
                    soft_claim: Duration::ZERO,
                    now: self.now,
                };
                match (self.processes[process].reserve(&req).unwrap(), expected) {
                    (ReserveOutcome::Reserved(r), None) => {
                        prop_assert_eq!(r.day, day);
                        self.runs.insert(
                            run_id,
                            ModelRun {
                                day,
                                amount,
                                expires_at: r.expires_at,
                                state: EntryState::Reserved,
                                cost: None,
                                owner: Some(process),
                            },
                        );
                    }
                    (ReserveOutcome::Refused { reason, usage }, Some(want)) => {
                        prop_assert_eq!(reason, want);
                        prop_assert_eq!(
                            (usage.spent, usage.reserved, usage.runs),
                            (spent, reserved, runs)
                        );
                    }
                    (got, want) => {
                        return Err(TestCaseError::fail(format!(
                            "reserve {amount} on {day}: got {got:?}, model expected {want:?}"
                        )));
                    }
                }
            }
            Op::Settle { pick, percent } => {
                let live = self.live();
                if live.is_empty() {
                    return Ok(());
                }
                let run_id = &live[pick % live.len()];
                let run = self.runs.get_mut(run_id).unwrap();
                let owner = run.owner.unwrap();
                let actual = Usd::from_micros(run.amount.micros() * percent / 100);
                let s = self.processes[owner]
                    .settle(run_id, actual, self.now)
                    .unwrap();
                prop_assert_eq!(s.was_expired, run.state == EntryState::Expired);
                prop_assert_eq!(s.overspent, actual > run.amount);
                prop_assert_eq!(s.day, run.day);
                run.state = EntryState::Settled;
                run.cost = Some(actual);
            }
            Op::Release { pick } => {
                let live = self.live();
                if live.is_empty() {
                    return Ok(());
                }
                let run_id = &live[pick % live.len()];
                let run = self.runs.get_mut(run_id).unwrap();
                let owner = run.owner.unwrap();
                match (self.processes[owner].release(run_id, self.now), run.state) {
                    (Ok(()), EntryState::Reserved) => run.state = EntryState::Released,
                    (
                        Err(LedgerError::WrongState {
                            state: EntryState::Expired,
                            ..
                        }),
                        EntryState::Expired,
                    ) => {}
                    (got, state) => {
                        return Err(TestCaseError::fail(format!(
                            "release of a {state} run: got {got:?}"
                        )));
                    }
                }
            }
            Op::Advance { minutes } => {
                self.now += Duration::from_secs(minutes * 60);
            }
            Op::Expire => {
                let now = self.now;
                let mut want: Vec<RunId> = self
                    .runs
                    .iter()
                    .filter(|(_, r)| r.state == EntryState::Reserved && r.expires_at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                // Any process may run the tick's expiry.
                let mut got: Vec<RunId> = self.processes[self.next as usize % PROCESSES]
                    .expire(now)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.run_id)
                    .collect();
                want.sort();
                got.sort();
                prop_assert_eq!(&got, &want);
                for id in want {
                    let run = self.runs.get_mut(&id).unwrap();
                    run.state = EntryState::Expired;
                    run.cost = Some(run.amount);
                }
            }
            Op::Die { process } => {
                // Dropping the connection is what the operating system does to a dead process's
                // file handles; whatever it held stays reserved in the file.
                self.processes[process] = self.store.open();
                for run in self.runs.values_mut() {
                    if run.owner == Some(process) {
                        run.owner = None;
                    }
                }
            }
        }
        Ok(())
    }

    /// The store agrees with the model, and each day's spend is within the cap except for the
    /// overshoot of settles above their reservations.
    fn check(&self) -> Result<(), TestCaseError> {
        let store = &self.processes[0];
        let days: std::collections::BTreeSet<Date> = self.runs.values().map(|r| r.day).collect();
        for day in days {
            let usage = store.day_usage(day).unwrap();
            prop_assert_eq!(
                (usage.spent, usage.reserved, usage.runs),
                self.model_usage(day),
                "usage of {}",
                day
            );
            let entries = store.entries(day).unwrap();
            let overshoot: Usd = entries
                .iter()
                .filter(|e| e.state == EntryState::Settled)
                .filter_map(|e| e.cost.map(|c| c.left_after(e.reserved)))
                .sum();
            prop_assert!(
                usage.spent.saturating_add(usage.reserved) <= CAP.saturating_add(overshoot),
                "{day}: spent {} + reserved {} > cap {CAP} + overshoot {overshoot}",
                usage.spent,
                usage.reserved
            );
            for e in &entries {
                prop_assert_eq!(e.overspent, e.cost.is_some_and(|c| c > e.reserved));
            }
        }
        Ok(())
    }
}

/// One random history on a fresh store of `backend`.
fn run_history(backend: Backend, ops: &[Op]) -> Result<(), TestCaseError> {
    let Some(store) = TestStore::new(backend, "interleavings") else {
        return Ok(());
    };
    let mut world = World::new(&store);
    for op in ops {
        world.apply(op)?;
        world.check()?;
    }
    // Every process dies; long after, a tick expires what is left.
    for process in 0..PROCESSES {
        world.apply(&Op::Die { process })?;
    }
    world.apply(&Op::Advance {
        minutes: 3 * 24 * 60,
    })?;
    world.apply(&Op::Expire)?;
    world.check()?;
    let store = &world.processes[1];
    let mut seen = 0;
    for (id, run) in &world.runs {
        let entry = store.entry(id).unwrap();
        prop_assert!(entry.is_some(), "reservation {} was lost", id);
        let entry = entry.unwrap();
        prop_assert!(
            matches!(
                entry.state,
                EntryState::Settled | EntryState::Released | EntryState::Expired
            ),
            "{} ended {}",
            id,
            entry.state
        );
        prop_assert_eq!(entry.state, run.state);
        prop_assert_eq!(entry.cost, run.cost);
        seen += 1;
    }
    // Nothing in the store that the model does not know of.
    let stored: usize = world
        .runs
        .values()
        .map(|r| r.day)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|d| store.entries(d).unwrap().len())
        .sum();
    prop_assert_eq!(stored, seen);
    Ok(())
}

fn check_backend(backend: Backend, cases: u32) {
    if backend == Backend::Postgres
        && support::postgres_url("ledger_holds_the_cap_and_loses_no_reservation_postgres").is_none()
    {
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..60), |ops| {
        run_history(backend, &ops)
    });
    if let Err(e) = result {
        panic!("{backend:?}: {e}");
    }
}

#[test]
fn ledger_holds_the_cap_and_loses_no_reservation_sqlite() {
    check_backend(Backend::Sqlite, 64);
}

/// Each history gets a database of its own; fewer histories than SQLite's, as each costs a
/// `CREATE DATABASE`.
#[test]
fn ledger_holds_the_cap_and_loses_no_reservation_postgres() {
    check_backend(Backend::Postgres, 32);
}
