//! The ledger: reservations and costs per UTC day behind a trait that names no storage type, so
//! a shared store (Postgres, a git ref with compare-and-swap) can implement it later.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use issueloop_config::{BudgetConfig, Hint, RunBudget};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::budget::SkipReason;
use crate::journal::RunId;
use crate::money::Usd;

/// The UTC calendar day a moment falls on: the key of the daily cap.
pub fn utc_day(at: Timestamp) -> Date {
    TimeZone::UTC.to_datetime(at).date()
}

/// What one UTC day has used so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayUsage {
    pub day: Date,
    /// Settled costs plus expired reservations (charged at their full amount).
    #[serde(rename = "spent_usd")]
    pub spent: Usd,
    /// Reservations of runs not yet settled, released or expired.
    #[serde(rename = "reserved_usd")]
    pub reserved: Usd,
    /// Runs that reserved on this day and were not released (released runs never started).
    #[serde(rename = "runs_today")]
    pub runs: u32,
}

impl DayUsage {
    /// A day with nothing recorded.
    pub fn empty(day: Date) -> DayUsage {
        DayUsage {
            day,
            spent: Usd::ZERO,
            reserved: Usd::ZERO,
            runs: 0,
        }
    }

    /// What is left of `cap` after spend and reservations, never below zero.
    pub fn left(&self, cap: Usd) -> Usd {
        cap.left_after(self.spent.saturating_add(self.reserved))
    }
}

/// A request to reserve a run's budget. Every limit travels with the request, so the check
/// and the insert happen against the same numbers in one transaction.
#[derive(Clone, Debug)]
pub struct ReserveRequest {
    pub run_id: RunId,
    /// `owner/name` of the issue's repository.
    pub repo: String,
    pub issue: u64,
    pub amount: Usd,
    /// The daily cap.
    pub cap: Usd,
    /// The daily run-count cap.
    pub max_runs: u32,
    /// The run's wall-clock budget; with `grace` it sets when an unsettled reservation expires.
    pub wall_clock: Duration,
    pub grace: Duration,
    /// How long another run's unsettled reservation of the same issue blocks this one
    /// ([`soft_claimed`]): the forge lease's TTL, after which the lease is the authority. Zero
    /// checks nothing.
    pub soft_claim: Duration,
    /// The moment of the reservation; its UTC day is the day charged.
    pub now: Timestamp,
}

impl ReserveRequest {
    /// The request for a run `budget` (from [`crate::derive`]) under the configured caps; the
    /// soft claim lasts `soft_claim` (the forge lease's TTL).
    pub fn new(
        run_id: RunId,
        repo: impl Into<String>,
        issue: u64,
        budget: &RunBudget,
        cfg: &BudgetConfig,
        soft_claim: Duration,
        now: Timestamp,
    ) -> ReserveRequest {
        ReserveRequest {
            run_id,
            repo: repo.into(),
            issue,
            amount: budget.cost_usd,
            cap: cfg.daily_cap_usd,
            max_runs: cfg.max_runs_per_day,
            wall_clock: budget.wall_clock,
            grace: cfg.reservation_grace,
            soft_claim,
            now,
        }
    }
}

impl ReserveRequest {
    /// Refuse an amount that is not positive: the one check every store makes before it looks
    /// at the day.
    pub fn check_amount(&self) -> Result<(), LedgerError> {
        if self.amount.is_positive() {
            return Ok(());
        }
        Err(LedgerError::InvalidAmount {
            run_id: self.run_id.clone(),
            op: "reserve",
            amount: self.amount,
            why: "a reservation must be positive",
        })
    }
}

/// The cap rule every store applies inside its reservation transaction, and [`crate::derive`]
/// before it: [`admit_amount`] for the request's amount and limits. `None` admits it. Pure, so
/// every backend (SQLite, PostgreSQL, the state-github replay) decides exactly alike.
pub fn admit(usage: &DayUsage, req: &ReserveRequest) -> Option<SkipReason> {
    admit_amount(usage, req.amount, req.cap, req.max_runs)
}

