//! Claiming an issue (branch creation as the lock, the lease, the in-progress label), taking
//! over a stale or expired claim, and releasing one.

use issueloop_config::RepoName;
use issueloop_publish::claims;
use issueloop_triage::LeaseFacts;

use super::lease::{HeldLease, lease_ref};
use super::refs::{RefCreate, RefUpdate};
use super::{GithubForge, lock};
use crate::claim::{
    BusyReason, Claim, ClaimOutcome, ClaimRequest, Contested, Release, TakeoverReason,
    decide_contested, new_lease, takeover_lock_ref,
};
use crate::error::ForgeError;

impl GithubForge {
    pub async fn claim(&self, req: &ClaimRequest) -> Result<ClaimOutcome, ForgeError> {
        let repo = &req.repo;
        let branch_ref = format!("refs/heads/{}", req.branch);
        let lease = new_lease(&req.holder, self.clock.now(), req.lease_ttl);
        let acquired = |took_over: Option<TakeoverReason>,
                        remote_head: Option<String>,
                        lock_ref: Option<String>| Claim {
            repo: repo.clone(),
            issue: req.issue,
            branch: req.branch.clone(),
            base_sha: req.base_sha.clone(),
            at: self.clock.now(),
            remote_head,
            took_over,
            lock_ref,
            lease: lease.clone(),
        };
        match self.create_ref(repo, &branch_ref, &req.base_sha).await? {
            RefCreate::Created => {
                self.take_label(repo, req.issue, &branch_ref, &req.base_sha, &lease)
                    .await?;
                return Ok(ClaimOutcome::Acquired(acquired(None, None, None)));
            }
            RefCreate::Unknown { sha } => {
                // Our create may have landed, or a racer's did. A racer labels right after its
                // create, so the label tells them apart.
                let labels = self.labels_of(repo, req.issue).await?;
                if sha == req.base_sha
                    && !labels
                        .iter()
                        .any(|l| l.eq_ignore_ascii_case(&self.labels.in_progress))
                {
                    self.take_label(repo, req.issue, &branch_ref, &req.base_sha, &lease)
                        .await?;
                    return Ok(ClaimOutcome::Acquired(acquired(None, None, None)));
                }
                return Ok(ClaimOutcome::Busy(BusyReason::ClaimedByAnotherRun {
                    since: self.clock.now(),
                }));
            }
            RefCreate::Exists => {}
        }
        let existing = self.get_ref(repo, &branch_ref).await?;
        // The lease as it is now, not as the poll saw it.
        let record = self.read_lease(repo, req.issue).await?;
        let fresh = record.as_ref().and_then(|(_, l)| l.clone());
        let current = match (&req.current, &fresh) {
            (Some(c), _) => Some(issueloop_triage::ClaimFacts {
                lease: fresh.clone(),
                ..c.clone()
            }),
            // A lease without the label yet: its holder is between the two steps.
            (None, Some(l)) => Some(issueloop_triage::ClaimFacts {
                at: l.expires.checked_sub(l.ttl).unwrap_or(l.expires),
                by_us: false,
                lease: Some(l.clone()),
            }),
            (None, None) => None,
        };
        let decision = decide_contested(
            current.as_ref(),
            self.clock.now(),
            req.stale_after,
            &req.branch,
            existing.as_deref(),
            &req.base_sha,
            req.dead_holder.as_deref(),
        );
        let reason = match decision {
            Contested::Busy(reason) => {
                tracing::info!(repo = %repo, issue = req.issue, reason = reason.id(), "claim: backing off");
                return Ok(ClaimOutcome::Busy(reason));
            }
            Contested::TakeOver(reason) => reason,
        };
        let lock_ref = match (&reason, &record) {
            // The lease ref moved forward from the expired lease commit: a compare-and-swap, so
            // of every runner that saw this lease expire (and its holder, were it still
            // renewing) exactly one succeeds.
            (TakeoverReason::LeaseExpired { .. }, Some((expired, _))) => {
                let sha = self
                    .lease_commit(repo, req.issue, &lease, &expired.tree, &expired.sha)
                    .await?;
                let name = lease_ref(req.issue);
                match self.update_ref(repo, &name, &sha, false).await? {
                    RefUpdate::Updated => {
                        lock(&self.leases).insert(
                            (repo.full(), req.issue),
                            HeldLease {
                                sha,
                                tree: expired.tree.clone(),
                            },
                        );
                    }
                    RefUpdate::NotFastForward | RefUpdate::Missing => {
                        return Ok(ClaimOutcome::Busy(BusyReason::TakeoverLost { lock: name }));
                    }
                }
                None
            }
            _ => {
                let lock_ref = takeover_lock_ref(req.issue, &reason);
                let lock_sha = existing.clone().unwrap_or_else(|| req.base_sha.clone());
                match self.create_ref(repo, &lock_ref, &lock_sha).await? {
                    RefCreate::Exists => {
                        return Ok(ClaimOutcome::Busy(BusyReason::TakeoverLost {
                            lock: lock_ref,
                        }));
                    }
                    RefCreate::Created | RefCreate::Unknown { .. } => {}
                }
                self.start_lease(repo, req.issue, &req.base_sha, &lease)
                    .await?;
                Some(lock_ref)
            }
        };
        self.add_labels(
            repo,
            req.issue,
            std::slice::from_ref(&self.labels.in_progress),
        )
        .await?;
        let comment = match (&reason, &req.takeover_comment) {
            (
                TakeoverReason::StaleClaim { .. } | TakeoverReason::LeaseExpired { .. },
                Some(text),
            ) => text.clone(),
            (TakeoverReason::LeaseExpired { holder, expired_at }, None) => {
                claims::lease_expired_comment(holder, *expired_at)
            }
            (TakeoverReason::StaleClaim { since, age_secs }, None) => {
                claims::stale_claim_comment(&self.labels.in_progress, *since, *age_secs)
            }
            (TakeoverReason::LeftoverBranch { sha }, _) => {
                claims::leftover_branch_comment(&req.branch, sha)
            }
        };
        let marker = issueloop_publish::takeover_comment_marker(req.issue);
        // The comment's time refreshes the claim for every other runner.
        self.upsert_comment(repo, req.issue, &marker, &comment)
            .await?;
        lock(&self.claimed).insert((repo.full(), req.issue));
        tracing::info!(repo = %repo, issue = req.issue, reason = %reason.describe(), "claim: took over");
        Ok(ClaimOutcome::Acquired(acquired(
            Some(reason),
            existing,
            lock_ref,
        )))
    }

