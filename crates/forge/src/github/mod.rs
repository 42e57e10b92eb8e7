//! The GitHub forge over octocrab: a token (`GITHUB_TOKEN`/`GH_TOKEN`) or a GitHub App
//! installation (tokens refreshed by octocrab), any API base URL (Enterprise Server, tests).
//! Requests go through octocrab's raw methods so status, headers and GitHub's error bodies stay
//! in view (see [`transport`]); responses are read into the small structs of `wire`.
//!
//! This file connects and holds the shared request helpers; each concern has its own file:
//! `issues` (candidates and their facts, permissions), `refs` (git refs and commits), `lease`
//! (the lease record and its renewal), `claim` (claim, takeover and release), `publish` (the
//! draft PR and the outcome comment), `labels`.

mod claim;
mod facts;
mod issues;
mod labels;
mod lease;
mod publish;
mod refs;
mod transport;
mod wire;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use http::header::{ACCEPT, HeaderName};
use issueloop_config::{Config, DraftFallback, Env, ForgeKind, Labels, RepoName, Secret};
use octocrab::Octocrab;
use octocrab::secrecy::ExposeSecret;
use serde_json::Value;

pub use transport::Politeness;
use transport::{Answer, Method, Retry, Transport};

use crate::clock::{Clock, SystemClock};
use crate::error::ForgeError;
use crate::stats::RequestStats;
use crate::{PushCredentials, PushTarget, RepoInfo};
use lease::HeldLease;

const PAGE: u32 = 100;
/// Pages read at most from one listing (10,000 items): a bound, not an expectation.
const MAX_PAGES: u32 = 100;

enum Credentials {
    Token(Secret),
    App,
}

/// The GitHub forge. Create it with [`GithubForge::connect`].
pub struct GithubForge {
    transport: Transport,
    credentials: Credentials,
    labels: Labels,
    branch_prefix: String,
    draft_fallback: DraftFallback,
    clock: Arc<dyn Clock>,
    /// Claims this process holds: `(owner/name, issue)`.
    claimed: Mutex<BTreeSet<(String, u64)>>,
    /// The lease commit each held claim's lease ref points at, and its tree: the expected old
    /// value of the next renewal's compare-and-swap.
    leases: Mutex<HashMap<(String, u64), HeldLease>>,
    repos: Mutex<HashMap<String, wire::Repo>>,
}

impl std::fmt::Debug for GithubForge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubForge")
            .field("api", &self.transport.api())
            .finish_non_exhaustive()
    }
}

/// A builder with the settings every client shares: base URL, timeouts, GitHub's media type and
/// API version. (A macro: octocrab's builder type changes with each step.)
macro_rules! base_builder {
    ($api:expr, $timeout:expr) => {
        Octocrab::builder()
            .base_uri($api)
            .map_err(|e| ForgeError::ApiUrl {
                url: $api.to_owned(),
                message: e.to_string(),
            })?
            .set_connect_timeout(Some($timeout))
            .set_read_timeout(Some($timeout))
            .set_write_timeout(Some($timeout))
            .add_header(ACCEPT, "application/vnd.github+json".to_owned())
            .add_header(
                HeaderName::from_static("x-github-api-version"),
                "2022-11-28".to_owned(),
            )
    };
}

impl GithubForge {
    /// Connects with the real clock and default [`Politeness`].
    pub async fn connect(config: &Config, env: &Env) -> Result<Self, ForgeError> {
        Self::connect_with(config, env, Arc::new(SystemClock), Politeness::default()).await
    }