/// The cap rule itself, written once: refuse when the day already has `max_runs` runs
/// (`daily_runs_reached`, checked first), or when nothing is left of `cap` or
/// `spent + reserved + amount` would pass it (`daily_cap_reached`); `None` admits `amount`.
///
/// For a positive amount "nothing left" is implied by "does not fit"; it is spelled out so that
/// a zero amount — what clamping to an exhausted day gives — is refused too.
pub fn admit_amount(usage: &DayUsage, amount: Usd, cap: Usd, max_runs: u32) -> Option<SkipReason> {
    if usage.runs >= max_runs {
        return Some(SkipReason::DailyRunsReached);
    }
    let after_this = usage
        .spent
        .saturating_add(usage.reserved)
        .saturating_add(amount);
    (!usage.left(cap).is_positive() || after_this > cap).then_some(SkipReason::DailyCapReached)
}

/// The soft-claim rule every store applies inside its reservation transaction, before the cap
/// rule: refuse (`reserved_elsewhere`) when `entries` (the day's) hold a reservation still
/// unsettled — not settled, released or expired — for the request's repository and issue,
/// made by another run less than `req.soft_claim` before `req.now` (or after it: a clock
/// ahead of ours). Two runs that selected the same issue thus never both hold budget for it;
/// once the window has passed, the forge's lease decides who holds the issue (a live run
/// renews it, a dead run's lapses), so taking over from a crashed run is not delayed. A zero
/// window checks nothing. Pure, so every backend (and the state-github replay) decides alike.
pub fn soft_claimed<'a>(
    entries: impl IntoIterator<Item = &'a LedgerEntry>,
    req: &ReserveRequest,
) -> Option<SkipReason> {
    if req.soft_claim.is_zero() {
        return None;
    }
    let now = to_millis(req.now);
    let window = SignedDuration::try_from(req.soft_claim).unwrap_or(SignedDuration::MAX);
    entries
        .into_iter()
        .any(|e| {
            e.state == EntryState::Reserved
                && e.issue == req.issue
                && e.repo == req.repo
                && e.run_id != req.run_id
                && now.duration_since(e.reserved_at) < window
        })
        .then_some(SkipReason::ReservedElsewhere)
}

/// Both rules in the order every store applies them: [`soft_claimed`] over the day's
/// `entries`, then [`admit`] over its `usage`. `None` admits the request.
pub fn admit_held<'a>(
    usage: &DayUsage,
    entries: impl IntoIterator<Item = &'a LedgerEntry>,
    req: &ReserveRequest,
) -> Option<SkipReason> {
    soft_claimed(entries, req).or_else(|| admit(usage, req))
}

/// A recorded reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub run_id: RunId,
    pub repo: String,
    pub issue: u64,
    pub day: Date,
    #[serde(rename = "amount_usd")]
    pub amount: Usd,
    pub reserved_at: Timestamp,
    /// After this moment an unsettled reservation is charged in full by [`Ledger::expire`].
    pub expires_at: Timestamp,
}

impl Reservation {
    /// The reservation `req` records, as every store records it: its time at the millisecond
    /// precision the stores keep, charged to that time's UTC day, expiring after the run's wall
    /// clock plus the grace period (saturating at the largest time).
    pub fn new(req: &ReserveRequest) -> Reservation {
        let reserved_at = to_millis(req.now);
        Reservation {
            run_id: req.run_id.clone(),
            repo: req.repo.clone(),
            issue: req.issue,
            day: utc_day(reserved_at),
            amount: req.amount,
            reserved_at,
            expires_at: after(reserved_at, req.wall_clock.saturating_add(req.grace)),
        }
    }
}

/// `t` at millisecond precision: what every store keeps, so what a store returns is what it
/// reads back later.
pub fn to_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

/// `t + d` at millisecond precision, saturating at the largest timestamp.
fn after(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .map(to_millis)
        .unwrap_or(Timestamp::MAX)
}

