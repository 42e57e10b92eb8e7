//! The `github` state backend: the ledger as an append-only log of JSON lines (one file per UTC
//! day) on a branch of a repository, so an Actions tick needs nothing but the token. Every change
//! is a commit pushed fast-forward only, and the push is the compare-and-swap: a rejected push
//! means another runner wrote first, so the store fetches, replays, decides again and retries.
//! Reservations, settlements, releases, expiries and the day's cap decisions are derived by
//! replaying the log ([`replay_day`], pure), so every machine that reads the branch computes the
//! same ledger.

mod log;
mod store;

pub use log::{DayLedger, FORMAT, Line, Skipped, day_path, parse_day, replay_day};
pub use store::{
    DEFAULT_BRANCH, FORMAT_FILE, GithubState, GithubStateOptions, RemoteRefresh, TransferStats,
};
