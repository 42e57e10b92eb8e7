//! The claim protocol's decisions, pure: what a run does when the branch it wants to create as
//! its lock already exists, the lease a claim carries and how its heartbeat judges a renewal, and
//! the name of the lock that makes a takeover atomic.
//!
//! Protocol (both forges): create the run's branch at the base commit (atomic: a second create
//! fails), write the claim's lease (holder, expiry, TTL), then add the in-progress label. The run
//! renews the lease every third of its TTL for as long as it lives. A run that finds the branch
//! taken backs off without writing anything, unless the lease expired (or, for a claim without a
//! lease record, the claim is older than the run's wall-clock budget plus grace) or the branch is
//! a leftover without a claim; then it takes over atomically: on GitHub the lease ref is moved
//! forward by a fast-forward-only update (a compare-and-swap against the expired lease), on the
//! local forge the claim file is rewritten under the folder lock; a claim without a lease is
//! taken through a second atomic create of a lock named after the claim it replaces.

use std::time::Duration;

use issueloop_config::RepoName;
use issueloop_publish::claims;
use issueloop_triage::{ClaimFacts, ClaimState, LeaseFacts, claim_state};
use jiff::Timestamp;
use serde::Serialize;

use crate::clock::{add, until};

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
    /// Age after which a claim *without a lease record* is stale: the run's wall-clock budget
    /// plus grace (`issueloop_triage::claim_stale_after`). Claims with a lease ignore it.
    pub stale_after: Duration,
    /// Comment posted when a stale claim is taken over (`issueloop_publish::takeover_comment`);
    /// the forge writes a short one of its own when `None`. Its time refreshes the claim.
    pub takeover_comment: Option<String>,
    /// Who holds the lease: the run's id.
    pub holder: String,
    /// How long the lease lasts without a renewal (`[service] lease_ttl`).
    pub lease_ttl: Duration,
    /// A run known dead (its process gone on this host): a lease it holds may be taken over at
    /// once, without waiting for it to expire.
    pub dead_holder: Option<String>,
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per claim and matched at once: boxing the claim would buy nothing"
)]
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
    /// The lease this run holds (renew it with `Forge::renew`).
    pub lease: LeaseFacts,
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
            BusyReason::ClaimedByAnotherRun { since } => {
                claims::busy_claimed_by_another_run(*since)
            }
            BusyReason::BranchJustCreated { branch } => claims::busy_branch_just_created(branch),
            BusyReason::BranchVanished { branch } => claims::busy_branch_vanished(branch),
            BusyReason::TakeoverLost { .. } => claims::busy_takeover_lost(),
        }
    }
}

/// Why a claim was taken over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum TakeoverReason {
    /// The claim's lease expired (past its skew margin) without a renewal.
    LeaseExpired {
        holder: String,
        expired_at: Timestamp,
    },
    /// A claim without a lease record is older than the run's wall-clock budget plus grace.
    StaleClaim { since: Timestamp, age_secs: u64 },
    /// The branch exists past the base commit and no claim label is on the issue: left by a run
    /// that died or failed before cleaning up.
    LeftoverBranch { sha: String },
}

impl TakeoverReason {
    /// One sentence for a person (logs and comments carry this, never the debug form).
    pub fn describe(&self) -> String {
        match self {
            TakeoverReason::LeaseExpired { holder, expired_at } => {
                claims::takeover_lease_expired(holder, *expired_at)
            }
            TakeoverReason::StaleClaim { since, age_secs } => {
                claims::takeover_stale_claim(*since, *age_secs)
            }
            TakeoverReason::LeftoverBranch { sha } => claims::takeover_leftover_branch(sha),
        }
    }
}

/// What to do with an existing branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contested {
    Busy(BusyReason),
    TakeOver(TakeoverReason),
}

