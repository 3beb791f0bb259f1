//! What the FHIR import needs beyond the patient import path: which upsert keys are known
//! (dry runs), linking further external ids, and attaching related persons without repeating
//! those already there.

use super::Store;
use hcrm_kit::ApiError;
use hcrm_kit::db::col;
use hcrm_kit::ledger::{self, AuditEntry};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::now_micros;
use hcrm_proto::patients::ExternalId;
use serde_json::json;

/// How linking one further external id ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Linked now or already linked to this patient.
    Linked,
    /// Linked to another patient: left there.
    HeldBy(String),
}

impl Store {
    /// The patient linked to (source system, external id), if any.
    pub async fn patient_by_external_id(&self, ext: &ExternalId) -> Result<Option<String>, ApiError> {
        let row = sqlx::query("SELECT patient_id FROM external_ids WHERE source_system = $1 AND external_id = $2")
            .bind(&ext.source_system)
            .bind(&ext.external_id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(col::<String>(&r, "patient_id")?),
            None => None,
        })
    }

    /// Links further external ids to a patient, in one transaction, audited; one result each.
    pub async fn link_more_external_ids(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        ids: &[ExternalId],
    ) -> Result<Vec<Link>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.db.begin_write().await?;
        let mut out = Vec::with_capacity(ids.len());
        let mut linked = Vec::new();
        for ext in ids {
            let holder =
                sqlx::query("SELECT patient_id FROM external_ids WHERE source_system = $1 AND external_id = $2")
                    .bind(&ext.source_system)
                    .bind(&ext.external_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| col::<String>(&r, "patient_id"))
                    .transpose()?;
            match holder {
                Some(h) if h == patient_id => out.push(Link::Linked),
                Some(h) => out.push(Link::HeldBy(super::patients::name_of(&h))),
                None => {
                    self.link_external_id(&mut tx, ext, patient_id).await?;
                    linked.push(format!("{}:{}", ext.source_system, ext.external_id));
                    out.push(Link::Linked);
                }
            }
        }
        if !linked.is_empty() {
            let now = now_micros();
            let audit = AuditEntry::new(
                ctx,
                "patient.link_external_ids",
                &super::patients::name_of(patient_id),
                "",
                json!({ "linked": linked, "source": "fhir" }),
            );
            ledger::append(&mut tx, now, &[audit], &[]).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(out)
    }

    /// (display name, relationship) of a patient's related persons, to attach imported ones once.
    pub async fn related_keys(&self, patient_id: &str) -> Result<Vec<(String, String)>, ApiError> {
        let rows = sqlx::query("SELECT doc FROM related_persons WHERE patient_id = $1")
            .bind(patient_id)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let doc: Vec<u8> = col(r, "doc")?;
                let rp: hcrm_proto::patients::RelatedPerson = super::decode(&doc)?;
                Ok((rp.display_name, rp.relationship))
            })
            .collect()
    }
}
