//! The outbox: everything that leaves the service. Rows are claimed with a lease (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL, so replicas take disjoint batches), sent once per claim, and
//! marked by the claimant only; a replica that dies leaves its claims to expire and be taken
//! over. The row id is the idempotency key receivers see.

use super::Store;
use hcrm_kit::ApiError;
use hcrm_kit::db::{Backend, Sql, Tx, Value, col};
use hcrm_kit::time::to_timestamp;
use hcrm_proto::followup::{Delivery, DeliveryState};
use sqlx::any::AnyRow;

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

fn state_of(text: &str) -> DeliveryState {
    match text {
        "pending" => DeliveryState::Pending,
        "delivered" => DeliveryState::Delivered,
        "dead" => DeliveryState::Dead,
        "skipped" => DeliveryState::Skipped,
        _ => DeliveryState::Unspecified,
    }
}

pub fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Dead => "dead",
        DeliveryState::Skipped => "skipped",
        DeliveryState::Unspecified => "",
    }
}

/// Backoff before attempt `attempts + 1`: `base`, doubling, at most an hour.
pub fn backoff_micros(base_ms: i64, attempts: i64) -> i64 {
    let factor = 1i64 << attempts.clamp(1, 20).saturating_sub(1);
    (base_ms.saturating_mul(factor)).min(3_600_000) * 1_000
}

impl Store {
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

    /// Queues tomorrow's reminders: one per open task due tomorrow to its assignee, and a notice
    /// to the patient where the step asks for one. Set-based and idempotent: any replica may run
    /// it any number of times. Returns how many were new.
    pub async fn plan_reminders(&self) -> Result<u64, ApiError> {
        let now = self.now();
        let today = self.today();
        let tomorrow = (today + 1) as i64;
        // Not before the working day starts: nobody gets a reminder at midnight.
        let send_at = now.max(self.cal.start_of(today) + self.send_from_hour as i64 * 3_600_000_000);
        let mut tx = self.db.begin_write().await?;
        let staff = sqlx::query(
            "INSERT INTO deliveries (id, kind, recipient, department, ref, message, state, attempts, next_attempt_at, \
             lease_owner, lease_until, last_error, source_at, delivered_at, created_at) \
             SELECT 'reminder-' || id || '-' || CAST(due_day AS TEXT), 'followup.reminder', assignee, department, id, '', \
             'pending', 0, $3, '', 0, '', NULL, NULL, $1 \
             FROM tasks WHERE state = 'open' AND due_day = $2 \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .bind(tomorrow)
        .bind(send_at)
        .execute(&mut *tx)
        .await?;
        let patients = sqlx::query(
            "INSERT INTO deliveries (id, kind, recipient, department, ref, message, state, attempts, next_attempt_at, \
             lease_owner, lease_until, last_error, source_at, delivered_at, created_at) \
             SELECT 'notice-' || id || '-' || CAST(due_day AS TEXT), 'followup.patient_notice', 'patients/' || patient_id, \
             department, id, '', 'pending', 0, $3, '', 0, '', NULL, NULL, $1 \
             FROM tasks WHERE state = 'open' AND due_day = $2 AND notify_patient = 1 \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .bind(tomorrow)
        .bind(send_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let queued = staff.rows_affected() + patients.rows_affected();
        if queued > 0 {
            self.outbox.notify_one();
        }
        Ok(queued)
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

    /// Deliveries newest first, after `before` (id).
    pub async fn list_deliveries(
        &self,
        state: DeliveryState,
        kind: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(Delivery, i64)>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM deliveries WHERE 1 = 1");
        if state != DeliveryState::Unspecified {
            sql.push(" AND state = ").bind(Value::Text(state_name(state).into()));
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
        rows.iter()
            .map(|r| Ok((delivery_of(r)?, col(r, "created_at")?)))
            .collect()
    }
}

fn delivery_of(r: &AnyRow) -> Result<Delivery, ApiError> {
    let delivered: Option<i64> = col(r, "delivered_at")?;
    let id: String = col(r, "id")?;
    Ok(Delivery {
        name: format!("deliveries/{id}"),
        kind: col(r, "kind")?,
        idempotency_key: id,
        recipient: col(r, "recipient")?,
        state: state_of(&col::<String>(r, "state")?) as i32,
        attempts: col::<i64>(r, "attempts")? as i32,
        last_error: col(r, "last_error")?,
        not_before: Some(to_timestamp(col(r, "next_attempt_at")?)),
        delivered_time: delivered.map(to_timestamp),
        create_time: Some(to_timestamp(col(r, "created_at")?)),
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
}
