//! Building an issue's [`CandidateFacts`] from what GitHub returned, pure.
//!
//! Body edits: GitHub's REST API keeps no history of body edits (no timeline event, no editor).
//! Two signs are used, both reported with the actor [`UNKNOWN_ACTOR`] (no permission, so never
//! trusted): the body changed between two polls (its digest differs), or the issue's `updated_at`
//! is later than anything on its timeline explains (labels, comments, renames… all carry a time).

use std::collections::BTreeMap;
use std::time::Duration;

use issueloop_config::{Labels, RepoName};
use issueloop_publish::{marked_issue, takeover_comment_marker};
use issueloop_triage::{
    BodyEdit, CandidateFacts, ClaimFacts, Issue, LabelEvent, Permission, PrRef,
};
use jiff::Timestamp;

use super::wire;
use crate::UNKNOWN_ACTOR;
use crate::clock::add;
use crate::poll::{CachedIssue, body_digest};

/// How much later than its last timeline entry an issue's `updated_at` may be without counting
/// as an unexplained change (GitHub stamps related writes a moment apart).
pub const UPDATE_TOLERANCE: Duration = Duration::from_secs(2);

pub fn label_events(timeline: &[wire::TimelineItem]) -> Vec<LabelEvent> {
    let mut events: Vec<LabelEvent> = timeline
        .iter()
        .filter_map(|item| {
            let added = match item.event.as_deref()? {
                "labeled" => true,
                "unlabeled" => false,
                _ => return None,
            };
            Some(LabelEvent {
                label: item.label.as_ref()?.name.clone(),
                actor: item.actor.as_ref()?.login.clone(),
                at: item.created_at?,
                added,
            })
        })
        .collect();
    // Stable: equal times keep GitHub's order.
    events.sort_by_key(|e| e.at);
    events
}

/// The latest time the timeline accounts for.
fn explained_until(timeline: &[wire::TimelineItem], created_at: Timestamp) -> Timestamp {
    timeline
        .iter()
        .flat_map(|i| [i.created_at, i.updated_at])
        .flatten()
        .fold(created_at, Timestamp::max)
}

/// Body edits known for `issue`: those remembered from earlier polls, one when the body differs
/// from the last poll's, one when `updated_at` is unexplained by the timeline.
/// Whether two bodies read the same on GitHub: line endings and trailing whitespace aside
/// (GitHub may store `\r\n`). An update whose text is the same is not sent.
pub fn same_text(stored: &str, new: &str) -> bool {
    let norm = |s: &str| s.replace("\r\n", "\n").trim_end().to_owned();
    norm(stored) == norm(new)
}

pub fn body_edits(
    issue: &wire::Issue,
    timeline: &[wire::TimelineItem],
    previous: Option<&CachedIssue>,
) -> Vec<BodyEdit> {
    let mut edits: Vec<BodyEdit> = previous
        .map(|p| p.facts.body_edits.clone())
        .unwrap_or_default();
    let body = issue.body.as_deref().unwrap_or("");
    if previous.is_some_and(|p| p.body_digest != body_digest(body)) {
        edits.push(BodyEdit {
            actor: UNKNOWN_ACTOR.to_owned(),
            at: issue.updated_at,
        });
    }
    if issue.updated_at
        > add(
            explained_until(timeline, issue.created_at),
            UPDATE_TOLERANCE,
        )
    {
        edits.push(BodyEdit {
            actor: UNKNOWN_ACTOR.to_owned(),
            at: issue.updated_at,
        });
    }
    edits.sort_by_key(|e| e.at);
    edits.dedup();
    edits
}

