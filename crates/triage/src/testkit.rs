//! Builders for candidate facts and a real configuration, shared by this crate's unit tests.

use std::path::Path;

use issueloop_config::Config;
use jiff::Timestamp;

use crate::facts::{BodyEdit, CandidateFacts, ClaimFacts, Issue, LabelEvent, Permission, PrRef};

pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("test timestamps are valid RFC 3339")
}

/// The configuration issueloop would load, with priority labels `loop:p1`, `loop:p2`.
pub fn config() -> Config {
    let text = "repos = [\"o/r\"]\n[labels]\npriority = [\"loop:p1\", \"loop:p2\"]\n";
    issueloop_config::load_str(text, Path::new("issueloop.toml")).expect("the test config is valid")
}

pub struct FactsBuilder(CandidateFacts);

/// An issue in `repo` opened at `created`, with no labels; `maint` (maintain), `alice` (write),
/// `reader` (read) and `triager` (triage) have known permissions.
pub fn issue(repo: &str, number: u64, created: &str) -> FactsBuilder {
    let at = ts(created);
    FactsBuilder(CandidateFacts {
        issue: Issue {
            repo: repo.parse().expect("test repositories are valid"),
            number,
            title: format!("Issue {number}"),
            body: String::new(),
            labels: Vec::new(),
            author: "reader".into(),
            created_at: at,
            updated_at: at,
        },
        label_events: Vec::new(),
        body_edits: Vec::new(),
        permissions: [
            ("maint", Permission::Maintain),
            ("alice", Permission::Write),
            ("reader", Permission::Read),
            ("triager", Permission::Triage),
        ]
        .into_iter()
        .map(|(login, p)| (login.to_owned(), p))
        .collect(),
        open_pr: None,
        claim: None,
    })
}

impl FactsBuilder {
    /// `actor` applies `label` at `at` (the label is on the issue afterwards).
    pub fn label(mut self, label: &str, actor: &str, at: &str) -> Self {
        if !self.0.issue.labels.iter().any(|l| l == label) {
            self.0.issue.labels.push(label.to_owned());
        }
        self.event(label, actor, at, true)
    }

    /// `actor` removes `label` at `at`.
    pub fn unlabel(mut self, label: &str, actor: &str, at: &str) -> Self {
        self.0.issue.labels.retain(|l| l != label);
        self.event(label, actor, at, false)
    }

    fn event(mut self, label: &str, actor: &str, at: &str, added: bool) -> Self {
        self.0.label_events.push(LabelEvent {
            label: label.to_owned(),
            actor: actor.to_owned(),
            at: ts(at),
            added,
        });
        self
    }

    /// The label is on the issue but no event for it is known.
    pub fn bare_label(mut self, label: &str) -> Self {
        self.0.issue.labels.push(label.to_owned());
        self
    }

    pub fn approved(self) -> Self {
        self.label("loop:approved", "maint", "2025-01-01T00:00:00Z")
    }

    pub fn edit(mut self, actor: &str, at: &str) -> Self {
        self.0.body_edits.push(BodyEdit {
            actor: actor.to_owned(),
            at: ts(at),
        });
        self
    }

    pub fn permission(mut self, login: &str, permission: Permission) -> Self {
        self.0.permissions.insert(login.to_owned(), permission);
        self
    }

    pub fn open_pr(mut self, number: u64) -> Self {
        self.0.open_pr = Some(PrRef {
            number,
            url: format!("https://github.com/o/r/pull/{number}"),
            branch: format!("loop/{}-x", self.0.issue.number),
            draft: true,
        });
        self
    }

    pub fn claim(mut self, at: &str) -> Self {
        self.0.claim = Some(ClaimFacts {
            at: ts(at),
            by_us: true,
            lease: None,
        });
        self
    }

    /// A lease on the claim (call after [`Self::claim`]).
    pub fn lease(mut self, expires: &str, ttl_secs: u64) -> Self {
        if let Some(claim) = &mut self.0.claim {
            claim.lease = Some(crate::LeaseFacts {
                holder: "other-run".into(),
                expires: ts(expires),
                ttl: std::time::Duration::from_secs(ttl_secs),
            });
        }
        self
    }

    pub fn build(self) -> CandidateFacts {
        self.0
    }
}
