//! Everything that talks to a forge: finding labelled issues with the facts triage decides on,
//! claiming one atomically, publishing exactly one draft PR and one outcome comment, labels, and
//! the push remote. Two implementations, one enum [`Forge`] over them: [`github::GithubForge`]
//! (octocrab, token or GitHub App, Enterprise Server) and [`local::LocalForge`] (a folder of
//! Markdown files and a git repository, for trying issueloop without a token).
//!
//! The pipeline holds an `Arc<Forge>` (see [`open_forge`]). An enum, not a trait object: there
//! are exactly two forges, and plain `async fn`s need no boxed futures.

pub mod claim;
pub mod clock;
mod error;
pub mod github;
pub mod local;
pub mod poll;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use issueloop_config::{Config, Env, ForgeKind, RepoName, Secret};
use issueloop_triage::{CandidateFacts, Permission, PrRef};
use serde::Serialize;

pub use claim::{
    BusyReason, Claim, ClaimOutcome, ClaimRequest, LeaseLost, LeaseStatus, Release, Renewal,
    TakeoverReason,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ForgeError;
pub use github::{GithubForge, Politeness};
pub use local::LocalForge;
pub use poll::{PollState, RepoPoll};
pub use stats::RequestStats;

/// Login written for edits whose author the forge cannot know (GitHub's REST API records no body
/// edits; see `docs/forges.md`). It is no valid login, so it never has a permission.
pub const UNKNOWN_ACTOR: &str = "(unknown)";

/// A forge: where issues and PRs live. An enum over the two implementations; each method
/// matches on the variant and calls the forge's own method of the same name.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one forge is made per process and held in an `Arc`; its size is never copied"
)]
pub enum Forge {
    Github(GithubForge),
    Local(LocalForge),
}

/// Calls `$call` on the forge inside whichever variant `$forge` is.
macro_rules! each {
    ($forge:expr, $f:ident => $call:expr) => {
        match $forge {
            Forge::Github($f) => $call,
            Forge::Local($f) => $call,
        }
    };
}

impl Forge {
    pub fn kind(&self) -> ForgeKind {
        each!(self, f => f.kind())
    }

    /// Default branch, its head commit, and where to push.
    pub async fn repo_info(&self, repo: &RepoName) -> Result<RepoInfo, ForgeError> {
        each!(self, f => f.repo_info(repo).await)
    }

    /// Open issues carrying the pickup label (pull requests dropped), with their facts. `poll` is
    /// the repository's slice of the caller's persisted [`PollState`]; it is updated in place.
    pub async fn candidates(
        &self,
        repo: &RepoName,
        poll: &mut RepoPoll,
    ) -> Result<Vec<CandidateFacts>, ForgeError> {
        each!(self, f => f.candidates(repo, poll).await)
    }

    /// Fresh facts of one issue, nothing cached (`None` when it does not exist).
    pub async fn issue_facts(
        &self,
        repo: &RepoName,
        issue: u64,
    ) -> Result<Option<CandidateFacts>, ForgeError> {
        each!(self, f => f.issue_facts(repo, issue).await)
    }

    /// `login`'s permission on the repository ([`Permission::None`] for strangers).
    pub async fn permission(&self, repo: &RepoName, login: &str) -> Result<Permission, ForgeError> {
        each!(self, f => f.permission(repo, login).await)
    }

    /// Claims an issue for a run (see [`claim`] for the protocol).
    pub async fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome, ForgeError> {
        each!(self, f => f.claim(request).await)
    }

    /// Renews the lease of a claim this process holds for another `ttl` from now: a
    /// compare-and-swap against the lease it last wrote, so a claim another run took over is
    /// reported [`Renewal::Lost`], never overwritten.
    pub async fn renew(&self, claim: &Claim, ttl: Duration) -> Result<Renewal, ForgeError> {
        each!(self, f => f.renew(claim, ttl).await)
    }

    /// Gives a claim up: the in-progress label goes, the lease and the takeover lock go, and the
    /// branch too with [`Release::DeleteBranch`].
    pub async fn release(&self, claim: &Claim, release: Release) -> Result<(), ForgeError> {
        each!(self, f => f.release(claim, release).await)
    }