/// Logins whose permission matters: who applied or removed a label with the prefix, and who
/// edited the body (when known).
pub fn actors_to_check(events: &[LabelEvent], edits: &[BodyEdit], prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .filter(|e| has_prefix(&e.label, prefix))
        .map(|e| e.actor.clone())
        .chain(edits.iter().map(|e| e.actor.clone()))
        .filter(|a| a != UNKNOWN_ACTOR && !a.trim().is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn has_prefix(label: &str, prefix: &str) -> bool {
    label
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The claim on the issue: the in-progress label, dated by its latest `labeled` event or the
/// latest takeover comment, whichever is later (a takeover refreshes the claim).
pub fn claim(
    issue: &wire::Issue,
    events: &[LabelEvent],
    timeline: &[wire::TimelineItem],
    labels: &Labels,
    by_us: bool,
) -> Option<ClaimFacts> {
    let names = issue.label_names();
    if !names
        .iter()
        .any(|l| l.eq_ignore_ascii_case(&labels.in_progress))
    {
        return None;
    }
    let labelled = events
        .iter()
        .filter(|e| e.added && e.label.eq_ignore_ascii_case(&labels.in_progress))
        .map(|e| e.at)
        .max();
    let marker = takeover_comment_marker(issue.number);
    let taken_over = timeline
        .iter()
        .filter(|i| i.event.as_deref() == Some("commented"))
        .filter(|i| i.body.as_deref().is_some_and(|b| b.contains(&marker)))
        .flat_map(|i| [i.created_at, i.updated_at])
        .flatten()
        .max();
    let at = labelled
        .into_iter()
        .chain(taken_over)
        .max()
        .unwrap_or(issue.updated_at);
    Some(ClaimFacts {
        at,
        by_us,
        lease: None,
    })
}

/// The open PR issueloop made for `issue`: its body carries the hidden marker, or its head is
/// the issue's branch (`<prefix><n>-…`).
pub fn open_pr_for(pulls: &[wire::Pull], issue: u64, branch_prefix: &str) -> Option<PrRef> {
    let own_branch = |name: &str| {
        name.strip_prefix(branch_prefix).is_some_and(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits == issue.to_string()
                && (rest.len() == digits.len() || rest[digits.len()..].starts_with('-'))
        })
    };
    pulls
        .iter()
        .find(|p| p.body.as_deref().and_then(marked_issue) == Some(issue))
        .or_else(|| pulls.iter().find(|p| own_branch(&p.head.name)))
        .map(pr_ref)
}

pub fn pr_ref(p: &wire::Pull) -> PrRef {
    PrRef {
        number: p.number,
        url: p.html_url.clone(),
        branch: p.head.name.clone(),
        draft: p.draft.unwrap_or(false),
    }
}

/// Everything together.
#[expect(
    clippy::too_many_arguments,
    reason = "assembles an issue's facts from every answer fetched for it"
)]
pub fn build(
    repo: &RepoName,
    issue: &wire::Issue,
    timeline: &[wire::TimelineItem],
    permissions: BTreeMap<String, Permission>,
    open_pr: Option<PrRef>,
    labels: &Labels,
    previous: Option<&CachedIssue>,
    by_us: bool,
) -> CachedIssue {
    let label_events = label_events(timeline);
    let body_edits = body_edits(issue, timeline, previous);
    let claim = claim(issue, &label_events, timeline, labels, by_us);
    let body = issue.body.clone().unwrap_or_default();
    CachedIssue {
        body_digest: body_digest(&body),
        facts: CandidateFacts {
            issue: Issue {
                repo: repo.clone(),
                number: issue.number,
                title: issue.title.clone(),
                body,
                labels: issue.label_names(),
                author: issue
                    .user
                    .as_ref()
                    .map(|u| u.login.clone())
                    .unwrap_or_default(),
                created_at: issue.created_at,
                updated_at: issue.updated_at,
            },
            label_events,
            body_edits,
            permissions,
            open_pr,
            claim,
        },
    }
}

