//! The responder: routes a request to GitHub's operation, checks it, applies faults, and answers
//! from the model.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::model::{Comment, Commit, Event, EventKind, Issue, Pull, RefError, Repo};
use crate::render::{self, errors};
use crate::schema::spec;
use crate::{FakeOptions, Fault, FaultKind, LoggedRequest};

pub struct State {
    pub prefix: String,
    pub base_uri: String,
    pub tokens: BTreeSet<String>,
    pub bot_login: String,
    pub validate_responses: bool,
    pub repos: BTreeMap<String, Repo>,
    pub app: Option<(u64, u64)>,
    next_id: u64,
    pub clock_offset: SignedDuration,
    pub log: Vec<LoggedRequest>,
    pub problems: Vec<String>,
    pub faults: Vec<Fault>,
    pub rate_limit: u64,
    pub rate_remaining: u64,
    pub rate_reset: i64,
    minted: u64,
}

/// An answer before it becomes a wiremock template.
struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
    delay: Option<std::time::Duration>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
            delay: None,
        }
    }
    fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
            delay: None,
        }
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// A routed request.
struct Call {
    method: String,
    operation: String,
    params: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
    body: Value,
    /// The login behind the credentials.
    login: String,
}

impl State {
    pub fn new(options: FakeOptions, base_uri: String) -> Self {
        let now = Timestamp::now().as_second();
        Self {
            prefix: options.path_prefix.trim_end_matches('/').to_owned(),
            base_uri,
            tokens: options.tokens.into_iter().collect(),
            bot_login: options.bot_login,
            validate_responses: options.validate_responses,
            repos: BTreeMap::new(),
            app: None,
            next_id: 1000,
            clock_offset: SignedDuration::ZERO,
            log: Vec::new(),
            problems: Vec::new(),
            faults: Vec::new(),
            rate_limit: 5000,
            rate_remaining: 5000,
            rate_reset: now + 3600,
            minted: 0,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn now(&self) -> Timestamp {
        let t = Timestamp::now()
            .checked_add(self.clock_offset)
            .unwrap_or_else(|_| Timestamp::now());
        Timestamp::from_second(t.as_second()).unwrap_or(t)
    }

    pub fn repo(&self, full: &str) -> Option<&Repo> {
        self.repos.get(&full.to_ascii_lowercase())
    }

    #[track_caller]
    pub fn repo_mut(&mut self, full: &str) -> &mut Repo {
        self.repos
            .get_mut(&full.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("the fake has no repository `{full}`: add_repo first"))
    }

    #[track_caller]
    pub fn issue_mut(&mut self, full: &str, number: u64) -> &mut Issue {
        self.repo_mut(full)
            .issues
            .get_mut(&number)
            .unwrap_or_else(|| panic!("the fake has no issue #{number} in `{full}`"))
    }

    fn rate_headers(&self, reply: Reply) -> Reply {
        let used = self.rate_limit.saturating_sub(self.rate_remaining);
        reply
            .header("x-ratelimit-limit", self.rate_limit.to_string())
            .header("x-ratelimit-remaining", self.rate_remaining.to_string())
            .header("x-ratelimit-used", used.to_string())
            .header("x-ratelimit-reset", self.rate_reset.to_string())
            .header("x-ratelimit-resource", "core")
    }

    fn take_fault(&mut self, operation: &str) -> Option<FaultKind> {
        let fault = self
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && (f.operation == operation || f.operation == "*"))?;
        fault.times -= 1;
        let kind = fault.kind.clone();
        self.faults.retain(|f| f.times > 0);
        Some(kind)
    }

    fn handle_request(&mut self, request: &Request) -> Reply {
        let method = request.method.as_str().to_owned();
        let full_path = request.url.path().to_owned();
        let query_text = request.url.query().unwrap_or("").to_owned();
        let body_value: Option<Value> = if request.body.is_empty() {
            None
        } else {
            serde_json::from_slice(&request.body).ok()
        };
        let mut entry = LoggedRequest {
            method: method.clone(),
            path: full_path.clone(),
            query: query_text.clone(),
            operation: None,
            body: body_value.clone(),
            status: 0,
            conditional: request.headers.contains_key("if-none-match"),
        };
        let reply = self.route(request, &method, &full_path, &mut entry);
        entry.status = reply.status;
        self.log.push(entry);
        reply
    }

    fn route(
        &mut self,
        request: &Request,
        method: &str,
        full_path: &str,
        entry: &mut LoggedRequest,
    ) -> Reply {
        let Some(path) = full_path.strip_prefix(&self.prefix) else {
            self.problems.push(format!(
                "{method} {full_path}: outside the API prefix `{}`",
                self.prefix
            ));
            return Reply::json(404, errors::not_found());
        };
        entry.path = path.to_owned();
        let Some((operation, template)) = spec().find_operation(method, path) else {
            self.problems.push(format!(
                "{method} {path}: not an operation issueloop is expected to call"
            ));
            return Reply::json(404, errors::not_found());
        };
        entry.operation = Some(operation.clone());

        // Query parameters: documented names and values only.
        let mut query = BTreeMap::new();
        let documented = spec().query_params(method, &template);
        for (name, value) in request.url.query_pairs() {
            match documented.iter().find(|p| p.name == name) {
                None => self.problems.push(format!(
                    "{method} {path}: query parameter `{name}` is not documented for {operation}"
                )),
                Some(p) => {
                    let typed = match p.schema.get("type").and_then(Value::as_str) {
                        Some("integer") => value
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::String(value.to_string())),
                        _ => Value::String(value.to_string()),
                    };
                    for e in spec().validate(&p.schema, &typed, false) {
                        self.problems.push(format!(
                            "{method} {path}: query `{name}`: {}",
                            e.replacen('$', "", 1)
                        ));
                    }
                }
            }
            query.insert(name.into_owned(), value.into_owned());
        }

        // Request body against GitHub's schema.
        let schema = spec().request_schema(&operation, method, &template);
        let body = match (&schema, request.body.is_empty()) {
            (_, true) => Value::Null,
            (_, false) => match serde_json::from_slice::<Value>(&request.body) {
                Ok(v) => v,
                Err(_) => {
                    self.problems
                        .push(format!("{method} {path}: body is not JSON"));
                    return self.rate_headers(Reply::json(400, errors::problems_parsing_json()));
                }
            },
        };
        if let Some(schema) = &schema {
            let required =
                matches!(method, "POST" | "PATCH" | "PUT") && operation != "issues/add-labels";
            if body.is_null() && required {
                self.problems
                    .push(format!("{method} {path}: {operation} needs a JSON body"));
            } else if !body.is_null() {
                let violations = spec().validate(schema, &body, true);
                if !violations.is_empty() {
                    self.problems.push(format!(
                        "{method} {path}: body rejected by GitHub's schema for {operation}: {}",
                        violations.join("; ")
                    ));
                    return self.rate_headers(Reply::json(
                        422,
                        errors::validation("Request", &violations.join("; ")),
                    ));
                }
            }
        } else if !body.is_null() {
            self.problems.push(format!(
                "{method} {path}: {operation} takes no body, got {body}"
            ));
        }

        // Credentials.
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("token "))
            .unwrap_or("");
        let app_route = operation.starts_with("apps/");
        let authorized = if app_route {
            token.split('.').count() == 3 && self.app.is_some()
        } else {
            self.tokens.contains(token)
        };
        if !authorized {
            return self.rate_headers(Reply::json(401, errors::bad_credentials()));
        }

