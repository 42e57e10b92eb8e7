//! How a run ends, as data: the stable reason ids, which endings notify the issue (comment and
//! failed label) and which quietly give the issue back, the mapping from an agent's outcome
//! to a run failure, and which endings are infrastructure failures that fail the tick (exit 1).
//! Pure.

use issueloop_config::{ErrorChain as _, Usd};
use issueloop_ledger::SkipReason as BudgetSkip;
use issueloop_runtime::{BackendOutcome, RuntimeError, Status};
use issueloop_triage::SkipReason as SelectionSkip;

use crate::report::{RunStatus, TickJudgement, TickReport};

/// Why a run did not open a PR. The id is stable: it appears in comments, the journal, the job
/// summary and `--json`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFailure {
    pub reason: Reason,
    /// For people: what happened, with the evidence's gist.
    pub detail: String,
}

/// Every reason id a run, a skip or a tick row carries: the run's own endings, and the skip
/// reasons decided by selection (`issueloop_triage`) and budgeting (`issueloop_ledger`), which
/// keep their enums where they are decided. [`Reason::as_str`] and its inverse
/// [`Reason::from_str`] are the one table of the stable strings; the report, the journal and the
/// comments carry only what it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Another runner holds the issue; nothing was written. (Selection's own `claimed` skip is
    /// this reason too: see [`Reason::from`].)
    Claimed,
    /// The run could not keep its claim's lease (another run took the issue over, or renewals
    /// kept failing until it would lapse): it stops before publishing and leaves the issue to
    /// whoever holds it now.
    LeaseLost,
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
    /// The agent could not be started: its program is missing or not executable, the process
    /// could not be spawned, or what it needs to start (its brief file, its sandbox) could not
    /// be set up. Nothing ran, nothing was charged.
    AgentNotStarted,
    /// A dry run: the issue would have run; nothing was written.
    DryRun,
    /// Selection skipped the issue (never [`SelectionSkip::Claimed`]: that is [`Reason::Claimed`]).
    Selection(SelectionSkip),
    /// Budgeting skipped the issue (the daily cap, the run count, the minimum budget).
    Budget(BudgetSkip),
}

impl From<SelectionSkip> for Reason {
    fn from(skip: SelectionSkip) -> Reason {
        match skip {
            SelectionSkip::Claimed => Reason::Claimed,
            other => Reason::Selection(other),
        }
    }
}

impl From<BudgetSkip> for Reason {
    fn from(skip: BudgetSkip) -> Reason {
        Reason::Budget(skip)
    }
}

impl Reason {
    /// Every reason, each once (selection's `claimed` is [`Reason::Claimed`]).
    pub const ALL: [Reason; 31] = [
        Reason::Claimed,
        Reason::LeaseLost,
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
        Reason::AgentNotStarted,
        Reason::DryRun,
        Reason::Selection(SelectionSkip::NotApproved),
        Reason::Selection(SelectionSkip::Duplicate),
        Reason::Selection(SelectionSkip::Blocked),
        Reason::Selection(SelectionSkip::AlreadyFailed),
        Reason::Selection(SelectionSkip::HasOpenPr),
        Reason::Selection(SelectionSkip::AlreadyPublished),
        Reason::Selection(SelectionSkip::UntrustedLabel),
        Reason::Selection(SelectionSkip::BodyEditedAfterLabel),
        Reason::Selection(SelectionSkip::NoFreeSlot),
        Reason::Selection(SelectionSkip::UnusableText),
        Reason::Budget(BudgetSkip::DailyCapReached),
        Reason::Budget(BudgetSkip::DailyRunsReached),
        Reason::Budget(BudgetSkip::BelowMinimum),
        Reason::Budget(BudgetSkip::ReservedElsewhere),
    ];

