//! Agent runtimes: build each coding-agent CLI's invocation for a stage, supervise it in a
//! worktree under the run's limits, and normalize its machine output into one [`BackendOutcome`].
//!
//! - [`invocation_for_stage`] / [`invocation`]: the argv, stdin, output format and environment
//!   of a harness (`claude_code`, `codex`, `pi`, `opencode`, `gemini`) or any `command`.
//! - [`run`]: the agent started through `issueloop-process` in the worktree (optionally
//!   sandboxed, every descendant ended with it), with a scrubbed environment,
//!   live cost enforcement, a wall-clock limit and bounded memory.
//! - [`Normalizer`]: pure, incremental reading of a harness's stream into a [`BackendOutcome`].
//! - [`preflight`]: what `doctor` shows and `run`/`serve` check before taking work.
//! - [`install_codex_profile`]: the managed Codex profile (`issueloop setup --runtime codex`).

mod adapter;
mod agent_env;
mod codex_setup;
mod error;
mod format;
mod normalize;
mod outcome;
mod preflight;
mod pricing;
mod stderr_tail;
mod supervise;

pub use adapter::{
    BRIEF_FILE_VAR, Brief, BriefFile, Invocation, ProfileMapping, RunLimits, declared_env,
    harness_state_paths, invocation, invocation_for_stage, profile_mapping,
};
pub use agent_env::{AgentEnv, BASE_ENV_VARS, agent_env, find_program};
pub use codex_setup::{
    KeySet, MANAGED_KEYS, ProfileEdit, SetupError, SetupOutcome, add_codex_profile,
    codex_profile_name, default_codex_config, has_codex_profile, install_codex_profile,
};
pub use error::RuntimeError;
pub use format::Format;
pub use normalize::{DEFAULT_LINE_LIMIT, ERROR_LIMIT, FINAL_MESSAGE_LIMIT, Normalizer};
pub use outcome::{BackendOutcome, CostSource, CostUpdate, KillReason, Status, Usage};
pub use preflight::{
    Preflight, Problem, ProblemKind, SandboxDecision, StageCheck, backend_program, preflight,
    program_version, sandbox_decision, stage_in_use,
};
pub use pricing::Pricing;
pub use stderr_tail::{TAIL_BYTES, TAIL_LINES};
pub use supervise::{RunEvent, RunOptions, run, run_with};
