//! The gates of the worktree's repository (selected, prepared, checked against the allowlist,
//! run in the run's sandbox) and the repair loop: while the gates fail and the repair rule
//! (`decisions::may_repair`) allows, the agent gets the gate output (stage reflect) and the
//! gates run again.

use std::path::PathBuf;
use std::time::Instant;

use issueloop_config::Stage;
use issueloop_gates::{FailureKind, GateReport, GateStatus, GateVerdict};
use issueloop_ledger::Event;
use issueloop_publish::GateRow;
use issueloop_workspace::Worktree;

use super::prepare::Plan;
use super::{Run, blocking};
use crate::brief::{GateFailure, reflect_brief};
use crate::pipeline::decisions::{self, Repair, RepairLimits};
use crate::pipeline::outcome::{Reason, RunFailure};

impl Run<'_> {
    /// Gates, with repairs while attempts, budget and time remain.
    pub(super) async fn gates_with_repairs(
        &mut self,
        worktree: &Worktree,
        plan: &mut Plan,
    ) -> Result<(), RunFailure> {
        let config = &self.pipeline.config;
        let limits = RepairLimits {
            attempts: config.run.reflect_attempts,
            min_useful_usd: config.budget.min_useful_usd,
        };
        let mut attempt = 0;
        loop {
            self.lease_check()?;
            let report = self.gates(worktree).await?;
            let failures = match report.verdict() {
                GateVerdict::Passed => return Ok(()),
                GateVerdict::Rejected { gate } => {
                    return Err(RunFailure::new(
                        Reason::GateRejected,
                        format!(
                            "gate `{}` was not run: {}",
                            gate.command,
                            gate.reason
                                .as_deref()
                                .unwrap_or("rejected by the allowlist")
                        ),
                    ));
                }
                GateVerdict::Failed { failures, .. } => failures
                    .iter()
                    .map(|f| GateFailure {
                        argv: f.gate.command.clone(),
                        status: match f.why {
                            FailureKind::Status(status) => status.as_str().to_owned(),
                            FailureKind::LeftFiles(files) => {
                                format!("left files behind: {}", files.join(", "))
                            }
                        },
                        output: f.gate.output.clone(),
                    })
                    .collect::<Vec<_>>(),
            };
            let time_left = self.deadline.saturating_duration_since(Instant::now());
            attempt = match decisions::may_repair(attempt, limits, self.remaining_usd(), time_left)
            {
                Repair::Attempt(next) => next,
                Repair::Stop(why) => {
                    tracing::info!(?why, "no further repair");
                    let names: Vec<&str> = failures.iter().map(|f| f.argv.as_str()).collect();
                    return Err(decisions::gates_still_failing(attempt, &names));
                }
            };
            plan.brief.gates = report.results.iter().map(|r| r.command.clone()).collect();
            let text = reflect_brief(&plan.brief, &failures, attempt, limits.attempts);
            let outcome = self.stage(worktree, Stage::Reflect, text).await?;
            if decisions::replaces_summary(&outcome.final_message) {
                self.summary = outcome.final_message;
            }
        }
    }

    /// Select, prepare, check and run the gates of the worktree's repository.
    async fn gates(&mut self, worktree: &Worktree) -> Result<GateReport, RunFailure> {
        let pipeline = self.pipeline;
        let (config, repo) = (&pipeline.config, &self.item.selected.repo);
        let facts = blocking(|| worktree.run_change_facts())
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        let changed: Vec<PathBuf> = facts
            .tracked()
            .filter(|p| worktree.path().join(&p.path).exists())
            .map(|p| PathBuf::from(&p.path))
            .collect();
        let repo_facts = issueloop_gates::RepoFacts::scan(worktree.path())
            .map_err(|e| RunFailure::new(Reason::GatesFailed, e.to_string()))?;
        let explicit = config.gates.repos.get(repo).map(Vec::as_slice);
        let selected = issueloop_gates::select(&repo_facts, &changed, explicit);
        let allowlist = config.policy.for_repo(Some(repo)).allowlist;
        let planned = issueloop_gates::plan(&selected, &repo_facts, &allowlist);
        let mut options = issueloop_gates::RunOptions::new(&config.gates, pipeline.env.clone());
        if let Some(c) = &self.containment {
            options.env = c.env.clone();
            options.sandbox = c.gates.clone();
        }
        let report = issueloop_gates::run_gates(worktree.path(), &planned, &options)
            .await
            .map_err(|e| RunFailure::new(Reason::GatesFailed, e.to_string()))?;
        self.gate_rows.clear();
        for r in &report.results {
            tracing::info!(gate = %r.command, status = r.status.as_str(), "gate finished");
            self.journal(Event::GateFinished {
                repo: repo.full(),
                argv: r.argv.clone(),
                status: r.status.as_str().to_owned(),
                exit_code: r.exit_code,
                duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                detail: match (&r.reason, r.left_files.is_empty()) {
                    (Some(reason), _) => serde_json::json!({ "reason": reason }),
                    (None, false) => serde_json::json!({ "left_files": r.left_files }),
                    (None, true) => serde_json::Value::Null,
                },
            });
            self.gate_rows.push(GateRow {
                repo: None,
                name: r.command.clone(),
                status: r.status.as_str().to_owned(),
                duration: r.duration,
                exit_code: r.exit_code,
                excerpt: (r.status != GateStatus::Passed).then(|| r.output.clone()),
            });
        }
        Ok(report)
    }
}