        let mut params = BTreeMap::new();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let value = if name == "ref" && i == parts.len() - 1 {
                    segments[i..].join("/")
                } else {
                    segments.get(i).copied().unwrap_or("").to_owned()
                };
                params.insert(name.to_owned(), percent_decode(&value));
            }
        }
        let call = Call {
            method: method.to_owned(),
            operation: operation.clone(),
            params,
            query,
            body,
            login: self.bot_login.clone(),
        };

        // Faults, then the primary limit, then the operation itself.
        let fault = self.take_fault(&operation);
        let mut after_apply = None;
        let mut delay = None;
        match fault {
            Some(FaultKind::ServerError(status)) => {
                return self.rate_headers(Reply::json(status, errors::message("Server Error")));
            }
            Some(FaultKind::SecondaryRateLimit { retry_after }) => {
                let mut reply = self.rate_headers(Reply::json(403, errors::secondary_rate_limit()));
                if let Some(secs) = retry_after {
                    reply = reply.header("retry-after", secs.to_string());
                }
                return reply;
            }
            Some(FaultKind::PrimaryRateLimit { reset_in_secs }) => {
                let reset = self.now().as_second() + i64::try_from(reset_in_secs).unwrap_or(0);
                return Reply::json(403, errors::primary_rate_limit())
                    .header("x-ratelimit-limit", self.rate_limit.to_string())
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-used", self.rate_limit.to_string())
                    .header("x-ratelimit-reset", reset.to_string())
                    .header("x-ratelimit-resource", "core");
            }
            Some(FaultKind::BadCredentials) => {
                return self.rate_headers(Reply::json(401, errors::bad_credentials()));
            }
            Some(FaultKind::Status { status, body }) => {
                return self.rate_headers(Reply::json(status, body));
            }
            Some(FaultKind::AfterApply(status)) => after_apply = Some(status),
            Some(FaultKind::Delay(d)) => delay = Some(d),
            None => {}
        }
        if self.now().as_second() >= self.rate_reset {
            self.rate_remaining = self.rate_limit;
            self.rate_reset = self.now().as_second() + 3600;
        }
        if self.rate_remaining == 0 && operation != "rate-limit/get" {
            return self.rate_headers(Reply::json(403, errors::primary_rate_limit()));
        }

        let mut reply = self.dispatch(&call);

        // Conditional GETs: a matching ETag answers 304, which costs no rate limit.
        if call.method == "GET"
            && reply.status == 200
            && let Some(body) = &reply.body
        {
            let etag = format!("W/\"{:016x}\"", fnv(body.to_string().as_bytes()));
            let matches = request
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == etag);
            reply = reply.header("etag", etag.clone());
            if matches {
                reply.status = 304;
                reply.body = None;
                return self.rate_headers(reply);
            }
        }
        if operation != "rate-limit/get" {
            self.rate_remaining = self.rate_remaining.saturating_sub(1);
        }
        if self.validate_responses
            && reply.status < 300
            && let (Some(body), Some(schema)) = (
                &reply.body,
                spec().response_schema(method, &template, reply.status),
            )
        {
            let violations = spec().validate(&schema, body, false);
            if !violations.is_empty() {
                self.problems.push(format!(
                    "the fake's own {} answer to {operation} breaks GitHub's schema: {}",
                    reply.status,
                    violations.join("; ")
                ));
            }
        }
        if let Some(status) = after_apply {
            return self.rate_headers(Reply::json(status, errors::message("Server Error")));
        }
        reply.delay = delay;
        self.rate_headers(reply)
    }

    fn dispatch(&mut self, call: &Call) -> Reply {
        if call.operation == "rate-limit/get" {
            return Reply::json(
                200,
                render::rate_limit(self.rate_limit, self.rate_remaining, self.rate_reset),
            );
        }
        if call.operation == "apps/create-installation-access-token" {
            return self.mint_installation_token(call);
        }
        let owner = call.params.get("owner").cloned().unwrap_or_default();
        let name = call.params.get("repo").cloned().unwrap_or_default();
        let key = format!("{owner}/{name}").to_ascii_lowercase();
        // Taken out of the map while the operation runs, so ids can be drawn from `self`.
        let Some(mut repo) = self.repos.remove(&key) else {
            return Reply::json(404, errors::not_found());
        };
        let reply = self.dispatch_repo(&mut repo, call);
        self.repos.insert(key, repo);
        reply
    }

    fn dispatch_repo(&mut self, repo: &mut Repo, call: &Call) -> Reply {
        let full = repo.full_name();
        let now = self.now();
        let app = self.app;
        let base_uri = self.base_uri.clone();
        let prefix = self.prefix.clone();
        let number = call
            .params
            .get("issue_number")
            .and_then(|n| n.parse::<u64>().ok());
        let link_base = format!("{base_uri}{prefix}");
        match call.operation.as_str() {
            "repos/get" => Reply::json(200, render::repository(repo)),
            "apps/get-repo-installation" => match app {
                Some((app_id, installation_id)) => Reply::json(
                    200,
                    json!({"id": installation_id, "app_id": app_id, "account": render::user(&repo.owner)}),
                ),
                None => Reply::json(404, errors::not_found()),
            },
            "issues/list-for-repo" => list_issues(repo, call, &link_base),
            "issues/get" => match number.and_then(|n| repo.issues.get(&n)) {
                Some(issue) => Reply::json(200, render::issue(repo, issue)),
                None => Reply::json(404, errors::not_found()),
            },
            "issues/list-events" => {
                let Some(issue) = number.and_then(|n| repo.issues.get(&n)) else {
                    return Reply::json(404, errors::not_found());
                };
                let items: Vec<Value> = issue
                    .events
                    .iter()
                    .map(|e| render::issue_event(repo, e))
                    .collect();
                paginate(
                    items,
                    call,
                    &link_base,
                    &format!("/repos/{full}/issues/{}/events", issue.number),
                )
            }
            "issues/list-events-for-timeline" => {
                let Some(issue) = number.and_then(|n| repo.issues.get(&n)) else {
                    return Reply::json(404, errors::not_found());
                };
                let mut entries: Vec<(Timestamp, u64, Value)> = issue
                    .events
                    .iter()
                    .map(|e| (e.at, e.id, render::timeline_event(repo, e)))
                    .collect();
                entries.extend(
                    repo.comments
                        .values()
                        .filter(|c| c.issue == issue.number)
                        .map(|c| (c.created_at, c.id, render::timeline_comment(repo, c))),
                );
                entries.sort_by_key(|(at, id, _)| (*at, *id));
                let items = entries.into_iter().map(|(_, _, v)| v).collect();
                paginate(
                    items,
                    call,
                    &link_base,
                    &format!("/repos/{full}/issues/{}/timeline", issue.number),
                )
            }
            "issues/add-labels" => {
                let Some(n) = number.filter(|n| repo.issues.contains_key(n)) else {
                    return Reply::json(404, errors::not_found());
                };
                let names: Vec<String> = call.body["labels"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|l| l.as_str().or_else(|| l["name"].as_str()))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                for label in names {
                    let id = self.next_id();
                    #[expect(clippy::expect_used, reason = "the issue's presence is checked above")]
                    let issue = repo.issues.get_mut(&n).expect("checked above");
                    if !issue.labels.contains(&label) {
                        issue.labels.push(label.clone());
                        issue.events.push(Event {
                            id,
                            kind: EventKind::Labeled(label),
                            actor: call.login.clone(),
                            at: now,
                        });
                        issue.updated_at = now;
                    }
                }
                let issue = &repo.issues[&n];
                let labels: Vec<Value> = issue
                    .labels
                    .clone()
                    .iter()
                    .map(|l| render::label(repo, l))
                    .collect();
                Reply::json(200, Value::Array(labels))
            }
            "issues/remove-label" => {
                let event_id = self.next_id();
                let Some(issue) = number.and_then(|n| repo.issues.get_mut(&n)) else {
                    return Reply::json(404, errors::not_found());
                };
                let label = call.params.get("name").cloned().unwrap_or_default();
                if !issue.labels.contains(&label) {
                    return Reply::json(404, errors::message("Label does not exist"));
                }
                issue.labels.retain(|l| *l != label);
                issue.events.push(Event {
                    id: event_id,
                    kind: EventKind::Unlabeled(label),
                    actor: call.login.clone(),
                    at: now,
                });
                issue.updated_at = now;
                let labels: Vec<Value> = issue
                    .labels
                    .clone()
                    .iter()
                    .map(|l| render::label(repo, l))
                    .collect();
                Reply::json(200, Value::Array(labels))
            }
            "issues/list-comments" => {
                let Some(n) = number.filter(|n| repo.issues.contains_key(n)) else {
                    return Reply::json(404, errors::not_found());
                };
                let items: Vec<Value> = repo
                    .comments
                    .values()
                    .filter(|c| c.issue == n)
                    .map(|c| render::comment(repo, c))
                    .collect();
                paginate(
                    items,
                    call,
                    &link_base,
                    &format!("/repos/{full}/issues/{n}/comments"),
                )
            }
            "issues/create-comment" => {
                let Some(n) = number.filter(|n| repo.issues.contains_key(n)) else {
                    return Reply::json(404, errors::not_found());
                };
                let comment = Comment {
                    id: self.next_id(),
                    issue: n,
                    author: call.login.clone(),
                    body: call.body["body"].as_str().unwrap_or("").to_owned(),
                    created_at: now,
                    updated_at: now,
                };
                if let Some(issue) = repo.issues.get_mut(&n) {
                    issue.updated_at = now;
                }
                let v = render::comment(repo, &comment);
                repo.comments.insert(comment.id, comment);
                let location = v["url"].as_str().unwrap_or("").to_owned();
                Reply::json(201, v).header("location", location)
            }
            "issues/update-comment" => {
                let id = call
                    .params
                    .get("comment_id")
                    .and_then(|c| c.parse::<u64>().ok());
                let Some(comment) = id.and_then(|id| repo.comments.get_mut(&id)) else {
                    return Reply::json(404, errors::not_found());
                };
                comment.body = call.body["body"].as_str().unwrap_or("").to_owned();
                comment.updated_at = now;
                let comment = comment.clone();
                Reply::json(200, render::comment(repo, &comment))
            }
            "repos/get-collaborator-permission-level" => {
                let login = call.params.get("username").cloned().unwrap_or_default();
                match repo.collaborators.get(&login) {
                    Some(role) => Reply::json(200, render::permission(role, &login)),
                    None => Reply::json(404, errors::not_found()),
                }
            }
            "pulls/list" => list_pulls(repo, call, &link_base),
            "pulls/create" => create_pull(repo, call, now, self.next_id()),
            "pulls/update" => {
                let n = call
                    .params
                    .get("pull_number")
                    .and_then(|n| n.parse::<u64>().ok());
                let Some(n) = n.filter(|n| repo.pulls.contains_key(n)) else {
                    return Reply::json(404, errors::not_found());
                };
                #[expect(clippy::expect_used, reason = "the model gives every pull its issue")]
                let issue = repo.issues.get_mut(&n).expect("every pull has its issue");
                if let Some(title) = call.body["title"].as_str() {
                    issue.title = title.to_owned();
                }
                if let Some(body) = call.body["body"].as_str() {
                    issue.body = body.to_owned();
                }
                if let Some(state) = call.body["state"].as_str() {
                    issue.open = state == "open";
                }
                issue.updated_at = now;
                let issue = issue.clone();
                let pull = repo.pulls[&n].clone();
                Reply::json(200, render::pull(repo, &pull, &issue))
            }
            "git/get-ref" => {
                let name = format!(
                    "refs/{}",
                    call.params.get("ref").cloned().unwrap_or_default()
                );
                match repo.refs.get(&name) {
                    Some(sha) => Reply::json(200, render::git_ref(repo, &name, &sha)),
                    None => Reply::json(404, errors::not_found()),
                }
            }
            "git/create-ref" => {
                let name = call.body["ref"].as_str().unwrap_or("").to_owned();
                let sha = call.body["sha"].as_str().unwrap_or("").to_owned();
                if !name.starts_with("refs/") || name.matches('/').count() < 2 {
                    return Reply::json(
                        422,
                        errors::message(
                            "Reference name must start with 'refs/' and have at least two slashes.",
                        ),
                    );
                }
                match repo.refs.create(&name, &sha) {
                    Ok(()) => {
                        let v = render::git_ref(repo, &name, &sha);
                        let location = v["url"].as_str().unwrap_or("").to_owned();
                        Reply::json(201, v).header("location", location)
                    }
                    Err(e) => ref_error(e),
                }
            }
            "git/update-ref" => {
                let name = format!(
                    "refs/{}",
                    call.params.get("ref").cloned().unwrap_or_default()
                );
                let sha = call.body["sha"].as_str().unwrap_or("").to_owned();
                let force = call.body["force"].as_bool().unwrap_or(false);
                // Refs in memory know the ancestry of the commits made through the API only.
                if !force
                    && let Some(old) = repo.refs.get(&name)
                    && repo.is_fast_forward(&old, &sha) == Some(false)
                {
                    return Reply::json(422, errors::not_fast_forward());
                }
                match repo.refs.update(&name, &sha, force) {
                    Ok(()) => Reply::json(200, render::git_ref(repo, &name, &sha)),
                    Err(e) => ref_error(e),
                }
            }
            "git/create-commit" => {
                let who = |key: &str, field: &str| {
                    call.body[key][field]
                        .as_str()
                        .or_else(|| call.body["author"][field].as_str())
                        .map(str::to_owned)
                };
                let date = who("committer", "date")
                    .and_then(|d| d.parse::<Timestamp>().ok())
                    .unwrap_or(now);
                let commit = Commit {
                    sha: String::new(),
                    message: call.body["message"].as_str().unwrap_or("").to_owned(),
                    tree: call.body["tree"].as_str().unwrap_or("").to_owned(),
                    parents: call.body["parents"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    author_name: who("author", "name").unwrap_or_else(|| "issueloop".into()),
                    author_email: who("author", "email")
                        .unwrap_or_else(|| "issueloop@users.noreply.github.com".into()),
                    date,
                };
                match repo.create_commit(commit) {
                    Ok(sha) => match repo.commit(&sha) {
                        Some(c) => {
                            let v = render::git_commit(repo, &c, true);
                            let location = v["url"].as_str().unwrap_or("").to_owned();
                            Reply::json(201, v).header("location", location)
                        }
                        None => Reply::json(500, errors::message("the commit vanished")),
                    },
                    Err(e) => ref_error(e),
                }
            }
            "git/get-commit" => {
                let sha = call.params.get("commit_sha").cloned().unwrap_or_default();
                match repo.commit(&sha) {
                    Some(c) => Reply::json(200, render::git_commit(repo, &c, false)),
                    None => Reply::json(404, errors::not_found()),
                }
            }
            "git/delete-ref" => {
                let name = format!(
                    "refs/{}",
                    call.params.get("ref").cloned().unwrap_or_default()
                );
                match repo.refs.delete(&name) {
                    Ok(()) => Reply::empty(204),
                    Err(e) => ref_error(e),
                }
            }
            other => Reply::json(
                501,
                errors::message(&format!("the fake does not implement {other}")),
            ),
        }
    }

    fn mint_installation_token(&mut self, call: &Call) -> Reply {
        let Some((_, installation)) = self.app else {
            return Reply::json(404, errors::not_found());
        };
        let asked = call
            .params
            .get("installation_id")
            .cloned()
            .unwrap_or_default();
        if asked != installation.to_string() {
            return Reply::json(404, errors::not_found());
        }
        self.minted += 1;
        let token = format!("ghs_fakeInstallationToken{:0>16}", self.minted);
        self.tokens.insert(token.clone());
        // octocrab compares the expiry with the real clock.
        let expires = Timestamp::now()
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or_else(|_| Timestamp::now());
        Reply::json(
            201,
            json!({
                "token": token,
                "expires_at": render::ts(expires),
                "permissions": {"contents": "write", "issues": "write", "pull_requests": "write"},
                "repository_selection": "all",
            }),
        )
    }
}

