//! Whether a `loop:*` label on an issue may be acted on: who applied it last, with what
//! permission, and whether the body changed under it afterwards.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::facts::{CandidateFacts, Permission};

/// The verdict on one label of one issue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum TrustDecision {
    Trusted(TrustedLabel),
    Untrusted(Distrust),
}

impl TrustDecision {
    pub fn is_trusted(&self) -> bool {
        matches!(self, TrustDecision::Trusted(_))
    }
}

/// A label whose most recent application was made by an account that can write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrustedLabel {
    pub label: String,
    pub applied_by: String,
    pub applied_at: Timestamp,
    pub permission: Permission,
}

/// Why a label does not count, with what a person would need to know to fix it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distrust {
    pub label: String,
    pub reason: DistrustReason,
    /// One line for logs and reports.
    pub detail: String,
    /// Tell the issue, once, why it is not picked up (see [`crate::trust_comment`]).
    pub say_so_in_comment: bool,
    pub applied_by: Option<String>,
    pub applied_at: Option<Timestamp>,
    pub applier_permission: Option<Permission>,
    pub edited_by: Option<String>,
    pub edited_at: Option<Timestamp>,
}

/// Why a label is not trusted. Ids are stable (`snake_case`), for logs and JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistrustReason {
    /// The label is not on the issue.
    NotPresent,
    /// The label is on the issue but no `labeled` event for it is known.
    NoLabelEvent,
    /// The account that applied it last has no known permission (deleted account, lookup failed).
    UnknownPermission,
    /// The account that applied it last has read or triage permission only.
    ApplierCannotWrite,
    /// The body was edited after the label was applied, by an account that cannot write.
    BodyEditedAfterLabel,
}

impl DistrustReason {
    pub fn id(self) -> &'static str {
        match self {
            DistrustReason::NotPresent => "not_present",
            DistrustReason::NoLabelEvent => "no_label_event",
            DistrustReason::UnknownPermission => "unknown_permission",
            DistrustReason::ApplierCannotWrite => "applier_cannot_write",
            DistrustReason::BodyEditedAfterLabel => "body_edited_after_label",
        }
    }
}

/// Label names compare as GitHub compares them: without regard to ASCII case.
pub(crate) fn same_label(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The known permission of `login` (GitHub logins are case-insensitive); `None` when unknown.
fn permission_of(facts: &CandidateFacts, login: &str) -> Option<Permission> {
    if login.trim().is_empty() {
        return None;
    }
    facts.permissions.get(login).copied().or_else(|| {
        facts
            .permissions
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(login))
            .map(|(_, p)| *p)
    })
}

/// Decides whether `label` on the issue may be acted on.
///
/// It counts only when the most recent `labeled` event for it was made by an account with write,
/// maintain or admin permission; an unknown actor or permission is untrusted. When the body was
/// edited at or after that moment by an account without write permission, the label does not count
/// until it is applied again, and the decision asks for one comment saying so.
pub fn label_trust(facts: &CandidateFacts, label: &str) -> TrustDecision {
    let untrusted = |reason, detail: String| Distrust {
        label: label.to_owned(),
        reason,
        detail,
        say_so_in_comment: false,
        applied_by: None,
        applied_at: None,
        applier_permission: None,
        edited_by: None,
        edited_at: None,
    };
    if !facts.issue.labels.iter().any(|l| same_label(l, label)) {
        return TrustDecision::Untrusted(untrusted(
            DistrustReason::NotPresent,
            format!("`{label}` is not on the issue"),
        ));
    }
    // The latest application wins; on equal times the later event in the list does.
    let Some(applied) = facts
        .label_events
        .iter()
        .filter(|e| e.added && same_label(&e.label, label))
        .max_by_key(|e| e.at)
    else {
        return TrustDecision::Untrusted(untrusted(
            DistrustReason::NoLabelEvent,
            format!("no `labeled` event is known for `{label}`, so who applied it is unknown"),
        ));
    };
    let base = Distrust {
        applied_by: Some(applied.actor.clone()),
        applied_at: Some(applied.at),
        ..untrusted(DistrustReason::UnknownPermission, String::new())
    };
    let permission = match permission_of(facts, &applied.actor) {
        None => {
            return TrustDecision::Untrusted(Distrust {
                detail: format!(
                    "`{label}` was last applied by `{}`, whose permission on the repository is unknown",
                    applied.actor
                ),
                ..base
            });
        }
        Some(p) if !p.can_write() => {
            return TrustDecision::Untrusted(Distrust {
                reason: DistrustReason::ApplierCannotWrite,
                detail: format!(
                    "`{label}` was last applied by `{}`, who has `{}` permission; only write, maintain or admin count",
                    applied.actor,
                    p.as_str()
                ),
                applier_permission: Some(p),
                ..base
            });
        }
        Some(p) => p,
    };
    let untrusted_edit = facts
        .body_edits
        .iter()
        .filter(|edit| edit.at >= applied.at)
        .filter(|edit| !permission_of(facts, &edit.actor).is_some_and(Permission::can_write))
        .max_by_key(|edit| edit.at);
    if let Some(edit) = untrusted_edit {
        return TrustDecision::Untrusted(Distrust {
            reason: DistrustReason::BodyEditedAfterLabel,
            detail: format!(
                "the body was edited by `{}` at {} after `{label}` was applied at {}, and `{}` cannot write; apply `{label}` again to retry",
                edit.actor, edit.at, applied.at, edit.actor
            ),
            say_so_in_comment: true,
            applier_permission: Some(permission),
            edited_by: Some(edit.actor.clone()),
            edited_at: Some(edit.at),
            ..base
        });
    }
    TrustDecision::Trusted(TrustedLabel {
        label: label.to_owned(),
        applied_by: applied.actor.clone(),
        applied_at: applied.at,
        permission,
    })
}

