//! The claim's heartbeat: a task beside the run that renews its lease every third of the TTL
//! until the run ends, and tells the run where the lease stands (the decisions are pure
//! functions in `issueloop_forge::claim`).

use std::sync::Arc;
use std::time::Duration;

use issueloop_forge::claim::{after_renewal, heartbeat_interval, lease_holds};
use issueloop_forge::{Claim, Forge, LeaseStatus};
use jiff::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::outcome::{Reason, RunFailure};

/// A running heartbeat; dropping it stops the renewals.
pub(crate) struct Heartbeat {
    status: watch::Receiver<LeaseStatus>,
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts renewing `claim`'s lease for `ttl` at a time.
    pub(crate) fn start(forge: Arc<Forge>, claim: Claim, ttl: Duration) -> Self {
        let (tx, status) = watch::channel(LeaseStatus::Held {
            until: claim.lease.expires,
        });
        let task = tokio::spawn(async move {
            let interval = heartbeat_interval(ttl);
            let mut until = claim.lease.expires;
            loop {
                tokio::time::sleep(interval).await;
                // A renewal that hangs counts as failed once the next one is due.
                let result = match tokio::time::timeout(interval, forge.renew(&claim, ttl)).await {
                    Ok(Ok(renewal)) => Ok(renewal),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {interval:?}")),
                };
                if let Err(e) = &result {
                    tracing::warn!(issue = claim.issue, "cannot renew the claim's lease: {e}");
                }
                let status = after_renewal(until, Timestamp::now(), interval, result);
                let lost = match &status {
                    LeaseStatus::Held { until: next } => {
                        until = *next;
                        tracing::debug!(issue = claim.issue, until = %next, "lease renewed");
                        false
                    }
                    LeaseStatus::Lost(lost) => {
                        tracing::warn!(issue = claim.issue, "{}", lost.describe());
                        true
                    }
                };
                if tx.send(status).is_err() || lost {
                    return;
                }
            }
        });
        Self { status, task }
    }

    /// Whether the run may go on: its lease holds now.
    pub(crate) fn check(&self) -> Result<(), RunFailure> {
        let status = self.status.borrow().clone();
        lease_holds(&status, Timestamp::now())
            .map(|_| ())
            .map_err(|lost| RunFailure::new(Reason::LeaseLost, lost.describe()))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
