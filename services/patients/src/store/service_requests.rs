//! Convenience service requests (便民服务) with deadlines.

use super::interactions::Recorded;
use super::patients::name_of as patient_name;
use super::{Store, decode};
use crate::domain::service_request::{self as rules, Action, SlaTable, state_name, type_name};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{rfc3339, to_timestamp, to_timestamp_opt};
use hcrm_proto::patients::{
    Interaction, InteractionKind, ServiceRequest, ServiceRequestChange, ServiceRequestState, ServiceRequestType,
};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

pub fn name_of(id: &str) -> String {
    format!("service_requests/{id}")
}

const COLUMNS: &str = "id, patient_id, type, state, department, owner, due_at, done_at, cancelled_at, doc, version, created_at, updated_at";

/// A stored request with the columns a change needs.
struct Loaded {
    request: ServiceRequest,
    version: i64,
    created_at: i64,
}

fn read(row: &AnyRow, sla: &SlaTable, now: i64) -> Result<Loaded, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut r: ServiceRequest = decode(&doc)?;
    let id: String = col(row, "id")?;
    let patient_id: String = col(row, "patient_id")?;
    let version: i64 = col(row, "version")?;
    let created_at: i64 = col(row, "created_at")?;
    let due_at: i64 = col(row, "due_at")?;
    let done_at: Option<i64> = col(row, "done_at")?;
    let cancelled_at: Option<i64> = col(row, "cancelled_at")?;
    let state = ServiceRequestState::try_from(col::<i64>(row, "state")? as i32).unwrap_or(ServiceRequestState::Open);
    r.name = name_of(&id);
    r.patient = patient_name(&patient_id);
    r.r#type = col::<i64>(row, "type")? as i32;
    r.state = state as i32;
    r.department = col(row, "department")?;
    r.owner = col(row, "owner")?;
    r.due_time = Some(to_timestamp(due_at));
    let (start, _) = sla.window(&r, created_at);
    r.sla_state = sla.state(state, (start, due_at), done_at, now) as i32;
    r.etag = super::patients::etag(version);
    r.create_time = Some(to_timestamp(created_at));
    r.update_time = Some(to_timestamp(col(row, "updated_at")?));
    r.close_time = to_timestamp_opt(done_at.or(cancelled_at));
    Ok(Loaded {
        request: r,
        version,
        created_at,
    })
}

/// What a caller changes on a request (validated at the edge).
pub enum Change {
    Start {
        owner: String,
    },
    Assign {
        owner: String,
    },
    Update {
        changes: Box<ServiceRequest>,
        paths: Vec<String>,
    },
    Complete {
        outcome: String,
    },
    Cancel {
        reason: String,
    },
}

impl Change {
    fn action(&self) -> Action {
        match self {
            Change::Start { .. } => Action::Start,
            Change::Assign { .. } => Action::Assign,
            Change::Update { .. } => Action::Update,
            Change::Complete { .. } => Action::Complete,
            Change::Cancel { .. } => Action::Cancel,
        }
    }
}

/// Filters of the worklist (validated by the caller).
#[derive(Debug, Default)]
pub struct WorklistQuery {
    pub states: Vec<i32>,
    pub r#type: i32,
    pub owner: Option<String>,
    pub unassigned_only: bool,
    pub department: Option<String>,
    pub overdue_only: bool,
    pub patient_id: Option<String>,
}

/// Figures of one type (index = the type's number) over a range.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TypeFigures {
    pub created: i64,
    pub done: i64,
    pub done_on_time: i64,
    pub cancelled: i64,
    pub open_overdue_now: i64,
    /// Sum of microseconds from creation to done over `done`.
    pub micros_to_done: i64,
}

fn scope_department(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::All => None,
        Scope::Department(d) => Some(d.as_str()),
    }
}

