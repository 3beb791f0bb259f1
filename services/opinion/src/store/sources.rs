//! Feeds and pages polled: their settings, the lease that lets one replica poll a source at a
//! time, and the outcome of each fetch.

use super::{Actor, Store, decode, etag, taken};
use crate::fetch::Validators;
use hcrm_kit::ApiError;
use hcrm_kit::db::col;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::opinion::{FetchStatus, Source};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

/// A source claimed for fetching.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub url: String,
    pub kind: i32,
    pub validators: Validators,
}

/// What a fetch came to.
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    Fetched {
        items: i32,
        kept: i32,
        validators: Validators,
        encoding: String,
    },
    NotModified,
    Failed(String),
}

fn source_of(row: &AnyRow) -> Result<Source, ApiError> {
    let mut s: Source = decode(&col::<Vec<u8>>(row, "body")?)?;
    s.name = format!("sources/{}", col::<String>(row, "id")?);
    s.enabled = col::<i64>(row, "enabled")? != 0;
    s.next_fetch_time = Some(to_timestamp(col(row, "next_fetch_at")?));
    s.create_time = Some(to_timestamp(col(row, "created_at")?));
    s.update_time = Some(to_timestamp(col(row, "updated_at")?));
    s.etag = etag(col(row, "version")?);
    Ok(s)
}

/// What is stored: everything but the name, times and etag (columns).
fn document(s: &Source) -> Vec<u8> {
    Source {
        name: String::new(),
        next_fetch_time: None,
        create_time: None,
        update_time: None,
        etag: String::new(),
        ..s.clone()
    }
    .encode_to_vec()
}

/// A lease long enough for the slowest allowed fetch and its ingestion.
const LEASE_MICROS: i64 = 10 * 60 * 1_000_000;

