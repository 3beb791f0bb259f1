//! Background loops of the patients service.

use crate::store::Store;
use hcrm_kit::server::Job;
use std::time::Duration;

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
