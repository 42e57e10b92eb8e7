//! A fake GitHub REST API for tests: a wiremock server whose single responder is backed by an
//! in-memory repository model and answers with GitHub's own example payloads (fields overwritten
//! from the model).
//!
//! Every request is logged and checked: an operation the fake does not know, a query parameter
//! GitHub does not document, or a request body that does not validate against GitHub's schema
//! (`fixtures/openapi-subset.refs.json`) is recorded as a problem, and
//! [`FakeGithub::assert_no_unexpected`] fails the test. Faults (5xx, rate limits, 401, delays,
//! "applied but the answer was lost") can be injected per operation.

mod model;
mod render;
mod schema;
mod server;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use wiremock::{Mock, MockServer, matchers::any};

pub use model::MEMORY_HEAD_SHA;
pub use schema::{SUPPLEMENTARY_OPERATIONS, spec};

use model::{Comment, Event, EventKind, Issue, RefStore, Repo};
use server::{Responder, State};

/// The token the fake accepts unless told otherwise.
pub const TOKEN: &str = "ghp_fakeTokenForTests0123456789abcdefABCD";
/// Login of the account the token belongs to: author of everything issueloop creates.
pub const BOT_LOGIN: &str = "issueloop-bot";

/// Start-up options.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Path the API lives under (`""` like api.github.com, `"/api/v3"` like Enterprise Server).
    pub path_prefix: String,
    /// Tokens accepted in `Authorization: Bearer …` (GitHub App installation tokens the fake
    /// mints are added as they are issued).
    pub tokens: Vec<String>,
    pub bot_login: String,
    /// Check every answer against GitHub's response schema too (a check of the fake itself).
    pub validate_responses: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            path_prefix: String::new(),
            tokens: vec![TOKEN.to_owned()],
            bot_login: BOT_LOGIN.to_owned(),
            validate_responses: true,
        }
    }
}

/// A repository to create in the fake.
#[derive(Clone, Debug)]
pub struct RepoSpec {
    /// `owner/name`.
    pub full_name: String,
    pub default_branch: String,
    /// A bare git repository: becomes `clone_url`, and the API's refs are its refs.
    pub git_dir: Option<PathBuf>,
    pub private: bool,
    /// `false` answers draft PRs with GitHub's 422 "Draft pull requests are not supported".
    pub drafts_supported: bool,
}

impl RepoSpec {
    pub fn new(full_name: &str) -> Self {
        Self {
            full_name: full_name.to_owned(),
            default_branch: "main".to_owned(),
            git_dir: None,
            private: false,
            drafts_supported: true,
        }
    }

    pub fn git_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.git_dir = Some(dir.into());
        self
    }

    pub fn drafts_supported(mut self, yes: bool) -> Self {
        self.drafts_supported = yes;
        self
    }
}

/// What an injected fault does to the next matching requests.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer with this 5xx status; nothing changes.
    ServerError(u16),
    /// 403 secondary rate limit, with `retry-after: N` when given; nothing changes.
    SecondaryRateLimit { retry_after: Option<u64> },
    /// 403 with `x-ratelimit-remaining: 0` and a reset this many seconds ahead; nothing changes.
    PrimaryRateLimit { reset_in_secs: u64 },
    /// 401 Bad credentials.
    BadCredentials,
    /// Any status with this body; nothing changes.
    Status { status: u16, body: Value },
    /// The change is made, then this 5xx is returned: a write whose answer was lost.
    AfterApply(u16),
    /// The change is made and answered normally, after this delay (to trip client timeouts).
    Delay(Duration),
}

/// A fault for the next `times` requests of one operation (`"pulls/create"`, `"git/create-ref"`…,
/// GitHub's operation ids; `"*"` for any).
#[derive(Clone, Debug)]
pub struct Fault {
    pub operation: String,
    pub times: u32,
    pub kind: FaultKind,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    /// Path without the API prefix.
    pub path: String,
    pub query: String,
    /// GitHub's operation id, `None` when the fake does not know the route.
    pub operation: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
    pub conditional: bool,
}