    /// Connects with an injected clock (tests: [`crate::ManualClock`] never sleeps) and politeness.
    /// `[forge.app]` wins over a token in the environment.
    pub async fn connect_with(
        config: &Config,
        env: &Env,
        clock: Arc<dyn Clock>,
        politeness: Politeness,
    ) -> Result<Self, ForgeError> {
        let api = config.forge.api_url.trim_end_matches('/').to_owned();
        let timeout = config.forge.request_timeout;
        let (client, credentials) = match &config.forge.app {
            Some(app) => {
                let pem = std::fs::read(&app.private_key_path).map_err(|e| ForgeError::AppKey {
                    path: app.private_key_path.to_path_buf(),
                    message: format!("cannot read it: {e}"),
                })?;
                let app_client = base_builder!(api.as_str(), timeout)
                    .app_from_rsa_pem(app.app_id.into(), &pem)
                    .map_err(|e| ForgeError::AppKey {
                        path: app.private_key_path.to_path_buf(),
                        message: format!("not an RSA private key in PEM format ({e})"),
                    })?
                    .build()
                    .map_err(|e| ForgeError::ApiUrl {
                        url: api.clone(),
                        message: e.to_string(),
                    })?;
                let installation = match app.installation_id {
                    Some(id) => id,
                    None => {
                        discover_installation(
                            &app_client,
                            &api,
                            Arc::clone(&clock),
                            politeness.clone(),
                            config,
                        )
                        .await?
                    }
                };
                let client =
                    app_client
                        .installation(installation.into())
                        .map_err(|e| ForgeError::App {
                            message: format!("installation {installation}: {e}"),
                        })?;
                (client, Credentials::App)
            }
            None => {
                let var = if env.get("GITHUB_TOKEN").is_some() {
                    "GITHUB_TOKEN"
                } else {
                    "GH_TOKEN"
                };
                let token = env.github_token().ok_or(ForgeError::NoCredentials)?;
                let trimmed = token.expose().trim();
                // octocrab turns the token into a header value and panics on one it cannot carry.
                if trimmed.is_empty() || !trimmed.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                    return Err(ForgeError::MalformedToken { source_var: var });
                }
                let token = Secret::new(trimmed.to_owned());
                let client = base_builder!(api.as_str(), timeout)
                    .personal_token(token.expose().to_owned())
                    .build()
                    .map_err(|e| ForgeError::ApiUrl {
                        url: api.clone(),
                        message: e.to_string(),
                    })?;
                (client, Credentials::Token(token))
            }
        };
        Ok(Self {
            transport: Transport::new(
                client,
                api,
                Arc::clone(&clock),
                politeness,
                timeout,
                config.forge.max_writes_per_minute,
            ),
            credentials,
            labels: config.labels.clone(),
            branch_prefix: config.git.branch_prefix.clone(),
            draft_fallback: config.publish.draft_fallback,
            clock,
            claimed: Mutex::new(BTreeSet::new()),
            leases: Mutex::new(HashMap::new()),
            repos: Mutex::new(HashMap::new()),
        })
    }

    fn base(repo: &RepoName) -> String {
        format!("/repos/{}/{}", segment(&repo.owner), segment(&repo.name))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Answer, ForgeError> {
        self.transport.send(method, path, body, retry).await
    }

    fn refused(method: &str, path: &str, answer: &Answer) -> ForgeError {
        ForgeError::Refused {
            method: method.to_owned(),
            path: path.to_owned(),
            status: answer.status,
            message: answer.error.clone().unwrap_or_default(),
        }
    }

    /// Every page of a listing (`path` has its query, without `page`); a 404 means the
    /// repository is not there (or not visible).
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        repo: &RepoName,
        path: &str,
    ) -> Result<Vec<T>, ForgeError> {
        self.list_or_gone(path)
            .await?
            .ok_or_else(|| ForgeError::RepoNotFound {
                repo: repo.clone(),
                api: self.transport.api().to_owned(),
            })
    }

    /// Every page of a listing; `None` when GitHub answers 404 or 410 (gone, or not visible).
    async fn list_or_gone<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<Vec<T>>, ForgeError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = if page == 1 {
                path.to_owned()
            } else {
                format!("{path}&page={page}")
            };
            let answer = self.transport.get(&url).await?;
            if matches!(answer.status, 404 | 410) {
                return Ok(None);
            }
            if !answer.ok() {
                return Err(Self::refused("GET", &url, &answer));
            }
            let items: Vec<T> = answer.json("GET", &url)?;
            let more = answer.has_next_page() && !items.is_empty();
            out.extend(items);
            if !more {
                break;
            }
        }
        Ok(Some(out))
    }

    async fn repo(&self, repo: &RepoName) -> Result<wire::Repo, ForgeError> {
        if let Some(r) = lock(&self.repos).get(&repo.full()) {
            return Ok(r.clone());
        }
        let path = Self::base(repo);
        let answer = self.transport.get(&path).await?;
        if answer.status == 404 {
            return Err(ForgeError::RepoNotFound {
                repo: repo.clone(),
                api: self.transport.api().to_owned(),
            });
        }
        if !answer.ok() {
            return Err(Self::refused("GET", &path, &answer));
        }
        let r: wire::Repo = answer.json("GET", &path)?;
        lock(&self.repos).insert(repo.full(), r.clone());
        Ok(r)
    }

    pub async fn repo_info(&self, repo: &RepoName) -> Result<RepoInfo, ForgeError> {
        let r = self.repo(repo).await?;
        let head_sha = self
            .get_ref(repo, &format!("refs/heads/{}", r.default_branch))
            .await?
            .ok_or_else(|| ForgeError::BadResponse {
                method: "GET".into(),
                path: format!("{}/git/ref/heads/{}", Self::base(repo), r.default_branch),
                message: format!("the default branch `{}` has no commit", r.default_branch),
            })?;
        Ok(RepoInfo {
            repo: repo.clone(),
            default_branch: r.default_branch,
            head_sha,
            clone_url: r.clone_url,
            html_url: r.html_url,
            private: r.private,
        })
    }

    pub async fn push_target(&self, repo: &RepoName) -> Result<PushTarget, ForgeError> {
        let r = self.repo(repo).await?;
        let password = match &self.credentials {
            Credentials::Token(token) => token.clone(),
            Credentials::App => {
                let token = self
                    .transport
                    .client()
                    .installation_token()
                    .await
                    .map_err(|e| ForgeError::App {
                        message: format!("cannot get an installation token: {e}"),
                    })?;
                Secret::new(token.expose_secret().to_owned())
            }
        };
        let is_local = !(r.clone_url.starts_with("https://") || r.clone_url.starts_with("http://"));
        Ok(PushTarget {
            url: r.clone_url,
            credentials: (!is_local).then(|| PushCredentials {
                username: "x-access-token".into(),
                password,
            }),
        })
    }

    pub fn kind(&self) -> ForgeKind {
        ForgeKind::Github
    }

    /// Requests made so far by this forge.
    pub fn stats(&self) -> RequestStats {
        self.transport.stats()
    }
}