    /// The open PR for `branch`, else the open PR whose body carries the issue's hidden marker.
    pub async fn find_pr(
        &self,
        repo: &RepoName,
        issue: u64,
        branch: &str,
    ) -> Result<Option<PrRef>, ForgeError> {
        each!(self, f => f.find_pr(repo, issue, branch).await)
    }

    /// Opens the issue's draft PR, or updates the one that exists (found by branch, else by
    /// `request.known`). Never opens a second one.
    pub async fn publish_pr(&self, request: &PrRequest) -> Result<PrOutcome, ForgeError> {
        each!(self, f => f.publish_pr(request).await)
    }

    /// Creates the issue comment carrying `marker`, or updates it when it exists.
    pub async fn upsert_comment(
        &self,
        repo: &RepoName,
        issue: u64,
        marker: &str,
        body: &str,
    ) -> Result<CommentRef, ForgeError> {
        each!(self, f => f.upsert_comment(repo, issue, marker, body).await)
    }

    pub async fn add_labels(
        &self,
        repo: &RepoName,
        issue: u64,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        each!(self, f => f.add_labels(repo, issue, labels).await)
    }

    /// Removes a label; absent already is fine.
    pub async fn remove_label(
        &self,
        repo: &RepoName,
        issue: u64,
        label: &str,
    ) -> Result<(), ForgeError> {
        each!(self, f => f.remove_label(repo, issue, label).await)
    }

    /// Where and how to push the run's branch (credentials for git's callback; never put them
    /// in a URL, a file or an environment).
    pub async fn push_target(&self, repo: &RepoName) -> Result<PushTarget, ForgeError> {
        each!(self, f => f.push_target(repo).await)
    }

    /// Requests made so far by this forge.
    pub fn stats(&self) -> RequestStats {
        each!(self, f => f.stats())
    }
}

/// What the forge knows about a repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepoInfo {
    #[serde(serialize_with = "serialize_repo")]
    pub repo: RepoName,
    pub default_branch: String,
    /// Head commit of the default branch, now.
    pub head_sha: String,
    /// The git remote: GitHub's `clone_url` (so Enterprise Server and test servers work), or the
    /// local forge's repository path.
    pub clone_url: String,
    pub html_url: String,
    pub private: bool,
}

/// Where to push, and with what.
#[derive(Clone, Debug)]
pub struct PushTarget {
    pub url: String,
    /// `None` for a local path.
    pub credentials: Option<PushCredentials>,
}

/// HTTP credentials for git: username `x-access-token` and the token as password.
#[derive(Clone, Debug)]
pub struct PushCredentials {
    pub username: String,
    pub password: Secret,
}

/// A PR to open or update.
#[derive(Clone, Debug)]
pub struct PrRequest {
    pub repo: RepoName,
    pub issue: u64,
    /// The pushed head branch.
    pub branch: String,
    /// The branch to merge into (the default branch).
    pub base: String,
    /// Used when the PR is opened; an existing PR keeps the title a person may have edited.
    pub title: String,
    /// issueloop's section (`issueloop_publish::pr_body`). An existing PR keeps the text a person
    /// wrote around it (`issueloop_publish::replace_bot_section`). The hidden marker and
    /// `Closes #N` are added when missing.
    pub body: String,
    /// The PR the candidate facts showed (`CandidateFacts::open_pr`), when any.
    pub known: Option<PrRef>,
}

/// What publishing did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrOutcome {
    pub pr: PrRef,
    pub action: PrAction,
    /// GitHub refused a draft and a regular PR titled `[draft] …` with the draft label was
    /// opened instead (`publish.draft_fallback = "label"`).
    pub draft_fallback: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrAction {
    Created,
    Updated,
}

/// An issue comment issueloop wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommentRef {
    pub id: u64,
    pub url: String,
    /// `false` when an existing comment was updated.
    pub created: bool,
}

/// The forge the configuration names: GitHub (token from `GITHUB_TOKEN`/`GH_TOKEN`, or
/// `[forge.app]`), or the local folder.
pub async fn open_forge(config: &Config, env: &Env) -> Result<Arc<Forge>, ForgeError> {
    let forge = match config.forge.kind {
        ForgeKind::Github => Forge::Github(GithubForge::connect(config, env).await?),
        ForgeKind::Local => Forge::Local(LocalForge::new(config)),
    };
    Ok(Arc::new(forge))
}

pub(crate) fn serialize_repo<S: serde::Serializer>(
    repo: &RepoName,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(repo)
}
