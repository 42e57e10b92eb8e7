//! Words about claims: why a claim is busy, why one was taken over, why a run lost its lease
//! (the forge's `BusyReason`, `TakeoverReason` and `LeaseLost` say them through these; the job
//! summary, the journal and the logs carry them), and the takeover comments a forge writes
//! itself: when the caller passed no rendered comment ([`crate::takeover_comment`] is what the
//! pipeline passes), and for a leftover branch.

use std::time::Duration;

use jiff::Timestamp;

fn utc(t: Timestamp) -> impl std::fmt::Display {
    t.strftime("%Y-%m-%d %H:%M:%S UTC")
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Busy: another run holds a claim that is not stale.
pub fn busy_claimed_by_another_run(since: Timestamp) -> String {
    format!(
        "another run claimed it at {} and the claim is not stale yet",
        utc(since)
    )
}

/// Busy: another runner created the branch and has not labelled the issue yet.
pub fn busy_branch_just_created(branch: &str) -> String {
    format!(
        "another runner has just created branch `{branch}` and not labelled the issue yet \
         (if no run is working on it, delete the branch)"
    )
}

/// Busy: the branch went away while it was being claimed.
pub fn busy_branch_vanished(branch: &str) -> String {
    format!("branch `{branch}` disappeared while it was being claimed; the next tick tries again")
}

/// Busy: another runner won the takeover of the same stale claim.
pub fn busy_takeover_lost() -> String {
    "another runner took over the same stale claim first".to_owned()
}

/// Taken over: the lease expired without a renewal.
pub fn takeover_lease_expired(holder: &str, expired_at: Timestamp) -> String {
    format!(
        "the lease of run `{holder}` expired at {} without a renewal",
        utc(expired_at)
    )
}

/// Taken over: a claim without a lease, older than the run's wall clock plus grace.
pub fn takeover_stale_claim(since: Timestamp, age_secs: u64) -> String {
    format!(
        "the claim without a lease, made at {}, is {} old: past the run's wall clock plus grace",
        utc(since),
        issueloop_config::human_duration(Duration::from_secs(age_secs))
    )
}

/// Taken over: a branch left by a run that ended without cleaning up.
pub fn takeover_leftover_branch(sha: &str) -> String {
    format!(
        "the branch was left at `{}` by a run that ended without cleaning up",
        short(sha)
    )
}

/// Lost: another run holds the issue now (`None`: the lease record is gone).
pub fn lease_taken_over(holder: Option<&str>) -> String {
    match holder {
        Some(h) => format!(
            "the claim's lease was lost: run `{h}` holds the issue now, so this run stops without \
             publishing"
        ),
        None => "the claim's lease was lost: its record is gone, so this run stops without \
                 publishing"
            .to_owned(),
    }
}

/// Lost: renewals kept failing until the lease would lapse.
pub fn lease_lapsed(expired: Timestamp, error: &str) -> String {
    format!(
        "the claim's lease could not be renewed before it expired at {expired} ({error}), so this \
         run stops without publishing"
    )
}

/// GitHub forge: an expired lease taken over.
pub fn lease_expired_comment(holder: &str, expired_at: Timestamp) -> String {
    format!(
        "issueloop is taking over this issue: the lease of run `{holder}` expired at \
         {expired_at} without a renewal."
    )
}

/// GitHub forge: a claim without a lease, older than a run may take, taken over.
pub fn stale_claim_comment(claim_label: &str, since: Timestamp, age_secs: u64) -> String {
    format!(
        "issueloop is taking over a stale claim on this issue: `{claim_label}` has been set since \
         {since} ({age_secs} s), longer than a run may take."
    )
}

/// GitHub forge: a branch left past the base commit by a run that did not finish.
pub fn leftover_branch_comment(branch: &str, sha: &str) -> String {
    format!(
        "issueloop is taking over branch `{branch}`, left at `{}` by a run that did not finish.",
        short(sha)
    )
}

/// Local forge: a claim taken over, with the lease it had when there was one.
pub fn local_takeover_comment(expired_lease: Option<(&str, Timestamp)>) -> String {
    match expired_lease {
        Some((holder, expires)) => format!(
            "issueloop is taking over a claim whose lease (run `{holder}`) expired at {expires} \
             without a renewal."
        ),
        None => "issueloop is taking over a stale claim on this issue.".to_owned(),
    }
}
