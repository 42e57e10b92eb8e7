//! The decisions a run's steps take, as pure functions over facts, each with its reason: whether
//! a stage may start, whether to repair failing gates (the repair rule), what a commit, push or
//! publish outcome means, which change a run publishes, how a run's ending is recorded and
//! settled, and what to do with the claim a dead run left behind. The steps in `run/` gather
//! the facts, call these, and act.

use std::time::Duration;

use issueloop_config::{Stage, Usd};
use issueloop_forge::{Claim, ForgeError, Release};
use issueloop_ledger::RunStatus as JournalStatus;
use issueloop_triage::{CandidateFacts, LeaseFacts, SkipReason};
use issueloop_workspace::{CommitOutcome, PushOutcome};
use jiff::Timestamp;

use super::outcome::{Reason, RunFailure};
use crate::report::RunStatus;

/// How long a claim must sit before it counts as stale: at once when its run is known dead on
/// this host (its process is gone), else the age rule of selection (`by_clock`).
pub fn claim_stale_after(owner_dead: bool, by_clock: Duration) -> Duration {
    if owner_dead { Duration::ZERO } else { by_clock }
}

/// Whether `lease` is held by the run known dead on this host (`dead_holder`): such a lease
/// holds nothing, and its claim may be taken over or released now.
pub fn held_by_dead_run(lease: Option<&LeaseFacts>, dead_holder: Option<&str>) -> bool {
    lease.is_some_and(|l| Some(l.holder.as_str()) == dead_holder)
}

/// What is true when an agent stage is about to start.
#[derive(Clone, Debug, PartialEq)]
pub struct StageFacts {
    /// The service is stopping: start no new work.
    pub stopping: bool,
    /// Whether the run still holds its claim's lease.
    pub lease: Result<(), RunFailure>,
    /// Dollars of the run's budget not spent yet.
    pub remaining_usd: Usd,
    /// Wall-clock time left before the run's deadline.
    pub time_left: Duration,
}

/// Whether `stage` may start: not while the service stops, not without the lease, not with
/// nothing left of the budget or the wall clock (checked in that order).
pub fn may_start_stage(stage: Stage, facts: StageFacts) -> Result<(), RunFailure> {
    if facts.stopping {
        return Err(RunFailure::new(
            Reason::ShuttingDown,
            format!("the service stopped before stage `{stage}`"),
        ));
    }
    facts.lease?;
    if !facts.remaining_usd.is_positive() {
        return Err(RunFailure::new(
            Reason::BudgetExhausted,
            format!("no budget left for stage `{stage}`"),
        ));
    }
    if facts.time_left.is_zero() {
        return Err(RunFailure::new(
            Reason::TimedOut,
            format!("no time left for stage `{stage}`"),
        ));
    }
    Ok(())
}

/// The limits of the repair loop, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RepairLimits {
    /// `[run] reflect_attempts`: repairs a run may make.
    pub attempts: u32,
    /// `[budget] min_useful_usd`: below this, an agent can do nothing useful.
    pub min_useful_usd: Usd,
}

/// The repair rule's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Run repair number `n` (1-based).
    Attempt(u32),
    /// Stop repairing: the gates fail the run.
    Stop(StopRepair),
}

/// Why no further repair is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopRepair {
    /// Every allowed repair was made.
    AttemptsUsed,
    /// What is left of the budget is below the minimum a stage can do anything with.
    BudgetTooLow,
    /// The run's wall clock is over.
    OutOfTime,
}

/// The repair rule: after `attempt` repairs, with `remaining` dollars and `time_left`, whether
/// the agent gets another try at the failing gates (checked in that order).
pub fn may_repair(
    attempt: u32,
    limits: RepairLimits,
    remaining: Usd,
    time_left: Duration,
) -> Repair {
    if attempt >= limits.attempts {
        Repair::Stop(StopRepair::AttemptsUsed)
    } else if remaining < limits.min_useful_usd {
        Repair::Stop(StopRepair::BudgetTooLow)
    } else if time_left.is_zero() {
        Repair::Stop(StopRepair::OutOfTime)
    } else {
        Repair::Attempt(attempt + 1)
    }
}

/// The failure of gates that still fail after `attempts` repairs (`names`: the failing gates).
pub fn gates_still_failing(attempts: u32, names: &[&str]) -> RunFailure {
    RunFailure::new(
        Reason::GatesFailed,
        format!(
            "gates still failing after {attempts} repair attempt{}: {}",
            if attempts == 1 { "" } else { "s" },
            names.join(", ")
        ),
    )
}

/// Whether a repair's final message replaces the run's summary (the PR body's "what was done"):
/// only when it says something, so a repair that ends silently keeps what execute said.
pub fn replaces_summary(final_message: &str) -> bool {
    !final_message.trim().is_empty()
}

/// Whether a trust comment must be written: not when this state store saw the same words
/// (`fingerprint`) posted under its marker (a write per tick would also bump the issue's
/// `updated_at` forever).
pub fn comment_is_new(posted: Option<&str>, fingerprint: &str) -> bool {
    posted != Some(fingerprint)
}

/// Where to look for the change a run publishes when the agent found nothing left to do: what
/// the run's branch holds beyond the default branch, when the run continued a branch (a run
/// that died after pushing) whose fork point (`fork`, known only then) is not its start.
pub fn carried_over_base<'a>(
    continued: bool,
    fork: Option<&'a str>,
    start: &str,
) -> Option<&'a str> {
    fork.filter(|f| continued && *f != start)
}

/// What a commit's outcome means: `None` to go on.
pub fn commit_failure(outcome: &CommitOutcome) -> Option<RunFailure> {
    match outcome {
        CommitOutcome::Committed { .. } => None,
        CommitOutcome::NothingToCommit => {
            Some(RunFailure::new(Reason::NoChanges, "the change is empty"))
        }
    }
}

