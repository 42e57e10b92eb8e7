//! The lease record of a claim: a commit under `refs/issueloop/lease/N` whose message holds the
//! lease, written on claim, renewed by a fast-forward compare-and-swap, read fresh for candidates.

use std::time::Duration;

use issueloop_config::RepoName;
use issueloop_triage::{CandidateFacts, LeaseFacts};
use serde_json::json;

use super::refs::{RefCreate, RefUpdate};
use super::transport::{Method, Retry};
use super::{GithubForge, lock, wire};
use crate::claim::{Claim, Renewal, lease_message, new_lease, parse_lease_message};
use crate::error::ForgeError;

impl GithubForge {
    /// Writes a lease commit (the lease in its message, `tree` unchanged, one parent). Author
    /// and date are given, so repeating the request makes the same commit.
    pub(super) async fn lease_commit(
        &self,
        repo: &RepoName,
        issue: u64,
        lease: &LeaseFacts,
        tree: &str,
        parent: &str,
    ) -> Result<String, ForgeError> {
        let path = format!("{}/git/commits", Self::base(repo));
        let signature = json!({
            "name": "issueloop",
            "email": "issueloop@users.noreply.github.com",
            "date": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        });
        let body = json!({
            "message": lease_message(issue, lease),
            "tree": tree,
            "parents": [parent],
            "author": signature,
            "committer": signature,
        });
        let answer = self
            .send(Method::Post, &path, Some(&body), Retry::Idempotent)
            .await?;
        if !answer.ok() {
            return Err(Self::refused("POST", &path, &answer));
        }
        let commit: wire::GitCommit = answer.json("POST", &path)?;
        Ok(commit.sha)
    }

    /// The issue's lease record: the lease commit, its tree, and the lease its message holds
    /// (`None` inside when the message is not a lease).
    pub(super) async fn read_lease(
        &self,
        repo: &RepoName,
        issue: u64,
    ) -> Result<Option<(HeldLease, Option<LeaseFacts>)>, ForgeError> {
        let Some(sha) = self.get_ref(repo, &lease_ref(issue)).await? else {
            return Ok(None);
        };
        let commit = self.get_commit(repo, &sha).await?;
        Ok(Some((
            HeldLease {
                sha: commit.sha,
                tree: commit.tree.sha,
            },
            parse_lease_message(&commit.message),
        )))
    }

    /// Writes a fresh lease for a claim this run just won (branch created, or takeover lock
    /// held): the lease ref is created at a lease commit on top of `base_sha`, or moved there
    /// when a record of an older claim is left.
    pub(super) async fn start_lease(
        &self,
        repo: &RepoName,
        issue: u64,
        base_sha: &str,
        lease: &LeaseFacts,
    ) -> Result<(), ForgeError> {
        let tree = self.get_commit(repo, base_sha).await?.tree.sha;
        let sha = self
            .lease_commit(repo, issue, lease, &tree, base_sha)
            .await?;
        let name = lease_ref(issue);
        match self.create_ref(repo, &name, &sha).await? {
            RefCreate::Created => {}
            RefCreate::Unknown { sha: found } if found == sha => {}
            RefCreate::Exists | RefCreate::Unknown { .. } => {
                match self.update_ref(repo, &name, &sha, true).await? {
                    RefUpdate::Updated => {}
                    RefUpdate::NotFastForward | RefUpdate::Missing => {
                        return Err(ForgeError::NotConverged {
                            repo: repo.clone(),
                            what: format!("writing the lease `{name}`"),
                            attempts: 1,
                            message: "the lease ref changed while it was written".into(),
                        });
                    }
                }
            }
        }
        lock(&self.leases).insert((repo.full(), issue), HeldLease { sha, tree });
        Ok(())
    }

    /// The lease of every claimed issue in `facts`, read fresh (a lease moves without the issue
    /// changing, so the poll cache cannot hold it).
    pub(super) async fn attach_leases(
        &self,
        repo: &RepoName,
        facts: &mut [CandidateFacts],
    ) -> Result<(), ForgeError> {
        for f in facts.iter_mut() {
            if let Some(claim) = &mut f.claim {
                claim.lease = self
                    .read_lease(repo, f.issue.number)
                    .await?
                    .and_then(|(_, lease)| lease);
            }
        }
        Ok(())
    }

    pub async fn renew(&self, claim: &Claim, ttl: Duration) -> Result<Renewal, ForgeError> {
        let repo = &claim.repo;
        let key = (repo.full(), claim.issue);
        let Some(held) = lock(&self.leases).get(&key).cloned() else {
            return Ok(Renewal::Lost { holder: None });
        };
        let lease = new_lease(&claim.lease.holder, self.clock.now(), ttl);
        let sha = self
            .lease_commit(repo, claim.issue, &lease, &held.tree, &held.sha)
            .await?;
        match self
            .update_ref(repo, &lease_ref(claim.issue), &sha, false)
            .await?
        {
            RefUpdate::Updated => {
                lock(&self.leases).insert(
                    key,
                    HeldLease {
                        sha,
                        tree: held.tree,
                    },
                );
                Ok(Renewal::Renewed {
                    expires: lease.expires,
                })
            }
            RefUpdate::NotFastForward | RefUpdate::Missing => {
                lock(&self.leases).remove(&key);
                let holder = self
                    .read_lease(repo, claim.issue)
                    .await?
                    .and_then(|(_, l)| l)
                    .map(|l| l.holder);
                Ok(Renewal::Lost { holder })
            }
        }
    }
}

/// The lease ref of an issue: it points at a lease commit whose message holds the lease.
pub(super) fn lease_ref(issue: u64) -> String {
    format!("refs/issueloop/lease/{issue}")
}

/// The lease commit a held claim's lease ref points at, and the tree lease commits reuse.
#[derive(Clone, Debug)]
pub(super) struct HeldLease {
    pub(super) sha: String,
    pub(super) tree: String,
}
