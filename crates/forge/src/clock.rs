//! Time for the forge: the wall clock, and sleeping (rate-limit waits, back-off). Injectable so
//! tests never wait and can read what would have been waited.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A source of "now" and a way to wait.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real clock and tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when slept on or advanced: `sleep` returns at once, moves "now" by
/// the duration and records it.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(Timestamp, Vec<Duration>)>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            state: Mutex::new((start, Vec::new())),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.0 = add(s.0, by);
    }

    /// Every sleep asked for so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().1.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Timestamp, Vec<Duration>)> {
        // The state is two plain values; a panic elsewhere cannot leave them half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.lock().0
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut s = self.lock();
        s.0 = add(s.0, duration);
        s.1.push(duration);
        Box::pin(std::future::ready(()))
    }
}

/// `t + d`, saturating at the end of representable time.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// How long from `from` until `to`; zero when `to` is not later.
pub fn until(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}
