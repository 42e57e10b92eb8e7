//! issueloop turns GitHub issues labelled `loop:*` into draft pull requests written by a coding
//! agent, under a daily cost cap, per-run budgets, a gate-command allowlist and a diff policy.
//!
//! The parts live in their own crates (each owns one heavy dependency or one policy area) and
//! are re-exported here; this crate holds the command line and the pipeline that sequences them.
//! See `docs/ARCHITECTURE.md` for the code map.

pub mod cli;
pub mod demo;
pub mod failpoint;
pub mod metrics;
pub mod pipeline;
pub mod service;
pub mod shutdown;
pub mod state;

pub use issueloop_config as config;
pub use issueloop_forge as forge;
pub use issueloop_gates as gates;
pub use issueloop_ledger as ledger;
pub use issueloop_policy as policy;
pub use issueloop_process as process;
pub use issueloop_publish as publish;
pub use issueloop_runtime as runtime;
pub use issueloop_triage as triage;
pub use issueloop_workspace as workspace;
// The briefs and the tick report are words: they live in `publish`, under their old names too.
pub use issueloop_publish::{brief, report};