/// What settling `entry` at `actual` records, or why it may not: a cost is never negative, and
/// only a reserved or an expired entry settles (the actual cost then replaces the full charge).
/// An actual above the reservation is recorded as it is and flagged. Pure, so every store
/// settles alike.
pub fn check_settle(entry: &LedgerEntry, actual: Usd) -> Result<Settlement, LedgerError> {
    if actual < Usd::ZERO {
        return Err(LedgerError::InvalidAmount {
            run_id: entry.run_id.clone(),
            op: "settle",
            amount: actual,
            why: "a cost cannot be negative",
        });
    }
    let was_expired = match entry.state {
        EntryState::Reserved => false,
        EntryState::Expired => true,
        state @ (EntryState::Settled | EntryState::Released) => {
            return Err(LedgerError::WrongState {
                run_id: entry.run_id.clone(),
                op: "settle",
                state,
            });
        }
    };
    Ok(Settlement {
        run_id: entry.run_id.clone(),
        day: entry.day,
        reserved: entry.reserved,
        cost: actual,
        overspent: actual > entry.reserved,
        was_expired,
    })
}

/// Whether `entry` may be released: only while it is reserved.
pub fn check_release(entry: &LedgerEntry) -> Result<(), LedgerError> {
    if entry.state == EntryState::Reserved {
        return Ok(());
    }
    Err(LedgerError::WrongState {
        run_id: entry.run_id.clone(),
        op: "release",
        state: entry.state,
    })
}

/// The result of [`Ledger::reserve`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReserveOutcome {
    Reserved(Reservation),
    /// Nothing was recorded; `usage` is the day as the refusing transaction saw it.
    Refused {
        reason: SkipReason,
        usage: DayUsage,
    },
}

/// The result of [`Ledger::settle`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settlement {
    pub run_id: RunId,
    /// The day the reservation was made on, which is charged.
    pub day: Date,
    #[serde(rename = "reserved_usd")]
    pub reserved: Usd,
    #[serde(rename = "cost_usd")]
    pub cost: Usd,
    /// The actual cost was above the reservation (recorded as it is).
    pub overspent: bool,
    /// The reservation had already expired (its full amount was charged) before this settle
    /// replaced it with the actual cost.
    pub was_expired: bool,
}

/// A reservation charged in full by [`Ledger::expire`]: its run never settled in time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub run_id: RunId,
    pub repo: String,
    pub issue: u64,
    pub day: Date,
    #[serde(rename = "amount_usd")]
    pub amount: Usd,
    pub reserved_at: Timestamp,
    pub expires_at: Timestamp,
}

impl std::fmt::Display for Expired {
    /// One sentence for a person: `run r-… of acme/app#3: $1.00 reserved at …, due to settle
    /// by …, charged to 2025-06-01`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} of {}#{}: {} reserved at {}, due to settle by {}, charged to {}",
            self.run_id,
            self.repo,
            self.issue,
            self.amount,
            self.reserved_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            self.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            self.day
        )
    }
}

/// Where a ledger entry stands. Every reservation ends `settled`, `released` or `expired`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Budget held for a running run.
    Reserved,
    /// The actual cost is recorded.
    Settled,
    /// The run never started its agent; nothing is charged.
    Released,
    /// The run never settled; charged at the full reserved amount.
    Expired,
}

impl EntryState {
    pub const ALL: [EntryState; 4] = [
        EntryState::Reserved,
        EntryState::Settled,
        EntryState::Released,
        EntryState::Expired,
    ];

    pub const fn id(self) -> &'static str {
        match self {
            EntryState::Reserved => "reserved",
            EntryState::Settled => "settled",
            EntryState::Released => "released",
            EntryState::Expired => "expired",
        }
    }

    pub fn from_id(id: &str) -> Option<EntryState> {
        EntryState::ALL.into_iter().find(|s| s.id() == id)
    }
}

