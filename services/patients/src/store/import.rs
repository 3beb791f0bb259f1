//! Bulk intake from the HIS: many rows per transaction, one result per row. A row that conflicts
//! fails alone; if a concurrent writer makes the batch fail at commit, the batch is retried one
//! row per transaction so only the conflicting rows fail.

use super::Store;
use super::interactions::Recorded;
use super::patients::{View, name_of};
use crate::domain::patient;
use hcrm_kit::ApiError;
use hcrm_kit::auth::{Principal, Scope};
use hcrm_kit::db::{Sql, Value};
use hcrm_kit::db::{Tx, col};
use hcrm_kit::error::is_unique_violation;
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::time::now_micros;
use hcrm_proto::patients::{ExternalId, Interaction, Patient, RowResult};
use serde_json::json;
use std::collections::HashMap;

/// Values per `IN (…)` list or multi-row insert in bulk lookups.
const LOOKUP_CHUNK: usize = 100;

/// Appends `v1, v2, …)` as bound values.
fn push_list(sql: &mut Sql, values: impl Iterator<Item = String>) {
    for (n, v) in values.enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.bind(Value::Text(v));
    }
    sql.push(")");
}

/// A validated patient row.
pub struct PatientRow {
    pub index: i64,
    pub external: ExternalId,
    pub patient: Patient,
}

/// A validated interaction row; the patient is named or found by external id.
pub struct InteractionRow {
    pub index: i64,
    pub patient_id: Option<String>,
    pub patient_external: Option<ExternalId>,
    pub interaction: Interaction,
}

/// The result of a failed row.
pub fn failed(index: i64, err: &ApiError) -> RowResult {
    RowResult {
        index,
        code: err.code() as i32,
        message: err.to_string(),
        name: String::new(),
        created: false,
    }
}

fn ok(index: i64, name: String, created: bool) -> RowResult {
    RowResult {
        index,
        code: 0,
        message: String::new(),
        name,
        created,
    }
}

struct Ledger {
    audits: Vec<AuditEntry>,
    events: Vec<NewEvent>,
}

impl Ledger {
    /// The audit entry and event of a patient created by the import.
    fn created(&mut self, principal: &Principal, request_id: &str, name: &str, source: &str, p: &Patient) {
        let detail = json!({ "source": source });
        self.audits.push(AuditEntry::by(
            principal,
            request_id,
            "patient.import_create",
            name,
            "",
            detail,
        ));
        self.events.push(NewEvent {
            kind: "patient.created",
            resource: name.to_string(),
            payload: json!({ "patient": name, "code": p.code, "source": source, "department": p.department }),
        });
    }
}