impl Store {
    pub async fn create_source(&self, actor: &Actor, s: Source) -> Result<Source, ApiError> {
        let id = hcrm_kit::new_id();
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        if let Some(row) = sqlx::query("SELECT id FROM sources WHERE url = $1")
            .bind(&s.url)
            .fetch_optional(&mut *tx)
            .await?
        {
            return Err(ApiError::AlreadyExists {
                what: format!("a source for {}", s.url),
                existing: format!("sources/{}", col::<String>(&row, "id")?),
            });
        }
        let stored = Source {
            kind: s.kind,
            url: s.url.clone(),
            title: s.title.clone(),
            interval_seconds: s.interval_seconds,
            ..Default::default()
        };
        sqlx::query(
            "INSERT INTO sources (id, url, enabled, next_fetch_at, lease_until, http_etag, http_modified, body, version,
             created_at, updated_at) VALUES ($1, $2, $3, $4, 0, '', '', $5, 1, $4, $4)",
        )
        .bind(&id)
        .bind(&s.url)
        .bind(i64::from(s.enabled))
        .bind(now)
        .bind(document(&stored))
        .execute(&mut *tx)
        .await
        .map_err(|err| taken(err, || format!("a source for {}", s.url)))?;
        let audit = actor.audit_entry("source.create", &format!("sources/{id}"), "", json!({ "url": s.url }));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_source(&id).await
    }

    pub async fn get_source(&self, id: &str) -> Result<Source, ApiError> {
        let row = sqlx::query("SELECT * FROM sources WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("sources/{id}")))?;
        source_of(&row)
    }

    pub async fn list_sources(&self, after: &str, limit: usize) -> Result<Vec<Source>, ApiError> {
        let rows = sqlx::query("SELECT * FROM sources WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(source_of).collect()
    }

    /// Replaces title, interval and enabled; the URL and kind are the source's identity.
    pub async fn update_source(&self, actor: &Actor, id: &str, s: Source) -> Result<Source, ApiError> {
        let resource = format!("sources/{id}");
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let row = self.locked(&mut tx, "sources", &resource, id, &s.etag).await?;
        let mut current = source_of(&row)?;
        current.title = s.title.clone();
        current.interval_seconds = s.interval_seconds;
        sqlx::query("UPDATE sources SET enabled = $1, body = $2, version = version + 1, updated_at = $3 WHERE id = $4")
            .bind(i64::from(s.enabled))
            .bind(document(&current))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audit = actor.audit_entry("source.update", &resource, "", json!({ "enabled": s.enabled }));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_source(id).await
    }

    /// Deletes a source; the mentions it brought stay.
    pub async fn delete_source(&self, actor: &Actor, id: &str, expected: &str) -> Result<(), ApiError> {
        let resource = format!("sources/{id}");
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        self.locked(&mut tx, "sources", &resource, id, expected).await?;
        sqlx::query("DELETE FROM sources WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audit = actor.audit_entry("source.delete", &resource, "", json!({}));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        Ok(())
    }

    /// Leases up to `limit` enabled sources that are due (`only`: that one, due or not).
    pub async fn claim_due(&self, only: Option<&str>, limit: usize) -> Result<Vec<Due>, ApiError> {
        let now = self.now();
        let rows = match only {
            Some(id) => {
                sqlx::query("SELECT * FROM sources WHERE id = $1")
                    .bind(id)
                    .fetch_all(&self.db.pool)
                    .await?
            }
            None => {
                sqlx::query(
                    "SELECT * FROM sources WHERE enabled = 1 AND next_fetch_at <= $1 AND lease_until < $1
                     ORDER BY next_fetch_at LIMIT $2",
                )
                .bind(now)
                .bind(limit as i64)
                .fetch_all(&self.db.pool)
                .await?
            }
        };
        let mut due = Vec::new();
        for row in rows {
            let id: String = col(&row, "id")?;
            let claimed = sqlx::query("UPDATE sources SET lease_until = $1 WHERE id = $2 AND lease_until < $3")
                .bind(now + LEASE_MICROS)
                .bind(&id)
                .bind(now)
                .execute(&self.db.pool)
                .await?
                .rows_affected();
            if claimed == 1 {
                let s = source_of(&row)?;
                let text = |c: &str| -> Result<Option<String>, ApiError> {
                    let v: String = col(&row, c)?;
                    Ok((!v.is_empty()).then_some(v))
                };
                due.push(Due {
                    id,
                    url: s.url,
                    kind: s.kind,
                    validators: Validators {
                        etag: text("http_etag")?,
                        last_modified: text("http_modified")?,
                    },
                });
            }
        }
        Ok(due)
    }

    /// Records a fetch and schedules the next: after the interval, backing off (up to 8×) while
    /// the source keeps failing.
    pub async fn record_fetch(&self, id: &str, outcome: FetchOutcome) -> Result<(), ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT * FROM sources WHERE id = $1{}", self.for_update());
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(()); // deleted while it was fetched
        };
        let mut s = source_of(&row)?;
        let mut http_etag: String = col(&row, "http_etag")?;
        let mut http_modified: String = col(&row, "http_modified")?;
        s.last_fetch_time = Some(to_timestamp(now));
        match outcome {
            FetchOutcome::Fetched {
                items,
                kept,
                validators,
                encoding,
            } => {
                s.last_status = FetchStatus::Ok as i32;
                s.last_error.clear();
                s.last_item_count = items;
                s.last_kept_count = kept;
                s.consecutive_failures = 0;
                s.last_encoding = encoding;
                http_etag = validators.etag.unwrap_or_default();
                http_modified = validators.last_modified.unwrap_or_default();
            }
            FetchOutcome::NotModified => {
                s.last_status = FetchStatus::NotModified as i32;
                s.last_error.clear();
                s.consecutive_failures = 0;
            }
            FetchOutcome::Failed(error) => {
                s.last_status = FetchStatus::Error as i32;
                s.last_error = error.chars().take(500).collect();
                s.consecutive_failures += 1;
            }
        }
        let backoff = 1i64 << s.consecutive_failures.clamp(0, 3);
        let interval = i64::from(s.interval_seconds.max(60)) * 1_000_000;
        sqlx::query(
            "UPDATE sources SET body = $1, http_etag = $2, http_modified = $3, next_fetch_at = $4, lease_until = 0
             WHERE id = $5",
        )
        .bind(document(&s))
        .bind(http_etag)
        .bind(http_modified)
        .bind(now + interval * backoff)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
