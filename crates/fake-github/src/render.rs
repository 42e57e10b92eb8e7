//! GitHub's example payloads turned into answers: each builder starts from a fixture and overwrites
//! the fields the in-memory model owns.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::model::{Comment, Event, EventKind, Issue, Pull, Repo};

#[expect(
    clippy::expect_used,
    reason = "compiled-in fixtures, parsed by this crate's tests"
)]
fn fixture(text: &str) -> Value {
    // Fixtures are compiled in and checked by this crate's tests; failing to parse one is a
    // broken checkout, not input.
    serde_json::from_str(text).expect("compiled-in fixture is JSON")
}

fn first(value: Value) -> Value {
    match value {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    }
}

pub const API: &str = "https://api.github.com";
pub const WEB: &str = "https://github.com";

pub fn ts(t: Timestamp) -> Value {
    Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn stable_id(text: &str) -> u64 {
    // FNV-1a: stable across runs, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % 100_000_000 + 1
}

/// Replaces every `from` inside string values (URLs, logins) by `to`.
fn replace_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}

fn set(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

pub fn user(login: &str) -> Value {
    let mut u = fixture(include_str!("../fixtures/issues.get.200.json"))["user"].take();
    replace_strings(&mut u, "octocat", login);
    set(&mut u, "login", json!(login));
    set(&mut u, "id", json!(stable_id(login)));
    set(&mut u, "node_id", json!(format!("U_{}", stable_id(login))));
    if login.ends_with("[bot]") {
        set(&mut u, "type", json!("Bot"));
    }
    u
}

pub fn label(repo: &Repo, name: &str) -> Value {
    let mut l = first(fixture(include_str!(
        "../fixtures/issues.add-labels.200.json"
    )));
    set(&mut l, "id", json!(stable_id(name)));
    set(&mut l, "node_id", json!(format!("LA_{}", stable_id(name))));
    set(
        &mut l,
        "url",
        json!(format!("{API}/repos/{}/labels/{}", repo.full_name(), name)),
    );
    set(&mut l, "name", json!(name));
    // GitHub sends null for a label without description; the 2022 pull-request schema says string.
    set(&mut l, "description", json!(""));
    set(
        &mut l,
        "color",
        json!(format!("{:06x}", stable_id(name) % 0xff_ffff)),
    );
    set(&mut l, "default", json!(false));
    l
}

pub fn repository(repo: &Repo) -> Value {
    let mut r = fixture(include_str!("../fixtures/repos.get.200.json"));
    replace_strings(&mut r, "octocat/Hello-World", &repo.full_name());
    for key in [
        "parent",
        "source",
        "template_repository",
        "organization",
        "license",
    ] {
        set(&mut r, key, Value::Null);
    }
    if let Some(map) = r.as_object_mut() {
        // A fork's `parent`/`source` are absent on a plain repository.
        map.remove("parent");
        map.remove("source");
    }
    set(&mut r, "id", json!(repo.id));
    set(&mut r, "node_id", json!(format!("R_{}", repo.id)));
    set(&mut r, "name", json!(repo.name));
    set(&mut r, "full_name", json!(repo.full_name()));
    set(&mut r, "owner", user(&repo.owner));
    set(&mut r, "private", json!(repo.private));
    set(
        &mut r,
        "visibility",
        json!(if repo.private { "private" } else { "public" }),
    );
    set(&mut r, "fork", json!(false));
    set(&mut r, "default_branch", json!(repo.default_branch));
    set(&mut r, "clone_url", json!(repo.clone_url()));
    set(&mut r, "open_issues_count", json!(repo.open_issue_count()));
    set(&mut r, "open_issues", json!(repo.open_issue_count()));
    r
}

fn issue_common(mut i: Value, repo: &Repo, issue: &Issue) -> Value {
    let base = format!("{API}/repos/{}/issues/{}", repo.full_name(), issue.number);
    set(&mut i, "id", json!(issue.id));
    set(&mut i, "node_id", json!(format!("I_{}", issue.id)));
    set(&mut i, "url", json!(base));
    set(
        &mut i,
        "repository_url",
        json!(format!("{API}/repos/{}", repo.full_name())),
    );
    set(
        &mut i,
        "labels_url",
        json!(format!("{base}/labels{{/name}}")),
    );
    set(&mut i, "comments_url", json!(format!("{base}/comments")));
    set(&mut i, "events_url", json!(format!("{base}/events")));
    let kind = if issue.is_pull { "pull" } else { "issues" };
    set(
        &mut i,
        "html_url",
        json!(format!(
            "{WEB}/{}/{kind}/{}",
            repo.full_name(),
            issue.number
        )),
    );
    set(&mut i, "number", json!(issue.number));
    set(
        &mut i,
        "state",
        json!(if issue.open { "open" } else { "closed" }),
    );
    set(&mut i, "title", json!(issue.title));
    set(&mut i, "body", json!(issue.body));
    set(&mut i, "user", user(&issue.author));
    let labels: Vec<Value> = issue.labels.iter().map(|l| label(repo, l)).collect();
    set(&mut i, "labels", Value::Array(labels));
    set(&mut i, "assignee", Value::Null);
    set(&mut i, "assignees", json!([]));
    set(&mut i, "milestone", Value::Null);
    set(&mut i, "locked", json!(false));
    set(&mut i, "active_lock_reason", Value::Null);
    set(&mut i, "comments", json!(repo.comment_count(issue.number)));
    set(
        &mut i,
        "closed_at",
        if issue.open {
            Value::Null
        } else {
            ts(issue.updated_at)
        },
    );
    set(&mut i, "closed_by", Value::Null);
    set(&mut i, "created_at", ts(issue.created_at));
    set(&mut i, "updated_at", ts(issue.updated_at));
    set(
        &mut i,
        "author_association",
        json!(repo.association(&issue.author)),
    );
    if let Some(map) = i.as_object_mut() {
        if issue.is_pull {
            let pr = format!("{API}/repos/{}/pulls/{}", repo.full_name(), issue.number);
            let html = format!("{WEB}/{}/pull/{}", repo.full_name(), issue.number);
            map.insert(
                "pull_request".into(),
                json!({
                    "url": pr,
                    "html_url": html,
                    "diff_url": format!("{html}.diff"),
                    "patch_url": format!("{html}.patch"),
                }),
            );
        } else {
            map.remove("pull_request");
        }
        // Fields of the full issue that the list item schema does not promise either way.
        map.remove("repository");
    }
    i
}

pub fn issue(repo: &Repo, issue: &Issue) -> Value {
    issue_common(
        fixture(include_str!("../fixtures/issues.get.200.json")),
        repo,
        issue,
    )
}

pub fn issue_item(repo: &Repo, issue: &Issue) -> Value {
    issue_common(
        first(fixture(include_str!(
            "../fixtures/issues.list-for-repo.200.json"
        ))),
        repo,
        issue,
    )
}

pub fn comment(repo: &Repo, c: &Comment) -> Value {
    let mut v = fixture(include_str!("../fixtures/issues.create-comment.201.json"));
    set(&mut v, "id", json!(c.id));
    set(&mut v, "node_id", json!(format!("IC_{}", c.id)));
    set(
        &mut v,
        "url",
        json!(format!(
            "{API}/repos/{}/issues/comments/{}",
            repo.full_name(),
            c.id
        )),
    );
    set(
        &mut v,
        "html_url",
        json!(format!(
            "{WEB}/{}/issues/{}#issuecomment-{}",
            repo.full_name(),
            c.issue,
            c.id
        )),
    );
    set(&mut v, "body", json!(c.body));
    set(&mut v, "user", user(&c.author));
    set(&mut v, "created_at", ts(c.created_at));
    set(&mut v, "updated_at", ts(c.updated_at));
    set(
        &mut v,
        "issue_url",
        json!(format!(
            "{API}/repos/{}/issues/{}",
            repo.full_name(),
            c.issue
        )),
    );
    set(
        &mut v,
        "author_association",
        json!(repo.association(&c.author)),
    );
    v
}

/// An entry of `/issues/{n}/events`.
pub fn issue_event(repo: &Repo, e: &Event) -> Value {
    let mut v = first(fixture(include_str!(
        "../fixtures/issues.list-events.200.json"
    )));
    event_common(&mut v, repo, e);
    v
}

fn event_common(v: &mut Value, repo: &Repo, e: &Event) {
    set(v, "id", json!(e.id));
    set(v, "node_id", json!(format!("E_{}", e.id)));
    set(
        v,
        "url",
        json!(format!(
            "{API}/repos/{}/issues/events/{}",
            repo.full_name(),
            e.id
        )),
    );
    set(v, "actor", user(&e.actor));
    set(v, "commit_id", Value::Null);
    set(v, "commit_url", Value::Null);
    set(v, "created_at", ts(e.at));
    set(v, "performed_via_github_app", Value::Null);
    let Some(map) = v.as_object_mut() else { return };
    map.remove("label");
    map.remove("rename");
    match &e.kind {
        EventKind::Labeled(name) | EventKind::Unlabeled(name) => {
            let event = if matches!(e.kind, EventKind::Labeled(_)) {
                "labeled"
            } else {
                "unlabeled"
            };
            map.insert("event".into(), json!(event));
            let color = label(repo, name)["color"].clone();
            map.insert("label".into(), json!({"name": name, "color": color}));
        }
        EventKind::Renamed { from, to } => {
            map.insert("event".into(), json!("renamed"));
            map.insert("rename".into(), json!({"from": from, "to": to}));
        }
        EventKind::Closed => {
            map.insert("event".into(), json!("closed"));
        }
        EventKind::Reopened => {
            map.insert("event".into(), json!("reopened"));
        }
    }
}

/// An entry of `/issues/{n}/timeline`: events plus comments, in time order.
pub fn timeline_event(repo: &Repo, e: &Event) -> Value {
    let items = fixture(include_str!(
        "../fixtures/issues.list-events-for-timeline.200.json"
    ));
    let mut v = items
        .as_array()
        .and_then(|a| a.iter().find(|i| i["event"] == "labeled").cloned())
        .unwrap_or_else(|| json!({}));
    event_common(&mut v, repo, e);
    v
}

pub fn timeline_comment(repo: &Repo, c: &Comment) -> Value {
    let items = fixture(include_str!(
        "../fixtures/issues.list-events-for-timeline.200.json"
    ));
    let mut v = items
        .as_array()
        .and_then(|a| a.iter().find(|i| i["event"] == "commented").cloned())
        .unwrap_or_else(|| json!({}));
    let base = comment(repo, c);
    if let (Some(target), Some(source)) = (v.as_object_mut(), base.as_object()) {
        for key in [
            "url",
            "html_url",
            "issue_url",
            "id",
            "node_id",
            "user",
            "created_at",
            "updated_at",
            "author_association",
            "body",
        ] {
            if let Some(value) = source.get(key) {
                target.insert(key.to_owned(), value.clone());
            }
        }
        target.insert("actor".into(), user(&c.author));
        target.insert("event".into(), json!("commented"));
    }
    v
}

fn branch_side(repo: &Repo, branch: &str, sha: &str) -> Value {
    json!({
        "label": format!("{}:{}", repo.owner, branch),
        "ref": branch,
        "sha": sha,
        "user": user(&repo.owner),
        "repo": repository(repo),
    })
}

fn pull_common(mut v: Value, repo: &Repo, p: &Pull, issue: &Issue) -> Value {
    replace_strings(&mut v, "octocat/Hello-World", &repo.full_name());
    let api = format!("{API}/repos/{}/pulls/{}", repo.full_name(), p.number);
    let html = format!("{WEB}/{}/pull/{}", repo.full_name(), p.number);
    set(&mut v, "url", json!(api));
    set(&mut v, "id", json!(p.id));
    set(&mut v, "node_id", json!(format!("PR_{}", p.id)));
    set(&mut v, "html_url", json!(html));
    set(&mut v, "diff_url", json!(format!("{html}.diff")));
    set(&mut v, "patch_url", json!(format!("{html}.patch")));
    set(
        &mut v,
        "issue_url",
        json!(format!(
            "{API}/repos/{}/issues/{}",
            repo.full_name(),
            p.number
        )),
    );
    set(&mut v, "number", json!(p.number));
    set(
        &mut v,
        "state",
        json!(if issue.open { "open" } else { "closed" }),
    );
    set(&mut v, "locked", json!(false));
    set(&mut v, "title", json!(issue.title));
    set(&mut v, "user", user(&issue.author));
    set(&mut v, "body", json!(issue.body));
    let labels: Vec<Value> = issue.labels.iter().map(|l| label(repo, l)).collect();
    set(&mut v, "labels", Value::Array(labels));
    set(&mut v, "milestone", Value::Null);
    set(&mut v, "created_at", ts(issue.created_at));
    set(&mut v, "updated_at", ts(issue.updated_at));
    set(
        &mut v,
        "closed_at",
        if issue.open {
            Value::Null
        } else {
            ts(issue.updated_at)
        },
    );
    set(&mut v, "merged_at", Value::Null);
    set(&mut v, "merge_commit_sha", Value::Null);
    set(&mut v, "assignee", Value::Null);
    set(&mut v, "assignees", json!([]));
    set(&mut v, "requested_reviewers", json!([]));
    set(&mut v, "requested_teams", json!([]));
    let head_sha = repo
        .refs
        .get(&format!("refs/heads/{}", p.head))
        .unwrap_or_default();
    let base_sha = repo
        .refs
        .get(&format!("refs/heads/{}", p.base))
        .unwrap_or_default();
    set(&mut v, "head", branch_side(repo, &p.head, &head_sha));
    set(&mut v, "base", branch_side(repo, &p.base, &base_sha));
    set(
        &mut v,
        "author_association",
        json!(repo.association(&issue.author)),
    );
    set(&mut v, "auto_merge", Value::Null);
    set(&mut v, "draft", json!(p.draft));
    v
}

pub fn pull(repo: &Repo, p: &Pull, issue: &Issue) -> Value {
    let mut v = pull_common(
        fixture(include_str!("../fixtures/pulls.create.201.json")),
        repo,
        p,
        issue,
    );
    set(&mut v, "merged", json!(false));
    set(&mut v, "mergeable", Value::Null);
    set(&mut v, "rebaseable", Value::Null);
    set(&mut v, "mergeable_state", json!("unknown"));
    set(&mut v, "merged_by", Value::Null);
    set(&mut v, "comments", json!(repo.comment_count(p.number)));
    set(&mut v, "maintainer_can_modify", json!(false));
    v
}

pub fn pull_item(repo: &Repo, p: &Pull, issue: &Issue) -> Value {
    pull_common(
        first(fixture(include_str!("../fixtures/pulls.list.200.json"))),
        repo,
        p,
        issue,
    )
}

/// A Git database commit: GitHub's `git-commit` example (for a create) or `git-commit-2` (for a
/// read), with the model's values.
pub fn git_commit(repo: &Repo, commit: &crate::model::Commit, created: bool) -> Value {
    let mut v = if created {
        fixture(include_str!("../fixtures/git.create-commit.201.json"))
    } else {
        fixture(include_str!("../fixtures/git.get-commit.200.json"))
    };
    let base = format!("{API}/repos/{}", repo.full_name());
    let html = format!("https://github.com/{}", repo.full_name());
    set(&mut v, "sha", json!(commit.sha));
    set(
        &mut v,
        "node_id",
        json!(format!("C_{}", stable_id(&commit.sha))),
    );
    set(
        &mut v,
        "url",
        json!(format!("{base}/git/commits/{}", commit.sha)),
    );
    set(
        &mut v,
        "html_url",
        json!(format!("{html}/commit/{}", commit.sha)),
    );
    let person = json!({
        "date": ts(commit.date),
        "name": commit.author_name,
        "email": commit.author_email,
    });
    set(&mut v, "author", person.clone());
    set(&mut v, "committer", person);
    set(&mut v, "message", json!(commit.message));
    set(
        &mut v,
        "tree",
        json!({"url": format!("{base}/git/trees/{}", commit.tree), "sha": commit.tree}),
    );
    set(
        &mut v,
        "parents",
        json!(
            commit
                .parents
                .iter()
                .map(|p| json!({
                    "url": format!("{base}/git/commits/{p}"),
                    "sha": p,
                    "html_url": format!("{html}/commit/{p}"),
                }))
                .collect::<Vec<_>>()
        ),
    );
    v
}

pub fn git_ref(repo: &Repo, name: &str, sha: &str) -> Value {
    let mut v = fixture(include_str!("../fixtures/git.get-ref.200.json"));
    set(&mut v, "ref", json!(name));
    set(&mut v, "node_id", json!(format!("REF_{}", stable_id(name))));
    set(
        &mut v,
        "url",
        json!(format!("{API}/repos/{}/git/{}", repo.full_name(), name)),
    );
    set(
        &mut v,
        "object",
        json!({
            "type": "commit",
            "sha": sha,
            "url": format!("{API}/repos/{}/git/commits/{}", repo.full_name(), sha),
        }),
    );
    v
}

pub fn permission(role: &str, login: &str) -> Value {
    let mut v = fixture(include_str!(
        "../fixtures/repos.get-collaborator-permission-level.200.json"
    ));
    // `permission` folds roles into GitHub's four legacy values (PITFALLS §1).
    let legacy = match role {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "triage" | "read" => "read",
        "none" => "none",
        _ => "read",
    };
    set(&mut v, "permission", json!(legacy));
    set(&mut v, "role_name", json!(role));
    let mut u = user(login);
    // The schema's collaborator object carries `role_name` (the documented example predates it).
    set(&mut u, "role_name", json!(role));
    set(&mut v, "user", u);
    v
}

pub fn rate_limit(limit: u64, remaining: u64, reset: i64) -> Value {
    let mut v = fixture(include_str!("../fixtures/rate-limit.get.200.json"));
    let core =
        json!({"limit": limit, "remaining": remaining, "reset": reset, "used": limit - remaining});
    if let Some(resources) = v.get_mut("resources") {
        set(resources, "core", core.clone());
    }
    set(&mut v, "rate", core);
    v
}

/// Error bodies: real ones where the fixtures have them.
pub mod errors {
    use super::*;

    pub fn not_found() -> Value {
        fixture(include_str!("../fixtures/errors.404.not-found.json"))
    }
    pub fn bad_credentials() -> Value {
        fixture(include_str!("../fixtures/errors.401.bad-credentials.json"))
    }
    pub fn primary_rate_limit() -> Value {
        fixture(include_str!(
            "../fixtures/errors.403.rate-limit-primary.json"
        ))
    }
    pub fn secondary_rate_limit() -> Value {
        fixture(include_str!(
            "../fixtures/errors.403.rate-limit-secondary.json"
        ))
    }
    pub fn problems_parsing_json() -> Value {
        fixture(include_str!(
            "../fixtures/errors.400.problems-parsing-json.json"
        ))
    }
    pub fn reference_already_exists() -> Value {
        fixture(include_str!(
            "../fixtures/errors.422.reference-already-exists.json"
        ))
    }
    pub fn not_fast_forward() -> Value {
        fixture(include_str!(
            "../fixtures/errors.422.update-not-fast-forward.json"
        ))
    }
    pub fn pull_request_already_exists(owner: &str, branch: &str) -> Value {
        let mut v = fixture(include_str!(
            "../fixtures/errors.422.pull-request-already-exists.json"
        ));
        set(
            &mut v["errors"][0],
            "message",
            json!(format!(
                "A pull request already exists for {owner}:{branch}."
            )),
        );
        v
    }
    /// Not in the fixtures: the already-exists shape with GitHub's draft message (PITFALLS §9).
    pub fn drafts_not_supported() -> Value {
        let mut v = fixture(include_str!(
            "../fixtures/errors.422.pull-request-already-exists.json"
        ));
        set(
            &mut v["errors"][0],
            "message",
            json!("Draft pull requests are not supported in this repository."),
        );
        v
    }
    /// The validation-failed shape with one custom error message.
    pub fn validation(resource: &str, message: &str) -> Value {
        let mut v = fixture(include_str!(
            "../fixtures/errors.422.validation-failed.json"
        ));
        set(
            &mut v,
            "errors",
            json!([{"resource": resource, "code": "custom", "message": message}]),
        );
        set(
            &mut v,
            "documentation_url",
            json!("https://docs.github.com/rest"),
        );
        v
    }
    pub fn message(message: &str) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), json!(message));
        m.insert(
            "documentation_url".into(),
            json!("https://docs.github.com/rest"),
        );
        Value::Object(m)
    }
}
