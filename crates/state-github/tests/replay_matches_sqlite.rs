//! Property: the pure replay of a log computes what the SQLite store computes on the same
//! operation sequence, day by day: usage and every entry. The log also holds the lines a racing
//! writer could have written (reservations the cap refuses, settles of closed runs); replay
//! must refuse exactly what the SQLite store refused, by the cap and by the soft claim.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::collections::BTreeMap;
use std::time::Duration;

use issueloop_ledger::{Ledger, ReserveOutcome, ReserveRequest, RunId, SqliteLedger, Usd, utc_day};
use issueloop_state_github::{Line, replay_day};
use jiff::Timestamp;
use jiff::civil::Date;
use proptest::prelude::*;

const CAP: Usd = Usd::from_micros(10_000_000);
const MAX_RUNS: u32 = 6;

#[derive(Clone, Debug)]
enum Op {
    /// `window`: the soft-claim window in minutes (0: none); `issue` of a few, so that runs
    /// reserve the same issue and the soft claim decides.
    Reserve {
        cents: i64,
        minutes: u64,
        issue: u64,
        window: u64,
    },
    Settle {
        pick: usize,
        percent: i64,
    },
    Release {
        pick: usize,
    },
    Advance {
        minutes: u64,
    },
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1i64..=800, 1u64..=180, 1u64..=3, prop::sample::select(vec![0u64, 3, 90]))
            .prop_map(|(cents, minutes, issue, window)| Op::Reserve { cents, minutes, issue, window }),
        3 => (any::<usize>(), 0i64..=140).prop_map(|(pick, percent)| Op::Settle { pick, percent }),
        1 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        3 => (1u64..=400).prop_map(|minutes| Op::Advance { minutes }),
        2 => Just(Op::Expire),
    ]
}

fn ms(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn replay_agrees_with_the_sqlite_store(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteLedger::open(dir.path().join("state.sqlite")).unwrap();
        let mut now: Timestamp = "2026-12-04T18:00:00Z".parse().unwrap();
        let mut log: BTreeMap<Date, Vec<Line>> = BTreeMap::new();
        let mut runs: Vec<(RunId, Date)> = Vec::new();
        let mut next = 0;
        for op in &ops {
            match *op {
                Op::Reserve { cents, minutes, issue, window } => {
                    next += 1;
                    let run_id = RunId::parse(&format!("run-{next}")).unwrap();
                    let req = ReserveRequest {
                        run_id: run_id.clone(),
                        repo: "acme/app".into(),
                        issue,
                        amount: Usd::from_micros(cents * 10_000),
                        cap: CAP,
                        max_runs: MAX_RUNS,
                        wall_clock: Duration::from_secs(minutes * 60),
                        grace: Duration::from_secs(15 * 60),
                        soft_claim: Duration::from_secs(window * 60),
                        now,
                    };
                    let day = utc_day(now);
                    let outcome = sqlite.reserve(&req).unwrap();
                    // Written whether or not it fits: a racing writer might have.
                    let expires_at = match &outcome {
                        ReserveOutcome::Reserved(r) => r.expires_at,
                        ReserveOutcome::Refused { .. } => ms(now),
                    };
                    log.entry(day).or_default().push(Line::Reserve {
                        run: run_id.clone(),
                        repo: "acme/app".into(),
                        issue,
                        amount_micros: req.amount.micros(),
                        cap_micros: CAP.micros(),
                        max_runs: MAX_RUNS,
                        soft_claim_ms: window * 60_000,
                        at: ms(now),
                        expires_at,
                        host: None,
                    });
                    if matches!(outcome, ReserveOutcome::Reserved(_)) {
                        runs.push((run_id, day));
                    }
                }
                Op::Settle { pick, percent } => {
                    if runs.is_empty() {
                        continue;
                    }
                    let (run, day) = runs[pick % runs.len()].clone();
                    let entry = sqlite.entry(&run).unwrap().unwrap();
                    let cost = Usd::from_micros(entry.reserved.micros() * percent / 100);
                    // Settles of settled or released runs are refused by both.
                    let _ = sqlite.settle(&run, cost, now);
                    log.entry(day).or_default().push(Line::Settle {
                        run,
                        cost_micros: cost.micros(),
                        at: ms(now),
                    });
                }
                Op::Release { pick } => {
                    if runs.is_empty() {
                        continue;
                    }
                    let (run, day) = runs[pick % runs.len()].clone();
                    let _ = sqlite.release(&run, now);
                    log.entry(day).or_default().push(Line::Release { run, at: ms(now) });
                }
                Op::Advance { minutes } => now += Duration::from_secs(minutes * 60),
                Op::Expire => {
                    for e in sqlite.expire(now).unwrap() {
                        log.entry(e.day).or_default().push(Line::Expire {
                            run: e.run_id,
                            at: ms(now),
                        });
                    }
                }
            }
        }
        for (day, lines) in &log {
            let replayed = replay_day(*day, lines);
            prop_assert_eq!(replayed.usage(*day), sqlite.day_usage(*day).unwrap(), "usage of {}", day);
            prop_assert_eq!(replayed.sorted(), sqlite.entries(*day).unwrap(), "entries of {}", day);
        }
    }
}
