//! Publishing the judged change, while the run still holds the issue: commit exactly what was
//! approved, push fast-forward only, open or update the one draft PR.

use issueloop_forge::{PrAction, PrRequest};
use issueloop_ledger::Event;
use issueloop_publish::{DiffStat, FileStat, PolicyVerdict, PrBodyInput};
use issueloop_workspace::{RemoteSpec, WorkspaceError, Worktree};

use super::judge::Change;
use super::prepare::Plan;
use super::{Published, Run, blocking};
use crate::pipeline::decisions;
use crate::pipeline::outcome::{Reason, RunFailure};

impl Run<'_> {
    /// Commit the approved change (a carried-over change is committed already).
    pub(super) fn commit(
        &self,
        worktree: &mut Worktree,
        change: &Change,
    ) -> Result<(), RunFailure> {
        self.lease_check()?;
        let Some(approved) = &change.approved else {
            return Ok(());
        };
        // A git object outlives everything: the title is already clean, and secrets are masked.
        let message = issueloop_workspace::commit_message(
            self.item.selected.number,
            &issueloop_triage::redact(&self.item.facts.issue.title),
        );
        let outcome = blocking(|| worktree.commit(approved, &message))
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        decisions::commit_failure(&outcome).map_or(Ok(()), Err)
    }

    /// Push the run's branch, fast-forward only.
    pub(super) fn push(&self, worktree: &Worktree, remote: &RemoteSpec) -> Result<(), RunFailure> {
        self.lease_check()?;
        let outcome = blocking(|| worktree.push(remote))
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        decisions::push_failure(&outcome, &self.item.branch).map_or(Ok(()), Err)
    }

    /// Open the issue's draft PR, or update the one an earlier run opened.
    pub(super) async fn open_pr(
        &mut self,
        worktree: &Worktree,
        plan: &Plan,
        change: &Change,
    ) -> Result<Published, RunFailure> {
        let item = &self.item;
        let number = item.selected.number;
        let body = issueloop_publish::pr_body(&PrBodyInput {
            issue_number: number,
            issue_title: item.facts.issue.title.clone(),
            summary: self.summary.clone(),
            acceptance: plan.acceptance.clone(),
            gates: self.gate_rows.clone(),
            policy: PolicyVerdict {
                ok: true,
                violations: Vec::new(),
            },
            budget: self.budget_summary(),
            stages: self.stages.clone(),
            diff: blocking(|| committed_diff_stat(worktree, &item.repo_info.head_sha))
                .unwrap_or_else(|e| {
                    tracing::warn!(
                        "cannot compute the diff stat from git ({e}); counting added lines"
                    );
                    diff_stat(&change.facts)
                }),
            run_id: item.run_id.to_string(),
        });
        self.lease_check()?;
        let pr = self
            .pipeline
            .forge
            .publish_pr(&PrRequest {
                repo: item.selected.repo.clone(),
                issue: number,
                branch: item.branch.clone(),
                base: item.repo_info.default_branch.clone(),
                title: issueloop_publish::pr_title(number, &item.facts.issue.title, false),
                body,
                known: item.facts.open_pr.clone(),
            })
            .await
            .map_err(decisions::forge_failure)?;
        self.journal(Event::PrOpened {
            number: pr.pr.number,
            url: pr.pr.url.clone(),
        });
        Ok(Published {
            number: pr.pr.number,
            url: pr.pr.url,
            draft: pr.pr.draft,
            updated: pr.action == PrAction::Updated,
        })
    }
}

/// Files, insertions and deletions of the branch's change: from where its tip left `base` (the
/// default branch's head) to its tip, as `git diff --stat` counts them.
fn committed_diff_stat(worktree: &Worktree, base: &str) -> Result<DiffStat, WorkspaceError> {
    let per_file: Vec<FileStat> = worktree
        .committed_diff_stat(base)?
        .into_iter()
        .map(|f| FileStat {
            repo: None,
            path: f.path,
            insertions: f.insertions,
            deletions: f.deletions,
        })
        .collect();
    Ok(DiffStat {
        files: per_file.len() as u64,
        insertions: per_file.iter().map(|f| f.insertions).sum(),
        deletions: per_file.iter().map(|f| f.deletions).sum(),
        per_file,
    })
}

/// A diff stat from the change facts alone (added lines; no deletions known).
fn diff_stat(facts: &issueloop_policy::ChangeFacts) -> DiffStat {
    let per_file: Vec<FileStat> = facts
        .tracked()
        .map(|p| FileStat {
            repo: None,
            path: p.path.clone(),
            insertions: p.added.lines.len() as u64,
            deletions: 0,
        })
        .collect();
    DiffStat {
        files: per_file.len() as u64,
        insertions: per_file.iter().map(|f| f.insertions).sum(),
        deletions: 0,
        per_file,
    }
}
