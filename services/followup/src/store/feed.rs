//! Applying the patients feed: each event takes effect and advances the cursor in one
//! transaction, so it takes effect once across crashes, replicas and redeliveries.

use super::Store;
use super::plans::{NewPlan, plan_event};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Tx, col};
use hcrm_kit::ledger::AuditEntry;
use hcrm_kit::outbox::NewDelivery;
use hcrm_proto::followup::{PlanOrigin, Template};
use serde_json::json;

pub const PATIENTS_FEED: &str = "patients";
/// The feedback feed: complaint confirmation requests.
pub const FEEDBACK_FEED: &str = "feedback";

/// What an event asks of this service, decided before the transaction (it may need calls).
pub enum Effect {
    /// Plans from discharge templates.
    Plans(Vec<NewPlan>),
    /// A notice to the patient about an exam result.
    ExamNotice {
        id: String,
        patient_id: String,
        department: String,
        result_at: i64,
        summary: String,
    },
    /// An admission, for readmission figures.
    Admission {
        source: String,
        patient_id: String,
        at: i64,
    },
    /// The patient died or asked not to be contacted: their open plans and tasks stop.
    StopContact { patient_id: String, reason: String },
    /// Nothing (but the cursor moves on).
    None,
}

impl Store {
    pub async fn cursor(&self, feed: &str) -> Result<i64, ApiError> {
        hcrm_kit::peers::feed::position(&self.db, feed).await
    }

    /// Applies `effect` of the event at `sequence` unless the cursor is already past it.
    /// Returns false when it was (another replica applied it).
    pub async fn apply_event(&self, feed: &str, sequence: i64, effect: Effect) -> Result<bool, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT position FROM consumer_cursors WHERE feed = $1{}",
            self.for_update()
        );
        let position = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(feed)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| col::<i64>(&r, "position"))
            .transpose()?;
        if position.is_some_and(|p| p >= sequence) {
            return Ok(false);
        }
        let outbox = self.apply_effect(&mut tx, effect).await?;
        sqlx::query(
            "INSERT INTO consumer_cursors (feed, position) VALUES ($1, $2) \
             ON CONFLICT (feed) DO UPDATE SET position = excluded.position \
             WHERE consumer_cursors.position < excluded.position",
        )
        .bind(feed)
        .bind(sequence)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.committed(outbox);
        Ok(true)
    }

    async fn apply_effect(&self, tx: &mut Tx, effect: Effect) -> Result<bool, ApiError> {
        let now = self.now();
        match effect {
            Effect::Plans(plans) => {
                let mut created = false;
                for p in plans {
                    if let Some(id) = self
                        .insert_plan(tx, &hcrm_kit::new_id(), "service:followup", &p)
                        .await?
                    {
                        let name = format!("plans/{id}");
                        let audit = AuditEntry {
                            actor: "service:followup".into(),
                            roles: "integration".into(),
                            action: "plan.create".into(),
                            resource: name.clone(),
                            reason: match p.origin {
                                PlanOrigin::Complaint => "complaint confirmation",
                                _ => "discharge",
                            }
                            .into(),
                            request_id: p.source.clone(),
                            detail: json!({ "patient": p.patient_id, "source": p.source }),
                        };
                        let event = plan_event("plan.created", &name, &p);
                        hcrm_kit::ledger::append(tx, now, &[audit], &[event]).await?;
                        created = true;
                    }
                }
                Ok(created)
            }
            Effect::ExamNotice {
                id,
                patient_id,
                department,
                result_at,
                summary,
            } => {
                self.outbox
                    .enqueue(
                        tx,
                        NewDelivery {
                            id: format!("exam-{id}"),
                            kind: "followup.exam_notice",
                            recipient: format!("patients/{patient_id}"),
                            department,
                            reference: id,
                            message: json!({ "summary": summary }),
                            not_before: now,
                            source_at: Some(result_at),
                        },
                    )
                    .await?;
                Ok(true)
            }
            Effect::Admission { source, patient_id, at } => {
                sqlx::query("INSERT INTO admissions (source, patient_id, at) VALUES ($1, $2, $3) ON CONFLICT (source) DO NOTHING")
                    .bind(source)
                    .bind(patient_id)
                    .bind(at)
                    .execute(&mut **tx)
                    .await?;
                Ok(false)
            }
            Effect::StopContact { patient_id, reason } => {
                let plans = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT id FROM plans WHERE patient_id = $1 AND state = 'active'{}",
                    self.for_update()
                )))
                .bind(&patient_id)
                .fetch_all(&mut **tx)
                .await?;
                for plan in &plans {
                    let plan_id: String = col(plan, "id")?;
                    sqlx::query(
                        "UPDATE tasks SET state = 'cancelled', cancel_reason = $1, version = version + 1, updated_at = $2 \
                         WHERE plan_id = $3 AND state = 'open'",
                    )
                    .bind(&reason)
                    .bind(now)
                    .bind(&plan_id)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query(
                        "UPDATE plans SET state = 'cancelled', version = version + 1, updated_at = $1 WHERE id = $2",
                    )
                    .bind(now)
                    .bind(&plan_id)
                    .execute(&mut **tx)
                    .await?;
                    super::history(tx, &plan_id, now, "service:followup", "cancelled", &reason).await?;
                    let audit = AuditEntry {
                        actor: "service:followup".into(),
                        roles: "integration".into(),
                        action: "plan.cancel".into(),
                        resource: format!("plans/{plan_id}"),
                        reason: reason.clone(),
                        request_id: String::new(),
                        detail: json!({ "patient": patient_id }),
                    };
                    hcrm_kit::ledger::append(tx, now, &[audit], &[]).await?;
                }
                Ok(false)
            }
            Effect::None => Ok(false),
        }
    }
}

/// The plans a discharge calls for: every active discharge template that applies.
pub fn discharge_plans(
    templates: &[Template],
    patient_id: &str,
    department: &str,
    diagnoses: &[String],
    discharged_at: i64,
    source: &str,
) -> Vec<NewPlan> {
    templates
        .iter()
        .filter(|t| {
            t.applies_to
                .as_ref()
                .is_some_and(|a| a.on_discharge && crate::domain::template::applies(a, department, diagnoses))
        })
        .map(|t| NewPlan {
            patient_id: patient_id.to_string(),
            template: Some(t.clone()),
            department: department.to_string(),
            // The department's follow-up pool until someone takes it; reassign moves it.
            responsible: format!("department:{department}"),
            origin: PlanOrigin::Discharge,
            anchor_at: discharged_at,
            source: source.to_string(),
            diagnoses: diagnoses.to_vec(),
            steps: Vec::new(),
        })
        .collect()
}