/// GitHub's answer to the permission endpoint as a [`Permission`]: `role_name` carries the real
/// role (`permission` folds maintain into write and triage into read); a custom role falls back
/// to `permission` (PITFALLS §1).
pub fn permission_of(level: &wire::PermissionLevel) -> Permission {
    let from = |s: &str| match s {
        "admin" => Some(Permission::Admin),
        "maintain" => Some(Permission::Maintain),
        "write" | "push" => Some(Permission::Write),
        "triage" => Some(Permission::Triage),
        "read" | "pull" => Some(Permission::Read),
        "none" => Some(Permission::None),
        _ => None,
    };
    level
        .role_name
        .as_deref()
        .and_then(from)
        .or_else(|| from(&level.permission))
        .unwrap_or(Permission::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn item(event: &str, at: &str, label: Option<&str>, actor: &str) -> wire::TimelineItem {
        wire::TimelineItem {
            event: Some(event.into()),
            actor: Some(wire::User {
                login: actor.into(),
            }),
            created_at: Some(t(at)),
            updated_at: None,
            label: label.map(|l| wire::TimelineLabel { name: l.into() }),
            body: None,
        }
    }

    fn issue(updated: &str, body: &str) -> wire::Issue {
        wire::Issue {
            number: 7,
            title: "t".into(),
            body: Some(body.into()),
            state: "open".into(),
            labels: vec![wire::Label::Name("loop:approved".into())],
            user: Some(wire::User {
                login: "bob".into(),
            }),
            created_at: t("2025-01-01T00:00:00Z"),
            updated_at: t(updated),
            pull_request: None,
        }
    }

    #[test]
    fn same_text_table() {
        for (stored, new, same) in [
            ("a\nb", "a\nb", true),
            ("a\r\nb\r\n", "a\nb\n", true),
            ("a\nb\n\n", "a\nb", true),
            ("a\nb", "a\nc", false),
            ("  a", "a", false),
            ("", "x", false),
        ] {
            assert_eq!(same_text(stored, new), same, "{stored:?} vs {new:?}");
        }
    }

    #[test]
    fn permissions_follow_role_name_then_permission() {
        let p = |perm: &str, role: Option<&str>| {
            permission_of(&wire::PermissionLevel {
                permission: perm.into(),
                role_name: role.map(str::to_owned),
            })
        };
        assert_eq!(p("write", Some("maintain")), Permission::Maintain);
        assert_eq!(p("read", Some("triage")), Permission::Triage);
        assert_eq!(p("write", Some("release-manager")), Permission::Write);
        assert_eq!(p("admin", None), Permission::Admin);
        assert_eq!(p("none", Some("none")), Permission::None);
        assert_eq!(p("weird", None), Permission::None);
    }

    #[test]
    fn unexplained_update_is_an_edit_by_an_unknown_actor() {
        let timeline = vec![item(
            "labeled",
            "2025-01-01T01:00:00Z",
            Some("loop:approved"),
            "alice",
        )];
        // Explained by the label event (within tolerance): no edit.
        assert!(body_edits(&issue("2025-01-01T01:00:01Z", "b"), &timeline, None).is_empty());
        // An hour later, nothing on the timeline: an edit.
        let edits = body_edits(&issue("2025-01-01T02:00:00Z", "b"), &timeline, None);
        assert_eq!(
            edits,
            vec![BodyEdit {
                actor: UNKNOWN_ACTOR.into(),
                at: t("2025-01-01T02:00:00Z")
            }]
        );
        // A later comment explains the update, but a changed body since the last poll is still seen.
        let mut with_comment = timeline.clone();
        with_comment.push(item("commented", "2025-01-01T02:00:00Z", None, "carol"));
        assert!(body_edits(&issue("2025-01-01T02:00:00Z", "b"), &with_comment, None).is_empty());
        let previous = build(
            &"o/r".parse().unwrap(),
            &issue("2025-01-01T01:00:00Z", "a"),
            &timeline,
            BTreeMap::new(),
            None,
            &labels(),
            None,
            false,
        );
        let edits = body_edits(
            &issue("2025-01-01T02:00:00Z", "b"),
            &with_comment,
            Some(&previous),
        );
        assert_eq!(edits.len(), 1);
    }

    fn labels() -> Labels {
        issueloop_config::Config::builtin(".".into()).labels
    }

    #[test]
    fn claim_is_dated_by_label_or_takeover_comment() {
        let labels = labels();
        let mut i = issue("2025-01-01T05:00:00Z", "b");
        assert_eq!(claim(&i, &[], &[], &labels, false), None);
        i.labels.push(wire::Label::Name(labels.in_progress.clone()));
        let events = vec![LabelEvent {
            label: labels.in_progress.clone(),
            actor: "bot".into(),
            at: t("2025-01-01T03:00:00Z"),
            added: true,
        }];
        assert_eq!(
            claim(&i, &events, &[], &labels, true).unwrap().at,
            t("2025-01-01T03:00:00Z")
        );
        let mut comment = item("commented", "2025-01-01T04:00:00Z", None, "bot");
        comment.body = Some(format!("{}\ntaking over", takeover_comment_marker(7)));
        assert_eq!(
            claim(&i, &events, &[comment], &labels, false).unwrap().at,
            t("2025-01-01T04:00:00Z")
        );
    }

    #[test]
    fn open_pr_found_by_marker_or_branch() {
        let pull = |n: u64, head: &str, body: &str| wire::Pull {
            number: n,
            html_url: format!("https://github.com/o/r/pull/{n}"),
            body: Some(body.into()),
            draft: Some(true),
            head: wire::Branch { name: head.into() },
        };
        let pulls = vec![
            pull(10, "feature", "unrelated"),
            pull(11, "loop/70-other", ""),
            pull(12, "elsewhere", "<!-- issueloop:issue=7 -->"),
            pull(13, "loop/8-x", ""),
        ];
        assert_eq!(open_pr_for(&pulls, 7, "loop/").map(|p| p.number), Some(12));
        assert_eq!(open_pr_for(&pulls, 8, "loop/").map(|p| p.number), Some(13));
        assert_eq!(open_pr_for(&pulls, 70, "loop/").map(|p| p.number), Some(11));
        assert_eq!(open_pr_for(&pulls, 9, "loop/"), None);
    }
}