    /// The stable id (`gates_failed`, `daily_cap_reached`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Claimed => "claimed",
            Reason::LeaseLost => "lease_lost",
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
            Reason::AgentNotStarted => "agent_not_started",
            Reason::DryRun => "dry_run",
            Reason::Selection(skip) => skip.id(),
            Reason::Budget(skip) => skip.id(),
        }
    }

    /// Whether the issue gets the outcome comment and the failed label. Endings that say
    /// nothing about the issue itself (someone else holds it, the service stops) give it back
    /// silently, so the next tick can take it.
    pub fn notifies_issue(self) -> bool {
        !matches!(
            self,
            Reason::Claimed
                | Reason::ShuttingDown
                | Reason::LeaseLost
                | Reason::DryRun
                | Reason::Selection(_)
                | Reason::Budget(_)
        )
    }

    /// Whether the report counts the run as skipped rather than failed.
    pub fn is_skip(self) -> bool {
        !self.notifies_issue()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is no reason id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a reason id")]
pub struct UnknownReason(pub String);

impl std::str::FromStr for Reason {
    type Err = UnknownReason;

    /// The reason [`Reason::as_str`] writes as `id` (`claimed` is [`Reason::Claimed`]).
    fn from_str(id: &str) -> Result<Reason, UnknownReason> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == id)
            .ok_or_else(|| UnknownReason(id.to_owned()))
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

/// The run failure of an agent that could not be started (its invocation could not be built,
/// its program not found or spawned, its brief file or sandbox not set up): an infrastructure
/// failure, never the agent's doing.
pub fn agent_start_failure(stage: &str, error: &RuntimeError) -> RunFailure {
    RunFailure::new(
        Reason::AgentNotStarted,
        format!("cannot start stage `{stage}`: {}", error.chain()),
    )
}

/// How a run's ending counts for the tick's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The loop did what it is for: a PR, or a refusal, limit or skip it was designed to make
    /// (policy refused, gates failed, budget exhausted, daily cap reached, nothing to do).
    AsDesigned,
    /// issueloop's own machinery failed (git, the forge, the agent's launch): the run says
    /// nothing about the issue, and the operator has something to fix.
    Infrastructure,
}

/// The reasons that are infrastructure failures; every other reason (the run reasons above and
/// the skip reasons of selection and budgeting) ended as designed.
pub const INFRASTRUCTURE_REASONS: [Reason; 3] = [
    Reason::WorkspaceError,
    Reason::ForgeError,
    Reason::AgentNotStarted,
];

/// How a run that ended with `reason` counts (`None`: it opened its PR).
pub fn ending(reason: Option<Reason>) -> Ending {
    match reason {
        Some(r) if INFRASTRUCTURE_REASONS.contains(&r) => Ending::Infrastructure,
        _ => Ending::AsDesigned,
    }
}

/// Skip reasons that mean "the limits stopped work today": worth a warning in Actions. The
/// others (`claimed`, `has_open_pr`, …) are routine and stay out of the annotations.
pub const SKIPS_WORTH_A_WARNING: [Reason; 5] = [
    Reason::Budget(BudgetSkip::DailyCapReached),
    Reason::Budget(BudgetSkip::DailyRunsReached),
    Reason::Budget(BudgetSkip::BelowMinimum),
    Reason::Selection(SelectionSkip::UntrustedLabel),
    Reason::Selection(SelectionSkip::BodyEditedAfterLabel),
];

