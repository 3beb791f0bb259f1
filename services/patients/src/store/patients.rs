//! Patient records.

use super::{Store, decode};
use crate::domain::names::name_keys;
use crate::domain::patient::{self, Protected};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::error::is_unique_violation;
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{now_micros, to_timestamp, to_timestamp_opt};
use hcrm_proto::patients::{ExternalId, Patient};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

/// Columns every patient query selects.
pub const COLUMNS: &str =
    "id, code, department, last_visit_at, protected, doc, version, created_at, updated_at, deleted_at, merged_into";

/// Columns a new patient row is inserted with, in the order of `insert_values`.
const INSERT_COLUMNS: &str = "id, code, display_name, name_pinyin, name_initials, sex, birth_date, phone, phone_last4, \
    email, occupation, industry, education, marital_status, income_band, province, city, department, intent_grade, \
    value_tier, vip, do_not_contact, tags, identity_hash, protected, doc, version, created_at, updated_at, deceased";

/// Rows per multi-row INSERT. sqlx looks up every numbered parameter by name, which is
/// quadratic in the parameter count on SQLite: a few hundred parameters per statement is the
/// sweet spot (measured in benches/patients.rs).
const INSERT_CHUNK: usize = 16;

/// How much of a patient to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Masked,
    Full,
}

/// A stored patient row before conversion.
pub struct Row {
    pub id: String,
    pub code: String,
    pub department: String,
    pub last_visit_at: Option<i64>,
    pub protected: Option<String>,
    pub doc: Vec<u8>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub merged_into: Option<String>,
}

impl Row {
    pub fn read(row: &AnyRow) -> Result<Row, sqlx::Error> {
        Ok(Row {
            id: col(row, "id")?,
            code: col(row, "code")?,
            department: col(row, "department")?,
            last_visit_at: col(row, "last_visit_at")?,
            protected: col(row, "protected")?,
            doc: col(row, "doc")?,
            version: col(row, "version")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
            deleted_at: col(row, "deleted_at")?,
            merged_into: col(row, "merged_into")?,
        })
    }
}

/// The etag of a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Resource name of a patient id.
pub fn name_of(id: &str) -> String {
    format!("patients/{id}")
}

/// Values derived from a patient for indexed columns.
struct Columns {
    display_name: String,
    name_pinyin: String,
    name_initials: String,
    birth_date: String,
    phone: String,
    phone_last4: String,
    province: String,
    city: String,
    do_not_contact: i64,
    tags: String,
}

fn columns(p: &Patient) -> Columns {
    let keys = name_keys(&p.display_name);
    let phone = p.phones.first().cloned().unwrap_or_default();
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let last4 = if digits.len() >= 4 {
        digits[digits.len() - 4..].to_string()
    } else {
        String::new()
    };
    let address = p.address.clone().unwrap_or_default();
    Columns {
        display_name: p.display_name.clone(),
        name_pinyin: keys.compact,
        name_initials: keys.initials,
        birth_date: patient::date_text(p.birth_date.as_ref()),
        phone,
        phone_last4: last4,
        province: address.province,
        city: address.city,
        do_not_contact: i64::from(p.contact_preferences.as_ref().is_some_and(|c| c.do_not_contact)),
        tags: if p.tags.is_empty() {
            String::new()
        } else {
            format!("|{}|", p.tags.join("|"))
        },
    }
}

impl Store {
    /// Converts a row into the API's patient, unsealing protected data for the full view.
    pub fn to_patient(&self, row: Row, view: View) -> Result<Patient, ApiError> {
        let mut p: Patient = decode(&row.doc)?;
        let now = now_micros();
        let name = name_of(&row.id);
        let protected = match &row.protected {
            Some(sealed) => {
                let clear = self.sealer.open(sealed, name.as_bytes()).map_err(ApiError::internal)?;
                serde_json::from_slice::<Protected>(&clear).map_err(ApiError::internal)?
            }
            None => Protected::default(),
        };
        match view {
            View::Full => protected.put_into(&mut p),
            View::Masked => protected.put_masked_into(&mut p),
        }
        let keys = name_keys(&p.display_name);
        p.name = name;
        p.code = row.code;
        p.name_pinyin = keys.spaced;
        p.name_initials = keys.initials;
        p.customer_class = patient::customer_class(row.last_visit_at, now) as i32;
        p.last_visit_time = to_timestamp_opt(row.last_visit_at);
        p.etag = etag(row.version);
        p.create_time = Some(to_timestamp(row.created_at));
        p.update_time = Some(to_timestamp(row.updated_at));
        p.delete_time = to_timestamp_opt(row.deleted_at);
        p.merged_into = row.merged_into.map(|id| name_of(&id)).unwrap_or_default();
        Ok(p)
    }

