//! What the forge knows about a candidate issue: the plain data every triage decision is made from.

use std::collections::BTreeMap;

use issueloop_config::RepoName;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An account's permission on a repository, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// Write, maintain and admin may push; only their `loop:*` labels are trusted.
    pub fn can_write(self) -> bool {
        matches!(
            self,
            Permission::Write | Permission::Maintain | Permission::Admin
        )
    }

    /// The name GitHub uses: `none`, `read`, `triage`, `write`, `maintain`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::None => "none",
            Permission::Read => "read",
            Permission::Triage => "triage",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }
}

/// An open issue as the forge reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    #[serde(with = "repo_name_text")]
    pub repo: RepoName,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub author: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Issue {
    /// The issue with its text made safe to carry anywhere (a terminal, a log line, a commit
    /// message, a PR title, the forge's API): the title on one line without control or bidi
    /// characters (a `\r` becomes a space, so nothing before it is lost), the body without NUL,
    /// escape sequences or bidi controls (newlines and tabs kept). Pure; applied at selection,
    /// before any money is spent.
    pub fn normalized(&self) -> Issue {
        Issue {
            title: issueloop_config::clean_line(&self.title),
            body: issueloop_config::clean_multiline(&self.body),
            author: issueloop_config::clean_line(&self.author),
            ..self.clone()
        }
    }

    /// Why the issue's text cannot be worked on even after [`Issue::normalized`], if it cannot:
    /// a title with nothing printable left names nothing for a branch, a commit or a PR.
    pub fn unusable_text(&self) -> Option<String> {
        if issueloop_config::clean_line(&self.title).is_empty() {
            return Some(
                "the title has no printable text once control characters are removed; give the issue a title"
                    .to_owned(),
            );
        }
        None
    }
}

/// One `labeled` (`added`) or `unlabeled` event from the issue's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelEvent {
    pub label: String,
    pub actor: String,
    pub at: Timestamp,
    pub added: bool,
}

/// One edit of the issue body after creation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BodyEdit {
    pub actor: String,
    pub at: Timestamp,
}

/// An open pull request issueloop opened for an issue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrRef {
    pub number: u64,
    pub url: String,
    pub branch: String,
    pub draft: bool,
}

/// The in-progress claim on an issue (label or branch) and when it was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimFacts {
    pub at: Timestamp,
    pub by_us: bool,
    /// The claim's lease, when the forge holds a record of it (see [`crate::claim_state`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<crate::LeaseFacts>,
}

/// Everything selection needs to know about one issue, gathered by the forge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateFacts {
    pub issue: Issue,
    /// `labeled`/`unlabeled` events, oldest first.
    pub label_events: Vec<LabelEvent>,
    /// Known edits of the issue body after creation.
    pub body_edits: Vec<BodyEdit>,
    /// Actor login to permission on the issue's repository.
    pub permissions: BTreeMap<String, Permission>,
    /// An open PR from issueloop for this issue.
    pub open_pr: Option<PrRef>,
    /// The in-progress label/branch, if present.
    pub claim: Option<ClaimFacts>,
}

impl CandidateFacts {
    /// The facts with the issue's text normalized (see [`Issue::normalized`]).
    pub fn normalized(mut self) -> CandidateFacts {
        self.issue = self.issue.normalized();
        self
    }
}

/// `RepoName` as its `owner/name` text (the config crate gives it `Serialize` only).
mod repo_name_text {
    use issueloop_config::RepoName;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(repo: &RepoName, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(repo)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RepoName, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_through_json_with_the_repository_as_text() {
        let facts = crate::testkit::issue("octo/hello-world", 7, "2025-01-01T00:00:00Z")
            .approved()
            .edit("reader", "2025-01-01T01:00:00Z")
            .open_pr(9)
            .claim("2025-01-01T02:00:00Z")
            .build();
        let json = serde_json::to_value(&facts).expect("facts serialize");
        assert_eq!(json["issue"]["repo"], "octo/hello-world");
        assert_eq!(json["permissions"]["maint"], "maintain");
        let back: CandidateFacts = serde_json::from_value(json).expect("facts deserialize");
        assert_eq!(back, facts);

        let bad = serde_json::json!({"repo": "not a repo", "number": 1, "title": "", "body": "",
            "labels": [], "author": "", "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z"});
        let err =
            serde_json::from_value::<Issue>(bad).expect_err("an invalid repository is refused");
        assert!(err.to_string().contains("not a repo"), "{err}");
    }

    #[test]
    fn issue_text_is_normalized_or_refused() {
        let base = crate::testkit::issue("octo/hello-world", 7, "2025-01-01T00:00:00Z")
            .build()
            .issue;
        // (title, body) → (normalized title, normalized body, refused)
        let cases: [(&str, &str, &str, &str, bool); 7] = [
            ("Plain", "body\n- item", "Plain", "body\n- item", false),
            ("Nul\u{0} in title", "a\u{0}b", "Nul in title", "ab", false),
            (
                "\u{1b}[31mRed\u{1b}[0m title",
                "\u{1b}]0;set title\u{7}text",
                "Red title",
                "text",
                false,
            ),
            (
                "keep\rall",
                "line\r\nnext\rthird",
                "keep all",
                "line\nnext\nthird",
                false,
            ),
            (
                "rtl \u{202E}gpj.exe",
                "x\u{2066}y",
                "rtl gpj.exe",
                "xy",
                false,
            ),
            ("\u{0}\u{1b}[2J\u{7}", "body", "", "body", true),
            ("  ", "", "", "", true),
        ];
        for (title, body, want_title, want_body, refused) in cases {
            let issue = Issue {
                title: title.into(),
                body: body.into(),
                ..base.clone()
            };
            let n = issue.normalized();
            assert_eq!(n.title, want_title, "{title:?}");
            assert_eq!(n.body, want_body, "{body:?}");
            assert_eq!(issue.unusable_text().is_some(), refused, "{title:?}");
            assert_eq!(n.normalized(), n, "normalizing twice changes nothing");
        }
    }

    #[test]
    fn only_write_maintain_and_admin_can_write() {
        use Permission::*;
        let writers: Vec<Permission> = [None, Read, Triage, Write, Maintain, Admin]
            .into_iter()
            .filter(|p| p.can_write())
            .collect();
        assert_eq!(writers, [Write, Maintain, Admin]);
        assert!(Read < Write && Write < Admin);
    }
}
