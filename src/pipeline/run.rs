//! One issue's run, after its budget is reserved: claim → worktree → agent (execute) → gates,
//! with repairs (reflect) → optional review (evaluate) → diff policy → commit → push → one
//! draft PR → comment and labels; or, on any failure, the comment with the evidence, the failed
//! label and the claim released. Whatever happens, the ledger is settled (or the reservation
//! released when no agent ran), the journal gets `run_finished`, and the worktree is removed.
//!
//! [`Run`] holds what the steps share and [`Run::steps`] sequences them, one method per step:
//! `run/prepare.rs` (claim, worktree, containment, the brief), `run/agent.rs` (one agent stage:
//! execute, reflect, evaluate), `run/gates.rs` (the gates and the repair loop), `run/judge.rs`
//! (the diff policy, a change carried over from a dead run), `run/ship.rs` (commit, push, the
//! PR), `run/finish.rs` (the issue told, the claim released, the ledger settled, the journal
//! closed). Every decision they take is a pure function of `pipeline/decisions.rs`.

mod agent;
mod finish;
mod gates;
mod judge;
mod prepare;
mod ship;

use std::time::Instant;

use issueloop_config::{RunBudget, Usd};
use issueloop_forge::{Claim, RepoInfo};
use issueloop_ledger::{Event, RunId};
use issueloop_policy::Verdict;
use issueloop_publish::{GateRow, StageRow};
use issueloop_runtime::CostSource;
use issueloop_triage::{CandidateFacts, Selected};
use issueloop_workspace::Worktree;
use jiff::Timestamp;
use tracing::Instrument;

use super::Pipeline;
use super::contain::Containment;
use super::heartbeat::Heartbeat;
use super::outcome::RunFailure;
use crate::report::RunSummary;
use crate::shutdown::ShutdownSignal;

/// An issue whose budget is reserved, ready to run.
pub(crate) struct Reserved {
    pub run_id: RunId,
    pub facts: CandidateFacts,
    pub selected: Selected,
    pub budget: RunBudget,
    pub explanation: String,
    pub branch: String,
    pub repo_info: RepoInfo,
    /// The issue's claim belongs to a run whose process is known dead on this host: take it
    /// over now rather than once it is stale by the clock.
    pub claim_owner_dead: bool,
    /// That dead run's id: a lease it holds may be taken over now.
    pub dead_holder: Option<String>,
}

/// How a run ended, and a failure of the state store while recording it (which fails the tick:
/// the reservation then expires and is charged in full, but an operator should know).
pub(crate) struct Finished {
    pub row: RunSummary,
    pub state_error: Option<String>,
}

/// A published PR.
struct Published {
    number: u64,
    url: String,
    draft: bool,
    updated: bool,
}

/// One issue's run: what its steps share, for the ledger, the PR body and the comment.
struct Run<'p> {
    pipeline: &'p Pipeline,
    item: Reserved,
    shutdown: ShutdownSignal,
    /// The run's wall-clock deadline.
    deadline: Instant,
    /// Dollars charged so far (an unknown cost counts as the whole remaining budget).
    spent: Usd,
    agent_started: bool,
    /// The least certain source of any stage's cost.
    cost_source: CostSource,
    stages: Vec<StageRow>,
    gate_rows: Vec<GateRow>,
    verdict: Option<Verdict>,
    /// What the agent said it did (the last stage that said anything).
    summary: String,
    claim: Option<Claim>,
    /// The run directory and sandboxes of its agents and gates (set with the worktree).
    containment: Option<Containment>,
    /// Renews the claim's lease while the run lives (stopped when it finishes).
    heartbeat: Option<Heartbeat>,
}

impl Pipeline {
    pub(crate) async fn run_issue(&self, item: Reserved, shutdown: ShutdownSignal) -> Finished {
        let span = tracing::info_span!(
            "run",
            run = %item.run_id,
            repo = %item.selected.repo,
            issue = item.selected.number
        );
        let mut run = Run {
            pipeline: self,
            deadline: Instant::now() + item.budget.wall_clock,
            item,
            shutdown,
            spent: Usd::ZERO,
            agent_started: false,
            cost_source: CostSource::Reported,
            stages: Vec::new(),
            gate_rows: Vec::new(),
            verdict: None,
            summary: String::new(),
            claim: None,
            containment: None,
            heartbeat: None,
        };
        async move {
            let mut worktree = None;
            let result = run.steps(&mut worktree).await;
            let finished = run.finish(result).await;
            if let Some(wt) = worktree.take()
                && let Err(e) = blocking(|| wt.remove())
            {
                tracing::warn!("cannot remove the worktree (the next start-up will): {e}");
            }
            finished
        }
        .instrument(span)
        .await
    }
}

impl Run<'_> {
    /// The steps of one tick's run of one issue, in order (docs/ARCHITECTURE.md, "One tick").
    /// Each fails the run with its reason; `finish` records whatever happened.
    async fn steps(&mut self, worktree: &mut Option<Worktree>) -> Result<Published, RunFailure> {
        // Claim before spending anything.
        self.claim().await?;
        crate::failpoint::hit(&self.pipeline.env, "after_claim");
        let remote = self.remote().await?;
        let wt = worktree.insert(self.prepare_worktree(&remote)?);
        crate::failpoint::hit(&self.pipeline.env, "after_worktree");
        self.contain(wt)?;
        let mut plan = self.plan()?;

        self.execute(wt, &plan).await?;
        crate::failpoint::hit(&self.pipeline.env, "after_agent");
        // A change the policy refuses is refused now: no gate runs on it and no repair is paid for.
        self.judge(wt, &plan.policy)?;
        self.gates_with_repairs(wt, &mut plan).await?;
        crate::failpoint::hit(&self.pipeline.env, "after_gates");

        // The diff policy again, on everything the agent and its repairs left in the worktree.
        let change = self.change_to_publish(wt, &plan.policy)?;
        self.evaluate(wt, &plan, &change.facts).await?;

        // Commit, push, publish: only while this run still holds the issue.
        self.commit(wt, &change)?;
        crate::failpoint::hit(&self.pipeline.env, "after_commit");
        self.push(wt, &remote)?;
        crate::failpoint::hit(&self.pipeline.env, "after_push");
        let published = self.open_pr(wt, &plan, &change).await?;
        crate::failpoint::hit(&self.pipeline.env, "after_pr");
        Ok(published)
    }

    /// Fails the run when its lease no longer holds.
    fn lease_check(&self) -> Result<(), RunFailure> {
        match &self.heartbeat {
            Some(heartbeat) => heartbeat.check(),
            None => Ok(()),
        }
    }

    /// Dollars of the run's budget not spent yet.
    fn remaining_usd(&self) -> Usd {
        self.item.budget.cost_usd - self.spent
    }

    fn journal(&self, event: Event) {
        if let Err(e) = self
            .pipeline
            .store
            .append(&self.item.run_id, Timestamp::now(), &event)
        {
            tracing::error!(run = %self.item.run_id, "cannot write to the journal: {e}");
        }
    }
}

/// Run blocking work (libgit2: fetches, checkouts, commits, pushes) without stalling the async
/// workers that supervise agents and serve metrics.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