/// Decides, for a run whose branch create was refused because the branch exists, whether to back
/// off or take over. `current` carries the claim's lease as the forge read it just now;
/// `existing_sha` is where the branch points now (`None`: it vanished); a lease held by
/// `dead_holder` (a run whose process is known gone) counts as expired now.
pub fn decide_contested(
    current: Option<&ClaimFacts>,
    now: Timestamp,
    stale_after: Duration,
    branch: &str,
    existing_sha: Option<&str>,
    base_sha: &str,
    dead_holder: Option<&str>,
) -> Contested {
    if let Some(claim) = current {
        if let Some(lease) = &claim.lease
            && dead_holder == Some(lease.holder.as_str())
        {
            return Contested::TakeOver(TakeoverReason::LeaseExpired {
                holder: lease.holder.clone(),
                expired_at: lease.expires.min(now),
            });
        }
        return match claim_state(claim.at, claim.lease.as_ref(), now, stale_after) {
            ClaimState::Live { .. } => {
                Contested::Busy(BusyReason::ClaimedByAnotherRun { since: claim.at })
            }
            ClaimState::Expired { since, .. } => match &claim.lease {
                Some(lease) => Contested::TakeOver(TakeoverReason::LeaseExpired {
                    holder: lease.holder.clone(),
                    expired_at: since,
                }),
                None => Contested::TakeOver(TakeoverReason::StaleClaim {
                    since: claim.at,
                    age_secs: until(claim.at, now).as_secs(),
                }),
            },
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

/// A new lease for `holder`, from `now`.
pub fn new_lease(holder: &str, now: Timestamp, ttl: Duration) -> LeaseFacts {
    LeaseFacts {
        holder: holder.to_owned(),
        expires: add(now, ttl),
        ttl,
    }
}

/// The text a lease is stored as (the GitHub forge's lease commit message):
/// a title line, then `holder:`, `expires:` and `ttl-secs:` lines.
pub fn lease_message(issue: u64, lease: &LeaseFacts) -> String {
    format!(
        "issueloop lease on issue #{issue}\n\nholder: {}\nexpires: {}\nttl-secs: {}\n",
        lease.holder,
        lease.expires,
        lease.ttl.as_secs()
    )
}

/// Reads [`lease_message`] back; `None` when any of the three lines is missing or malformed.
pub fn parse_lease_message(text: &str) -> Option<LeaseFacts> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    };
    let holder = field("holder").filter(|h| !h.is_empty())?.to_owned();
    let expires = field("expires")?.parse().ok()?;
    let ttl = Duration::from_secs(field("ttl-secs")?.parse().ok()?);
    Some(LeaseFacts {
        holder,
        expires,
        ttl,
    })
}

/// What renewing a lease found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Renewal {
    /// Still ours, now until `expires`.
    Renewed { expires: Timestamp },
    /// Not ours any more: another run holds it (`holder`, when known) or the record is gone.
    Lost { holder: Option<String> },
}

/// How often a run renews its lease: a third of the TTL, so two renewals may fail before it
/// lapses.
pub fn heartbeat_interval(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(100))
}

/// Where a run stands with its lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LeaseStatus {
    /// Held until `until` (the last expiry the forge accepted).
    Held { until: Timestamp },
    /// Lost; the run must not publish.
    Lost(LeaseLost),
}

/// Why a run lost its lease. Its id is `lease_lost` whatever the cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum LeaseLost {
    /// Another run took the claim over (its lease expired in someone's eyes), or the record was
    /// removed.
    TakenOver { holder: Option<String> },
    /// Renewals kept failing until the lease would lapse.
    Lapsed { expired: Timestamp, error: String },
}

impl LeaseLost {
    pub const ID: &'static str = "lease_lost";

    /// One sentence for a person.
    pub fn describe(&self) -> String {
        match self {
            LeaseLost::TakenOver { holder } => claims::lease_taken_over(holder.as_deref()),
            LeaseLost::Lapsed { expired, error } => claims::lease_lapsed(*expired, error),
        }
    }
}

/// The heartbeat's decision after one renewal attempt: held until the new expiry; lost when
/// another run holds it; after a failed attempt, still held while the next attempt (one
/// `interval` away) comes before the lease lapses, else lost.
pub fn after_renewal(
    held_until: Timestamp,
    now: Timestamp,
    interval: Duration,
    result: Result<Renewal, String>,
) -> LeaseStatus {
    match result {
        Ok(Renewal::Renewed { expires }) => LeaseStatus::Held { until: expires },
        Ok(Renewal::Lost { holder }) => LeaseStatus::Lost(LeaseLost::TakenOver { holder }),
        Err(error) if add(now, interval) >= held_until => LeaseStatus::Lost(LeaseLost::Lapsed {
            expired: held_until,
            error,
        }),
        Err(_) => LeaseStatus::Held { until: held_until },
    }
}

/// Whether the run may go on (commit, push, publish) at `now`: only while its lease holds.
pub fn lease_holds(status: &LeaseStatus, now: Timestamp) -> Result<Timestamp, LeaseLost> {
    match status {
        LeaseStatus::Held { until } if now < *until => Ok(*until),
        LeaseStatus::Held { until } => Err(LeaseLost::Lapsed {
            expired: *until,
            error: "no renewal succeeded in time".into(),
        }),
        LeaseStatus::Lost(lost) => Err(lost.clone()),
    }
}

