//! `issueloop serve`: runs the tick on the `[service]` cron schedule, one tick at a time, and
//! shuts down in two phases (stop taking work, then abort after the grace period).
//!
//! Time zones: the `cron` crate walks calendar fields through chrono's `TimeZone` trait; the
//! zone rules come from jiff (the IANA database the configuration was validated against), via
//! a small adapter, rather than from a second copy of the database in `chrono-tz`. A fire time
//! that does not exist on a daylight-saving day (spring forward) is skipped that day; one that
//! occurs twice (fall back) fires once, at its first occurrence.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use issueloop_config::ServiceConfig;
use jiff::{SignedDuration, Timestamp};
use tokio::task::JoinError;

use crate::metrics::{Metrics, TickOutcome};
use crate::report::{RunStatus, TickReport};
use crate::shutdown::{Shutdown, ShutdownSignal};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cron expression `{expression}` does not parse: {message}")]
    Cron { expression: String, message: String },
    #[error(
        "unknown time zone `{timezone}`: {message}; use an IANA name such as `UTC` or `Europe/Berlin`"
    )]
    TimeZone { timezone: String, message: String },
    #[error(
        "cron expression `{expression}` never fires after {after}; a service needs a schedule that keeps firing"
    )]
    NoUpcomingFire {
        expression: String,
        after: Timestamp,
    },
}

/// A cron schedule read in a time zone.
#[derive(Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    zone: zone::JiffZone,
    expression: String,
    timezone: String,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule(`{}` in {})", self.expression, self.timezone)
    }
}

impl Schedule {
    /// `expression` has seconds first (six or seven fields, as the configuration normalizes it);
    /// `timezone` is an IANA name.
    pub fn new(expression: &str, timezone: &str) -> Result<Self, ServiceError> {
        let cron: cron::Schedule =
            expression
                .parse()
                .map_err(|e: cron::error::Error| ServiceError::Cron {
                    expression: expression.to_owned(),
                    message: e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                })?;
        let tz = jiff::tz::TimeZone::get(timezone).map_err(|e| ServiceError::TimeZone {
            timezone: timezone.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Self {
            cron,
            zone: zone::JiffZone(tz),
            expression: expression.to_owned(),
            timezone: timezone.to_owned(),
        })
    }

    pub fn from_config(service: &ServiceConfig) -> Result<Self, ServiceError> {
        Self::new(&service.cron, &service.timezone)
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The first fire time strictly after `t`, or `None` when the schedule has ended (a cron
    /// expression with a year field in the past).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        // Fire times are whole seconds and `cron` ignores sub-seconds of its starting point,
        // so start from `t` rounded down: the first fire after that is also the first after `t`.
        let start = zone::to_chrono(&self.zone, Timestamp::from_second(t.as_second()).ok()?)?;
        // Around a fall-back transition `cron` may offer the earlier of two readings of a local
        // time that already passed; look one step further for a fire that is really after `t`.
        self.cron
            .after(&start)
            .take(3)
            .filter_map(|dt| zone::from_chrono(&dt))
            .find(|fire| *fire > t)
    }

    /// The first fire time at or after `t`.
    pub fn next_at_or_after(&self, t: Timestamp) -> Option<Timestamp> {
        let just_before = t.checked_sub(SignedDuration::from_nanos(1)).ok()?;
        self.next_after(just_before)
    }

    /// The next `n` fire times after `t` (for `serve` to log and for people to check an
    /// expression).
    pub fn upcoming(&self, t: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            let Some(next) = self.next_after(at) else {
                break;
            };
            out.push(next);
            at = next;
        }
        out
    }
}

/// Where the loop reads wall-clock time. The system clock in production; in tests, a wall clock
/// that advances with tokio's (pausable) clock from a fixed starting point.
#[derive(Clone, Debug)]
pub struct Clock(ClockKind);

#[derive(Clone, Debug)]
enum ClockKind {
    System,
    Tokio {
        origin: Timestamp,
        at: tokio::time::Instant,
    },
}

impl Clock {
    pub fn system() -> Self {
        Self(ClockKind::System)
    }

    /// A wall clock that reads `origin` now and advances with `tokio::time`, so tests can use
    /// `tokio::time::pause()` and fixed dates.
    pub fn following_tokio_from(origin: Timestamp) -> Self {
        Self(ClockKind::Tokio {
            origin,
            at: tokio::time::Instant::now(),
        })
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            ClockKind::System => Timestamp::now(),
            ClockKind::Tokio { origin, at } => SignedDuration::try_from(at.elapsed())
                .ok()
                .and_then(|elapsed| origin.checked_add(elapsed).ok())
                .unwrap_or(Timestamp::MAX),
        }
    }

