//! What can go wrong talking to a forge, worded for the person who has to fix it. No variant ever
//! carries a token: messages come from GitHub's error bodies, paths and our own text.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use issueloop_config::{Hint, RepoName};

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error(
        "GitHub token invalid or expired: `{method} {path}` at `{api}` answered 401 ({message})"
    )]
    Unauthorized {
        api: String,
        method: String,
        path: String,
        message: String,
    },

    #[error(
        "repository `{repo}` not found or no access at `{api}`: check the name in `repos` and that \
         the token (or App installation) can read it"
    )]
    RepoNotFound { repo: RepoName, api: String },

    #[error(
        "GitHub's rate limit at `{api}` is used up until {reset}; waiting {} would exceed the \
         {} allowed, so `{method} {path}` {}",
        issueloop_config::human_duration(*wait),
        issueloop_config::human_duration(*max_wait),
        if *sent { "was refused and not sent again" } else { "was not sent" }
    )]
    RateLimited {
        api: String,
        method: String,
        path: String,
        reset: jiff::Timestamp,
        wait: Duration,
        max_wait: Duration,
        /// The request was sent (and refused for the limit) before the wait was judged too long.
        sent: bool,
    },

    #[error(
        "GitHub's secondary rate limit still refuses `{method} {path}` after {attempts} attempts; \
         lower `forge.max_writes_per_minute` or run less often"
    )]
    SecondaryRateLimit {
        method: String,
        path: String,
        attempts: u32,
    },

    #[error("`{method} {path}` failed with {status} after {attempts} attempts: {message}")]
    Server {
        method: String,
        path: String,
        status: u16,
        attempts: u32,
        message: String,
        /// A write that may have been applied although no success was seen.
        maybe_applied: bool,
    },

    #[error(
        "`{method} {path}` got no answer within {} (attempt {attempts})",
        issueloop_config::human_duration(*timeout)
    )]
    Timeout {
        method: String,
        path: String,
        timeout: Duration,
        attempts: u32,
        maybe_applied: bool,
    },

    #[error("cannot reach `{api}` for `{method} {path}`: {message}")]
    Transport {
        api: String,
        method: String,
        path: String,
        message: String,
        maybe_applied: bool,
    },

    #[error("`{method} {path}` was refused with {status}: {message}")]
    Refused {
        method: String,
        path: String,
        status: u16,
        /// GitHub's `message`, followed by the messages of its `errors` list.
        message: String,
    },

    #[error("unexpected answer to `{method} {path}`: {message}")]
    BadResponse {
        method: String,
        path: String,
        message: String,
    },

    #[error(
        "draft pull requests are not supported in `{repo}` and `publish.draft_fallback = \"fail\"`; \
         set it to \"label\" to open a regular PR titled `[draft]` instead"
    )]
    DraftRefused { repo: RepoName },

    #[error("no GitHub credentials")]
    NoCredentials,

    #[error("the GitHub token from `{source_var}` contains characters an HTTP header cannot carry")]
    MalformedToken { source_var: &'static str },

    #[error("GitHub App private key `{path}`: {message}")]
    AppKey { path: PathBuf, message: String },

    #[error("GitHub App: {message}")]
    App { message: String },

    #[error("`forge.api_url` `{url}` is not a usable URL: {message}")]
    ApiUrl { url: String, message: String },

    #[error("local forge: {message} (`{path}`)")]
    Local { path: PathBuf, message: String },

    #[error("local forge: `{argv}` failed in `{dir}`: {message}")]
    Git {
        argv: String,
        dir: PathBuf,
        message: String,
    },

    #[error("issue #{issue} not found in `{repo}`")]
    IssueNotFound { repo: RepoName, issue: u64 },

    #[error("{what} in `{repo}` did not settle after {attempts} attempts: {message}")]
    NotConverged {
        repo: RepoName,
        what: String,
        attempts: u32,
        message: String,
    },
}

impl Hint for ForgeError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        match self {
            ForgeError::Unauthorized { .. } => Some(Cow::Borrowed(
                "set `GITHUB_TOKEN` (or `GH_TOKEN`) to a valid token, or check `[forge.app]`",
            )),
            ForgeError::NoCredentials => Some(Cow::Borrowed(
                "set `GITHUB_TOKEN` or `GH_TOKEN`, or configure `[forge.app]` \
                 (app_id, private_key_path, installation_id)",
            )),
            _ => None,
        }
    }
}

impl ForgeError {
    /// The message and, when there is one, the hint, on one line: for the places that keep a
    /// forge error as text (the tick report, a run's failure).
    pub fn with_hint(&self) -> String {
        match self.hint() {
            Some(hint) => format!("{self}; {hint}"),
            None => self.to_string(),
        }
    }

    /// A write that failed in a way that leaves open whether GitHub applied it (5xx, timeout,
    /// broken connection): re-read the state before trying again.
    pub fn maybe_applied(&self) -> bool {
        match self {
            ForgeError::Server { maybe_applied, .. }
            | ForgeError::Timeout { maybe_applied, .. }
            | ForgeError::Transport { maybe_applied, .. } => *maybe_applied,
            _ => false,
        }
    }
}
