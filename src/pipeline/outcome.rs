//! How a run ends, as data: the stable reason ids, which endings notify the issue (comment and
//! failed label) and which quietly give the issue back, and the mapping from an agent's outcome
//! to a run failure. Pure.

use issueloop_runtime::{BackendOutcome, Status};

/// Why a run did not open a PR. The id is stable: it appears in comments, the journal, the job
/// summary and `--json`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFailure {
    pub reason: Reason,
    /// For people: what happened, with the evidence's gist.
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Another runner holds the issue; nothing was written.
    Claimed,
    /// The service is shutting down; the issue is given back untouched.
    ShuttingDown,
    AgentFailed,
    BudgetExhausted,
    TimedOut,
    GatesFailed,
    GateRejected,
    EvaluationFailed,
    PolicyViolation,
    NoChanges,
    PushDiverged,
    DraftRefused,
    ForgeError,
    WorkspaceError,
}

impl Reason {
    pub fn id(self) -> &'static str {
        match self {
            Reason::Claimed => "claimed",
            Reason::ShuttingDown => "shutting_down",
            Reason::AgentFailed => "agent_failed",
            Reason::BudgetExhausted => "budget_exhausted",
            Reason::TimedOut => "timed_out",
            Reason::GatesFailed => "gates_failed",
            Reason::GateRejected => "gate_rejected",
            Reason::EvaluationFailed => "evaluation_failed",
            Reason::PolicyViolation => "policy_violation",
            Reason::NoChanges => "no_changes",
            Reason::PushDiverged => "push_diverged",
            Reason::DraftRefused => "draft_refused",
            Reason::ForgeError => "forge_error",
            Reason::WorkspaceError => "workspace_error",
        }
    }

    /// Whether the issue gets the outcome comment and the failed label. Endings that say
    /// nothing about the issue itself (someone else holds it, the service stops) give it back
    /// silently, so the next tick can take it.
    pub fn notifies_issue(self) -> bool {
        !matches!(self, Reason::Claimed | Reason::ShuttingDown)
    }

    /// Whether the report counts the run as skipped rather than failed.
    pub fn is_skip(self) -> bool {
        !self.notifies_issue()
    }
}

impl RunFailure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// The run failure an agent's outcome means, if any (`None`: it completed).
pub fn agent_failure(stage: &str, outcome: &BackendOutcome, budget_usd: f64) -> Option<RunFailure> {
    match outcome.status {
        Status::Completed => None,
        Status::BudgetExhausted => Some(RunFailure::new(
            Reason::BudgetExhausted,
            format!(
                "stage `{stage}` passed the run budget of ${budget_usd:.2} (${:.2} spent) and was stopped",
                outcome.cost_usd
            ),
        )),
        Status::TimedOut => Some(RunFailure::new(
            Reason::TimedOut,
            format!("stage `{stage}` ran past the run's wall-clock budget and was stopped"),
        )),
        Status::Failed => Some(RunFailure::new(
            Reason::AgentFailed,
            format!(
                "stage `{stage}` failed: {}",
                outcome
                    .error
                    .as_deref()
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or("the agent reported no result")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_foreign_endings_stay_silent() {
        for r in [Reason::Claimed, Reason::ShuttingDown] {
            assert!(!r.notifies_issue() && r.is_skip(), "{}", r.id());
        }
        for r in [
            Reason::AgentFailed,
            Reason::BudgetExhausted,
            Reason::TimedOut,
            Reason::GatesFailed,
            Reason::GateRejected,
            Reason::PolicyViolation,
            Reason::NoChanges,
            Reason::PushDiverged,
            Reason::DraftRefused,
            Reason::ForgeError,
        ] {
            assert!(r.notifies_issue() && !r.is_skip(), "{}", r.id());
        }
    }

    fn outcome(
        lines: &[&str],
        exit: Option<i32>,
        killed: Option<issueloop_runtime::KillReason>,
    ) -> BackendOutcome {
        let mut n = issueloop_runtime::Normalizer::new(
            issueloop_runtime::Format::ClaudeCode,
            issueloop_runtime::Pricing::default(),
        );
        for l in lines {
            n.feed_line(l);
        }
        n.finish(exit, killed)
    }

    const RESULT_OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.3,"usage":{}}"#;
    const RESULT_API_ERROR: &str = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: overloaded","total_cost_usd":0.1,"usage":{}}"#;

    #[test]
    fn agent_outcomes_map_to_reasons() {
        assert_eq!(
            agent_failure("execute", &outcome(&[RESULT_OK], Some(0), None), 1.0),
            None
        );
        let f =
            agent_failure("execute", &outcome(&[RESULT_API_ERROR], Some(0), None), 1.0).unwrap();
        assert_eq!(
            f.reason,
            Reason::AgentFailed,
            "an error with exit code 0 is still a failure"
        );
        let f = agent_failure("execute", &outcome(&[], Some(0), None), 1.0).unwrap();
        assert_eq!(
            f.reason,
            Reason::AgentFailed,
            "no result frame is a failure: {}",
            f.detail
        );
        let f = agent_failure(
            "reflect",
            &outcome(
                &[RESULT_OK],
                None,
                Some(issueloop_runtime::KillReason::Budget),
            ),
            0.2,
        )
        .unwrap();
        assert_eq!(f.reason, Reason::BudgetExhausted);
        assert!(
            f.detail.contains("stage `reflect`") && f.detail.contains("$0.20"),
            "{}",
            f.detail
        );
        let f = agent_failure(
            "execute",
            &outcome(&[], None, Some(issueloop_runtime::KillReason::WallClock)),
            1.0,
        )
        .unwrap();
        assert_eq!(f.reason, Reason::TimedOut);
    }

    #[test]
    fn ids_are_snake_case_and_distinct() {
        let all = [
            Reason::Claimed,
            Reason::ShuttingDown,
            Reason::AgentFailed,
            Reason::BudgetExhausted,
            Reason::TimedOut,
            Reason::GatesFailed,
            Reason::GateRejected,
            Reason::EvaluationFailed,
            Reason::PolicyViolation,
            Reason::NoChanges,
            Reason::PushDiverged,
            Reason::DraftRefused,
            Reason::ForgeError,
            Reason::WorkspaceError,
        ];
        let ids: std::collections::BTreeSet<&str> = all.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), all.len());
        assert!(
            ids.iter()
                .all(|i| i.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
