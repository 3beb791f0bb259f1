//! Background loops of the patients service.

use crate::store::Store;
use hcrm_kit::server::Job;
use std::time::Duration;

/// Seals committed audit entries and events: woken by every commit, and every second for
/// commits made by other replicas.
pub fn sealer(store: Store) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    // Coalesce bursts (bulk intake commits every few milliseconds): one seal
                    // per 25 ms at most. Readers seal for themselves, so this adds no latency
                    // for them.
                    _ = store.unsealed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                }
                if let Err(err) = store.seal().await {
                    tracing::warn!(error = %err, "sealing the ledger failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        })
    })
}

/// How long a create's request id is remembered: retries come within minutes, not days.
pub const IDEMPOTENCY_RETENTION_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Forgets request ids older than the retention, hourly, so the table does not grow forever.
pub fn idempotency_cleanup(store: Store) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let cutoff = hcrm_kit::time::now_micros() - IDEMPOTENCY_RETENTION_MICROS;
                match store.forget_request_ids(cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "forgot old request ids"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "request id cleanup failed"),
                }
            }
        })
    })
}