/// The lock a takeover creates first: named after the claim it replaces, so every runner that
/// saw the same stale claim tries to create the same ref and only one succeeds. A later takeover
/// (of the claim this one makes) has a different name, because the takeover comment moves the
/// claim's time.
pub fn takeover_lock_ref(issue: u64, reason: &TakeoverReason) -> String {
    match reason {
        TakeoverReason::LeaseExpired { expired_at, .. } => {
            format!(
                "refs/issueloop/takeover/{issue}-lease-{}",
                expired_at.as_second()
            )
        }
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
            lease: None,
        };
        let leased = |at: &str, expires: &str| ClaimFacts {
            lease: Some(LeaseFacts {
                holder: "run-a".into(),
                expires: t(expires),
                ttl: Duration::from_secs(180),
            }),
            ..claim(at)
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
            // A lease renewed a minute ago keeps a three-hour-old claim: the age rule is gone.
            (
                Some(leased("2025-01-01T09:00:00Z", "2025-01-01T12:02:00Z")),
                Some(OTHER),
                Contested::Busy(BusyReason::ClaimedByAnotherRun {
                    since: t("2025-01-01T09:00:00Z"),
                }),
            ),
            // Expired, within the skew margin (a minute for a 3-minute TTL): still busy.
            (
                Some(leased("2025-01-01T11:58:00Z", "2025-01-01T11:59:30Z")),
                Some(OTHER),
                Contested::Busy(BusyReason::ClaimedByAnotherRun {
                    since: t("2025-01-01T11:58:00Z"),
                }),
            ),
            // Expired past the margin: taken over, though the claim is two minutes old.
            (
                Some(leased("2025-01-01T11:58:00Z", "2025-01-01T11:58:59Z")),
                Some(OTHER),
                Contested::TakeOver(TakeoverReason::LeaseExpired {
                    holder: "run-a".into(),
                    expired_at: t("2025-01-01T11:58:59Z"),
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
                decide_contested(current.as_ref(), now, hour, "b", existing, BASE, None),
                expected,
                "{current:?} {existing:?}"
            );
        }
        // A live lease whose holder is known dead is taken over at once; another run's is not.
        let live = leased("2025-01-01T11:59:00Z", "2025-01-01T12:02:00Z");
        assert_eq!(
            decide_contested(
                Some(&live),
                now,
                hour,
                "b",
                Some(OTHER),
                BASE,
                Some("run-a")
            ),
            Contested::TakeOver(TakeoverReason::LeaseExpired {
                holder: "run-a".into(),
                expired_at: now,
            })
        );
        assert_eq!(
            decide_contested(
                Some(&live),
                now,
                hour,
                "b",
                Some(OTHER),
                BASE,
                Some("run-z")
            ),
            Contested::Busy(BusyReason::ClaimedByAnotherRun {
                since: t("2025-01-01T11:59:00Z")
            })
        );
    }

    #[test]
    fn lease_messages_round_trip_and_refuse_garbage() {
        let lease = new_lease(
            "20250101-abc",
            t("2025-01-01T12:00:00Z"),
            Duration::from_secs(180),
        );
        assert_eq!(lease.expires, t("2025-01-01T12:03:00Z"));
        let text = lease_message(7, &lease);
        assert!(text.starts_with("issueloop lease on issue #7\n"), "{text}");
        assert_eq!(parse_lease_message(&text), Some(lease));
        for bad in [
            "",
            "my commit message",
            "holder: x\nexpires: soon\nttl-secs: 3",
            "holder: \nexpires: 2025-01-01T12:03:00Z\nttl-secs: 3",
            "holder: x\nexpires: 2025-01-01T12:03:00Z",
            "holder: x\nexpires: 2025-01-01T12:03:00Z\nttl-secs: -1",
        ] {
            assert_eq!(parse_lease_message(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn heartbeat_decisions() {
        let until = t("2025-01-01T12:03:00Z");
        let minute = Duration::from_secs(60);
        let later = t("2025-01-01T12:06:00Z");
        let cases: Vec<(&str, Result<Renewal, String>, LeaseStatus)> = vec![
            (
                "2025-01-01T12:01:00Z",
                Ok(Renewal::Renewed { expires: later }),
                LeaseStatus::Held { until: later },
            ),
            (
                "2025-01-01T12:01:00Z",
                Ok(Renewal::Lost {
                    holder: Some("run-b".into()),
                }),
                LeaseStatus::Lost(LeaseLost::TakenOver {
                    holder: Some("run-b".into()),
                }),
            ),
            // A failed renewal with time for another attempt: keep the old expiry, try again.
            (
                "2025-01-01T12:01:00Z",
                Err("503".into()),
                LeaseStatus::Held { until },
            ),
            // A failed renewal whose next attempt would come too late: lost.
            (
                "2025-01-01T12:02:00Z",
                Err("503".into()),
                LeaseStatus::Lost(LeaseLost::Lapsed {
                    expired: until,
                    error: "503".into(),
                }),
            ),
        ];
        for (now, result, expected) in cases {
            assert_eq!(
                after_renewal(until, t(now), minute, result.clone()),
                expected,
                "{now} {result:?}"
            );
        }
        assert_eq!(heartbeat_interval(Duration::from_secs(180)), minute);
    }

    #[test]
    fn a_run_goes_on_only_while_its_lease_holds() {
        let until = t("2025-01-01T12:03:00Z");
        let held = LeaseStatus::Held { until };
        assert_eq!(lease_holds(&held, t("2025-01-01T12:02:59Z")), Ok(until));
        let lapsed = lease_holds(&held, t("2025-01-01T12:03:00Z")).unwrap_err();
        assert!(matches!(lapsed, LeaseLost::Lapsed { .. }), "{lapsed:?}");
        let taken = LeaseStatus::Lost(LeaseLost::TakenOver {
            holder: Some("run-b".into()),
        });
        let lost = lease_holds(&taken, t("2025-01-01T12:00:00Z")).unwrap_err();
        assert!(lost.describe().contains("run-b"), "{}", lost.describe());
        assert!(lost.describe().contains("without publishing"));
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
