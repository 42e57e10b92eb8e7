//! Service metrics in the Prometheus text format, and the small HTTP endpoint (`--metrics-addr`)
//! that serves them on `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::report::{LedgerSummary, RunStatus, TickReport};

/// How a tick ended, as counted by `issueloop_ticks_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TickOutcome {
    /// The tick returned a report (its runs may still have failed: that is a designed outcome).
    Ok,
    /// The tick returned an error.
    Error,
    /// The tick panicked.
    Panic,
    /// Shutdown stopped the tick before it returned (its cleanup did not finish in time).
    Cancelled,
}

impl TickOutcome {
    pub const ALL: [TickOutcome; 4] = [
        TickOutcome::Ok,
        TickOutcome::Error,
        TickOutcome::Panic,
        TickOutcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TickOutcome::Ok => "ok",
            TickOutcome::Error => "error",
            TickOutcome::Panic => "panic",
            TickOutcome::Cancelled => "cancelled",
        }
    }
}

/// Counters and gauges shared by the tick loop, the forge (API requests) and the endpoint.
/// Cheap to update from any task; [`render_prometheus`] reads a consistent copy.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Bumped on every forge request, so it is an atomic rather than behind the lock.
    api_requests: AtomicU64,
    state: Mutex<State>,
}

#[derive(Clone, Debug, Default)]
struct State {
    runs: BTreeMap<RunStatus, u64>,
    run_reasons: BTreeMap<(RunStatus, String), u64>,
    ticks: BTreeMap<TickOutcome, u64>,
    fires_skipped: u64,
    /// Runs that failed for an infrastructure reason (what makes `run --once` exit 1).
    infrastructure_failures: u64,
    tick_running: bool,
    last_tick_duration: Option<Duration>,
    last_tick_end: Option<jiff::Timestamp>,
    ledger: Option<LedgerSummary>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a handful of plain assignments, so a panic elsewhere cannot leave the
        // state half-written: keep serving it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Count `n` requests made to the forge's API.
    pub fn add_api_requests(&self, n: u64) {
        self.api_requests.fetch_add(n, Ordering::Relaxed);
    }

    pub fn tick_started(&self) {
        self.state().tick_running = true;
    }

    /// Record a finished tick: its outcome and duration, and, when it produced a report, its
    /// runs and the day's ledger.
    pub fn tick_finished(
        &self,
        outcome: TickOutcome,
        duration: Duration,
        finished_at: jiff::Timestamp,
        report: Option<&TickReport>,
    ) {
        let mut s = self.state();
        s.tick_running = false;
        *s.ticks.entry(outcome).or_default() += 1;
        s.last_tick_duration = Some(duration);
        s.last_tick_end = Some(finished_at);
        if let Some(report) = report {
            s.infrastructure_failures += crate::pipeline::TickVerdict::of(report)
                .infrastructure
                .len() as u64;
            for run in &report.runs {
                *s.runs.entry(run.status).or_default() += 1;
                if let Some(reason) = &run.reason {
                    *s.run_reasons
                        .entry((run.status, reason.clone()))
                        .or_default() += 1;
                }
            }
            s.ledger = Some(report.ledger.clone());
        }
    }

    /// Count scheduled fire times skipped because a tick was still running.
    pub fn fires_skipped(&self, n: u64) {
        self.state().fires_skipped += n;
    }
}

