//! Counters of the requests a forge made: how many, how long they took, what was waited. The
//! pipeline logs them per run (take a snapshot before and after, [`RequestStats::since`]).

use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Of those, answered `304 Not Modified` (free of GitHub's primary rate limit).
    pub not_modified: u64,
    /// Of those, content-creating or changing (POST, PATCH, PUT, DELETE).
    pub writes: u64,
    /// Requests sent again after a 5xx, a timeout or a rate limit.
    pub retries: u64,
    /// Times a rate limit (primary, secondary, or the write cap) made us wait.
    pub rate_limit_waits: u64,
    /// Milliseconds spent waiting on rate limits and back-off.
    pub waited_ms: u64,
    /// Sum and maximum of request latencies, in milliseconds.
    pub latency_total_ms: u64,
    pub latency_max_ms: u64,
}

impl RequestStats {
    /// What happened after `earlier` (a snapshot of the same counters); the maximum latency is
    /// the current one, not a difference.
    pub fn since(&self, earlier: &RequestStats) -> RequestStats {
        RequestStats {
            requests: self.requests.saturating_sub(earlier.requests),
            not_modified: self.not_modified.saturating_sub(earlier.not_modified),
            writes: self.writes.saturating_sub(earlier.writes),
            retries: self.retries.saturating_sub(earlier.retries),
            rate_limit_waits: self
                .rate_limit_waits
                .saturating_sub(earlier.rate_limit_waits),
            waited_ms: self.waited_ms.saturating_sub(earlier.waited_ms),
            latency_total_ms: self
                .latency_total_ms
                .saturating_sub(earlier.latency_total_ms),
            latency_max_ms: self.latency_max_ms,
        }
    }

    /// Requests that count against GitHub's primary rate limit (a `304` does not).
    pub fn billable(&self) -> u64 {
        self.requests.saturating_sub(self.not_modified)
    }
}

impl std::fmt::Display for RequestStats {
    /// One line for a run's log: `14 requests (13 billable, 6 writes, 1 retried), waited 0 ms,
    /// latency 120 ms in all, 30 ms at most`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests ({} billable, {} writes, {} retried), waited {} ms, latency {} ms in all, {} ms at most",
            self.requests,
            self.billable(),
            self.writes,
            self.retries,
            self.waited_ms,
            self.latency_total_ms,
            self.latency_max_ms
        )
    }
}
