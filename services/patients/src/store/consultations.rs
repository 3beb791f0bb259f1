//! Consultations of the guide desk.

use super::interactions::Recorded;
use super::patients::name_of as patient_name;
use super::{Store, decode};
use crate::domain::consultation::{self, category_name, channel_name};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::ledger::{self, AuditEntry};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::patients::{Consultation, Interaction, InteractionKind};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

pub fn name_of(id: &str) -> String {
    format!("consultations/{id}")
}

const COLUMNS: &str = "id, referral_department, doc, created_at";

fn to_consultation(row: &AnyRow) -> Result<Consultation, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut c: Consultation = decode(&doc)?;
    let id: String = col(row, "id")?;
    c.name = name_of(&id);
    c.create_time = Some(to_timestamp(col(row, "created_at")?));
    Ok(c)
}

/// Filters of a consultation listing (validated by the caller).
#[derive(Debug, Default)]
pub struct ConsultationQuery {
    pub patient_id: Option<String>,
    /// A normalised full number.
    pub phone: Option<String>,
    pub phone_last4: Option<String>,
    pub category: i32,
    pub channel: i32,
    pub handled_by: String,
    pub follow_up_needed: Option<bool>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Lower-cased text to find in the question or answer.
    pub text: String,
}

/// Consultations of one category, channel and local hour of the week.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub category: i32,
    pub channel: i32,
    /// `consultation::hour_of_week` of the start time.
    pub hour_of_week: i64,
    pub count: i64,
    pub duration_seconds: i64,
    pub follow_up_needed: i64,
}

fn scope_department(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::All => None,
        Scope::Department(d) => Some(d.as_str()),
    }
}

