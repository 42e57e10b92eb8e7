//! The diff policy on the worktree's change (journaled), early (right after the agent's first
//! change) and before the commit; and the change a run that died after pushing left on the
//! branch, published when the agent finds nothing left to do.

use issueloop_ledger::Event;
use issueloop_policy::{ApprovedChange, ChangeFacts, CompiledPolicy};
use issueloop_workspace::Worktree;

use super::{Run, blocking};
use crate::pipeline::decisions;
use crate::pipeline::outcome::{Reason, RunFailure};

/// The change a run publishes: the facts judged, and what the commit accepts (`None`: a change
/// a dead run already committed and pushed, carried over whole).
pub(super) struct Change {
    pub(super) facts: ChangeFacts,
    pub(super) approved: Option<ApprovedChange>,
}

impl Run<'_> {
    /// Judge the worktree's change against the diff policy (journaled); the approved change,
    /// or the violations as a failure.
    pub(super) fn judge(
        &mut self,
        worktree: &Worktree,
        policy: &CompiledPolicy,
    ) -> Result<(ChangeFacts, ApprovedChange), RunFailure> {
        let facts = blocking(|| worktree.run_change_facts())
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        self.judge_facts(facts, policy)
    }

    /// The change to commit, judged: the run's own, or, when the agent changed nothing, what a
    /// run that died after pushing left on the branch this run continued, judged whole.
    pub(super) fn change_to_publish(
        &mut self,
        worktree: &Worktree,
        policy: &CompiledPolicy,
    ) -> Result<Change, RunFailure> {
        let (facts, approved) = self.judge(worktree, policy)?;
        if !facts.is_empty() {
            return Ok(Change {
                facts,
                approved: Some(approved),
            });
        }
        let facts = self
            .carried_over_change(worktree, policy)?
            .ok_or_else(|| RunFailure::new(Reason::NoChanges, "the agent changed no file"))?;
        Ok(Change {
            facts,
            approved: None,
        })
    }

    /// What the run's branch already holds beyond the default branch (commits a run that died
    /// after pushing left), judged by the diff policy; `None` when it holds nothing.
    fn carried_over_change(
        &mut self,
        worktree: &Worktree,
        policy: &CompiledPolicy,
    ) -> Result<Option<ChangeFacts>, RunFailure> {
        let continued = worktree.continued_existing_branch();
        // The fork point is looked up only on a branch the run continued.
        let fork = continued
            .then(|| blocking(|| worktree.fork_point(&self.item.repo_info.head_sha)))
            .transpose()
            .map_err(|e| {
                RunFailure::new(
                    Reason::WorkspaceError,
                    format!(
                        "cannot find where branch `{}` left the default branch: {e}",
                        self.item.branch
                    ),
                )
            })?;
        let start = worktree.start_commit();
        let Some(base) = decisions::carried_over_base(continued, fork.as_deref(), &start) else {
            return Ok(None);
        };
        let facts = blocking(|| worktree.change_facts(Some(base)))
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        if facts.is_empty() {
            return Ok(None);
        }
        let (facts, _) = self.judge_facts(facts, policy)?;
        Ok(Some(facts))
    }

    fn judge_facts(
        &mut self,
        facts: ChangeFacts,
        policy: &CompiledPolicy,
    ) -> Result<(ChangeFacts, ApprovedChange), RunFailure> {
        let verdict = issueloop_policy::judge(&facts, policy);
        self.journal(Event::PolicyDecided {
            repo: self.item.selected.repo.full(),
            allowed: verdict.is_clean(),
            detail: serde_json::to_value(&verdict).unwrap_or_default(),
        });
        self.verdict = Some(verdict);
        let approved = issueloop_policy::approve(facts.clone(), policy).map_err(|v| {
            RunFailure::new(
                Reason::PolicyViolation,
                format!(
                    "the change breaks the diff policy: {}",
                    v.violations
                        .iter()
                        .map(|x| x.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        })?;
        Ok((facts, approved))
    }
}
