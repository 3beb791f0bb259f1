//! The interaction timeline.

use super::patients::name_of as patient_name;
use super::{Store, decode};
use crate::domain::interaction::{is_visit, kind_name};
use hcrm_kit::ApiError;
use hcrm_kit::auth::{Principal, Scope};
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::time::{from_timestamp, now_micros, rfc3339, to_timestamp};
use hcrm_proto::patients::{Interaction, InteractionKind};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

pub fn name_of(patient_id: &str, id: &str) -> String {
    format!("patients/{patient_id}/interactions/{id}")
}

fn to_interaction(row: &AnyRow) -> Result<Interaction, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut i: Interaction = decode(&doc)?;
    let patient_id: String = col(row, "patient_id")?;
    let id: String = col(row, "id")?;
    i.name = name_of(&patient_id, &id);
    i.create_time = Some(to_timestamp(col(row, "created_at")?));
    Ok(i)
}

/// Filters of a timeline listing.
pub struct TimelineQuery {
    pub kinds: Vec<i32>,
    pub department: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Whether a recorded interaction was new or a repeat of one already recorded.
pub enum Recorded {
    New(Interaction),
    Existing(Interaction),
}

impl Store {
    /// Records one interaction inside `tx` (idempotent on source system + external id); returns
    /// the audit entry and event to append with it.
    pub async fn record_in_tx(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        request_id: &str,
        patient_id: &str,
        mut i: Interaction,
        now: i64,
    ) -> Result<(Recorded, Option<(AuditEntry, NewEvent)>), ApiError> {
        if !i.source_system.is_empty() {
            let existing = sqlx::query(
                "SELECT id, patient_id, doc, created_at FROM interactions WHERE source_system = $1 AND external_id = $2",
            )
            .bind(&i.source_system)
            .bind(&i.external_id)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = existing {
                let owner: String = col(&row, "patient_id")?;
                if owner != patient_id {
                    return Err(ApiError::AlreadyExists {
                        what: format!("interaction {}:{}", i.source_system, i.external_id),
                        existing: patient_name(&owner),
                    });
                }
                return Ok((Recorded::Existing(to_interaction(&row)?), None));
            }
        }
        let id = hcrm_kit::new_id();
        let occurred = i.occur_time.as_ref().and_then(from_timestamp).unwrap_or(now);
        i.name.clear();
        i.create_time = None;
        let kind = InteractionKind::try_from(i.kind).unwrap_or(InteractionKind::Other);
        let source = (!i.source_system.is_empty()).then(|| i.source_system.clone());
        let external = (!i.external_id.is_empty()).then(|| i.external_id.clone());
        sqlx::query(
            "INSERT INTO interactions (id, patient_id, kind, department, occurred_at, source_system, external_id, doc, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(patient_id)
        .bind(i64::from(i.kind))
        .bind(i.department.clone())
        .bind(occurred)
        .bind(source)
        .bind(external)
        .bind(i.encode_to_vec())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        // Timeline facts for segments and grades (visits, departments, diagnoses, …); marks the
        // patient's grade for recomputation.
        self.note_interaction_in_tx(tx, patient_id, &i, occurred, now).await?;
        if is_visit(kind) {
            sqlx::query("UPDATE patients SET last_visit_at = $1 WHERE id = $2 AND (last_visit_at IS NULL OR last_visit_at < $1)")
                .bind(occurred)
                .bind(patient_id)
                .execute(&mut **tx)
                .await?;
        }
        let name = name_of(patient_id, &id);
        let patient = patient_name(patient_id);
        let audit = AuditEntry::by(
            principal,
            request_id,
            "interaction.record",
            &name,
            "",
            json!({ "kind": kind_name(kind) }),
        );
        let event = NewEvent {
            kind: "interaction.recorded",
            resource: name.clone(),
            payload: json!({
                "patient": patient,
                "interaction": name,
                "kind": kind_name(kind),
                "department": i.department,
                "occur_time": rfc3339(occurred),
                "source_system": i.source_system,
                "external_id": i.external_id,
                "diagnosis_codes": i.diagnosis_codes,
            }),
        };
        i.name = name;
        i.create_time = Some(to_timestamp(now));
        Ok((Recorded::New(i), Some((audit, event))))
    }

    /// Records an interaction on a live patient within scope.
    pub async fn record_interaction(
        &self,
        principal: &Principal,
        request_id: &str,
        patient_id: &str,
        scope: &Scope,
        i: Interaction,
    ) -> Result<Interaction, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let row = self.load_row(&mut tx, patient_id, scope).await?;
        if row.deleted_at.is_some() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} is deleted",
                patient_name(patient_id)
            )));
        }
        let now = now_micros();
        let (recorded, ledger_rows) = self
            .record_in_tx(&mut tx, principal, request_id, patient_id, i, now)
            .await?;
        if let Some((audit, event)) = ledger_rows {
            ledger::append(&mut tx, now, &[audit], &[event]).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(match recorded {
            Recorded::New(i) | Recorded::Existing(i) => i,
        })
    }

    /// A patient's timeline, newest first, after the `(occurred_at, id)` position.
    pub async fn list_interactions(
        &self,
        patient_id: &str,
        scope: &Scope,
        query: &TimelineQuery,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(Interaction, i64, String)>, ApiError> {
        self.get_patient(patient_id, scope, super::patients::View::Masked)
            .await?;
        let mut sql =
            Sql::new("SELECT id, patient_id, doc, created_at, occurred_at FROM interactions WHERE patient_id = ");
        sql.bind(Value::Text(patient_id.to_string()));
        if !query.kinds.is_empty() {
            sql.push(" AND kind IN (");
            for (n, kind) in query.kinds.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Int(i64::from(*kind)));
            }
            sql.push(")");
        }
        if !query.department.is_empty() {
            sql.push(" AND department = ")
                .bind(Value::Text(query.department.clone()));
        }
        if let Some(start) = query.start {
            sql.push(" AND occurred_at >= ").bind(Value::Int(start));
        }
        if let Some(end) = query.end {
            sql.push(" AND occurred_at < ").bind(Value::Int(end));
        }
        if let Some((at, id)) = after {
            sql.push(" AND (occurred_at < ").bind(Value::Int(at));
            sql.push(" OR (occurred_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    to_interaction(r)?,
                    col::<i64>(r, "occurred_at")?,
                    col::<String>(r, "id")?,
                ))
            })
            .collect()
    }
}
