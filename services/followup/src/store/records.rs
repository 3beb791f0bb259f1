//! Recording a follow-up: the task closes (or waits for a retry), the score is computed from the
//! plan's template version, the timeline entry, any appointment wish and any complaint leave
//! through outbox and feed.

use super::{Store, decode, history};
use crate::domain::appointment::kind_key;
use crate::domain::calendar::from_date;
use crate::domain::template::channel_name;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::ledger::{AuditEntry, NewEvent};
use hcrm_kit::outbox::NewDelivery;
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{rfc3339, to_timestamp};
use hcrm_kit::validate::Violations;
use hcrm_proto::followup::{FollowUpRecord, Outcome};
use prost::Message;
use serde_json::json;

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Reached => "reached",
        Outcome::NotReached => "not_reached",
        Outcome::Refused => "refused",
        Outcome::WrongNumber => "wrong_number",
        Outcome::Unspecified => "unspecified",
    }
}

impl Store {
    /// Records the follow-up of task `task_id` (fields validated by the caller).
    pub async fn record_follow_up(
        &self,
        ctx: &RequestContext,
        task_id: &str,
        scope: &Scope,
        mut record: FollowUpRecord,
        key: Option<&str>,
        max_attempts: i32,
    ) -> Result<FollowUpRecord, ApiError> {
        let task_name = format!("tasks/{task_id}");
        let id = hcrm_kit::new_id();
        let name = format!("followUps/{id}");
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.claim_request(&mut tx, key, &name).await? {
            drop(tx);
            return self
                .get_follow_up(super::parse_name("name", &existing, "followUps")?)
                .await;
        }
        // Locks in one order everywhere: the plan, then its task.
        let (plan_id, plan) = self.lock_task_plan(&mut tx, task_id, scope).await?;
        let sql = format!("SELECT * FROM tasks WHERE id = $1{}", self.for_update());
        let task = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
        let state: String = col(&task, "state")?;
        if state != "open" {
            let by: String = col(&task, "follow_up_id")?;
            let by = if by.is_empty() {
                String::new()
            } else {
                format!(" by followUps/{by}")
            };
            return Err(ApiError::FailedPrecondition(format!(
                "{task_name} is {state}{by}; a task is recorded once"
            )));
        }
        let template = self
            .plan_template(
                &mut tx,
                &col::<String>(&plan, "template_id")?,
                col(&plan, "template_version")?,
            )
            .await?;
        let outcome = Outcome::try_from(record.outcome).unwrap_or(Outcome::Unspecified);
        // A complaint confirmation call answers the case's question: did the fix work?
        let confirms_case = if col::<String>(&plan, "origin")? == "complaint" {
            let source: String = col(&plan, "source")?;
            Some(source.split('#').next().unwrap_or_default().to_string())
        } else {
            None
        };
        match (&confirms_case, record.fix_effective) {
            (Some(_), None) if outcome == Outcome::Reached => {
                return Err(ApiError::invalid(
                    "record.fix_effective",
                    "is required on a complaint confirmation call: did the fix work?",
                ));
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    "record.fix_effective",
                    "only a complaint confirmation call answers it",
                ));
            }
            (Some(_), Some(_)) if outcome != Outcome::Reached => {
                return Err(ApiError::invalid(
                    "record.fix_effective",
                    "only a reached complainant can say whether the fix worked",
                ));
            }
            _ => {}
        }
        record.recovery_score = None;
        record.appointment_request.clear();
        if let Some(score) = template
            .as_ref()
            .and_then(|t| t.score.as_ref())
            .filter(|s| !s.items.is_empty())
        {
            if outcome == Outcome::Reached {
                let mut v = Violations::new();
                record.recovery_score =
                    crate::domain::score::score("record.score_answers", score, &record.score_answers, &mut v);
                v.finish()?;
            } else if !record.score_answers.is_empty() {
                return Err(ApiError::invalid(
                    "record.score_answers",
                    "only a reached patient has score answers",
                ));
            }
        } else if !record.score_answers.is_empty() {
            return Err(ApiError::invalid(
                "record.score_answers",
                "the plan's template has no score template",
            ));
        }

        let now = self.now();
        let occur = record
            .occur_time
            .as_ref()
            .and_then(hcrm_kit::time::from_timestamp)
            .unwrap_or(now);
        let attempt = col::<i64>(&task, "attempts")? + 1;
        let patient_id: String = col(&task, "patient_id")?;
        let department: String = col(&task, "department")?;
        record.name = name.clone();
        record.task = task_name.clone();
        record.plan = format!("plans/{plan_id}");
        record.patient = format!("patients/{patient_id}");
        record.department = department.clone();
        record.recorded_by = ctx.principal.subject.clone();
        record.occur_time = Some(to_timestamp(occur));
        record.create_time = Some(to_timestamp(now));
        record.attempt = attempt as i32;
        // A wish without a department books in the task's.
        if let Some(wish) = record.appointment.as_mut()
            && wish.department.is_empty()
        {
            wish.department = department.to_lowercase();
        }
        sqlx::query(
            "INSERT INTO follow_ups (id, task_id, plan_id, patient_id, department, recorded_by, channel, outcome, attempt, \
             occur_at, local_hour, recovery_score, complaint, body, created_at, local_day) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&id)
        .bind(task_id)
        .bind(&plan_id)
        .bind(&patient_id)
        .bind(&department)
        .bind(&record.recorded_by)
        .bind(record.channel as i64)
        .bind(record.outcome as i64)
        .bind(attempt)
        .bind(occur)
        .bind(self.cal.hour_of(occur) as i64)
        .bind(record.recovery_score)
        .bind(i64::from(record.complaint_raised))
        .bind(record.encode_to_vec())
        .bind(now)
        .bind(self.cal.day_of(occur) as i64)
        .execute(&mut *tx)
        .await?;
        for s in &record.satisfaction {
            sqlx::query(
                "INSERT INTO satisfaction (follow_up_id, department, dimension, rating, occur_at, local_day) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(&department)
            .bind(s.dimension as i64)
            .bind(s.rating as i64)
            .bind(occur)
            .bind(self.cal.day_of(occur) as i64)
            .execute(&mut *tx)
            .await?;
        }
        // The day's rolled-up statistics are stale now.
        sqlx::query("INSERT INTO stats_dirty (day) VALUES ($1)")
            .bind(self.cal.day_of(occur) as i64)
            .execute(&mut *tx)
            .await?;

        history(
            &mut tx,
            &plan_id,
            now,
            &ctx.principal.subject,
            "recorded",
            &format!("{name} {}", outcome_name(outcome)),
        )
        .await?;

        // The task: closed, or left open for tomorrow's retry while attempts remain.
        let today = self.today();
        let retry = outcome == Outcome::NotReached && attempt < max_attempts as i64;
        if retry {
            let due = (today + 1) as i64;
            sqlx::query(
                "UPDATE tasks SET attempts = $1, due_day = $2, window_end_day = CASE WHEN window_end_day < $2 THEN $2 ELSE window_end_day END, \
                 version = version + 1, updated_at = $3 WHERE id = $4",
            )
            .bind(attempt)
            .bind(due)
            .bind(now)
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        } else {
            let closed = if outcome == Outcome::NotReached {
                "missed"
            } else {
                "done"
            };
            sqlx::query(
                "UPDATE tasks SET state = $1, attempts = $2, follow_up_id = $3, version = version + 1, updated_at = $4 WHERE id = $5",
            )
            .bind(closed)
            .bind(attempt)
            .bind(&id)
            .bind(now)
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
            self.after_task_closed(&mut tx, &plan, &task, &ctx.principal.subject, now)
                .await?;
        }

        // The patient's timeline, through the outbox (the patients service may be down now).
        let summary = format!("随访 {} · {}", channel_name(record.channel), outcome_name(outcome));
        let interaction = json!({
            "kind": "follow_up",
            "department": department,
            "occur_time": rfc3339(occur),
            "summary": summary,
            "source_system": "hcrm-followup",
            "external_id": id,
            "details": { "follow_up": name, "task": task_name, "outcome": outcome_name(outcome), "recovery_score": record.recovery_score },
        });
        self.outbox
            .enqueue(
                &mut tx,
                NewDelivery {
                    id: format!("timeline-{id}"),
                    kind: "patients.timeline",
                    recipient: format!("patients/{patient_id}"),
                    department: department.clone(),
                    reference: id.clone(),
                    message: interaction,
                    not_before: now,
                    source_at: None,
                },
            )
            .await?;
        // The booking the patient asked for, to the patients service's hand-off through the
        // outbox; the request id made from this record's id books it once however often the
        // delivery is tried.
        if let Some(wish) = &record.appointment {
            let day = |d: &Option<hcrm_proto::types::Date>| d.as_ref().and_then(from_date);
            self.outbox
                .enqueue(
                    &mut tx,
                    NewDelivery {
                        id: format!("appointment-{id}"),
                        kind: "patients.appointment",
                        recipient: format!("patients/{patient_id}"),
                        department: department.clone(),
                        reference: id.clone(),
                        message: json!({
                            "request_id": format!("followup-{id}"),
                            "follow_up": name,
                            "kind": kind_key(wish.kind),
                            "department": wish.department,
                            "doctor": wish.doctor,
                            "earliest_day": day(&wish.earliest_date),
                            "latest_day": day(&wish.latest_date),
                            "reason": wish.reason,
                            "source": task_name,
                        }),
                        not_before: now,
                        source_at: None,
                    },
                )
                .await?;
        }
        let mut events = vec![NewEvent {
            kind: "followup.recorded",
            resource: name.clone(),
            payload: json!({
                "follow_up": name,
                "task": task_name,
                "plan": record.plan,
                "patient": record.patient,
                "department": department,
                "channel": channel_name(record.channel),
                "outcome": outcome_name(outcome),
                "recovery_score": record.recovery_score,
                "occur_time": rfc3339(occur),
                "recorded_by": record.recorded_by,
            }),
        }];
        if record.complaint_raised {
            // Feedback opens a case from this (design in docs/events.md).
            events.push(NewEvent {
                kind: "followup.complaint_raised",
                resource: name.clone(),
                payload: json!({
                    "follow_up": name,
                    "patient": record.patient,
                    "department": department,
                    "channel": channel_name(record.channel),
                    "summary": record.complaint_summary,
                    "occur_time": rfc3339(occur),
                    "recorded_by": record.recorded_by,
                }),
            });
        }
        if let (Some(case), Some(effective)) = (&confirms_case, record.fix_effective) {
            // Feedback confirms (or reopens) the case from this.
            events.push(NewEvent {
                kind: "followup.case_confirmed",
                resource: name.clone(),
                payload: json!({
                    "case": case,
                    "effective": effective,
                    "note": record.content,
                    "follow_up": name,
                    "patient": record.patient,
                    "occur_time": rfc3339(occur),
                    "recorded_by": record.recorded_by,
                }),
            });
        }
        let audit = AuditEntry::new(
            ctx,
            "followup.record",
            &name,
            "",
            json!({ "task": task_name, "outcome": outcome_name(outcome) }),
        );
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &events).await?;
        tx.commit().await?;
        self.committed(true);
        Ok(record)
    }

    /// Writes on record `id` the appointment request its wish became (the outbox's send);
    /// the same name again changes nothing.
    pub async fn set_appointment_request(&self, id: &str, request: &str) -> Result<(), ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT body FROM follow_ups WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("followUps/{id}")))?;
        let mut record: FollowUpRecord = decode(&col::<Vec<u8>>(&row, "body")?)?;
        if record.appointment_request == request {
            return Ok(());
        }
        record.appointment_request = request.to_string();
        sqlx::query("UPDATE follow_ups SET body = $1 WHERE id = $2")
            .bind(record.encode_to_vec())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_follow_up(&self, id: &str) -> Result<FollowUpRecord, ApiError> {
        let row = sqlx::query("SELECT body FROM follow_ups WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("followUps/{id}")))?;
        decode(&col::<Vec<u8>>(&row, "body")?)
    }

    /// Records newest first, after the `(occur_at, id)` position.
    pub async fn list_follow_ups(
        &self,
        scope: &Scope,
        patient_id: &str,
        plan_id: &str,
        task_id: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(FollowUpRecord, i64)>, ApiError> {
        let mut sql = Sql::new("SELECT body, occur_at FROM follow_ups WHERE 1 = 1");
        for (column, value) in [("patient_id", patient_id), ("plan_id", plan_id), ("task_id", task_id)] {
            if !value.is_empty() {
                sql.push(&format!(" AND {column} = ")).bind(Value::Text(value.into()));
            }
        }
        if let Scope::Department(d) = scope {
            sql.push(" AND department = ").bind(Value::Text(d.clone()));
        }
        if let Some((at, id)) = after {
            sql.push(" AND (occur_at < ").bind(Value::Int(at));
            sql.push(" OR (occur_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY occur_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| Ok((decode(&col::<Vec<u8>>(r, "body")?)?, col(r, "occur_at")?)))
            .collect()
    }
}