/// The state of an issue (or pull request) as the model holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueView {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PullView {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub draft: bool,
    pub open: bool,
    pub labels: Vec<String>,
    pub author: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CommentView {
    pub id: u64,
    pub author: String,
    pub body: String,
}

/// A fake GitHub API server. Dropping it stops the server.
pub struct FakeGithub {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl FakeGithub {
    pub async fn start() -> Self {
        Self::start_with(FakeOptions::default()).await
    }

    pub async fn start_with(options: FakeOptions) -> Self {
        let server = MockServer::builder().start().await;
        let state = Arc::new(Mutex::new(State::new(options, server.uri())));
        Mock::given(any())
            .respond_with(Responder {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// The API base URL to configure (`forge.api_url`).
    pub fn api_url(&self) -> String {
        let state = self.lock();
        format!("{}{}", self.server.uri(), state.prefix)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock already failed the test; keep reporting.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fake's clock: real time plus whatever [`FakeGithub::advance`] added, in whole seconds.
    pub fn now(&self) -> Timestamp {
        self.lock().now()
    }

    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.clock_offset = s
            .clock_offset
            .checked_add(SignedDuration::try_from(by).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(s.clock_offset);
    }

    pub fn add_repo(&self, spec: RepoSpec) {
        let mut s = self.lock();
        let (owner, name) = spec
            .full_name
            .split_once('/')
            .map(|(o, n)| (o.to_owned(), n.to_owned()))
            .unwrap_or_else(|| panic!("repository `{}` is not `owner/name`", spec.full_name));
        let id = s.next_id();
        let refs = match spec.git_dir {
            Some(dir) => RefStore::Git(dir),
            None => RefStore::Memory(
                [(
                    format!("refs/heads/{}", spec.default_branch),
                    MEMORY_HEAD_SHA.to_owned(),
                )]
                .into(),
            ),
        };
        let mut collaborators = std::collections::BTreeMap::new();
        collaborators.insert(owner.clone(), "admin".to_owned());
        collaborators.insert(s.bot_login.clone(), "write".to_owned());
        let repo = Repo {
            id,
            owner,
            name,
            default_branch: spec.default_branch,
            private: spec.private,
            drafts_supported: spec.drafts_supported,
            issues: Default::default(),
            pulls: Default::default(),
            comments: Default::default(),
            collaborators,
            refs,
            commits: std::collections::BTreeMap::new(),
        };
        s.repos.insert(spec.full_name.to_ascii_lowercase(), repo);
    }

    /// Opens an issue; returns its number. `at` defaults to now.
    pub fn add_issue(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        author: &str,
        at: Option<Timestamp>,
    ) -> u64 {
        let mut s = self.lock();
        let at = at.unwrap_or_else(|| s.now());
        let id = s.next_id();
        let r = s.repo_mut(repo);
        let number = r.next_number();
        r.issues.insert(
            number,
            Issue {
                id,
                number,
                title: title.to_owned(),
                body: body.to_owned(),
                author: author.to_owned(),
                open: true,
                labels: Vec::new(),
                created_at: at,
                updated_at: at,
                events: Vec::new(),
                is_pull: false,
            },
        );
        number
    }

    /// A pull request opened by someone (not through the API under test).
    pub fn add_pull_request(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        head: &str,
        author: &str,
    ) -> u64 {
        let mut s = self.lock();
        let at = s.now();
        let id = s.next_id();
        let r = s.repo_mut(repo);
        let number = r.next_number();
        let base = r.default_branch.clone();
        r.issues.insert(
            number,
            Issue {
                id,
                number,
                title: title.to_owned(),
                body: body.to_owned(),
                author: author.to_owned(),
                open: true,
                labels: Vec::new(),
                created_at: at,
                updated_at: at,
                events: Vec::new(),
                is_pull: true,
            },
        );
        r.pulls.insert(
            number,
            model::Pull {
                id,
                number,
                head: head.to_owned(),
                base,
                draft: false,
            },
        );
        number
    }

    /// `actor` applies `label` at `at` (default now): a `labeled` event, `updated_at` bumped.
    pub fn label(&self, repo: &str, number: u64, label: &str, actor: &str, at: Option<Timestamp>) {
        let mut s = self.lock();
        let at = at.unwrap_or_else(|| s.now());
        let id = s.next_id();
        let issue = s.issue_mut(repo, number);
        if !issue.labels.iter().any(|l| l == label) {
            issue.labels.push(label.to_owned());
            issue.events.push(Event {
                id,
                kind: EventKind::Labeled(label.to_owned()),
                actor: actor.to_owned(),
                at,
            });
            issue.updated_at = issue.updated_at.max(at);
        }
    }

    pub fn unlabel(
        &self,
        repo: &str,
        number: u64,
        label: &str,
        actor: &str,
        at: Option<Timestamp>,
    ) {
        let mut s = self.lock();
        let at = at.unwrap_or_else(|| s.now());
        let id = s.next_id();
        let issue = s.issue_mut(repo, number);
        if issue.labels.iter().any(|l| l == label) {
            issue.labels.retain(|l| l != label);
            issue.events.push(Event {
                id,
                kind: EventKind::Unlabeled(label.to_owned()),
                actor: actor.to_owned(),
                at,
            });
            issue.updated_at = issue.updated_at.max(at);
        }
    }

    /// Edits the issue body. Like GitHub's REST API, this leaves no event: only `updated_at`.
    pub fn edit_body(&self, repo: &str, number: u64, body: &str, at: Option<Timestamp>) {
        let mut s = self.lock();
        let at = at.unwrap_or_else(|| s.now());
        let issue = s.issue_mut(repo, number);
        issue.body = body.to_owned();
        issue.updated_at = issue.updated_at.max(at);
    }

    pub fn close_issue(&self, repo: &str, number: u64, actor: &str) {
        let mut s = self.lock();
        let at = s.now();
        let id = s.next_id();
        let issue = s.issue_mut(repo, number);
        issue.open = false;
        issue.events.push(Event {
            id,
            kind: EventKind::Closed,
            actor: actor.to_owned(),
            at,
        });
        issue.updated_at = at;
    }

    /// Changes the title: a `renamed` event, like GitHub.
    pub fn rename_issue(&self, repo: &str, number: u64, title: &str, actor: &str) {
        let mut s = self.lock();
        let at = s.now();
        let id = s.next_id();
        let issue = s.issue_mut(repo, number);
        let from = std::mem::replace(&mut issue.title, title.to_owned());
        issue.events.push(Event {
            id,
            kind: EventKind::Renamed {
                from,
                to: title.to_owned(),
            },
            actor: actor.to_owned(),
            at,
        });
        issue.updated_at = at;
    }

    pub fn reopen_issue(&self, repo: &str, number: u64, actor: &str) {
        let mut s = self.lock();
        let at = s.now();
        let id = s.next_id();
        let issue = s.issue_mut(repo, number);
        issue.open = true;
        issue.events.push(Event {
            id,
            kind: EventKind::Reopened,
            actor: actor.to_owned(),
            at,
        });
        issue.updated_at = at;
    }

    pub fn add_comment(&self, repo: &str, number: u64, author: &str, body: &str) -> u64 {
        let mut s = self.lock();
        let at = s.now();
        let id = s.next_id();
        let r = s.repo_mut(repo);
        r.comments.insert(
            id,
            Comment {
                id,
                issue: number,
                author: author.to_owned(),
                body: body.to_owned(),
                created_at: at,
                updated_at: at,
            },
        );
        if let Some(issue) = r.issues.get_mut(&number) {
            issue.updated_at = issue.updated_at.max(at);
        }
        id
    }

    /// Role of `login` on the repository: `admin`, `maintain`, `write`, `triage`, `read`, `none`,
    /// or a custom role name. Unknown logins get GitHub's 404.
    pub fn set_permission(&self, repo: &str, login: &str, role: &str) {
        self.lock()
            .repo_mut(repo)
            .collaborators
            .insert(login.to_owned(), role.to_owned());
    }

    pub fn set_drafts_supported(&self, repo: &str, yes: bool) {
        self.lock().repo_mut(repo).drafts_supported = yes;
    }

    /// Sets the primary rate-limit window the fake reports.
    pub fn set_rate_limit(&self, remaining: u64, reset_in: Duration) {
        let mut s = self.lock();
        let reset = s.now().as_second() + i64::try_from(reset_in.as_secs()).unwrap_or(i64::MAX / 2);
        s.rate_remaining = remaining;
        s.rate_reset = reset;
    }

    pub fn rate_remaining(&self) -> u64 {
        self.lock().rate_remaining
    }

    /// Applies `kind` to the next `times` requests of `operation`.
    pub fn inject(&self, operation: &str, times: u32, kind: FaultKind) {
        self.lock().faults.push(Fault {
            operation: operation.to_owned(),
            times,
            kind,
        });
    }

    /// Registers a GitHub App installation whose access tokens the fake will mint.
    pub fn enable_app(&self, app_id: u64, installation_id: u64) {
        let mut s = self.lock();
        s.app = Some((app_id, installation_id));
    }

    // ---- inspection ----

    pub fn issue(&self, repo: &str, number: u64) -> Option<IssueView> {
        let s = self.lock();
        let r = s.repo(repo)?;
        let i = r.issues.get(&number)?;
        Some(IssueView {
            number: i.number,
            title: i.title.clone(),
            body: i.body.clone(),
            labels: i.labels.clone(),
            open: i.open,
            updated_at: i.updated_at,
        })
    }

    pub fn pulls(&self, repo: &str) -> Vec<PullView> {
        let s = self.lock();
        let Some(r) = s.repo(repo) else {
            return Vec::new();
        };
        r.pulls
            .values()
            .filter_map(|p| {
                let i = r.issues.get(&p.number)?;
                Some(PullView {
                    number: p.number,
                    title: i.title.clone(),
                    body: i.body.clone(),
                    head: p.head.clone(),
                    base: p.base.clone(),
                    draft: p.draft,
                    open: i.open,
                    labels: i.labels.clone(),
                    author: i.author.clone(),
                })
            })
            .collect()
    }

    pub fn comments(&self, repo: &str, number: u64) -> Vec<CommentView> {
        let s = self.lock();
        let Some(r) = s.repo(repo) else {
            return Vec::new();
        };
        r.comments
            .values()
            .filter(|c| c.issue == number)
            .map(|c| CommentView {
                id: c.id,
                author: c.author.clone(),
                body: c.body.clone(),
            })
            .collect()
    }

    /// The commit a ref (`refs/heads/main`) points at.
    pub fn ref_sha(&self, repo: &str, name: &str) -> Option<String> {
        self.lock().repo(repo)?.refs.get(name)
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Requests logged for one operation id.
    pub fn count(&self, operation: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|r| r.operation.as_deref() == Some(operation))
            .count()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Unknown routes, undocumented query parameters, request bodies GitHub's schema rejects,
    /// and (with `validate_responses`) answers of the fake that its schema rejects.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }

    /// Fails the test when any request was unexpected or invalid; prints the request log.
    #[track_caller]
    pub fn assert_no_unexpected(&self) {
        let s = self.lock();
        if !s.problems.is_empty() {
            let log: Vec<String> = s
                .log
                .iter()
                .map(|r| format!("  {} {}?{} -> {}", r.method, r.path, r.query, r.status))
                .collect();
            panic!(
                "the fake GitHub saw unexpected requests:\n  {}\nrequest log:\n{}",
                s.problems.join("\n  "),
                log.join("\n")
            );
        }
    }
}
