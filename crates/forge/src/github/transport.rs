//! One request to GitHub, politely: a timeout on every request, waits for the primary rate limit
//! (`x-ratelimit-reset`) and the secondary one (`retry-after`, else exponential back-off from a
//! minute), a cap on content-creating requests per minute, bounded retries of idempotent requests
//! on 5xx and timeouts (writes are never retried here: the caller re-reads state first), ETags
//! remembered in memory, and counters.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use issueloop_config::human_duration;

use http::{HeaderMap, HeaderValue, header};
use jiff::Timestamp;
use octocrab::Octocrab;
use serde_json::Value;

use crate::clock::{Clock, add, until};
use crate::error::ForgeError;
use crate::stats::RequestStats;

/// How patient the GitHub forge is. Defaults follow GitHub's guidance.
#[derive(Clone, Debug)]
pub struct Politeness {
    /// Longest wait for the primary rate limit to reset before failing instead.
    pub max_rate_wait: Duration,
    /// First wait after a secondary rate limit without `retry-after`; doubled each time.
    pub secondary_backoff: Duration,
    /// Attempts of one request under secondary rate limiting before failing.
    pub secondary_attempts: u32,
    /// Retries of an idempotent request after a 5xx, a timeout or a broken connection.
    pub server_retries: u32,
    /// First back-off before such a retry; doubled each time.
    pub server_backoff: Duration,
    /// Rounds of "re-read, then try again" for a write whose outcome is unknown.
    pub write_attempts: u32,
}

impl Default for Politeness {
    fn default() -> Self {
        Self {
            max_rate_wait: Duration::from_secs(15 * 60),
            secondary_backoff: Duration::from_secs(60),
            secondary_attempts: 4,
            server_retries: 3,
            server_backoff: Duration::from_secs(1),
            write_attempts: 3,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn is_write(self) -> bool {
        self != Method::Get
    }
}

/// Whether sending a request twice is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, and writes whose repetition changes nothing (add a label, delete a ref).
    Idempotent,
    /// Creates something (a comment, a PR, a ref): on an unknown outcome, return to the caller.
    Never,
}

/// An answer GitHub gave: any 2xx/304, or a 4xx the caller interprets (404, 422…).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
    /// GitHub's `message` plus its `errors[]` messages, for 4xx answers.
    pub error: Option<String>,
    pub headers: HeaderMap,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
    ) -> Result<T, ForgeError> {
        let mut de = serde_json::Deserializer::from_str(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| ForgeError::BadResponse {
            method: method.to_owned(),
            path: path.to_owned(),
            message: format!("at `{}`: {}", e.path(), e.inner()),
        })
    }

    /// The error text, lower-cased, for matching GitHub's messages.
    pub fn error_text(&self) -> String {
        self.error.clone().unwrap_or_default().to_ascii_lowercase()
    }

    /// Whether `Link` names a next page.
    pub fn has_next_page(&self) -> bool {
        self.headers
            .get_all(header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("rel=\"next\""))
    }
}

pub(crate) struct Transport {
    client: Octocrab,
    api: String,
    clock: Arc<dyn Clock>,
    politeness: Politeness,
    timeout: Duration,
    max_writes_per_minute: u32,
    writes: tokio::sync::Mutex<VecDeque<Timestamp>>,
    /// path → (ETag, body, `Link` header) of the last 200 answer.
    etags: Mutex<HashMap<String, Cached>>,
    /// Last seen `(x-ratelimit-remaining, x-ratelimit-reset)`.
    window: Mutex<Option<(u64, i64)>>,
    stats: Mutex<RequestStats>,
}

const ETAG_CACHE_LIMIT: usize = 1024;
const PRIMARY_WAITS_PER_REQUEST: u32 = 3;

impl Transport {
    pub fn new(
        client: Octocrab,
        api: String,
        clock: Arc<dyn Clock>,
        politeness: Politeness,
        timeout: Duration,
        max_writes_per_minute: u32,
    ) -> Self {
        Self {
            client,
            api,
            clock,
            politeness,
            timeout,
            max_writes_per_minute: max_writes_per_minute.max(1),
            writes: tokio::sync::Mutex::new(VecDeque::new()),
            etags: Mutex::new(HashMap::new()),
            window: Mutex::new(None),
            stats: Mutex::new(RequestStats::default()),
        }
    }

