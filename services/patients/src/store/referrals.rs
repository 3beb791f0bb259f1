//! Referrals: who introduced whom; one introducer per referred patient.

use super::patients::name_of as patient_name;
use super::{Store, decode};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::error::is_unique_violation;
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::patients::{IntroducerCount, Referral};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

pub fn name_of(id: &str) -> String {
    format!("referrals/{id}")
}

fn to_referral(row: &AnyRow) -> Result<Referral, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut r: Referral = decode(&doc)?;
    r.name = name_of(&col::<String>(row, "id")?);
    r.introducer = patient_name(&col::<String>(row, "introducer")?);
    r.referred = patient_name(&col::<String>(row, "referred")?);
    r.create_time = Some(to_timestamp(col(row, "created_at")?));
    Ok(r)
}

/// Which side of a referral a listing follows.
pub enum Side {
    Introducer(String),
    Referred(String),
}

impl Store {
    /// Records that `introducer` introduced `referred` (fields validated by the caller, the two
    /// patients differ).
    pub async fn record_referral(
        &self,
        ctx: &RequestContext,
        (introducer, referred): (&str, &str),
        mut r: Referral,
        referred_on: String,
        request_key: Option<String>,
        now: i64,
    ) -> Result<Referral, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(resource) = self.idempotent(&mut tx, key).await?
        {
            drop(tx);
            return self.get_referral(resource.trim_start_matches("referrals/")).await;
        }
        for id in [introducer, referred] {
            let row = self.load_row(&mut tx, id, &Scope::All).await?;
            if row.deleted_at.is_some() {
                return Err(ApiError::FailedPrecondition(format!("{} is deleted", patient_name(id))));
            }
        }
        if let Some(existing) = self.referral_of(&mut tx, referred).await? {
            return Err(ApiError::AlreadyExists {
                what: format!("an introducer of {}", patient_name(referred)),
                existing: name_of(&existing),
            });
        }
        let id = hcrm_kit::new_id();
        r.name.clear();
        r.introducer.clear();
        r.referred.clear();
        r.create_time = None;
        r.recorded_by = ctx.principal.subject.clone();
        let inserted = sqlx::query(
            "INSERT INTO referrals (id, introducer, referred, referred_on, doc, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(introducer)
        .bind(referred)
        .bind(&referred_on)
        .bind(r.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let mut tx = self.db.pool.begin().await?;
                let existing = self.referral_of(&mut tx, referred).await?.unwrap_or_default();
                return Err(ApiError::AlreadyExists {
                    what: format!("an introducer of {}", patient_name(referred)),
                    existing: name_of(&existing),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let name = name_of(&id);
        if let Some(key) = &request_key {
            self.remember(&mut tx, key, &name, now).await?;
        }
        let detail = json!({ "introducer": patient_name(introducer), "referred": patient_name(referred) });
        let audit = AuditEntry::new(ctx, "referral.record", &name, "", detail.clone());
        let mut payload = detail;
        payload["referral"] = json!(name);
        let event = NewEvent {
            kind: "referral.recorded",
            resource: name.clone(),
            payload,
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        self.get_referral(&id).await
    }

    async fn referral_of(&self, tx: &mut hcrm_kit::db::Tx, referred: &str) -> Result<Option<String>, ApiError> {
        Ok(sqlx::query("SELECT id FROM referrals WHERE referred = $1")
            .bind(referred)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| col::<String>(&r, "id"))
            .transpose()?)
    }

    pub async fn get_referral(&self, id: &str) -> Result<Referral, ApiError> {
        let row = sqlx::query("SELECT * FROM referrals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        to_referral(&row)
    }

    /// Referrals of one side, newest first, after the `(created_at, id)` position.
    pub async fn list_referrals(
        &self,
        side: &Side,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(Referral, i64, String)>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM referrals WHERE ");
        match side {
            Side::Introducer(id) => sql.push("introducer = ").bind(Value::Text(id.clone())),
            Side::Referred(id) => sql.push("referred = ").bind(Value::Text(id.clone())),
        };
        if let Some((t, id)) = after {
            sql.push(" AND (created_at < ").bind(Value::Int(t));
            sql.push(" OR (created_at = ").bind(Value::Int(t));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| Ok((to_referral(r)?, col::<i64>(r, "created_at")?, col::<String>(r, "id")?)))
            .collect()
    }

    /// Introducers by number of referrals, most first, then by id; a page at `offset`.
    pub async fn top_introducers(&self, offset: usize, limit: usize) -> Result<Vec<IntroducerCount>, ApiError> {
        let rows = sqlx::query(
            "SELECT r.introducer AS introducer, r.n AS n, p.display_name AS display_name FROM \
             (SELECT introducer, COUNT(*) AS n FROM referrals GROUP BY introducer) r \
             JOIN patients p ON p.id = r.introducer ORDER BY r.n DESC, r.introducer LIMIT $1 OFFSET $2",
        )
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IntroducerCount {
                    introducer: patient_name(&col::<String>(r, "introducer")?),
                    referrals: col(r, "n")?,
                    display_name: col(r, "display_name")?,
                })
            })
            .collect()
    }
}