/// The metrics in the Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(metrics: &Metrics) -> String {
    let s = metrics.state().clone();
    let api_requests = metrics.api_requests.load(Ordering::Relaxed);
    let mut out = String::new();

    family(
        &mut out,
        "issueloop_runs_total",
        "counter",
        "Runs finished, by status.",
    );
    for status in RunStatus::ALL {
        let n = s.runs.get(&status).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "issueloop_runs_total{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    family(
        &mut out,
        "issueloop_run_reasons_total",
        "counter",
        "Failed and skipped runs, by status and reason.",
    );
    for ((status, reason), n) in &s.run_reasons {
        let _ = writeln!(
            out,
            "issueloop_run_reasons_total{{status=\"{}\",reason=\"{}\"}} {n}",
            status.as_str(),
            escape_label(reason)
        );
    }
    family(
        &mut out,
        "issueloop_infrastructure_failures_total",
        "counter",
        "Runs that failed for an infrastructure reason (workspace, forge, agent start).",
    );
    let _ = writeln!(
        out,
        "issueloop_infrastructure_failures_total {}",
        s.infrastructure_failures
    );
    family(
        &mut out,
        "issueloop_ticks_total",
        "counter",
        "Ticks finished, by outcome.",
    );
    for outcome in TickOutcome::ALL {
        let n = s.ticks.get(&outcome).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "issueloop_ticks_total{{outcome=\"{}\"}} {n}",
            outcome.as_str()
        );
    }
    family(
        &mut out,
        "issueloop_tick_fires_skipped_total",
        "counter",
        "Scheduled fire times skipped because the previous tick was still running.",
    );
    let _ = writeln!(
        out,
        "issueloop_tick_fires_skipped_total {}",
        s.fires_skipped
    );
    family(
        &mut out,
        "issueloop_tick_running",
        "gauge",
        "1 while a tick is running.",
    );
    let _ = writeln!(out, "issueloop_tick_running {}", u8::from(s.tick_running));
    if let (Some(duration), Some(end)) = (s.last_tick_duration, s.last_tick_end) {
        family(
            &mut out,
            "issueloop_last_tick_duration_seconds",
            "gauge",
            "How long the last tick took.",
        );
        let _ = writeln!(
            out,
            "issueloop_last_tick_duration_seconds {}",
            float(duration.as_secs_f64())
        );
        family(
            &mut out,
            "issueloop_last_tick_end_timestamp_seconds",
            "gauge",
            "When the last tick ended, in seconds since the Unix epoch.",
        );
        let _ = writeln!(
            out,
            "issueloop_last_tick_end_timestamp_seconds {}",
            float(end.as_millisecond() as f64 / 1000.0)
        );
    }
    if let Some(l) = &s.ledger {
        // Figures as of the last tick; the UTC day they belong to is in the `day` label.
        let day = l.day.to_string();
        for (name, help, value) in [
            (
                "issueloop_cost_today_usd",
                "Spent on the ledger's UTC day, as of the last tick.",
                l.spent_usd.dollars(),
            ),
            (
                "issueloop_reserved_today_usd",
                "Reserved by unsettled runs on the ledger's UTC day, as of the last tick.",
                l.reserved_usd.dollars(),
            ),
            (
                "issueloop_budget_remaining_usd",
                "Left of the daily cap on the ledger's UTC day, as of the last tick.",
                l.remaining_usd.dollars(),
            ),
            (
                "issueloop_daily_cap_usd",
                "The daily cap.",
                l.cap_usd.dollars(),
            ),
        ] {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name}{{day=\"{day}\"}} {}", float(value));
        }
    }
    family(
        &mut out,
        "issueloop_api_requests_total",
        "counter",
        "Requests made to the forge's API.",
    );
    let _ = writeln!(out, "issueloop_api_requests_total {api_requests}");
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A float the way Prometheus reads it (`+Inf`, `-Inf`, `NaN`).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl issueloop_config::Hint for MetricsError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            MetricsError::Bind { .. } => Some(std::borrow::Cow::Borrowed(
                "pick another `--metrics-addr` (e.g. `127.0.0.1:9464`)",
            )),
            MetricsError::LocalAddr(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot serve metrics on `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the metrics listener has no local address")]
    LocalAddr(#[source] std::io::Error),
}

/// Longest request head read before answering 431: `GET /metrics` needs a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Connections served at once; more are closed at once rather than queued behind slow ones.
const MAX_CONNECTIONS: usize = 256;

/// The `GET /metrics` endpoint on a TCP listener.
pub struct MetricsServer {
    listener: TcpListener,
    read_timeout: Duration,
}

impl MetricsServer {
    /// Listen on `addr` (`127.0.0.1:0` picks a free port).
    pub async fn bind(addr: SocketAddr) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(Self {
            listener,
            read_timeout: Duration::from_secs(5),
        })
    }

    /// How long a client may take to send its request head (default 5 s).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    pub fn local_addr(&self) -> Result<SocketAddr, MetricsError> {
        self.listener.local_addr().map_err(MetricsError::LocalAddr)
    }

    /// Answer requests until `shutdown` resolves. Each connection is served on its own task, so
    /// a slow client holds up nobody.
    pub async fn run(self, metrics: Arc<Metrics>, shutdown: impl Future<Output = ()>) {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: say so and back off instead of
                    // spinning on the same error.
                    tracing::warn!(error = %e, "metrics endpoint: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                tracing::warn!(%peer, "metrics endpoint: too many connections; closing this one");
                continue;
            };
            let metrics = Arc::clone(&metrics);
            let read_timeout = self.read_timeout;
            tokio::spawn(async move {
                if let Err(e) = serve_connection(stream, &metrics, read_timeout).await {
                    tracing::debug!(%peer, error = %e, "metrics endpoint: connection ended early");
                }
                drop(permit);
            });
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    metrics: &Metrics,
    read_timeout: Duration,
) -> std::io::Result<()> {
    let response = match tokio::time::timeout(read_timeout, read_head(&mut stream)).await {
        Err(_elapsed) => response("408 Request Timeout", "request timed out\n", false),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Head::TooLarge)) => response(
            "431 Request Header Fields Too Large",
            "request too large\n",
            false,
        ),
        Ok(Ok(Head::Closed)) => return Ok(()),
        Ok(Ok(Head::Complete(head))) => answer(&head, metrics),
    };
    tokio::time::timeout(read_timeout, async {
        stream.write_all(&response).await?;
        stream.shutdown().await?;
        // Read what the client may still be sending (the rest of an oversized request) before
        // closing: closing with unread input resets the connection, and the client could lose
        // the response.
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < MAX_DRAIN {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|_elapsed| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client neither read the response nor closed the connection",
        ))
    })
}

/// Most input read and discarded after answering, before the connection is closed anyway.
const MAX_DRAIN: usize = 64 * 1024;

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                Head::Closed
            } else {
                Head::Complete(buf)
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Head::Complete(buf));
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Ok(Head::TooLarge);
        }
    }
}

/// The response to one request head: `GET`/`HEAD /metrics` → 200, another method → 405,
/// any other path → 404.
fn answer(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match (method, path) {
        ("GET", "/metrics") => response("200 OK", &render_prometheus(metrics), true),
        ("HEAD", "/metrics") => {
            let mut r = response("200 OK", &render_prometheus(metrics), true);
            if let Some(end) = r.windows(4).position(|w| w == b"\r\n\r\n") {
                r.truncate(end + 4);
            }
            r
        }
        (_, "/metrics") => response("405 Method Not Allowed", "use GET\n", false),
        _ => response(
            "404 Not Found",
            "not found; metrics are at /metrics\n",
            false,
        ),
    }
}

fn response(status: &str, body: &str, prometheus: bool) -> Vec<u8> {
    let content_type = if prometheus {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RunSummary;
    use issueloop_config::Usd;

    fn report() -> TickReport {
        let run = |issue, status, reason: Option<&str>| RunSummary {
            repo: "acme/api".into(),
            issue,
            title: "t".into(),
            status,
            reason: reason.map(str::to_owned),
            detail: None,
            budget_usd: Usd::from_dollars(0.5),
            cost_usd: Usd::from_dollars(0.25),
            pr: None,
            budget_explanation: None,
        };
        TickReport {
            started_at: "2025-06-01T12:00:00Z".parse().expect("timestamp"),
            duration: Duration::from_millis(1500),
            dry_run: false,
            runs: vec![
                run(1, RunStatus::PrOpened, None),
                run(2, RunStatus::Failed, Some("policy_violation")),
                run(3, RunStatus::Skipped, Some("daily_cap_reached")),
                run(4, RunStatus::Skipped, Some("daily_cap_reached")),
            ],
            ledger: LedgerSummary {
                day: jiff::civil::date(2025, 6, 1),
                cap_usd: Usd::from_dollars(1.0),
                spent_usd: Usd::from_dollars(0.75),
                reserved_usd: Usd::from_dollars(0.0),
                remaining_usd: Usd::from_dollars(0.25),
            },
            would: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn render_before_any_tick() {
        let m = Metrics::new();
        let text = render_prometheus(&m);
        assert!(text.contains("issueloop_runs_total{status=\"pr_opened\"} 0\n"));
        assert!(text.contains("issueloop_ticks_total{outcome=\"ok\"} 0\n"));
        assert!(!text.contains("issueloop_cost_today_usd"), "no ledger yet");
    }

    #[test]
    fn infrastructure_failures_are_counted() {
        let m = Metrics::new();
        let end: jiff::Timestamp = "2025-06-01T12:00:01.5Z".parse().expect("timestamp");
        let mut r = report();
        m.tick_finished(TickOutcome::Ok, Duration::from_secs(1), end, Some(&r));
        let text = render_prometheus(&m);
        assert!(
            text.contains("\nissueloop_infrastructure_failures_total 0\n"),
            "{text}"
        );
        r.runs[1].reason = Some("workspace_error".into());
        m.tick_finished(TickOutcome::Ok, Duration::from_secs(1), end, Some(&r));
        let text = render_prometheus(&m);
        assert!(
            text.contains("\nissueloop_infrastructure_failures_total 1\n"),
            "{text}"
        );
    }

    #[test]
    fn render_after_ticks() {
        let m = Metrics::new();
        m.tick_started();
        let end: jiff::Timestamp = "2025-06-01T12:00:01.5Z".parse().expect("timestamp");
        m.tick_finished(
            TickOutcome::Ok,
            Duration::from_millis(1500),
            end,
            Some(&report()),
        );
        m.tick_finished(TickOutcome::Panic, Duration::from_secs(2), end, None);
        m.fires_skipped(3);
        m.add_api_requests(7);
        m.add_api_requests(5);
        insta::assert_snapshot!(render_prometheus(&m));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.5), "0.5");
    }

    #[test]
    fn routing() {
        let m = Metrics::new();
        let text = |r: Vec<u8>| String::from_utf8(r).expect("utf-8 response");
        let ok = text(answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &m));
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("issueloop_runs_total"), "{ok}");
        let query = text(answer(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n", &m));
        assert!(query.starts_with("HTTP/1.1 200 OK\r\n"), "{query}");
        let head = text(answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", &m));
        assert!(
            head.ends_with("\r\n\r\n") && head.contains("Content-Length"),
            "{head}"
        );
        let post = text(answer(b"POST /metrics HTTP/1.1\r\n\r\n", &m));
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let other = text(answer(b"GET / HTTP/1.1\r\n\r\n", &m));
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        let garbage = text(answer(b"\xff\xfe\r\n\r\n", &m));
        assert!(garbage.starts_with("HTTP/1.1 404"), "{garbage}");
    }
}
