//! The log's format (one JSON line per ledger operation, one file per UTC day) and the pure
//! replay that turns a day's lines into its entries: reservations admitted by the same cap rule
//! every store applies, then settled, released or expired.

use std::collections::BTreeMap;

use issueloop_ledger::{DayUsage, EntryState, LedgerEntry, ReserveRequest, RunId, Usd, admit_held};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The log format this version writes and reads (`format` in `issueloop-state.json`).
pub const FORMAT: u32 = 1;

/// The file of a day's lines, relative to the branch's root.
pub fn day_path(day: Date) -> String {
    format!("ledger/{day}.jsonl")
}

/// One operation on the ledger, as written. Every line about a run goes to the file of the day
/// it reserved on, so a day's file replays alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    Reserve {
        run: RunId,
        repo: String,
        issue: u64,
        amount_micros: i64,
        /// The limits the reservation was decided under; replay decides again with them.
        cap_micros: i64,
        max_runs: u32,
        /// The soft-claim window in milliseconds (`soft_claimed`); absent in lines written
        /// before it existed, which replay without the check, as they were decided.
        #[serde(default, skip_serializing_if = "is_zero")]
        soft_claim_ms: u64,
        at: Timestamp,
        expires_at: Timestamp,
        /// The host that reserved (informational: expiry is decided by the clock).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    Settle {
        run: RunId,
        cost_micros: i64,
        at: Timestamp,
    },
    Release {
        run: RunId,
        at: Timestamp,
    },
    Expire {
        run: RunId,
        at: Timestamp,
    },
}

impl Line {
    pub fn run(&self) -> &RunId {
        match self {
            Line::Reserve { run, .. }
            | Line::Settle { run, .. }
            | Line::Release { run, .. }
            | Line::Expire { run, .. } => run,
        }
    }

    /// The line as written: compact JSON and a newline.
    pub fn render(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Parse a day file. A line this version cannot read is an error naming it (a newer writer, or
/// a hand edit): the ledger is never computed from a part of the log.
pub fn parse_day(text: &str) -> Result<Vec<Line>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// A line replay did not apply, and why (e.g. a reservation the cap refused: two writers that
/// raced past the compare-and-swap could only ever write such a line, never overspend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub index: usize,
    pub run: RunId,
    pub why: String,
}

/// A day, replayed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayLedger {
    pub entries: BTreeMap<RunId, LedgerEntry>,
    pub skipped: Vec<Skipped>,
}

impl DayLedger {
    /// The day's usage, by the rules of the SQLite store's query.
    pub fn usage(&self, day: Date) -> DayUsage {
        let mut usage = DayUsage::empty(day);
        for e in self.entries.values() {
            match e.state {
                EntryState::Settled | EntryState::Expired => {
                    usage.spent = usage.spent.saturating_add(e.cost.unwrap_or(Usd::ZERO));
                }
                EntryState::Reserved => usage.reserved = usage.reserved.saturating_add(e.reserved),
                EntryState::Released => {}
            }
            if e.state != EntryState::Released {
                usage.runs = usage.runs.saturating_add(1);
            }
        }
        usage
    }

