//! Templates and their frozen versions.

use super::{Store, check_etag, decode, etag};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Tx, col};
use hcrm_kit::ledger::{AuditEntry, NewEvent};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::followup::{Template, TemplateState};
use prost::Message;
use serde_json::json;

/// The etag of a template: its version and state (archiving makes no new version).
fn template_etag(version: i64, state: &str) -> String {
    etag(version * 2 + i64::from(state == "archived"))
}

fn state_of(state: &str) -> TemplateState {
    if state == "archived" {
        TemplateState::Archived
    } else {
        TemplateState::Active
    }
}

impl Store {
    /// Creates a template at version 1 (content already validated).
    pub async fn create_template(
        &self,
        ctx: &RequestContext,
        mut t: Template,
        key: Option<&str>,
    ) -> Result<Template, ApiError> {
        let id = hcrm_kit::new_id();
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.claim_request(&mut tx, key, &format!("templates/{id}")).await? {
            drop(tx);
            return self
                .get_template(super::parse_name("name", &existing, "templates")?, 0)
                .await;
        }
        let now = self.now();
        let on_discharge = t.applies_to.as_ref().is_some_and(|a| a.on_discharge);
        sqlx::query(
            "INSERT INTO templates (id, version, state, display_name, on_discharge, created_at, updated_at) \
             VALUES ($1, 1, 'active', $2, $3, $4, $4)",
        )
        .bind(&id)
        .bind(&t.display_name)
        .bind(i64::from(on_discharge))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        t.name = format!("templates/{id}");
        t.version = 1;
        self.insert_version(&mut tx, &id, 1, &t, &ctx.principal.subject, now)
            .await?;
        let audit = AuditEntry::new(ctx, "template.create", &t.name, "", json!({ "version": 1 }));
        let event = NewEvent {
            kind: "template.published",
            resource: t.name.clone(),
            payload: json!({ "template": t.name, "version": 1 }),
        };
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_template(&id, 1).await
    }

