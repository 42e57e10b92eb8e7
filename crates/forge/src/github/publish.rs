//! Publishing: the issue's one draft PR (opened, or its bot section updated around a person's
//! text) and the comments issueloop writes, found again by their hidden marker.

use issueloop_config::{DraftFallback, RepoName};
use issueloop_publish::{ensure_marker, ensure_pr_body, replace_bot_section};
use issueloop_triage::PrRef;
use serde_json::json;

use super::transport::{Method, Retry};
use super::{GithubForge, PAGE, facts, wire};
use crate::error::ForgeError;
use crate::{CommentRef, PrAction, PrOutcome, PrRequest};

impl GithubForge {
    pub async fn find_pr(
        &self,
        repo: &RepoName,
        issue: u64,
        branch: &str,
    ) -> Result<Option<PrRef>, ForgeError> {
        if let Some(p) = self.pull_for_branch(repo, branch).await? {
            return Ok(Some(facts::pr_ref(&p)));
        }
        let pulls = self.open_pulls(repo).await?;
        Ok(facts::open_pr_for(&pulls, issue, &self.branch_prefix))
    }

    pub(super) async fn update_pull(
        &self,
        repo: &RepoName,
        pull: &wire::Pull,
        section: &str,
    ) -> Result<PrRef, ForgeError> {
        let path = format!("{}/pulls/{}", Self::base(repo), pull.number);
        let body = replace_bot_section(pull.body.as_deref().unwrap_or(""), section);
        if facts::same_text(pull.body.as_deref().unwrap_or(""), &body) {
            tracing::debug!(repo = %repo, pr = pull.number, "PR body unchanged; not rewritten");
            return Ok(facts::pr_ref(pull));
        }
        let updated: wire::Pull = self.patch_body(&path, &body).await?;
        Ok(facts::pr_ref(&updated))
    }

