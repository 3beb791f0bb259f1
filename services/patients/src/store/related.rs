//! Related persons of a patient.

use super::patients::name_of as patient_name;
use super::{Store, decode};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::col;
use hcrm_kit::ledger::{self, AuditEntry};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{now_micros, to_timestamp};
use hcrm_proto::patients::RelatedPerson;
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

pub fn name_of(patient_id: &str, id: &str) -> String {
    format!("patients/{patient_id}/relatedPersons/{id}")
}

fn to_related(row: &AnyRow) -> Result<RelatedPerson, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut r: RelatedPerson = decode(&doc)?;
    let patient_id: String = col(row, "patient_id")?;
    let id: String = col(row, "id")?;
    let version: i64 = col(row, "version")?;
    r.name = name_of(&patient_id, &id);
    r.etag = super::patients::etag(version);
    r.create_time = Some(to_timestamp(col(row, "created_at")?));
    r.update_time = Some(to_timestamp(col(row, "updated_at")?));
    Ok(r)
}

fn clear_output_only(r: &mut RelatedPerson) {
    r.name.clear();
    r.etag.clear();
    r.create_time = None;
    r.update_time = None;
}

impl Store {
    /// Checks that a patient exists, is live and within scope (NOT_FOUND otherwise).
    async fn live_patient(&self, tx: &mut hcrm_kit::db::Tx, patient_id: &str, scope: &Scope) -> Result<(), ApiError> {
        let row = self.load_row(tx, patient_id, scope).await?;
        if row.deleted_at.is_some() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} is deleted",
                patient_name(patient_id)
            )));
        }
        Ok(())
    }

    pub async fn create_related(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        scope: &Scope,
        mut r: RelatedPerson,
        request_key: Option<String>,
    ) -> Result<RelatedPerson, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            let id = resource.rsplit('/').next().unwrap_or_default().to_string();
            return self.get_related(patient_id, &id, scope).await;
        }
        self.live_patient(&mut tx, patient_id, scope).await?;
        let count: i64 = col(
            &sqlx::query("SELECT COUNT(*) AS n FROM related_persons WHERE patient_id = $1")
                .bind(patient_id)
                .fetch_one(&mut *tx)
                .await?,
            "n",
        )?;
        if count >= 50 {
            return Err(ApiError::FailedPrecondition(
                "a patient has at most 50 related persons".into(),
            ));
        }
        let id = hcrm_kit::new_id();
        let now = now_micros();
        clear_output_only(&mut r);
        sqlx::query("INSERT INTO related_persons (id, patient_id, doc, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)")
            .bind(&id)
            .bind(patient_id)
            .bind(r.encode_to_vec())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let name = name_of(patient_id, &id);
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &name, now).await?;
        }
        let audit = AuditEntry::new(ctx, "related_person.create", &name, "", json!({}));
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.changed();
        self.get_related(patient_id, &id, scope).await
    }

    pub async fn get_related(&self, patient_id: &str, id: &str, scope: &Scope) -> Result<RelatedPerson, ApiError> {
        let row = sqlx::query(
            "SELECT r.id, r.patient_id, r.doc, r.version, r.created_at, r.updated_at, p.department \
             FROM related_persons r JOIN patients p ON p.id = r.patient_id WHERE r.id = $1 AND r.patient_id = $2",
        )
        .bind(id)
        .bind(patient_id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(name_of(patient_id, id)))?;
        let department: String = col(&row, "department")?;
        if !scope.covers(&department) {
            return Err(ApiError::not_found(name_of(patient_id, id)));
        }
        to_related(&row)
    }

    pub async fn update_related(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        id: &str,
        scope: &Scope,
        update: super::Update<RelatedPerson>,
    ) -> Result<RelatedPerson, ApiError> {
        let super::Update {
            changes,
            paths,
            etag: expected_etag,
            ..
        } = update;
        let (paths, expected_etag) = (paths.as_slice(), expected_etag.as_str());
        let mut tx = self.db.begin_write().await?;
        self.load_row(&mut tx, patient_id, scope).await?;
        let sql = format!(
            "SELECT id, patient_id, doc, version, created_at, updated_at FROM related_persons WHERE id = $1 AND patient_id = $2{}",
            self.for_update()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(patient_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(patient_id, id)))?;
        let version: i64 = col(&row, "version")?;
        if super::patients::etag(version) != expected_etag {
            return Err(ApiError::Aborted(format!(
                "{} was changed since it was read; read it again",
                name_of(patient_id, id)
            )));
        }
        let mut current = to_related(&row)?;
        crate::domain::related::apply_mask(&mut current, &changes, paths);
        crate::domain::related::normalize(&mut current);
        let mut v = hcrm_kit::validate::Violations::new();
        crate::domain::related::validate(&current, "related_person", &mut v);
        v.finish()?;
        clear_output_only(&mut current);
        let now = now_micros();
        let done = sqlx::query("UPDATE related_persons SET doc = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4")
            .bind(current.encode_to_vec())
            .bind(now)
            .bind(id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(ApiError::Aborted("changed concurrently; retry".into()));
        }
        let name = name_of(patient_id, id);
        let audit = AuditEntry::new(ctx, "related_person.update", &name, "", json!({ "fields": paths }));
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.changed();
        self.get_related(patient_id, id, scope).await
    }

    pub async fn delete_related(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        id: &str,
        scope: &Scope,
    ) -> Result<(), ApiError> {
        let mut tx = self.db.begin_write().await?;
        self.load_row(&mut tx, patient_id, scope).await?;
        let done = sqlx::query("DELETE FROM related_persons WHERE id = $1 AND patient_id = $2")
            .bind(id)
            .bind(patient_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found(name_of(patient_id, id)));
        }
        let name = name_of(patient_id, id);
        let audit = AuditEntry::new(ctx, "related_person.delete", &name, "", json!({}));
        ledger::append(&mut tx, now_micros(), &[audit], &[]).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    pub async fn list_related(
        &self,
        patient_id: &str,
        scope: &Scope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RelatedPerson>, ApiError> {
        self.get_patient(patient_id, scope, super::patients::View::Masked)
            .await?;
        let rows = sqlx::query(
            "SELECT id, patient_id, doc, version, created_at, updated_at FROM related_persons \
             WHERE patient_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(patient_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(to_related).collect()
    }
}
