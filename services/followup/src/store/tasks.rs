//! Tasks: the worklists, and rescheduling, reassigning and cancelling.

use super::{Store, check_etag, etag, history};
use crate::domain::calendar::to_date;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::ledger::AuditEntry;
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::followup::{Task, TaskStatus, TaskView};
use serde_json::json;
use sqlx::any::AnyRow;

/// A worklist query after edge validation.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub view: i32,
    pub department: String,
    pub patient_id: String,
    pub plan_id: String,
    /// The caller, for "mine".
    pub subject: String,
}

/// What a change to an open task does.
pub enum TaskChange {
    Reschedule(i32),
    Reassign(String),
    Cancel,
}

impl Store {
    /// Locks the plan of task `task_id` (within `scope`) and returns its id and row. Every writer
    /// locks a plan before its tasks, so concurrent writers queue instead of deadlocking.
    pub async fn lock_task_plan(
        &self,
        tx: &mut Tx,
        task_id: &str,
        scope: &Scope,
    ) -> Result<(String, AnyRow), ApiError> {
        let task = sqlx::query("SELECT plan_id, department FROM tasks WHERE id = $1")
            .bind(task_id)
            .fetch_optional(&mut **tx)
            .await?
            .filter(|r| col::<String>(r, "department").is_ok_and(|d| scope.covers(&d)))
            .ok_or_else(|| ApiError::not_found(format!("tasks/{task_id}")))?;
        let plan_id: String = col(&task, "plan_id")?;
        let sql = format!("SELECT * FROM plans WHERE id = $1{}", self.for_update());
        let plan = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&plan_id)
            .fetch_one(&mut **tx)
            .await?;
        Ok((plan_id, plan))
    }

    /// The status a task shows today.
    pub fn task_status(&self, state: &str, due_day: i32, window_end_day: i32) -> TaskStatus {
        let today = self.today();
        match state {
            "done" => TaskStatus::Done,
            "cancelled" => TaskStatus::Cancelled,
            "missed" => TaskStatus::Missed,
            _ if today < due_day => TaskStatus::Pending,
            _ if today <= window_end_day => TaskStatus::Due,
            _ => TaskStatus::Missed,
        }
    }

    pub fn task_of(&self, row: &AnyRow) -> Result<Task, ApiError> {
        let due: i64 = col(row, "due_day")?;
        let window: i64 = col(row, "window_end_day")?;
        let state: String = col(row, "state")?;
        let follow_up: String = col(row, "follow_up_id")?;
        Ok(Task {
            name: format!("tasks/{}", col::<String>(row, "id")?),
            plan: format!("plans/{}", col::<String>(row, "plan_id")?),
            patient: format!("patients/{}", col::<String>(row, "patient_id")?),
            department: col(row, "department")?,
            assignee: col(row, "assignee")?,
            due_date: Some(to_date(due as i32)),
            window_end_date: Some(to_date(window as i32)),
            status: self.task_status(&state, due as i32, window as i32) as i32,
            channel: col::<i64>(row, "channel")? as i32,
            purpose: col(row, "purpose")?,
            attempts: col::<i64>(row, "attempts")? as i32,
            notify_patient: col::<i64>(row, "notify_patient")? != 0,
            follow_up: if follow_up.is_empty() {
                String::new()
            } else {
                format!("followUps/{follow_up}")
            },
            cancel_reason: col(row, "cancel_reason")?,
            etag: etag(col(row, "version")?),
            create_time: Some(to_timestamp(col(row, "created_at")?)),
            update_time: Some(to_timestamp(col(row, "updated_at")?)),
        })
    }

    pub async fn get_task(&self, id: &str, scope: &Scope) -> Result<Task, ApiError> {
        let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .filter(|r| col::<String>(r, "department").is_ok_and(|d| scope.covers(&d)))
            .ok_or_else(|| ApiError::not_found(format!("tasks/{id}")))?;
        self.task_of(&row)
    }

    /// Tasks by id, as they are now (missing ids are absent).
    pub async fn tasks_by_id(&self, ids: &[&str]) -> Result<std::collections::HashMap<String, Task>, ApiError> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut sql = Sql::new("SELECT * FROM tasks WHERE id IN (");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Value::Text(id.to_string()));
        }
        sql.push(")");
        for row in sql.query().fetch_all(&self.db.pool).await? {
            let task = self.task_of(&row)?;
            out.insert(task.name.trim_start_matches("tasks/").to_string(), task);
        }
        Ok(out)
    }

    /// A worklist page, by due day then id, after the `(due_day, id)` position.
    pub async fn list_tasks(
        &self,
        q: &TaskQuery,
        scope: &Scope,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Task>, ApiError> {
        let today = self.today() as i64;
        let mut sql = Sql::new("SELECT * FROM tasks WHERE 1 = 1");
        match TaskView::try_from(q.view).unwrap_or(TaskView::Unspecified) {
            TaskView::MineToday => {
                sql.push(" AND state = 'open' AND assignee = ")
                    .bind(Value::Text(q.subject.clone()));
                sql.push(" AND due_day <= ").bind(Value::Int(today));
                sql.push(" AND window_end_day >= ").bind(Value::Int(today));
            }
            TaskView::Overdue => {
                sql.push(" AND state = 'open' AND due_day < ").bind(Value::Int(today));
            }
            TaskView::Department | TaskView::All | TaskView::Unspecified => {}
        }
        if !q.department.is_empty() {
            sql.push(" AND department = ").bind(Value::Text(q.department.clone()));
        }
        if let Scope::Department(d) = scope {
            sql.push(" AND department = ").bind(Value::Text(d.clone()));
        }
        if !q.patient_id.is_empty() {
            sql.push(" AND patient_id = ").bind(Value::Text(q.patient_id.clone()));
        }
        if !q.plan_id.is_empty() {
            sql.push(" AND plan_id = ").bind(Value::Text(q.plan_id.clone()));
        }
        if let Some((due, id)) = after {
            sql.push(" AND (due_day > ").bind(Value::Int(due));
            sql.push(" OR (due_day = ").bind(Value::Int(due));
            sql.push(" AND id > ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY due_day, id LIMIT ").bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(|r| self.task_of(r)).collect()
    }

    /// Reschedules, reassigns or cancels an open task.
    pub async fn change_task(
        &self,
        ctx: &RequestContext,
        id: &str,
        scope: &Scope,
        expected: &str,
        change: TaskChange,
        reason: &str,
    ) -> Result<Task, ApiError> {
        let name = format!("tasks/{id}");
        let mut tx = self.db.begin_write().await?;
        let (_, plan) = self.lock_task_plan(&mut tx, id, scope).await?;
        let sql = format!("SELECT * FROM tasks WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        check_etag(&name, expected, col(&row, "version")?)?;
        let state: String = col(&row, "state")?;
        if state != "open" {
            return Err(ApiError::FailedPrecondition(format!(
                "{name} is {state}; only an open task can be rescheduled, reassigned or cancelled"
            )));
        }
        let plan_id: String = col(&row, "plan_id")?;
        let now = self.now();
        let (action, detail) = match &change {
            TaskChange::Reschedule(day) => {
                let old_due: i64 = col(&row, "due_day")?;
                let old_window: i64 = col(&row, "window_end_day")?;
                let new_due = *day as i64;
                sqlx::query("UPDATE tasks SET due_day = $1, window_end_day = $2, version = version + 1, updated_at = $3 WHERE id = $4")
                    .bind(new_due)
                    .bind(new_due + (old_window - old_due))
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                ("task.reschedule", json!({ "from_day": old_due, "to_day": new_due }))
            }
            TaskChange::Reassign(to) => {
                sqlx::query("UPDATE tasks SET assignee = $1, version = version + 1, updated_at = $2 WHERE id = $3")
                    .bind(to)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                (
                    "task.reassign",
                    json!({ "from": col::<String>(&row, "assignee")?, "to": to }),
                )
            }
            TaskChange::Cancel => {
                sqlx::query(
                    "UPDATE tasks SET state = 'cancelled', cancel_reason = $1, version = version + 1, updated_at = $2 WHERE id = $3",
                )
                .bind(reason)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                ("task.cancel", json!({}))
            }
        };
        history(
            &mut tx,
            &plan_id,
            now,
            &ctx.principal.subject,
            action,
            &format!("{name} {detail}"),
        )
        .await?;
        if matches!(change, TaskChange::Cancel) {
            self.after_task_closed(&mut tx, &plan, &row, &ctx.principal.subject, now)
                .await?;
        }
        let audit = AuditEntry::new(ctx, action, &name, reason, detail);
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_task(id, &Scope::All).await
    }

    /// Open tasks past their due date, within scope.
    pub async fn overdue_count(&self, scope: &Scope, department: &str) -> Result<i64, ApiError> {
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM tasks WHERE state = 'open' AND due_day < ");
        sql.bind(Value::Int(self.today() as i64));
        if let Scope::Department(d) = scope {
            sql.push(" AND department = ").bind(Value::Text(d.clone()));
        }
        if !department.is_empty() {
            sql.push(" AND department = ").bind(Value::Text(department.into()));
        }
        let row = sql.query().fetch_one(&self.db.pool).await?;
        Ok(col(&row, "n")?)
    }
}
