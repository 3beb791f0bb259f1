//! Escalation of open cases against their pending deadline: the owner is warned before it, the
//! department head is told at it, the centre director when it is missed again by the
//! configured working days. Each level is reached once per deadline (the level is kept on the
//! case and raised with a guard), so any replica may run the pass any number of times.

use super::Store;
use super::cases::Actor;
use hcrm_kit::ApiError;
use hcrm_kit::db::col;
use hcrm_kit::ledger::NewEvent;
use hcrm_kit::outbox::NewDelivery;
use hcrm_kit::time::rfc3339;
use hcrm_proto::feedback::{Case, CaseKind, CaseState};
use serde_json::json;

/// The level a case should be at now: 0 none, 1 warn the owner, 2 department head, 3 director.
pub fn level_due(now: i64, due: i64, warn_before: i64, again: i64) -> i32 {
    if now >= again {
        3
    } else if now >= due {
        2
    } else if now >= due - warn_before {
        1
    } else {
        0
    }
}

impl Store {
    /// One escalation pass over open complaints; returns how many notices it queued.
    pub async fn escalate(&self) -> Result<u64, ApiError> {
        let now = self.now();
        let warn = self.rules.warn_before_micros;
        let rows = sqlx::query(
            "SELECT id, escalation_level, first_response_at, response_due, resolution_due FROM cases \
             WHERE is_open = 1 AND kind = $2 AND escalation_level < 3 \
             AND (CASE WHEN first_response_at IS NULL THEN response_due ELSE resolution_due END) <= $1",
        )
        .bind(now + warn)
        .bind(CaseKind::Complaint as i64)
        .fetch_all(&self.db.pool)
        .await?;
        let mut queued = 0;
        for row in rows {
            let id: String = col(&row, "id")?;
            let level = col::<i64>(&row, "escalation_level")? as i32;
            let responded = col::<Option<i64>>(&row, "first_response_at")?.is_some();
            let due: i64 = col(&row, if responded { "resolution_due" } else { "response_due" })?;
            let again = self.cal.deadline(due - 1, self.rules.escalate_again_days);
            let target = level_due(now, due, warn, again);
            if target <= level {
                continue;
            }
            let mut tx = self.db.begin_write().await?;
            // Guarded on what was read: a replica that got here first, or a first response
            // given meanwhile (a new pending deadline), makes this a no-op.
            let guard = if responded { "IS NOT NULL" } else { "IS NULL" };
            let raised = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE cases SET escalation_level = $1 WHERE id = $2 AND escalation_level = $3 AND is_open = 1 \
                 AND first_response_at {guard}"
            )))
            .bind(target as i64)
            .bind(&id)
            .bind(level as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if raised == 0 {
                continue;
            }
            // The case as it is now (owner after any hand-over).
            let body = sqlx::query("SELECT body FROM cases WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
            let c: Case = super::decode(&col::<Vec<u8>>(&body, "body")?)?;
            let deadline = if responded { "resolution" } else { "response" };
            // Every level passed is told, in order: after downtime the head hears it too.
            for step in level + 1..=target {
                let recipient = match step {
                    1 => c.owner.clone(),
                    2 => self.department_head(&c.department),
                    _ => self.rules.director.clone(),
                };
                let message = json!({
                    "case": c.name, "number": c.number, "title": c.title, "department": c.department,
                    "owner": c.owner, "level": step, "deadline": deadline, "due_time": rfc3339(due),
                    "overdue": now >= due,
                });
                self.outbox
                    .enqueue(
                        &mut tx,
                        NewDelivery {
                            id: format!("escalation-{id}-{deadline}-{step}"),
                            kind: "feedback.escalation",
                            recipient: recipient.clone(),
                            department: c.department.clone(),
                            reference: c.name.clone(),
                            message: message.clone(),
                            not_before: now,
                            source_at: Some(due),
                        },
                    )
                    .await?;
                let state = CaseState::try_from(c.state).unwrap_or_default();
                sqlx::query(
                    "INSERT INTO case_history (case_id, at, actor, action, from_state, to_state, reason, detail) \
                     VALUES ($1, $2, $3, 'escalate', $4, $4, $5, $6)",
                )
                .bind(&id)
                .bind(now)
                .bind(&Actor::service().principal.subject)
                .bind(state as i64)
                .bind(format!(
                    "{deadline} deadline {}",
                    if now >= due { "missed" } else { "near" }
                ))
                .bind(json!({ "level": step, "to": recipient, "deadline": deadline }).to_string())
                .execute(&mut *tx)
                .await?;
                let event = NewEvent {
                    kind: "feedback.case_escalated",
                    resource: c.name.clone(),
                    payload: message,
                };
                hcrm_kit::ledger::append(&mut tx, now, &[], &[event]).await?;
                queued += 1;
            }
            tx.commit().await?;
            self.committed(true);
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::level_due;

    #[test]
    fn levels_rise_with_time() {
        let (due, warn, again) = (100, 10, 200);
        assert_eq!(level_due(80, due, warn, again), 0);
        assert_eq!(level_due(90, due, warn, again), 1);
        assert_eq!(level_due(100, due, warn, again), 2);
        assert_eq!(level_due(200, due, warn, again), 3);
    }
}