/// The issue's labels that start with `prefix` (ASCII case-insensitively) and are trusted, in the
/// issue's order, each once. Only these count for pickup, priority and budget labels.
pub fn trusted_labels(facts: &CandidateFacts, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in &facts.issue.labels {
        let has_prefix = label
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
        if has_prefix
            && !out.iter().any(|seen| same_label(seen, label))
            && label_trust(facts, label).is_trusted()
        {
            out.push(label.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{issue, ts};

    const APPROVED: &str = "loop:approved";

    fn base() -> crate::testkit::FactsBuilder {
        issue("o/r", 1, "2024-12-01T00:00:00Z")
    }

    fn reason(facts: &CandidateFacts) -> Option<DistrustReason> {
        match label_trust(facts, APPROVED) {
            TrustDecision::Trusted(_) => None,
            TrustDecision::Untrusted(d) => Some(d.reason),
        }
    }

    #[test]
    fn table() {
        use DistrustReason::*;
        let t0 = "2025-01-01T00:00:00Z";
        let t1 = "2025-01-01T01:00:00Z";
        let t2 = "2025-01-01T02:00:00Z";
        let cases: Vec<(&str, CandidateFacts, Option<DistrustReason>)> = vec![
            (
                "maintainer applied it",
                base().label(APPROVED, "maint", t0).build(),
                None,
            ),
            (
                "writer applied it",
                base().label(APPROVED, "alice", t0).build(),
                None,
            ),
            (
                "admin applied it",
                base()
                    .permission("root", Permission::Admin)
                    .label(APPROVED, "root", t0)
                    .build(),
                None,
            ),
            (
                "reader applied it (issue form)",
                base().label(APPROVED, "reader", t0).build(),
                Some(ApplierCannotWrite),
            ),
            (
                "triager applied it",
                base().label(APPROVED, "triager", t0).build(),
                Some(ApplierCannotWrite),
            ),
            (
                "explicit none permission",
                base()
                    .permission("x", Permission::None)
                    .label(APPROVED, "x", t0)
                    .build(),
                Some(ApplierCannotWrite),
            ),
            (
                "unknown account",
                base().label(APPROVED, "stranger", t0).build(),
                Some(UnknownPermission),
            ),
            (
                "deleted account (empty login)",
                base().label(APPROVED, "", t0).build(),
                Some(UnknownPermission),
            ),
            ("label absent", base().build(), Some(NotPresent)),
            (
                "label removed again",
                base()
                    .label(APPROVED, "maint", t0)
                    .unlabel(APPROVED, "maint", t1)
                    .build(),
                Some(NotPresent),
            ),
            (
                "no event known",
                base().bare_label(APPROVED).build(),
                Some(NoLabelEvent),
            ),
            (
                "only the most recent application counts (reader re-applied)",
                base()
                    .label(APPROVED, "maint", t0)
                    .unlabel(APPROVED, "reader", t1)
                    .label(APPROVED, "reader", t2)
                    .build(),
                Some(ApplierCannotWrite),
            ),
            (
                "a maintainer re-applying makes it count",
                base()
                    .label(APPROVED, "reader", t0)
                    .unlabel(APPROVED, "maint", t1)
                    .label(APPROVED, "maint", t2)
                    .build(),
                None,
            ),
            (
                "events out of order: the latest time wins",
                base()
                    .label(APPROVED, "maint", t2)
                    .label(APPROVED, "reader", t0)
                    .build(),
                None,
            ),
            (
                "body edited after labelling by a reader",
                base()
                    .label(APPROVED, "maint", t0)
                    .edit("reader", t1)
                    .build(),
                Some(BodyEditedAfterLabel),
            ),
            (
                "body edited at the same instant counts as after",
                base()
                    .label(APPROVED, "maint", t0)
                    .edit("reader", t0)
                    .build(),
                Some(BodyEditedAfterLabel),
            ),
            (
                "body edited after labelling by an unknown account",
                base()
                    .label(APPROVED, "maint", t0)
                    .edit("ghost", t1)
                    .build(),
                Some(BodyEditedAfterLabel),
            ),
            (
                "body edited after labelling by a writer",
                base()
                    .label(APPROVED, "maint", t0)
                    .edit("alice", t1)
                    .build(),
                None,
            ),
            (
                "body edited before labelling by a reader",
                base()
                    .edit("reader", t0)
                    .label(APPROVED, "maint", t1)
                    .build(),
                None,
            ),
            (
                "relabelling after the edit makes it count again",
                base()
                    .label(APPROVED, "maint", t0)
                    .edit("reader", t1)
                    .unlabel(APPROVED, "maint", t1)
                    .label(APPROVED, "maint", t2)
                    .build(),
                None,
            ),
            (
                "label and login compare without ASCII case",
                base().label("Loop:Approved", "MAINT", t0).build(),
                None,
            ),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(reason(&facts), expected, "{name}");
        }
    }

    #[test]
    fn body_edit_distrust_asks_for_one_comment_and_names_both_sides() {
        let facts = base()
            .label(APPROVED, "maint", "2025-01-01T00:00:00Z")
            .edit("reader", "2025-01-01T00:30:00Z")
            .edit("reader", "2025-01-01T01:00:00Z")
            .build();
        let TrustDecision::Untrusted(d) = label_trust(&facts, APPROVED) else {
            panic!("an edit by a reader after the label must not be trusted");
        };
        assert!(d.say_so_in_comment);
        assert_eq!(d.applied_by.as_deref(), Some("maint"));
        assert_eq!(d.edited_by.as_deref(), Some("reader"));
        assert_eq!(
            d.edited_at,
            Some(ts("2025-01-01T01:00:00Z")),
            "the latest edit is reported"
        );
        assert_eq!(d.reason.id(), "body_edited_after_label");
    }

    #[test]
    fn an_untrusted_applier_is_logged_not_commented() {
        let facts = base()
            .label(APPROVED, "reader", "2025-01-01T00:00:00Z")
            .build();
        let TrustDecision::Untrusted(d) = label_trust(&facts, APPROVED) else {
            panic!("a reader's label must not be trusted");
        };
        assert!(!d.say_so_in_comment);
        assert_eq!(d.applier_permission, Some(Permission::Read));
        assert!(
            d.detail.contains("`reader`") && d.detail.contains("`read`"),
            "{}",
            d.detail
        );
    }

    #[test]
    fn trusted_labels_keeps_only_trusted_prefixed_labels_once() {
        let t = "2025-01-01T00:00:00Z";
        let facts = base()
            .label(APPROVED, "maint", t)
            .label("loop:budget-xl", "reader", t)
            .label("loop:p1", "alice", t)
            .label("bug", "maint", t)
            .bare_label("loop:mystery")
            .bare_label("LOOP:P1")
            .build();
        assert_eq!(
            trusted_labels(&facts, "loop:"),
            ["loop:approved", "loop:p1"]
        );
    }
}
