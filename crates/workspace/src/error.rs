//! Errors of the workspace: what failed, on which path, branch or remote, and what to do.

use std::path::PathBuf;
use std::time::Duration;

/// A workspace operation that failed. Remote URLs in messages never carry credentials (URLs
/// with credentials are refused before use).
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{op}")]
    Git {
        /// What was being done, with paths in backticks.
        op: String,
        #[source]
        source: git2::Error,
    },
    #[error("{op} `{}`", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "remote URL `{redacted}` carries credentials; pass the URL without them and supply \
         the token as credentials"
    )]
    CredentialsInUrl { redacted: String },
    #[error("branch `{branch}` is protected ({reason}); runs work on their own `loop/…` branch")]
    ProtectedBranch { branch: String, reason: String },
    #[error(
        "branch `{branch}` is checked out in the worktree `{}` (another run is working on it; \
         if none is, the next start-up removes it)",
        worktree.display()
    )]
    BranchInUse { branch: String, worktree: PathBuf },
    #[error("`{branch}` is not a valid branch name")]
    InvalidBranchName { branch: String },
    #[error(
        "the remote `{url}` has no default branch (is it empty?); push an initial commit first"
    )]
    NoDefaultBranch { url: String },
    #[error("base `{base}` is not a branch or commit of the remote `{url}`")]
    BaseNotFound { base: String, url: String },
    #[error("`{}` is not inside a git working tree; pass the checkout's directory", path.display())]
    NotAWorkingTree { path: PathBuf },
    #[error("`{base}` does not name a commit in `{}`", repo.display())]
    UnknownRevision { base: String, repo: PathBuf },
    #[error(
        "timed out after {}s waiting for the lock `{}` (another run is fetching or committing; \
         retry later, or remove the lock if no issueloop process is running)",
        waited.as_secs(),
        path.display()
    )]
    LockTimeout { path: PathBuf, waited: Duration },
    #[error("{op} took longer than {}s and was stopped", after.as_secs())]
    NetworkTimeout { op: String, after: Duration },
    #[error(
        "the change facts were measured against `{judged}`, but the run's branch starts at \
         `{start}`; gather them with `Worktree::run_change_facts` before judging"
    )]
    FactsBaseMismatch { judged: String, start: String },
    #[error(
        "`{path}` changed after the change was judged; judge the change again before committing"
    )]
    ChangedSinceJudged { path: String },
    #[error(
        "cleaning what dead runs left removed {removed} item(s) but failed on: {}",
        failures.join("; ")
    )]
    CleanupIncomplete {
        removed: usize,
        failures: Vec<String>,
    },
    #[error("`{path}` is not a valid UTF-8 path and cannot be committed")]
    NonUtf8Path { path: String },
    #[error("`{path}` is not a file path of a log branch (empty, `.` or `..` component)")]
    InvalidLogPath { path: String },
    #[error("`{path}` on the log branch is not UTF-8 text; text cannot be appended to it")]
    LogFileNotUtf8 { path: String },
}

impl WorkspaceError {
    pub(crate) fn git(op: impl Into<String>) -> impl FnOnce(git2::Error) -> WorkspaceError {
        let op = op.into();
        move |source| WorkspaceError::Git { op, source }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> WorkspaceError {
        let path = path.into();
        move |source| WorkspaceError::Io { op, path, source }
    }
}
