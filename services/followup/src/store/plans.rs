//! Plans and the tasks they are made of.

use super::{Store, decode, etag, history};
use crate::domain::calendar::to_date;
use crate::domain::chronic::{self, State};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Tx, col};
use hcrm_kit::ledger::{AuditEntry, NewEvent};
use hcrm_kit::time::to_timestamp;
use hcrm_proto::followup::{ChronicRules, ChronicStatus, Plan, PlanChange, PlanOrigin, PlanState, Reading, Template};
use serde_json::json;
use sqlx::any::AnyRow;

/// One task to create.
#[derive(Debug, Clone)]
pub struct Step {
    pub due_day: i32,
    pub window_days: i32,
    pub channel: i32,
    pub purpose: String,
    pub notify_patient: bool,
}

/// A plan about to be created (validated).
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub patient_id: String,
    /// The template version it comes from; `None` for a plan made by hand.
    pub template: Option<Template>,
    pub department: String,
    pub responsible: String,
    pub origin: PlanOrigin,
    pub anchor_at: i64,
    /// What created it (`patients/…/interactions/…`); empty for staff.
    pub source: String,
    pub diagnoses: Vec<String>,
    /// Explicit steps of a plan made by hand.
    pub steps: Vec<Step>,
}

impl NewPlan {
    /// The tasks the plan starts with: the template's schedule, the chronic rules' first due
    /// day, or the steps given by hand.
    pub fn initial_steps(&self, anchor_day: i32) -> Vec<Step> {
        let Some(t) = &self.template else {
            return self.steps.clone();
        };
        if let Some(rules) = &t.chronic {
            return vec![Step {
                due_day: anchor_day + chronic::interval(rules, State::START),
                window_days: 1,
                channel: t.default_channel,
                purpose: format!("{}: {}", t.display_name, rules.measure),
                notify_patient: false,
            }];
        }
        t.schedule
            .iter()
            .map(|s| Step {
                due_day: anchor_day + s.offset_days,
                window_days: s.window_days,
                channel: if s.channel == 0 { t.default_channel } else { s.channel },
                purpose: s.purpose.clone(),
                notify_patient: s.notify_patient,
            })
            .collect()
    }
}

fn state_name(state: PlanState) -> &'static str {
    match state {
        PlanState::Completed => "completed",
        PlanState::Cancelled => "cancelled",
        _ => "active",
    }
}

fn plan_state(text: &str) -> PlanState {
    match text {
        "completed" => PlanState::Completed,
        "cancelled" => PlanState::Cancelled,
        _ => PlanState::Active,
    }
}

fn origin_name(origin: PlanOrigin) -> &'static str {
    match origin {
        PlanOrigin::Discharge => "discharge",
        PlanOrigin::Complaint => "complaint",
        PlanOrigin::Manual | PlanOrigin::Unspecified => "manual",
    }
}

/// Diagnoses stored as `,I10,I21.9,` so a prefix matches with `LIKE '%,I2%'`.
pub fn diagnoses_text(codes: &[String]) -> String {
    if codes.is_empty() {
        String::new()
    } else {
        format!(",{},", codes.join(","))
    }
}

impl Store {
    /// Inserts a plan and its first tasks inside `tx`; `None` when the source already made a
    /// plan from this template (a redelivered event).
    pub async fn insert_plan(
        &self,
        tx: &mut Tx,
        id: &str,
        actor: &str,
        p: &NewPlan,
    ) -> Result<Option<String>, ApiError> {
        let template_id = p
            .template
            .as_ref()
            .map(|t| t.name.trim_start_matches("templates/").to_string())
            .unwrap_or_default();
        if !p.source.is_empty() {
            let seen = sqlx::query("SELECT id FROM plans WHERE source = $1 AND template_id = $2")
                .bind(&p.source)
                .bind(&template_id)
                .fetch_optional(&mut **tx)
                .await?;
            if seen.is_some() {
                return Ok(None);
            }
        }
        let now = self.now();
        let anchor_day = self.cal.day_of(p.anchor_at);
        let chronic_state = p
            .template
            .as_ref()
            .and_then(|t| t.chronic.as_ref())
            .map(|_| serde_json::to_string(&chronic::scheduled(State::START)))
            .transpose()
            .map_err(ApiError::internal)?;
        sqlx::query(
            "INSERT INTO plans (id, patient_id, template_id, template_version, department, responsible, state, origin, \
             anchor_at, source, diagnoses, chronic_state, last_reading, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, $11, NULL, 1, $12, $12)",
        )
        .bind(id)
        .bind(&p.patient_id)
        .bind(&template_id)
        .bind(p.template.as_ref().map(|t| t.version as i64).unwrap_or(0))
        .bind(&p.department)
        .bind(&p.responsible)
        .bind(origin_name(p.origin))
        .bind(p.anchor_at)
        .bind(&p.source)
        .bind(diagnoses_text(&p.diagnoses))
        .bind(chronic_state)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        for step in p.initial_steps(anchor_day) {
            self.insert_task(tx, id, p, &step, now).await?;
        }
        history(tx, id, now, actor, "created", origin_name(p.origin)).await?;
        Ok(Some(id.to_string()))
    }

