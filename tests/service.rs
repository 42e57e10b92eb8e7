//! `serve` on paused tokio time: ticks fire on schedule, never overlap, survive errors and
//! panics, and shutdown waits for the running tick's cleanup; plus the metrics endpoint over
//! loopback and the signal helper.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use issueloop::metrics::{Metrics, MetricsServer, render_prometheus};
use issueloop::report::{LedgerSummary, TickReport};
use issueloop::service::{
    Clock, Schedule, ServeOptions, ServeSummary, TickEnd, TickInput, run_once, serve,
};
use issueloop::shutdown::{ShutdownPhase, shutdown_signal};
use issueloop_config::Usd;
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

const START: &str = "2025-06-01T12:00:10Z";

fn at(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn every_minute() -> Schedule {
    Schedule::new("0 * * * * *", "UTC").expect("parses")
}

fn options() -> ServeOptions {
    ServeOptions {
        grace: Duration::from_secs(60),
        cleanup_limit: Duration::from_secs(30),
        clock: Clock::following_tokio_from(at(START)),
        metrics: None,
    }
}

fn empty_report(started_at: Timestamp) -> TickReport {
    TickReport {
        started_at,
        duration: Duration::ZERO,
        dry_run: false,
        runs: vec![],
        ledger: LedgerSummary {
            day: started_at.to_zoned(jiff::tz::TimeZone::UTC).date(),
            cap_usd: Usd::from_dollars(10.0),
            spent_usd: Usd::from_dollars(0.0),
            reserved_usd: Usd::from_dollars(0.0),
            remaining_usd: Usd::from_dollars(10.0),
        },
        would: vec![],
        errors: vec![],
    }
}

/// `(sequence, scheduled_for, started_at, ended_at)` of one tick.
type TickRecord = (u64, Timestamp, Timestamp, Option<Timestamp>);

/// What the fake ticks saw: each tick's input and the wall-clock time it ended.
#[derive(Default)]
struct Log {
    ticks: Mutex<Vec<TickRecord>>,
}

impl Log {
    fn started(&self, input: &TickInput) {
        let mut t = self.ticks.lock().expect("log lock");
        t.push((input.sequence, input.scheduled_for, input.started_at, None));
    }

    fn ended(&self, sequence: u64, at: Timestamp) {
        let mut t = self.ticks.lock().expect("log lock");
        if let Some(entry) = t.iter_mut().find(|e| e.0 == sequence) {
            entry.3 = Some(at);
        }
    }

    fn scheduled(&self) -> Vec<Timestamp> {
        let t = self.ticks.lock().expect("log lock");
        t.iter().map(|e| e.1).collect()
    }

    fn entries(&self) -> Vec<TickRecord> {
        self.ticks.lock().expect("log lock").clone()
    }
}

/// A shutdown future fired by the test's tick itself (an event, not a timer).
fn trigger() -> (
    Arc<Mutex<Option<oneshot::Sender<()>>>>,
    impl Future<Output = ()> + Send,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let fut = async move {
        // A dropped sender means the test is over; stop too.
        let _ = rx.await;
    };
    (Arc::new(Mutex::new(Some(tx))), fut)
}

fn fire(t: &Mutex<Option<oneshot::Sender<()>>>) {
    if let Some(tx) = t.lock().expect("trigger lock").take() {
        let _ = tx.send(());
    }
}

#[tokio::test(start_paused = true)]
async fn ticks_fire_on_schedule() {
    let log = Arc::new(Log::default());
    let (stop, shutdown) = trigger();
    let opts = options();
    let clock = opts.clock.clone();
    let summary = serve(
        &every_minute(),
        opts,
        |input: TickInput| {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            let clock = clock.clone();
            async move {
                log.started(&input);
                // Each tick takes 20 s of (virtual) time.
                tokio::time::sleep(Duration::from_secs(20)).await;
                log.ended(input.sequence, clock.now());
                if input.sequence == 3 {
                    fire(&stop);
                }
                Ok::<_, String>(empty_report(input.started_at))
            }
        },
        shutdown,
    )
    .await
    .expect("serve runs");

    assert_eq!(
        log.scheduled(),
        vec![
            at("2025-06-01T12:01:00Z"),
            at("2025-06-01T12:02:00Z"),
            at("2025-06-01T12:03:00Z")
        ]
    );
    for (seq, scheduled, started, ended) in log.entries() {
        assert_eq!(started, scheduled, "tick {seq} started on its fire time");
        assert_eq!(
            ended,
            Some(scheduled + jiff::SignedDuration::from_secs(20)),
            "tick {seq}"
        );
    }
    assert_eq!(
        summary,
        ServeSummary {
            ticks: 3,
            completed: 3,
            stopped_mid_tick: false,
            ..ServeSummary::default()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_tick_never_overlaps_and_skips_the_fires_it_ran_past() {
    let log = Arc::new(Log::default());
    let running = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let (stop, shutdown) = trigger();
    let metrics = Arc::new(Metrics::new());
    let opts = ServeOptions {
        metrics: Some(Arc::clone(&metrics)),
        ..options()
    };
    let clock = opts.clock.clone();
    let summary = serve(
        &every_minute(),
        opts,
        |input: TickInput| {
            let (log, stop, clock) = (Arc::clone(&log), Arc::clone(&stop), clock.clone());
            let (running, most_at_once) = (Arc::clone(&running), Arc::clone(&most_at_once));
            async move {
                let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
                most_at_once.fetch_max(now_running, Ordering::SeqCst);
                log.started(&input);
                // The first tick runs 2.5 minutes, past the 12:02 and 12:03 fires.
                let work = if input.sequence == 1 { 150 } else { 5 };
                tokio::time::sleep(Duration::from_secs(work)).await;
                log.ended(input.sequence, clock.now());
                running.fetch_sub(1, Ordering::SeqCst);
                if input.sequence == 3 {
                    fire(&stop);
                }
                Ok::<_, String>(empty_report(input.started_at))
            }
        },
        shutdown,
    )
    .await
    .expect("serve runs");

    assert_eq!(most_at_once.load(Ordering::SeqCst), 1, "ticks overlapped");
    assert_eq!(
        log.scheduled(),
        vec![
            at("2025-06-01T12:01:00Z"),
            at("2025-06-01T12:04:00Z"),
            at("2025-06-01T12:05:00Z")
        ]
    );
    let entries = log.entries();
    for pair in entries.windows(2) {
        let previous_end = pair[0].3.expect("previous tick ended");
        assert!(pair[1].2 >= previous_end, "tick {} overlapped", pair[1].0);
    }
    assert_eq!(summary.fires_skipped, 2);
    let text = render_prometheus(&metrics);
    assert!(
        text.contains("issueloop_tick_fires_skipped_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("issueloop_ticks_total{outcome=\"ok\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("issueloop_last_tick_duration_seconds 5\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tick_that_panics_or_errors_does_not_stop_the_loop() {
    let log = Arc::new(Log::default());
    let (stop, shutdown) = trigger();
    let metrics = Arc::new(Metrics::new());
    let opts = ServeOptions {
        metrics: Some(Arc::clone(&metrics)),
        ..options()
    };
    let summary = serve(
        &every_minute(),
        opts,
        |input: TickInput| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            async move {
                log.started(&input);
                match input.sequence {
                    1 => panic!("the pipeline hit a bug"),
                    2 => Err("the forge is down".to_owned()),
                    _ => {
                        fire(&stop);
                        Ok(empty_report(input.started_at))
                    }
                }
            }
        },
        shutdown,
    )
    .await
    .expect("serve runs");

    assert_eq!(log.scheduled().len(), 3);
    assert_eq!(
        summary,
        ServeSummary {
            ticks: 3,
            completed: 1,
            failed: 1,
            panicked: 1,
            stopped_mid_tick: false,
            ..ServeSummary::default()
        }
    );
    let text = render_prometheus(&metrics);
    for outcome in ["ok", "error", "panic"] {
        assert!(
            text.contains(&format!(
                "issueloop_ticks_total{{outcome=\"{outcome}\"}} 1\n"
            )),
            "{text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_mid_tick_stops_new_work_and_waits_for_cleanup() {
    let log = Arc::new(Log::default());
    let (stop, shutdown) = trigger();
    let cleaned = Arc::new(AtomicBool::new(false));
    let issues_started = Arc::new(AtomicUsize::new(0));
    let opts = options();
    let clock = opts.clock.clone();
    let begun = Instant::now();
    let summary = serve(
        &every_minute(),
        opts,
        |input: TickInput| {
            let (log, stop, clock) = (Arc::clone(&log), Arc::clone(&stop), clock.clone());
            let (cleaned, issues_started) = (Arc::clone(&cleaned), Arc::clone(&issues_started));
            async move {
                log.started(&input);
                // Three issues of 30 s each; shutdown is requested during the first one.
                for _ in 0..3 {
                    if input.shutdown.is_stopping() {
                        break;
                    }
                    issues_started.fetch_add(1, Ordering::SeqCst);
                    fire(&stop);
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                assert_eq!(input.shutdown.phase(), ShutdownPhase::Stopping);
                // Cleanup: release claims, remove worktrees.
                tokio::time::sleep(Duration::from_secs(10)).await;
                cleaned.store(true, Ordering::SeqCst);
                log.ended(input.sequence, clock.now());
                Ok::<_, String>(empty_report(input.started_at))
            }
        },
        shutdown,
    )
    .await
    .expect("serve runs");

    assert!(
        cleaned.load(Ordering::SeqCst),
        "serve returned before cleanup"
    );
    assert_eq!(
        issues_started.load(Ordering::SeqCst),
        1,
        "new work after stop"
    );
    assert_eq!(log.scheduled().len(), 1, "a tick started after the stop");
    // 50 s to the first fire, 30 s of work, 10 s of cleanup; well inside the 60 s grace.
    assert_eq!(begun.elapsed(), Duration::from_secs(90));
    assert!(summary.stopped_mid_tick && summary.clean(), "{summary:?}");
}

#[tokio::test(start_paused = true)]
async fn work_that_outlives_the_grace_period_is_aborted_then_cleaned_up() {
    let (stop, shutdown) = trigger();
    let aborted_after = Arc::new(Mutex::new(None));
    let cleaned = Arc::new(AtomicBool::new(false));
    let summary = serve(
        &every_minute(),
        options(),
        |input: TickInput| {
            let stop = Arc::clone(&stop);
            let (aborted_after, cleaned) = (Arc::clone(&aborted_after), Arc::clone(&cleaned));
            async move {
                let started = Instant::now();
                fire(&stop);
                // An agent that would run for an hour; stopped only by the abort.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    () = input.shutdown.aborting() => {
                        *aborted_after.lock().expect("lock") = Some(started.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
                cleaned.store(true, Ordering::SeqCst);
                Ok::<_, String>(empty_report(input.started_at))
            }
        },
        shutdown,
    )
    .await
    .expect("serve runs");

    assert_eq!(
        *aborted_after.lock().expect("lock"),
        Some(Duration::from_secs(60)),
        "aborted exactly when the grace period ended"
    );
    assert!(cleaned.load(Ordering::SeqCst));
    assert_eq!(summary.completed, 1);
    assert!(summary.clean());
}

#[tokio::test(start_paused = true)]
async fn cleanup_that_hangs_is_dropped_after_its_limit() {
    let (stop, shutdown) = trigger();
    let begun = Instant::now();
    let summary = serve(
        &every_minute(),
        options(),
        |input: TickInput| {
            let stop = Arc::clone(&stop);
            async move {
                fire(&stop);
                let _ = &input;
                std::future::pending::<()>().await;
                Ok::<_, String>(empty_report(input.started_at))
            }
        },
        shutdown,
    )
    .await
    .expect("serve runs");
    // 50 s to the fire, 60 s of grace, 30 s of cleanup limit.
    assert_eq!(begun.elapsed(), Duration::from_secs(140));
    assert_eq!(summary.cancelled, 1);
    assert!(!summary.clean());
}

#[tokio::test(start_paused = true)]
async fn shutdown_between_ticks_returns_at_once() {
    let ticks = Arc::new(AtomicUsize::new(0));
    let begun = Instant::now();
    let summary = serve(
        &every_minute(),
        options(),
        |input: TickInput| {
            let ticks = Arc::clone(&ticks);
            async move {
                ticks.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(empty_report(input.started_at))
            }
        },
        // A signal 30 s in, before the first fire at 12:01:00.
        tokio::time::sleep(Duration::from_secs(30)),
    )
    .await
    .expect("serve runs");
    assert_eq!(ticks.load(Ordering::SeqCst), 0);
    assert_eq!(begun.elapsed(), Duration::from_secs(30));
    assert_eq!(summary, ServeSummary::default());
}

#[tokio::test(start_paused = true)]
async fn run_once_follows_the_same_shutdown_protocol() {
    let notify = Arc::new(Notify::new());
    let waiter = Arc::clone(&notify);
    let end = run_once(
        &options(),
        |input: TickInput| {
            let notify = Arc::clone(&notify);
            async move {
                notify.notify_one();
                input.shutdown.stopping().await;
                Ok::<_, String>(empty_report(input.started_at))
            }
        },
        async move { waiter.notified().await },
    )
    .await;
    assert!(matches!(end, TickEnd::Completed(_)), "{end:?}");
}

#[tokio::test]
async fn sigterm_resolves_the_shutdown_signal() {
    let signal = shutdown_signal().expect("handlers installed");
    // SAFETY: `kill` on our own pid with a signal we now handle; no memory is touched.
    let rc = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    assert_eq!(rc, 0);
    tokio::time::timeout(Duration::from_secs(10), signal)
        .await
        .expect("SIGTERM was seen");
}

async fn http(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send request");
    let mut out = String::new();
    stream
        .read_to_string(&mut out)
        .await
        .expect("read response");
    out
}

#[tokio::test]
async fn metrics_endpoint_over_loopback() {
    let metrics = Arc::new(Metrics::new());
    metrics.add_api_requests(3);
    let server = MetricsServer::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind")
        .with_read_timeout(Duration::from_millis(300));
    let addr = server.local_addr().expect("addr");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let served = tokio::spawn(server.run(Arc::clone(&metrics), async move {
        let _ = stop_rx.await;
    }));

    // A client that connects and says nothing must not hold up the others.
    let mut idle = TcpStream::connect(addr).await.expect("idle connect");

    let ok = http(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
    assert!(ok.contains("issueloop_api_requests_total 3\n"), "{ok}");

    let missing = http(addr, b"GET /nope HTTP/1.1\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let too_large = http(addr, huge.as_bytes()).await;
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");

    // Many clients at once.
    let clients: Vec<_> = (0..50)
        .map(|_| tokio::spawn(http(addr, b"GET /metrics HTTP/1.1\r\n\r\n")))
        .collect();
    for c in clients {
        let r = c.await.expect("client task");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    }

    // The idle client is answered with a timeout, then closed.
    let mut out = String::new();
    idle.read_to_string(&mut out).await.expect("read");
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");

    stop_tx.send(()).expect("server still running");
    served.await.expect("server task ends");
}

#[tokio::test]
async fn metrics_bind_error_names_the_address() {
    let first = MetricsServer::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = first.local_addr().expect("addr");
    let Err(e) = MetricsServer::bind(addr).await else {
        panic!("a second bind to {addr} succeeded");
    };
    let msg = e.to_string();
    assert!(msg.contains(&format!("`{addr}`")), "{msg}");
    assert!(msg.contains("--metrics-addr"), "{msg}");
}
