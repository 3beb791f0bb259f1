//! Questionnaires: an editable draft and its frozen published versions.

use super::cases::Actor;
use super::{Store, check_etag, decode, etag};
use hcrm_kit::ApiError;
use hcrm_kit::db::col;
use hcrm_kit::ledger::NewEvent;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::feedback::{Questionnaire, QuestionnaireState};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

/// The stored form of a questionnaire: content only.
fn document(q: &Questionnaire) -> Vec<u8> {
    let mut doc = q.clone();
    doc.name.clear();
    doc.version = 0;
    doc.state = 0;
    doc.create_time = None;
    doc.update_time = None;
    doc.etag.clear();
    doc.encode_to_vec()
}

impl Store {
    fn questionnaire_of(&self, row: &AnyRow, body: &[u8], version: i64) -> Result<Questionnaire, ApiError> {
        let id: String = col(row, "id")?;
        let latest: i64 = col(row, "latest_version")?;
        let mut q: Questionnaire = decode(body)?;
        q.name = format!("questionnaires/{id}");
        q.version = version as i32;
        q.state = if latest > 0 {
            QuestionnaireState::Published
        } else {
            QuestionnaireState::Draft
        } as i32;
        q.create_time = Some(to_timestamp(col(row, "created_at")?));
        q.update_time = Some(to_timestamp(col(row, "updated_at")?));
        q.etag = etag(col(row, "version")?);
        Ok(q)
    }

    pub async fn create_questionnaire(
        &self,
        actor: &Actor,
        q: Questionnaire,
        key: Option<&str>,
    ) -> Result<Questionnaire, ApiError> {
        let id = hcrm_kit::new_id();
        let name = format!("questionnaires/{id}");
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.claim_request(&mut tx, key, &name).await? {
            drop(tx);
            return self
                .get_questionnaire(super::parse_name("name", &existing, "questionnaires")?, 0)
                .await;
        }
        let now = self.now();
        sqlx::query(
            "INSERT INTO questionnaires (id, draft, latest_version, version, created_at, updated_at) VALUES ($1, $2, 0, 1, $3, $3)",
        )
        .bind(&id)
        .bind(document(&q))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let audit = actor.audit_entry("questionnaire.create", &name, "", json!({}));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_questionnaire(&id, 0).await
    }

    /// The draft (`version` 0, reporting the latest published version) or a published version.
    pub async fn get_questionnaire(&self, id: &str, version: i64) -> Result<Questionnaire, ApiError> {
        let row = sqlx::query("SELECT * FROM questionnaires WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("questionnaires/{id}")))?;
        if version == 0 {
            let latest: i64 = col(&row, "latest_version")?;
            return self.questionnaire_of(&row, &col::<Vec<u8>>(&row, "draft")?, latest);
        }
        let body = self.questionnaire_version(id, version).await?;
        self.questionnaire_of(&row, &body, version)
    }

    /// The frozen content of a published version.
    pub async fn questionnaire_version(&self, id: &str, version: i64) -> Result<Vec<u8>, ApiError> {
        let row = sqlx::query("SELECT body FROM questionnaire_versions WHERE questionnaire_id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("questionnaires/{id} version {version}")))?;
        Ok(col(&row, "body")?)
    }

    pub async fn list_questionnaires(&self, after: &str, limit: usize) -> Result<Vec<Questionnaire>, ApiError> {
        let rows = sqlx::query("SELECT * FROM questionnaires WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| self.questionnaire_of(r, &col::<Vec<u8>>(r, "draft")?, col(r, "latest_version")?))
            .collect()
    }

    pub async fn update_questionnaire(
        &self,
        actor: &Actor,
        id: &str,
        q: Questionnaire,
        expected: &str,
    ) -> Result<Questionnaire, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT version FROM questionnaires WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("questionnaires/{id}")))?;
        let version: i64 = col(&row, "version")?;
        check_etag(&format!("questionnaires/{id}"), expected, version)?;
        let now = self.now();
        sqlx::query("UPDATE questionnaires SET draft = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(document(&q))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audit = actor.audit_entry("questionnaire.update", &format!("questionnaires/{id}"), "", json!({}));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_questionnaire(id, 0).await
    }

    /// Freezes the draft as the next version.
    pub async fn publish_questionnaire(
        &self,
        actor: &Actor,
        id: &str,
        expected: &str,
    ) -> Result<Questionnaire, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT * FROM questionnaires WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("questionnaires/{id}")))?;
        let version: i64 = col(&row, "version")?;
        let name = format!("questionnaires/{id}");
        check_etag(&name, expected, version)?;
        let draft: Vec<u8> = col(&row, "draft")?;
        let next = col::<i64>(&row, "latest_version")? + 1;
        // Publishing an unchanged draft again would make two identical versions.
        let previous =
            sqlx::query("SELECT body FROM questionnaire_versions WHERE questionnaire_id = $1 AND version = $2")
                .bind(id)
                .bind(next - 1)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| col::<Vec<u8>>(&r, "body"))
                .transpose()?;
        if previous.as_deref() == Some(draft.as_slice()) {
            return Err(ApiError::FailedPrecondition(format!(
                "the draft is the same as version {}; change it before publishing again",
                next - 1
            )));
        }
        let now = self.now();
        sqlx::query(
            "INSERT INTO questionnaire_versions (questionnaire_id, version, body, published_by, published_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(next)
        .bind(&draft)
        .bind(&actor.principal.subject)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE questionnaires SET latest_version = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(next)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audit = actor.audit_entry("questionnaire.publish", &name, "", json!({ "version": next }));
        let event = NewEvent {
            kind: "feedback.questionnaire_published",
            resource: name.clone(),
            payload: json!({ "questionnaire": name, "version": next }),
        };
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_questionnaire(id, next).await
    }
}
