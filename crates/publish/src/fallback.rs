//! The takeover comments a forge writes itself: when the caller passed no rendered comment
//! ([`crate::takeover_comment`] is what the pipeline passes), and for a leftover branch.

use jiff::Timestamp;

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
        sha.get(..12).unwrap_or(sha)
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
