//! How a run ends, whatever happened: the issue told (comment and label) unless the ending says
//! nothing about it, the claim given back, the ledger settled (or the reservation released when
//! no agent ran), `run_finished` journaled.

use issueloop_forge::Release;
use issueloop_ledger::Event;
use issueloop_publish::{BudgetSummary, CommentInput, Failure, PolicyVerdict, RunOutcome};
use jiff::Timestamp;

use super::{Finished, Published, Run};
use crate::pipeline::decisions::{self, Settlement};
use crate::pipeline::outcome::RunFailure;
use crate::report::RunSummary;

impl Run<'_> {
    /// Settle the money, tell the issue, give the claim back, close the journal.
    pub(super) async fn finish(&mut self, result: Result<Published, RunFailure>) -> Finished {
        // The outcome is decided: no more renewals (the lease still covers the release).
        self.heartbeat = None;
        let env = &self.pipeline.env;
        crate::failpoint::hit(env, "before_finish");
        let end = decisions::run_end(result.as_ref().map(|_| ()).map_err(|f| f.reason));
        let mut row = RunSummary {
            repo: self.item.selected.repo.full(),
            issue: self.item.selected.number,
            title: self.item.facts.issue.title.clone(),
            status: end.status,
            reason: end.reason.map(|r| r.as_str().to_owned()),
            detail: None,
            budget_usd: self.item.budget.cost_usd,
            cost_usd: self.spent,
            pr: None,
            budget_explanation: Some(self.item.explanation.clone()),
        };
        let (outcome, label) = match result {
            Ok(pr) => {
                row.pr = Some(pr.url.clone());
                let outcome = RunOutcome::Published {
                    pr_number: pr.number,
                    pr_url: pr.url,
                    draft: pr.draft,
                    updated: pr.updated,
                    budget: Some(self.budget_summary()),
                };
                (outcome, &self.pipeline.config.labels.pr_opened)
            }
            Err(failure) => {
                tracing::warn!(
                    reason = failure.reason.as_str(),
                    "run ended without a PR: {}",
                    failure.detail
                );
                row.detail = Some(failure.detail.clone());
                (
                    self.failure_outcome(&failure),
                    &self.pipeline.config.labels.failed,
                )
            }
        };
        if end.tells_issue {
            self.tell_issue(outcome, label).await;
        }
        if !end.releases_claim {
            // Another run holds the issue now: its claim is not ours to release.
            self.claim = None;
        }
        self.release_claim(end.release).await;
        crate::failpoint::hit(env, "before_settle");
        let state_error = self.settle();
        self.journal(Event::RunFinished {
            status: end.journal,
            reason: end.reason.map(|r| r.as_str().to_owned()),
        });
        tracing::info!(
            status = row.status.as_str(),
            cost = self.spent.dollars(),
            "run finished"
        );
        Finished { row, state_error }
    }

    /// The money: the actual cost replaces the reservation; no agent, no charge. A failure is
    /// the tick's (the reservation will expire and be charged in full).
    fn settle(&self) -> Option<String> {
        let (store, run_id, now) = (&self.pipeline.store, &self.item.run_id, Timestamp::now());
        let result = match decisions::settlement(self.agent_started) {
            Settlement::Settle => store.settle(run_id, self.spent, now).map(|s| {
                if s.overspent {
                    tracing::warn!("the run cost more than its reservation (recorded as is)");
                }
            }),
            Settlement::Release => store.release(run_id, now),
        };
        result.err().map(|e| {
            tracing::error!(
                "cannot settle the ledger (the reservation will expire and be charged in full): {e}"
            );
            format!(
                "{}#{}: cannot settle the ledger (the reservation will expire and be charged in full): {e}",
                self.item.selected.repo, self.item.selected.number
            )
        })
    }

    /// The comment's facts of a run that failed: the reason, the gates, the policy verdict.
    fn failure_outcome(&self, failure: &RunFailure) -> RunOutcome {
        let labels = &self.pipeline.config.labels;
        RunOutcome::Failed(Failure {
            reason_id: failure.reason.as_str().to_owned(),
            reason: failure.detail.clone(),
            gates: self.gate_rows.clone(),
            policy: self
                .verdict
                .as_ref()
                .filter(|v| !v.is_clean())
                .map(|v| PolicyVerdict {
                    ok: false,
                    violations: v
                        .violations
                        .iter()
                        .map(|x| format!("{} (fix: {})", x.message, x.fix))
                        .collect(),
                }),
            budget: Some(self.budget_summary()),
            failed_label: labels.failed.clone(),
            claim_label: labels.in_progress.clone(),
        })
    }

    /// The outcome comment (created or updated, never duplicated) and the label. Failures here
    /// are logged: the run's result stands, and the journal holds it.
    async fn tell_issue(&self, outcome: RunOutcome, label: &str) {
        let (forge, repo, number) = (
            &self.pipeline.forge,
            &self.item.selected.repo,
            self.item.selected.number,
        );
        let comment = issueloop_publish::outcome_comment(&CommentInput {
            issue_number: number,
            run_id: self.item.run_id.to_string(),
            outcome,
        });
        let marker = issueloop_publish::comment_marker(number);
        if let Err(e) = forge.upsert_comment(repo, number, &marker, &comment).await {
            tracing::error!("cannot comment on the issue: {e}");
        }
        if let Err(e) = forge.add_labels(repo, number, &[label.to_owned()]).await {
            tracing::error!("cannot label the issue: {e}");
        }
    }

    async fn release_claim(&mut self, release: Release) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        if let Err(e) = self.pipeline.forge.release(&claim, release).await {
            tracing::error!(
                "cannot release the claim (another runner may take it once its lease expires): {e}"
            );
        }
    }

    pub(super) fn budget_summary(&self) -> BudgetSummary {
        BudgetSummary {
            budget_usd: self.item.budget.cost_usd,
            cost_usd: self.spent,
            cost_source: self.cost_source.as_str().to_owned(),
            explanation: Some(self.item.explanation.clone()),
        }
    }
}
