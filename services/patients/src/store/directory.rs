//! The department and doctor directory and clinic schedules: records, the HIS import (upserts
//! by code or by (source system, external id)), and the guide desk's queries.
//!
//! Every write checks what it depends on (departments, the doctor, taken keys) with reads
//! before it writes, so a wrong import row fails alone without aborting the batch's
//! transaction; a concurrent writer that wins a unique key makes the batch retry row by row.

use super::import::failed;
use super::{Store, decode};
use crate::domain::directory::{
    self as rules, ExceptionRule, PatternRule, Slot, clear_department_output, clear_doctor_output,
};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Principal;
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::error::is_unique_violation;
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{now_micros, to_timestamp, to_timestamp_opt};
use hcrm_proto::patients::{
    ClinicPattern, ClinicSession, Department, DepartmentMatch, Doctor, RowResult, ScheduleException,
    ScheduleExceptionKind,
};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet};

pub fn department_name(code: &str) -> String {
    format!("departments/{code}")
}
pub fn doctor_name(id: &str) -> String {
    format!("doctors/{id}")
}
pub fn pattern_name(id: &str) -> String {
    format!("clinicPatterns/{id}")
}
pub fn exception_name(id: &str) -> String {
    format!("scheduleExceptions/{id}")
}

fn etag(version: i64) -> String {
    super::patients::etag(version)
}

/// Whether a write creates or upserts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An existing key is ALREADY_EXISTS.
    Create,
    /// An existing key is updated (the import).
    Upsert,
}

/// What a write did.
#[derive(Debug)]
pub struct Written {
    pub name: String,
    pub created: bool,
    pub changed: bool,
}

/// A validated import row.
pub enum RowIn {
    Department(Department),
    Doctor(Doctor),
    Pattern(ClinicPattern, PatternRule),
    Exception(ScheduleException, ExceptionRule),
    DoctorPatterns {
        doctor: String,
        doctor_external_id: String,
        source_system: String,
        patterns: Vec<(ClinicPattern, PatternRule)>,
    },
}

pub struct ImportRow {
    pub index: i64,
    pub row: RowIn,
}

/// Filters of ListDoctors.
#[derive(Default)]
pub struct DoctorFilter {
    pub department: String,
    pub specialty: String,
    pub experts_only: bool,
    pub query: String,
    pub show_archived: bool,
}

/// What FindClinicSessions asks.
pub struct SessionQuery {
    pub department: String,
    pub specialty: String,
    pub day: i64,
    pub experts_only: bool,
    pub kind: i32,
}

const DEPT_COLUMNS: &str = "code, doc, version, created_at, updated_at, archived_at";
const DOCTOR_COLUMNS: &str = "id, doc, version, created_at, updated_at, archived_at";
const PATTERN_COLUMNS: &str = "id, doctor_id, department, weekday, session, start_minute, end_minute, kind, valid_from, valid_until, doc, created_at, updated_at";
const EXCEPTION_COLUMNS: &str = "id, doctor_id, day, session, kind, department, doc, created_at";

fn to_department(row: &AnyRow) -> Result<Department, ApiError> {
    let mut d: Department = decode(&col::<Vec<u8>>(row, "doc")?)?;
    let code: String = col(row, "code")?;
    d.name = department_name(&code);
    d.code = code;
    d.etag = etag(col(row, "version")?);
    d.create_time = Some(to_timestamp(col(row, "created_at")?));
    d.update_time = Some(to_timestamp(col(row, "updated_at")?));
    d.archive_time = to_timestamp_opt(col(row, "archived_at")?);
    d.archived = d.archive_time.is_some();
    Ok(d)
}

fn to_doctor(row: &AnyRow) -> Result<Doctor, ApiError> {
    let mut d: Doctor = decode(&col::<Vec<u8>>(row, "doc")?)?;
    d.name = doctor_name(&col::<String>(row, "id")?);
    d.etag = etag(col(row, "version")?);
    d.create_time = Some(to_timestamp(col(row, "created_at")?));
    d.update_time = Some(to_timestamp(col(row, "updated_at")?));
    d.archive_time = to_timestamp_opt(col(row, "archived_at")?);
    d.archived = d.archive_time.is_some();
    Ok(d)
}

fn to_pattern(row: &AnyRow) -> Result<ClinicPattern, ApiError> {
    let mut p: ClinicPattern = decode(&col::<Vec<u8>>(row, "doc")?)?;
    p.name = pattern_name(&col::<String>(row, "id")?);
    p.create_time = Some(to_timestamp(col(row, "created_at")?));
    p.update_time = Some(to_timestamp(col(row, "updated_at")?));
    Ok(p)
}

fn to_exception(row: &AnyRow) -> Result<ScheduleException, ApiError> {
    let mut e: ScheduleException = decode(&col::<Vec<u8>>(row, "doc")?)?;
    e.name = exception_name(&col::<String>(row, "id")?);
    e.create_time = Some(to_timestamp(col(row, "created_at")?));
    Ok(e)
}

fn pattern_rule(row: &AnyRow) -> Result<(PatternRule, ClinicPattern), ApiError> {
    let p: ClinicPattern = decode(&col::<Vec<u8>>(row, "doc")?)?;
    let rule = PatternRule {
        id: col(row, "id")?,
        doctor_id: col(row, "doctor_id")?,
        department: col(row, "department")?,
        weekday: col::<i64>(row, "weekday")? as i32,
        session: col::<i64>(row, "session")? as i32,
        start: col::<i64>(row, "start_minute")? as i32,
        end: col::<i64>(row, "end_minute")? as i32,
        kind: col::<i64>(row, "kind")? as i32,
        location: p.location.clone(),
        quota: p.quota,
        valid_from: col(row, "valid_from")?,
        valid_until: col(row, "valid_until")?,
    };
    Ok((rule, p))
}

fn exception_rule(row: &AnyRow) -> Result<ExceptionRule, ApiError> {
    let e: ScheduleException = decode(&col::<Vec<u8>>(row, "doc")?)?;
    let minutes = |t: &str| hcrm_kit::time::parse_hhmm(t).unwrap_or(0);
    Ok(ExceptionRule {
        id: col(row, "id")?,
        doctor_id: col(row, "doctor_id")?,
        day: col(row, "day")?,
        session: col::<i64>(row, "session")? as i32,
        kind: col::<i64>(row, "kind")? as i32,
        department: col(row, "department")?,
        start: minutes(&e.start_time),
        end: minutes(&e.end_time),
        clinic_kind: e.clinic_kind,
        location: e.location,
        quota: e.quota,
    })
}

fn opt_text(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::Text(s.to_string())
    }
}

fn push_list(sql: &mut Sql, values: impl IntoIterator<Item = String>) {
    for (n, v) in values.into_iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.bind(Value::Text(v));
    }
    sql.push(")");
}

/// Collects audit entries and counts changes of one transaction.
struct Changes<'a> {
    principal: &'a Principal,
    request_id: &'a str,
    audits: Vec<AuditEntry>,
}

