//! The GitHub forge over octocrab: a token (`GITHUB_TOKEN`/`GH_TOKEN`) or a GitHub App
//! installation (tokens refreshed by octocrab), any API base URL (Enterprise Server, tests).
//! Requests go through octocrab's raw methods so status, headers and GitHub's error bodies stay
//! in view (see [`transport`]); responses are read into the small structs of `wire`.

mod facts;
mod transport;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{ACCEPT, HeaderName};
use issueloop_config::{Config, DraftFallback, Env, ForgeKind, Labels, RepoName, Secret};
use issueloop_triage::{CandidateFacts, LeaseFacts, Permission, PrRef, replace_bot_section};
use octocrab::Octocrab;
use octocrab::secrecy::ExposeSecret;
use serde_json::{Value, json};

pub use transport::Politeness;
use transport::{Answer, Method, Retry, Transport};

use crate::claim::{
    BusyReason, Claim, ClaimOutcome, ClaimRequest, Contested, Release, Renewal, TakeoverReason,
    decide_contested, lease_message, new_lease, parse_lease_message, takeover_lock_ref,
};
use crate::clock::{Clock, SystemClock};
use crate::error::ForgeError;
use crate::poll::{CachedPermission, RepoPoll, body_digest};
use crate::stats::RequestStats;
use crate::text::{ensure_marker, ensure_pr_body};
use crate::{
    CommentRef, Forge, ForgeFuture, PrAction, PrOutcome, PrRequest, PushCredentials, PushTarget,
    RepoInfo,
};

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

    /// Where `name` (`refs/heads/x`) points, `None` when it does not exist.
    async fn get_ref(&self, repo: &RepoName, name: &str) -> Result<Option<String>, ForgeError> {
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
    async fn create_ref(
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

    async fn delete_ref(&self, repo: &RepoName, name: &str) -> Result<(), ForgeError> {
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
    async fn update_ref(
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

    async fn get_commit(&self, repo: &RepoName, sha: &str) -> Result<wire::GitCommit, ForgeError> {
        let path = format!("{}/git/commits/{}", Self::base(repo), segment(sha));
        let answer = self.transport.get(&path).await?;
        if !answer.ok() {
            return Err(Self::refused("GET", &path, &answer));
        }
        answer.json("GET", &path)
    }

    /// Writes a lease commit (the lease in its message, `tree` unchanged, one parent). Author
    /// and date are given, so repeating the request makes the same commit.
    async fn lease_commit(
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
    async fn read_lease(
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
    async fn start_lease(
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
    async fn attach_leases(
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

    async fn renew_impl(&self, claim: &Claim, ttl: Duration) -> Result<Renewal, ForgeError> {
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

    async fn labels_of(&self, repo: &RepoName, issue: u64) -> Result<Vec<String>, ForgeError> {
        let path = format!("{}/issues/{issue}", Self::base(repo));
        let answer = self.transport.get(&path).await?;
        if answer.status == 404 {
            return Err(ForgeError::IssueNotFound {
                repo: repo.clone(),
                issue,
            });
        }
        if !answer.ok() {
            return Err(Self::refused("GET", &path, &answer));
        }
        let i: wire::Issue = answer.json("GET", &path)?;
        Ok(i.label_names())
    }

    async fn open_pulls(&self, repo: &RepoName) -> Result<Vec<wire::Pull>, ForgeError> {
        let path = format!("{}/pulls?state=open&per_page={PAGE}", Self::base(repo));
        self.list(repo, &path).await
    }

    async fn pull_for_branch(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<wire::Pull>, ForgeError> {
        let head = format!("{}:{branch}", repo.owner);
        let path = format!(
            "{}/pulls?state=open&head={}&per_page={PAGE}",
            Self::base(repo),
            query(&head)
        );
        let pulls: Vec<wire::Pull> = self.list(repo, &path).await?;
        Ok(pulls.into_iter().find(|p| p.head.name == branch))
    }

    /// The issue's timeline; `None` when the issue is gone (deleted, transferred).
    async fn timeline(
        &self,
        repo: &RepoName,
        issue: u64,
    ) -> Result<Option<Vec<wire::TimelineItem>>, ForgeError> {
        let path = format!(
            "{}/issues/{issue}/timeline?per_page={PAGE}",
            Self::base(repo)
        );
        self.list_or_gone(&path).await
    }

    async fn lookup_permission(
        &self,
        repo: &RepoName,
        login: &str,
    ) -> Result<Permission, ForgeError> {
        let path = format!(
            "{}/collaborators/{}/permission",
            Self::base(repo),
            segment(login)
        );
        let answer = self.transport.get(&path).await?;
        match answer.status {
            // Not a collaborator, or no such account.
            404 => Ok(Permission::None),
            s if (200..300).contains(&s) => {
                let level: wire::PermissionLevel = answer.json("GET", &path)?;
                Ok(facts::permission_of(&level))
            }
            _ => Err(Self::refused("GET", &path, &answer)),
        }
    }

    /// Facts of one issue from GitHub; permissions through `poll`'s cache.
    async fn build_facts(
        &self,
        repo: &RepoName,
        issue: &wire::Issue,
        pulls: &[wire::Pull],
        poll: &mut RepoPoll,
    ) -> Result<Option<crate::poll::CachedIssue>, ForgeError> {
        let Some(timeline) = self.timeline(repo, issue.number).await? else {
            return Ok(None);
        };
        let events = facts::label_events(&timeline);
        let edits = facts::body_edits(issue, &timeline, poll.issues.get(&issue.number));
        let now = self.clock.now();
        let mut permissions = BTreeMap::new();
        for login in facts::actors_to_check(&events, &edits, &self.labels.prefix) {
            let p = match poll.fresh_permission(&login, now) {
                Some(p) => p,
                None => {
                    let p = self.lookup_permission(repo, &login).await?;
                    poll.permissions.insert(
                        login.clone(),
                        CachedPermission {
                            permission: p,
                            fetched_at: now,
                        },
                    );
                    p
                }
            };
            permissions.insert(login, p);
        }
        let open_pr = facts::open_pr_for(pulls, issue.number, &self.branch_prefix);
        Ok(Some(facts::build(
            repo,
            issue,
            &timeline,
            permissions,
            open_pr,
            &self.labels,
            poll.issues.get(&issue.number),
            self.holds(repo, issue.number),
        )))
    }

    fn holds(&self, repo: &RepoName, issue: u64) -> bool {
        lock(&self.claimed).contains(&(repo.full(), issue))
    }

    async fn candidates_impl(
        &self,
        repo: &RepoName,
        poll: &mut RepoPoll,
    ) -> Result<Vec<CandidateFacts>, ForgeError> {
        let base = Self::base(repo);
        let full = poll.watermark.is_none();
        let path = match poll.watermark {
            None => format!(
                "{base}/issues?state=open&labels={}&sort=updated&direction=asc&per_page={PAGE}",
                query(&self.labels.approved)
            ),
            Some(w) => format!(
                "{base}/issues?state=all&sort=updated&direction=asc&since={}&per_page={PAGE}",
                query(&w.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            ),
        };
        let items: Vec<wire::Issue> = self.list(repo, &path).await?;
        for item in &items {
            poll.advance_watermark(item.updated_at);
        }
        let issues: Vec<wire::Issue> = items
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .collect();
        if full {
            let listed: BTreeSet<u64> = issues.iter().map(|i| i.number).collect();
            poll.issues.retain(|n, _| listed.contains(n));
        }
        let mut changed = Vec::new();
        for issue in issues {
            let labelled = issue.is_open()
                && issue
                    .label_names()
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(&self.labels.approved));
            if !labelled {
                poll.issues.remove(&issue.number);
                continue;
            }
            let unchanged = poll.issues.get(&issue.number).is_some_and(|c| {
                c.facts.issue.updated_at == issue.updated_at
                    && c.body_digest == body_digest(issue.body.as_deref().unwrap_or(""))
            });
            if !unchanged {
                changed.push(issue);
            }
        }
        if !changed.is_empty() {
            let pulls = self.open_pulls(repo).await?;
            for cached in poll.issues.values_mut() {
                cached.facts.open_pr =
                    facts::open_pr_for(&pulls, cached.facts.issue.number, &self.branch_prefix);
            }
            for issue in &changed {
                match self.build_facts(repo, issue, &pulls, poll).await? {
                    Some(built) => {
                        poll.issues.insert(issue.number, built);
                    }
                    // Deleted or transferred since it was listed.
                    None => {
                        poll.issues.remove(&issue.number);
                    }
                }
            }
        }
        for cached in poll.issues.values_mut() {
            if let Some(claim) = &mut cached.facts.claim {
                claim.by_us =
                    lock(&self.claimed).contains(&(repo.full(), cached.facts.issue.number));
            }
        }
        tracing::debug!(repo = %repo, rebuilt = changed.len(), candidates = poll.issues.len(), "polled");
        let mut facts = poll.facts();
        self.attach_leases(repo, &mut facts).await?;
        Ok(facts)
    }

    async fn issue_facts_impl(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<CandidateFacts>, ForgeError> {
        let path = format!("{}/issues/{number}", Self::base(repo));
        let answer = self.transport.get(&path).await?;
        if matches!(answer.status, 404 | 410) {
            return Ok(None);
        }
        if !answer.ok() {
            return Err(Self::refused("GET", &path, &answer));
        }
        let issue: wire::Issue = answer.json("GET", &path)?;
        if issue.pull_request.is_some() {
            return Ok(None);
        }
        let pulls = self.open_pulls(repo).await?;
        let mut scratch = RepoPoll::default();
        let Some(built) = self.build_facts(repo, &issue, &pulls, &mut scratch).await? else {
            return Ok(None);
        };
        let mut facts = [built.facts];
        self.attach_leases(repo, &mut facts).await?;
        let [facts] = facts;
        Ok(Some(facts))
    }

    async fn claim_impl(&self, req: &ClaimRequest) -> Result<ClaimOutcome, ForgeError> {
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
        self.add_labels_impl(
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
            (TakeoverReason::LeaseExpired { holder, expired_at }, None) => format!(
                "issueloop is taking over this issue: the lease of run `{holder}` expired at \
                 {expired_at} without a renewal."
            ),
            (TakeoverReason::StaleClaim { since, age_secs }, None) => format!(
                "issueloop is taking over a stale claim on this issue: `{}` has been set since {since} \
                 ({age_secs} s), longer than a run may take.",
                self.labels.in_progress
            ),
            (TakeoverReason::LeftoverBranch { sha }, _) => format!(
                "issueloop is taking over branch `{}`, left at `{}` by a run that did not finish.",
                req.branch,
                sha.get(..12).unwrap_or(sha)
            ),
        };
        let marker = issueloop_triage::takeover_comment_marker(req.issue);
        // The comment's time refreshes the claim for every other runner.
        self.upsert_comment_impl(repo, req.issue, &marker, &comment)
            .await?;
        lock(&self.claimed).insert((repo.full(), req.issue));
        tracing::info!(repo = %repo, issue = req.issue, reason = ?reason, "claim: took over");
        Ok(ClaimOutcome::Acquired(acquired(
            Some(reason),
            existing,
            lock_ref,
        )))
    }

    /// After creating the branch: the lease, the label, and the claim recorded as ours. When
    /// either fails the branch is removed again, so nothing half-claimed is left behind.
    async fn take_label(
        &self,
        repo: &RepoName,
        issue: u64,
        branch_ref: &str,
        base_sha: &str,
        lease: &LeaseFacts,
    ) -> Result<(), ForgeError> {
        let labelled = match self.start_lease(repo, issue, base_sha, lease).await {
            Ok(()) => {
                self.add_labels_impl(repo, issue, std::slice::from_ref(&self.labels.in_progress))
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

    async fn release_impl(&self, claim: &Claim, release: Release) -> Result<(), ForgeError> {
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
        self.remove_label_impl(repo, claim.issue, &self.labels.in_progress)
            .await?;
        lock(&self.claimed).remove(&(repo.full(), claim.issue));
        lock(&self.leases).remove(&(repo.full(), claim.issue));
        Ok(())
    }

    async fn find_pr_impl(
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

    async fn update_pull(
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
        let answer = self
            .send(
                Method::Patch,
                &path,
                Some(&json!({"body": body})),
                Retry::Idempotent,
            )
            .await?;
        if !answer.ok() {
            return Err(Self::refused("PATCH", &path, &answer));
        }
        let updated: wire::Pull = answer.json("PATCH", &path)?;
        Ok(facts::pr_ref(&updated))
    }

    async fn publish_pr_impl(&self, req: &PrRequest) -> Result<PrOutcome, ForgeError> {
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
    async fn created(
        &self,
        repo: &RepoName,
        pull: &wire::Pull,
        draft: bool,
    ) -> Result<PrOutcome, ForgeError> {
        let mut pr = facts::pr_ref(pull);
        if !draft {
            self.add_labels_impl(repo, pull.number, std::slice::from_ref(&self.labels.draft))
                .await?;
            pr.draft = false;
        }
        Ok(PrOutcome {
            pr,
            action: PrAction::Created,
            draft_fallback: !draft,
        })
    }

    async fn find_comment(
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

    async fn upsert_comment_impl(
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
                let answer = self
                    .send(
                        Method::Patch,
                        &path,
                        Some(&json!({"body": body})),
                        Retry::Idempotent,
                    )
                    .await?;
                if !answer.ok() {
                    return Err(Self::refused("PATCH", &path, &answer));
                }
                let c: wire::Comment = answer.json("PATCH", &path)?;
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

    async fn add_labels_impl(
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

    async fn remove_label_impl(
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

    async fn repo_info_impl(&self, repo: &RepoName) -> Result<RepoInfo, ForgeError> {
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

    async fn push_target_impl(&self, repo: &RepoName) -> Result<PushTarget, ForgeError> {
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
}

/// The lease ref of an issue: it points at a lease commit whose message holds the lease.
fn lease_ref(issue: u64) -> String {
    format!("refs/issueloop/lease/{issue}")
}

/// The lease commit a held claim's lease ref points at, and the tree lease commits reuse.
#[derive(Clone, Debug)]
struct HeldLease {
    sha: String,
    tree: String,
}

enum RefUpdate {
    Updated,
    /// The ref moved meanwhile (a fast-forward-only update refused).
    NotFastForward,
    Missing,
}

enum RefCreate {
    Created,
    Exists,
    /// The create's outcome was lost and the ref now exists (at `sha`): ours or a racer's.
    Unknown {
        sha: String,
    },
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

impl Forge for GithubForge {
    fn kind(&self) -> ForgeKind {
        ForgeKind::Github
    }

    fn repo_info<'a>(&'a self, repo: &'a RepoName) -> ForgeFuture<'a, RepoInfo> {
        Box::pin(self.repo_info_impl(repo))
    }

    fn candidates<'a>(
        &'a self,
        repo: &'a RepoName,
        poll: &'a mut RepoPoll,
    ) -> ForgeFuture<'a, Vec<CandidateFacts>> {
        Box::pin(self.candidates_impl(repo, poll))
    }

    fn issue_facts<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
    ) -> ForgeFuture<'a, Option<CandidateFacts>> {
        Box::pin(self.issue_facts_impl(repo, issue))
    }

    fn permission<'a>(&'a self, repo: &'a RepoName, login: &'a str) -> ForgeFuture<'a, Permission> {
        Box::pin(self.lookup_permission(repo, login))
    }

    fn claim<'a>(&'a self, request: &'a ClaimRequest) -> ForgeFuture<'a, ClaimOutcome> {
        Box::pin(self.claim_impl(request))
    }

    fn renew<'a>(&'a self, claim: &'a Claim, ttl: Duration) -> ForgeFuture<'a, Renewal> {
        Box::pin(self.renew_impl(claim, ttl))
    }

    fn release<'a>(&'a self, claim: &'a Claim, release: Release) -> ForgeFuture<'a, ()> {
        Box::pin(self.release_impl(claim, release))
    }

    fn find_pr<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        branch: &'a str,
    ) -> ForgeFuture<'a, Option<PrRef>> {
        Box::pin(self.find_pr_impl(repo, issue, branch))
    }

    fn publish_pr<'a>(&'a self, request: &'a PrRequest) -> ForgeFuture<'a, PrOutcome> {
        Box::pin(self.publish_pr_impl(request))
    }

    fn upsert_comment<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        marker: &'a str,
        body: &'a str,
    ) -> ForgeFuture<'a, CommentRef> {
        Box::pin(self.upsert_comment_impl(repo, issue, marker, body))
    }

    fn add_labels<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        labels: &'a [String],
    ) -> ForgeFuture<'a, ()> {
        Box::pin(self.add_labels_impl(repo, issue, labels))
    }

    fn remove_label<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        label: &'a str,
    ) -> ForgeFuture<'a, ()> {
        Box::pin(self.remove_label_impl(repo, issue, label))
    }

    fn push_target<'a>(&'a self, repo: &'a RepoName) -> ForgeFuture<'a, PushTarget> {
        Box::pin(self.push_target_impl(repo))
    }

    fn stats(&self) -> RequestStats {
        self.transport.stats()
    }
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
