//! Whether a claim is still held: a lease with an expiry that its run renews, judged against the
//! clock with a margin for skew between machines; a claim without a lease record falls back to
//! its age.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The lease a claim carries: who holds it, until when, and how long each renewal lasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseFacts {
    /// The holding run's id.
    pub holder: String,
    /// When the lease lapses unless renewed (the holder's clock).
    pub expires: Timestamp,
    /// How long one renewal lasts (`[service] lease_ttl` of the holder).
    #[serde(with = "secs")]
    pub ttl: Duration,
}

impl LeaseFacts {
    /// How long past `expires` another runner still waits before taking over: one heartbeat
    /// interval (a third of the TTL), so clocks that disagree by less than that never let a
    /// live lease be taken. The holder itself stops at `expires`.
    pub fn skew_margin(&self) -> Duration {
        self.ttl / 3
    }

    /// The moment after which another runner may take the claim over.
    pub fn takeover_after(&self) -> Timestamp {
        add(self.expires, self.skew_margin())
    }
}

/// Whether a claim still holds its issue, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ClaimState {
    /// Held: a lease renewed recently enough, or (no lease record) a claim younger than its age
    /// limit. Nobody may take it before `until`.
    Live { until: Timestamp, reason: String },
    /// Not held any more: another runner may take it over.
    Expired { since: Timestamp, reason: String },
}

impl ClaimState {
    pub fn is_live(&self) -> bool {
        matches!(self, ClaimState::Live { .. })
    }
}

/// Judges a claim at `now`. With a lease: live until its expiry plus the skew margin. Without a
/// lease record (a claim made by an issueloop without leases, or by a run that died between
/// claiming and writing its lease): live until `claimed_at + legacy_stale_after` (the run's
/// wall-clock budget plus grace).
pub fn claim_state(
    claimed_at: Timestamp,
    lease: Option<&LeaseFacts>,
    now: Timestamp,
    legacy_stale_after: Duration,
) -> ClaimState {
    match lease {
        Some(lease) => {
            let until = lease.takeover_after();
            if now <= until {
                ClaimState::Live {
                    until,
                    reason: format!(
                        "lease held by run `{}` until {} (renewed every {}s)",
                        lease.holder,
                        lease.expires,
                        (lease.ttl / 3).as_secs().max(1)
                    ),
                }
            } else {
                ClaimState::Expired {
                    since: lease.expires,
                    reason: format!(
                        "lease of run `{}` expired at {} and was not renewed",
                        lease.holder, lease.expires
                    ),
                }
            }
        }
        None => {
            let until = add(claimed_at, legacy_stale_after);
            if now <= until {
                ClaimState::Live {
                    until,
                    reason: format!(
                        "claimed at {claimed_at} without a lease record; stale after {}s",
                        legacy_stale_after.as_secs()
                    ),
                }
            } else {
                ClaimState::Expired {
                    since: until,
                    reason: format!(
                        "claimed at {claimed_at} without a lease record, older than {}s",
                        legacy_stale_after.as_secs()
                    ),
                }
            }
        }
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn claim_state_table() {
        let lease = |expires: &str| LeaseFacts {
            holder: "r1".into(),
            expires: t(expires),
            ttl: Duration::from_secs(180),
        };
        let claimed = t("2025-01-01T10:00:00Z");
        let hour = Duration::from_secs(3600);
        // (lease, now, live?)
        let cases = [
            // A lease renewed a minute ago: live, however old the claim.
            (
                Some(lease("2025-01-01T14:02:00Z")),
                "2025-01-01T14:00:00Z",
                true,
            ),
            // Expired, but within the skew margin (a third of the TTL): still live.
            (
                Some(lease("2025-01-01T14:00:00Z")),
                "2025-01-01T14:00:59Z",
                true,
            ),
            (
                Some(lease("2025-01-01T14:00:00Z")),
                "2025-01-01T14:01:00Z",
                true,
            ),
            // Past expiry plus margin: expired, even though the claim is young.
            (
                Some(lease("2025-01-01T10:01:00Z")),
                "2025-01-01T10:02:01Z",
                false,
            ),
            // No lease record: the age rule.
            (None, "2025-01-01T11:00:00Z", true),
            (None, "2025-01-01T11:00:01Z", false),
        ];
        for (lease, now, live) in cases {
            let state = claim_state(claimed, lease.as_ref(), t(now), hour);
            assert_eq!(state.is_live(), live, "{lease:?} at {now}: {state:?}");
        }
    }

    #[test]
    fn the_reason_names_the_holder_and_the_expiry() {
        let lease = LeaseFacts {
            holder: "20250101-abc".into(),
            expires: t("2025-01-01T10:00:00Z"),
            ttl: Duration::from_secs(30),
        };
        match claim_state(
            lease.expires,
            Some(&lease),
            t("2025-01-01T10:00:11Z"),
            Duration::ZERO,
        ) {
            ClaimState::Expired { since, reason } => {
                assert_eq!(since, lease.expires);
                assert!(
                    reason.contains("20250101-abc") && reason.contains("expired"),
                    "{reason}"
                );
            }
            other => panic!("expected expired, got {other:?}"),
        }
    }
}