impl std::fmt::Display for EntryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One run's line in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub run_id: RunId,
    pub repo: String,
    pub issue: u64,
    pub day: Date,
    pub state: EntryState,
    #[serde(rename = "reserved_usd")]
    pub reserved: Usd,
    /// What the day is charged: the actual cost (settled), the full reservation (expired);
    /// `None` while reserved or once released.
    #[serde(rename = "cost_usd")]
    pub cost: Option<Usd>,
    pub overspent: bool,
    pub reserved_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it was settled, released or expired.
    pub closed_at: Option<Timestamp>,
}

impl LedgerEntry {
    /// Still reserved although its expiry has passed: the next [`Ledger::expire`] charges it.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.state == EntryState::Reserved && self.expires_at <= now
    }
}

/// Errors of the ledger and the journal. Messages name the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot create the directory `{}` for the state database", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{}` is not a readable issueloop state database ({detail}); it was left untouched",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "`{}` is a SQLite database of another application ({detail}); it was left untouched",
        path.display()
    )]
    NotOurs { path: PathBuf, detail: String },
    #[error(
        "`{}` was written by a newer issueloop (schema version {found}, this one understands up \
         to {supported}); it was left untouched",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "state database `{}` stayed locked by another process for more than {}s during {op}: \
         try again; if it persists, look for a stuck issueloop process",
        path.display(),
        timeout.as_secs()
    )]
    Busy {
        path: PathBuf,
        op: &'static str,
        timeout: Duration,
    },
    #[error("state database `{}`: {op} failed", path.display())]
    Storage {
        path: PathBuf,
        op: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("state database `{}` holds a row it cannot read ({detail})", path.display())]
    BadRow { path: PathBuf, detail: String },
    #[error(
        "run `{run_id}` already has a ledger entry; every run reserves once, under a new run id"
    )]
    DuplicateRun { run_id: RunId },
    #[error("the state store is not configured: {detail}")]
    Unconfigured { detail: String },
    #[error(
        "state database `{}`: the connection's worker stopped; restart issueloop",
        path.display()
    )]
    WorkerStopped { path: PathBuf },
    #[error(
        "the store already holds other data for runs in the file; nothing was imported:\n  {}",
        conflicts.join("\n  ")
    )]
    ImportConflict { conflicts: Vec<String> },
    #[error("no ledger entry for run `{run_id}`")]
    UnknownRun { run_id: RunId },
    #[error("cannot {op} run `{run_id}`: its reservation is already {state}")]
    WrongState {
        run_id: RunId,
        op: &'static str,
        state: EntryState,
    },
    #[error("cannot {op} {amount} for run `{run_id}`: {why}")]
    InvalidAmount {
        run_id: RunId,
        op: &'static str,
        amount: Usd,
        why: &'static str,
    },
}

impl Hint for LedgerError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        match self {
            LedgerError::Corrupt { .. } => Some(Cow::Borrowed(
                "restore it from a backup, or move it away and let issueloop start a new one \
                 (`[state] path` in the configuration chooses the file)",
            )),
            LedgerError::NotOurs { .. } => Some(Cow::Borrowed(
                "point `[state] path` in the configuration at a file of its own",
            )),
            LedgerError::NewerSchema { .. } => Some(Cow::Borrowed("upgrade issueloop to use it")),
            _ => None,
        }
    }
}

/// Reservations and costs per UTC day.
///
/// Time is always passed in, never read inside, so callers and tests control it. Every method
/// is one atomic step: a reservation is checked against the day's spend, reservations and run
/// count and recorded in the same transaction, whatever other processes do meanwhile.
pub trait Ledger: Send + Sync {
    /// Reserve `req.amount` on the UTC day of `req.now` if `spent + reserved + amount ≤ cap`
    /// and fewer than `max_runs` runs reserved that day; otherwise record nothing and refuse.
    fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError>;

    /// Replace a run's reservation with its actual cost, charged to the day it reserved on. An
    /// actual above the reservation is recorded as it is and flagged `overspent`. A reservation
    /// that already expired is settled too: the actual cost replaces the full charge.
    fn settle(
        &self,
        run_id: &RunId,
        actual: Usd,
        now: Timestamp,
    ) -> Result<Settlement, LedgerError>;