    /// Sleep until the wall clock reads `target`. Sleeps again when it wakes early (the system
    /// clock was set back), returns at once when `target` has passed.
    async fn sleep_until(&self, target: Timestamp) {
        loop {
            let now = self.now();
            let Ok(wait) = Duration::try_from(target.duration_since(now)) else {
                return;
            };
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// What a tick is given.
#[derive(Clone, Debug)]
pub struct TickInput {
    /// 1 for the first tick of this process.
    pub sequence: u64,
    /// The fire time this tick is for.
    pub scheduled_for: Timestamp,
    pub started_at: Timestamp,
    /// Start no new issue once [`ShutdownSignal::is_stopping`]; stop agents on
    /// [`ShutdownSignal::aborting`].
    pub shutdown: ShutdownSignal,
}

/// How a supervised tick ended.
#[derive(Debug)]
pub enum TickEnd<E> {
    Completed(TickReport),
    Failed(E),
    /// The tick panicked; the panic message.
    Panicked(String),
    /// Its cleanup outlived the limit after the abort and the task was dropped.
    Cancelled,
}

impl<E> TickEnd<E> {
    pub fn outcome(&self) -> TickOutcome {
        match self {
            TickEnd::Completed(_) => TickOutcome::Ok,
            TickEnd::Failed(_) => TickOutcome::Error,
            TickEnd::Panicked(_) => TickOutcome::Panic,
            TickEnd::Cancelled => TickOutcome::Cancelled,
        }
    }
}

/// Limits of the loop and its shutdown.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// After a stop request, how long running work may go on before it is aborted
    /// (`[service] shutdown_grace`).
    pub grace: Duration,
    /// After the abort, how long the tick may take to clean up (settle, release claims, remove
    /// worktrees) before it is dropped. Dropping it leaves what the next start-up cleans:
    /// stale worktrees, and reservations that expire.
    pub cleanup_limit: Duration,
    pub clock: Clock,
    pub metrics: Option<Arc<Metrics>>,
}

impl ServeOptions {
    pub fn from_config(service: &ServiceConfig) -> Self {
        Self {
            grace: service.shutdown_grace,
            cleanup_limit: Duration::from_secs(120),
            clock: Clock::system(),
            metrics: None,
        }
    }
}

/// How `serve` ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServeSummary {
    pub ticks: u64,
    pub completed: u64,
    pub failed: u64,
    pub panicked: u64,
    pub cancelled: u64,
    /// Fire times skipped because a tick was still running.
    pub fires_skipped: u64,
    /// Whether a tick was running when shutdown was requested.
    pub stopped_mid_tick: bool,
}

impl ServeSummary {
    /// True when shutdown left nothing behind: no tick had to be dropped mid-cleanup.
    pub fn clean(&self) -> bool {
        self.cancelled == 0
    }
}

type PinnedShutdown<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send + 'a)>;

/// Run `tick` on `schedule` until `shutdown` resolves.
///
/// Ticks never overlap: a tick that runs past later fire times skips them (logged and counted)
/// and the next tick starts at the first fire time not yet passed. Each tick runs on its own
/// task, so one that errors or panics is logged and the loop goes on. When `shutdown` resolves
/// while a tick runs, the tick's [`ShutdownSignal`] moves to `Stopping`; after
/// `options.grace`, to `Aborting`; `serve` returns once the tick has returned (or after
/// `options.cleanup_limit` more). When it resolves between ticks, `serve` returns at once.
pub async fn serve<F, Fut, E>(
    schedule: &Schedule,
    options: ServeOptions,
    mut tick: F,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ServeSummary, ServiceError>
where
    F: FnMut(TickInput) -> Fut,
    Fut: Future<Output = Result<TickReport, E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut shutdown: PinnedShutdown<'_> = shutdown.as_mut();
    let clock = &options.clock;
    let mut summary = ServeSummary::default();
    let no_fire = |after| ServiceError::NoUpcomingFire {
        expression: schedule.expression().to_owned(),
        after,
    };
    let start = clock.now();
    let mut next = schedule.next_after(start).ok_or_else(|| no_fire(start))?;
    tracing::info!(
        cron = schedule.expression(),
        timezone = schedule.timezone(),
        next = %next,
        "serving on schedule"
    );

    loop {
        tokio::select! {
            () = shutdown.as_mut() => {
                tracing::info!("shutdown requested between ticks; no tick is running");
                return Ok(summary);
            }
            () = clock.sleep_until(next) => {}
        }

        summary.ticks += 1;
        let input_shutdown = Shutdown::new();
        let input = TickInput {
            sequence: summary.ticks,
            scheduled_for: next,
            started_at: clock.now(),
            shutdown: input_shutdown.signal(),
        };
        tracing::info!(tick = input.sequence, scheduled_for = %next, "tick started");
        let started = tokio::time::Instant::now();
        if let Some(m) = &options.metrics {
            m.tick_started();
        }
        let mut stop_requested = false;
        let end = supervise(
            tick(input),
            &input_shutdown,
            &options,
            shutdown.as_mut(),
            &mut stop_requested,
        )
        .await;
        let elapsed = started.elapsed();
        log_tick_end(summary.ticks, &end, elapsed);
        if let Some(m) = &options.metrics {
            let report = match &end {
                TickEnd::Completed(r) => Some(r),
                _ => None,
            };
            m.tick_finished(end.outcome(), elapsed, clock.now(), report);
        }
        match end {
            TickEnd::Completed(_) => summary.completed += 1,
            TickEnd::Failed(_) => summary.failed += 1,
            TickEnd::Panicked(_) => summary.panicked += 1,
            TickEnd::Cancelled => summary.cancelled += 1,
        }
        if stop_requested {
            summary.stopped_mid_tick = true;
            tracing::info!("shutdown complete");
            return Ok(summary);
        }

        let now = clock.now();
        let (following, skipped) = next_fire(schedule, next, now).ok_or_else(|| no_fire(now))?;
        if skipped > 0 {
            tracing::warn!(
                tick = summary.ticks,
                skipped,
                until = %now,
                next = %following,
                "tick ran past later fire times; skipped them"
            );
            summary.fires_skipped += skipped;
            if let Some(m) = &options.metrics {
                m.fires_skipped(skipped);
            }
        }
        next = following;
    }
}

/// Most fire times counted one by one after an overrunning tick; past this, the count is a floor.
const MAX_COUNTED_SKIPS: u64 = 100_000;

/// After a tick for the fire time `fired` ends at `now`: the next fire time not yet passed (one
/// at `now` exactly is still due), and how many fire times in between are skipped.
fn next_fire(schedule: &Schedule, fired: Timestamp, now: Timestamp) -> Option<(Timestamp, u64)> {
    let mut skipped = 0;
    let mut candidate = schedule.next_after(fired)?;
    while candidate < now {
        if skipped == MAX_COUNTED_SKIPS {
            return Some((schedule.next_at_or_after(now)?, skipped));
        }
        skipped += 1;
        candidate = schedule.next_after(candidate)?;
    }
    Some((candidate, skipped))
}

/// Run one tick outside the schedule (`run --once`) under the same shutdown protocol as
/// [`serve`]: `shutdown` stops it taking work, `options.grace` later it is aborted.
pub async fn run_once<F, Fut, E>(
    options: &ServeOptions,
    tick: F,
    shutdown: impl Future<Output = ()> + Send,
) -> TickEnd<E>
where
    F: FnOnce(TickInput) -> Fut,
    Fut: Future<Output = Result<TickReport, E>> + Send + 'static,
    E: Send + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let now = options.clock.now();
    let owner = Shutdown::new();
    let input = TickInput {
        sequence: 1,
        scheduled_for: now,
        started_at: now,
        shutdown: owner.signal(),
    };
    let mut stop_requested = false;
    supervise(
        tick(input),
        &owner,
        options,
        shutdown.as_mut(),
        &mut stop_requested,
    )
    .await
}

