//! Which candidate issues a tick takes: drop what may not or need not be worked on, order the rest
//! by trusted priority then age, and take as many as there are free slots.

use std::collections::BTreeSet;
use std::time::Duration;

use issueloop_config::{BudgetConfig, Labels, RepoName};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::facts::CandidateFacts;
use crate::lease::{ClaimState, claim_state};
use crate::trust::{
    Distrust, DistrustReason, TrustDecision, label_trust, same_label, trusted_labels,
};

/// The outcome of one selection: what to work on, in order, and why everything else was left.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Selection {
    pub selected: Vec<Selected>,
    pub skipped: Vec<Skipped>,
}

/// An issue to work on now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Selected {
    pub repo: RepoName,
    pub number: u64,
    /// The issue carries a stale claim that this run takes over (say so in a comment).
    pub takeover_stale_claim: bool,
    /// When the stale claim was made, if one is taken over.
    pub claimed_at: Option<Timestamp>,
    /// The issue's trusted `loop:*` labels: the only ones that may raise its budget.
    pub trusted_labels: Vec<String>,
    /// The trusted priority label that ordered it, if any.
    pub priority: Option<String>,
    /// One line for logs and reports.
    pub reason: String,
}

/// An issue left alone this tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skipped {
    pub repo: RepoName,
    pub number: u64,
    pub reason: SkipReason,
    /// One line for logs and reports.
    pub detail: String,
    /// Why the pickup label is not trusted, when that is the reason; when its
    /// `say_so_in_comment` is set, post [`crate::trust_comment`] once.
    pub distrust: Option<Distrust>,
}

/// Why an issue was skipped. Ids are stable (`snake_case`), for logs and JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The pickup label is absent.
    NotApproved,
    /// The same issue appeared earlier in the candidate list.
    Duplicate,
    /// Carries the blocked label.
    Blocked,
    /// Carries the failed label (a person removes it to allow a retry).
    AlreadyFailed,
    /// An open PR from issueloop exists for it.
    HasOpenPr,
    /// Carries the pr-opened label though no open PR was found (closed by a person).
    AlreadyPublished,
    /// Another run holds a claim that is not stale yet.
    Claimed,
    /// The pickup label was applied by an account without write permission (or an unknown one).
    UntrustedLabel,
    /// The body was edited after the pickup label by an account without write permission.
    BodyEditedAfterLabel,
    /// Eligible, but all slots are taken by issues ahead of it.
    NoFreeSlot,
    /// The issue's text has nothing workable once control characters are removed (an empty
    /// title): refused before any budget is reserved.
    UnusableText,
}

