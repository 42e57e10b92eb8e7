//! The parts of GitHub's JSON the forge reads, leniently: unknown fields ignored, optional what
//! GitHub may leave out or null.

use jiff::Timestamp;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub login: String,
}

/// An issue's label: GitHub's schema allows a bare name or an object.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Label {
    Name(String),
    Object { name: Option<String> },
}

impl Label {
    pub fn name(&self) -> Option<&str> {
        match self {
            Label::Name(n) => Some(n),
            Label::Object { name } => name.as_deref(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub user: Option<User>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Present on pull requests, which the issues API lists too.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl Issue {
    pub fn label_names(&self) -> Vec<String> {
        self.labels
            .iter()
            .filter_map(Label::name)
            .map(str::to_owned)
            .collect()
    }

    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Repo {
    pub default_branch: String,
    pub clone_url: String,
    pub html_url: String,
    #[serde(default)]
    pub private: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GitObject {
    pub sha: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GitRef {
    pub object: GitObject,
}

/// A commit from the Git database API (`/git/commits`).
#[derive(Clone, Debug, Deserialize)]
pub struct GitCommit {
    pub sha: String,
    pub message: String,
    pub tree: GitObject,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Branch {
    #[serde(rename = "ref")]
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Pull {
    pub number: u64,
    pub html_url: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub draft: Option<bool>,
    pub head: Branch,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Comment {
    pub id: u64,
    pub html_url: String,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PermissionLevel {
    pub permission: String,
    #[serde(default)]
    pub role_name: Option<String>,
}

/// One timeline entry: events (`labeled`, `renamed`, …) and comments (`commented`) alike.
#[derive(Clone, Debug, Deserialize)]
pub struct TimelineItem {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub actor: Option<User>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub label: Option<TimelineLabel>,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TimelineLabel {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Installation {
    pub id: u64,
}
