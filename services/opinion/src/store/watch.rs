//! The watch list and the alert rules. Every change to the list bumps `watch_revision` in the
//! same transaction, so matchers everywhere rebuild before their next batch.

use super::{Actor, Store, decode, etag, taken};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Tx, col};
use hcrm_kit::time::to_timestamp;
use hcrm_proto::opinion::{AlertRule, Entity};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

fn entity_of(row: &AnyRow) -> Result<Entity, ApiError> {
    let mut e: Entity = decode(&col::<Vec<u8>>(row, "body")?)?;
    let id: String = col(row, "id")?;
    e.name = format!("entities/{id}");
    e.archived = col::<i64>(row, "archived")? != 0;
    e.create_time = Some(to_timestamp(col(row, "created_at")?));
    e.update_time = Some(to_timestamp(col(row, "updated_at")?));
    e.etag = etag(col(row, "version")?);
    Ok(e)
}

/// What is stored of an entity: the fields the caller sets.
fn entity_document(e: &Entity) -> Vec<u8> {
    Entity {
        kind: e.kind,
        display_name: e.display_name.clone(),
        terms: e.terms.clone(),
        department: e.department.clone(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn rule_of(row: &AnyRow) -> Result<AlertRule, ApiError> {
    let mut r: AlertRule = decode(&col::<Vec<u8>>(row, "body")?)?;
    r.name = format!("alert-rules/{}", col::<String>(row, "id")?);
    r.entity = format!("entities/{}", col::<String>(row, "entity_id")?);
    r.enabled = col::<i64>(row, "enabled")? != 0;
    r.create_time = Some(to_timestamp(col(row, "created_at")?));
    r.update_time = Some(to_timestamp(col(row, "updated_at")?));
    r.etag = etag(col(row, "version")?);
    Ok(r)
}

fn rule_document(r: &AlertRule) -> Vec<u8> {
    AlertRule {
        kind: r.kind,
        threshold: r.threshold,
        window_minutes: r.window_minutes,
        burst_factor: r.burst_factor,
        baseline_windows: r.baseline_windows,
        notify: r.notify.clone(),
        ..Default::default()
    }
    .encode_to_vec()
}

impl Store {
    async fn bump_watch(&self, tx: &mut Tx) -> Result<(), ApiError> {
        sqlx::query("UPDATE watch_revision SET revision = revision + 1 WHERE id = 1")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn name_taken(&self, tx: &mut Tx, display_name: &str, except: &str) -> Result<Option<String>, ApiError> {
        let row = sqlx::query("SELECT id FROM entities WHERE display_name = $1 AND archived = 0 AND id <> $2")
            .bind(display_name)
            .bind(except)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row.map(|r| col::<String>(&r, "id")).transpose()?)
    }

    pub async fn create_entity(&self, actor: &Actor, e: Entity) -> Result<Entity, ApiError> {
        let id = hcrm_kit::new_id();
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.name_taken(&mut tx, &e.display_name, "").await? {
            return Err(ApiError::AlreadyExists {
                what: format!("an entity named {}", e.display_name),
                existing: format!("entities/{existing}"),
            });
        }
        sqlx::query(
            "INSERT INTO entities (id, kind, display_name, archived, body, version, created_at, updated_at)
             VALUES ($1, $2, $3, 0, $4, 1, $5, $5)",
        )
        .bind(&id)
        .bind(i64::from(e.kind))
        .bind(&e.display_name)
        .bind(entity_document(&e))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|err| taken(err, || format!("an entity named {}", e.display_name)))?;
        self.bump_watch(&mut tx).await?;
        let audit = actor.audit_entry(
            "entity.create",
            &format!("entities/{id}"),
            "",
            json!({ "terms": e.terms.len() }),
        );
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_entity(&id).await
    }

    pub async fn get_entity(&self, id: &str) -> Result<Entity, ApiError> {
        let row = sqlx::query("SELECT * FROM entities WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("entities/{id}")))?;
        entity_of(&row)
    }

    pub async fn list_entities(
        &self,
        kind: i32,
        include_archived: bool,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Entity>, ApiError> {
        let rows = sqlx::query(
            "SELECT * FROM entities WHERE id > $1 AND ($2 = 0 OR kind = $3) AND ($4 = 1 OR archived = 0)
             ORDER BY id LIMIT $5",
        )
        .bind(after)
        .bind(i64::from(kind))
        .bind(i64::from(kind))
        .bind(i64::from(include_archived))
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(entity_of).collect()
    }

    /// Replaces an entity's fields; archived entities stay archived.
    pub async fn update_entity(&self, actor: &Actor, id: &str, e: Entity) -> Result<Entity, ApiError> {
        let resource = format!("entities/{id}");
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let row = self.locked(&mut tx, "entities", &resource, id, &e.etag).await?;
        if col::<i64>(&row, "archived")? != 0 {
            return Err(ApiError::FailedPrecondition(format!("{resource} is archived")));
        }
        if let Some(existing) = self.name_taken(&mut tx, &e.display_name, id).await? {
            return Err(ApiError::AlreadyExists {
                what: format!("an entity named {}", e.display_name),
                existing: format!("entities/{existing}"),
            });
        }
        sqlx::query(
            "UPDATE entities SET kind = $1, display_name = $2, body = $3, version = version + 1, updated_at = $4
             WHERE id = $5",
        )
        .bind(i64::from(e.kind))
        .bind(&e.display_name)
        .bind(entity_document(&e))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|err| taken(err, || format!("an entity named {}", e.display_name)))?;
        self.bump_watch(&mut tx).await?;
        let audit = actor.audit_entry("entity.update", &resource, "", json!({ "terms": e.terms.len() }));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_entity(id).await
    }

    pub async fn archive_entity(&self, actor: &Actor, id: &str, expected: &str) -> Result<Entity, ApiError> {
        let resource = format!("entities/{id}");
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        self.locked(&mut tx, "entities", &resource, id, expected).await?;
        sqlx::query("UPDATE entities SET archived = 1, version = version + 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE alert_rules SET enabled = 0, version = version + 1, updated_at = $1 WHERE entity_id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.bump_watch(&mut tx).await?;
        let audit = actor.audit_entry("entity.archive", &resource, "", json!({}));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_entity(id).await
    }

    /// (id, terms) of every entity mentions may match.
    pub async fn active_entity_terms(&self) -> Result<Vec<(String, Vec<String>)>, ApiError> {
        let rows = sqlx::query("SELECT * FROM entities WHERE archived = 0 ORDER BY id")
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let e = entity_of(r)?;
                Ok((col::<String>(r, "id")?, e.terms))
            })
            .collect()
    }

    /// The display names of entities by id, for events and messages.
    pub async fn entity_name(&self, id: &str) -> Result<String, ApiError> {
        Ok(self.get_entity(id).await?.display_name)
    }

    pub async fn create_rule(
        &self,
        actor: &Actor,
        entity_id: &str,
        r: AlertRule,
        key: Option<&str>,
    ) -> Result<AlertRule, ApiError> {
        let entity = self.get_entity(entity_id).await?;
        if entity.archived {
            return Err(ApiError::FailedPrecondition(format!("{} is archived", entity.name)));
        }
        let id = hcrm_kit::new_id();
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.claim_request(&mut tx, key, &format!("alert-rules/{id}")).await? {
            drop(tx);
            return self.get_rule(existing.trim_start_matches("alert-rules/")).await;
        }
        sqlx::query(
            "INSERT INTO alert_rules (id, entity_id, enabled, body, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(&id)
        .bind(entity_id)
        .bind(i64::from(r.enabled))
        .bind(rule_document(&r))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let audit = actor.audit_entry(
            "alert_rule.create",
            &format!("alert-rules/{id}"),
            "",
            json!({ "entity": entity.name }),
        );
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_rule(&id).await
    }

    pub async fn get_rule(&self, id: &str) -> Result<AlertRule, ApiError> {
        let row = sqlx::query("SELECT * FROM alert_rules WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("alert-rules/{id}")))?;
        rule_of(&row)
    }

    pub async fn list_rules(&self, entity_id: &str, after: &str, limit: usize) -> Result<Vec<AlertRule>, ApiError> {
        let rows =
            sqlx::query("SELECT * FROM alert_rules WHERE id > $1 AND ($2 = '' OR entity_id = $3) ORDER BY id LIMIT $4")
                .bind(after)
                .bind(entity_id)
                .bind(entity_id)
                .bind(limit as i64)
                .fetch_all(&self.db.pool)
                .await?;
        rows.iter().map(rule_of).collect()
    }

    /// Rules to evaluate, with their entity ids.
    pub async fn enabled_rules(&self) -> Result<Vec<(String, String, AlertRule)>, ApiError> {
        let rows = sqlx::query("SELECT * FROM alert_rules WHERE enabled = 1 ORDER BY id")
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((col::<String>(r, "id")?, col::<String>(r, "entity_id")?, rule_of(r)?)))
            .collect()
    }

    pub async fn update_rule(&self, actor: &Actor, id: &str, r: AlertRule) -> Result<AlertRule, ApiError> {
        let resource = format!("alert-rules/{id}");
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        self.locked(&mut tx, "alert_rules", &resource, id, &r.etag).await?;
        sqlx::query(
            "UPDATE alert_rules SET enabled = $1, body = $2, version = version + 1, updated_at = $3 WHERE id = $4",
        )
        .bind(i64::from(r.enabled))
        .bind(rule_document(&r))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audit = actor.audit_entry("alert_rule.update", &resource, "", json!({}));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_rule(id).await
    }

    /// Deletes a rule; the alerts it raised stay.
    pub async fn delete_rule(&self, actor: &Actor, id: &str, expected: &str) -> Result<(), ApiError> {
        let resource = format!("alert-rules/{id}");
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        self.locked(&mut tx, "alert_rules", &resource, id, expected).await?;
        sqlx::query("DELETE FROM alert_rules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audit = actor.audit_entry("alert_rule.delete", &resource, "", json!({}));
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        Ok(())
    }
}
