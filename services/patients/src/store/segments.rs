//! Saved segments, and the SQL of a segment filter over patients and their timeline facts.

use super::patients::{COLUMNS, Row, View, etag};
use super::{Store, decode};
use crate::domain::segment;
use chrono::NaiveDate;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::filter::escape_like;
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{from_timestamp, to_timestamp};
use hcrm_proto::patients::{Patient, Segment, SegmentFilter};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

/// Interaction kinds that count as a visit (outpatient visit, admission, discharge), as SQL.
const VISIT_KINDS: &str = "(2, 3, 4)";

pub fn name_of(id: &str) -> String {
    format!("segments/{id}")
}

fn to_segment(row: &AnyRow) -> Result<Segment, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut s: Segment = decode(&doc)?;
    let id: String = col(row, "id")?;
    s.name = name_of(&id);
    s.owner = col(row, "owner")?;
    s.etag = etag(col(row, "version")?);
    s.create_time = Some(to_timestamp(col(row, "created_at")?));
    s.update_time = Some(to_timestamp(col(row, "updated_at")?));
    Ok(s)
}

fn push_in(sql: &mut Sql, column: &str, values: impl Iterator<Item = Value>) {
    sql.push(" AND ").push(column).push(" IN (");
    for (n, v) in values.enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.bind(v);
    }
    sql.push(")");
}

fn ints(list: &[i32]) -> impl Iterator<Item = Value> + '_ {
    list.iter().map(|v| Value::Int(i64::from(*v)))
}

fn texts(list: &[String]) -> impl Iterator<Item = Value> + '_ {
    list.iter().map(|v| Value::Text(v.clone()))
}