    pub fn api(&self) -> &str {
        &self.api
    }

    pub fn client(&self) -> &Octocrab {
        &self.client
    }

    pub fn politeness(&self) -> &Politeness {
        &self.politeness
    }

    pub fn stats(&self) -> RequestStats {
        lock(&self.stats).clone()
    }

    pub async fn get(&self, path: &str) -> Result<Answer, ForgeError> {
        self.send(Method::Get, path, None, Retry::Idempotent).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Answer, ForgeError> {
        let m = method.as_str();
        let mut attempt: u32 = 0;
        let mut server_failures: u32 = 0;
        let mut secondary_hits: u32 = 0;
        let mut primary_waits: u32 = 0;
        loop {
            self.wait_for_primary_window(m, path, attempt > 0).await?;
            if method.is_write() {
                self.wait_for_write_slot().await;
            }
            attempt += 1;
            let etag = (method == Method::Get)
                .then(|| lock(&self.etags).get(path).map(|c| c.etag.clone()))
                .flatten();
            let started = Instant::now();
            let outcome =
                tokio::time::timeout(self.timeout, self.exec(method, path, body, etag.as_deref()))
                    .await;
            let latency = started.elapsed();
            self.count(method, attempt, latency);

            let failure = match outcome {
                Err(_) => Failure::Timeout,
                Ok(Err(e)) => Failure::Transport(transport_message(&e)),
                Ok(Ok(raw)) => {
                    let Raw {
                        status,
                        headers,
                        body: text,
                        error,
                    } = raw;
                    self.note_window(&headers);
                    tracing::debug!(
                        method = m,
                        path,
                        status,
                        latency_ms = latency.as_millis() as u64,
                        attempt,
                        "github request"
                    );
                    match status {
                        304 => {
                            lock(&self.stats).not_modified += 1;
                            let cached = lock(&self.etags).get(path).cloned();
                            match cached {
                                Some(cached) => {
                                    // The 304 carries no `Link`: pagination comes from the 200.
                                    let mut headers = headers;
                                    if let Some(link) = cached.link {
                                        headers.insert(header::LINK, link);
                                    }
                                    return Ok(Answer {
                                        status: 200,
                                        body: cached.body,
                                        error: None,
                                        headers,
                                    });
                                }
                                // Nothing to reuse (evicted): ask again without the ETag.
                                None => {
                                    lock(&self.etags).remove(path);
                                    continue;
                                }
                            }
                        }
                        200..=299 => {
                            if method == Method::Get {
                                self.remember_etag(path, &headers, &text);
                            }
                            return Ok(Answer {
                                status,
                                body: text,
                                error: None,
                                headers,
                            });
                        }
                        _ => {
                            let (message, details) = error.unwrap_or_default();
                            let text = if details.is_empty() {
                                message.clone()
                            } else {
                                format!("{message}: {}", details.join("; "))
                            };
                            let lower = text.to_ascii_lowercase();
                            let remaining = header_u64(&headers, "x-ratelimit-remaining");
                            if status == 401 {
                                return Err(ForgeError::Unauthorized {
                                    api: self.api.clone(),
                                    method: m.to_owned(),
                                    path: path.to_owned(),
                                    message: text,
                                });
                            }
                            if matches!(status, 403 | 429)
                                && remaining == Some(0)
                                && !lower.contains("secondary")
                            {
                                // Primary limit: refused, not applied; wait for the reset.
                                primary_waits += 1;
                                if primary_waits > PRIMARY_WAITS_PER_REQUEST {
                                    return Err(ForgeError::Refused {
                                        method: m.to_owned(),
                                        path: path.to_owned(),
                                        status,
                                        message: text,
                                    });
                                }
                                lock(&self.stats).retries += 1;
                                continue;
                            }
                            let retry_after = header_u64(&headers, header::RETRY_AFTER.as_str());
                            if matches!(status, 403 | 429)
                                && (retry_after.is_some() || lower.contains("secondary rate limit"))
                            {
                                // Refused, not applied: safe to send again, writes included.
                                secondary_hits += 1;
                                if secondary_hits >= self.politeness.secondary_attempts {
                                    return Err(ForgeError::SecondaryRateLimit {
                                        method: m.to_owned(),
                                        path: path.to_owned(),
                                        attempts: secondary_hits,
                                    });
                                }
                                let wait = match retry_after {
                                    Some(secs) => Duration::from_secs(secs),
                                    None => self
                                        .politeness
                                        .secondary_backoff
                                        .saturating_mul(1 << (secondary_hits - 1).min(16)),
                                };
                                tracing::warn!(
                                    "`{m} {path}`: secondary rate limit (attempt {attempt}); retrying in {}",
                                    human_duration(wait)
                                );
                                self.wait(wait).await;
                                lock(&self.stats).retries += 1;
                                continue;
                            }
                            if status >= 500 {
                                Failure::Server(status, text)
                            } else {
                                return Ok(Answer {
                                    status,
                                    body: String::new(),
                                    error: Some(text),
                                    headers,
                                });
                            }
                        }
                    }
                }
            };

            // 5xx, timeout or transport failure.
            let maybe_applied = method.is_write();
            if retry == Retry::Idempotent && server_failures < self.politeness.server_retries {
                let backoff = self
                    .politeness
                    .server_backoff
                    .saturating_mul(1 << server_failures.min(16));
                server_failures += 1;
                // Not an error yet: only the final failure is, and the caller reports it.
                tracing::warn!(
                    "`{m} {path}` {} (attempt {attempt}); retrying in {}",
                    failure.describe(),
                    human_duration(backoff)
                );
                self.wait(backoff).await;
                lock(&self.stats).retries += 1;
                continue;
            }
            return Err(match failure {
                Failure::Timeout => ForgeError::Timeout {
                    method: m.to_owned(),
                    path: path.to_owned(),
                    timeout: self.timeout,
                    attempts: attempt,
                    maybe_applied,
                },
                Failure::Transport(message) => ForgeError::Transport {
                    api: self.api.clone(),
                    method: m.to_owned(),
                    path: path.to_owned(),
                    message,
                    maybe_applied,
                },
                Failure::Server(status, message) => ForgeError::Server {
                    method: m.to_owned(),
                    path: path.to_owned(),
                    status,
                    attempts: attempt,
                    message,
                    maybe_applied,
                },
            });
        }
    }

    /// Sends once and reads the whole answer (the timeout covers both).
    async fn exec(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        etag: Option<&str>,
    ) -> Result<Raw, octocrab::Error> {
        let response = match method {
            Method::Get => {
                let mut headers = HeaderMap::new();
                if let Some(value) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
                    headers.insert(header::IF_NONE_MATCH, value);
                }
                self.client._get_with_headers(path, Some(headers)).await?
            }
            Method::Post => self.client._post(path, body).await?,
            Method::Patch => self.client._patch(path, body).await?,
            Method::Delete => self.client._delete(path, body).await?,
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if (200..300).contains(&status) {
            let body = self.client.body_to_string(response).await?;
            return Ok(Raw {
                status,
                headers,
                body,
                error: None,
            });
        }
        if status == 304 {
            return Ok(Raw {
                status,
                headers,
                body: String::new(),
                error: None,
            });
        }
        // octocrab's `Display` of a GitHub error says only "GitHub": match the variant and read
        // its message and errors.
        let error = match octocrab::map_github_error(response).await {
            Err(octocrab::Error::GitHub { source, .. }) => {
                let details = source
                    .errors
                    .unwrap_or_default()
                    .iter()
                    .map(error_detail)
                    .filter(|s| !s.is_empty())
                    .collect();
                (source.message, details)
            }
            Err(other) => return Err(other),
            Ok(_) => (format!("status {status}"), Vec::new()),
        };
        Ok(Raw {
            status,
            headers,
            body: String::new(),
            error: Some(error),
        })
    }

    fn count(&self, method: Method, attempt: u32, latency: Duration) {
        let mut s = lock(&self.stats);
        s.requests += 1;
        if method.is_write() {
            s.writes += 1;
        }
        let _ = attempt;
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        s.latency_total_ms = s.latency_total_ms.saturating_add(ms);
        s.latency_max_ms = s.latency_max_ms.max(ms);
    }

    async fn wait(&self, d: Duration) {
        {
            let mut s = lock(&self.stats);
            s.rate_limit_waits += 1;
            s.waited_ms = s
                .waited_ms
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        }
        self.clock.sleep(d).await;
    }

    fn note_window(&self, headers: &HeaderMap) {
        if let (Some(remaining), Some(reset)) = (
            header_u64(headers, "x-ratelimit-remaining"),
            header_u64(headers, "x-ratelimit-reset").and_then(|r| i64::try_from(r).ok()),
        ) {
            *lock(&self.window) = Some((remaining, reset));
        }
    }

    /// Before any request: when the last answer said the primary limit is used up, wait for its
    /// reset (or fail when that is too far).
    async fn wait_for_primary_window(
        &self,
        method: &str,
        path: &str,
        sent: bool,
    ) -> Result<(), ForgeError> {
        let window = *lock(&self.window);
        let Some((0, reset)) = window else {
            return Ok(());
        };
        let now = self.clock.now();
        let reset_at = Timestamp::from_second(reset).unwrap_or(now);
        if reset_at > now {
            // One second past the reset: GitHub's clock and ours are not the same clock.
            let wait = until(now, reset_at) + Duration::from_secs(1);
            if wait > self.politeness.max_rate_wait {
                return Err(ForgeError::RateLimited {
                    api: self.api.clone(),
                    method: method.to_owned(),
                    path: path.to_owned(),
                    reset: reset_at,
                    wait,
                    max_wait: self.politeness.max_rate_wait,
                    sent,
                });
            }
            tracing::warn!(
                "primary rate limit used up: waiting {} for its reset before `{method} {path}`",
                human_duration(wait)
            );
            self.wait(wait).await;
        }
        *lock(&self.window) = None;
        Ok(())
    }

    /// Content-creating requests: at most `max_writes_per_minute` in any minute.
    async fn wait_for_write_slot(&self) {
        let mut writes = self.writes.lock().await;
        let minute = Duration::from_secs(60);
        let now = self.clock.now();
        while writes.front().is_some_and(|t| until(*t, now) >= minute) {
            writes.pop_front();
        }
        if writes.len() >= self.max_writes_per_minute as usize
            && let Some(oldest) = writes.front().copied()
        {
            let wait = until(now, add(oldest, minute));
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "write cap reached: waiting"
            );
            self.wait(wait).await;
            let now = self.clock.now();
            while writes.front().is_some_and(|t| until(*t, now) >= minute) {
                writes.pop_front();
            }
        }
        writes.push_back(self.clock.now());
    }