    pub async fn publish_pr(&self, req: &PrRequest) -> Result<PrOutcome, ForgeError> {
        let repo = &req.repo;
        let section = ensure_pr_body(&req.body, req.issue);
        let updated = |pr: PrRef| PrOutcome {
            pr,
            action: PrAction::Updated,
            draft_fallback: false,
        };
        let mut existing = self.pull_for_branch(repo, &req.branch).await?;
        if existing.is_none() && req.known.is_some() {
            let pulls = self.open_pulls(repo).await?;
            let number = req.known.as_ref().map(|k| k.number);
            existing = pulls.into_iter().find(|p| Some(p.number) == number);
        }
        if let Some(pull) = existing {
            let pr = self.update_pull(repo, &pull, &section).await?;
            return Ok(updated(pr));
        }

        let path = format!("{}/pulls", Self::base(repo));
        let mut draft = true;
        let mut title = req.title.clone();
        let attempts = self.transport.politeness().write_attempts.max(1);
        for _ in 0..attempts {
            let mut body = json!({
                "title": title,
                "head": req.branch,
                "base": req.base,
                "body": section,
            });
            if draft {
                body["draft"] = json!(true);
            }
            match self
                .send(Method::Post, &path, Some(&body), Retry::Never)
                .await
            {
                Ok(a) if a.ok() => {
                    let pull: wire::Pull = a.json("POST", &path)?;
                    return self.created(repo, &pull, draft).await;
                }
                Ok(a)
                    if a.status == 422
                        && a.error_text().contains("a pull request already exists") =>
                {
                    // Opened meanwhile (a rerun, or a create whose answer was lost): update it.
                    match self.pull_for_branch(repo, &req.branch).await? {
                        Some(pull) => {
                            return Ok(updated(self.update_pull(repo, &pull, &section).await?));
                        }
                        None => return Err(Self::refused("POST", &path, &a)),
                    }
                }
                Ok(a)
                    if a.status == 422
                        && a.error_text()
                            .contains("draft pull requests are not supported") =>
                {
                    match self.draft_fallback {
                        DraftFallback::Fail => {
                            return Err(ForgeError::DraftRefused { repo: repo.clone() });
                        }
                        DraftFallback::Label => {
                            tracing::info!(repo = %repo, "draft PRs refused: opening a regular PR titled [draft]");
                            draft = false;
                            if !title.starts_with("[draft]") {
                                title = format!("[draft] {title}");
                            }
                        }
                    }
                }
                Ok(a) if a.status == 404 => {
                    return Err(ForgeError::RepoNotFound {
                        repo: repo.clone(),
                        api: self.transport.api().to_owned(),
                    });
                }
                Ok(a) => return Err(Self::refused("POST", &path, &a)),
                Err(e) if e.maybe_applied() => {
                    tracing::warn!(error = %e, "opening the PR: outcome unknown, re-reading");
                    if let Some(pull) = self.pull_for_branch(repo, &req.branch).await? {
                        return self.created(repo, &pull, draft).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ForgeError::NotConverged {
            repo: repo.clone(),
            what: format!("opening the PR for `{}`", req.branch),
            attempts,
            message: "no create succeeded and none was found".into(),
        })
    }

    /// The outcome of a PR this run opened; one opened as a regular PR in place of a refused
    /// draft gets the draft label.
    /// Rewrites the `body` of the PR or comment at `path` (idempotent, so retried) and reads
    /// back what GitHub stored.
    async fn patch_body<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &str,
    ) -> Result<T, ForgeError> {
        let answer = self
            .send(
                Method::Patch,
                path,
                Some(&json!({"body": body})),
                Retry::Idempotent,
            )
            .await?;
        if !answer.ok() {
            return Err(Self::refused("PATCH", path, &answer));
        }
        answer.json("PATCH", path)
    }

    pub(super) async fn created(
        &self,
        repo: &RepoName,
        pull: &wire::Pull,
        draft: bool,
    ) -> Result<PrOutcome, ForgeError> {
        let mut pr = facts::pr_ref(pull);
        if !draft {
            self.add_labels(repo, pull.number, std::slice::from_ref(&self.labels.draft))
                .await?;
            pr.draft = false;
        }
        Ok(PrOutcome {
            pr,
            action: PrAction::Created,
            draft_fallback: !draft,
        })
    }

    pub(super) async fn find_comment(
        &self,
        repo: &RepoName,
        issue: u64,
        marker: &str,
    ) -> Result<Option<wire::Comment>, ForgeError> {
        let path = format!(
            "{}/issues/{issue}/comments?per_page={PAGE}",
            Self::base(repo)
        );
        let comments: Vec<wire::Comment> = match self.list(repo, &path).await {
            Err(ForgeError::RepoNotFound { .. }) => {
                return Err(ForgeError::IssueNotFound {
                    repo: repo.clone(),
                    issue,
                });
            }
            other => other?,
        };
        Ok(comments
            .into_iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker))))
    }

    pub async fn upsert_comment(
        &self,
        repo: &RepoName,
        issue: u64,
        marker: &str,
        body: &str,
    ) -> Result<CommentRef, ForgeError> {
        let body = ensure_marker(body, marker);
        let attempts = self.transport.politeness().write_attempts.max(1);
        let mut last = None;
        for _ in 0..attempts {
            if let Some(existing) = self.find_comment(repo, issue, marker).await? {
                if facts::same_text(existing.body.as_deref().unwrap_or(""), &body) {
                    // Identical: a write would only bump the issue's `updated_at`.
                    tracing::debug!(repo = %repo, issue, "comment unchanged; not rewritten");
                    return Ok(CommentRef {
                        id: existing.id,
                        url: existing.html_url,
                        created: false,
                    });
                }
                let path = format!("{}/issues/comments/{}", Self::base(repo), existing.id);
                let c: wire::Comment = self.patch_body(&path, &body).await?;
                return Ok(CommentRef {
                    id: c.id,
                    url: c.html_url,
                    created: false,
                });
            }
            let path = format!("{}/issues/{issue}/comments", Self::base(repo));
            match self
                .send(
                    Method::Post,
                    &path,
                    Some(&json!({"body": body})),
                    Retry::Never,
                )
                .await
            {
                Ok(a) if a.ok() => {
                    let c: wire::Comment = a.json("POST", &path)?;
                    return Ok(CommentRef {
                        id: c.id,
                        url: c.html_url,
                        created: true,
                    });
                }
                Ok(a) if a.status == 404 => {
                    return Err(ForgeError::IssueNotFound {
                        repo: repo.clone(),
                        issue,
                    });
                }
                Ok(a) => return Err(Self::refused("POST", &path, &a)),
                // Maybe posted: the next round looks for it before posting again.
                Err(e) if e.maybe_applied() => {
                    tracing::warn!(error = %e, "posting a comment: outcome unknown, re-reading");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ForgeError::NotConverged {
            repo: repo.clone(),
            what: format!("the comment on #{issue}"),
            attempts,
            message: "no answer".into(),
        }))
    }
}
