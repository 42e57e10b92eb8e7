//! Two-phase shutdown (stop taking work, then abort what runs) and the signals that start it:
//! the owner's [`Shutdown`], the workers' [`ShutdownSignal`], used by the `serve` loop, `run
//! --once` and the pipeline alike.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// The shutdown signal handlers could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for shutdown signals: {0}")]
pub struct SignalError(std::io::Error);

/// The phases of a shutdown. They only move forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShutdownPhase {
    Running,
    /// Stop taking work: start no new issue; let running agents finish.
    Stopping,
    /// The grace period is over: stop running agents, then settle or release their
    /// reservations, release their claims and clean their worktrees.
    Aborting,
}

/// The owner's side of a shutdown: moves the phase forward.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<ShutdownPhase>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(ShutdownPhase::Running),
        }
    }

    /// A handle for work to watch the phase.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
            _keep_open: None,
        }
    }

    pub fn phase(&self) -> ShutdownPhase {
        *self.tx.borrow()
    }

    /// Phase 1: stop taking work.
    pub fn stop(&self) {
        self.advance(ShutdownPhase::Stopping);
    }

    /// Phase 2: abort what is still running.
    pub fn abort(&self) {
        self.advance(ShutdownPhase::Aborting);
    }

    fn advance(&self, to: ShutdownPhase) {
        self.tx.send_if_modified(|phase| {
            let moves = to > *phase;
            if moves {
                *phase = to;
            }
            moves
        });
    }
}

/// The worker's side of a shutdown, passed into each tick: check it before starting new work
/// and select on [`ShutdownSignal::aborting`] around anything long-running.
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    rx: watch::Receiver<ShutdownPhase>,
    /// Keeps the channel of [`ShutdownSignal::never`] open.
    _keep_open: Option<Arc<watch::Sender<ShutdownPhase>>>,
}

impl ShutdownSignal {
    /// A signal that never fires (for one-off work nobody will interrupt).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(ShutdownPhase::Running);
        Self {
            rx,
            _keep_open: Some(Arc::new(tx)),
        }
    }

    pub fn phase(&self) -> ShutdownPhase {
        *self.rx.borrow()
    }

    /// True once work should no longer be started.
    pub fn is_stopping(&self) -> bool {
        self.phase() >= ShutdownPhase::Stopping
    }

    /// True once running work should be stopped.
    pub fn is_aborting(&self) -> bool {
        self.phase() >= ShutdownPhase::Aborting
    }

    /// Resolves when the phase reaches [`ShutdownPhase::Stopping`] (or later).
    pub async fn stopping(&self) {
        self.reached(ShutdownPhase::Stopping).await;
    }

    /// Resolves when the phase reaches [`ShutdownPhase::Aborting`].
    pub async fn aborting(&self) {
        self.reached(ShutdownPhase::Aborting).await;
    }

    async fn reached(&self, phase: ShutdownPhase) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|p| *p >= phase).await.is_err() {
            // The owner is gone without reaching `phase`: it never will.
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives in between is not lost.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, SignalError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(SignalError)?;
        let mut int = signal(SignalKind::interrupt()).map_err(SignalError)?;
        Ok(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutdown requested");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C; shutting down");
            }
            tracing::info!(signal = "ctrl-c", "shutdown requested");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_phases_only_move_forward() {
        let owner = Shutdown::new();
        let signal = owner.signal();
        assert!(!signal.is_stopping());
        owner.abort();
        owner.stop();
        assert_eq!(signal.phase(), ShutdownPhase::Aborting);
        assert!(signal.is_stopping() && signal.is_aborting());
        assert_eq!(ShutdownSignal::never().phase(), ShutdownPhase::Running);
    }
}
