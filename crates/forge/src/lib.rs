//! Everything that talks to a forge: finding labelled issues with the facts triage decides on,
//! claiming one atomically, publishing exactly one draft PR and one outcome comment, labels, and
//! the push remote. Two implementations share one trait: [`github::GithubForge`] (octocrab, token
//! or GitHub App, Enterprise Server) and [`local::LocalForge`] (a folder of Markdown files and a
//! git repository, for trying issueloop without a token).
//!
//! The pipeline holds an `Arc<dyn Forge>` (see [`open_forge`]): the trait's methods return boxed
//! futures ([`ForgeFuture`]) so it stays object-safe and `Send`.

pub mod claim;
pub mod clock;
mod error;
pub mod github;
pub mod local;
pub mod poll;
mod stats;
pub mod text;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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

/// The future every [`Forge`] method returns.
pub type ForgeFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ForgeError>> + Send + 'a>>;

/// Login written for edits whose author the forge cannot know (GitHub's REST API records no body
/// edits; see `docs/forges.md`). It is no valid login, so it never has a permission.
pub const UNKNOWN_ACTOR: &str = "(unknown)";

/// A forge: where issues and PRs live.
pub trait Forge: Send + Sync {
    fn kind(&self) -> ForgeKind;

    /// Default branch, its head commit, and where to push.
    fn repo_info<'a>(&'a self, repo: &'a RepoName) -> ForgeFuture<'a, RepoInfo>;

    /// Open issues carrying the pickup label (pull requests dropped), with their facts. `poll` is
    /// the repository's slice of the caller's persisted [`PollState`]; it is updated in place.
    fn candidates<'a>(
        &'a self,
        repo: &'a RepoName,
        poll: &'a mut RepoPoll,
    ) -> ForgeFuture<'a, Vec<CandidateFacts>>;

    /// Fresh facts of one issue, nothing cached (`None` when it does not exist).
    fn issue_facts<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
    ) -> ForgeFuture<'a, Option<CandidateFacts>>;

    /// `login`'s permission on the repository ([`Permission::None`] for strangers).
    fn permission<'a>(&'a self, repo: &'a RepoName, login: &'a str) -> ForgeFuture<'a, Permission>;

    /// Claims an issue for a run (see [`claim`] for the protocol).
    fn claim<'a>(&'a self, request: &'a ClaimRequest) -> ForgeFuture<'a, ClaimOutcome>;

    /// Renews the lease of a claim this process holds for another `ttl` from now: a
    /// compare-and-swap against the lease it last wrote, so a claim another run took over is
    /// reported [`Renewal::Lost`], never overwritten.
    fn renew<'a>(&'a self, claim: &'a Claim, ttl: std::time::Duration) -> ForgeFuture<'a, Renewal>;

    /// Gives a claim up: the in-progress label goes, the lease and the takeover lock go, and the
    /// branch too with [`Release::DeleteBranch`].
    fn release<'a>(&'a self, claim: &'a Claim, release: Release) -> ForgeFuture<'a, ()>;

    /// The open PR for `branch`, else the open PR whose body carries the issue's hidden marker.
    fn find_pr<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        branch: &'a str,
    ) -> ForgeFuture<'a, Option<PrRef>>;

    /// Opens the issue's draft PR, or updates the one that exists (found by branch, else by
    /// `request.known`). Never opens a second one.
    fn publish_pr<'a>(&'a self, request: &'a PrRequest) -> ForgeFuture<'a, PrOutcome>;

    /// Creates the issue comment carrying `marker`, or updates it when it exists.
    fn upsert_comment<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        marker: &'a str,
        body: &'a str,
    ) -> ForgeFuture<'a, CommentRef>;

    fn add_labels<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        labels: &'a [String],
    ) -> ForgeFuture<'a, ()>;

    /// Removes a label; absent already is fine.
    fn remove_label<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        label: &'a str,
    ) -> ForgeFuture<'a, ()>;

    /// Where and how to push the run's branch (credentials for git's callback; never put them
    /// in a URL, a file or an environment).
    fn push_target<'a>(&'a self, repo: &'a RepoName) -> ForgeFuture<'a, PushTarget>;

    /// Requests made so far by this forge.
    fn stats(&self) -> RequestStats;
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
    /// issueloop's section (`issueloop_triage::pr_body`). An existing PR keeps the text a person
    /// wrote around it (`issueloop_triage::replace_bot_section`). The hidden marker and
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
pub async fn open_forge(config: &Config, env: &Env) -> Result<Arc<dyn Forge>, ForgeError> {
    match config.forge.kind {
        ForgeKind::Github => Ok(Arc::new(GithubForge::connect(config, env).await?)),
        ForgeKind::Local => Ok(Arc::new(LocalForge::new(config))),
    }
}

pub(crate) fn serialize_repo<S: serde::Serializer>(
    repo: &RepoName,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(repo)
}
