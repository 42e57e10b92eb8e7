//! One agent stage with what is left of the run's budget and wall clock, journaled and costed;
//! and the stages `execute` (the change) and `evaluate` (a review of the judged change).

use std::time::Instant;

use issueloop_config::Stage;
use issueloop_ledger::Event;
use issueloop_policy::ChangeFacts;
use issueloop_publish::StageRow;
use issueloop_runtime::{BackendOutcome, Brief, RunLimits};
use issueloop_workspace::Worktree;

use super::Run;
use super::prepare::Plan;
use crate::brief::{evaluate_brief, execute_brief};
use crate::pipeline::decisions::{self, StageFacts};
use crate::pipeline::outcome::{Reason, RunFailure, agent_failure, agent_start_failure};

impl Run<'_> {
    /// Stage execute: the agent makes the change the issue asks for.
    pub(super) async fn execute(
        &mut self,
        worktree: &Worktree,
        plan: &Plan,
    ) -> Result<(), RunFailure> {
        let outcome = self
            .stage(worktree, Stage::Execute, execute_brief(&plan.brief))
            .await?;
        self.summary = outcome.final_message;
        Ok(())
    }

    /// Stage evaluate, when configured: a review of the judged change against the acceptance
    /// criteria; a change it does not pass fails the run.
    pub(super) async fn evaluate(
        &mut self,
        worktree: &Worktree,
        plan: &Plan,
        change: &ChangeFacts,
    ) -> Result<(), RunFailure> {
        if !self.pipeline.config.run.evaluate {
            return Ok(());
        }
        let text = evaluate_brief(&plan.brief, &diff_stat_text(change));
        let outcome = self.stage(worktree, Stage::Evaluate, text).await?;
        if crate::brief::evaluation_passed(&outcome.final_message) {
            Ok(())
        } else {
            Err(RunFailure::new(
                Reason::EvaluationFailed,
                "the review found the change does not meet the acceptance criteria",
            ))
        }
    }

    /// Run one agent stage with what is left of the run's budget and wall clock.
    pub(super) async fn stage(
        &mut self,
        worktree: &Worktree,
        stage: Stage,
        brief_text: String,
    ) -> Result<BackendOutcome, RunFailure> {
        let remaining = self.remaining_usd();
        let wall = self.deadline.saturating_duration_since(Instant::now());
        decisions::may_start_stage(
            stage,
            StageFacts {
                stopping: self.shutdown.is_stopping(),
                lease: self.lease_check(),
                remaining_usd: remaining,
                time_left: wall,
            },
        )?;
        let limits = RunLimits {
            cost_usd: remaining,
            wall_clock: wall,
            max_turns: self.item.budget.max_turns,
        };
        let mut invocation = issueloop_runtime::invocation_for_stage(
            &self.pipeline.config,
            stage,
            &limits,
            &Brief {
                text: brief_text,
                path: None,
            },
        )
        .map_err(|e| agent_start_failure(stage.as_str(), &e))?;
        if self.containment.as_ref().is_some_and(|c| c.agent.is_some()) {
            crate::pipeline::contain::inside_our_sandbox(&mut invocation);
        }
        self.journal(Event::StageStarted {
            stage: stage.to_string(),
            runtime_id: invocation.runtime_id().to_owned(),
        });
        tracing::info!(stage = %stage, backend = invocation.runtime_id(), budget = remaining.dollars(), "stage started: {invocation}");
        self.agent_started = true;
        let started = Instant::now();
        let (env, sandbox) = match &self.containment {
            Some(c) => (&c.env, c.agent.clone()),
            None => (&self.pipeline.env, None),
        };
        let options = issueloop_runtime::RunOptions {
            sandbox,
            ..issueloop_runtime::RunOptions::default()
        };
        let run = issueloop_runtime::run_with(&invocation, worktree.path(), &limits, env, options);
        let outcome = tokio::select! {
            outcome = run => outcome,
            () = self.shutdown.aborting() => {
                // Dropping the run kills the agent's process group. What it spent is unknown:
                // charge the rest of the budget (the safe side).
                self.spent = self.item.budget.cost_usd;
                self.cost_source = issueloop_runtime::CostSource::Unknown;
                return Err(RunFailure::new(Reason::ShuttingDown, format!("the service stopped during stage `{stage}`")));
            }
        };
        // An error here means the agent never started (a started agent's end is an outcome).
        let outcome = outcome.map_err(|e| agent_start_failure(stage.as_str(), &e))?;
        let cost = outcome.ledger_cost(remaining);
        self.spent += cost;
        self.cost_source = self.cost_source.weakest(outcome.cost_source);
        self.journal(Event::BackendFinished {
            stage: stage.to_string(),
            status: outcome.status.as_str().to_owned(),
            cost_usd: cost,
            cost_source: outcome.cost_source.as_str().to_owned(),
            usage: serde_json::to_value(outcome.usage).unwrap_or_default(),
            error: outcome.error.clone().filter(|_| !outcome.succeeded()),
        });
        self.stages.push(StageRow {
            stage: stage.to_string(),
            runtime: invocation.runtime_id().to_owned(),
            duration: Some(started.elapsed()),
            cost_usd: Some(cost),
        });
        tracing::info!(stage = %stage, status = outcome.status.as_str(), cost = cost.dollars(), "stage finished");
        match agent_failure(
            stage.as_str(),
            &outcome,
            remaining,
            self.item.budget.wall_clock,
        ) {
            Some(failure) => Err(failure),
            None => Ok(outcome),
        }
    }
}

/// The changed paths, one per line, for the review brief.
fn diff_stat_text(facts: &ChangeFacts) -> String {
    facts
        .tracked()
        .map(|p| format!("{:?} {}", p.kind, p.path))
        .collect::<Vec<_>>()
        .join("\n")
}