    pub async fn insert_task(
        &self,
        tx: &mut Tx,
        plan_id: &str,
        p: &NewPlan,
        step: &Step,
        now: i64,
    ) -> Result<String, ApiError> {
        let id = hcrm_kit::new_id();
        sqlx::query(
            "INSERT INTO tasks (id, plan_id, patient_id, department, assignee, due_day, window_end_day, state, channel, \
             purpose, attempts, notify_patient, follow_up_id, cancel_reason, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, 0, $10, '', '', 1, $11, $11)",
        )
        .bind(&id)
        .bind(plan_id)
        .bind(&p.patient_id)
        .bind(&p.department)
        .bind(&p.responsible)
        .bind(step.due_day as i64)
        .bind((step.due_day + step.window_days) as i64)
        .bind(step.channel as i64)
        .bind(&step.purpose)
        .bind(i64::from(step.notify_patient))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }

    /// Creates a plan for a staff caller (patient checked by the caller).
    pub async fn create_plan(
        &self,
        ctx: &hcrm_kit::request::RequestContext,
        p: NewPlan,
        key: Option<&str>,
    ) -> Result<Plan, ApiError> {
        let id = hcrm_kit::new_id();
        let name = format!("plans/{id}");
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.claim_request(&mut tx, key, &name).await? {
            drop(tx);
            return self
                .get_plan(super::parse_name("name", &existing, "plans")?, &Scope::All)
                .await;
        }
        self.insert_plan(&mut tx, &id, &ctx.principal.subject, &p)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a staff plan has no source")))?;
        let audit = AuditEntry::new(ctx, "plan.create", &name, "", json!({ "patient": p.patient_id }));
        let event = plan_event("plan.created", &name, &p);
        hcrm_kit::ledger::append(&mut tx, self.now(), &[audit], &[event]).await?;
        tx.commit().await?;
        self.committed(true);
        self.get_plan(&id, &Scope::All).await
    }