    /// Drop a run's reservation without charge: the run never started its agent.
    fn release(&self, run_id: &RunId, now: Timestamp) -> Result<(), LedgerError>;

    /// Charge every reservation whose expiry (reserved at + wall clock + grace) is at or before
    /// `now` at its full amount: its process died and the money may have been spent.
    fn expire(&self, now: Timestamp) -> Result<Vec<Expired>, LedgerError>;

    /// What `day` has used.
    fn day_usage(&self, day: Date) -> Result<DayUsage, LedgerError>;

    /// The entries of runs that reserved on `day`, oldest first.
    fn entries(&self, day: Date) -> Result<Vec<LedgerEntry>, LedgerError>;

    /// One run's entry.
    fn entry(&self, run_id: &RunId) -> Result<Option<LedgerEntry>, LedgerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_table() {
        let day = utc_day("2026-11-21T12:00:00Z".parse().unwrap());
        let usd = Usd::from_dollars;
        let req = |amount: f64, max_runs: u32| ReserveRequest {
            run_id: RunId::parse("r").unwrap(),
            repo: "acme/api".into(),
            issue: 1,
            amount: usd(amount),
            cap: usd(10.0),
            max_runs,
            wall_clock: Duration::from_secs(60),
            grace: Duration::from_secs(60),
            soft_claim: Duration::ZERO,
            now: "2026-11-21T12:00:00Z".parse().unwrap(),
        };
        let usage = |spent: f64, reserved: f64, runs: u32| DayUsage {
            day,
            spent: usd(spent),
            reserved: usd(reserved),
            runs,
        };
        let cases = [
            // (spent, reserved, runs, amount, max_runs, decision)
            (0.0, 0.0, 0, 10.0, 5, None),
            (0.0, 0.0, 0, 10.000001, 5, Some(SkipReason::DailyCapReached)),
            (5.0, 4.2, 2, 0.8, 5, None),
            (5.0, 4.2, 2, 0.800001, 5, Some(SkipReason::DailyCapReached)),
            (0.0, 0.0, 5, 0.01, 5, Some(SkipReason::DailyRunsReached)),
            // The run count is checked first: both limits reached reports the runs.
            (10.0, 0.0, 5, 1.0, 5, Some(SkipReason::DailyRunsReached)),
            // Overspent settles may have pushed the day past the cap: nothing more fits.
            (12.0, 0.0, 1, 0.01, 5, Some(SkipReason::DailyCapReached)),
            // A clamp to an exhausted day asks for nothing: refused, the day is spent.
            (6.0, 4.0, 1, 0.0, 5, Some(SkipReason::DailyCapReached)),
            (6.0, 3.0, 1, 0.0, 5, None),
        ];
        for (spent, reserved, runs, amount, max_runs, want) in cases {
            let today = usage(spent, reserved, runs);
            let what = format!("{spent} + {reserved} + {amount}, {runs} of {max_runs} runs");
            assert_eq!(admit(&today, &req(amount, max_runs)), want, "{what}");
            assert_eq!(
                admit_amount(&today, usd(amount), usd(10.0), max_runs),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn settle_and_release_table() {
        let entry = |state: EntryState| LedgerEntry {
            run_id: RunId::parse("r").unwrap(),
            repo: "acme/api".into(),
            issue: 1,
            day: "2026-11-21".parse().unwrap(),
            state,
            reserved: Usd::from_dollars(1.0),
            cost: None,
            overspent: false,
            reserved_at: "2026-11-21T12:00:00Z".parse().unwrap(),
            expires_at: "2026-11-21T13:00:00Z".parse().unwrap(),
            closed_at: None,
        };
        let usd = Usd::from_dollars;
        // (state, actual, settles as (overspent, was_expired) or the error's words)
        type Want = Result<(bool, bool), &'static str>;
        let cases: [(EntryState, f64, Want); 8] = [
            (EntryState::Reserved, 0.4, Ok((false, false))),
            (EntryState::Reserved, 1.0, Ok((false, false))),
            (EntryState::Reserved, 1.000001, Ok((true, false))),
            (EntryState::Reserved, 0.0, Ok((false, false))),
            (EntryState::Expired, 0.2, Ok((false, true))),
            (EntryState::Reserved, -0.01, Err("cannot be negative")),
            (EntryState::Settled, 0.2, Err("already settled")),
            (EntryState::Released, 0.2, Err("already released")),
        ];
        for (state, actual, want) in cases {
            let got = check_settle(&entry(state), usd(actual));
            match (got, want) {
                (Ok(s), Ok((overspent, was_expired))) => {
                    assert_eq!((s.overspent, s.was_expired), (overspent, was_expired));
                    assert_eq!((s.cost, s.reserved), (usd(actual), usd(1.0)));
                }
                (Err(e), Err(words)) => assert!(e.to_string().contains(words), "{e}"),
                (got, want) => panic!("{state} at {actual}: {got:?}, expected {want:?}"),
            }
        }
        for state in EntryState::ALL {
            assert_eq!(
                check_release(&entry(state)).is_ok(),
                state == EntryState::Reserved,
                "{state}"
            );
        }
    }

    #[test]
    fn soft_claim_table() {
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        let day = utc_day(at("2026-11-21T12:00:00Z"));
        let entry =
            |run: &str, repo: &str, issue: u64, state: EntryState, reserved_at: &str| LedgerEntry {
                run_id: RunId::parse(run).unwrap(),
                repo: repo.into(),
                issue,
                day,
                state,
                reserved: Usd::from_dollars(0.5),
                cost: None,
                overspent: false,
                reserved_at: at(reserved_at),
                expires_at: at("2026-11-21T13:00:00Z"),
                closed_at: None,
            };
        let req = |window: u64| ReserveRequest {
            run_id: RunId::parse("b").unwrap(),
            repo: "acme/api".into(),
            issue: 1,
            amount: Usd::from_dollars(0.5),
            cap: Usd::from_dollars(10.0),
            max_runs: 5,
            wall_clock: Duration::from_secs(600),
            grace: Duration::from_secs(60),
            soft_claim: Duration::from_secs(window),
            now: at("2026-11-21T12:03:00Z"),
        };
        use EntryState::{Expired, Released, Reserved, Settled};
        let refused = Some(SkipReason::ReservedElsewhere);
        let cases = [
            // (holder run, repo, issue, state, reserved at, window s, decision)
            (
                "a",
                "acme/api",
                1,
                Reserved,
                "2026-11-21T12:00:01Z",
                180,
                refused,
            ),
            // Made exactly a window ago: the lease is the authority now.
            (
                "a",
                "acme/api",
                1,
                Reserved,
                "2026-11-21T12:00:00Z",
                180,
                None,
            ),
            (
                "a",
                "acme/api",
                1,
                Reserved,
                "2026-11-21T11:59:00Z",
                180,
                None,
            ),
            // A clock ahead of ours: still within the window.
            (
                "a",
                "acme/api",
                1,
                Reserved,
                "2026-11-21T12:04:00Z",
                180,
                refused,
            ),
            // Closed reservations claim nothing.
            (
                "a",
                "acme/api",
                1,
                Settled,
                "2026-11-21T12:02:00Z",
                180,
                None,
            ),
            (
                "a",
                "acme/api",
                1,
                Released,
                "2026-11-21T12:02:00Z",
                180,
                None,
            ),
            (
                "a",
                "acme/api",
                1,
                Expired,
                "2026-11-21T12:02:00Z",
                180,
                None,
            ),
            // Another issue, another repository, the run itself.
            (
                "a",
                "acme/api",
                2,
                Reserved,
                "2026-11-21T12:02:00Z",
                180,
                None,
            ),
            (
                "a",
                "acme/web",
                1,
                Reserved,
                "2026-11-21T12:02:00Z",
                180,
                None,
            ),
            (
                "b",
                "acme/api",
                1,
                Reserved,
                "2026-11-21T12:02:00Z",
                180,
                None,
            ),
            // A zero window checks nothing (old log lines replay so).
            (
                "a",
                "acme/api",
                1,
                Reserved,
                "2026-11-21T12:02:59Z",
                0,
                None,
            ),
        ];
        for (run, repo, issue, state, reserved_at, window, want) in cases {
            let held = [entry(run, repo, issue, state, reserved_at)];
            let what = format!("{run} {repo}#{issue} {state} at {reserved_at}, window {window}s");
            assert_eq!(soft_claimed(&held, &req(window)), want, "{what}");
        }
        // The soft claim is checked before the cap: a full day still names the holder.
        let full = DayUsage {
            day,
            spent: Usd::ZERO,
            reserved: Usd::from_dollars(10.0),
            runs: 1,
        };
        let held = [entry("a", "acme/api", 1, Reserved, "2026-11-21T12:02:00Z")];
        assert_eq!(admit_held(&full, &held, &req(180)), refused);
        assert_eq!(
            admit_held(&full, &held, &req(0)),
            Some(SkipReason::DailyCapReached)
        );
        assert_eq!(admit_held(&DayUsage::empty(day), &[], &req(180)), None);
    }

    #[test]
    fn a_reservation_is_kept_to_the_millisecond_and_expires_after_wall_clock_and_grace() {
        let req = ReserveRequest {
            run_id: RunId::parse("r").unwrap(),
            repo: "acme/api".into(),
            issue: 1,
            amount: Usd::from_dollars(1.0),
            cap: Usd::from_dollars(10.0),
            max_runs: 5,
            wall_clock: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            soft_claim: Duration::ZERO,
            now: "2026-11-21T23:59:59.999999Z".parse().unwrap(),
        };
        let r = Reservation::new(&req);
        assert_eq!(r.reserved_at.to_string(), "2026-11-21T23:59:59.999Z");
        assert_eq!(r.day.to_string(), "2026-11-21");
        assert_eq!(r.expires_at.to_string(), "2026-11-22T00:01:29.999Z");
        let forever = ReserveRequest {
            wall_clock: Duration::MAX,
            ..req.clone()
        };
        assert_eq!(Reservation::new(&forever).expires_at, Timestamp::MAX);
        assert!(req.check_amount().is_ok());
        let zero = ReserveRequest {
            amount: Usd::ZERO,
            ..req
        };
        assert!(zero.check_amount().is_err());
    }

    #[test]
    fn utc_day_ignores_local_offsets() {
        let late: Timestamp = "2026-11-21T23:59:59.999Z".parse().unwrap();
        let early: Timestamp = "2026-11-22T00:00:00Z".parse().unwrap();
        let offset: Timestamp = "2026-11-21T20:00:00-05:00".parse().unwrap();
        assert_eq!(utc_day(late).to_string(), "2026-11-21");
        assert_eq!(utc_day(early).to_string(), "2026-11-22");
        assert_eq!(utc_day(offset).to_string(), "2026-11-22");
    }

    #[test]
    fn an_expired_reservation_reads_as_a_sentence() {
        let expired = Expired {
            run_id: RunId::generate("2026-11-21T10:00:00Z".parse().unwrap(), "acme/app", 3),
            repo: "acme/app".into(),
            issue: 3,
            day: "2026-11-21".parse().unwrap(),
            amount: Usd::from_micros(1_000_000),
            reserved_at: "2026-11-21T10:00:00Z".parse().unwrap(),
            expires_at: "2026-11-21T11:00:00Z".parse().unwrap(),
        };
        let text = expired.to_string();
        assert!(
            text.ends_with(
                "of acme/app#3: $1.00 reserved at 2026-11-21 10:00:00 UTC, due to settle by \
                 2026-11-21 11:00:00 UTC, charged to 2026-11-21"
            ),
            "{text}"
        );
        for debug in ["Expired {", "RunId(", "Usd("] {
            assert!(!text.contains(debug), "{text}");
        }
    }

    #[test]
    fn states_round_trip_their_ids() {
        for s in EntryState::ALL {
            assert_eq!(EntryState::from_id(s.id()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.id());
        }
        assert_eq!(EntryState::from_id("pending"), None);
    }
}