impl SkipReason {
    pub fn id(self) -> &'static str {
        match self {
            SkipReason::NotApproved => "not_approved",
            SkipReason::Duplicate => "duplicate",
            SkipReason::Blocked => "blocked",
            SkipReason::AlreadyFailed => "already_failed",
            SkipReason::HasOpenPr => "has_open_pr",
            SkipReason::AlreadyPublished => "already_published",
            SkipReason::Claimed => "claimed",
            SkipReason::UntrustedLabel => "untrusted_label",
            SkipReason::BodyEditedAfterLabel => "body_edited_after_label",
            SkipReason::NoFreeSlot => "no_free_slot",
            SkipReason::UnusableText => "unusable_text",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// How long a claim *without a lease record* (made before leases) lives before it is stale: the
/// run's wall-clock budget (the default, raised by the issue's trusted budget labels) plus
/// `budget.reservation_grace`, the same horizon after which the ledger charges an unsettled
/// reservation. A claim with a lease is judged by its lease alone ([`crate::claim_state`]).
pub fn claim_stale_after(
    budget: &BudgetConfig,
    labels: &Labels,
    facts: &CandidateFacts,
) -> Duration {
    let trusted = trusted_labels(facts, &labels.prefix);
    run_wall_clock(budget, &trusted).saturating_add(budget.reservation_grace)
}

/// The default wall-clock budget raised by the largest matching budget label among `labels`.
pub fn run_wall_clock(budget: &BudgetConfig, labels: &[String]) -> Duration {
    budget
        .labels
        .iter()
        .filter(|(name, _)| labels.iter().any(|l| same_label(l, name)))
        .filter_map(|(_, raise)| raise.wall_clock)
        .fold(budget.default.wall_clock, Duration::max)
}

/// Chooses the issues to work on now.
///
/// Left out, with a reason: issues without the pickup label, `blocked`, `failed`, with an open PR
/// from issueloop or the pr-opened label, claimed by a live run, or whose pickup label is not
/// trusted (see [`label_trust`]). Labels that only stop work (blocked, failed, in-progress,
/// pr-opened) count whoever applied them: issueloop itself applies most of them, and honouring an
/// untrusted one can only leave work undone. A claim whose lease expired (see
/// [`crate::claim_state`]; without a lease record, one older than `claim_stale_after(facts)`) is
/// taken over.
///
/// The rest are ordered by their earliest trusted label in `labels.priority`, then oldest first
/// (`created_at`, then repository and number), and the first `free_slots` are taken; the others are
/// skipped with [`SkipReason::NoFreeSlot`]. The result does not depend on the order of `candidates`.
pub fn select(
    candidates: &[CandidateFacts],
    labels: &Labels,
    now: Timestamp,
    claim_stale_after: impl Fn(&CandidateFacts) -> Duration,
    free_slots: usize,
) -> Selection {
    let mut ranked: Vec<Ranked<'_>> = candidates
        .iter()
        .map(|facts| {
            let trusted = trusted_labels(facts, &labels.prefix);
            let priority = labels
                .priority
                .iter()
                .position(|p| trusted.iter().any(|t| same_label(t, p)));
            Ranked {
                facts,
                trusted,
                priority,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.key().cmp(&b.key()).then_with(|| {
            // Only the same issue listed twice gets here; any total order on its facts will do.
            serde_json::to_string(a.facts)
                .unwrap_or_default()
                .cmp(&serde_json::to_string(b.facts).unwrap_or_default())
        })
    });

    let mut selection = Selection {
        selected: Vec::new(),
        skipped: Vec::new(),
    };
    let mut seen: BTreeSet<(&RepoName, u64)> = BTreeSet::new();
    for candidate in ranked {
        let issue = &candidate.facts.issue;
        let skip = |reason, detail: String| Skipped {
            repo: issue.repo.clone(),
            number: issue.number,
            reason,
            detail,
            distrust: None,
        };
        if !seen.insert((&issue.repo, issue.number)) {
            selection.skipped.push(skip(
                SkipReason::Duplicate,
                format!("{}#{} is listed more than once", issue.repo, issue.number),
            ));
            continue;
        }
        let verdict = eligibility(&candidate, labels, now, &claim_stale_after);
        match verdict {
            Err((reason, detail, distrust)) => {
                selection.skipped.push(Skipped {
                    distrust: distrust.map(|d| *d),
                    ..skip(reason, detail)
                });
            }
            Ok(_) if selection.selected.len() >= free_slots => {
                selection.skipped.push(skip(
                    SkipReason::NoFreeSlot,
                    format!(
                        "eligible, but all {free_slots} free slot(s) went to issues ahead of it"
                    ),
                ));
            }
            Ok(eligible) => selection.selected.push(Selected {
                repo: issue.repo.clone(),
                number: issue.number,
                takeover_stale_claim: eligible.stale_claim_at.is_some(),
                claimed_at: eligible.stale_claim_at,
                priority: candidate.priority.map(|i| labels.priority[i].clone()),
                reason: eligible.reason,
                trusted_labels: candidate.trusted,
            }),
        }
    }
    selection
}

struct Ranked<'a> {
    facts: &'a CandidateFacts,
    trusted: Vec<String>,
    priority: Option<usize>,
}

impl Ranked<'_> {
    /// Earlier priority label first (none last), then oldest, then by repository and number.
    fn key(&self) -> (usize, Timestamp, &RepoName, u64) {
        let issue = &self.facts.issue;
        (
            self.priority.unwrap_or(usize::MAX),
            issue.created_at,
            &issue.repo,
            issue.number,
        )
    }
}

struct Eligible {
    stale_claim_at: Option<Timestamp>,
    reason: String,
}

/// Why not, with the trust verdict (boxed: it is large and rare) when that is the reason.
type Ineligible = (SkipReason, String, Option<Box<Distrust>>);

fn eligibility(
    candidate: &Ranked<'_>,
    labels: &Labels,
    now: Timestamp,
    claim_stale_after: &impl Fn(&CandidateFacts) -> Duration,
) -> Result<Eligible, Ineligible> {
    let facts = candidate.facts;
    let has = |label: &str| facts.issue.labels.iter().any(|l| same_label(l, label));
    let refuse = |reason, detail: String| Err((reason, detail, None));
    if !has(&labels.approved) {
        return refuse(
            SkipReason::NotApproved,
            format!("does not carry `{}`", labels.approved),
        );
    }
    if has(&labels.blocked) {
        return refuse(SkipReason::Blocked, format!("carries `{}`", labels.blocked));
    }
    if let Some(why) = facts.issue.unusable_text() {
        return refuse(SkipReason::UnusableText, why);
    }
    if has(&labels.failed) {
        return refuse(
            SkipReason::AlreadyFailed,
            format!("carries `{}`; remove it to allow a retry", labels.failed),
        );
    }
    if let Some(pr) = &facts.open_pr {
        return refuse(
            SkipReason::HasOpenPr,
            format!(
                "PR #{} (branch `{}`) is already open for it",
                pr.number, pr.branch
            ),
        );
    }
    if has(&labels.pr_opened) {
        return refuse(
            SkipReason::AlreadyPublished,
            format!(
                "carries `{}` though no open PR was found; remove the label to run it again",
                labels.pr_opened
            ),
        );
    }
    let claimed_at = match &facts.claim {
        Some(claim) => Some(Some(claim.at)),
        // The label without claim facts: its latest application dates it, if known.
        None if has(&labels.in_progress) => Some(
            facts
                .label_events
                .iter()
                .filter(|e| e.added && same_label(&e.label, &labels.in_progress))
                .map(|e| e.at)
                .max(),
        ),
        None => None,
    };
    let mut stale_claim_at = None;
    let mut takeover_reason = String::new();
    if let Some(at) = claimed_at {
        let Some(at) = at else {
            return refuse(
                SkipReason::Claimed,
                format!(
                    "carries `{}` and when it was claimed is unknown",
                    labels.in_progress
                ),
            );
        };
        let lease = facts.claim.as_ref().and_then(|c| c.lease.as_ref());
        match claim_state(at, lease, now, claim_stale_after(facts)) {
            ClaimState::Live { reason, .. } => {
                let age = now.duration_since(at);
                return refuse(
                    SkipReason::Claimed,
                    format!("claimed at {at}, {} ago; {reason}", human(age)),
                );
            }
            ClaimState::Expired { reason, .. } => {
                stale_claim_at = Some(at);
                takeover_reason = reason;
            }
        }
    }
    let applied = match label_trust(facts, &labels.approved) {
        TrustDecision::Trusted(applied) => applied,
        TrustDecision::Untrusted(distrust) => {
            let reason = match distrust.reason {
                DistrustReason::BodyEditedAfterLabel => SkipReason::BodyEditedAfterLabel,
                _ => SkipReason::UntrustedLabel,
            };
            return Err((reason, distrust.detail.clone(), Some(Box::new(distrust))));
        }
    };
    let mut reason = format!(
        "`{}` applied by `{}` ({}) at {}",
        labels.approved,
        applied.applied_by,
        applied.permission.as_str(),
        applied.applied_at
    );
    if let Some(i) = candidate.priority {
        reason.push_str(&format!("; priority `{}`", labels.priority[i]));
    }
    reason.push_str(&format!("; opened {}", facts.issue.created_at));
    if let Some(at) = stale_claim_at {
        reason.push_str(&format!(
            "; takes over a stale claim from {at} ({takeover_reason})"
        ));
    }
    Ok(Eligible {
        stale_claim_at,
        reason,
    })
}

fn human(d: SignedDuration) -> String {
    human_std(d.unsigned_abs())
}

fn human_std(d: Duration) -> String {
    crate::markdown::duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FactsBuilder, config, issue, ts};
    use proptest::prelude::*;