fn ref_error(e: RefError) -> Reply {
    match e {
        RefError::AlreadyExists => Reply::json(422, errors::reference_already_exists()),
        RefError::NotFastForward => Reply::json(422, errors::not_fast_forward()),
        RefError::Missing => Reply::json(422, errors::message("Reference does not exist")),
        RefError::UnknownObject => Reply::json(422, errors::message("Object does not exist")),
        RefError::Git(e) => Reply::json(500, errors::message(&format!("git failed: {e}"))),
    }
}

fn list_issues(repo: &Repo, call: &Call, link_base: &str) -> Reply {
    let state = call
        .query
        .get("state")
        .map(String::as_str)
        .unwrap_or("open");
    let wanted: Vec<String> = call
        .query
        .get("labels")
        .map(|l| {
            l.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let since = call
        .query
        .get("since")
        .and_then(|s| s.parse::<Timestamp>().ok());
    let mut issues: Vec<&Issue> = repo
        .issues
        .values()
        .filter(|i| match state {
            "open" => i.open,
            "closed" => !i.open,
            _ => true,
        })
        .filter(|i| {
            wanted
                .iter()
                .all(|w| i.labels.iter().any(|l| l.to_ascii_lowercase() == *w))
        })
        .filter(|i| since.is_none_or(|s| i.updated_at >= s))
        .collect();
    let sort = call
        .query
        .get("sort")
        .map(String::as_str)
        .unwrap_or("created");
    match sort {
        "updated" => issues.sort_by_key(|i| (i.updated_at, i.number)),
        "comments" => issues.sort_by_key(|i| (repo.comment_count(i.number), i.number)),
        _ => issues.sort_by_key(|i| (i.created_at, i.number)),
    }
    if call
        .query
        .get("direction")
        .map(String::as_str)
        .unwrap_or("desc")
        == "desc"
    {
        issues.reverse();
    }
    let items = issues
        .into_iter()
        .map(|i| render::issue_item(repo, i))
        .collect();
    paginate(
        items,
        call,
        link_base,
        &format!("/repos/{}/issues", repo.full_name()),
    )
}

fn list_pulls(repo: &Repo, call: &Call, link_base: &str) -> Reply {
    let state = call
        .query
        .get("state")
        .map(String::as_str)
        .unwrap_or("open");
    let head = call.query.get("head").map(|h| match h.split_once(':') {
        Some((owner, branch)) => (Some(owner.to_owned()), branch.to_owned()),
        None => (None, h.clone()),
    });
    let mut pulls: Vec<(&Pull, &Issue)> = repo
        .pulls
        .values()
        .filter_map(|p| Some((p, repo.issues.get(&p.number)?)))
        .filter(|(_, i)| match state {
            "open" => i.open,
            "closed" => !i.open,
            _ => true,
        })
        .filter(|(p, _)| match &head {
            None => true,
            Some((owner, branch)) => {
                owner
                    .as_deref()
                    .is_none_or(|o| o.eq_ignore_ascii_case(&repo.owner))
                    && p.head == *branch
            }
        })
        .filter(|(p, _)| call.query.get("base").is_none_or(|b| *b == p.base))
        .collect();
    pulls.sort_by_key(|(p, i)| (i.created_at, p.number));
    if call
        .query
        .get("direction")
        .map(String::as_str)
        .unwrap_or("desc")
        == "desc"
    {
        pulls.reverse();
    }
    let items = pulls
        .into_iter()
        .map(|(p, i)| render::pull_item(repo, p, i))
        .collect();
    paginate(
        items,
        call,
        link_base,
        &format!("/repos/{}/pulls", repo.full_name()),
    )
}

fn create_pull(repo: &mut Repo, call: &Call, now: Timestamp, id: u64) -> Reply {
    let head_text = call.body["head"].as_str().unwrap_or("");
    let head = head_text
        .split_once(':')
        .map(|(_, b)| b)
        .unwrap_or(head_text)
        .to_owned();
    let base = call.body["base"].as_str().unwrap_or("").to_owned();
    let draft = call.body["draft"].as_bool().unwrap_or(false);
    let Some(head_sha) = repo.refs.get(&format!("refs/heads/{head}")) else {
        return Reply::json(
            422,
            errors::validation("PullRequest", &format!("head `{head}` invalid")),
        );
    };
    let Some(base_sha) = repo.refs.get(&format!("refs/heads/{base}")) else {
        return Reply::json(
            422,
            errors::validation("PullRequest", &format!("base `{base}` invalid")),
        );
    };
    let exists = repo.pulls.values().any(|p| {
        p.head == head && p.base == base && repo.issues.get(&p.number).is_some_and(|i| i.open)
    });
    if exists {
        return Reply::json(422, errors::pull_request_already_exists(&repo.owner, &head));
    }
    if repo.refs.has_commits_beyond(&base_sha, &head_sha) == Some(false) {
        return Reply::json(
            422,
            errors::validation(
                "PullRequest",
                &format!("No commits between {base} and {head}"),
            ),
        );
    }
    if draft && !repo.drafts_supported {
        return Reply::json(422, errors::drafts_not_supported());
    }
    let number = repo.next_number();
    let issue = Issue {
        id,
        number,
        title: call.body["title"].as_str().unwrap_or("").to_owned(),
        body: call.body["body"].as_str().unwrap_or("").to_owned(),
        author: call.login.clone(),
        open: true,
        labels: Vec::new(),
        created_at: now,
        updated_at: now,
        events: Vec::new(),
        is_pull: true,
    };
    let pull = Pull {
        id,
        number,
        head,
        base,
        draft,
    };
    let v = render::pull(repo, &pull, &issue);
    repo.issues.insert(number, issue);
    repo.pulls.insert(number, pull);
    let location = v["url"].as_str().unwrap_or("").to_owned();
    Reply::json(201, v).header("location", location)
}

fn paginate(items: Vec<Value>, call: &Call, link_base: &str, path: &str) -> Reply {
    let per_page = call
        .query
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = call
        .query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut reply = Reply::json(200, Value::Array(slice));
    if page < total_pages {
        let mut query: Vec<String> = call
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let link = |n: usize| {
            let mut q = query.clone();
            q.push(format!("page={n}"));
            format!("<{link_base}{path}?{}>", q.join("&"))
        };
        let header = format!(
            "{}; rel=\"next\", {}; rel=\"last\"",
            link(page + 1),
            link(total_pages)
        );
        query.clear();
        reply = reply.header("link", header);
    }
    reply
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub struct Responder {
    pub state: Arc<Mutex<State>>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let reply = state.handle_request(request);
        drop(state);
        let mut template = ResponseTemplate::new(reply.status);
        for (name, value) in &reply.headers {
            template = template.append_header(name.as_str(), value.as_str());
        }
        if let Some(body) = reply.body {
            template = template.set_body_raw(
                body.to_string().into_bytes(),
                "application/json; charset=utf-8",
            );
        }
        if let Some(delay) = reply.delay {
            template = template.set_delay(delay);
        }
        template
    }
}
