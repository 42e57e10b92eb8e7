//! The claim protocol's decisions, pure: what a run does when the branch it wants to create as
//! its lock already exists, and the name of the lock that makes a takeover atomic.
//!
//! Protocol (both forges): create the run's branch at the base commit (atomic: a second create
//! fails), then add the in-progress label. A run that finds the branch taken backs off without
//! writing anything, unless the claim is stale (older than the run's wall-clock budget plus grace)
//! or the branch is a leftover without a claim; then it takes over, guarded by a second atomic
//! create of a lock named after the claim it replaces, so two runners that both see the same
//! stale claim cannot both take it.

use std::time::Duration;

use issueloop_config::RepoName;
use issueloop_triage::ClaimFacts;
use jiff::Timestamp;
use serde::Serialize;

use crate::clock::until;

/// What the pipeline asks for before spending money on an issue.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    pub repo: RepoName,
    pub issue: u64,
    /// The run's branch (`loop/<n>-<slug>`), created at `base_sha` as the lock.
    pub branch: String,
    /// Head of the default branch the run starts from.
    pub base_sha: String,
    /// The claim the candidate facts showed (`CandidateFacts::claim`).
    pub current: Option<ClaimFacts>,
    /// Age after which a claim is stale: the run's wall-clock budget plus grace
    /// (`issueloop_triage::claim_stale_after`).
    pub stale_after: Duration,
    /// Comment posted when a stale claim is taken over (`issueloop_triage::takeover_comment`);
    /// the forge writes a short one of its own when `None`. Its time refreshes the claim.
    pub takeover_comment: Option<String>,
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimOutcome {
    /// This run holds the issue; release it with `Forge::release`.
    Acquired(Claim),
    /// Another run holds it (or may): nothing was written.
    Busy(BusyReason),
}

/// A held claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Claim {
    #[serde(serialize_with = "crate::serialize_repo")]
    pub repo: RepoName,
    pub issue: u64,
    pub branch: String,
    pub base_sha: String,
    pub at: Timestamp,
    /// The commit the branch already pointed at when a claim was taken over (the workspace must
    /// build on it, or replace it only if it holds nothing but issueloop's own commits).
    pub remote_head: Option<String>,
    pub took_over: Option<TakeoverReason>,
    /// The takeover lock to remove on release.
    pub lock_ref: Option<String>,
}

/// Why a run backed off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum BusyReason {
    /// A live claim (not stale yet) holds the issue.
    ClaimedByAnotherRun { since: Timestamp },
    /// The branch exists at the base commit without a claim label: another runner is between
    /// creating it and labelling. If no run is working on the issue, delete the branch.
    BranchJustCreated { branch: String },
    /// The branch disappeared between the create and the read; try again next tick.
    BranchVanished { branch: String },
    /// Another runner took the same stale claim over first.
    TakeoverLost { lock: String },
}

impl BusyReason {
    pub fn id(&self) -> &'static str {
        match self {
            BusyReason::ClaimedByAnotherRun { .. } => "claimed_by_another_run",
            BusyReason::BranchJustCreated { .. } => "branch_just_created",
            BusyReason::BranchVanished { .. } => "branch_vanished",
            BusyReason::TakeoverLost { .. } => "takeover_lost",
        }
    }

    /// The reason in words, for a person (the id stays in JSON and the journal).
    pub fn describe(&self) -> String {
        match self {
            BusyReason::ClaimedByAnotherRun { since } => format!(
                "another run claimed it at {} and the claim is not stale yet",
                since.strftime("%Y-%m-%d %H:%M:%S UTC")
            ),
            BusyReason::BranchJustCreated { branch } => format!(
                "another runner has just created branch `{branch}` and not labelled the issue yet \
                 (if no run is working on it, delete the branch)"
            ),
            BusyReason::BranchVanished { branch } => format!(
                "branch `{branch}` disappeared while it was being claimed; the next tick tries again"
            ),
            BusyReason::TakeoverLost { .. } => {
                "another runner took over the same stale claim first".to_owned()
            }
        }
    }
}

/// Why a claim was taken over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum TakeoverReason {
    /// The claim is older than the run's wall-clock budget plus grace.
    StaleClaim { since: Timestamp, age_secs: u64 },
    /// The branch exists past the base commit and no claim label is on the issue: left by a run
    /// that died or failed before cleaning up.
    LeftoverBranch { sha: String },
}

/// What to do with an existing branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contested {
    Busy(BusyReason),
    TakeOver(TakeoverReason),
}