    const NOW: &str = "2025-01-02T00:00:00Z";
    const HOUR: Duration = Duration::from_secs(3600);

    fn run(candidates: &[CandidateFacts], slots: usize) -> Selection {
        let cfg = config();
        select(candidates, &cfg.labels, ts(NOW), |_| HOUR, slots)
    }

    fn outcome(selection: &Selection) -> (Vec<u64>, Vec<(u64, &'static str)>) {
        (
            selection.selected.iter().map(|s| s.number).collect(),
            selection
                .skipped
                .iter()
                .map(|s| (s.number, s.reason.id()))
                .collect(),
        )
    }

    /// An approved issue opened `day` days into December 2024.
    fn approved(number: u64, day: u8) -> FactsBuilder {
        issue("o/r", number, &format!("2024-12-{day:02}T00:00:00Z")).approved()
    }

    #[test]
    fn table() {
        let t = "2025-01-01T00:00:00Z";
        let fresh = "2025-01-01T23:30:00Z"; // 30 minutes before NOW
        let stale = "2025-01-01T22:00:00Z"; // 2 hours before NOW
        type Case = (
            &'static str,
            Vec<CandidateFacts>,
            usize,
            Vec<u64>,
            Vec<(u64, &'static str)>,
        );
        let mut no_title = approved(3, 1).build();
        no_title.issue.title = "\u{0}\u{1b}[2J\u{7}".into();
        let mut nul_title = approved(4, 2).build();
        nul_title.issue.title = "Fix\u{0} it".into();
        let cases: Vec<Case> = vec![
            (
                "a title with nothing printable is refused before any budget; a NUL is not",
                vec![no_title, nul_title],
                5,
                vec![4],
                vec![(3, "unusable_text")],
            ),
            (
                "oldest first",
                vec![
                    approved(1, 3).build(),
                    approved(2, 1).build(),
                    approved(3, 2).build(),
                ],
                5,
                vec![2, 3, 1],
                vec![],
            ),
            (
                "same creation time: lower number first",
                vec![approved(9, 1).build(), approved(4, 1).build()],
                5,
                vec![4, 9],
                vec![],
            ),
            (
                "priority before age; earlier priority label first",
                vec![
                    approved(1, 1).build(),
                    approved(2, 5).label("loop:p2", "alice", t).build(),
                    approved(3, 9).label("loop:p1", "maint", t).build(),
                ],
                5,
                vec![3, 2, 1],
                vec![],
            ),
            (
                "an untrusted priority label does not count",
                vec![
                    approved(1, 1).build(),
                    approved(2, 5).label("loop:p1", "reader", t).build(),
                ],
                5,
                vec![1, 2],
                vec![],
            ),
            (
                "the best of several priority labels counts",
                vec![
                    approved(1, 1).label("loop:p2", "maint", t).build(),
                    approved(2, 5)
                        .label("loop:p2", "maint", t)
                        .label("loop:p1", "maint", t)
                        .build(),
                ],
                5,
                vec![2, 1],
                vec![],
            ),
            (
                "free slots bound the selection; the rest wait",
                vec![
                    approved(1, 1).build(),
                    approved(2, 2).build(),
                    approved(3, 3).build(),
                ],
                2,
                vec![1, 2],
                vec![(3, "no_free_slot")],
            ),
            (
                "no free slot at all",
                vec![approved(1, 1).build()],
                0,
                vec![],
                vec![(1, "no_free_slot")],
            ),
            (
                "ineligible issues do not take slots",
                vec![
                    approved(1, 1).label("loop:blocked", "maint", t).build(),
                    approved(2, 2).build(),
                ],
                1,
                vec![2],
                vec![(1, "blocked")],
            ),
            (
                "blocked counts whoever applied it",
                vec![approved(1, 1).label("loop:blocked", "reader", t).build()],
                5,
                vec![],
                vec![(1, "blocked")],
            ),
            (
                "not approved",
                vec![issue("o/r", 1, t).label("loop:p1", "maint", t).build()],
                5,
                vec![],
                vec![(1, "not_approved")],
            ),
            (
                "already failed",
                vec![
                    approved(1, 1)
                        .label("loop:failed", "issueloop[bot]", t)
                        .build(),
                ],
                5,
                vec![],
                vec![(1, "already_failed")],
            ),
            (
                "open PR from us",
                vec![approved(1, 1).open_pr(7).build()],
                5,
                vec![],
                vec![(1, "has_open_pr")],
            ),
            (
                "pr-opened label without an open PR",
                vec![
                    approved(1, 1)
                        .label("loop:pr-opened", "issueloop[bot]", t)
                        .build(),
                ],
                5,
                vec![],
                vec![(1, "already_published")],
            ),
            (
                "fresh claim",
                vec![approved(1, 1).claim(fresh).build()],
                5,
                vec![],
                vec![(1, "claimed")],
            ),
            (
                "stale claim is taken over",
                vec![approved(1, 1).claim(stale).build()],
                5,
                vec![1],
                vec![],
            ),
            (
                "in-progress label without claim facts is dated by its event",
                vec![
                    approved(1, 1)
                        .label("loop:in-progress", "issueloop[bot]", fresh)
                        .build(),
                    approved(2, 2)
                        .label("loop:in-progress", "issueloop[bot]", stale)
                        .build(),
                    approved(3, 3).bare_label("loop:in-progress").build(),
                ],
                5,
                vec![2],
                vec![(1, "claimed"), (3, "claimed")],
            ),
            (
                "untrusted pickup label",
                vec![
                    issue("o/r", 1, t)
                        .label("loop:approved", "reader", t)
                        .build(),
                ],
                5,
                vec![],
                vec![(1, "untrusted_label")],
            ),
            (
                "body edited after the pickup label",
                vec![
                    approved(1, 1)
                        .edit("reader", "2025-01-01T12:00:00Z")
                        .build(),
                ],
                5,
                vec![],
                vec![(1, "body_edited_after_label")],
            ),
            (
                "blocked wins over untrusted",
                vec![
                    issue("o/r", 1, t)
                        .label("loop:approved", "reader", t)
                        .label("loop:blocked", "maint", t)
                        .build(),
                ],
                5,
                vec![],
                vec![(1, "blocked")],
            ),
            (
                "the same issue listed twice is taken once",
                vec![approved(1, 1).build(), approved(1, 1).build()],
                5,
                vec![1],
                vec![(1, "duplicate")],
            ),
            (
                "same number in two repositories are two issues",
                vec![
                    issue("o/b", 1, "2024-12-01T00:00:00Z").approved().build(),
                    issue("o/a", 1, "2024-12-01T00:00:00Z").approved().build(),
                ],
                5,
                vec![1, 1],
                vec![],
            ),
        ];
        for (name, candidates, slots, selected, skipped) in cases {
            let selection = run(&candidates, slots);
            assert_eq!(outcome(&selection), (selected, skipped), "{name}");
        }
    }

    #[test]
    fn a_stale_claim_is_flagged_for_takeover_with_its_time() {
        let selection = run(&[approved(1, 1).claim("2025-01-01T22:00:00Z").build()], 1);
        let chosen = &selection.selected[0];
        assert!(chosen.takeover_stale_claim);
        assert_eq!(chosen.claimed_at, Some(ts("2025-01-01T22:00:00Z")));
        assert!(chosen.reason.contains("stale claim"), "{}", chosen.reason);
        let fresh = run(&[approved(1, 1).build()], 1);
        assert!(!fresh.selected[0].takeover_stale_claim);
    }

    #[test]
    fn a_lease_decides_and_the_claim_age_does_not() {
        // NOW is 2025-01-02T00:00:00Z. A claim two hours old whose lease was just renewed is
        // live; a claim a minute old whose lease expired (plus margin) is taken over.
        let renewed = approved(1, 1)
            .claim("2025-01-01T22:00:00Z")
            .lease("2025-01-02T00:02:00Z", 180)
            .build();
        let lapsed = approved(2, 2)
            .claim("2025-01-01T23:59:00Z")
            .lease("2025-01-01T23:58:00Z", 60)
            .build();
        let selection = run(&[renewed, lapsed], 5);
        assert_eq!(outcome(&selection), (vec![2], vec![(1, "claimed")]));
        assert!(selection.selected[0].takeover_stale_claim);
        assert!(
            selection.selected[0].reason.contains("expired"),
            "{}",
            selection.selected[0].reason
        );
        assert!(
            selection.skipped[0].detail.contains("lease held by run"),
            "{}",
            selection.skipped[0].detail
        );
    }

    #[test]
    fn a_claim_in_the_future_is_not_stale() {
        let selection = run(&[approved(1, 1).claim("2025-01-03T00:00:00Z").build()], 1);
        assert_eq!(outcome(&selection), (vec![], vec![(1, "claimed")]));
    }

    #[test]
    fn body_edit_skip_carries_the_distrust_for_the_comment() {
        let selection = run(
            &[approved(1, 1)
                .edit("reader", "2025-01-01T12:00:00Z")
                .build()],
            1,
        );
        let skipped = &selection.skipped[0];
        let distrust = skipped
            .distrust
            .as_ref()
            .expect("the trust verdict is attached");
        assert!(distrust.say_so_in_comment);
        assert_eq!(distrust.edited_by.as_deref(), Some("reader"));
    }

    #[test]
    fn selected_issues_carry_their_trusted_labels_and_priority() {
        let t = "2025-01-01T00:00:00Z";
        let facts = approved(1, 1)
            .label("loop:p2", "alice", t)
            .label("loop:budget-xl", "reader", t)
            .label("loop:budget-large", "maint", t)
            .build();
        let chosen = &run(&[facts], 1).selected[0];
        assert_eq!(
            chosen.trusted_labels,
            ["loop:approved", "loop:p2", "loop:budget-large"]
        );
        assert_eq!(chosen.priority.as_deref(), Some("loop:p2"));
    }

    #[test]
    fn claims_go_stale_after_the_runs_wall_clock_plus_grace() {
        let cfg = config();
        let t = "2025-01-01T00:00:00Z";
        let stale_after =
            |facts: &CandidateFacts| claim_stale_after(&cfg.budget, &cfg.labels, facts);
        let min = |m: u64| Duration::from_secs(m * 60);
        // Defaults: 45m wall clock, 15m grace; budget-large 90m, budget-xl 120m.
        assert_eq!(stale_after(&approved(1, 1).build()), min(60));
        assert_eq!(
            stale_after(
                &approved(1, 1)
                    .label("loop:budget-large", "maint", t)
                    .build()
            ),
            min(105)
        );
        assert_eq!(
            stale_after(
                &approved(1, 1)
                    .label("loop:budget-large", "maint", t)
                    .label("loop:budget-xl", "alice", t)
                    .build()
            ),
            min(135)
        );
        assert_eq!(
            stale_after(&approved(1, 1).label("loop:budget-xl", "reader", t).build()),
            min(60),
            "an untrusted budget label does not lengthen the claim"
        );

        // A claim 100 minutes old is stale by default but not under budget-large.
        let claim = "2025-01-01T22:20:00Z";
        let plain = approved(1, 1).claim(claim).build();
        let large = approved(2, 2)
            .claim(claim)
            .label("loop:budget-large", "maint", t)
            .build();
        let selection = select(&[plain, large], &cfg.labels, ts(NOW), stale_after, 5);
        assert_eq!(outcome(&selection), (vec![1], vec![(2, "claimed")]));
    }

    #[test]
    fn skip_reason_ids_are_stable_and_serialized_as_ids() {
        for reason in [
            SkipReason::NotApproved,
            SkipReason::Duplicate,
            SkipReason::Blocked,
            SkipReason::AlreadyFailed,
            SkipReason::HasOpenPr,
            SkipReason::AlreadyPublished,
            SkipReason::Claimed,
            SkipReason::UntrustedLabel,
            SkipReason::BodyEditedAfterLabel,
            SkipReason::NoFreeSlot,
            SkipReason::UnusableText,
        ] {
            let json = serde_json::to_string(&reason).expect("a unit enum serializes");
            assert_eq!(json, format!("\"{}\"", reason.id()));
            assert_eq!(reason.to_string(), reason.id());
        }
    }

    /// Arbitrary candidates over a small space of labels, appliers, claims and PRs.
    fn candidate() -> impl Strategy<Value = CandidateFacts> {
        let labels = proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "loop:approved",
                    "loop:blocked",
                    "loop:failed",
                    "loop:pr-opened",
                    "loop:in-progress",
                    "loop:p1",
                    "loop:p2",
                    "loop:budget-xl",
                    "bug",
                ]),
                proptest::sample::select(vec!["maint", "alice", "reader", "triager", "stranger"]),
                0u64..48,
            ),
            0..6,
        );
        (
            proptest::sample::select(vec!["o/a", "o/b"]),
            1u64..30,
            0u64..20,
            labels,
            proptest::option::of((proptest::sample::select(vec!["reader", "alice"]), 0u64..48)),
            proptest::bool::ANY,
            proptest::option::of(0u64..48),
        )
            .prop_map(|(repo, number, day, labels, edit, pr, claim)| {
                let hour = |h: u64| format!("2025-01-0{}T{:02}:00:00Z", 1 + h / 24, h % 24);
                let mut b = issue(repo, number, &format!("2024-12-{:02}T00:00:00Z", day + 1));
                for (label, actor, h) in labels {
                    b = b.label(label, actor, &hour(h));
                }
                if let Some((actor, h)) = edit {
                    b = b.edit(actor, &hour(h));
                }
                if pr {
                    b = b.open_pr(100 + number);
                }
                if let Some(h) = claim {
                    b = b.claim(&hour(h));
                }
                b.build()
            })
    }

    /// Candidates with distinct `(repo, number)`.
    fn candidates() -> impl Strategy<Value = Vec<CandidateFacts>> {
        proptest::collection::vec(candidate(), 0..12).prop_map(|mut all| {
            let mut seen = BTreeSet::new();
            all.retain(|c| seen.insert((c.issue.repo.clone(), c.issue.number)));
            all
        })
    }

    proptest! {
        #[test]
        fn selection_respects_slots_trust_and_blocking(
            candidates in candidates(),
            slots in 0usize..6,
            seed in any::<u64>(),
        ) {
            let cfg = config();
            let selection = select(&candidates, &cfg.labels, ts(NOW), |_| HOUR, slots);
            prop_assert!(selection.selected.len() <= slots);
            prop_assert_eq!(selection.selected.len() + selection.skipped.len(), candidates.len());
            for chosen in &selection.selected {
                let facts = candidates
                    .iter()
                    .find(|c| c.issue.repo == chosen.repo && c.issue.number == chosen.number)
                    .expect("selected issues come from the candidates");
                prop_assert!(!facts.issue.labels.iter().any(|l| l == "loop:blocked"));
                prop_assert!(!facts.issue.labels.iter().any(|l| l == "loop:failed"));
                prop_assert!(facts.open_pr.is_none());
                prop_assert!(label_trust(facts, "loop:approved").is_trusted());
            }

            // Any permutation of the input gives the same answer.
            let mut shuffled = candidates.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let j = usize::try_from(state % (i as u64 + 1)).unwrap_or(0);
                shuffled.swap(i, j);
            }
            let again = select(&shuffled, &cfg.labels, ts(NOW), |_| HOUR, slots);
            prop_assert_eq!(&selection, &again);
        }
    }
}