/// Run `fut` on its own task and drive the two shutdown phases around it.
async fn supervise<Fut, E>(
    fut: Fut,
    owner: &Shutdown,
    options: &ServeOptions,
    mut shutdown: PinnedShutdown<'_>,
    stop_requested: &mut bool,
) -> TickEnd<E>
where
    Fut: Future<Output = Result<TickReport, E>> + Send + 'static,
    E: Send + 'static,
{
    let mut handle = tokio::spawn(fut);
    tokio::select! {
        // A tick that has already returned counts as finished, even if the stop request
        // arrived in the same instant.
        biased;
        joined = &mut handle => return classify(joined),
        () = shutdown.as_mut() => {}
    }
    *stop_requested = true;
    owner.stop();
    tracing::info!(
        grace = %issueloop_config::format_duration(options.grace),
        "stop requested: starting no new work; running work may finish within the grace period"
    );
    if let Ok(joined) = tokio::time::timeout(options.grace, &mut handle).await {
        return classify(joined);
    }
    owner.abort();
    tracing::warn!(
        cleanup_limit = %issueloop_config::format_duration(options.cleanup_limit),
        "grace period over: aborting running work and cleaning up"
    );
    if let Ok(joined) = tokio::time::timeout(options.cleanup_limit, &mut handle).await {
        return classify(joined);
    }
    handle.abort();
    tracing::error!(
        "cleanup did not finish within the limit; dropped it. The next start removes stale \
         worktrees, and unsettled reservations expire and are charged in full"
    );
    TickEnd::Cancelled
}