impl<'a> Changes<'a> {
    fn new(principal: &'a Principal, request_id: &'a str) -> Self {
        Self {
            principal,
            request_id,
            audits: Vec::new(),
        }
    }

    fn audit(&mut self, action: &str, resource: &str, detail: serde_json::Value) {
        self.audits.push(AuditEntry::by(
            self.principal,
            self.request_id,
            action,
            resource,
            "",
            detail,
        ));
    }

    /// Appends the audit entries and one `directory.changed` event when anything changed.
    async fn commit(self, store: &Store, mut tx: Tx, now: i64, resource: &str) -> Result<(), ApiError> {
        if !self.audits.is_empty() {
            let actions: Vec<&str> = self.audits.iter().map(|a| a.action.as_str()).collect();
            let event = NewEvent {
                kind: "directory.changed",
                resource: resource.to_string(),
                payload: json!({ "changes": self.audits.len(), "actions": actions }),
            };
            ledger::append(&mut tx, now, &self.audits, &[event]).await?;
        }
        tx.commit().await?;
        if !self.audits.is_empty() {
            store.changed();
        }
        Ok(())
    }
}

impl Store {
    // ----- departments -------------------------------------------------------------------

    pub async fn get_department(&self, code: &str) -> Result<Department, ApiError> {
        let sql = format!("SELECT {DEPT_COLUMNS} FROM departments WHERE code = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(code)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(department_name(code)))?;
        to_department(&row)
    }

    /// Creates (`Mode::Create`) or upserts a department; `d.archived` is applied.
    async fn put_department(&self, tx: &mut Tx, d: &Department, mode: Mode, now: i64) -> Result<Written, ApiError> {
        let name = department_name(&d.code);
        let mut doc = d.clone();
        clear_department_output(&mut doc);
        let archived = std::mem::take(&mut doc.archived);
        let bytes = doc.encode_to_vec();
        let sql = format!(
            "SELECT version, doc, archived_at FROM departments WHERE code = $1{}",
            self.for_update()
        );
        let existing = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&d.code)
            .fetch_optional(&mut **tx)
            .await?;
        match existing {
            Some(_) if mode == Mode::Create => Err(ApiError::AlreadyExists {
                what: format!("department {}", d.code),
                existing: name,
            }),
            Some(row) => {
                let archived_at: Option<i64> = col(&row, "archived_at")?;
                if col::<Vec<u8>>(&row, "doc")? == bytes && archived_at.is_some() == archived {
                    return Ok(Written {
                        name,
                        created: false,
                        changed: false,
                    });
                }
                let archived_at = if archived {
                    Some(archived_at.unwrap_or(now))
                } else {
                    None
                };
                sqlx::query(
                    "UPDATE departments SET display_name = $1, doc = $2, version = version + 1, updated_at = $3, archived_at = $4 WHERE code = $5",
                )
                .bind(&doc.display_name)
                .bind(bytes)
                .bind(now)
                .bind(archived_at)
                .bind(&d.code)
                .execute(&mut **tx)
                .await?;
                Ok(Written {
                    name,
                    created: false,
                    changed: true,
                })
            }
            None => {
                sqlx::query(
                    "INSERT INTO departments (code, display_name, doc, version, created_at, updated_at, archived_at) VALUES ($1, $2, $3, 1, $4, $4, $5)",
                )
                .bind(&d.code)
                .bind(&doc.display_name)
                .bind(bytes)
                .bind(now)
                .bind(archived.then_some(now))
                .execute(&mut **tx)
                .await
                .map_err(|e| unique_as(e, || format!("department {}", d.code), "another department"))?;
                Ok(Written {
                    name,
                    created: true,
                    changed: true,
                })
            }
        }
    }

