//! issueloop turns GitHub issues labelled `loop:*` into draft pull requests written by a coding
//! agent, under a daily cost cap, per-run budgets, a gate-command allowlist and a diff policy.
//!
//! The parts live in their own crates (each owns one heavy dependency or one policy area) and
//! are re-exported here; this crate holds the command line and the pipeline that sequences them.
//! See `docs/ARCHITECTURE.md` for the code map.

pub mod cli;

pub use issueloop_config as config;