fn classify<E>(joined: Result<Result<TickReport, E>, JoinError>) -> TickEnd<E> {
    match joined {
        Ok(Ok(report)) => TickEnd::Completed(report),
        Ok(Err(e)) => TickEnd::Failed(e),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".to_owned());
            TickEnd::Panicked(message)
        }
        Err(_) => TickEnd::Cancelled,
    }
}

fn log_tick_end<E: fmt::Display>(sequence: u64, end: &TickEnd<E>, elapsed: Duration) {
    let took = issueloop_config::format_duration(Duration::from_secs(elapsed.as_secs()));
    match end {
        TickEnd::Completed(report) => tracing::info!(
            tick = sequence,
            took = %took,
            pr_opened = report.count(RunStatus::PrOpened),
            failed = report.count(RunStatus::Failed),
            skipped = report.count(RunStatus::Skipped),
            "tick finished"
        ),
        TickEnd::Failed(e) => tracing::error!(
            tick = sequence,
            took = %took,
            error = %e,
            "tick failed; the next one runs on schedule"
        ),
        TickEnd::Panicked(message) => tracing::error!(
            tick = sequence,
            took = %took,
            panic = %message,
            "tick panicked; the next one runs on schedule"
        ),
        TickEnd::Cancelled => tracing::error!(tick = sequence, took = %took, "tick dropped"),
    }
}

/// A chrono `TimeZone` backed by a jiff time zone, so `cron` can walk local calendar fields
/// with the IANA rules jiff loads.
mod zone {
    use chrono::{DateTime, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone};
    use jiff::Timestamp;
    use jiff::tz::AmbiguousOffset;

    #[derive(Clone, Debug)]
    pub struct JiffZone(pub jiff::tz::TimeZone);

    /// An offset that remembers its zone (chrono rebuilds the zone from an offset).
    #[derive(Clone, Debug)]
    pub struct JiffOffset {
        zone: jiff::tz::TimeZone,
        fixed: FixedOffset,
    }

    impl chrono::Offset for JiffOffset {
        fn fix(&self) -> FixedOffset {
            self.fixed
        }
    }

    impl JiffZone {
        fn offset(&self, offset: jiff::tz::Offset) -> JiffOffset {
            // IANA offsets stay within ±15 h; chrono's limit is ±24 h, jiff's ±26 h. Should a
            // zone ever exceed chrono's, read it as UTC rather than fail.
            let fixed = FixedOffset::east_opt(offset.seconds())
                .unwrap_or_else(|| chrono::Offset::fix(&chrono::Utc));
            JiffOffset {
                zone: self.0.clone(),
                fixed,
            }
        }
    }

    impl TimeZone for JiffZone {
        type Offset = JiffOffset;

        fn from_offset(offset: &JiffOffset) -> Self {
            JiffZone(offset.zone.clone())
        }

        fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<JiffOffset> {
            self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
        }

        fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<JiffOffset> {
            use chrono::{Datelike, Timelike};
            let civil = (|| {
                jiff::civil::DateTime::new(
                    i16::try_from(local.year()).ok()?,
                    i8::try_from(local.month()).ok()?,
                    i8::try_from(local.day()).ok()?,
                    i8::try_from(local.hour()).ok()?,
                    i8::try_from(local.minute()).ok()?,
                    i8::try_from(local.second()).ok()?,
                    i32::try_from(local.nanosecond().min(999_999_999)).ok()?,
                )
                .ok()
            })();
            let Some(civil) = civil else {
                return MappedLocalTime::None;
            };
            match self.0.to_ambiguous_timestamp(civil).offset() {
                AmbiguousOffset::Unambiguous { offset } => {
                    MappedLocalTime::Single(self.offset(offset))
                }
                AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
                AmbiguousOffset::Fold { before, after } => {
                    MappedLocalTime::Ambiguous(self.offset(before), self.offset(after))
                }
            }
        }

        fn offset_from_utc_date(&self, utc: &NaiveDate) -> JiffOffset {
            self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
        }

        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> JiffOffset {
            let utc = utc.and_utc();
            let offset = Timestamp::new(utc.timestamp(), 0)
                .map(|ts| self.0.to_offset(ts))
                .unwrap_or(jiff::tz::Offset::UTC);
            self.offset(offset)
        }
    }