    /// Entries oldest first (reservation time, then run id), like the SQLite store.
    pub fn sorted(&self) -> Vec<LedgerEntry> {
        let mut all: Vec<LedgerEntry> = self.entries.values().cloned().collect();
        all.sort_by(|a, b| (a.reserved_at, &a.run_id).cmp(&(b.reserved_at, &b.run_id)));
        all
    }
}

/// Replay a day's lines, in order. Pure: the same lines give the same ledger on every machine.
pub fn replay_day(day: Date, lines: &[Line]) -> DayLedger {
    let mut out = DayLedger::default();
    for (index, line) in lines.iter().enumerate() {
        if let Err(why) = apply(day, &mut out, line) {
            out.skipped.push(Skipped {
                index,
                run: line.run().clone(),
                why,
            });
        }
    }
    out
}

fn apply(day: Date, ledger: &mut DayLedger, line: &Line) -> Result<(), String> {
    match line {
        Line::Reserve {
            run,
            repo,
            issue,
            amount_micros,
            cap_micros,
            max_runs,
            soft_claim_ms,
            at,
            expires_at,
            ..
        } => {
            if ledger.entries.contains_key(run) {
                return Err("a second reservation for the run".into());
            }
            let amount = Usd::from_micros(*amount_micros);
            if !amount.is_positive() {
                return Err("a reservation must be positive".into());
            }
            let req = ReserveRequest {
                run_id: run.clone(),
                repo: repo.clone(),
                issue: *issue,
                amount,
                cap: Usd::from_micros(*cap_micros),
                max_runs: *max_runs,
                wall_clock: std::time::Duration::ZERO,
                grace: std::time::Duration::ZERO,
                soft_claim: std::time::Duration::from_millis(*soft_claim_ms),
                now: *at,
            };
            if let Some(reason) = admit_held(&ledger.usage(day), ledger.entries.values(), &req) {
                return Err(format!("refused by the day's limits: {}", reason.id()));
            }
            ledger.entries.insert(
                run.clone(),
                LedgerEntry {
                    run_id: run.clone(),
                    repo: repo.clone(),
                    issue: *issue,
                    day,
                    state: EntryState::Reserved,
                    reserved: amount,
                    cost: None,
                    overspent: false,
                    reserved_at: *at,
                    expires_at: *expires_at,
                    closed_at: None,
                },
            );
            Ok(())
        }
        Line::Settle {
            run,
            cost_micros,
            at,
        } => {
            let entry = open_entry(ledger, run)?;
            if !matches!(entry.state, EntryState::Reserved | EntryState::Expired) {
                return Err(format!("settle of a {} run", entry.state));
            }
            let cost = Usd::from_micros(*cost_micros);
            if cost < Usd::ZERO {
                return Err("a cost cannot be negative".into());
            }
            entry.state = EntryState::Settled;
            entry.cost = Some(cost);
            entry.overspent = cost > entry.reserved;
            entry.closed_at = Some(*at);
            Ok(())
        }
        Line::Release { run, at } => {
            let entry = open_entry(ledger, run)?;
            if entry.state != EntryState::Reserved {
                return Err(format!("release of a {} run", entry.state));
            }
            entry.state = EntryState::Released;
            entry.closed_at = Some(*at);
            Ok(())
        }
        Line::Expire { run, at } => {
            let entry = open_entry(ledger, run)?;
            if entry.state != EntryState::Reserved {
                return Err(format!("expiry of a {} run", entry.state));
            }
            entry.state = EntryState::Expired;
            entry.cost = Some(entry.reserved);
            entry.closed_at = Some(*at);
            Ok(())
        }
    }
}

fn open_entry<'a>(ledger: &'a mut DayLedger, run: &RunId) -> Result<&'a mut LedgerEntry, String> {
    ledger
        .entries
        .get_mut(run)
        .ok_or_else(|| "no reservation for the run on this day".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn reserve(run: &str, cents: i64, cap_cents: i64) -> Line {
        Line::Reserve {
            run: RunId::parse(run).unwrap(),
            repo: "acme/app".into(),
            issue: 1,
            amount_micros: cents * 10_000,
            cap_micros: cap_cents * 10_000,
            max_runs: 3,
            soft_claim_ms: 0,
            at: ts("2026-12-05T10:00:00Z"),
            expires_at: ts("2026-12-05T11:00:00Z"),
            host: None,
        }
    }

    fn run(s: &str) -> RunId {
        RunId::parse(s).unwrap()
    }

    #[test]
    fn replay_table() {
        let day: Date = "2026-12-05".parse().unwrap();
        let at = ts("2026-12-05T10:30:00Z");
        // (lines, spent, reserved, runs, skipped)
        let cases: Vec<(Vec<Line>, i64, i64, u32, usize)> = vec![
            (vec![reserve("a", 50, 100)], 0, 50, 1, 0),
            // Two halves fill the cap; a third is refused by replay itself.
            (
                vec![
                    reserve("a", 50, 100),
                    reserve("b", 50, 100),
                    reserve("c", 1, 100),
                ],
                0,
                100,
                2,
                1,
            ),
            // Settling below the reservation frees room for the next one.
            (
                vec![
                    reserve("a", 80, 100),
                    Line::Settle {
                        run: run("a"),
                        cost_micros: 100_000,
                        at,
                    },
                    reserve("b", 90, 100),
                ],
                10,
                90,
                2,
                0,
            ),
            // Expired: charged in full; a late settle replaces the charge.
            (
                vec![reserve("a", 80, 100), Line::Expire { run: run("a"), at }],
                80,
                0,
                1,
                0,
            ),
            (
                vec![
                    reserve("a", 80, 100),
                    Line::Expire { run: run("a"), at },
                    Line::Settle {
                        run: run("a"),
                        cost_micros: 200_000,
                        at,
                    },
                ],
                20,
                0,
                1,
                0,
            ),
            // Released: no charge, no run; releasing twice or settling it is skipped.
            (
                vec![
                    reserve("a", 80, 100),
                    Line::Release { run: run("a"), at },
                    Line::Release { run: run("a"), at },
                    Line::Settle {
                        run: run("a"),
                        cost_micros: 1,
                        at,
                    },
                ],
                0,
                0,
                0,
                2,
            ),
            // Unknown runs and duplicate reservations change nothing.
            (
                vec![
                    Line::Settle {
                        run: run("x"),
                        cost_micros: 1,
                        at,
                    },
                    reserve("a", 10, 100),
                    reserve("a", 10, 100),
                ],
                0,
                10,
                1,
                2,
            ),
            // The run count: max_runs = 3.
            (
                vec![
                    reserve("a", 1, 100),
                    reserve("b", 1, 100),
                    reserve("c", 1, 100),
                    reserve("d", 1, 100),
                ],
                0,
                3,
                3,
                1,
            ),
        ];
        for (i, (lines, spent, reserved, runs, skipped)) in cases.into_iter().enumerate() {
            let replayed = replay_day(day, &lines);
            let usage = replayed.usage(day);
            assert_eq!(
                (
                    usage.spent.micros(),
                    usage.reserved.micros(),
                    usage.runs,
                    replayed.skipped.len()
                ),
                (spent * 10_000, reserved * 10_000, runs, skipped),
                "case {i}: {:?}",
                replayed.skipped
            );
        }
    }

    #[test]
    fn replay_applies_the_soft_claim_each_line_carried() {
        let day: Date = "2026-12-05".parse().unwrap();
        let windowed = |name: &str, window_ms: u64, at: &str| match reserve(name, 10, 100) {
            Line::Reserve {
                run,
                repo,
                issue,
                amount_micros,
                cap_micros,
                max_runs,
                expires_at,
                host,
                ..
            } => Line::Reserve {
                run,
                repo,
                issue,
                amount_micros,
                cap_micros,
                max_runs,
                soft_claim_ms: window_ms,
                at: ts(at),
                expires_at,
                host,
            },
            other => other,
        };
        // (second line's window, its time, skipped): the first reserved at 10:00:00.
        let cases = [
            (180_000, "2026-12-05T10:01:00Z", 1),
            (180_000, "2026-12-05T10:03:00Z", 0),
            (0, "2026-12-05T10:01:00Z", 0),
        ];
        for (window, at, skipped) in cases {
            let lines = [
                windowed("a", 180_000, "2026-12-05T10:00:00Z"),
                windowed("b", window, at),
            ];
            let replayed = replay_day(day, &lines);
            assert_eq!(replayed.skipped.len(), skipped, "{window} ms at {at}");
            if skipped == 1 {
                assert_eq!(
                    replayed.skipped[0].why,
                    "refused by the day's limits: reserved_elsewhere"
                );
            }
        }
        // A line written before the window existed reads as no window, and renders unchanged.
        let old = "{\"op\":\"reserve\",\"run\":\"b\",\"repo\":\"acme/app\",\"issue\":1,\
                   \"amount_micros\":100000,\"cap_micros\":1000000,\"max_runs\":3,\
                   \"at\":\"2026-12-05T10:01:00Z\",\"expires_at\":\"2026-12-05T11:00:00Z\"}\n";
        let parsed = parse_day(old).unwrap();
        assert_eq!(parsed, [windowed("b", 0, "2026-12-05T10:01:00Z")]);
        assert_eq!(parsed[0].render(), old);
        let lines = [
            windowed("a", 180_000, "2026-12-05T10:00:00Z"),
            parsed[0].clone(),
        ];
        assert!(replay_day(day, &lines).skipped.is_empty());
    }

    #[test]
    fn lines_round_trip_and_unknown_ones_are_refused() {
        let lines = vec![
            reserve("a", 50, 100),
            Line::Settle {
                run: run("a"),
                cost_micros: 1,
                at: ts("2026-12-05T10:30:00.123Z"),
            },
        ];
        let text: String = lines.iter().map(Line::render).collect();
        assert_eq!(parse_day(&text).unwrap(), lines);
        assert!(
            text.starts_with("{\"op\":\"reserve\",\"run\":\"a\""),
            "{text}"
        );
        let err = parse_day("{\"op\":\"merge\",\"run\":\"a\"}\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
        assert_eq!(
            day_path("2026-12-05".parse().unwrap()),
            "ledger/2026-12-05.jsonl"
        );
    }
}
