//! Gates: the commands issueloop runs to verify a change before any PR is opened, per worktree.
//!
//! The pipeline calls, for each worktree of a run:
//! [`RepoFacts::scan`] → [`select`] → [`plan`] (which calls [`prepare`] and then [`check`] on
//! the prepared argv) → [`run_gates`]. Everything but the scan and the run is pure.
//!
//! - [`prepare`] rewrites `uv run` gates (and bare Python tools in a repository with a locked dev
//!   set) so they run with `--locked` and the dev set, from a typed parse of uv's option segment.
//! - [`check`] applies the allowlist of the repository's policy to the prepared argv.
//! - [`run_gates`] runs argvs (never a shell) in their own process group with a timeout, an
//!   environment built from an allowlist of variables, bounded output, and reports any file a
//!   gate left behind in the worktree.

mod allow;
mod builtin;
mod env;
mod error;
mod facts;
mod guarded;
mod leftovers;
mod plan;
mod prepare;
#[cfg(test)]
mod prepare_properties;
mod run;
mod select;
mod uv_options;
mod verdict;

pub use allow::{GateCheck, RejectReason, check};
pub use error::GateError;
pub use facts::{DefaultGroups, DevSelector, RepoFacts, RepoFiles};
pub use plan::{PlannedGate, PlannedStep, Rejection, plan};
pub use prepare::{PreparedArgv, prepare, shell_join};
pub use run::{GateReport, GateResult, GateStatus, LeftoverCheck, RunOptions, run_gates};
pub use select::{Gate, GateOrigin, GateSpec, UTF8_CHECK_PROGRAM, select};
pub use verdict::{FailureKind, GateFailure, GateVerdict};
