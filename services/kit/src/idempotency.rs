//! Retry-safe creates: a caller's `request_id` maps to the resource the first call made, in an
//! `idempotency` table every service's schema has; old entries are forgotten by a job.

use crate::db::{Db, Tx, col};
use crate::server::Job;
use std::time::Duration;

/// How long a create's request id is remembered: retries come within minutes, not days.
pub const RETENTION_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The resource recorded for `key`, if any.
pub async fn lookup(tx: &mut Tx, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT resource FROM idempotency WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| col::<String>(&r, "resource"))
        .transpose()
}

/// Records that `key` made `resource`, in the creating transaction.
pub async fn remember(tx: &mut Tx, key: &str, resource: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO idempotency (key, resource, created_at) VALUES ($1, $2, $3)")
        .bind(key)
        .bind(resource)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Claims `key` for `resource` at the start of a create, before anything else is written, so
/// that racing retries queue on the key (PostgreSQL waits on the unique index) instead of both
/// writing. `Some(existing)` means an earlier call with this key made `existing`: the caller
/// drops its transaction (aborted on PostgreSQL) and answers with that resource.
pub async fn claim(db: &Db, tx: &mut Tx, key: &str, resource: &str, now: i64) -> Result<Option<String>, sqlx::Error> {
    if let Some(existing) = lookup(tx, key).await? {
        return Ok(Some(existing));
    }
    match remember(tx, key, resource, now).await {
        Ok(()) => Ok(None),
        Err(err) if crate::error::is_unique_violation(&err) => {
            // The other call committed while this one waited; read its result outside this
            // (now failed) transaction.
            sqlx::query("SELECT resource FROM idempotency WHERE key = $1")
                .bind(key)
                .fetch_optional(&db.pool)
                .await?
                .map(|r| col::<String>(&r, "resource"))
                .transpose()?
                .map(Some)
                .ok_or(err)
        }
        Err(err) => Err(err),
    }
}

/// Deletes entries created before `cutoff`; returns how many.
pub async fn forget_before(db: &Db, cutoff: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Forgets request ids older than the retention, hourly, so the table does not grow forever.
pub fn cleanup_job(db: Db) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let cutoff = crate::time::now_micros() - RETENTION_MICROS;
                match forget_before(&db, cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "forgot old request ids"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "request id cleanup failed"),
                }
            }
        })
    })
}
