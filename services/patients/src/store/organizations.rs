//! Organisation records.

use super::{Store, decode};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::ledger::{self, AuditEntry};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{now_micros, to_timestamp, to_timestamp_opt};
use hcrm_proto::patients::Organization;
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

pub fn name_of(id: &str) -> String {
    format!("organizations/{id}")
}

const COLUMNS: &str = "id, doc, version, created_at, updated_at, deleted_at";

fn to_org(row: &AnyRow) -> Result<Organization, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut o: Organization = decode(&doc)?;
    let id: String = col(row, "id")?;
    o.name = name_of(&id);
    o.etag = super::patients::etag(col(row, "version")?);
    o.create_time = Some(to_timestamp(col(row, "created_at")?));
    o.update_time = Some(to_timestamp(col(row, "updated_at")?));
    o.delete_time = to_timestamp_opt(col(row, "deleted_at")?);
    Ok(o)
}

fn clear_output_only(o: &mut Organization) {
    o.name.clear();
    o.etag.clear();
    o.create_time = None;
    o.update_time = None;
    o.delete_time = None;
}

impl Store {
    pub async fn create_org(
        &self,
        ctx: &RequestContext,
        mut o: Organization,
        request_key: Option<String>,
    ) -> Result<Organization, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self.get_org(resource.trim_start_matches("organizations/")).await;
        }
        clear_output_only(&mut o);
        let id = hcrm_kit::new_id();
        let now = now_micros();
        let city = o.address.as_ref().map(|a| a.city.clone()).unwrap_or_default();
        sqlx::query(
            "INSERT INTO organizations (id, display_name, kind, city, doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(&id)
        .bind(o.display_name.clone())
        .bind(i64::from(o.kind))
        .bind(city)
        .bind(o.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let name = name_of(&id);
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &name, now).await?;
        }
        let audit = AuditEntry::new(ctx, "organization.create", &name, "", json!({}));
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.changed();
        self.get_org(&id).await
    }

    pub async fn get_org(&self, id: &str) -> Result<Organization, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM organizations WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        to_org(&row)
    }

    pub async fn update_org(
        &self,
        ctx: &RequestContext,
        id: &str,
        changes: Organization,
        paths: &[String],
        expected_etag: &str,
    ) -> Result<Organization, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT {COLUMNS} FROM organizations WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        let version: i64 = col(&row, "version")?;
        let mut current = to_org(&row)?;
        if current.delete_time.is_some() {
            return Err(ApiError::FailedPrecondition(format!("{} is deleted", name_of(id))));
        }
        if super::patients::etag(version) != expected_etag {
            return Err(ApiError::Aborted(format!(
                "{} was changed since it was read; read it again",
                name_of(id)
            )));
        }
        crate::domain::organization::apply_mask(&mut current, &changes, paths);
        crate::domain::organization::normalize(&mut current);
        let mut v = hcrm_kit::validate::Violations::new();
        crate::domain::organization::validate(&current, "organization", &mut v);
        v.finish()?;
        clear_output_only(&mut current);
        let now = now_micros();
        let city = current.address.as_ref().map(|a| a.city.clone()).unwrap_or_default();
        let done = sqlx::query(
            "UPDATE organizations SET display_name = $1, kind = $2, city = $3, doc = $4, version = version + 1, updated_at = $5 \
             WHERE id = $6 AND version = $7",
        )
        .bind(current.display_name.clone())
        .bind(i64::from(current.kind))
        .bind(city)
        .bind(current.encode_to_vec())
        .bind(now)
        .bind(id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(ApiError::Aborted("changed concurrently; retry".into()));
        }
        let audit = AuditEntry::new(ctx, "organization.update", &name_of(id), "", json!({ "fields": paths }));
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.changed();
        self.get_org(id).await
    }

    pub async fn delete_org(&self, ctx: &RequestContext, id: &str) -> Result<Organization, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE organizations SET deleted_at = $1, version = version + 1, updated_at = $1 WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found(name_of(id)));
        }
        let audit = AuditEntry::new(ctx, "organization.delete", &name_of(id), "", json!({}));
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.changed();
        self.get_org(id).await
    }

    pub async fn list_orgs(&self, where_sql: &Sql, limit: usize, offset: usize) -> Result<Vec<Organization>, ApiError> {
        let mut sql = Sql::new(format!(
            "SELECT {COLUMNS} FROM organizations WHERE deleted_at IS NULL AND "
        ));
        sql.text.push_str(&where_sql.text);
        sql.args = where_sql.args.clone();
        sql.push(" ORDER BY display_name, id LIMIT ")
            .bind(Value::Int(limit as i64));
        sql.push(" OFFSET ").bind(Value::Int(offset as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(to_org).collect()
    }
}