    pub async fn create_department(&self, ctx: &RequestContext, d: Department) -> Result<Department, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let mut d = d;
        d.archived = false;
        let w = self.put_department(&mut tx, &d, Mode::Create, now).await?;
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit("department.create", &w.name, json!({}));
        changes.commit(self, tx, now, &w.name).await?;
        self.get_department(&d.code).await
    }

    pub async fn update_department(
        &self,
        ctx: &RequestContext,
        code: &str,
        changes_in: Department,
        paths: &[String],
        expected_etag: &str,
    ) -> Result<Department, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT {DEPT_COLUMNS} FROM departments WHERE code = $1{}",
            self.for_update()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(department_name(code)))?;
        let mut current = to_department(&row)?;
        if current.etag != expected_etag {
            return Err(stale(&current.name));
        }
        rules::apply_department_mask(&mut current, &changes_in, paths);
        rules::normalize_department(&mut current);
        let mut v = hcrm_kit::validate::Violations::new();
        rules::validate_department(&current, "department", &mut v);
        v.finish()?;
        let now = now_micros();
        let w = self.put_department(&mut tx, &current, Mode::Upsert, now).await?;
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        if w.changed {
            changes.audit("department.update", &w.name, json!({ "fields": paths }));
        }
        changes.commit(self, tx, now, &w.name).await?;
        self.get_department(code).await
    }

    pub async fn archive_department(&self, ctx: &RequestContext, code: &str) -> Result<Department, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE departments SET archived_at = $1, version = version + 1, updated_at = $1 WHERE code = $2 AND archived_at IS NULL",
        )
        .bind(now)
        .bind(code)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let d = self.get_department(code).await?;
            return Err(ApiError::FailedPrecondition(format!("{} is already archived", d.name)));
        }
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit("department.archive", &department_name(code), json!({}));
        changes.commit(self, tx, now, &department_name(code)).await?;
        self.get_department(code).await
    }

    pub async fn list_departments(
        &self,
        show_archived: bool,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Department>, ApiError> {
        let mut sql = Sql::new(format!("SELECT {DEPT_COLUMNS} FROM departments"));
        if !show_archived {
            sql.push(" WHERE archived_at IS NULL");
        }
        sql.push(" ORDER BY code LIMIT ").bind(Value::Int(limit as i64));
        sql.push(" OFFSET ").bind(Value::Int(offset as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(to_department).collect()
    }

    /// Departments matching `query`, best first. The directory holds tens to a few hundred
    /// departments: they are read in one statement and scored in memory (a Chinese substring
    /// cannot use a B-tree index anyway).
    pub async fn find_departments(&self, query: &str, limit: usize) -> Result<Vec<DepartmentMatch>, ApiError> {
        let sql = format!("SELECT {DEPT_COLUMNS} FROM departments WHERE archived_at IS NULL");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.db.pool).await?;
        let mut matches = Vec::new();
        for row in &rows {
            let d = to_department(row)?;
            if let Some((score, matched)) = rules::match_department(query, &d) {
                matches.push(DepartmentMatch {
                    department: Some(d),
                    score,
                    matched,
                });
            }
        }
        matches.sort_by(|a, b| {
            b.score.cmp(&a.score).then_with(|| {
                let code = |m: &DepartmentMatch| m.department.as_ref().map(|d| d.code.clone()).unwrap_or_default();
                code(a).cmp(&code(b))
            })
        });
        matches.truncate(limit);
        Ok(matches)
    }

    /// INVALID_ARGUMENT on `{prefix}.departments[i]` (or `field`) for codes that are unknown or
    /// archived.
    async fn check_departments(&self, tx: &mut Tx, codes: &[(String, String)]) -> Result<(), ApiError> {
        if codes.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::new("SELECT code, archived_at FROM departments WHERE code IN (");
        push_list(&mut sql, codes.iter().map(|(_, c)| c.clone()));
        let mut state: HashMap<String, bool> = HashMap::new();
        for r in sql.query().fetch_all(&mut **tx).await? {
            state.insert(col(&r, "code")?, col::<Option<i64>>(&r, "archived_at")?.is_some());
        }
        let mut v = hcrm_kit::validate::Violations::new();
        for (field, code) in codes {
            match state.get(code) {
                None => v.add(field, format!("names no department: {code}")),
                Some(true) => v.add(field, format!("department {code} is archived")),
                Some(false) => {}
            }
        }
        v.finish()
    }

    // ----- doctors -----------------------------------------------------------------------

    pub async fn get_doctor(&self, id: &str) -> Result<Doctor, ApiError> {
        let sql = format!("SELECT {DOCTOR_COLUMNS} FROM doctors WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(doctor_name(id)))?;
        to_doctor(&row)
    }

    /// Writes a doctor's row and its department and specialty rows. `existing` is the row's
    /// version for an update, `None` for an insert.
    async fn write_doctor(
        &self,
        tx: &mut Tx,
        id: &str,
        d: &Doctor,
        existing: Option<(i64, Option<i64>)>,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut doc = d.clone();
        clear_doctor_output(&mut doc);
        let archived = std::mem::take(&mut doc.archived);
        let keys = crate::domain::names::name_keys(&doc.display_name);
        match existing {
            Some((version, archived_at)) => {
                let archived_at = if archived {
                    Some(archived_at.unwrap_or(now))
                } else {
                    None
                };
                let done = sqlx::query(
                    "UPDATE doctors SET display_name = $1, name_pinyin = $2, name_initials = $3, expert = $4, \
                     source_system = $5, external_id = $6, doc = $7, version = version + 1, updated_at = $8, \
                     archived_at = $9 WHERE id = $10 AND version = $11",
                )
                .bind(&doc.display_name)
                .bind(&keys.compact)
                .bind(&keys.initials)
                .bind(i64::from(doc.expert))
                .bind((!doc.source_system.is_empty()).then(|| doc.source_system.clone()))
                .bind((!doc.external_id.is_empty()).then(|| doc.external_id.clone()))
                .bind(doc.encode_to_vec())
                .bind(now)
                .bind(archived_at)
                .bind(id)
                .bind(version)
                .execute(&mut **tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(ApiError::Aborted("changed concurrently; retry".into()));
                }
                for table in ["doctor_departments", "doctor_specialties"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE doctor_id = $1")))
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO doctors (id, display_name, name_pinyin, name_initials, expert, source_system, external_id, doc, version, created_at, updated_at, archived_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10)",
                )
                .bind(id)
                .bind(&doc.display_name)
                .bind(&keys.compact)
                .bind(&keys.initials)
                .bind(i64::from(doc.expert))
                .bind((!doc.source_system.is_empty()).then(|| doc.source_system.clone()))
                .bind((!doc.external_id.is_empty()).then(|| doc.external_id.clone()))
                .bind(doc.encode_to_vec())
                .bind(now)
                .bind(archived.then_some(now))
                .execute(&mut **tx)
                .await
                .map_err(|e| {
                    unique_as(
                        e,
                        || format!("a doctor with external id {}:{}", doc.source_system, doc.external_id),
                        "another doctor",
                    )
                })?;
            }
        }
        let mut sql = Sql::new("INSERT INTO doctor_departments (doctor_id, department) VALUES ");
        for (n, code) in doc.departments.iter().enumerate() {
            sql.push(if n > 0 { ", (" } else { "(" })
                .bind(Value::Text(id.to_string()))
                .push(", ")
                .bind(Value::Text(code.clone()))
                .push(")");
        }
        if !doc.departments.is_empty() {
            sql.query().execute(&mut **tx).await?;
        }
        let specialties: HashSet<String> = doc.specialties.iter().map(|s| rules::fold(s)).collect();
        if !specialties.is_empty() {
            let mut sql = Sql::new("INSERT INTO doctor_specialties (doctor_id, specialty) VALUES ");
            for (n, s) in specialties.into_iter().enumerate() {
                sql.push(if n > 0 { ", (" } else { "(" })
                    .bind(Value::Text(id.to_string()))
                    .push(", ")
                    .bind(Value::Text(s))
                    .push(")");
            }
            sql.query().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The doctor holding (source, external id), if any: id, version, archived_at, doc.
    async fn doctor_by_external(
        &self,
        tx: &mut Tx,
        source: &str,
        external: &str,
    ) -> Result<Option<(String, i64, Option<i64>, Vec<u8>)>, ApiError> {
        let sql = format!(
            "SELECT id, version, archived_at, doc FROM doctors WHERE source_system = $1 AND external_id = $2{}",
            self.for_update()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(source)
            .bind(external)
            .fetch_optional(&mut **tx)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((
                col(&r, "id")?,
                col(&r, "version")?,
                col(&r, "archived_at")?,
                col(&r, "doc")?,
            ))),
        }
    }

    fn doctor_departments(d: &Doctor, prefix: &str) -> Vec<(String, String)> {
        d.departments
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{prefix}.departments[{i}]"), c.clone()))
            .collect()
    }

    /// Creates a doctor, or upserts one by (source system, external id) in the import.
    async fn put_doctor(
        &self,
        tx: &mut Tx,
        d: &Doctor,
        prefix: &str,
        mode: Mode,
        now: i64,
    ) -> Result<Written, ApiError> {
        self.check_departments(tx, &Self::doctor_departments(d, prefix)).await?;
        let existing = if d.external_id.is_empty() {
            None
        } else {
            self.doctor_by_external(tx, &d.source_system, &d.external_id).await?
        };
        match existing {
            Some((id, _, _, _)) if mode == Mode::Create => Err(ApiError::AlreadyExists {
                what: format!("a doctor with external id {}:{}", d.source_system, d.external_id),
                existing: doctor_name(&id),
            }),
            Some((id, version, archived_at, doc)) => {
                let mut probe = d.clone();
                clear_doctor_output(&mut probe);
                let archived = std::mem::take(&mut probe.archived);
                if probe.encode_to_vec() == doc && archived == archived_at.is_some() {
                    return Ok(Written {
                        name: doctor_name(&id),
                        created: false,
                        changed: false,
                    });
                }
                self.write_doctor(tx, &id, d, Some((version, archived_at)), now).await?;
                Ok(Written {
                    name: doctor_name(&id),
                    created: false,
                    changed: true,
                })
            }
            None => {
                let id = hcrm_kit::new_id();
                self.write_doctor(tx, &id, d, None, now).await?;
                Ok(Written {
                    name: doctor_name(&id),
                    created: true,
                    changed: true,
                })
            }
        }
    }

    pub async fn create_doctor(
        &self,
        ctx: &RequestContext,
        mut d: Doctor,
        request_key: Option<String>,
    ) -> Result<Doctor, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self.get_doctor(resource.trim_start_matches("doctors/")).await;
        }
        let now = now_micros();
        d.archived = false;
        let w = self.put_doctor(&mut tx, &d, "doctor", Mode::Create, now).await?;
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &w.name, now).await?;
        }
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit("doctor.create", &w.name, json!({}));
        changes.commit(self, tx, now, &w.name).await?;
        self.get_doctor(w.name.trim_start_matches("doctors/")).await
    }

    pub async fn update_doctor(
        &self,
        ctx: &RequestContext,
        id: &str,
        changes_in: Doctor,
        paths: &[String],
        expected_etag: &str,
    ) -> Result<Doctor, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT {DOCTOR_COLUMNS} FROM doctors WHERE id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(doctor_name(id)))?;
        let version: i64 = col(&row, "version")?;
        let archived_at: Option<i64> = col(&row, "archived_at")?;
        let mut current = to_doctor(&row)?;
        if current.etag != expected_etag {
            return Err(stale(&current.name));
        }
        rules::apply_doctor_mask(&mut current, &changes_in, paths);
        rules::normalize_doctor(&mut current);
        let mut v = hcrm_kit::validate::Violations::new();
        rules::validate_doctor(&current, "doctor", &mut v);
        v.finish()?;
        if paths.iter().any(|p| p == "departments") {
            self.check_departments(&mut tx, &Self::doctor_departments(&current, "doctor"))
                .await?;
        }
        let now = now_micros();
        self.write_doctor(&mut tx, id, &current, Some((version, archived_at)), now)
            .await?;
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit("doctor.update", &doctor_name(id), json!({ "fields": paths }));
        changes.commit(self, tx, now, &doctor_name(id)).await?;
        self.get_doctor(id).await
    }

    pub async fn archive_doctor(&self, ctx: &RequestContext, id: &str) -> Result<Doctor, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE doctors SET archived_at = $1, version = version + 1, updated_at = $1 WHERE id = $2 AND archived_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let d = self.get_doctor(id).await?;
            return Err(ApiError::FailedPrecondition(format!("{} is already archived", d.name)));
        }
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit("doctor.archive", &doctor_name(id), json!({}));
        changes.commit(self, tx, now, &doctor_name(id)).await?;
        self.get_doctor(id).await
    }

    pub async fn list_doctors(&self, f: &DoctorFilter, limit: usize, offset: usize) -> Result<Vec<Doctor>, ApiError> {
        let mut sql =
            Sql::new("SELECT d.id, d.doc, d.version, d.created_at, d.updated_at, d.archived_at FROM doctors d");
        if !f.department.is_empty() {
            sql.push(" JOIN doctor_departments dd ON dd.doctor_id = d.id AND dd.department = ")
                .bind(Value::Text(f.department.clone()));
        }
        if !f.specialty.is_empty() {
            sql.push(" JOIN doctor_specialties ds ON ds.doctor_id = d.id AND ds.specialty = ")
                .bind(Value::Text(rules::fold(&f.specialty)));
        }
        sql.push(" WHERE 1 = 1");
        if !f.show_archived {
            sql.push(" AND d.archived_at IS NULL");
        }
        if f.experts_only {
            sql.push(" AND d.expert = 1");
        }
        let q: String = f
            .query
            .trim()
            .chars()
            .filter(|c| *c != '%' && *c != '_' && *c != '\\')
            .collect();
        if !q.is_empty() {
            let lower = q.to_lowercase().replace(' ', "");
            sql.push(" AND (d.display_name LIKE ")
                .bind(Value::Text(format!("%{q}%")))
                .push(" OR d.name_pinyin LIKE ")
                .bind(Value::Text(format!("{lower}%")))
                .push(" OR d.name_initials LIKE ")
                .bind(Value::Text(format!("{lower}%")))
                .push(")");
        }
        sql.push(" ORDER BY d.display_name, d.id LIMIT ")
            .bind(Value::Int(limit as i64));
        sql.push(" OFFSET ").bind(Value::Int(offset as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(to_doctor).collect()
    }

    /// The id of an active doctor named by `doctors/{id}` or by (source, external id);
    /// INVALID_ARGUMENT on `{prefix}.doctor` or `{prefix}.doctor_external_id` otherwise.
    async fn resolve_doctor(
        &self,
        tx: &mut Tx,
        prefix: &str,
        doctor: &str,
        source: &str,
        external: &str,
    ) -> Result<String, ApiError> {
        let (row, field) = if !doctor.is_empty() {
            let field = format!("{prefix}.doctor");
            let id = super::parse_name(&field, doctor, "doctors")?;
            let row = sqlx::query("SELECT id, archived_at FROM doctors WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            (row, field)
        } else {
            let row = sqlx::query("SELECT id, archived_at FROM doctors WHERE source_system = $1 AND external_id = $2")
                .bind(source)
                .bind(external)
                .fetch_optional(&mut **tx)
                .await?;
            (row, format!("{prefix}.doctor_external_id"))
        };
        let row = row.ok_or_else(|| ApiError::invalid(&field, "names no doctor"))?;
        if col::<Option<i64>>(&row, "archived_at")?.is_some() {
            return Err(ApiError::invalid(&field, "names an archived doctor"));
        }
        Ok(col(&row, "id")?)
    }

    // ----- weekly patterns ---------------------------------------------------------------

    pub async fn get_pattern(&self, id: &str) -> Result<ClinicPattern, ApiError> {
        let sql = format!("SELECT {PATTERN_COLUMNS} FROM clinic_patterns WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(pattern_name(id)))?;
        to_pattern(&row)
    }

    /// Writes a pattern whose doctor is resolved (`rule.doctor_id`) and department checked.
    async fn put_pattern(
        &self,
        tx: &mut Tx,
        p: &ClinicPattern,
        rule: &PatternRule,
        mode: Mode,
        now: i64,
    ) -> Result<Written, ApiError> {
        let mut doc = p.clone();
        rules::normalize_pattern(&mut doc);
        doc.doctor = doctor_name(&rule.doctor_id);
        doc.doctor_external_id.clear();
        let bytes = doc.encode_to_vec();
        let existing = if doc.external_id.is_empty() {
            None
        } else {
            sqlx::query("SELECT id, doc FROM clinic_patterns WHERE source_system = $1 AND external_id = $2")
                .bind(&doc.source_system)
                .bind(&doc.external_id)
                .fetch_optional(&mut **tx)
                .await?
        };
        let what = || {
            format!(
                "a clinic pattern with external id {}:{}",
                doc.source_system, doc.external_id
            )
        };
        match existing {
            Some(row) if mode == Mode::Create => Err(ApiError::AlreadyExists {
                what: what(),
                existing: pattern_name(&col::<String>(&row, "id")?),
            }),
            Some(row) => {
                let id: String = col(&row, "id")?;
                if col::<Vec<u8>>(&row, "doc")? == bytes {
                    return Ok(Written {
                        name: pattern_name(&id),
                        created: false,
                        changed: false,
                    });
                }
                sqlx::query(
                    "UPDATE clinic_patterns SET doctor_id = $1, department = $2, weekday = $3, session = $4, start_minute = $5, \
                     end_minute = $6, kind = $7, valid_from = $8, valid_until = $9, doc = $10, updated_at = $11 WHERE id = $12",
                )
                .bind(&rule.doctor_id)
                .bind(&rule.department)
                .bind(i64::from(rule.weekday))
                .bind(i64::from(rule.session))
                .bind(i64::from(rule.start))
                .bind(i64::from(rule.end))
                .bind(i64::from(rule.kind))
                .bind(rule.valid_from)
                .bind(rule.valid_until)
                .bind(bytes)
                .bind(now)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
                Ok(Written {
                    name: pattern_name(&id),
                    created: false,
                    changed: true,
                })
            }
            None => {
                let id = hcrm_kit::new_id();
                let mut sql = Sql::new(
                    "INSERT INTO clinic_patterns (id, doctor_id, department, weekday, session, start_minute, end_minute, kind, \
                     valid_from, valid_until, source_system, external_id, doc, created_at, updated_at) VALUES (",
                );
                let values = [
                    Value::Text(id.clone()),
                    Value::Text(rule.doctor_id.clone()),
                    Value::Text(rule.department.clone()),
                    Value::Int(i64::from(rule.weekday)),
                    Value::Int(i64::from(rule.session)),
                    Value::Int(i64::from(rule.start)),
                    Value::Int(i64::from(rule.end)),
                    Value::Int(i64::from(rule.kind)),
                    Value::Int(rule.valid_from),
                    Value::Int(rule.valid_until),
                    opt_text(&doc.source_system),
                    opt_text(&doc.external_id),
                    Value::Bytes(bytes),
                    Value::Int(now),
                    Value::Int(now),
                ];
                for (n, v) in values.into_iter().enumerate() {
                    if n > 0 {
                        sql.push(", ");
                    }
                    sql.bind(v);
                }
                sql.push(")");
                sql.query()
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| unique_as(e, what, "another clinic pattern"))?;
                Ok(Written {
                    name: pattern_name(&id),
                    created: true,
                    changed: true,
                })
            }
        }
    }

    pub async fn create_pattern(
        &self,
        ctx: &RequestContext,
        p: ClinicPattern,
        mut rule: PatternRule,
        request_key: Option<String>,
    ) -> Result<ClinicPattern, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self.get_pattern(resource.trim_start_matches("clinicPatterns/")).await;
        }
        let now = now_micros();
        rule.doctor_id = self
            .resolve_doctor(&mut tx, "pattern", &p.doctor, &p.source_system, &p.doctor_external_id)
            .await?;
        self.check_departments(&mut tx, &[("pattern.department".into(), rule.department.clone())])
            .await?;
        let w = self.put_pattern(&mut tx, &p, &rule, Mode::Create, now).await?;
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &w.name, now).await?;
        }
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit(
            "clinic_pattern.create",
            &w.name,
            json!({ "doctor": doctor_name(&rule.doctor_id) }),
        );
        changes.commit(self, tx, now, &w.name).await?;
        self.get_pattern(w.name.trim_start_matches("clinicPatterns/")).await
    }

    pub async fn delete_pattern(&self, ctx: &RequestContext, id: &str) -> Result<ClinicPattern, ApiError> {
        let pattern = self.get_pattern(id).await?;
        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let done = sqlx::query("DELETE FROM clinic_patterns WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found(pattern_name(id)));
        }
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit(
            "clinic_pattern.delete",
            &pattern.name,
            json!({ "doctor": pattern.doctor }),
        );
        changes.commit(self, tx, now, &pattern.name).await?;
        Ok(pattern)
    }

    pub async fn list_patterns(
        &self,
        doctor_id: Option<&str>,
        department: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ClinicPattern>, ApiError> {
        let mut sql = Sql::new(format!("SELECT {PATTERN_COLUMNS} FROM clinic_patterns WHERE 1 = 1"));
        if let Some(id) = doctor_id {
            sql.push(" AND doctor_id = ").bind(Value::Text(id.to_string()));
        }
        if !department.is_empty() {
            sql.push(" AND department = ").bind(Value::Text(department.to_string()));
        }
        sql.push(" ORDER BY weekday, start_minute, doctor_id, id LIMIT ")
            .bind(Value::Int(limit as i64));
        sql.push(" OFFSET ").bind(Value::Int(offset as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(to_pattern).collect()
    }

    // ----- exceptions --------------------------------------------------------------------

    pub async fn get_exception(&self, id: &str) -> Result<ScheduleException, ApiError> {
        let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM schedule_exceptions WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(exception_name(id)))?;
        to_exception(&row)
    }

    async fn put_exception(
        &self,
        tx: &mut Tx,
        e: &ScheduleException,
        rule: &ExceptionRule,
        mode: Mode,
        now: i64,
    ) -> Result<Written, ApiError> {
        let mut doc = e.clone();
        rules::normalize_exception(&mut doc);
        doc.doctor = doctor_name(&rule.doctor_id);
        doc.doctor_external_id.clear();
        let bytes = doc.encode_to_vec();
        let existing = if doc.external_id.is_empty() {
            None
        } else {
            sqlx::query("SELECT id, doc FROM schedule_exceptions WHERE source_system = $1 AND external_id = $2")
                .bind(&doc.source_system)
                .bind(&doc.external_id)
                .fetch_optional(&mut **tx)
                .await?
        };
        let what = || {
            format!(
                "a schedule exception with external id {}:{}",
                doc.source_system, doc.external_id
            )
        };
        match existing {
            Some(row) if mode == Mode::Create => Err(ApiError::AlreadyExists {
                what: what(),
                existing: exception_name(&col::<String>(&row, "id")?),
            }),
            Some(row) => {
                let id: String = col(&row, "id")?;
                if col::<Vec<u8>>(&row, "doc")? == bytes {
                    return Ok(Written {
                        name: exception_name(&id),
                        created: false,
                        changed: false,
                    });
                }
                sqlx::query(
                    "UPDATE schedule_exceptions SET doctor_id = $1, day = $2, session = $3, kind = $4, department = $5, doc = $6, updated_at = $7 WHERE id = $8",
                )
                .bind(&rule.doctor_id)
                .bind(rule.day)
                .bind(i64::from(rule.session))
                .bind(i64::from(rule.kind))
                .bind(&rule.department)
                .bind(bytes)
                .bind(now)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
                Ok(Written {
                    name: exception_name(&id),
                    created: false,
                    changed: true,
                })
            }
            None => {
                let id = hcrm_kit::new_id();
                let mut sql = Sql::new(
                    "INSERT INTO schedule_exceptions (id, doctor_id, day, session, kind, department, source_system, external_id, doc, created_at, updated_at) VALUES (",
                );
                let values = [
                    Value::Text(id.clone()),
                    Value::Text(rule.doctor_id.clone()),
                    Value::Int(rule.day),
                    Value::Int(i64::from(rule.session)),
                    Value::Int(i64::from(rule.kind)),
                    Value::Text(rule.department.clone()),
                    opt_text(&doc.source_system),
                    opt_text(&doc.external_id),
                    Value::Bytes(bytes),
                    Value::Int(now),
                    Value::Int(now),
                ];
                for (n, v) in values.into_iter().enumerate() {
                    if n > 0 {
                        sql.push(", ");
                    }
                    sql.bind(v);
                }
                sql.push(")");
                sql.query()
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| unique_as(e, what, "another schedule exception"))?;
                Ok(Written {
                    name: exception_name(&id),
                    created: true,
                    changed: true,
                })
            }
        }
    }

    pub async fn create_exception(
        &self,
        ctx: &RequestContext,
        e: ScheduleException,
        mut rule: ExceptionRule,
        request_key: Option<String>,
    ) -> Result<ScheduleException, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self
                .get_exception(resource.trim_start_matches("scheduleExceptions/"))
                .await;
        }
        let now = now_micros();
        rule.doctor_id = self
            .resolve_doctor(&mut tx, "exception", &e.doctor, &e.source_system, &e.doctor_external_id)
            .await?;
        if !rule.department.is_empty() {
            self.check_departments(&mut tx, &[("exception.department".into(), rule.department.clone())])
                .await?;
        }
        let w = self.put_exception(&mut tx, &e, &rule, Mode::Create, now).await?;
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &w.name, now).await?;
        }
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit(
            "schedule_exception.create",
            &w.name,
            json!({ "doctor": doctor_name(&rule.doctor_id) }),
        );
        changes.commit(self, tx, now, &w.name).await?;
        self.get_exception(w.name.trim_start_matches("scheduleExceptions/"))
            .await
    }

    pub async fn delete_exception(&self, ctx: &RequestContext, id: &str) -> Result<ScheduleException, ApiError> {
        let exception = self.get_exception(id).await?;
        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let done = sqlx::query("DELETE FROM schedule_exceptions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found(exception_name(id)));
        }
        let mut changes = Changes::new(&ctx.principal, &ctx.request_id);
        changes.audit(
            "schedule_exception.delete",
            &exception.name,
            json!({ "doctor": exception.doctor }),
        );
        changes.commit(self, tx, now, &exception.name).await?;
        Ok(exception)
    }

    pub async fn list_exceptions(
        &self,
        doctor_id: Option<&str>,
        from_day: Option<i64>,
        to_day: Option<i64>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ScheduleException>, ApiError> {
        let mut sql = Sql::new(format!(
            "SELECT {EXCEPTION_COLUMNS} FROM schedule_exceptions WHERE 1 = 1"
        ));
        if let Some(id) = doctor_id {
            sql.push(" AND doctor_id = ").bind(Value::Text(id.to_string()));
        }
        if let Some(d) = from_day {
            sql.push(" AND day >= ").bind(Value::Int(d));
        }
        if let Some(d) = to_day {
            sql.push(" AND day <= ").bind(Value::Int(d));
        }
        sql.push(" ORDER BY day, doctor_id, id LIMIT ")
            .bind(Value::Int(limit as i64));
        sql.push(" OFFSET ").bind(Value::Int(offset as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(to_exception).collect()
    }

    // ----- the import --------------------------------------------------------------------

    /// Applies import rows in order, in one transaction; a row that is wrong fails alone. If a
    /// concurrent writer takes a unique key first, the rows are retried one per transaction.
    pub async fn import_directory(
        &self,
        principal: &Principal,
        request_id: &str,
        rows: &[ImportRow],
    ) -> Result<Vec<RowResult>, ApiError> {
        match self.import_tx(principal, request_id, rows).await {
            Err(ImportError::Unique) => {
                let mut results = Vec::with_capacity(rows.len());
                for row in rows {
                    match self.import_tx(principal, request_id, std::slice::from_ref(row)).await {
                        Ok(mut r) => results.append(&mut r),
                        Err(ImportError::Unique) => results.push(failed(
                            row.index,
                            &ApiError::AlreadyExists {
                                what: "a record with this key".into(),
                                existing: "a record written concurrently".into(),
                            },
                        )),
                        Err(ImportError::Api(e)) => return Err(e),
                    }
                }
                Ok(results)
            }
            Err(ImportError::Api(e)) => Err(e),
            Ok(results) => Ok(results),
        }
    }

    async fn import_tx(
        &self,
        principal: &Principal,
        request_id: &str,
        rows: &[ImportRow],
    ) -> Result<Vec<RowResult>, ImportError> {
        let mut tx = self.db.begin_write().await.map_err(ImportError::db)?;
        let now = now_micros();
        let mut changes = Changes::new(principal, request_id);
        let mut results = Vec::with_capacity(rows.len());
        for row in rows {
            match self.import_row(&mut tx, row, now, &mut changes).await {
                Ok(w) => results.push(RowResult {
                    index: row.index,
                    code: 0,
                    message: String::new(),
                    name: w.name,
                    created: w.created,
                }),
                Err(ImportError::Api(
                    e @ (ApiError::InvalidArgument(_)
                    | ApiError::AlreadyExists { .. }
                    | ApiError::NotFound { .. }
                    | ApiError::FailedPrecondition(_)),
                )) => results.push(failed(row.index, &e)),
                Err(other) => return Err(other),
            }
        }
        changes
            .commit(self, tx, now, "directory")
            .await
            .map_err(ImportError::Api)?;
        Ok(results)
    }

    async fn import_row(
        &self,
        tx: &mut Tx,
        row: &ImportRow,
        now: i64,
        changes: &mut Changes<'_>,
    ) -> Result<Written, ImportError> {
        let prefix = format!("rows[{}]", row.index);
        let detail = |source: &str, external: &str| json!({ "source": format!("{source}:{external}") });
        let note = |changes: &mut Changes<'_>, w: &Written, what: &str, d: serde_json::Value| {
            if w.changed {
                let verb = if w.created { "import_create" } else { "import_update" };
                changes.audit(&format!("{what}.{verb}"), &w.name, d);
            }
        };
        match &row.row {
            RowIn::Department(d) => {
                let w = self.put_department(tx, d, Mode::Upsert, now).await?;
                note(changes, &w, "department", json!({}));
                Ok(w)
            }
            RowIn::Doctor(d) => {
                let w = self
                    .put_doctor(tx, d, &format!("{prefix}.doctor"), Mode::Upsert, now)
                    .await?;
                note(changes, &w, "doctor", detail(&d.source_system, &d.external_id));
                Ok(w)
            }
            RowIn::Pattern(p, rule) => {
                let f = format!("{prefix}.pattern");
                let mut rule = rule.clone();
                rule.doctor_id = self
                    .resolve_doctor(tx, &f, &p.doctor, &p.source_system, &p.doctor_external_id)
                    .await?;
                self.check_departments(tx, &[(format!("{f}.department"), rule.department.clone())])
                    .await?;
                let w = self.put_pattern(tx, p, &rule, Mode::Upsert, now).await?;
                note(changes, &w, "clinic_pattern", detail(&p.source_system, &p.external_id));
                Ok(w)
            }
            RowIn::Exception(e, rule) => {
                let f = format!("{prefix}.exception");
                let mut rule = rule.clone();
                rule.doctor_id = self
                    .resolve_doctor(tx, &f, &e.doctor, &e.source_system, &e.doctor_external_id)
                    .await?;
                if !rule.department.is_empty() {
                    self.check_departments(tx, &[(format!("{f}.department"), rule.department.clone())])
                        .await?;
                }
                let w = self.put_exception(tx, e, &rule, Mode::Upsert, now).await?;
                note(
                    changes,
                    &w,
                    "schedule_exception",
                    detail(&e.source_system, &e.external_id),
                );
                Ok(w)
            }
            RowIn::DoctorPatterns {
                doctor,
                doctor_external_id,
                source_system,
                patterns,
            } => {
                let f = format!("{prefix}.doctor_patterns");
                let doctor_id = self
                    .resolve_doctor(tx, &f, doctor, source_system, doctor_external_id)
                    .await?;
                let codes: Vec<(String, String)> = patterns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, r))| (format!("{f}.patterns[{i}].department"), r.department.clone()))
                    .collect();
                self.check_departments(tx, &codes).await?;
                let mut changed = 0;
                for (p, rule) in patterns {
                    let mut p = p.clone();
                    p.source_system = source_system.clone();
                    let mut rule = rule.clone();
                    rule.doctor_id = doctor_id.clone();
                    let w = self.put_pattern(tx, &p, &rule, Mode::Upsert, now).await?;
                    changed += usize::from(w.changed);
                }
                let mut sql = Sql::new("DELETE FROM clinic_patterns WHERE doctor_id = ");
                sql.bind(Value::Text(doctor_id.clone()))
                    .push(" AND source_system = ")
                    .bind(Value::Text(source_system.clone()));
                if !patterns.is_empty() {
                    sql.push(" AND external_id NOT IN (");
                    push_list(&mut sql, patterns.iter().map(|(p, _)| p.external_id.clone()));
                }
                let removed = sql
                    .query()
                    .execute(&mut **tx)
                    .await
                    .map_err(ImportError::db)?
                    .rows_affected();
                let w = Written {
                    name: doctor_name(&doctor_id),
                    created: false,
                    changed: changed > 0 || removed > 0,
                };
                if w.changed {
                    changes.audit(
                        "clinic_pattern.import_replace",
                        &w.name,
                        json!({ "source": source_system, "written": changed, "removed": removed }),
                    );
                }
                Ok(w)
            }
        }
    }

    /// Refreshes the planner's statistics of the directory tables after a large import
    /// (PostgreSQL): until autovacuum catches up, a freshly loaded table looks empty to the
    /// planner, which then picks scans that make the guide's queries ten times slower.
    pub async fn analyze_directory(&self) -> Result<(), ApiError> {
        if self.backend() == hcrm_kit::db::Backend::Postgres {
            sqlx::query(
                "ANALYZE departments, doctors, doctor_departments, doctor_specialties, clinic_patterns, schedule_exceptions",
            )
            .execute(&self.db.pool)
            .await?;
        }
        Ok(())
    }

    // ----- the guide's queries -----------------------------------------------------------

    /// Active departments among `codes`: code → Chinese name.
    async fn active_departments(&self, codes: HashSet<String>) -> Result<HashMap<String, String>, ApiError> {
        let mut out = HashMap::new();
        if codes.is_empty() {
            return Ok(out);
        }
        let mut sql = Sql::new("SELECT code, display_name FROM departments WHERE archived_at IS NULL AND code IN (");
        push_list(&mut sql, codes);
        for r in sql.query().fetch_all(&self.db.pool).await? {
            out.insert(col(&r, "code")?, col(&r, "display_name")?);
        }
        Ok(out)
    }

    fn session_of(slot: Slot, doctor: &Doctor, department: &str, offset: i32) -> ClinicSession {
        ClinicSession {
            doctor: doctor.name.clone(),
            doctor_display_name: doctor.display_name.clone(),
            doctor_title: doctor.title,
            expert: doctor.expert,
            specialties: doctor.specialties.clone(),
            department_display_name: department.to_string(),
            date: Some(rules::to_date(slot.day)),
            weekday: rules::weekday_of(slot.day),
            session: slot.session,
            start_time: rules::hhmm(slot.start),
            end_time: rules::hhmm(slot.end),
            start: Some(to_timestamp(rules::instant(slot.day, slot.start, offset))),
            end: Some(to_timestamp(rules::instant(slot.day, slot.end, offset))),
            kind: slot.kind,
            location: slot.location,
            quota: slot.quota,
            source: slot.source,
            department: slot.department,
        }
    }

    /// A doctor's next sessions ending after `from` (UTC microseconds).
    pub async fn next_sessions(
        &self,
        doctor_id: &str,
        from: i64,
        limit: usize,
        offset: i32,
    ) -> Result<Vec<ClinicSession>, ApiError> {
        const HORIZON: i64 = 366;
        let doctor = self.get_doctor(doctor_id).await?;
        if doctor.archived {
            return Ok(Vec::new());
        }
        let (day, minute) = rules::local_day_minute(from, offset);
        let sql = format!("SELECT {PATTERN_COLUMNS} FROM clinic_patterns WHERE doctor_id = $1");
        let mut patterns = Vec::new();
        for r in sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(doctor_id)
            .fetch_all(&self.db.pool)
            .await?
        {
            let (rule, _) = pattern_rule(&r)?;
            if rule.valid_until >= day && rule.valid_from <= day + HORIZON {
                patterns.push(rule);
            }
        }
        let sql = format!(
            "SELECT {EXCEPTION_COLUMNS} FROM schedule_exceptions WHERE doctor_id = $1 AND day >= $2 AND day <= $3"
        );
        let mut exceptions = Vec::new();
        for r in sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(doctor_id)
            .bind(day)
            .bind(day + HORIZON)
            .fetch_all(&self.db.pool)
            .await?
        {
            exceptions.push(exception_rule(&r)?);
        }
        let codes = patterns
            .iter()
            .map(|p| p.department.clone())
            .chain(exceptions.iter().map(|e| e.department.clone()))
            .filter(|c| !c.is_empty())
            .collect();
        let departments = self.active_departments(codes).await?;
        patterns.retain(|p| departments.contains_key(&p.department));
        let extra = ScheduleExceptionKind::Extra as i32;
        exceptions.retain(|e| e.kind != extra || departments.contains_key(&e.department));
        let slots = rules::next_sessions(day, minute, &patterns, &exceptions, limit, HORIZON);
        Ok(slots
            .into_iter()
            .map(|s| {
                let dept = departments.get(&s.department).cloned().unwrap_or_default();
                Self::session_of(s, &doctor, &dept, offset)
            })
            .collect())
    }

    /// Sessions of one local day in a department or of doctors with a specialty. Three
    /// statements whatever the size of the directory: the day's patterns joined with their
    /// (active) doctors and departments, the day's extra sessions likewise, and the leave and
    /// cancellations of the doctors found; filters run in SQL on indexed columns.
    pub async fn find_sessions(&self, q: &SessionQuery, offset: i32) -> Result<Vec<ClinicSession>, ApiError> {
        let weekday = rules::weekday_of(q.day);
        let specialty = rules::fold(&q.specialty);
        // The filters both statements share, on the alias `x` (patterns or exceptions).
        let filters = |sql: &mut Sql| {
            sql.push(" AND d.archived_at IS NULL AND dp.archived_at IS NULL");
            if !q.department.is_empty() {
                sql.push(" AND x.department = ").bind(Value::Text(q.department.clone()));
            }
            if !specialty.is_empty() {
                sql.push(" AND x.doctor_id IN (SELECT doctor_id FROM doctor_specialties WHERE specialty = ")
                    .bind(Value::Text(specialty.clone()))
                    .push(")");
            }
            if q.experts_only {
                sql.push(" AND d.expert = 1");
            }
        };
        let mut patterns_sql = Sql::new(
            "SELECT x.id, x.doctor_id, x.department, x.weekday, x.session, x.start_minute, x.end_minute, x.kind, \
             x.valid_from, x.valid_until, x.doc, d.doc AS doctor_doc, dp.display_name AS department_name \
             FROM clinic_patterns x JOIN doctors d ON d.id = x.doctor_id JOIN departments dp ON dp.code = x.department \
             WHERE x.weekday = ",
        );
        patterns_sql.bind(Value::Int(i64::from(weekday)));
        patterns_sql.push(" AND x.valid_from <= ").bind(Value::Int(q.day));
        patterns_sql.push(" AND x.valid_until >= ").bind(Value::Int(q.day));
        if q.kind != 0 {
            patterns_sql.push(" AND x.kind = ").bind(Value::Int(i64::from(q.kind)));
        }
        filters(&mut patterns_sql);
        let extra = ScheduleExceptionKind::Extra as i32;
        let mut extras_sql = Sql::new(
            "SELECT x.id, x.doctor_id, x.day, x.session, x.kind, x.department, x.doc, x.created_at, \
             d.doc AS doctor_doc, dp.display_name AS department_name \
             FROM schedule_exceptions x JOIN doctors d ON d.id = x.doctor_id JOIN departments dp ON dp.code = x.department \
             WHERE x.day = ",
        );
        extras_sql.bind(Value::Int(q.day));
        extras_sql.push(" AND x.kind = ").bind(Value::Int(i64::from(extra)));
        filters(&mut extras_sql);
        // The day's leave and cancellations, all of them by one fixed statement (a day holds a
        // few hundred at most; a statement whose text varied with the doctors found was planned
        // anew on every call), kept below for the doctors found.
        let removals_sql = format!("SELECT {EXCEPTION_COLUMNS} FROM schedule_exceptions WHERE day = $1 AND kind <> $2");
        // Three independent reads at once: the call waits for the slowest, not the sum.
        let (pattern_rows, extra_rows, removal_rows) = tokio::try_join!(
            patterns_sql.query().fetch_all(&self.db.pool),
            extras_sql.query().fetch_all(&self.db.pool),
            sqlx::query(sqlx::AssertSqlSafe(removals_sql))
                .bind(q.day)
                .bind(i64::from(extra))
                .fetch_all(&self.db.pool),
        )?;
        let mut doctors: HashMap<String, Doctor> = HashMap::new();
        let mut departments: HashMap<String, String> = HashMap::new();
        let mut note = |row: &AnyRow, doctor_id: &str, department: &str| -> Result<(), ApiError> {
            if !doctors.contains_key(doctor_id) {
                let mut d: Doctor = decode(&col::<Vec<u8>>(row, "doctor_doc")?)?;
                d.name = doctor_name(doctor_id);
                doctors.insert(doctor_id.to_string(), d);
            }
            if !departments.contains_key(department) {
                departments.insert(department.to_string(), col(row, "department_name")?);
            }
            Ok(())
        };
        let mut patterns = Vec::new();
        for r in &pattern_rows {
            let rule = pattern_rule(r)?.0;
            note(r, &rule.doctor_id, &rule.department)?;
            patterns.push(rule);
        }
        let mut exceptions = Vec::new();
        for r in &extra_rows {
            let e = exception_rule(r)?;
            if q.kind == 0 || e.clinic_kind == q.kind {
                note(r, &e.doctor_id, &e.department)?;
                exceptions.push(e);
            }
        }
        let with_patterns: HashSet<&str> = patterns.iter().map(|p| p.doctor_id.as_str()).collect();
        let mut removals = Vec::new();
        for r in &removal_rows {
            let doctor_id: String = col(r, "doctor_id")?;
            if with_patterns.contains(doctor_id.as_str()) {
                removals.push(exception_rule(r)?);
            }
        }
        exceptions.extend(removals);
        let mut sessions: Vec<ClinicSession> = rules::sessions_on(q.day, &patterns, &exceptions)
            .into_iter()
            .filter_map(|s| {
                let dept = departments.get(&s.department)?.clone();
                let doctor = doctors.get(&s.doctor_id)?;
                Some(Self::session_of(s, doctor, &dept, offset))
            })
            .collect();
        sessions.sort_by(|a, b| {
            (&a.start_time, &a.doctor_display_name, &a.doctor, &a.source).cmp(&(
                &b.start_time,
                &b.doctor_display_name,
                &b.doctor,
                &b.source,
            ))
        });
        Ok(sessions)
    }
}

fn stale(name: &str) -> ApiError {
    ApiError::Aborted(format!("{name} was changed since it was read; read it again"))
}

fn unique_as(err: sqlx::Error, what: impl FnOnce() -> String, existing: &str) -> ApiError {
    if is_unique_violation(&err) {
        ApiError::AlreadyExists {
            what: what(),
            existing: existing.to_string(),
        }
    } else {
        err.into()
    }
}

enum ImportError {
    Api(ApiError),
    Unique,
}

impl ImportError {
    fn db(err: sqlx::Error) -> Self {
        if is_unique_violation(&err) {
            ImportError::Unique
        } else {
            ImportError::Api(err.into())
        }
    }
}

impl From<ApiError> for ImportError {
    fn from(err: ApiError) -> Self {
        // A unique violation inside a batch aborts PostgreSQL's transaction: the batch is
        // retried row by row, where it becomes that row's ALREADY_EXISTS.
        match err {
            ApiError::AlreadyExists { ref existing, .. } if existing.starts_with("another ") => ImportError::Unique,
            other => ImportError::Api(other),
        }
    }
}

impl From<sqlx::Error> for ImportError {
    fn from(err: sqlx::Error) -> Self {
        ImportError::db(err)
    }
}