/// A compiled filter: `FROM … WHERE …` over `patients p` (joined to `patient_facts f` when the
/// filter needs it), with bound values.
pub fn compile(f: &SegmentFilter, scope: &Scope, today: NaiveDate) -> Sql {
    let needs_facts = f.visits_since.is_none() && (f.min_visits.is_some() || f.max_visits.is_some());
    let mut sql = Sql::new(if needs_facts {
        " FROM patients p LEFT JOIN patient_facts f ON f.patient_id = p.id"
    } else {
        " FROM patients p"
    });
    sql.push(" WHERE p.deleted_at IS NULL AND p.merged_into IS NULL");
    if !f.include_do_not_contact {
        sql.push(" AND p.do_not_contact = 0");
    }
    if !f.include_deceased {
        sql.push(" AND p.deceased = 0");
    }
    if let Scope::Department(dept) = scope {
        sql.push(" AND p.department = ").bind(Value::Text(dept.clone()));
    }
    if !f.departments.is_empty() {
        push_in(&mut sql, "p.department", texts(&f.departments));
    }
    if let Some(t) = f.last_visit_before.as_ref().and_then(from_timestamp) {
        sql.push(" AND (p.last_visit_at IS NULL OR p.last_visit_at < ")
            .bind(Value::Int(t))
            .push(")");
    }
    if let Some(t) = f.last_visit_after.as_ref().and_then(from_timestamp) {
        sql.push(" AND p.last_visit_at >= ").bind(Value::Int(t));
    }
    if f.min_visits.is_some() || f.max_visits.is_some() {
        let visits = match f.visits_since.as_ref().and_then(from_timestamp) {
            Some(since) => {
                let mut s = Sql::new(format!(
                    "(SELECT COUNT(*) FROM interactions i WHERE i.patient_id = p.id AND i.kind IN {VISIT_KINDS} AND i.occurred_at >= "
                ));
                s.bind(Value::Int(since)).push(")");
                s
            }
            None => Sql::new("COALESCE(f.visit_count, 0)"),
        };
        if let Some(min) = f.min_visits {
            sql.push(" AND ").append_renumbered(&visits);
            sql.push(" >= ").bind(Value::Int(i64::from(min)));
        }
        if let Some(max) = f.max_visits {
            sql.push(" AND ").append_renumbered(&visits);
            sql.push(" <= ").bind(Value::Int(i64::from(max)));
        }
    }
    if !f.departments_seen.is_empty() {
        sql.push(" AND p.id IN (SELECT patient_id FROM patient_departments WHERE 1 = 1");
        push_in(&mut sql, "department", texts(&f.departments_seen));
        sql.push(")");
    }
    if !f.diagnosis_prefixes.is_empty() {
        // Prefixes hold only letters, digits and dots: no LIKE wildcard to escape, and the
        // pattern is a plain prefix the code index answers.
        sql.push(" AND p.id IN (SELECT patient_id FROM patient_diagnoses WHERE ");
        for (n, prefix) in f.diagnosis_prefixes.iter().enumerate() {
            if n > 0 {
                sql.push(" OR ");
            }
            sql.push("code LIKE ").bind(Value::Text(format!("{prefix}%")));
        }
        sql.push(")");
    }
    let (born_by, born_after) = segment::birth_bounds(today, f.min_age, f.max_age);
    if born_by.is_some() || born_after.is_some() {
        sql.push(" AND p.birth_date <> ''");
    }
    if let Some(d) = born_by {
        sql.push(" AND p.birth_date <= ").bind(Value::Text(d));
    }
    if let Some(d) = born_after {
        sql.push(" AND p.birth_date > ").bind(Value::Text(d));
    }
    if !f.provinces.is_empty() {
        push_in(&mut sql, "p.province", texts(&f.provinces));
    }
    if !f.cities.is_empty() {
        push_in(&mut sql, "p.city", texts(&f.cities));
    }
    if !f.occupations.is_empty() {
        push_in(&mut sql, "p.occupation", texts(&f.occupations));
    }
    if !f.income_bands.is_empty() {
        push_in(&mut sql, "p.income_band", ints(&f.income_bands));
    }
    if !f.sexes.is_empty() {
        push_in(&mut sql, "p.sex", ints(&f.sexes));
    }
    let tag = |t: &String| Value::Text(format!("%|{}|%", escape_like(t)));
    if !f.tags_any.is_empty() {
        sql.push(" AND (");
        for (n, t) in f.tags_any.iter().enumerate() {
            if n > 0 {
                sql.push(" OR ");
            }
            sql.push("p.tags LIKE ").bind(tag(t)).push(" ESCAPE '\\'");
        }
        sql.push(")");
    }
    for t in &f.tags_all {
        sql.push(" AND p.tags LIKE ").bind(tag(t)).push(" ESCAPE '\\'");
    }
    if let Some(vip) = f.vip {
        sql.push(" AND p.vip = ").bind(Value::Int(i64::from(vip)));
    }
    if !f.classes.is_empty() || !f.intent_grades.is_empty() || !f.value_tiers.is_empty() {
        sql.push(" AND p.id IN (SELECT patient_id FROM patient_grades WHERE 1 = 1");
        if !f.classes.is_empty() {
            push_in(&mut sql, "customer_class", ints(&f.classes));
        }
        if !f.intent_grades.is_empty() {
            push_in(&mut sql, "intent_grade", ints(&f.intent_grades));
        }
        if !f.value_tiers.is_empty() {
            push_in(&mut sql, "value_tier", ints(&f.value_tiers));
        }
        sql.push(")");
    }
    sql
}