    pub fn to_chrono(zone: &JiffZone, t: Timestamp) -> Option<DateTime<JiffZone>> {
        let utc = DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().try_into().ok()?)?;
        Some(utc.with_timezone(zone))
    }

    pub fn from_chrono(dt: &DateTime<JiffZone>) -> Option<Timestamp> {
        Timestamp::new(dt.timestamp(), dt.timestamp_subsec_nanos().try_into().ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn default_expression_fires_every_half_hour_utc() {
        let s = Schedule::new(&issueloop_config::normalize_cron("*/30 * * * *"), "UTC")
            .expect("parses");
        assert_eq!(
            s.upcoming(at("2025-06-01T12:10:00Z"), 3),
            vec![
                at("2025-06-01T12:30:00Z"),
                at("2025-06-01T13:00:00Z"),
                at("2025-06-01T13:30:00Z")
            ]
        );
        assert_eq!(
            s.next_after(at("2025-06-01T12:30:00Z")),
            Some(at("2025-06-01T13:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2025-06-01T12:29:59.5Z")),
            Some(at("2025-06-01T12:30:00Z"))
        );
        assert_eq!(
            s.next_at_or_after(at("2025-06-01T12:30:00Z")),
            Some(at("2025-06-01T12:30:00Z"))
        );
    }

    #[test]
    fn the_configured_default_parses() {
        let config = issueloop_config::Config::builtin(std::path::PathBuf::from("."));
        let s = Schedule::from_config(&config.service).expect("the default schedule parses");
        assert!(s.next_after(at("2025-06-01T00:00:00Z")).is_some());
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        let s = Schedule::new("0 0 9 * * *", "Europe/Berlin").expect("parses");
        // 09:00 CET is 08:00 UTC; after the switch on 2025-03-30, 09:00 CEST is 07:00 UTC.
        assert_eq!(
            s.upcoming(at("2025-03-28T12:00:00Z"), 3),
            vec![
                at("2025-03-29T08:00:00Z"),
                at("2025-03-30T07:00:00Z"),
                at("2025-03-31T07:00:00Z")
            ]
        );
    }

    #[test]
    fn a_local_time_that_does_not_exist_is_skipped_that_day() {
        let s = Schedule::new("0 30 2 * * *", "Europe/Berlin").expect("parses");
        // 02:30 does not exist on 2025-03-30 in Berlin (02:00 → 03:00).
        assert_eq!(
            s.upcoming(at("2025-03-29T12:00:00Z"), 2),
            vec![at("2025-03-31T00:30:00Z"), at("2025-04-01T00:30:00Z")]
        );
    }

    #[test]
    fn a_local_time_that_occurs_twice_fires_once() {
        let s = Schedule::new("0 30 2 * * *", "Europe/Berlin").expect("parses");
        // 02:30 occurs at 00:30 UTC (CEST) and 01:30 UTC (CET) on 2025-10-26.
        assert_eq!(
            s.upcoming(at("2025-10-25T12:00:00Z"), 2),
            vec![at("2025-10-26T00:30:00Z"), at("2025-10-27T01:30:00Z")]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_errors() {
        let e = Schedule::new("0 61 * * * *", "UTC").expect_err("minute 61");
        assert!(e.to_string().contains("`0 61 * * * *`"), "{e}");
        let e = Schedule::new("0 0 * * * *", "Mars/Olympus").expect_err("no such zone");
        assert!(e.to_string().contains("`Mars/Olympus`"), "{e}");
    }

    #[test]
    fn a_schedule_that_ended_has_no_next_fire() {
        let s = Schedule::new("0 0 0 1 1 * 2020", "UTC").expect("parses");
        assert_eq!(s.next_after(at("2025-01-01T00:00:00Z")), None);
    }

    #[test]
    fn overrun_counts_skipped_fires() {
        let s = Schedule::new("0 * * * * *", "UTC").expect("parses");
        let fired = at("2025-06-01T12:01:00Z");
        assert_eq!(
            next_fire(&s, fired, at("2025-06-01T12:01:30Z")),
            Some((at("2025-06-01T12:02:00Z"), 0))
        );
        assert_eq!(
            next_fire(&s, fired, at("2025-06-01T12:03:30Z")),
            Some((at("2025-06-01T12:04:00Z"), 2))
        );
        // Ending exactly on a fire time: that one is still due.
        assert_eq!(
            next_fire(&s, fired, at("2025-06-01T12:03:00Z")),
            Some((at("2025-06-01T12:03:00Z"), 1))
        );
    }
}
