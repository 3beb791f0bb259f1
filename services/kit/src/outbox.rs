//! The outbox: everything that leaves a service. Rows are claimed with a lease (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL, so replicas take disjoint batches), sent once per claim, and
//! marked by the claimant only; a replica that dies leaves its claims to expire and be taken
//! over. The row id is the idempotency key receivers see.
//!
//! The `deliveries` table belongs to the service (its own migrations, columns as in
//! docs/conventions.md "Outbox"), so a service may queue rows with its own set-based SQL too.
//! The kit queues, claims, settles and lists them, and runs the [`dispatcher`] loop; what a
//! delivery means and how it is sent is the service's [`Sender`].

mod config;
mod dispatch;

pub use config::DeliveryConfig;
pub use dispatch::{Deadline, Dispatcher, Sender, dispatcher};

use crate::ApiError;
use crate::clock::Clock;
use crate::db::{Backend, Db, Sql, Tx, Value, col};
use sqlx::any::AnyRow;
use std::sync::Arc;
use tokio::sync::Notify;

/// A delivery to queue.
pub struct NewDelivery {
    /// The idempotency key: the same key queued twice is one delivery.
    pub id: String,
    pub kind: &'static str,
    pub recipient: String,
    /// The department it concerns, for scoped figures.
    pub department: String,
    /// What it is about (a task, a record, an interaction).
    pub reference: String,
    pub message: serde_json::Value,
    pub not_before: i64,
    /// When the thing it reports happened (an exam result), for SLA figures.
    pub source_at: Option<i64>,
}

/// A claimed delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub kind: String,
    pub recipient: String,
    pub reference: String,
    pub message: String,
    pub attempts: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered,
    /// Try again after the backoff, unless attempts ran out.
    Failed {
        error: String,
        transient: bool,
    },
    /// Not now (quiet hours): back to the queue without counting the attempt.
    Postponed(i64),
    /// Not to be sent (do-not-contact, task closed).
    Skipped(String),
}

impl Outcome {
    /// A call that failed: retried unless the callee refused the request itself.
    pub fn failed(err: ApiError) -> Outcome {
        let transient = !matches!(err, ApiError::InvalidArgument(_) | ApiError::PermissionDenied(_));
        Outcome::Failed {
            error: err.to_string(),
            transient,
        }
    }
}

/// Sends `message` through `notifier` and says how it ended. Mail to someone without an
/// address is skipped with the reason, not retried.
pub async fn send_via(notifier: &dyn crate::notify::Notifier, message: &crate::notify::Message) -> Outcome {
    use crate::notify::NotifyError;
    if notifier.name() == "smtp" && message.recipient.email.is_none() {
        return Outcome::Skipped(format!("no e-mail address for {}", message.recipient.id));
    }
    match notifier.send(message).await {
        Ok(()) => Outcome::Delivered,
        Err(NotifyError::Transient(e)) => Outcome::Failed {
            error: e,
            transient: true,
        },
        Err(NotifyError::Permanent(e)) => Outcome::Failed {
            error: e,
            transient: false,
        },
    }
}

/// Backoff before attempt `attempts + 1`: `base`, doubling, at most an hour.
pub fn backoff_micros(base_ms: i64, attempts: i64) -> i64 {
    let factor = 1i64 << attempts.clamp(1, 20).saturating_sub(1);
    (base_ms.saturating_mul(factor)).min(3_600_000) * 1_000
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Delivered,
    Dead,
    Skipped,
}