    /// Seals the protected part of `p` (removing it from `p`) for the record `name`.
    fn seal_protected(&self, p: &mut Patient, name: &str) -> (Option<String>, Option<String>) {
        let protected = Protected::take_from(p);
        let hash =
            (!protected.identity_number.is_empty()).then(|| self.index.hash("identity", &protected.identity_number));
        let sealed = (!protected.is_empty()).then(|| {
            let clear = serde_json::to_vec(&protected).expect("protected fields serialise");
            self.sealer.seal(&clear, name.as_bytes())
        });
        (sealed, hash)
    }

    /// Loads a patient row in a transaction (locking it on PostgreSQL), or NOT_FOUND when it does
    /// not exist or is outside the caller's scope.
    pub async fn load_row(&self, tx: &mut Tx, id: &str, scope: &Scope) -> Result<Row, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM patients WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| Row::read(&r))
            .transpose()?
            .filter(|r| scope.covers(&r.department))
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        Ok(row)
    }

    /// The id of the patient holding an identity number hash, if any.
    async fn holder_of_identity(&self, tx: &mut Tx, hash: &str, except: &str) -> Result<Option<String>, ApiError> {
        Ok(
            sqlx::query("SELECT id FROM patients WHERE identity_hash = $1 AND id <> $2")
                .bind(hash)
                .bind(except)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| col::<String>(&r, "id"))
                .transpose()?,
        )
    }

    async fn holder_of_external_id(
        &self,
        tx: &mut Tx,
        source: &str,
        external: &str,
    ) -> Result<Option<String>, ApiError> {
        Ok(
            sqlx::query("SELECT patient_id FROM external_ids WHERE source_system = $1 AND external_id = $2")
                .bind(source)
                .bind(external)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| col::<String>(&r, "patient_id"))
                .transpose()?,
        )
    }

    /// Resource recorded for an idempotency key, if any.
    pub async fn idempotent(&self, tx: &mut Tx, key: &str) -> Result<Option<String>, ApiError> {
        Ok(hcrm_kit::idempotency::lookup(tx, key).await?)
    }

    pub async fn remember(&self, tx: &mut Tx, key: &str, resource: &str, now: i64) -> Result<(), sqlx::Error> {
        hcrm_kit::idempotency::remember(tx, key, resource, now).await
    }

    /// Creates a patient (validated and normalised by the caller). Race-safe: concurrent
    /// duplicates end in the first one's result or ALREADY_EXISTS, never in two records.
    pub async fn create_patient(
        &self,
        ctx: &RequestContext,
        patient: Patient,
        request_key: Option<String>,
        reason: &str,
    ) -> Result<Patient, ApiError> {
        let err = match self
            .try_create_patient(ctx, patient.clone(), request_key.as_deref(), reason)
            .await
        {
            Ok(p) => return Ok(p),
            Err(err) => err,
        };
        // A concurrent call with the same request id may have committed first: its result is ours.
        if let Some(key) = &request_key {
            let mut tx = self.db.pool.begin().await?;
            let resource = self.idempotent(&mut tx, key).await?;
            drop(tx);
            if let Some(resource) = resource {
                return self
                    .get_patient(resource.trim_start_matches("patients/"), &Scope::All, View::Masked)
                    .await;
            }
        }
        match err {
            CreateError::Api(err) => Err(err),
            CreateError::Unique(err) => {
                // Another patient with the same identity, external id or code committed first.
                let mut tx = self.db.pool.begin().await?;
                self.check_conflicts(&mut tx, &patient, "").await?;
                Err(ApiError::internal(err))
            }
        }
    }

    pub(crate) async fn check_conflicts(&self, tx: &mut Tx, p: &Patient, except: &str) -> Result<(), ApiError> {
        if !p.identity_number.is_empty() {
            let hash = self.index.hash("identity", &p.identity_number);
            if let Some(existing) = self.holder_of_identity(tx, &hash, except).await? {
                return Err(ApiError::AlreadyExists {
                    what: "a patient with this identity number".into(),
                    existing: name_of(&existing),
                });
            }
        }
        for ext in &p.external_ids {
            if let Some(existing) = self
                .holder_of_external_id(tx, &ext.source_system, &ext.external_id)
                .await?
                && existing != except
            {
                return Err(ApiError::AlreadyExists {
                    what: format!("a patient with external id {}:{}", ext.source_system, ext.external_id),
                    existing: name_of(&existing),
                });
            }
        }
        if !p.code.is_empty()
            && let Some(row) = sqlx::query("SELECT id FROM patients WHERE code = $1 AND id <> $2")
                .bind(&p.code)
                .bind(except)
                .fetch_optional(&mut **tx)
                .await?
        {
            let id: String = col(&row, "id")?;
            return Err(ApiError::AlreadyExists {
                what: format!("a patient with code {}", p.code),
                existing: name_of(&id),
            });
        }
        Ok(())
    }

    async fn try_create_patient(
        &self,
        ctx: &RequestContext,
        mut p: Patient,
        request_key: Option<&str>,
        reason: &str,
    ) -> Result<Patient, CreateError> {
        let mut tx = self.db.begin_write().await.map_err(CreateError::db)?;
        if let Some(key) = request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            tx.rollback().await.map_err(CreateError::db)?;
            return Ok(self
                .get_patient(resource.trim_start_matches("patients/"), &Scope::All, View::Masked)
                .await?);
        }
        self.check_conflicts(&mut tx, &p, "").await?;
        let now = now_micros();
        let id = hcrm_kit::new_id();
        let name = name_of(&id);
        if p.code.is_empty() {
            p.code = generated_code(&id);
        }
        let external_ids = std::mem::take(&mut p.external_ids);
        self.insert_row(&mut tx, &id, &mut p, now)
            .await
            .map_err(CreateError::db)?;
        for ext in &external_ids {
            self.link_external_id(&mut tx, ext, &id)
                .await
                .map_err(CreateError::db)?;
        }
        if let Some(key) = request_key {
            self.remember(&mut tx, key, &name, now).await.map_err(CreateError::db)?;
        }
        let audit = AuditEntry::new(ctx, "patient.create", &name, reason, json!({ "code": p.code }));
        let event = NewEvent {
            kind: "patient.created",
            resource: name.clone(),
            payload: json!({ "patient": name, "code": p.code, "department": p.department }),
        };
        ledger::append(&mut tx, now, &[audit], &[event])
            .await
            .map_err(CreateError::db)?;
        tx.commit().await.map_err(CreateError::db)?;
        self.changed();
        Ok(self.get_patient(&id, &Scope::All, View::Masked).await?)
    }

    /// Inserts a new row for `p` (protected fields are sealed and removed from `p`).
    pub async fn insert_row(&self, tx: &mut Tx, id: &str, p: &mut Patient, now: i64) -> Result<(), sqlx::Error> {
        let mut one = [(id.to_string(), std::mem::take(p))];
        let result = self.insert_rows(tx, &mut one, now).await;
        *p = std::mem::take(&mut one[0].1);
        result
    }

    /// Inserts new rows with multi-row statements (bulk intake); protected fields are sealed and
    /// removed from each patient.
    pub async fn insert_rows(&self, tx: &mut Tx, rows: &mut [(String, Patient)], now: i64) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks_mut(INSERT_CHUNK) {
            let mut sql = Sql::new(format!("INSERT INTO patients ({INSERT_COLUMNS}) VALUES "));
            for (n, (id, p)) in chunk.iter_mut().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.push("(");
                for (k, value) in self.insert_values(id, p, now).into_iter().enumerate() {
                    if k > 0 {
                        sql.push(", ");
                    }
                    sql.bind(value);
                }
                sql.push(")");
            }
            sql.query().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The values of [`INSERT_COLUMNS`] for a new record.
    fn insert_values(&self, id: &str, p: &mut Patient, now: i64) -> Vec<Value> {
        let name = name_of(id);
        let c = columns(p);
        let (sealed, hash) = self.seal_protected(p, &name);
        let code = std::mem::take(&mut p.code);
        let doc = p.encode_to_vec();
        p.code = code.clone();
        let text = |s: String| Value::Text(s);
        let opt = |s: Option<String>| s.map(Value::Text).unwrap_or(Value::Null);
        vec![
            text(id.to_string()),
            text(code),
            text(c.display_name),
            text(c.name_pinyin),
            text(c.name_initials),
            Value::Int(i64::from(p.sex)),
            text(c.birth_date),
            text(c.phone),
            text(c.phone_last4),
            text(p.email.clone()),
            text(p.occupation.clone()),
            text(p.industry.clone()),
            Value::Int(i64::from(p.education)),
            Value::Int(i64::from(p.marital_status)),
            Value::Int(i64::from(p.income_band)),
            text(c.province),
            text(c.city),
            text(p.department.clone()),
            Value::Int(i64::from(p.intent_grade)),
            Value::Int(i64::from(p.value_tier)),
            Value::Int(i64::from(p.vip)),
            Value::Int(c.do_not_contact),
            text(c.tags),
            opt(hash),
            opt(sealed),
            Value::Bytes(doc),
            Value::Int(1),
            Value::Int(now),
            Value::Int(now),
            Value::Int(i64::from(p.deceased)),
        ]
    }

    /// Rewrites an existing row with `p` at `version + 1`; false when the version moved on.
    pub async fn update_row(
        &self,
        tx: &mut Tx,
        id: &str,
        p: &mut Patient,
        version: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let name = name_of(id);
        let c = columns(p);
        let (sealed, hash) = self.seal_protected(p, &name);
        let code = std::mem::take(&mut p.code);
        let doc = p.encode_to_vec();
        p.code = code.clone();
        let done = sqlx::query(
            "UPDATE patients SET code = $1, display_name = $2, name_pinyin = $3, name_initials = $4, sex = $5, birth_date = $6, \
             phone = $7, phone_last4 = $8, email = $9, occupation = $10, industry = $11, education = $12, marital_status = $13, \
             income_band = $14, province = $15, city = $16, department = $17, intent_grade = $18, value_tier = $19, vip = $20, \
             do_not_contact = $21, tags = $22, identity_hash = $23, protected = $24, doc = $25, version = version + 1, \
             updated_at = $26, deceased = $29 WHERE id = $27 AND version = $28",
        )
        .bind(&code)
        .bind(c.display_name)
        .bind(c.name_pinyin)
        .bind(c.name_initials)
        .bind(i64::from(p.sex))
        .bind(c.birth_date)
        .bind(c.phone)
        .bind(c.phone_last4)
        .bind(p.email.clone())
        .bind(p.occupation.clone())
        .bind(p.industry.clone())
        .bind(i64::from(p.education))
        .bind(i64::from(p.marital_status))
        .bind(i64::from(p.income_band))
        .bind(c.province)
        .bind(c.city)
        .bind(p.department.clone())
        .bind(i64::from(p.intent_grade))
        .bind(i64::from(p.value_tier))
        .bind(i64::from(p.vip))
        .bind(c.do_not_contact)
        .bind(c.tags)
        .bind(hash)
        .bind(sealed)
        .bind(doc)
        .bind(now)
        .bind(id)
        .bind(version)
        .bind(i64::from(p.deceased))
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn link_external_id(&self, tx: &mut Tx, ext: &ExternalId, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO external_ids (source_system, external_id, patient_id) VALUES ($1, $2, $3)")
            .bind(&ext.source_system)
            .bind(&ext.external_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// External ids of a patient, in a stable order.
    pub async fn external_ids(&self, id: &str) -> Result<Vec<ExternalId>, ApiError> {
        let rows = sqlx::query(
            "SELECT source_system, external_id FROM external_ids WHERE patient_id = $1 ORDER BY source_system, external_id",
        )
        .bind(id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ExternalId {
                    source_system: col(r, "source_system")?,
                    external_id: col(r, "external_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ApiError::from)
    }

    /// Reads a patient (soft-deleted ones too: their delete_time says so).
    pub async fn get_patient(&self, id: &str, scope: &Scope, view: View) -> Result<Patient, ApiError> {
        // One round trip: the external ids come along as `source:id` lines (source systems are
        // lower-case codes without `:`, external ids printable ASCII without line breaks).
        let aggregate = match self.backend() {
            hcrm_kit::db::Backend::Sqlite => "group_concat(source_system || ':' || external_id, char(10))",
            hcrm_kit::db::Backend::Postgres => {
                "string_agg(source_system || ':' || external_id, chr(10) ORDER BY source_system, external_id)"
            }
        };
        let sql = format!(
            "SELECT {COLUMNS}, (SELECT {aggregate} FROM external_ids WHERE patient_id = patients.id) AS ext \
             FROM patients WHERE id = $1"
        );
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        let Some(found) = found else {
            return Err(ApiError::not_found(name_of(id)));
        };
        let row = Row::read(&found)?;
        if !scope.covers(&row.department) {
            return Err(ApiError::not_found(name_of(id)));
        }
        let ext: Option<String> = col(&found, "ext")?;
        let mut p = self.to_patient(row, view)?;
        let mut ids: Vec<ExternalId> = ext
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(source, id)| ExternalId {
                source_system: source.to_string(),
                external_id: id.to_string(),
            })
            .collect();
        ids.sort_by(|a, b| (&a.source_system, &a.external_id).cmp(&(&b.source_system, &b.external_id)));
        p.external_ids = ids;
        Ok(p)
    }

    /// Reads a patient in clear and records the access in the audit log, in one transaction.
    pub async fn get_patient_audited(
        &self,
        ctx: &RequestContext,
        id: &str,
        scope: &Scope,
        reason: &str,
    ) -> Result<Patient, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let row = self.load_row(&mut tx, id, scope).await?;
        let mut p = self.to_patient(row, View::Full)?;
        let audit = AuditEntry::new(ctx, "patient.read_protected", &p.name, reason, json!({}));
        ledger::append(&mut tx, now_micros(), &[audit], &[]).await?;
        tx.commit().await?;
        self.changed();
        p.external_ids = self.external_ids(id).await?;
        Ok(p)
    }

    /// Applies an update mask under optimistic concurrency.
    pub async fn update_patient(
        &self,
        ctx: &RequestContext,
        id: &str,
        scope: &Scope,
        update: super::Update<Patient>,
        today: chrono::NaiveDate,
    ) -> Result<Patient, ApiError> {
        let super::Update {
            changes,
            paths,
            etag: expected_etag,
            reason,
        } = update;
        let (paths, expected_etag, reason) = (paths.as_slice(), expected_etag.as_str(), reason.as_str());
        let mut tx = self.db.begin_write().await?;
        let row = self.load_row(&mut tx, id, scope).await?;
        if row.deleted_at.is_some() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} is deleted; undelete it first",
                name_of(id)
            )));
        }
        if etag(row.version) != expected_etag {
            return Err(ApiError::Aborted(format!(
                "{} was changed since it was read (etag {}); read it again and retry",
                name_of(id),
                etag(row.version)
            )));
        }
        let version = row.version;
        let mut current = self.to_patient(row, View::Full)?;
        patient::apply_mask(&mut current, &changes, paths);
        patient::clear_output_only(&mut current);
        patient::normalize(&mut current);
        let mut v = hcrm_kit::validate::Violations::new();
        patient::validate(&current, "patient", today, &mut v);
        v.finish()?;
        if let Scope::Department(dept) = scope
            && current.department != *dept
        {
            return Err(ApiError::PermissionDenied(
                "a department-scoped caller cannot move a patient to another department".into(),
            ));
        }
        self.check_conflicts(&mut tx, &current, id).await?;
        let now = now_micros();
        match self.update_row(&mut tx, id, &mut current, version, now).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(ApiError::Aborted(format!(
                    "{} was changed concurrently; retry",
                    name_of(id)
                )));
            }
            Err(e) if is_unique_violation(&e) => {
                return Err(ApiError::AlreadyExists {
                    what: "a patient with this identity number or code".into(),
                    existing: "another patient".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let name = name_of(id);
        let audit = AuditEntry::new(ctx, "patient.update", &name, reason, json!({ "fields": paths }));
        let event = NewEvent {
            kind: "patient.updated",
            resource: name.clone(),
            payload: json!({ "patient": name, "fields": paths, "department": current.department }),
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        self.get_patient(id, &Scope::All, View::Masked).await
    }

    /// Soft-deletes (`delete = true`) or restores a patient.
    pub async fn set_deleted(
        &self,
        ctx: &RequestContext,
        id: &str,
        scope: &Scope,
        delete: bool,
        expected_etag: &str,
        reason: &str,
    ) -> Result<Patient, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let row = self.load_row(&mut tx, id, scope).await?;
        let name = name_of(id);
        if !expected_etag.is_empty() && etag(row.version) != expected_etag {
            return Err(ApiError::Aborted(format!(
                "{name} was changed since it was read; read it again and retry"
            )));
        }
        if row.merged_into.is_some() {
            return Err(ApiError::FailedPrecondition(format!(
                "{name} was merged into another patient"
            )));
        }
        match (delete, row.deleted_at.is_some()) {
            (true, true) => {
                return Err(ApiError::FailedPrecondition(format!("{name} is already deleted")));
            }
            (false, false) => {
                return Err(ApiError::FailedPrecondition(format!("{name} is not deleted")));
            }
            _ => {}
        }
        let now = now_micros();
        sqlx::query("UPDATE patients SET deleted_at = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(if delete { Some(now) } else { None })
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let (action, kind) = if delete {
            ("patient.delete", "patient.deleted")
        } else {
            ("patient.undelete", "patient.undeleted")
        };
        let audit = AuditEntry::new(ctx, action, &name, reason, json!({}));
        let event = NewEvent {
            kind,
            resource: name.clone(),
            payload: json!({ "patient": name }),
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        self.get_patient(id, &Scope::All, View::Masked).await
    }

    /// Lists patients matching a compiled filter.
    pub async fn list_patients(
        &self,
        where_sql: &Sql,
        order_sql: &str,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Patient>, i64), ApiError> {
        let mut sql = Sql::new(format!("SELECT {COLUMNS} FROM patients WHERE "));
        sql.text.push_str(&where_sql.text);
        sql.args = where_sql.args.clone();
        sql.push(" ORDER BY ").push(order_sql).push(" LIMIT ");
        sql.bind(Value::Int(limit as i64))
            .push(" OFFSET ")
            .bind(Value::Int(offset as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut patients = Vec::with_capacity(rows.len());
        for r in &rows {
            patients.push(self.to_patient(Row::read(r)?, View::Masked)?);
        }
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM patients WHERE ");
        count.text.push_str(&where_sql.text);
        count.args = where_sql.args.clone();
        let total: i64 = col(&count.query().fetch_one(&self.db.pool).await?, "n")?;
        Ok((patients, total))
    }

    /// Rows for ids, masked, in the given order.
    pub async fn patients_by_ids(&self, ids: &[String]) -> Result<Vec<Patient>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(format!("SELECT {COLUMNS} FROM patients WHERE id IN ("));
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Value::Text(id.clone()));
        }
        sql.push(")");
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut by_id = std::collections::HashMap::new();
        for r in &rows {
            let row = Row::read(r)?;
            let id = row.id.clone();
            by_id.insert(id, self.to_patient(row, View::Masked)?);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Candidate ids for a search: one indexed query per way of matching, each with its score.
    pub async fn search_candidates(
        &self,
        probes: &[(Sql, i32, &'static str)],
    ) -> Result<Vec<(String, i32, &'static str)>, ApiError> {
        if probes.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip: every probe is a subquery of one UNION ALL, tagged with its index.
        let mut all = Sql::default();
        for (k, (sql, _, _)) in probes.iter().enumerate() {
            if k > 0 {
                all.push(" UNION ALL ");
            }
            all.push(&format!("SELECT id, CAST({k} AS BIGINT) AS probe FROM ("));
            all.append_renumbered(sql);
            all.push(&format!(") p{k}"));
        }
        let mut out = Vec::new();
        for r in all.query().fetch_all(&self.db.pool).await? {
            let k = col::<i64>(&r, "probe")? as usize;
            let (_, score, matched) = &probes[k];
            out.push((col::<String>(&r, "id")?, *score, *matched));
        }
        Ok(out)
    }

    /// Merges `merged_id` into `survivor_id` in one transaction.
    pub async fn merge_patients(
        &self,
        ctx: &RequestContext,
        survivor_id: &str,
        merged_id: &str,
        scope: &Scope,
        reason: &str,
    ) -> Result<(Patient, i64, i64, i64), ApiError> {
        let mut tx = self.db.begin_write().await?;
        let survivor = self.load_row(&mut tx, survivor_id, scope).await?;
        let merged = self.load_row(&mut tx, merged_id, scope).await?;
        for (field, row) in [("survivor", &survivor), ("merged", &merged)] {
            if row.deleted_at.is_some() || row.merged_into.is_some() {
                return Err(ApiError::FailedPrecondition(format!(
                    "{field} {} is deleted or already merged",
                    name_of(&row.id)
                )));
            }
        }
        let now = now_micros();
        let moved_related = sqlx::query("UPDATE related_persons SET patient_id = $1 WHERE patient_id = $2")
            .bind(survivor_id)
            .bind(merged_id)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
        let moved_interactions = sqlx::query("UPDATE interactions SET patient_id = $1 WHERE patient_id = $2")
            .bind(survivor_id)
            .bind(merged_id)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
        // Segment facts (visits, departments, diagnoses) follow the interactions.
        self.merge_facts_in_tx(&mut tx, survivor_id, merged_id, now).await?;
        let moved_ids = sqlx::query("UPDATE external_ids SET patient_id = $1 WHERE patient_id = $2")
            .bind(survivor_id)
            .bind(merged_id)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
        // The survivor takes the merged record's identity, protected data and visit history
        // where it has none of its own.
        let survivor_version = survivor.version;
        let merged_visit = merged.last_visit_at;
        let mut keep = self.to_patient(survivor, View::Full)?;
        let other = self.to_patient(merged, View::Full)?;
        let mut took = Vec::new();
        if keep.identity_number.is_empty() && !other.identity_number.is_empty() {
            keep.identity_type = other.identity_type;
            keep.identity_number = other.identity_number.clone();
            took.push("identity_number");
        }
        for (field, dst, src) in [
            ("bank_card", &mut keep.bank_card, &other.bank_card),
            ("insurance_number", &mut keep.insurance_number, &other.insurance_number),
        ] {
            if dst.is_empty() && !src.is_empty() {
                *dst = src.clone();
                took.push(field);
            }
        }
        if keep.medical_history.is_none() && other.medical_history.is_some() {
            keep.medical_history = other.medical_history.clone();
            took.push("medical_history");
        }
        for phone in &other.phones {
            if !keep.phones.contains(phone) && keep.phones.len() < 5 {
                keep.phones.push(phone.clone());
                took.push("phones");
            }
        }
        // Release the merged record's unique identity before the survivor takes it.
        sqlx::query(
            "UPDATE patients SET merged_into = $1, deleted_at = $2, identity_hash = NULL, version = version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(survivor_id)
        .bind(now)
        .bind(merged_id)
        .execute(&mut *tx)
        .await?;
        patient::clear_output_only(&mut keep);
        keep.external_ids.clear();
        if !self
            .update_row(&mut tx, survivor_id, &mut keep, survivor_version, now)
            .await?
        {
            return Err(ApiError::Aborted("survivor changed concurrently; retry".into()));
        }
        if let Some(visit) = merged_visit {
            sqlx::query("UPDATE patients SET last_visit_at = $1 WHERE id = $2 AND (last_visit_at IS NULL OR last_visit_at < $1)")
                .bind(visit)
                .bind(survivor_id)
                .execute(&mut *tx)
                .await?;
        }
        let (s, m) = (name_of(survivor_id), name_of(merged_id));
        let detail = json!({
            "survivor": s, "merged": m,
            "moved_related_persons": moved_related, "moved_interactions": moved_interactions,
            "moved_external_ids": moved_ids, "fields_taken": took,
        });
        let audits = [
            AuditEntry::new(ctx, "patient.merge", &s, reason, detail.clone()),
            AuditEntry::new(ctx, "patient.merged_away", &m, reason, detail.clone()),
        ];
        let event = NewEvent {
            kind: "patient.merged",
            resource: s.clone(),
            payload: detail,
        };
        ledger::append(&mut tx, now, &audits, &[event]).await?;
        tx.commit().await?;
        self.changed();
        let p = self.get_patient(survivor_id, &Scope::All, View::Masked).await?;
        Ok((p, moved_related, moved_interactions, moved_ids))
    }
}

/// A member code from the id: `P` and 12 characters of its random part.
pub(crate) fn generated_code(id: &str) -> String {
    let hex: String = id.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    format!("P{}", hex[hex.len() - 12..].to_uppercase())
}

/// Why a create failed: an API error to answer, or a unique violation to re-check.
enum CreateError {
    Api(ApiError),
    Unique(sqlx::Error),
}

impl CreateError {
    fn db(err: sqlx::Error) -> Self {
        if is_unique_violation(&err) {
            CreateError::Unique(err)
        } else {
            CreateError::Api(err.into())
        }
    }
}

impl From<ApiError> for CreateError {
    fn from(err: ApiError) -> Self {
        CreateError::Api(err)
    }
}