    /// After creating the branch: the lease, the label, and the claim recorded as ours. When
    /// either fails the branch is removed again, so nothing half-claimed is left behind.
    pub(super) async fn take_label(
        &self,
        repo: &RepoName,
        issue: u64,
        branch_ref: &str,
        base_sha: &str,
        lease: &LeaseFacts,
    ) -> Result<(), ForgeError> {
        let labelled = match self.start_lease(repo, issue, base_sha, lease).await {
            Ok(()) => {
                self.add_labels(repo, issue, std::slice::from_ref(&self.labels.in_progress))
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = labelled {
            if let Err(cleanup) = self.delete_ref(repo, branch_ref).await {
                tracing::error!(%branch_ref, error = %cleanup, "could not remove the branch of a failed claim");
            }
            return Err(e);
        }
        lock(&self.claimed).insert((repo.full(), issue));
        Ok(())
    }

    pub async fn release(&self, claim: &Claim, release: Release) -> Result<(), ForgeError> {
        let repo = &claim.repo;
        let record = self.read_lease(repo, claim.issue).await?;
        if let Some((_, Some(lease))) = &record
            && lease.holder != claim.lease.holder
        {
            tracing::warn!(
                repo = %repo,
                issue = claim.issue,
                holder = %lease.holder,
                "the claim is held by another run now: leaving it"
            );
            lock(&self.claimed).remove(&(repo.full(), claim.issue));
            lock(&self.leases).remove(&(repo.full(), claim.issue));
            return Ok(());
        }
        if release == Release::DeleteBranch {
            match self.pull_for_branch(repo, &claim.branch).await? {
                Some(pr) => tracing::warn!(
                    repo = %repo,
                    branch = %claim.branch,
                    pr = pr.number,
                    "an open PR uses the branch: keeping it"
                ),
                None => {
                    self.delete_ref(repo, &format!("refs/heads/{}", claim.branch))
                        .await?
                }
            }
        }
        if let Some(lock_ref) = &claim.lock_ref {
            self.delete_ref(repo, lock_ref).await?;
        }
        if record.is_some() {
            self.delete_ref(repo, &lease_ref(claim.issue)).await?;
        }
        self.remove_label(repo, claim.issue, &self.labels.in_progress)
            .await?;
        lock(&self.claimed).remove(&(repo.full(), claim.issue));
        lock(&self.leases).remove(&(repo.full(), claim.issue));
        Ok(())
    }
}