/// The App installation of the first configured repository.
async fn discover_installation(
    app_client: &Octocrab,
    api: &str,
    clock: Arc<dyn Clock>,
    politeness: Politeness,
    config: &Config,
) -> Result<u64, ForgeError> {
    let repo = config.repos.first().ok_or_else(|| ForgeError::App {
        message: "no `installation_id` in `[forge.app]` and no repository to look it up from; set \
                  `installation_id`"
            .into(),
    })?;
    let transport = Transport::new(
        app_client.clone(),
        api.to_owned(),
        clock,
        politeness,
        config.forge.request_timeout,
        config.forge.max_writes_per_minute,
    );
    let path = format!("{}/installation", GithubForge::base(repo));
    let answer = transport.get(&path).await?;
    if answer.status == 404 {
        return Err(ForgeError::App {
            message: format!(
                "the App is not installed on `{repo}`; install it, or set `installation_id`"
            ),
        });
    }
    if !answer.ok() {
        return Err(GithubForge::refused("GET", &path, &answer));
    }
    let installation: wire::Installation = answer.json("GET", &path)?;
    Ok(installation.id)
}

/// A path segment, percent-encoded (label names may hold `/`, spaces, `#`…).
fn segment(s: &str) -> String {
    encode(s, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'@')
    })
}

/// A ref path (`heads/loop/7-x`): segments encoded, slashes kept.
fn ref_path(s: &str) -> String {
    s.split('/').map(segment).collect::<Vec<_>>().join("/")
}

/// A query value, percent-encoded.
fn query(s: &str) -> String {
    encode(s, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
    })
}

fn encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    s.bytes()
        .map(|b| {
            if keep(b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain maps and sets: a panic elsewhere cannot leave them unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_paths_readable_and_safe() {
        assert_eq!(segment("loop:in-progress"), "loop:in-progress");
        assert_eq!(segment("needs review/ok"), "needs%20review%2Fok");
        assert_eq!(ref_path("heads/loop/7-fix it"), "heads/loop/7-fix%20it");
        assert_eq!(query("loop:approved"), "loop%3Aapproved");
        assert_eq!(query("2025-01-01T00:00:00Z"), "2025-01-01T00%3A00%3A00Z");
    }
}