fn changed_event(r: &ServiceRequest, kind: &'static str, action: &str, due_at: i64) -> NewEvent {
    NewEvent {
        kind,
        resource: r.name.clone(),
        payload: json!({
            "service_request": r.name,
            "patient": r.patient,
            "type": type_name(r.r#type),
            "state": state_name(ServiceRequestState::try_from(r.state).unwrap_or(ServiceRequestState::Open)),
            "action": action,
            "department": r.department,
            "owner": r.owner,
            "due_time": rfc3339(due_at),
        }),
    }
}

impl Store {
    /// Takes in a request (validated and normalised by the caller); its department defaults to
    /// the patient's, its due time follows the type's SLA.
    pub async fn create_service_request(
        &self,
        ctx: &RequestContext,
        mut r: ServiceRequest,
        scope: &Scope,
        request_key: Option<String>,
        sla: &SlaTable,
        now: i64,
    ) -> Result<ServiceRequest, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self
                .get_service_request(resource.trim_start_matches("service_requests/"), &Scope::All, sla, now)
                .await;
        }
        let patient_id = r.patient.trim_start_matches("patients/").to_string();
        let row = self.load_row(&mut tx, &patient_id, scope).await?;
        if row.deleted_at.is_some() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} is deleted",
                patient_name(&patient_id)
            )));
        }
        rules::clear_output_only(&mut r);
        if r.department.is_empty() {
            r.department = row.department.clone();
        }
        let id = hcrm_kit::new_id();
        r.name = name_of(&id);
        r.state = ServiceRequestState::Open as i32;
        r.created_by = ctx.principal.subject.clone();
        let (_, due_at) = sla.window(&r, now);
        r.history.push(ServiceRequestChange {
            action: "created".into(),
            state: r.state,
            owner: r.owner.clone(),
            actor: ctx.principal.subject.clone(),
            time: Some(to_timestamp(now)),
            note: String::new(),
        });
        sqlx::query(
            "INSERT INTO service_requests (id, patient_id, type, state, department, owner, due_at, doc, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
        )
        .bind(&id)
        .bind(&patient_id)
        .bind(i64::from(r.r#type))
        .bind(i64::from(r.state))
        .bind(r.department.clone())
        .bind(r.owner.clone())
        .bind(due_at)
        .bind(r.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &r.name, now).await?;
        }
        let audit = AuditEntry::new(
            ctx,
            "service_request.create",
            &r.name,
            "",
            json!({ "patient": r.patient, "type": type_name(r.r#type), "department": r.department }),
        );
        let event = changed_event(&r, "service_request.created", "created", due_at);
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        self.get_service_request(&id, &Scope::All, sla, now).await
    }

    /// One request; NOT_FOUND when it does not exist or is outside `scope`.
    pub async fn get_service_request(
        &self,
        id: &str,
        scope: &Scope,
        sla: &SlaTable,
        now: i64,
    ) -> Result<ServiceRequest, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM service_requests WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        let loaded = read(&row, sla, now)?;
        if !scope.covers(&loaded.request.department) {
            return Err(ApiError::not_found(name_of(id)));
        }
        Ok(loaded.request)
    }

    /// Applies one change under optimistic concurrency: the etag must match, the state must allow
    /// it. Completing writes the patient's timeline entry in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_service_request(
        &self,
        ctx: &RequestContext,
        id: &str,
        scope: &Scope,
        expected_etag: &str,
        change: Change,
        sla: &SlaTable,
        now: i64,
    ) -> Result<ServiceRequest, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM service_requests WHERE id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        let Loaded {
            request: mut r,
            version,
            created_at,
        } = read(&row, sla, now)?;
        if !scope.covers(&r.department) {
            return Err(ApiError::not_found(name_of(id)));
        }
        if r.etag != expected_etag {
            return Err(ApiError::Aborted(format!(
                "{} was changed since it was read; read it again",
                name_of(id)
            )));
        }
        let action = change.action();
        let from = ServiceRequestState::try_from(r.state).unwrap_or(ServiceRequestState::Open);
        let to = rules::transition(from, action)?;
        let mut note = String::new();
        let mut done_at: Option<i64> = None;
        let mut cancelled_at: Option<i64> = None;
        let mut audits = Vec::new();
        let mut events = Vec::new();
        match change {
            Change::Start { owner } | Change::Assign { owner } => r.owner = owner,
            Change::Update { changes, paths } => {
                rules::apply_mask(&mut r, &changes, &paths);
                rules::normalize(&mut r);
                let mut v = hcrm_kit::validate::Violations::new();
                rules::validate_mutable(&r, "service_request", now, &mut v);
                v.finish()?;
                note = paths.join(", ");
            }
            Change::Complete { outcome } => {
                rules::check_completable(&r)?;
                r.outcome = outcome;
                done_at = Some(now);
                let patient_id = r.patient.trim_start_matches("patients/").to_string();
                let entry = Interaction {
                    kind: InteractionKind::Other as i32,
                    department: r.department.clone(),
                    occur_time: Some(to_timestamp(now)),
                    summary: rules::timeline_summary(&r),
                    source_system: "service_request".into(),
                    external_id: id.to_string(),
                    details_json: json!({
                        "service_request": r.name,
                        "type": type_name(r.r#type),
                    })
                    .to_string(),
                    ..Default::default()
                };
                let (recorded, rows) = self
                    .record_in_tx(&mut tx, &ctx.principal, &ctx.request_id, &patient_id, entry, now)
                    .await?;
                let (Recorded::New(i) | Recorded::Existing(i)) = recorded;
                r.interaction = i.name;
                if let Some((audit, event)) = rows {
                    audits.push(audit);
                    events.push(event);
                }
                note = r.outcome.clone();
            }
            Change::Cancel { reason } => {
                r.cancel_reason = reason.clone();
                cancelled_at = Some(now);
                note = reason;
            }
        }
        r.state = to as i32;
        r.history.push(ServiceRequestChange {
            action: action.word().into(),
            state: r.state,
            owner: r.owner.clone(),
            actor: ctx.principal.subject.clone(),
            time: Some(to_timestamp(now)),
            note: note.clone(),
        });
        let (_, due_at) = sla.window(&r, created_at);
        // The due time changes only when the details it counts from change.
        let due_at = if action == Action::Update {
            due_at
        } else {
            r.due_time
                .as_ref()
                .and_then(hcrm_kit::time::from_timestamp)
                .unwrap_or(due_at)
        };
        let mut doc = r.clone();
        doc.sla_state = 0;
        doc.etag.clear();
        let done = sqlx::query(
            "UPDATE service_requests SET state = $1, department = $2, owner = $3, due_at = $4, \
             done_at = COALESCE($5, done_at), cancelled_at = COALESCE($6, cancelled_at), doc = $7, \
             version = version + 1, updated_at = $8 WHERE id = $9 AND version = $10",
        )
        .bind(i64::from(r.state))
        .bind(r.department.clone())
        .bind(r.owner.clone())
        .bind(due_at)
        .bind(done_at)
        .bind(cancelled_at)
        .bind(doc.encode_to_vec())
        .bind(now)
        .bind(id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(ApiError::Aborted("changed concurrently; retry".into()));
        }
        let mut detail = json!({ "from": state_name(from), "to": state_name(to), "owner": r.owner });
        if action == Action::Update {
            detail["fields"] = json!(note);
        }
        audits.push(AuditEntry::new(
            ctx,
            &format!("service_request.{}", action_verb(action)),
            &r.name,
            if action == Action::Cancel { &r.cancel_reason } else { "" },
            detail,
        ));
        events.push(changed_event(&r, "service_request.changed", action.word(), due_at));
        ledger::append(&mut tx, now, &audits, &events).await?;
        tx.commit().await?;
        self.changed();
        self.get_service_request(id, &Scope::All, sla, now).await
    }

    /// The worklist: requests matching `q` within `scope`, earliest due first, after the
    /// `(due_at, id)` position.
    pub async fn list_service_requests(
        &self,
        q: &WorklistQuery,
        scope: &Scope,
        after: Option<(i64, String)>,
        limit: usize,
        sla: &SlaTable,
        now: i64,
    ) -> Result<Vec<(ServiceRequest, i64, String)>, ApiError> {
        let mut sql = Sql::new(format!("SELECT {COLUMNS} FROM service_requests WHERE 1 = 1"));
        if let Some(dept) = scope_department(scope) {
            sql.push(" AND department = ").bind(Value::Text(dept.to_string()));
        }
        if !q.states.is_empty() {
            sql.push(" AND state IN (");
            for (n, s) in q.states.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Int(i64::from(*s)));
            }
            sql.push(")");
        }
        if q.r#type != 0 {
            sql.push(" AND type = ").bind(Value::Int(i64::from(q.r#type)));
        }
        if let Some(owner) = &q.owner {
            sql.push(" AND owner = ").bind(Value::Text(owner.clone()));
        }
        if q.unassigned_only {
            sql.push(" AND owner = ''");
        }
        if let Some(dept) = &q.department {
            sql.push(" AND department = ").bind(Value::Text(dept.clone()));
        }
        if q.overdue_only {
            open_states(&mut sql);
            sql.push(" AND due_at < ").bind(Value::Int(now));
        }
        if let Some(p) = &q.patient_id {
            sql.push(" AND patient_id = ").bind(Value::Text(p.clone()));
        }
        if let Some((at, id)) = after {
            sql.push(" AND (due_at > ").bind(Value::Int(at));
            sql.push(" OR (due_at = ").bind(Value::Int(at));
            sql.push(" AND id > ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY due_at, id LIMIT ").bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    read(r, sla, now)?.request,
                    col::<i64>(r, "due_at")?,
                    col::<String>(r, "id")?,
                ))
            })
            .collect()
    }

    /// Figures per type (indexed by the type's number) for `[start, end)` within `scope`; the
    /// overdue count is of open requests now.
    pub async fn service_request_figures(
        &self,
        start: i64,
        end: i64,
        scope: &Scope,
        now: i64,
    ) -> Result<Vec<TypeFigures>, ApiError> {
        let types = ServiceRequestType::Other as usize + 1;
        let mut figures = vec![TypeFigures::default(); types];
        let scoped = |sql: &mut Sql| {
            if let Some(dept) = scope_department(scope) {
                sql.push(" AND department = ").bind(Value::Text(dept.to_string()));
            }
        };
        let slot = |figures: &mut Vec<TypeFigures>, row: &AnyRow| -> Result<usize, ApiError> {
            let t = col::<i64>(row, "type")? as usize;
            if t >= figures.len() {
                figures.resize(t + 1, TypeFigures::default());
            }
            Ok(t)
        };

        let mut sql = Sql::new("SELECT type, COUNT(*) AS n FROM service_requests WHERE created_at >= ");
        sql.bind(Value::Int(start))
            .push(" AND created_at < ")
            .bind(Value::Int(end));
        scoped(&mut sql);
        sql.push(" GROUP BY type");
        for row in sql.query().fetch_all(&self.db.pool).await? {
            let t = slot(&mut figures, &row)?;
            figures[t].created = col(&row, "n")?;
        }

        let mut sql = Sql::new(
            "SELECT type, COUNT(*) AS n, CAST(SUM(CASE WHEN done_at <= due_at THEN 1 ELSE 0 END) AS BIGINT) AS on_time, \
             CAST(SUM(done_at - created_at) AS BIGINT) AS took FROM service_requests WHERE done_at >= ",
        );
        sql.bind(Value::Int(start))
            .push(" AND done_at < ")
            .bind(Value::Int(end));
        scoped(&mut sql);
        sql.push(" GROUP BY type");
        for row in sql.query().fetch_all(&self.db.pool).await? {
            let t = slot(&mut figures, &row)?;
            figures[t].done = col(&row, "n")?;
            figures[t].done_on_time = col(&row, "on_time")?;
            figures[t].micros_to_done = col(&row, "took")?;
        }

        let mut sql = Sql::new("SELECT type, COUNT(*) AS n FROM service_requests WHERE cancelled_at >= ");
        sql.bind(Value::Int(start))
            .push(" AND cancelled_at < ")
            .bind(Value::Int(end));
        scoped(&mut sql);
        sql.push(" GROUP BY type");
        for row in sql.query().fetch_all(&self.db.pool).await? {
            let t = slot(&mut figures, &row)?;
            figures[t].cancelled = col(&row, "n")?;
        }

        let mut sql = Sql::new("SELECT type, COUNT(*) AS n FROM service_requests WHERE due_at < ");
        sql.bind(Value::Int(now));
        open_states(&mut sql);
        scoped(&mut sql);
        sql.push(" GROUP BY type");
        for row in sql.query().fetch_all(&self.db.pool).await? {
            let t = slot(&mut figures, &row)?;
            figures[t].open_overdue_now = col(&row, "n")?;
        }
        Ok(figures)
    }
}

/// Restricts to open and in-progress requests.
fn open_states(sql: &mut Sql) {
    sql.push(" AND state IN (")
        .bind(Value::Int(ServiceRequestState::Open as i64))
        .push(", ")
        .bind(Value::Int(ServiceRequestState::InProgress as i64))
        .push(")");
}

/// The audit action's verb.
fn action_verb(action: Action) -> &'static str {
    match action {
        Action::Start => "start",
        Action::Assign => "assign",
        Action::Update => "update",
        Action::Complete => "complete",
        Action::Cancel => "cancel",
    }
}