/// Decides, for a run whose branch create was refused because the branch exists, whether to back
/// off or take over. `existing_sha` is where the branch points now (`None`: it vanished).
pub fn decide_contested(
    current: Option<&ClaimFacts>,
    now: Timestamp,
    stale_after: Duration,
    branch: &str,
    existing_sha: Option<&str>,
    base_sha: &str,
) -> Contested {
    if let Some(claim) = current {
        let age = until(claim.at, now);
        return if age > stale_after {
            Contested::TakeOver(TakeoverReason::StaleClaim {
                since: claim.at,
                age_secs: age.as_secs(),
            })
        } else {
            Contested::Busy(BusyReason::ClaimedByAnotherRun { since: claim.at })
        };
    }
    match existing_sha {
        None => Contested::Busy(BusyReason::BranchVanished {
            branch: branch.to_owned(),
        }),
        Some(sha) if sha == base_sha => Contested::Busy(BusyReason::BranchJustCreated {
            branch: branch.to_owned(),
        }),
        Some(sha) => Contested::TakeOver(TakeoverReason::LeftoverBranch {
            sha: sha.to_owned(),
        }),
    }
}

/// The lock a takeover creates first: named after the claim it replaces, so every runner that
/// saw the same stale claim tries to create the same ref and only one succeeds. A later takeover
/// (of the claim this one makes) has a different name, because the takeover comment moves the
/// claim's time.
pub fn takeover_lock_ref(issue: u64, reason: &TakeoverReason) -> String {
    match reason {
        TakeoverReason::StaleClaim { since, .. } => {
            format!(
                "refs/issueloop/takeover/{issue}-claim-{}",
                since.as_second()
            )
        }
        TakeoverReason::LeftoverBranch { sha } => {
            let short = sha.get(..12).unwrap_or(sha);
            format!("refs/issueloop/takeover/{issue}-branch-{short}")
        }
    }
}

/// What to do with the branch when a claim is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The branch carries a PR (success): keep it.
    KeepBranch,
    /// No PR was opened from it (failure): delete it so the issue can be claimed again. Skipped,
    /// with a warning, when an open PR uses the branch after all.
    DeleteBranch,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn busy_reasons_read_as_sentences_not_ids() {
        let branch = "loop/3-x".to_owned();
        for reason in [
            BusyReason::ClaimedByAnotherRun {
                since: t("2025-01-01T10:00:00Z"),
            },
            BusyReason::BranchJustCreated {
                branch: branch.clone(),
            },
            BusyReason::BranchVanished { branch },
            BusyReason::TakeoverLost {
                lock: "refs/heads/issueloop-lock/3".into(),
            },
        ] {
            let text = reason.describe();
            assert!(!text.contains(reason.id()), "{text}");
            assert!(!text.contains('{'), "{text}");
        }
    }

    const BASE: &str = "1111111111111111111111111111111111111111";
    const OTHER: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn contested_branch_decisions() {
        let now = t("2025-01-01T12:00:00Z");
        let hour = Duration::from_secs(3600);
        let claim = |at: &str| ClaimFacts {
            at: t(at),
            by_us: false,
        };
        let cases: Vec<(Option<ClaimFacts>, Option<&str>, Contested)> = vec![
            (
                Some(claim("2025-01-01T11:30:00Z")),
                Some(BASE),
                Contested::Busy(BusyReason::ClaimedByAnotherRun {
                    since: t("2025-01-01T11:30:00Z"),
                }),
            ),
            (
                Some(claim("2025-01-01T11:00:00Z")),
                Some(OTHER),
                Contested::Busy(BusyReason::ClaimedByAnotherRun {
                    since: t("2025-01-01T11:00:00Z"),
                }),
            ),
            (
                Some(claim("2025-01-01T10:59:59Z")),
                Some(OTHER),
                Contested::TakeOver(TakeoverReason::StaleClaim {
                    since: t("2025-01-01T10:59:59Z"),
                    age_secs: 3601,
                }),
            ),
            (
                None,
                Some(BASE),
                Contested::Busy(BusyReason::BranchJustCreated { branch: "b".into() }),
            ),
            (
                None,
                Some(OTHER),
                Contested::TakeOver(TakeoverReason::LeftoverBranch { sha: OTHER.into() }),
            ),
            (
                None,
                None,
                Contested::Busy(BusyReason::BranchVanished { branch: "b".into() }),
            ),
        ];
        for (current, existing, expected) in cases {
            assert_eq!(
                decide_contested(current.as_ref(), now, hour, "b", existing, BASE),
                expected,
                "{current:?} {existing:?}"
            );
        }
    }

    #[test]
    fn takeover_locks_are_shared_by_the_same_claim_only() {
        let a = TakeoverReason::StaleClaim {
            since: t("2025-01-01T10:00:00Z"),
            age_secs: 5000,
        };
        let b = TakeoverReason::StaleClaim {
            since: t("2025-01-01T10:00:00Z"),
            age_secs: 9000,
        };
        let c = TakeoverReason::StaleClaim {
            since: t("2025-01-01T11:00:00Z"),
            age_secs: 5000,
        };
        assert_eq!(takeover_lock_ref(7, &a), takeover_lock_ref(7, &b));
        assert_ne!(takeover_lock_ref(7, &a), takeover_lock_ref(7, &c));
        assert_ne!(takeover_lock_ref(7, &a), takeover_lock_ref(8, &a));
        let leftover = TakeoverReason::LeftoverBranch { sha: OTHER.into() };
        assert_eq!(
            takeover_lock_ref(7, &leftover),
            "refs/issueloop/takeover/7-branch-222222222222"
        );
    }
}