impl State {
    /// The text stored in `deliveries.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Dead => "dead",
            State::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        [State::Pending, State::Delivered, State::Dead, State::Skipped]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A delivery as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The idempotency key.
    pub id: String,
    pub kind: String,
    pub recipient: String,
    /// `None` for a state this kit does not know (a row written by hand).
    pub state: Option<State>,
    pub attempts: i64,
    pub last_error: String,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

/// A service's outbox: its `deliveries` table and the wake-up of its dispatchers.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    clock: Clock,
    /// Woken when deliveries were queued: the dispatcher listens.
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(db: Db, clock: Clock) -> Self {
        Self {
            db,
            clock,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Wakes a dispatcher of this process; call after committing queued deliveries.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`Outbox::wake`] was called (also for a wake before the wait began).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Queues a delivery inside `tx`; a key already queued is left as it is.
    pub async fn enqueue(&self, tx: &mut Tx, d: NewDelivery) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO deliveries (id, kind, recipient, department, ref, message, state, attempts, next_attempt_at, \
             lease_owner, lease_until, last_error, source_at, delivered_at, created_at) \
             VALUES ($1, $2, $3, $9, $4, $5, 'pending', 0, $6, '', 0, '', $7, NULL, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&d.id)
        .bind(d.kind)
        .bind(&d.recipient)
        .bind(&d.reference)
        .bind(d.message.to_string())
        .bind(d.not_before)
        .bind(d.source_at)
        .bind(self.now())
        .bind(&d.department)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` ready deliveries for `owner` until `now + lease`.
    pub async fn claim(&self, owner: &str, lease_micros: i64, limit: i64) -> Result<Vec<Claimed>, ApiError> {
        let now = self.now();
        let skip_locked = match self.db.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE deliveries SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $3 AND lease_until < $3 \
             ORDER BY next_attempt_at LIMIT $4{skip_locked}) \
             RETURNING id, kind, recipient, ref, message, attempts"
        );
        let mut tx = self.db.begin_write().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now + lease_micros)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(Claimed {
                    id: col(r, "id")?,
                    kind: col(r, "kind")?,
                    recipient: col(r, "recipient")?,
                    reference: col(r, "ref")?,
                    message: col(r, "message")?,
                    attempts: col(r, "attempts")?,
                })
            })
            .collect()
    }

    /// Records how attempts ended, in one transaction; only the lease holder may. Returns how
    /// many were not recorded because the lease was lost (another replica took them over).
    pub async fn settle(
        &self,
        owner: &str,
        settled: &[(&Claimed, Outcome)],
        max_attempts: i64,
        backoff_ms: i64,
    ) -> Result<usize, ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let mut recorded = 0u64;
        // The common case, delivered, is one statement for the whole group.
        let delivered: Vec<&str> = settled
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Delivered))
            .map(|(d, _)| d.id.as_str())
            .collect();
        if !delivered.is_empty() {
            let mut sql = Sql::new("UPDATE deliveries SET state = 'delivered', delivered_at = ");
            sql.bind(Value::Int(now))
                .push(", lease_owner = '', lease_until = 0, last_error = '' WHERE state = 'pending' AND lease_owner = ")
                .bind(Value::Text(owner.to_string()))
                .push(" AND id IN (");
            for (i, id) in delivered.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Text(id.to_string()));
            }
            sql.push(")");
            recorded += sql.query().execute(&mut *tx).await?.rows_affected();
        }
        for (d, outcome) in settled {
            let query = match outcome {
                Outcome::Delivered => continue,
                Outcome::Failed { error, transient } if *transient && d.attempts < max_attempts => sqlx::query(
                    "UPDATE deliveries SET next_attempt_at = $1, lease_owner = '', lease_until = 0, last_error = $2 \
                     WHERE id = $3 AND lease_owner = $4 AND state = 'pending'",
                )
                .bind(now + backoff_micros(backoff_ms, d.attempts))
                .bind(error.clone()),
                Outcome::Failed { error, .. } => sqlx::query(
                    "UPDATE deliveries SET state = 'dead', lease_owner = '', lease_until = 0, last_error = $1 \
                     WHERE id = $2 AND lease_owner = $3 AND state = 'pending'",
                )
                .bind(error.clone()),
                Outcome::Postponed(at) => sqlx::query(
                    "UPDATE deliveries SET next_attempt_at = $1, attempts = attempts - 1, lease_owner = '', lease_until = 0 \
                     WHERE id = $2 AND lease_owner = $3 AND state = 'pending'",
                )
                .bind(*at),
                Outcome::Skipped(reason) => sqlx::query(
                    "UPDATE deliveries SET state = 'skipped', lease_owner = '', lease_until = 0, last_error = $1 \
                     WHERE id = $2 AND lease_owner = $3 AND state = 'pending'",
                )
                .bind(reason.clone()),
            };
            recorded += query.bind(&d.id).bind(owner).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(settled.len() - recorded as usize)
    }

    /// Deliveries newest first, in `state` (any when `None`) and of `kind` (any when empty),
    /// after `before` (`created_at`, id) for paging.
    pub async fn list(
        &self,
        state: Option<State>,
        kind: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Delivery>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM deliveries WHERE 1 = 1");
        if let Some(state) = state {
            sql.push(" AND state = ").bind(Value::Text(state.as_str().into()));
        }
        if !kind.is_empty() {
            sql.push(" AND kind = ").bind(Value::Text(kind.into()));
        }
        if let Some((at, id)) = before {
            sql.push(" AND (created_at < ").bind(Value::Int(at));
            sql.push(" OR (created_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(delivery_of).collect()
    }
}

fn delivery_of(r: &AnyRow) -> Result<Delivery, ApiError> {
    Ok(Delivery {
        id: col(r, "id")?,
        kind: col(r, "kind")?,
        recipient: col(r, "recipient")?,
        state: State::parse(&col::<String>(r, "state")?),
        attempts: col(r, "attempts")?,
        last_error: col(r, "last_error")?,
        next_attempt_at: col(r, "next_attempt_at")?,
        delivered_at: col(r, "delivered_at")?,
        created_at: col(r, "created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_micros(2_000, 1), 2_000_000);
        assert_eq!(backoff_micros(2_000, 2), 4_000_000);
        assert_eq!(backoff_micros(2_000, 4), 16_000_000);
        assert_eq!(backoff_micros(2_000, 30), 3_600_000_000);
    }

    #[test]
    fn states_round_trip_through_their_stored_text() {
        for s in [State::Pending, State::Delivered, State::Dead, State::Skipped] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse(""), None);
    }

    #[test]
    fn refused_calls_are_not_retried() {
        let permanent = Outcome::failed(ApiError::invalid("x", "is wrong"));
        assert!(matches!(permanent, Outcome::Failed { transient: false, .. }));
        let transient = Outcome::failed(ApiError::Unavailable("down".into()));
        assert!(matches!(transient, Outcome::Failed { transient: true, .. }));
    }
}
