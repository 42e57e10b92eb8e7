//! The steps before any money is spent: claim the issue (the lease and its heartbeat), prepare
//! the worktree on the run's branch, contain it (the run's directory and sandboxes), and fix
//! the plan the agent works to (the brief, the acceptance criteria, the compiled policy).

use std::sync::Arc;

use issueloop_forge::{ClaimOutcome, ClaimRequest};
use issueloop_ledger::Event;
use issueloop_policy::CompiledPolicy;
use issueloop_publish::TakeoverCommentInput;
use issueloop_runtime::SandboxDecision;
use issueloop_triage::AcceptanceCriteria;
use issueloop_workspace::{BaseRef, Credentials, RemoteSpec, Worktree};
use jiff::Timestamp;

use super::{Run, blocking};
use crate::brief::BriefInput;
use crate::pipeline::contain::Containment;
use crate::pipeline::decisions;
use crate::pipeline::heartbeat::Heartbeat;
use crate::pipeline::outcome::{Reason, RunFailure};

/// What the agent stages and the PR work to, fixed before the agent starts.
pub(super) struct Plan {
    pub(super) brief: BriefInput,
    pub(super) acceptance: AcceptanceCriteria,
    pub(super) policy: CompiledPolicy,
}

impl Run<'_> {
    /// Claim the issue (the branch ref at the base commit, the lease, the label) and start
    /// renewing the lease; another runner's claim ends the run as `claimed`.
    pub(super) async fn claim(&mut self) -> Result<(), RunFailure> {
        let (p, item) = (self.pipeline, &self.item);
        let stale_after = decisions::claim_stale_after(
            item.claim_owner_dead,
            issueloop_triage::claim_stale_after(&p.config.budget, &p.config.labels, &item.facts),
        );
        let takeover_comment = item.facts.claim.as_ref().map(|c| {
            issueloop_publish::takeover_comment(&TakeoverCommentInput {
                issue_number: item.selected.number,
                run_id: item.run_id.to_string(),
                claim_label: p.config.labels.in_progress.clone(),
                claimed_at: c.at,
                now: Timestamp::now(),
                stale_after,
                lease: c.lease.clone(),
            })
        });
        let request = ClaimRequest {
            repo: item.selected.repo.clone(),
            issue: item.selected.number,
            branch: item.branch.clone(),
            base_sha: item.repo_info.head_sha.clone(),
            current: item.facts.claim.clone(),
            stale_after,
            takeover_comment,
            holder: item.run_id.to_string(),
            lease_ttl: p.config.service.lease_ttl,
            dead_holder: item.dead_holder.clone(),
        };
        match p
            .forge
            .claim(&request)
            .await
            .map_err(decisions::forge_failure)?
        {
            ClaimOutcome::Acquired(claim) => {
                self.journal(Event::ClaimAcquired {
                    label: p.config.labels.in_progress.clone(),
                });
                self.heartbeat = Some(Heartbeat::start(
                    Arc::clone(&p.forge),
                    claim.clone(),
                    p.config.service.lease_ttl,
                ));
                self.claim = Some(claim);
                Ok(())
            }
            ClaimOutcome::Busy(reason) => Err(RunFailure::new(
                Reason::Claimed,
                format!("another runner holds the issue: {}", reason.describe()),
            )),
        }
    }

    /// Where the run's branch is pushed, with the forge's credentials.
    pub(super) async fn remote(&self) -> Result<RemoteSpec, RunFailure> {
        let target = self
            .pipeline
            .forge
            .push_target(&self.item.selected.repo)
            .await
            .map_err(decisions::forge_failure)?;
        Ok(RemoteSpec::new(
            target.url.clone(),
            target.credentials.map(|c| Credentials {
                username: c.username,
                token: c.password,
            }),
        ))
    }

    /// A worktree on the run's branch (created by the claim at the default branch's head; a
    /// rerun continues on whatever that branch already holds).
    pub(super) fn prepare_worktree(&self, remote: &RemoteSpec) -> Result<Worktree, RunFailure> {
        blocking(|| {
            self.pipeline.workspace.prepare_worktree(
                &self.item.selected.repo,
                remote,
                &self.item.branch,
                &BaseRef::DefaultBranch,
            )
        })
        .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))
    }

    /// Agents and gates write only the worktree, its private gitdir and the run's directory.
    pub(super) fn contain(&mut self, worktree: &Worktree) -> Result<(), RunFailure> {
        let support = issueloop_process::support();
        match issueloop_runtime::sandbox_decision(self.pipeline.config.sandbox.mode, support) {
            SandboxDecision::Refuse => {
                return Err(RunFailure::new(
                    Reason::WorkspaceError,
                    format!(
                        "the agent sandbox is required but this kernel cannot enforce it: {support} (Linux {})",
                        issueloop_process::kernel_release()
                    ),
                ));
            }
            SandboxDecision::Unavailable => {
                tracing::warn!(%support, "the agent sandbox is unavailable; the agent runs unsandboxed (`[sandbox] mode = \"best_effort\"`)");
            }
            SandboxDecision::Enforce { .. } | SandboxDecision::Off => {}
        }
        let containment = Containment::new(
            &self.pipeline.config,
            &self.pipeline.env,
            worktree.path(),
            &worktree.private_gitdir(),
            support,
        )
        .map_err(|e| {
            RunFailure::new(
                Reason::WorkspaceError,
                format!("cannot create the run's directory: {e}"),
            )
        })?;
        self.journal(containment.event.clone());
        self.containment = Some(containment);
        Ok(())
    }

    /// The brief's facts, the acceptance criteria and the repository's diff policy.
    pub(super) fn plan(&self) -> Result<Plan, RunFailure> {
        let item = &self.item;
        let policy = self
            .pipeline
            .config
            .policy
            .for_repo(Some(&item.selected.repo));
        let acceptance =
            issueloop_triage::acceptance_criteria(&item.facts.issue.title, &item.facts.issue.body);
        let compiled = CompiledPolicy::new(&policy).map_err(|e| {
            RunFailure::new(
                Reason::PolicyViolation,
                format!("the policy does not compile: {e}"),
            )
        })?;
        Ok(Plan {
            brief: BriefInput {
                repo: item.selected.repo.full(),
                issue: item.selected.number,
                title: item.facts.issue.title.clone(),
                body: issueloop_triage::redact(&item.facts.issue.body),
                acceptance: acceptance.items.clone(),
                branch: item.branch.clone(),
                budget_usd: item.budget.cost_usd,
                wall_clock: item.budget.wall_clock,
                max_turns: item.budget.max_turns,
                allowed_paths: policy.allowed_paths.clone(),
                denied_paths: policy.denied_paths.clone(),
                gates: Vec::new(),
            },
            acceptance,
            policy: compiled,
        })
    }
}
