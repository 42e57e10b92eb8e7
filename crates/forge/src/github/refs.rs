//! Git refs and commits through the REST API: read, create (a lock when it exists), move (a
//! compare-and-swap unless forced), delete; a write whose answer was lost is settled by reading.

use issueloop_config::RepoName;
use serde_json::json;

use super::transport::{Method, Retry};
use super::{GithubForge, ref_path, segment, wire};
use crate::error::ForgeError;

impl GithubForge {
    /// Where `name` (`refs/heads/x`) points, `None` when it does not exist.
    pub(super) async fn get_ref(
        &self,
        repo: &RepoName,
        name: &str,
    ) -> Result<Option<String>, ForgeError> {
        let short = name.strip_prefix("refs/").unwrap_or(name);
        let path = format!("{}/git/ref/{}", Self::base(repo), ref_path(short));
        let answer = self.transport.get(&path).await?;
        match answer.status {
            404 => Ok(None),
            s if (200..300).contains(&s) => {
                // GitHub answers a prefix with a list of matching refs; only an exact one counts.
                match serde_json::from_str::<wire::GitRef>(&answer.body) {
                    Ok(r) => Ok(Some(r.object.sha)),
                    Err(_) => Ok(None),
                }
            }
            _ => Err(Self::refused("GET", &path, &answer)),
        }
    }

    /// Creates a ref; `Exists` when GitHub says "Reference already exists" (the lock is held).
    pub(super) async fn create_ref(
        &self,
        repo: &RepoName,
        name: &str,
        sha: &str,
    ) -> Result<RefCreate, ForgeError> {
        let path = format!("{}/git/refs", Self::base(repo));
        let body = json!({"ref": name, "sha": sha});
        let attempts = self.transport.politeness().write_attempts.max(1);
        let mut last = None;
        for _ in 0..attempts {
            match self
                .send(Method::Post, &path, Some(&body), Retry::Never)
                .await
            {
                Ok(a) if a.status == 201 || a.ok() => return Ok(RefCreate::Created),
                Ok(a) if a.status == 422 && a.error_text().contains("already exists") => {
                    return Ok(RefCreate::Exists);
                }
                Ok(a) if a.status == 404 => {
                    return Err(ForgeError::RepoNotFound {
                        repo: repo.clone(),
                        api: self.transport.api().to_owned(),
                    });
                }
                Ok(a) => return Err(Self::refused("POST", &path, &a)),
                Err(e) if e.maybe_applied() => {
                    // The create may have happened: look before trying again.
                    tracing::warn!(%name, error = %e, "creating a ref: outcome unknown, re-reading");
                    match self.get_ref(repo, name).await? {
                        Some(found) => return Ok(RefCreate::Unknown { sha: found }),
                        None => last = Some(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ForgeError::NotConverged {
            repo: repo.clone(),
            what: format!("creating `{name}`"),
            attempts,
            message: "no answer".into(),
        }))
    }

    pub(super) async fn delete_ref(&self, repo: &RepoName, name: &str) -> Result<(), ForgeError> {
        let short = name.strip_prefix("refs/").unwrap_or(name);
        let path = format!("{}/git/refs/{}", Self::base(repo), ref_path(short));
        let answer = self
            .send(Method::Delete, &path, None, Retry::Idempotent)
            .await?;
        // Gone already (422 "Reference does not exist", or 404) is what was wanted.
        if answer.ok() || matches!(answer.status, 404 | 422) {
            Ok(())
        } else {
            Err(Self::refused("DELETE", &path, &answer))
        }
    }

    /// Moves a ref; with `force` false only as a fast-forward (GitHub's compare-and-swap).
    pub(super) async fn update_ref(
        &self,
        repo: &RepoName,
        name: &str,
        sha: &str,
        force: bool,
    ) -> Result<RefUpdate, ForgeError> {
        let short = name.strip_prefix("refs/").unwrap_or(name);
        let path = format!("{}/git/refs/{}", Self::base(repo), ref_path(short));
        let body = json!({"sha": sha, "force": force});
        match self
            .send(Method::Patch, &path, Some(&body), Retry::Never)
            .await
        {
            Ok(a) if a.ok() => Ok(RefUpdate::Updated),
            Ok(a) if a.status == 422 && a.error_text().contains("fast forward") => {
                Ok(RefUpdate::NotFastForward)
            }
            Ok(a) if matches!(a.status, 404 | 422) && a.error_text().contains("does not exist") => {
                Ok(RefUpdate::Missing)
            }
            Ok(a) => Err(Self::refused("PATCH", &path, &a)),
            Err(e) if e.maybe_applied() => {
                // The update may have happened: where the ref points tells.
                tracing::warn!(%name, error = %e, "moving a ref: outcome unknown, re-reading");
                match self.get_ref(repo, name).await? {
                    Some(now) if now == sha => Ok(RefUpdate::Updated),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn get_commit(
        &self,
        repo: &RepoName,
        sha: &str,
    ) -> Result<wire::GitCommit, ForgeError> {
        let path = format!("{}/git/commits/{}", Self::base(repo), segment(sha));
        let answer = self.transport.get(&path).await?;
        if !answer.ok() {
            return Err(Self::refused("GET", &path, &answer));
        }
        answer.json("GET", &path)
    }
}

pub(super) enum RefUpdate {
    Updated,
    /// The ref moved meanwhile (a fast-forward-only update refused).
    NotFastForward,
    Missing,
}

pub(super) enum RefCreate {
    Created,
    Exists,
    /// The create's outcome was lost and the ref now exists (at `sha`): ours or a racer's.
    Unknown {
        sha: String,
    },
}