impl Store {
    /// Logs a consultation (validated and normalised by the caller) started at `start`; one about
    /// a known patient goes on the patient's timeline in the same transaction.
    pub async fn create_consultation(
        &self,
        ctx: &RequestContext,
        mut c: Consultation,
        start: i64,
        request_key: Option<String>,
        now: i64,
    ) -> Result<Consultation, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self
                .get_consultation(resource.trim_start_matches("consultations/"), &Scope::All)
                .await;
        }
        consultation::clear_output_only(&mut c);
        let id = hcrm_kit::new_id();
        let name = name_of(&id);
        c.handled_by = ctx.principal.subject.clone();
        c.start_time = Some(to_timestamp(start));
        let mut ledger_events = Vec::new();
        let mut audits = Vec::new();
        let patient_id = match c.patient.strip_prefix("patients/") {
            Some(pid) if !pid.is_empty() => {
                let row = self.load_row(&mut tx, pid, &Scope::All).await?;
                if row.deleted_at.is_some() {
                    return Err(ApiError::FailedPrecondition(format!(
                        "{} is deleted",
                        patient_name(pid)
                    )));
                }
                let entry = Interaction {
                    kind: InteractionKind::Consultation as i32,
                    department: c.referral_department.clone(),
                    occur_time: Some(to_timestamp(start)),
                    summary: consultation::timeline_summary(&c),
                    source_system: "consultation".into(),
                    external_id: id.clone(),
                    details_json: json!({
                        "consultation": name,
                        "channel": channel_name(c.channel),
                        "category": category_name(c.category),
                        "follow_up_needed": c.follow_up_needed,
                    })
                    .to_string(),
                    ..Default::default()
                };
                let (recorded, rows) = self
                    .record_in_tx(&mut tx, &ctx.principal, &ctx.request_id, pid, entry, now)
                    .await?;
                let (Recorded::New(i) | Recorded::Existing(i)) = recorded;
                c.interaction = i.name;
                if let Some((audit, event)) = rows {
                    audits.push(audit);
                    ledger_events.push(event);
                }
                pid.to_string()
            }
            _ => String::new(),
        };
        let search_text = format!("{}\n{}", c.question, c.answer).to_lowercase();
        sqlx::query(
            "INSERT INTO consultations (id, patient_id, phone, phone_last4, channel, category, referral_department, \
             handled_by, follow_up_needed, duration_seconds, search_text, started_at, doc, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&id)
        .bind(&patient_id)
        .bind(c.caller_phone.clone())
        .bind(consultation::last4(&c.caller_phone))
        .bind(i64::from(c.channel))
        .bind(i64::from(c.category))
        .bind(c.referral_department.clone())
        .bind(c.handled_by.clone())
        .bind(i64::from(c.follow_up_needed))
        .bind(i64::from(c.duration_seconds))
        .bind(search_text)
        .bind(start)
        .bind(c.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &name, now).await?;
        }
        audits.push(AuditEntry::new(
            ctx,
            "consultation.create",
            &name,
            "",
            json!({
                "patient": c.patient,
                "channel": channel_name(c.channel),
                "category": category_name(c.category),
            }),
        ));
        ledger::append(&mut tx, now, &audits, &ledger_events).await?;
        tx.commit().await?;
        self.changed();
        self.get_consultation(&id, &Scope::All).await
    }

    /// One consultation; NOT_FOUND when it does not exist or is outside `scope` (its referral
    /// department).
    pub async fn get_consultation(&self, id: &str, scope: &Scope) -> Result<Consultation, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM consultations WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .filter(|r| col::<String>(r, "referral_department").is_ok_and(|d| scope.covers(&d)))
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        to_consultation(&row)
    }

    /// Consultations matching `q` within `scope`, newest first, after the `(started_at, id)`
    /// position.
    pub async fn list_consultations(
        &self,
        q: &ConsultationQuery,
        scope: &Scope,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(Consultation, i64, String)>, ApiError> {
        let mut sql = Sql::new(format!("SELECT {COLUMNS}, started_at FROM consultations WHERE 1 = 1"));
        if let Some(dept) = scope_department(scope) {
            sql.push(" AND referral_department = ")
                .bind(Value::Text(dept.to_string()));
        }
        if let Some(p) = &q.patient_id {
            sql.push(" AND patient_id = ").bind(Value::Text(p.clone()));
        }
        if let Some(p) = &q.phone {
            sql.push(" AND phone = ").bind(Value::Text(p.clone()));
        }
        if let Some(p) = &q.phone_last4 {
            sql.push(" AND phone_last4 = ").bind(Value::Text(p.clone()));
        }
        if q.category != 0 {
            sql.push(" AND category = ").bind(Value::Int(i64::from(q.category)));
        }
        if q.channel != 0 {
            sql.push(" AND channel = ").bind(Value::Int(i64::from(q.channel)));
        }
        if !q.handled_by.is_empty() {
            sql.push(" AND handled_by = ").bind(Value::Text(q.handled_by.clone()));
        }
        if let Some(f) = q.follow_up_needed {
            sql.push(" AND follow_up_needed = ").bind(Value::Int(i64::from(f)));
        }
        if let Some(start) = q.start {
            sql.push(" AND started_at >= ").bind(Value::Int(start));
        }
        if let Some(end) = q.end {
            sql.push(" AND started_at < ").bind(Value::Int(end));
        }
        if !q.text.is_empty() {
            sql.push(" AND search_text LIKE ")
                .bind(Value::Text(format!("%{}%", hcrm_kit::filter::escape_like(&q.text))))
                .push(" ESCAPE '\\'");
        }
        if let Some((at, id)) = after {
            sql.push(" AND (started_at < ").bind(Value::Int(at));
            sql.push(" OR (started_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    to_consultation(r)?,
                    col::<i64>(r, "started_at")?,
                    col::<String>(r, "id")?,
                ))
            })
            .collect()
    }

    /// Counts of consultations started in `[start, end)` within `scope`, by category, channel and
    /// local hour of the week.
    pub async fn consultation_buckets(
        &self,
        start: i64,
        end: i64,
        utc_offset_minutes: i32,
        scope: &Scope,
    ) -> Result<Vec<Bucket>, ApiError> {
        let mut sql = Sql::new("SELECT category, channel, ((started_at / 1000000 + ");
        sql.bind(Value::Int(i64::from(utc_offset_minutes) * 60));
        sql.push(") / 3600) % 168 AS how, COUNT(*) AS n, CAST(SUM(duration_seconds) AS BIGINT) AS dur, ")
            .push("CAST(SUM(follow_up_needed) AS BIGINT) AS fu FROM consultations WHERE started_at >= ")
            .bind(Value::Int(start))
            .push(" AND started_at < ")
            .bind(Value::Int(end));
        if let Some(dept) = scope_department(scope) {
            sql.push(" AND referral_department = ")
                .bind(Value::Text(dept.to_string()));
        }
        sql.push(" GROUP BY category, channel, how");
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Bucket {
                    category: col::<i64>(r, "category")? as i32,
                    channel: col::<i64>(r, "channel")? as i32,
                    hour_of_week: col(r, "how")?,
                    count: col(r, "n")?,
                    duration_seconds: col(r, "dur")?,
                    follow_up_needed: col(r, "fu")?,
                })
            })
            .collect()
    }
}