    async fn insert_version(
        &self,
        tx: &mut Tx,
        id: &str,
        version: i64,
        t: &Template,
        by: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut body = t.clone();
        body.state = 0;
        body.etag.clear();
        body.create_time = None;
        body.update_time = None;
        sqlx::query(
            "INSERT INTO template_versions (template_id, version, body, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(version)
        .bind(body.encode_to_vec())
        .bind(by)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// A template at `version` (0: the latest).
    pub async fn get_template(&self, id: &str, version: i64) -> Result<Template, ApiError> {
        let not_found = || ApiError::not_found(format!("templates/{id}"));
        let head = sqlx::query("SELECT version, state, created_at, updated_at FROM templates WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(not_found)?;
        let latest: i64 = col(&head, "version")?;
        let state: String = col(&head, "state")?;
        let wanted = if version == 0 { latest } else { version };
        let row = sqlx::query("SELECT body, created_at FROM template_versions WHERE template_id = $1 AND version = $2")
            .bind(id)
            .bind(wanted)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("templates/{id} version {wanted}")))?;
        let mut t: Template = decode(&col::<Vec<u8>>(&row, "body")?)?;
        t.state = state_of(&state) as i32;
        t.etag = template_etag(latest, &state);
        t.create_time = Some(to_timestamp(col(&head, "created_at")?));
        t.update_time = Some(to_timestamp(col(&row, "created_at")?));
        Ok(t)
    }

    /// Latest versions, by id (creation order), after `after`.
    pub async fn list_templates(
        &self,
        show_archived: bool,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Template>, ApiError> {
        let rows =
            sqlx::query("SELECT id FROM templates WHERE id > $1 AND (state = 'active' OR $2 = 1) ORDER BY id LIMIT $3")
                .bind(after)
                .bind(i64::from(show_archived))
                .bind(limit as i64)
                .fetch_all(&self.db.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.get_template(&col::<String>(&row, "id")?, 0).await?);
        }
        Ok(out)
    }

    /// Publishes a new version of `t.name` (content validated); plans keep theirs.
    pub async fn revise_template(
        &self,
        ctx: &RequestContext,
        id: &str,
        mut t: Template,
        reason: &str,
    ) -> Result<Template, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT version, state FROM templates WHERE id = $1{}",
            self.for_update()
        );
        let head = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("templates/{id}")))?;
        let (version, state): (i64, String) = (col(&head, "version")?, col(&head, "state")?);
        let name = format!("templates/{id}");
        check_etag(&name, &t.etag, version * 2 + i64::from(state == "archived"))?;
        if state == "archived" {
            return Err(ApiError::FailedPrecondition(format!(
                "{name} is archived; create a new template"
            )));
        }
        let now = self.now();
        let next = version + 1;
        t.name = name.clone();
        t.version = next as i32;
        self.insert_version(&mut tx, id, next, &t, &ctx.principal.subject, now)
            .await?;
        let on_discharge = t.applies_to.as_ref().is_some_and(|a| a.on_discharge);
        sqlx::query(
            "UPDATE templates SET version = $1, display_name = $2, on_discharge = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(next)
        .bind(&t.display_name)
        .bind(i64::from(on_discharge))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audit = AuditEntry::new(ctx, "template.revise", &name, reason, json!({ "version": next }));
        let event = NewEvent {
            kind: "template.published",
            resource: name.clone(),
            payload: json!({ "template": name, "version": next }),
        };
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_template(id, next).await
    }

    /// Stops a template from making new plans.
    pub async fn archive_template(
        &self,
        ctx: &RequestContext,
        id: &str,
        expected: &str,
        reason: &str,
    ) -> Result<Template, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT version, state FROM templates WHERE id = $1{}",
            self.for_update()
        );
        let head = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("templates/{id}")))?;
        let (version, state): (i64, String) = (col(&head, "version")?, col(&head, "state")?);
        let name = format!("templates/{id}");
        check_etag(&name, expected, version * 2 + i64::from(state == "archived"))?;
        if state != "archived" {
            let now = self.now();
            sqlx::query("UPDATE templates SET state = 'archived', updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let audit = AuditEntry::new(ctx, "template.archive", &name, reason, json!({}));
            hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        }
        tx.commit().await?;
        self.committed(false);
        self.get_template(id, 0).await
    }

    /// Installs the built-in templates (hypertension first) unless they exist; staff revise or
    /// archive them like any other. Safe when several replicas start at once.
    pub async fn ensure_builtin_templates(&self) -> Result<(), ApiError> {
        for (id, t) in builtin_templates() {
            let now = self.now();
            let mut tx = self.db.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO templates (id, version, state, display_name, on_discharge, created_at, updated_at) \
                 VALUES ($1, 1, 'active', $2, 0, $3, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(&t.display_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                self.insert_version(&mut tx, id, 1, &t, "hcrm", now).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Active templates that a discharge triggers, latest versions.
    pub async fn discharge_templates(&self) -> Result<Vec<Template>, ApiError> {
        let rows = sqlx::query("SELECT id FROM templates WHERE on_discharge = 1 AND state = 'active' ORDER BY id")
            .fetch_all(&self.db.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.get_template(&col::<String>(&row, "id")?, 0).await?);
        }
        Ok(out)
    }
}

/// Templates every installation starts with: `(id, template)`.
pub fn builtin_templates() -> Vec<(&'static str, Template)> {
    use hcrm_proto::followup::{Channel, Question, TemplateKind};
    vec![(
        "builtin-hypertension",
        Template {
            name: "templates/builtin-hypertension".into(),
            version: 1,
            display_name: "高血压慢病管理 / Hypertension".into(),
            description: "血压控制在 140/90 以下连续 3 次转为稳定期（每周随访），再连续 8 次转为维持期（每月随访）；\
                          任何一次未控制即回到早期（每周两次）并提醒责任医生。"
                .into(),
            kind: TemplateKind::Chronic as i32,
            default_channel: Channel::Phone as i32,
            questions: vec![
                Question {
                    key: "medication".into(),
                    text: "是否按时服用降压药？".into(),
                },
                Question {
                    key: "symptoms".into(),
                    text: "近期有无头晕、头痛、胸闷？".into(),
                },
            ],
            chronic: Some(crate::domain::chronic::hypertension()),
            ..Default::default()
        },
    )]
}

#[cfg(test)]
mod tests {
    #[test]
    fn built_in_templates_pass_the_checks_staff_templates_do() {
        for (id, t) in super::builtin_templates() {
            let mut v = hcrm_kit::validate::Violations::new();
            crate::domain::template::check(&t, &mut v);
            assert!(v.is_empty(), "{id}: {v:?}");
            assert_eq!(t.name, format!("templates/{id}"));
        }
    }
}
