//! Budgets, the ledger and the journal: per-run budgets clamped to what is left of the UTC day,
//! crash-safe reservations against the daily cap, and an append-only record of every run.
//!
//! The pipeline's order: [`Ledger::expire`] at the start of every tick; per issue
//! [`Ledger::day_usage`] → [`derive`] → [`Ledger::reserve`] → … → [`Ledger::settle`] (or
//! [`Ledger::release`] when the agent never started); [`Journal::append`] at every step.

mod budget;
mod journal;
mod ledger;
mod money;
mod owner;
mod postgres;
mod sqlite;
mod store;
mod transfer;

pub use budget::{BudgetDecision, SkipReason, derive};
pub use journal::{
    Event, Journal, JournalEntry, RunId, RunStatus, RunSummary, StageRuntime, derive_status,
    stage_runtimes,
};
pub use ledger::{
    DayUsage, EntryState, Expired, Ledger, LedgerEntry, LedgerError, Reservation, ReserveOutcome,
    ReserveRequest, Settlement, admit, admit_amount, admit_held, check_release, check_settle,
    soft_claimed, to_millis, utc_day,
};
pub use money::Usd;
pub use owner::{ProcessOwner, owner_is_gone, process_start};
pub use postgres::{PG_SCHEMA_VERSION, PgLedger};
pub use sqlite::{APPLICATION_ID, SCHEMA_VERSION, SqliteLedger};
pub use store::{Access, StateStore, open_state};
pub use transfer::{
    EntryRecord, EventRecord, ImportPlan, ImportSummary, OwnerRecord, Record, TRANSFER_VERSION,
    ValueRecord, parse_records, plan_import,
};
