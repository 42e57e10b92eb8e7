//! Adding and removing issue labels.

use issueloop_config::RepoName;
use serde_json::json;

use super::transport::{Method, Retry};
use super::{GithubForge, segment};
use crate::error::ForgeError;

impl GithubForge {
    pub async fn add_labels(
        &self,
        repo: &RepoName,
        issue: u64,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        if labels.is_empty() {
            return Ok(());
        }
        let path = format!("{}/issues/{issue}/labels", Self::base(repo));
        let answer = self
            .send(
                Method::Post,
                &path,
                Some(&json!({"labels": labels})),
                Retry::Idempotent,
            )
            .await?;
        match answer.status {
            s if (200..300).contains(&s) => Ok(()),
            404 | 410 => Err(ForgeError::IssueNotFound {
                repo: repo.clone(),
                issue,
            }),
            _ => Err(Self::refused("POST", &path, &answer)),
        }
    }

    pub async fn remove_label(
        &self,
        repo: &RepoName,
        issue: u64,
        label: &str,
    ) -> Result<(), ForgeError> {
        let path = format!(
            "{}/issues/{issue}/labels/{}",
            Self::base(repo),
            segment(label)
        );
        let answer = self
            .send(Method::Delete, &path, None, Retry::Idempotent)
            .await?;
        // 404: the label was not on the issue, which is what was wanted.
        if answer.ok() || answer.status == 404 {
            Ok(())
        } else {
            Err(Self::refused("DELETE", &path, &answer))
        }
    }
}
