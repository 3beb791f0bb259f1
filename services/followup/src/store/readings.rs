//! Chronic-disease readings: each one adapts its plan's schedule.

use super::{Store, decode, history};
use crate::domain::chronic::{self, State};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::col;
use hcrm_kit::ledger::NewEvent;
use hcrm_kit::outbox::NewDelivery;
use hcrm_kit::time::rfc3339;
use hcrm_proto::followup::{ChronicPhase, Reading};
use prost::Message;
use serde_json::json;

/// What one reading did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub phase: ChronicPhase,
    pub duplicate: bool,
    pub uncontrolled: bool,
}

impl Store {
    /// Applies one validated reading to plan `plan_id`.
    pub async fn record_reading(
        &self,
        actor: &str,
        plan_id: &str,
        scope: &Scope,
        reading: &Reading,
    ) -> Result<Applied, ApiError> {
        let name = format!("plans/{plan_id}");
        let measured = reading
            .measure_time
            .as_ref()
            .and_then(hcrm_kit::time::from_timestamp)
            .ok_or_else(|| ApiError::invalid("reading.measure_time", "is required"))?;
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT state, department, responsible, patient_id, template_id, template_version, chronic_state, last_reading \
             FROM plans WHERE id = $1{}",
            self.for_update()
        );
        let plan = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(plan_id)
            .fetch_optional(&mut *tx)
            .await?
            .filter(|r| col::<String>(r, "department").is_ok_and(|d| scope.covers(&d)))
            .ok_or_else(|| ApiError::not_found(&name))?;
        let Some(state_text) = col::<Option<String>>(&plan, "chronic_state")? else {
            return Err(ApiError::FailedPrecondition(format!(
                "{name} is not a chronic-disease plan"
            )));
        };
        if col::<String>(&plan, "state")? != "active" {
            return Err(ApiError::FailedPrecondition(format!("{name} is not active")));
        }
        let state: State = serde_json::from_str(&state_text).map_err(ApiError::internal)?;
        if !reading.external_id.is_empty() {
            let seen = sqlx::query("SELECT 1 AS one FROM readings WHERE plan_id = $1 AND external_id = $2")
                .bind(plan_id)
                .bind(&reading.external_id)
                .fetch_optional(&mut *tx)
                .await?;
            if seen.is_some() {
                return Ok(Applied {
                    phase: state.phase.to_proto(),
                    duplicate: true,
                    uncontrolled: false,
                });
            }
        }
        let rules = self
            .chronic_rules(
                &mut tx,
                &col::<String>(&plan, "template_id")?,
                col(&plan, "template_version")?,
            )
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("{name}: template has no chronic rules")))?;
        // A reading older than the last one (a device uploading its backlog) is kept and still
        // alerts, but the phase and the schedule follow the newest readings only.
        let last_measured = col::<Option<Vec<u8>>>(&plan, "last_reading")?
            .map(|b| decode::<Reading>(&b))
            .transpose()?
            .and_then(|r| r.measure_time.as_ref().and_then(hcrm_kit::time::from_timestamp));
        let late = last_measured.is_some_and(|last| measured < last);
        let mut change = chronic::apply(&rules, state, reading.systolic, reading.diastolic);
        if late {
            change.state = state;
            change.phase_changed = false;
        }
        let now = self.now();
        sqlx::query(
            "INSERT INTO readings (plan_id, external_id, measured_at, systolic, diastolic, source, controlled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(plan_id)
        .bind(&reading.external_id)
        .bind(measured)
        .bind(reading.systolic as i64)
        .bind(reading.diastolic as i64)
        .bind(reading.source as i64)
        .bind(i64::from(!change.uncontrolled))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut next = change.state;
        let mut events = Vec::new();
        if change.uncontrolled && !late {
            // Sooner follow-up: the open task comes forward to the first early interval (never
            // into the past).
            let day = self.cal.day_of(measured).max(self.today());
            let open = sqlx::query("SELECT id, due_day, window_end_day FROM tasks WHERE plan_id = $1 AND state = 'open' ORDER BY due_day LIMIT 1")
                .bind(plan_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(task) = open {
                let due: i64 = col(&task, "due_day")?;
                let moved = chronic::due_after_uncontrolled(&rules, due as i32, day) as i64;
                if moved < due {
                    sqlx::query("UPDATE tasks SET due_day = $1, window_end_day = $2, version = version + 1, updated_at = $3 WHERE id = $4")
                        .bind(moved)
                        .bind(moved + 1)
                        .bind(now)
                        .bind(col::<String>(&task, "id")?)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // The open follow-up is now the first of the early phase (as in chronic::simulate).
            next = chronic::scheduled(next);
        }
        if change.uncontrolled {
            let patient = format!("patients/{}", col::<String>(&plan, "patient_id")?);
            let responsible: String = col(&plan, "responsible")?;
            let alert_id = format!("alert-{plan_id}-{measured}");
            let payload = json!({
                "plan": name,
                "patient": patient,
                "systolic": reading.systolic,
                "diastolic": reading.diastolic,
                "measure_time": rfc3339(measured),
            });
            self.outbox
                .enqueue(
                    &mut tx,
                    NewDelivery {
                        id: alert_id,
                        kind: "followup.alert",
                        recipient: responsible,
                        department: col(&plan, "department")?,
                        reference: plan_id.to_string(),
                        message: payload.clone(),
                        not_before: now,
                        source_at: Some(measured),
                    },
                )
                .await?;
            events.push(NewEvent {
                kind: "followup.reading_uncontrolled",
                resource: name.clone(),
                payload,
            });
        }
        if change.phase_changed {
            history(
                &mut tx,
                plan_id,
                now,
                actor,
                "phase_changed",
                &format!("{:?} → {:?}", state.phase, next.phase),
            )
            .await?;
        }
        sqlx::query(
            "UPDATE plans SET chronic_state = $1, last_reading = COALESCE($2, last_reading), version = version + 1, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(serde_json::to_string(&next).map_err(ApiError::internal)?)
        .bind((!late).then(|| reading.encode_to_vec()))
        .bind(now)
        .bind(plan_id)
        .execute(&mut *tx)
        .await?;
        hcrm_kit::ledger::append(&mut tx, now, &[], &events).await?;
        tx.commit().await?;
        self.committed(change.uncontrolled);
        Ok(Applied {
            phase: next.phase.to_proto(),
            duplicate: false,
            uncontrolled: change.uncontrolled,
        })
    }
}