    fn remember_etag(&self, path: &str, headers: &HeaderMap, body: &str) {
        let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return;
        };
        let mut etags = lock(&self.etags);
        if etags.len() >= ETAG_CACHE_LIMIT {
            etags.clear();
        }
        etags.insert(
            path.to_owned(),
            Cached {
                etag: etag.to_owned(),
                body: body.to_owned(),
                link: headers.get(header::LINK).cloned(),
            },
        );
    }
}

enum Failure {
    Timeout,
    Transport(String),
    Server(u16, String),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Timeout => "got no answer in time".into(),
            Failure::Transport(m) => format!("could not be sent: {m}"),
            Failure::Server(s, m) => format!("answered {s} {m}"),
        }
    }
}

/// One entry of GitHub's `errors` list in words.
fn error_detail(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let field = |k: &str| other.get(k).and_then(Value::as_str).unwrap_or("");
                format!("{} {} {}", field("resource"), field("field"), field("code"))
                    .trim()
                    .to_owned()
            }),
    }
}

#[derive(Clone)]
struct Cached {
    etag: String,
    body: String,
    link: Option<HeaderValue>,
}

struct Raw {
    status: u16,
    headers: HeaderMap,
    body: String,
    error: Option<(String, Vec<String>)>,
}

/// A transport error in words, its causes included (octocrab's own `Display` names only the
/// layer). None of these carries request headers, so no token.
fn transport_message(e: &octocrab::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters and caches only: a panic elsewhere cannot leave them unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