/// What a push's outcome means for the run's `branch`: `None` to go on (the branch holds the
/// change), or why nothing was published.
pub fn push_failure(outcome: &PushOutcome, branch: &str) -> Option<RunFailure> {
    match outcome {
        PushOutcome::Created { .. }
        | PushOutcome::FastForwarded { .. }
        | PushOutcome::UpToDate { .. } => None,
        PushOutcome::Diverged { remote, local } => Some(RunFailure::new(
            Reason::PushDiverged,
            format!(
                "branch `{branch}` has commits this run does not include (remote {remote}, ours {local}); nothing was pushed"
            ),
        )),
        PushOutcome::Rejected { reason } => Some(RunFailure::new(
            Reason::PushDiverged,
            format!("the push was refused: {reason}"),
        )),
    }
}

/// The failure a forge error is: a refused draft is the repository's setting, anything else
/// the forge's failure.
pub fn forge_failure(e: ForgeError) -> RunFailure {
    match e {
        ForgeError::DraftRefused { .. } => RunFailure::new(Reason::DraftRefused, e.to_string()),
        other => RunFailure::new(Reason::ForgeError, other.to_string()),
    }
}

/// How a run's ending is recorded and what it does to the issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunEnd {
    /// The report's status.
    pub status: RunStatus,
    /// The journal's final status.
    pub journal: JournalStatus,
    /// The reason id recorded (`None`: it published).
    pub reason: Option<Reason>,
    /// The issue gets the outcome comment (and the label of `status`).
    pub tells_issue: bool,
    /// The claim is still the run's to release (a lost lease is someone else's claim now).
    pub releases_claim: bool,
    /// What the release does to the branch.
    pub release: Release,
}

/// How a run that published (`Ok`) or failed with a reason (`Err`) ends.
pub fn run_end(result: Result<(), Reason>) -> RunEnd {
    match result {
        Ok(()) => RunEnd {
            status: RunStatus::PrOpened,
            journal: JournalStatus::Succeeded,
            reason: None,
            tells_issue: true,
            releases_claim: true,
            release: Release::KeepBranch,
        },
        Err(reason) => RunEnd {
            status: if reason.is_skip() {
                RunStatus::Skipped
            } else {
                RunStatus::Failed
            },
            journal: if reason.is_skip() {
                JournalStatus::Skipped
            } else {
                JournalStatus::Failed
            },
            reason: Some(reason),
            tells_issue: reason.notifies_issue(),
            releases_claim: reason != Reason::LeaseLost,
            release: Release::DeleteBranch,
        },
    }
}

/// What the ledger does with a run's reservation when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// An agent ran: its actual cost replaces the reservation.
    Settle,
    /// No agent ran: nothing is charged.
    Release,
}

/// No agent, no charge.
pub fn settlement(agent_started: bool) -> Settlement {
    if agent_started {
        Settlement::Settle
    } else {
        Settlement::Release
    }
}

/// What to do with the claim a dead run left on an issue the tick skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeftoverClaim {
    pub release: Release,
    /// The dead run opened the PR but never said so on the issue: comment and label it first.
    pub tell_published: bool,
}

/// How to release the claim on an issue the tick skipped, if it is one a dead run left: only a
/// claim whose lease expired (or, without a lease record, a stale one), or whose holder is
/// known dead on this host, and only on an issue whose outcome is final (a later tick that
/// runs the issue takes a stale claim over instead). A published issue keeps its PR's branch
/// (and is labelled if the dead run did not get that far); a failed one loses its branch, as
/// the failed run would have deleted it.
pub fn leftover_claim(
    reason: SkipReason,
    facts: &CandidateFacts,
    stale_after: Duration,
    now: Timestamp,
    dead_holder: Option<&str>,
    pr_opened_label: &str,
) -> Option<LeftoverClaim> {
    let claim = facts.claim.as_ref()?;
    if !held_by_dead_run(claim.lease.as_ref(), dead_holder)
        && issueloop_triage::claim_state(claim.at, claim.lease.as_ref(), now, stale_after).is_live()
    {
        return None;
    }
    let release = match reason {
        SkipReason::HasOpenPr | SkipReason::AlreadyPublished => Release::KeepBranch,
        SkipReason::AlreadyFailed => Release::DeleteBranch,
        _ => return None,
    };
    let labelled = facts
        .issue
        .labels
        .iter()
        .any(|l| l.eq_ignore_ascii_case(pr_opened_label));
    Some(LeftoverClaim {
        release,
        tell_published: facts.open_pr.is_some() && !labelled,
    })
}

/// The claim a dead run left, as release reads it: the repository, issue, branch (the open
/// PR's, else `branch`) and the dead run's lease (the forge releases a claim only while that
/// run still holds it). `now` stands in for a claim time nobody recorded.
pub fn leftover_claim_to_release(facts: &CandidateFacts, branch: String, now: Timestamp) -> Claim {
    let at = facts.claim.as_ref().map_or(now, |c| c.at);
    Claim {
        repo: facts.issue.repo.clone(),
        issue: facts.issue.number,
        branch: facts
            .open_pr
            .as_ref()
            .map_or(branch, |pr| pr.branch.clone()),
        base_sha: String::new(),
        at,
        remote_head: None,
        took_over: None,
        lock_ref: None,
        lease: facts
            .claim
            .as_ref()
            .and_then(|c| c.lease.clone())
            .unwrap_or_else(|| LeaseFacts {
                holder: String::new(),
                expires: at,
                ttl: Duration::ZERO,
            }),
    }
}

#[cfg(test)]
mod tests;