/// What the job summary and the annotations say of a tick (`publish` words it): the runs that
/// failed for an infrastructure reason, and which skips warn.
pub fn judge_tick(report: &TickReport) -> TickJudgement {
    TickJudgement {
        infrastructure: TickVerdict::of(report).infrastructure,
        warning_skips: SKIPS_WORTH_A_WARNING
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

/// A tick's exit status: 0 when every run ended as designed, 1 when the tick itself failed
/// (listing candidates, the state store, cleaning up) or any run failed for an infrastructure
/// reason. (2, a usage or configuration error, is decided before any tick starts.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickVerdict {
    /// `owner/name#N: reason_id` of each run that failed for an infrastructure reason.
    pub infrastructure: Vec<String>,
    /// How many failures of the tick itself the report holds.
    pub tick_errors: usize,
}

impl TickVerdict {
    pub fn of(report: &TickReport) -> TickVerdict {
        TickVerdict {
            infrastructure: report
                .runs
                .iter()
                .filter(|r| r.status != RunStatus::PrOpened)
                // A row's reason is written from the table; a string it does not hold (none
                // is ever written) counts as designed.
                .filter(|r| {
                    ending(r.reason.as_deref().and_then(|id| id.parse().ok()))
                        == Ending::Infrastructure
                })
                .map(|r| {
                    format!(
                        "{}#{}: {}",
                        r.repo,
                        r.issue,
                        r.reason.as_deref().unwrap_or_default()
                    )
                })
                .collect(),
            tick_errors: report.errors.len(),
        }
    }

    /// True when CI should turn red.
    pub fn failed(&self) -> bool {
        self.tick_errors > 0 || !self.infrastructure.is_empty()
    }

    /// The process exit code: 0 or 1.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.failed())
    }

    /// One line for a person: why the tick fails, or `None` when it does not.
    pub fn explanation(&self) -> Option<String> {
        if !self.failed() {
            return None;
        }
        let mut parts = Vec::new();
        if self.tick_errors > 0 {
            parts.push(format!(
                "{} failure{} of the tick itself",
                self.tick_errors,
                if self.tick_errors == 1 { "" } else { "s" }
            ));
        }
        if !self.infrastructure.is_empty() {
            parts.push(format!(
                "infrastructure failure{}: {}",
                if self.infrastructure.len() == 1 {
                    ""
                } else {
                    "s"
                },
                self.infrastructure.join(", ")
            ));
        }
        Some(format!("the tick failed ({})", parts.join("; ")))
    }
}