    /// A plan within `scope`; outside it NOT_FOUND.
    pub async fn get_plan(&self, id: &str, scope: &Scope) -> Result<Plan, ApiError> {
        let row = sqlx::query("SELECT * FROM plans WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .filter(|r| col::<String>(r, "department").is_ok_and(|d| scope.covers(&d)))
            .ok_or_else(|| ApiError::not_found(format!("plans/{id}")))?;
        let mut plan = self.plan_of(&row).await?;
        let changes =
            sqlx::query("SELECT at, actor, action, detail FROM plan_history WHERE plan_id = $1 ORDER BY id LIMIT 200")
                .bind(id)
                .fetch_all(&self.db.pool)
                .await?;
        for c in changes {
            plan.history.push(PlanChange {
                time: Some(to_timestamp(col(&c, "at")?)),
                actor: col(&c, "actor")?,
                action: col(&c, "action")?,
                detail: col(&c, "detail")?,
            });
        }
        Ok(plan)
    }

    async fn plan_of(&self, row: &AnyRow) -> Result<Plan, ApiError> {
        let id: String = col(row, "id")?;
        let template_id: String = col(row, "template_id")?;
        let diagnoses: String = col(row, "diagnoses")?;
        let chronic_state: Option<String> = col(row, "chronic_state")?;
        let chronic = match chronic_state {
            Some(text) => {
                let state: State = serde_json::from_str(&text).map_err(ApiError::internal)?;
                let last: Option<Vec<u8>> = col(row, "last_reading")?;
                let next_due =
                    sqlx::query("SELECT MIN(due_day) AS due FROM tasks WHERE plan_id = $1 AND state = 'open'")
                        .bind(&id)
                        .fetch_one(&self.db.pool)
                        .await?;
                let due: Option<i64> = col(&next_due, "due")?;
                Some(ChronicStatus {
                    phase: state.phase.to_proto() as i32,
                    consecutive_controlled: state.consecutive,
                    last_reading: last.map(|b| decode::<Reading>(&b)).transpose()?,
                    next_due_date: due.map(|d| to_date(d as i32)),
                })
            }
            None => None,
        };
        let version: i64 = col(row, "version")?;
        Ok(Plan {
            name: format!("plans/{id}"),
            patient: format!("patients/{}", col::<String>(row, "patient_id")?),
            template: if template_id.is_empty() {
                String::new()
            } else {
                format!("templates/{template_id}")
            },
            template_version: col::<i64>(row, "template_version")? as i32,
            department: col(row, "department")?,
            responsible: col(row, "responsible")?,
            state: plan_state(&col::<String>(row, "state")?) as i32,
            origin: match col::<String>(row, "origin")?.as_str() {
                "discharge" => PlanOrigin::Discharge,
                "complaint" => PlanOrigin::Complaint,
                _ => PlanOrigin::Manual,
            } as i32,
            anchor_time: Some(to_timestamp(col(row, "anchor_at")?)),
            source: col(row, "source")?,
            diagnosis_codes: diagnoses
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            chronic,
            history: Vec::new(),
            etag: etag(version),
            create_time: Some(to_timestamp(col(row, "created_at")?)),
            update_time: Some(to_timestamp(col(row, "updated_at")?)),
        })
    }

    /// Plans newest first, keyed by id (UUIDv7 sorts by creation).
    pub async fn list_plans(
        &self,
        scope: &Scope,
        patient_id: &str,
        department: &str,
        state: PlanState,
        before: &str,
        limit: usize,
    ) -> Result<Vec<Plan>, ApiError> {
        let mut sql = hcrm_kit::db::Sql::new("SELECT * FROM plans WHERE 1 = 1");
        use hcrm_kit::db::Value;
        if !patient_id.is_empty() {
            sql.push(" AND patient_id = ").bind(Value::Text(patient_id.into()));
        }
        if !department.is_empty() {
            sql.push(" AND department = ").bind(Value::Text(department.into()));
        }
        if let Scope::Department(d) = scope {
            sql.push(" AND department = ").bind(Value::Text(d.clone()));
        }
        if state != PlanState::Unspecified {
            sql.push(" AND state = ").bind(Value::Text(state_name(state).into()));
        }
        if !before.is_empty() {
            sql.push(" AND id < ").bind(Value::Text(before.into()));
        }
        sql.push(" ORDER BY id DESC LIMIT ").bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.plan_of(row).await?);
        }
        Ok(out)
    }

    /// Cancels a plan and its open tasks.
    pub async fn cancel_plan(
        &self,
        ctx: &hcrm_kit::request::RequestContext,
        id: &str,
        scope: &Scope,
        reason: &str,
    ) -> Result<Plan, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT department, state, patient_id FROM plans WHERE id = $1{}",
            self.for_update()
        );
        let name = format!("plans/{id}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .filter(|r| col::<String>(r, "department").is_ok_and(|d| scope.covers(&d)))
            .ok_or_else(|| ApiError::not_found(&name))?;
        let state: String = col(&row, "state")?;
        if state != "active" {
            return Err(ApiError::FailedPrecondition(format!(
                "{name} is {state}; only an active plan can be cancelled"
            )));
        }
        let now = self.now();
        sqlx::query("UPDATE plans SET state = 'cancelled', version = version + 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE tasks SET state = 'cancelled', cancel_reason = $1, version = version + 1, updated_at = $2 \
             WHERE plan_id = $3 AND state = 'open'",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        history(&mut tx, id, now, &ctx.principal.subject, "cancelled", reason).await?;
        let audit = AuditEntry::new(ctx, "plan.cancel", &name, reason, json!({}));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_plan(id, &Scope::All).await
    }

    /// Marks a non-chronic plan completed once none of its tasks is open.
    pub async fn complete_if_done(&self, tx: &mut Tx, plan_id: &str, actor: &str, now: i64) -> Result<(), ApiError> {
        let open = sqlx::query("SELECT COUNT(*) AS n FROM tasks WHERE plan_id = $1 AND state = 'open'")
            .bind(plan_id)
            .fetch_one(&mut **tx)
            .await?;
        if col::<i64>(&open, "n")? == 0 {
            let done = sqlx::query(
                "UPDATE plans SET state = 'completed', version = version + 1, updated_at = $1 \
                 WHERE id = $2 AND state = 'active' AND chronic_state IS NULL",
            )
            .bind(now)
            .bind(plan_id)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() > 0 {
                history(tx, plan_id, now, actor, "completed", "").await?;
            }
        }
        Ok(())
    }

    /// After a task closed (recorded, missed, cancelled): a chronic plan gets its next
    /// follow-up from its rules (it always has one open); another plan completes when nothing
    /// is left open. `plan` and `task` are the locked rows.
    pub async fn after_task_closed(
        &self,
        tx: &mut Tx,
        plan: &AnyRow,
        task: &AnyRow,
        actor: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let plan_id: String = col(plan, "id")?;
        let Some(text) = col::<Option<String>>(plan, "chronic_state")? else {
            return self.complete_if_done(tx, &plan_id, actor, now).await;
        };
        let rules = self
            .chronic_rules(tx, &col::<String>(plan, "template_id")?, col(plan, "template_version")?)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("plans/{plan_id}: template has no chronic rules")))?;
        let state: State = serde_json::from_str(&text).map_err(ApiError::internal)?;
        let step = Step {
            due_day: self.today() + chronic::interval(&rules, state),
            window_days: 1,
            channel: col::<i64>(task, "channel")? as i32,
            purpose: col(task, "purpose")?,
            notify_patient: col::<i64>(task, "notify_patient")? != 0,
        };
        let next = NewPlan {
            patient_id: col(plan, "patient_id")?,
            template: None,
            department: col(plan, "department")?,
            responsible: col(plan, "responsible")?,
            origin: PlanOrigin::Manual,
            anchor_at: now,
            source: String::new(),
            diagnoses: Vec::new(),
            steps: Vec::new(),
        };
        self.insert_task(tx, &plan_id, &next, &step, now).await?;
        let scheduled = serde_json::to_string(&chronic::scheduled(state)).map_err(ApiError::internal)?;
        sqlx::query("UPDATE plans SET chronic_state = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(scheduled)
            .bind(now)
            .bind(&plan_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The rules of a chronic plan's template version.
    pub async fn chronic_rules(
        &self,
        tx: &mut Tx,
        template_id: &str,
        version: i64,
    ) -> Result<Option<ChronicRules>, ApiError> {
        let row = sqlx::query("SELECT body FROM template_versions WHERE template_id = $1 AND version = $2")
            .bind(template_id)
            .bind(version)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(match row {
            Some(row) => decode::<Template>(&col::<Vec<u8>>(&row, "body")?)?.chronic,
            None => None,
        })
    }

    /// The template version a plan was made from.
    pub async fn plan_template(
        &self,
        tx: &mut Tx,
        template_id: &str,
        version: i64,
    ) -> Result<Option<Template>, ApiError> {
        if template_id.is_empty() {
            return Ok(None);
        }
        let row = sqlx::query("SELECT body FROM template_versions WHERE template_id = $1 AND version = $2")
            .bind(template_id)
            .bind(version)
            .fetch_optional(&mut **tx)
            .await?;
        row.map(|r| decode::<Template>(&col::<Vec<u8>>(&r, "body")?))
            .transpose()
    }
}

/// The event a new plan publishes.
pub fn plan_event(kind: &'static str, name: &str, p: &NewPlan) -> NewEvent {
    NewEvent {
        kind,
        resource: name.to_string(),
        payload: json!({
            "plan": name,
            "patient": format!("patients/{}", p.patient_id),
            "department": p.department,
            "template": p.template.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
            "origin": origin_name(p.origin),
            "source": p.source,
        }),
    }
}
