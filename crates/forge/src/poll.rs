//! What a poll remembers between ticks, for the caller to keep in its state store: the
//! `updated_at` watermark for `since=` polling, the facts of every labelled issue as of its
//! `updated_at`, and collaborator permissions. With it an idle poll costs one request per
//! repository; without it (first run, or state dropped) the forge lists the labelled issues again.
//!
//! ETags are not here: GitHub ties them to the token, and a cron job's token is new every run, so
//! the GitHub forge keeps them in memory only (useful to `serve`).

use std::collections::BTreeMap;
use std::time::Duration;

use issueloop_config::RepoName;
use issueloop_triage::{CandidateFacts, Permission};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How long a looked-up permission is reused when an issue's facts are rebuilt.
pub const PERMISSION_TTL: Duration = Duration::from_secs(3600);

/// Poll state of every repository, keyed by `owner/name`. Serializable: persist it as JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PollState {
    pub repos: BTreeMap<String, RepoPoll>,
}

impl PollState {
    /// The state of one repository (created empty when absent).
    pub fn repo_mut(&mut self, repo: &RepoName) -> &mut RepoPoll {
        self.repos.entry(repo.full()).or_default()
    }

    #[expect(
        clippy::expect_used,
        reason = "plain data (strings, numbers, maps with string keys): serializing cannot fail"
    )]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("PollState serializes")
    }

    /// Reads what [`PollState::to_json`] wrote. A state that no longer parses (an older format)
    /// is an error the caller may answer by starting from `PollState::default()`.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Poll state of one repository.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RepoPoll {
    /// The latest `updated_at` seen on any issue or PR of the repository (GitHub's own clock, so
    /// no skew between machines). `None`: list the labelled issues in full.
    pub watermark: Option<Timestamp>,
    /// Open issues carrying the pickup label, by number.
    pub issues: BTreeMap<u64, CachedIssue>,
    /// Permissions looked up, by login.
    pub permissions: BTreeMap<String, CachedPermission>,
}

/// An issue's facts as of its `updated_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedIssue {
    pub facts: CandidateFacts,
    /// Digest of the body the facts were built from: a change seen between polls is an edit.
    pub body_digest: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedPermission {
    pub permission: Permission,
    pub fetched_at: Timestamp,
}

impl RepoPoll {
    /// A permission looked up less than [`PERMISSION_TTL`] before `now`.
    pub fn fresh_permission(&self, login: &str, now: Timestamp) -> Option<Permission> {
        let cached = self.permissions.get(login)?;
        (crate::clock::until(cached.fetched_at, now) < PERMISSION_TTL).then_some(cached.permission)
    }

    /// Moves the watermark forward (never back).
    pub fn advance_watermark(&mut self, seen: Timestamp) {
        if self.watermark.is_none_or(|w| seen > w) {
            self.watermark = Some(seen);
        }
    }

    /// The cached facts, by issue number.
    pub fn facts(&self) -> Vec<CandidateFacts> {
        self.issues.values().map(|c| c.facts.clone()).collect()
    }
}

/// A stable digest of an issue body (FNV-1a, hex): equal bodies, equal digests, across machines.
pub fn body_digest(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_only_moves_forward() {
        let mut p = RepoPoll::default();
        let t1: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let t2: Timestamp = "2025-01-02T00:00:00Z".parse().unwrap();
        p.advance_watermark(t2);
        p.advance_watermark(t1);
        assert_eq!(p.watermark, Some(t2));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = PollState::default();
        let repo: RepoName = "o/r".parse().unwrap();
        let now: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        s.repo_mut(&repo).advance_watermark(now);
        s.repo_mut(&repo).permissions.insert(
            "alice".into(),
            CachedPermission {
                permission: Permission::Maintain,
                fetched_at: now,
            },
        );
        let back = PollState::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            back.repos["o/r"].fresh_permission("alice", now),
            Some(Permission::Maintain)
        );
        let later = crate::clock::add(now, PERMISSION_TTL);
        assert_eq!(back.repos["o/r"].fresh_permission("alice", later), None);
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        assert_eq!(body_digest("abc"), body_digest("abc"));
        assert_ne!(body_digest("abc"), body_digest("abd"));
        assert_eq!(body_digest(""), "cbf29ce484222325");
    }
}