impl Store {
    /// Upserts patient rows by (source system, external id).
    pub async fn import_patients(
        &self,
        principal: &Principal,
        request_id: &str,
        rows: &[PatientRow],
    ) -> Result<Vec<RowResult>, ApiError> {
        match self.import_patients_tx(principal, request_id, rows).await {
            Err(ImportError::Unique) => {
                let mut results = Vec::with_capacity(rows.len());
                for row in rows {
                    match self
                        .import_patients_tx(principal, request_id, std::slice::from_ref(row))
                        .await
                    {
                        Ok(mut r) => results.append(&mut r),
                        Err(ImportError::Unique) => results.push(failed(
                            row.index,
                            &ApiError::AlreadyExists {
                                what: "a patient with this identity number or code".into(),
                                existing: "another patient".into(),
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

    async fn import_patients_tx(
        &self,
        principal: &Principal,
        request_id: &str,
        rows: &[PatientRow],
    ) -> Result<Vec<RowResult>, ImportError> {
        let mut tx = self.db.begin_write().await.map_err(ImportError::db)?;
        if self.backend() == hcrm_kit::db::Backend::Postgres {
            // During a bulk load the planner's statistics lag far behind the table (it may think
            // external_ids is empty and scan it for every lookup); these lookups are always
            // point lookups on unique indexes.
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await
                .map_err(ImportError::db)?;
        }
        let now = now_micros();
        let mut ledger = Ledger {
            audits: Vec::new(),
            events: Vec::new(),
        };
        // Look everything up once per batch: which rows update a known patient, which identity
        // numbers and codes are taken.
        let existing = self.external_id_holders(&mut tx, rows).await.map_err(ImportError::db)?;
        let hashes: Vec<Option<String>> = rows
            .iter()
            .map(|r| {
                (!r.patient.identity_number.is_empty()).then(|| self.index.hash("identity", &r.patient.identity_number))
            })
            .collect();
        let mut identity_holders = self
            .holders(&mut tx, "identity_hash", hashes.iter().flatten().cloned().collect())
            .await
            .map_err(ImportError::db)?;
        let codes: Vec<String> = rows
            .iter()
            .map(|r| r.patient.code.clone())
            .filter(|c| !c.is_empty())
            .collect();
        let mut code_holders = self.holders(&mut tx, "code", codes).await.map_err(ImportError::db)?;

        let mut results = Vec::with_capacity(rows.len());
        let mut new_rows: Vec<(String, Patient)> = Vec::new();
        let mut new_links: Vec<(ExternalId, String)> = Vec::new();
        let mut deferred = Vec::new();
        let mut in_batch = std::collections::HashSet::new();
        for (row, hash) in rows.iter().zip(&hashes) {
            let key = (row.external.source_system.clone(), row.external.external_id.clone());
            if existing.contains_key(&key) || !in_batch.insert(key) {
                // Updates, and repeats within the batch, take the row-by-row path after the inserts.
                deferred.push(row);
                continue;
            }
            let taken = hash
                .as_ref()
                .and_then(|h| identity_holders.get(h))
                .map(|holder| ("a patient with this identity number".to_string(), holder.clone()))
                .or_else(|| {
                    code_holders
                        .get(&row.patient.code)
                        .map(|holder| (format!("a patient with code {}", row.patient.code), holder.clone()))
                });
            if let Some((what, holder)) = taken {
                results.push(failed(
                    row.index,
                    &ApiError::AlreadyExists {
                        what,
                        existing: name_of(&holder),
                    },
                ));
                continue;
            }
            let id = hcrm_kit::new_id();
            let mut p = row.patient.clone();
            p.external_ids.clear();
            if p.code.is_empty() {
                p.code = super::patients::generated_code(&id);
            }
            if let Some(h) = hash {
                identity_holders.insert(h.clone(), id.clone());
            }
            code_holders.insert(p.code.clone(), id.clone());
            let name = name_of(&id);
            let source = format!("{}:{}", row.external.source_system, row.external.external_id);
            ledger.created(principal, request_id, &name, &source, &p);
            results.push(ok(row.index, name, true));
            new_links.push((row.external.clone(), id.clone()));
            new_rows.push((id, p));
        }
        self.insert_rows(&mut tx, &mut new_rows, now)
            .await
            .map_err(ImportError::db)?;
        self.link_external_ids(&mut tx, &new_links)
            .await
            .map_err(ImportError::db)?;
        for row in deferred {
            match self
                .import_one(&mut tx, principal, request_id, row, now, &mut ledger)
                .await
            {
                Ok(result) => results.push(result),
                Err(ImportError::Api(e @ (ApiError::AlreadyExists { .. } | ApiError::InvalidArgument(_)))) => {
                    results.push(failed(row.index, &e))
                }
                Err(other) => return Err(other),
            }
        }
        results.sort_by_key(|r| r.index);
        ledger::append(&mut tx, now, &ledger.audits, &ledger.events)
            .await
            .map_err(ImportError::db)?;
        tx.commit().await.map_err(ImportError::db)?;
        self.changed();
        Ok(results)
    }

    /// Patient ids of the rows' (source system, external id) pairs that are already linked.
    async fn external_id_holders(
        &self,
        tx: &mut Tx,
        rows: &[PatientRow],
    ) -> Result<HashMap<(String, String), String>, sqlx::Error> {
        let mut by_source: HashMap<&str, Vec<&str>> = HashMap::new();
        for row in rows {
            by_source
                .entry(row.external.source_system.as_str())
                .or_default()
                .push(row.external.external_id.as_str());
        }
        let mut out = HashMap::new();
        for (source, ids) in by_source {
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                // A join against VALUES, not `IN (…)`: PostgreSQL then looks each id up in the
                // primary key instead of filtering every row of the source system.
                let mut sql = Sql::new("SELECT e.external_id, e.patient_id FROM (VALUES ");
                for (n, id) in chunk.iter().enumerate() {
                    sql.push(if n > 0 { ", (" } else { "(" })
                        .bind(Value::Text(id.to_string()))
                        .push(")");
                }
                sql.push(") AS v JOIN external_ids e ON e.external_id = v.column1 AND e.source_system = ");
                sql.bind(Value::Text(source.to_string()));
                for r in sql.query().fetch_all(&mut **tx).await? {
                    out.insert(
                        (source.to_string(), col::<String>(&r, "external_id")?),
                        col::<String>(&r, "patient_id")?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// For a unique patients column (`identity_hash`, `code`): which of `values` are taken, by whom.
    async fn holders(
        &self,
        tx: &mut Tx,
        column: &'static str,
        values: Vec<String>,
    ) -> Result<HashMap<String, String>, sqlx::Error> {
        let mut out = HashMap::new();
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let mut sql = Sql::new(format!("SELECT {column} AS v, id FROM patients WHERE {column} IN ("));
            push_list(&mut sql, chunk.iter().cloned());
            for r in sql.query().fetch_all(&mut **tx).await? {
                out.insert(col::<String>(&r, "v")?, col::<String>(&r, "id")?);
            }
        }
        Ok(out)
    }

    /// Links external ids to new patients with multi-row statements.
    async fn link_external_ids(&self, tx: &mut Tx, links: &[(ExternalId, String)]) -> Result<(), sqlx::Error> {
        for chunk in links.chunks(LOOKUP_CHUNK) {
            let mut sql = Sql::new("INSERT INTO external_ids (source_system, external_id, patient_id) VALUES ");
            for (n, (ext, id)) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.push("(").bind(Value::Text(ext.source_system.clone())).push(", ");
                sql.bind(Value::Text(ext.external_id.clone()))
                    .push(", ")
                    .bind(Value::Text(id.clone()))
                    .push(")");
            }
            sql.query().execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn import_one(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        request_id: &str,
        row: &PatientRow,
        now: i64,
        ledger: &mut Ledger,
    ) -> Result<RowResult, ImportError> {
        let existing = sqlx::query("SELECT patient_id FROM external_ids WHERE source_system = $1 AND external_id = $2")
            .bind(&row.external.source_system)
            .bind(&row.external.external_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(ImportError::db)?
            .map(|r| col::<String>(&r, "patient_id"))
            .transpose()
            .map_err(ImportError::db)?;
        let source = format!("{}:{}", row.external.source_system, row.external.external_id);
        match existing {
            Some(id) => {
                let current_row = self.load_row(tx, &id, &Scope::All).await?;
                let version = current_row.version;
                let mut current = self.to_patient(current_row, View::Full)?;
                patient::merge_import(&mut current, &row.patient);
                patient::clear_output_only(&mut current);
                patient::normalize(&mut current);
                current.external_ids.clear();
                self.check_identity_and_code(tx, &current, &id).await?;
                self.update_row(tx, &id, &mut current, version, now)
                    .await
                    .map_err(ImportError::db)?;
                let name = name_of(&id);
                ledger.audits.push(AuditEntry::by(
                    principal,
                    request_id,
                    "patient.import_update",
                    &name,
                    "",
                    json!({ "source": source }),
                ));
                ledger.events.push(NewEvent {
                    kind: "patient.updated",
                    resource: name.clone(),
                    payload: json!({ "patient": name, "source": source, "department": current.department }),
                });
                Ok(ok(row.index, name, false))
            }
            None => {
                let mut p = row.patient.clone();
                p.external_ids.clear();
                self.check_identity_and_code(tx, &p, "").await?;
                let id = hcrm_kit::new_id();
                if p.code.is_empty() {
                    p.code = super::patients::generated_code(&id);
                }
                self.insert_row(tx, &id, &mut p, now).await.map_err(ImportError::db)?;
                self.link_external_id(tx, &row.external, &id)
                    .await
                    .map_err(ImportError::db)?;
                let name = name_of(&id);
                ledger.created(principal, request_id, &name, &source, &p);
                Ok(ok(row.index, name, true))
            }
        }
    }

    async fn check_identity_and_code(&self, tx: &mut Tx, p: &Patient, except: &str) -> Result<(), ApiError> {
        let mut probe = p.clone();
        probe.external_ids.clear();
        self.check_conflicts(tx, &probe, except).await
    }

    /// Records interaction rows, finding each patient by name or by external id.
    pub async fn import_interactions(
        &self,
        principal: &Principal,
        request_id: &str,
        rows: &[InteractionRow],
    ) -> Result<Vec<RowResult>, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let mut audits = Vec::new();
        let mut events = Vec::new();
        let mut results = Vec::with_capacity(rows.len());
        for row in rows {
            let patient_id = match (&row.patient_id, &row.patient_external) {
                (Some(id), _) => Some(id.clone()),
                (None, Some(ext)) => {
                    sqlx::query("SELECT patient_id FROM external_ids WHERE source_system = $1 AND external_id = $2")
                        .bind(&ext.source_system)
                        .bind(&ext.external_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| col::<String>(&r, "patient_id"))
                        .transpose()?
                }
                (None, None) => None,
            };
            let Some(patient_id) = patient_id else {
                results.push(failed(row.index, &ApiError::not_found("patient of this row")));
                continue;
            };
            match self.load_row(&mut tx, &patient_id, &Scope::All).await {
                Ok(p) if p.deleted_at.is_none() => {}
                Ok(_) => {
                    results.push(failed(
                        row.index,
                        &ApiError::FailedPrecondition(format!("{} is deleted", name_of(&patient_id))),
                    ));
                    continue;
                }
                Err(e) => {
                    results.push(failed(row.index, &e));
                    continue;
                }
            }
            match self
                .record_in_tx(
                    &mut tx,
                    principal,
                    request_id,
                    &patient_id,
                    row.interaction.clone(),
                    now,
                )
                .await
            {
                Ok((Recorded::New(i), Some((audit, event)))) => {
                    audits.push(audit);
                    events.push(event);
                    results.push(ok(row.index, i.name, true));
                }
                Ok((Recorded::New(i) | Recorded::Existing(i), _)) => results.push(ok(row.index, i.name, false)),
                Err(e @ ApiError::AlreadyExists { .. }) => results.push(failed(row.index, &e)),
                Err(e) => return Err(e),
            }
        }
        ledger::append(&mut tx, now, &audits, &events).await?;
        tx.commit().await?;
        self.changed();
        Ok(results)
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
        ImportError::Api(err)
    }
}
