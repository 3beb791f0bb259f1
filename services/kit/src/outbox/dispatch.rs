//! The dispatcher: claims a batch with a lease, has the service's [`Sender`] attempt it a group
//! at a time, and settles each group. Several may run at once (one per replica, or more).

use super::{Claimed, DeliveryConfig, Outbox, Outcome};
use crate::ApiError;
use crate::clock::Clock;
use crate::server::Job;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a service does with the deliveries it claimed: what each kind means and how it is sent.
pub trait Sender: Send + Sync + 'static {
    /// Attempts one group (sent at once) and says how each ended, in the group's order.
    /// Deliveries reached after `deadline` must not be started ([`Deadline::each`] does both).
    /// An error abandons the round: the rest of the batch stays claimed until its lease expires.
    fn attempt_group<'a>(
        &'a self,
        group: &'a [Claimed],
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ApiError>>;
}

/// When a round stops starting sends: past half the lease, the rest goes back to the queue
/// before another replica could take it over mid-send.
pub struct Deadline {
    clock: Clock,
    at: i64,
}

impl Deadline {
    /// Whether sends may no longer start.
    pub fn passed(&self) -> bool {
        self.clock.now() > self.at
    }

    /// Attempts every delivery of `group` at once with `attempt`, postponing (to now, without
    /// counting the attempt) those not started before the deadline.
    pub async fn each<'a, F, Fut>(&self, group: &'a [Claimed], attempt: F) -> Vec<Outcome>
    where
        F: Fn(&'a Claimed) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let attempt = &attempt;
        futures::future::join_all(group.iter().map(|d| async move {
            if self.passed() {
                return Outcome::Postponed(self.clock.now());
            }
            attempt(d).await
        }))
        .await
    }
}

/// Sends what the outbox holds.
#[derive(Clone)]
pub struct Dispatcher {
    pub outbox: Outbox,
    pub sender: Arc<dyn Sender>,
    pub cfg: DeliveryConfig,
    /// This claimant's name in the leases.
    pub owner: String,
}

/// The dispatcher as a background job: rounds back to back while there is work, then waits for
/// a wake-up or the poll interval.
pub fn dispatcher(outbox: Outbox, sender: Arc<dyn Sender>, cfg: DeliveryConfig, owner: String) -> Job {
    Dispatcher {
        outbox,
        sender,
        cfg,
        owner,
    }
    .job()
}

impl Dispatcher {
    /// See [`dispatcher`].
    pub fn job(self) -> Job {
        Box::new(move |mut stop| {
            Box::pin(async move {
                loop {
                    let sent = match self.once().await {
                        Ok(n) => n,
                        Err(err) => {
                            tracing::warn!(error = %err, "delivery round failed");
                            0
                        }
                    };
                    if sent > 0 {
                        continue;
                    }
                    tokio::select! {
                        _ = self.outbox.woken() => {}
                        _ = tokio::time::sleep(Duration::from_millis(self.cfg.poll_ms)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            })
        })
    }

    /// One round: claim a batch, then send it `concurrency` at a time, settling each group in
    /// one transaction (a replica that dies mid-batch has at most one group's sends unrecorded).
    /// Returns how many were claimed.
    pub async fn once(&self) -> Result<usize, ApiError> {
        let lease = self.cfg.lease_secs * 1_000_000;
        let deadline = Deadline {
            clock: self.outbox.clock.clone(),
            at: self.outbox.now() + lease / 2,
        };
        let claimed = self.outbox.claim(&self.owner, lease, self.cfg.batch).await?;
        for group in claimed.chunks(self.cfg.concurrency.max(1)) {
            let outcomes = self.sender.attempt_group(group, &deadline).await?;
            if outcomes.len() != group.len() {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "the sender answered {} outcomes for {} deliveries",
                    outcomes.len(),
                    group.len()
                )));
            }
            let settled: Vec<(&Claimed, Outcome)> = group.iter().zip(outcomes).collect();
            for (d, outcome) in &settled {
                if let Outcome::Failed { error, .. } = outcome {
                    tracing::warn!(delivery = %d.id, kind = %d.kind, attempts = d.attempts, error = %error, "delivery failed");
                }
            }
            let lost = self
                .outbox
                .settle(&self.owner, &settled, self.cfg.max_attempts, self.cfg.backoff_ms)
                .await?;
            if lost > 0 {
                tracing::warn!(
                    lost,
                    "leases lost before settling; another replica owns those deliveries"
                );
            }
        }
        Ok(claimed.len())
    }
}