impl Store {
    /// Saves a segment (validated and normalised by the caller).
    pub async fn create_segment(
        &self,
        ctx: &RequestContext,
        mut s: Segment,
        request_key: Option<String>,
        now: i64,
    ) -> Result<Segment, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self.get_segment(resource.trim_start_matches("segments/")).await;
        }
        let id = hcrm_kit::new_id();
        let name = name_of(&id);
        s.name.clear();
        sqlx::query(
            "INSERT INTO segments (id, display_name, owner, doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(&id)
        .bind(&s.display_name)
        .bind(&ctx.principal.subject)
        .bind(s.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &name, now).await?;
        }
        let audit = AuditEntry::new(
            ctx,
            "segment.create",
            &name,
            "",
            json!({ "display_name": s.display_name }),
        );
        let event = NewEvent {
            kind: "segment.created",
            resource: name.clone(),
            payload: json!({ "segment": name, "display_name": s.display_name }),
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        self.get_segment(&id).await
    }

    pub async fn get_segment(&self, id: &str) -> Result<Segment, ApiError> {
        let row = sqlx::query("SELECT * FROM segments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        to_segment(&row)
    }

    /// Applies an update mask under optimistic concurrency.
    pub async fn update_segment(
        &self,
        ctx: &RequestContext,
        id: &str,
        changes: &Segment,
        paths: &[String],
        expected_etag: &str,
        now: i64,
    ) -> Result<Segment, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT * FROM segments WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        let mut current = to_segment(&row)?;
        if current.etag != expected_etag {
            return Err(ApiError::Aborted(format!(
                "{} was changed since it was read (etag {}); read it again and retry",
                name_of(id),
                current.etag
            )));
        }
        let version: i64 = col(&row, "version")?;
        segment::apply_mask(&mut current, changes, paths);
        segment::normalize(&mut current);
        let mut v = hcrm_kit::validate::Violations::new();
        segment::validate(&current, "segment", &mut v);
        v.finish()?;
        let done = sqlx::query(
            "UPDATE segments SET display_name = $1, doc = $2, version = version + 1, updated_at = $3 WHERE id = $4 AND version = $5",
        )
        .bind(&current.display_name)
        .bind(current.encode_to_vec())
        .bind(now)
        .bind(id)
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(ApiError::Aborted(format!(
                "{} was changed concurrently; retry",
                name_of(id)
            )));
        }
        let name = name_of(id);
        let audit = AuditEntry::new(ctx, "segment.update", &name, "", json!({ "fields": paths }));
        let event = NewEvent {
            kind: "segment.updated",
            resource: name.clone(),
            payload: json!({ "segment": name, "fields": paths }),
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        self.get_segment(id).await
    }

    pub async fn delete_segment(
        &self,
        ctx: &RequestContext,
        id: &str,
        expected_etag: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT version FROM segments WHERE id = $1{}", self.for_update());
        let version: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| col(&r, "version"))
            .transpose()?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        if !expected_etag.is_empty() && etag(version) != expected_etag {
            return Err(ApiError::Aborted(format!(
                "{} was changed since it was read; read it again and retry",
                name_of(id)
            )));
        }
        sqlx::query("DELETE FROM segments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let name = name_of(id);
        let audit = AuditEntry::new(ctx, "segment.delete", &name, "", json!({}));
        let event = NewEvent {
            kind: "segment.deleted",
            resource: name.clone(),
            payload: json!({ "segment": name }),
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// Segments by display name after the `(display_name, id)` position.
    pub async fn list_segments(&self, after: Option<(String, String)>, limit: usize) -> Result<Vec<Segment>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM segments");
        if let Some((name, id)) = after {
            sql.push(" WHERE display_name > ").bind(Value::Text(name.clone()));
            sql.push(" OR (display_name = ").bind(Value::Text(name));
            sql.push(" AND id > ").bind(Value::Text(id)).push(")");
        }
        sql.push(" ORDER BY display_name, id LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(to_segment).collect()
    }

    /// Patients matching a compiled filter.
    pub async fn count_segment(&self, compiled: &Sql) -> Result<i64, ApiError> {
        let mut sql = Sql::new("SELECT COUNT(*) AS n");
        sql.append_renumbered(compiled);
        Ok(col(&sql.query().fetch_one(&self.db.pool).await?, "n")?)
    }

    /// A page of members (masked), in id order after `after`.
    pub async fn segment_members(
        &self,
        compiled: &Sql,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Patient>, ApiError> {
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("p.{c} AS {c}")).collect();
        let mut sql = Sql::new(format!("SELECT {}", columns.join(", ")));
        sql.append_renumbered(compiled);
        if let Some(after) = after {
            sql.push(" AND p.id > ").bind(Value::Text(after.to_string()));
        }
        sql.push(" ORDER BY p.id LIMIT ").bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.to_patient(Row::read(r)?, View::Masked)?);
        }
        Ok(out)
    }
}