/// The run failure an agent's outcome means, if any (`None`: it completed). `budget_usd` is
/// what the stage could spend, `wall_clock` the run's wall-clock limit; a stage stopped at the
/// wall clock carries what the agent said last (a harness that cannot reach its model retries
/// until then, and says why only there).
pub fn agent_failure(
    stage: &str,
    outcome: &BackendOutcome,
    budget_usd: Usd,
    wall_clock: std::time::Duration,
) -> Option<RunFailure> {
    match outcome.status {
        Status::Completed => None,
        Status::BudgetExhausted => Some(RunFailure::new(
            Reason::BudgetExhausted,
            format!(
                "stage `{stage}` passed the run budget of ${:.2} (${:.2} spent) and was stopped",
                budget_usd.dollars(),
                outcome.cost_usd.dollars()
            ),
        )),
        Status::TimedOut => Some(RunFailure::new(
            Reason::TimedOut,
            format!(
                "stage `{stage}` passed the run's wall-clock limit of {} and was stopped{}",
                issueloop_config::human_duration(wall_clock),
                outcome
                    .last_words
                    .as_deref()
                    .map(|w| format!("; {w}"))
                    .unwrap_or_default()
            ),
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
        for r in [
            Reason::Claimed,
            Reason::ShuttingDown,
            Reason::LeaseLost,
            Reason::Budget(BudgetSkip::ReservedElsewhere),
        ] {
            assert!(!r.notifies_issue() && r.is_skip(), "{}", r.as_str());
            assert!(!SKIPS_WORTH_A_WARNING.contains(&r), "{}", r.as_str());
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
            Reason::WorkspaceError,
            Reason::AgentNotStarted,
        ] {
            assert!(r.notifies_issue() && !r.is_skip(), "{}", r.as_str());
        }
    }

    #[test]
    fn only_infrastructure_failures_fail_the_tick() {
        use Ending::{AsDesigned, Infrastructure};
        let table = [
            (None, AsDesigned),
            (Some(Reason::Claimed), AsDesigned),
            (Some(Reason::LeaseLost), AsDesigned),
            (Some(Reason::ShuttingDown), AsDesigned),
            (Some(Reason::AgentFailed), AsDesigned),
            (Some(Reason::BudgetExhausted), AsDesigned),
            (Some(Reason::TimedOut), AsDesigned),
            (Some(Reason::GatesFailed), AsDesigned),
            (Some(Reason::GateRejected), AsDesigned),
            (Some(Reason::EvaluationFailed), AsDesigned),
            (Some(Reason::PolicyViolation), AsDesigned),
            (Some(Reason::NoChanges), AsDesigned),
            (Some(Reason::PushDiverged), AsDesigned),
            (Some(Reason::DraftRefused), AsDesigned),
            (Some(Reason::ForgeError), Infrastructure),
            (Some(Reason::WorkspaceError), Infrastructure),
            (Some(Reason::AgentNotStarted), Infrastructure),
            // Skip reasons of selection and budgeting.
            (
                Some(Reason::Budget(BudgetSkip::DailyCapReached)),
                AsDesigned,
            ),
            (
                Some(Reason::Budget(BudgetSkip::DailyRunsReached)),
                AsDesigned,
            ),
            (Some(Reason::Budget(BudgetSkip::BelowMinimum)), AsDesigned),
            (
                Some(Reason::Budget(BudgetSkip::ReservedElsewhere)),
                AsDesigned,
            ),
            (
                Some(Reason::Selection(SelectionSkip::UntrustedLabel)),
                AsDesigned,
            ),
            (
                Some(Reason::Selection(SelectionSkip::HasOpenPr)),
                AsDesigned,
            ),
            (Some(Reason::DryRun), AsDesigned),
        ];
        for (id, expected) in table {
            assert_eq!(ending(id), expected, "{id:?}");
        }
        for reason in INFRASTRUCTURE_REASONS {
            assert_eq!(ending(Some(reason)), Infrastructure, "{reason}");
        }
        let infrastructure = Reason::ALL
            .into_iter()
            .filter(|r| ending(Some(*r)) == Infrastructure)
            .count();
        assert_eq!(infrastructure, INFRASTRUCTURE_REASONS.len());
    }

    /// A run of a test report: issue, status, reason.
    type Row = (u64, RunStatus, Option<&'static str>);

    fn report(runs: &[Row], errors: &[&str]) -> TickReport {
        TickReport {
            started_at: jiff::Timestamp::UNIX_EPOCH,
            duration: std::time::Duration::ZERO,
            dry_run: false,
            runs: runs
                .iter()
                .map(|(issue, status, reason)| crate::report::RunSummary {
                    repo: "acme/app".into(),
                    issue: *issue,
                    title: "t".into(),
                    status: *status,
                    reason: reason.map(str::to_owned),
                    detail: None,
                    budget_usd: Usd::from_dollars(1.0),
                    cost_usd: Usd::from_dollars(0.0),
                    pr: None,
                    budget_explanation: None,
                })
                .collect(),
            ledger: crate::report::LedgerSummary {
                day: jiff::civil::date(2026, 1, 1),
                cap_usd: Usd::from_dollars(10.0),
                spent_usd: Usd::from_dollars(0.0),
                reserved_usd: Usd::from_dollars(0.0),
                remaining_usd: Usd::from_dollars(10.0),
            },
            would: Vec::new(),
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn tick_exit_codes() {
        use RunStatus::{Failed, PrOpened, Skipped};
        let table: [(&[Row], &[&str], u8); 7] = [
            (&[], &[], 0),
            (&[(1, PrOpened, None)], &[], 0),
            (
                &[
                    (1, PrOpened, None),
                    (2, Failed, Some("policy_violation")),
                    (3, Failed, Some("gates_failed")),
                    (4, Failed, Some("budget_exhausted")),
                    (5, Skipped, Some("daily_cap_reached")),
                    (6, Skipped, Some("claimed")),
                ],
                &[],
                0,
            ),
            (&[(1, Failed, Some("workspace_error"))], &[], 1),
            (
                &[(1, PrOpened, None), (2, Failed, Some("forge_error"))],
                &[],
                1,
            ),
            (&[(1, Failed, Some("agent_not_started"))], &[], 1),
            (&[], &["`acme/app`: listing issues failed"], 1),
        ];
        for (runs, errors, code) in table {
            let v = TickVerdict::of(&report(runs, errors));
            assert_eq!(v.exit_code(), code, "{runs:?} {errors:?}");
            assert_eq!(v.explanation().is_some(), code == 1);
        }
        let v = TickVerdict::of(&report(
            &[
                (3, Failed, Some("workspace_error")),
                (4, Failed, Some("policy_violation")),
            ],
            &[],
        ));
        assert_eq!(v.infrastructure, ["acme/app#3: workspace_error"]);
        assert_eq!(
            v.explanation().unwrap(),
            "the tick failed (infrastructure failure: acme/app#3: workspace_error)"
        );
    }

    #[test]
    fn the_summary_is_told_the_infrastructure_failures_and_which_skips_warn() {
        use RunStatus::{Failed, Skipped};
        let judged = judge_tick(&report(
            &[
                (3, Failed, Some("workspace_error")),
                (4, Skipped, Some("daily_cap_reached")),
            ],
            &[],
        ));
        assert_eq!(judged.infrastructure, ["acme/app#3: workspace_error"]);
        assert_eq!(
            judged.warning_skips,
            [
                "daily_cap_reached",
                "daily_runs_reached",
                "below_minimum_budget",
                "untrusted_label",
                "body_edited_after_label"
            ]
        );
        let md = crate::report::job_summary_markdown(
            &report(&[(3, Failed, Some("workspace_error"))], &[]),
            &judged,
        );
        assert!(
            md.contains(
                "**Infrastructure failure** (the tick exits 1): `acme/app#3: workspace_error`"
            ),
            "{md}"
        );
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

    const TEN_S: std::time::Duration = std::time::Duration::from_secs(10);

    const RESULT_OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.3,"usage":{}}"#;
    const RESULT_API_ERROR: &str = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: overloaded","total_cost_usd":0.1,"usage":{}}"#;

    #[test]
    fn agent_outcomes_map_to_reasons() {
        assert_eq!(
            agent_failure(
                "execute",
                &outcome(&[RESULT_OK], Some(0), None),
                Usd::from_dollars(1.0),
                TEN_S
            ),
            None
        );
        let f = agent_failure(
            "execute",
            &outcome(&[RESULT_API_ERROR], Some(0), None),
            Usd::from_dollars(1.0),
            TEN_S,
        )
        .unwrap();
        assert_eq!(
            f.reason,
            Reason::AgentFailed,
            "an error with exit code 0 is still a failure"
        );
        let f = agent_failure(
            "execute",
            &outcome(&[], Some(0), None),
            Usd::from_dollars(1.0),
            TEN_S,
        )
        .unwrap();
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
            Usd::from_dollars(0.2),
            TEN_S,
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
            Usd::from_dollars(1.0),
            TEN_S,
        )
        .unwrap();
        assert_eq!(f.reason, Reason::TimedOut);
        assert_eq!(
            f.detail,
            "stage `execute` passed the run's wall-clock limit of 10s and was stopped"
        );
    }

    /// A run stopped at its wall clock says what the agent said last, from its stream or its
    /// stderr; one that said nothing says only that it was stopped.
    #[test]
    fn a_timed_out_stage_carries_the_agents_last_words() {
        use issueloop_runtime::{Format, KillReason, Normalizer, Pricing};
        const RETRY: &str = r#"{"type":"system","subtype":"api_retry","attempt":6,"max_retries":10,"retry_delay_ms":19838,"error_status":null,"error":"unknown"}"#;
        const CODEX_RECONNECTING: &str = r#"{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}"#;
        let table: [(Format, &[&str], &str, &str); 4] = [
            (
                Format::ClaudeCode,
                &[RETRY],
                "",
                "; its last notice on stdout: `api_retry` attempt 6 of 10: the model API failed (error `unknown`, no HTTP status)",
            ),
            (
                Format::Codex,
                &[r#"{"type":"turn.started"}"#, CODEX_RECONNECTING],
                "Reading additional input from stdin...\n",
                "; its last notice on stdout: Reconnecting... waiting for network (Connection failed: error sending request); its last words on stderr:\nReading additional input from stdin...",
            ),
            (
                Format::Gemini,
                &[],
                "Attempt 4 failed. Retrying with backoff... Error: fetch failed\n    at retryWithBackoff (file:///b.js:1:2)\n",
                "; its last words on stderr:\nAttempt 4 failed. Retrying with backoff... Error: fetch failed",
            ),
            (Format::Pi, &[], "\n", ""),
        ];
        for (format, lines, stderr, words) in table {
            let mut n = Normalizer::new(format, Pricing::default());
            for l in lines {
                n.feed_line(l);
            }
            n.set_stderr(stderr.to_owned());
            let o = n.finish(None, Some(KillReason::WallClock));
            let f = agent_failure("execute", &o, Usd::from_dollars(1.0), TEN_S).unwrap();
            assert_eq!(f.reason, Reason::TimedOut);
            assert_eq!(
                f.detail,
                format!(
                    "stage `execute` passed the run's wall-clock limit of 10s and was stopped{words}"
                ),
                "{format:?}"
            );
        }
    }

    /// The ids are a compatibility surface (comments, the journal, `--json`, operators'
    /// scripts): each is pinned here, and each reads back as its reason.
    #[test]
    fn every_reason_id_is_pinned_and_round_trips() {
        let pinned = [
            (Reason::Claimed, "claimed"),
            (Reason::LeaseLost, "lease_lost"),
            (Reason::ShuttingDown, "shutting_down"),
            (Reason::AgentFailed, "agent_failed"),
            (Reason::BudgetExhausted, "budget_exhausted"),
            (Reason::TimedOut, "timed_out"),
            (Reason::GatesFailed, "gates_failed"),
            (Reason::GateRejected, "gate_rejected"),
            (Reason::EvaluationFailed, "evaluation_failed"),
            (Reason::PolicyViolation, "policy_violation"),
            (Reason::NoChanges, "no_changes"),
            (Reason::PushDiverged, "push_diverged"),
            (Reason::DraftRefused, "draft_refused"),
            (Reason::ForgeError, "forge_error"),
            (Reason::WorkspaceError, "workspace_error"),
            (Reason::AgentNotStarted, "agent_not_started"),
            (Reason::DryRun, "dry_run"),
            (
                Reason::Selection(SelectionSkip::NotApproved),
                "not_approved",
            ),
            (Reason::Selection(SelectionSkip::Duplicate), "duplicate"),
            (Reason::Selection(SelectionSkip::Blocked), "blocked"),
            (
                Reason::Selection(SelectionSkip::AlreadyFailed),
                "already_failed",
            ),
            (Reason::Selection(SelectionSkip::HasOpenPr), "has_open_pr"),
            (
                Reason::Selection(SelectionSkip::AlreadyPublished),
                "already_published",
            ),
            (
                Reason::Selection(SelectionSkip::UntrustedLabel),
                "untrusted_label",
            ),
            (
                Reason::Selection(SelectionSkip::BodyEditedAfterLabel),
                "body_edited_after_label",
            ),
            (Reason::Selection(SelectionSkip::NoFreeSlot), "no_free_slot"),
            (
                Reason::Selection(SelectionSkip::UnusableText),
                "unusable_text",
            ),
            (
                Reason::Budget(BudgetSkip::DailyCapReached),
                "daily_cap_reached",
            ),
            (
                Reason::Budget(BudgetSkip::DailyRunsReached),
                "daily_runs_reached",
            ),
            (
                Reason::Budget(BudgetSkip::BelowMinimum),
                "below_minimum_budget",
            ),
            (
                Reason::Budget(BudgetSkip::ReservedElsewhere),
                "reserved_elsewhere",
            ),
        ];
        assert_eq!(pinned.len(), Reason::ALL.len(), "every reason is pinned");
        for (reason, id) in pinned {
            assert!(Reason::ALL.contains(&reason), "{reason:?} is in ALL");
            assert_eq!(reason.as_str(), id);
            assert_eq!(reason.to_string(), id);
            assert_eq!(id.parse::<Reason>(), Ok(reason), "{id}");
        }
        let ids: std::collections::BTreeSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(ids.len(), Reason::ALL.len(), "ids are distinct");
        // Selection's `claimed` is the run's `claimed`: one id, one reason.
        assert_eq!(Reason::from(SelectionSkip::Claimed), Reason::Claimed);
        assert_eq!(
            Reason::from(SelectionSkip::Claimed).as_str(),
            SelectionSkip::Claimed.id()
        );
        assert_eq!(
            "not_a_reason".parse::<Reason>(),
            Err(UnknownReason("not_a_reason".into()))
        );
    }
}
