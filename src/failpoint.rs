//! Crash points for fault tests: when `ISSUELOOP_FAILPOINT` names a step, the process kills
//! itself with SIGKILL there, exactly as a machine that dies mid-run would. Unset, it does
//! nothing. `tests/e2e_faults.rs` uses it to prove a rerun converges from any step: the steps are
//! `after_reserve`, `after_claim`, `after_worktree`, `after_agent`, `after_gates`, `after_commit`,
//! `after_push`, `after_pr`, `before_finish` and `before_settle`.

use issueloop_config::Env;

/// Die here when the environment names this step.
pub fn hit(env: &Env, step: &str) {
    if env.get("ISSUELOOP_FAILPOINT") == Some(step) {
        tracing::warn!(step, "failpoint reached: killing the process");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
