//! Invitations: single-use, unguessable tokens for the public survey page. A token is derived
//! from the invitation id with a server key (HMAC), so it can be put in the link when the
//! message is sent but is never stored: the table keeps its SHA-256 only.

use super::Store;
use super::cases::Actor;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::ledger::NewEvent;
use hcrm_kit::outbox::NewDelivery;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::feedback::{Invitation, InvitationState};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;

/// Longest accepted token (what a link could carry); anything longer is not ours.
pub const MAX_TOKEN_LEN: usize = 64;

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What CreateInvitations asks for (validated).
#[derive(Debug, Clone)]
pub struct NewInvitations {
    pub questionnaire_id: String,
    pub patient_ids: Vec<String>,
    pub department: String,
    pub expire_days: i32,
    pub send: bool,
    /// Retry key: with it, ids derive from it and the patient, so a retry finds the same rows.
    pub key: Option<String>,
}

impl Store {
    /// The token of an invitation: 128 bits of HMAC-SHA256 over its id, URL-safe.
    pub fn token_of(&self, invitation_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.token_key).expect("hmac accepts any key size");
        mac.update(b"invitation\0");
        mac.update(invitation_id.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    pub fn link_of(&self, token: &str) -> String {
        format!("{}{token}", self.rules.survey_base_url)
    }

    fn invitation_of(&self, r: &AnyRow) -> Result<Invitation, ApiError> {
        let answered = col::<i64>(r, "answered")? == 1;
        let expires: i64 = col(r, "expires_at")?;
        let state = if answered {
            InvitationState::Answered
        } else if expires <= self.now() {
            InvitationState::Expired
        } else {
            InvitationState::Open
        };
        Ok(Invitation {
            name: format!("invitations/{}", col::<String>(r, "id")?),
            questionnaire: format!("questionnaires/{}", col::<String>(r, "questionnaire_id")?),
            version: col::<i64>(r, "version")? as i32,
            patient: format!("patients/{}", col::<String>(r, "patient_id")?),
            department: col(r, "department")?,
            token: String::new(),
            link: String::new(),
            state: state as i32,
            reminded: col::<i64>(r, "reminded")? == 1,
            expire_time: Some(to_timestamp(expires)),
            create_time: Some(to_timestamp(col(r, "created_at")?)),
        })
    }

    /// Creates invitations to the latest published version (one per patient, in order).
    pub async fn create_invitations(&self, actor: &Actor, n: NewInvitations) -> Result<Vec<Invitation>, ApiError> {
        let head = sqlx::query("SELECT latest_version FROM questionnaires WHERE id = $1")
            .bind(&n.questionnaire_id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("questionnaires/{}", n.questionnaire_id)))?;
        let version: i64 = col(&head, "latest_version")?;
        if version == 0 {
            return Err(ApiError::FailedPrecondition(
                "the questionnaire has no published version; publish it first".into(),
            ));
        }
        let now = self.now();
        let days = if n.expire_days > 0 {
            n.expire_days
        } else {
            self.rules.invitation_days
        };
        let expires = now + days as i64 * 86_400_000_000;
        let ids: Vec<String> = n
            .patient_ids
            .iter()
            .map(|p| match &n.key {
                Some(key) => hex::encode(&Sha256::digest(format!("{key}\u{1f}{p}").as_bytes())[..16]),
                None => hcrm_kit::new_id(),
            })
            .collect();
        let mut tx = self.db.begin_write().await?;
        let mut created = 0;
        for (id, patient) in ids.iter().zip(&n.patient_ids) {
            let token = self.token_of(id);
            let inserted = sqlx::query(
                "INSERT INTO invitations (id, token_hash, questionnaire_id, version, patient_id, department, sent, answered, \
                 reminded, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $9) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(token_hash(&token))
            .bind(&n.questionnaire_id)
            .bind(version)
            .bind(patient)
            .bind(&n.department)
            .bind(i64::from(n.send))
            .bind(expires)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                continue;
            }
            created += 1;
            if n.send {
                self.outbox
                    .enqueue(
                        &mut tx,
                        NewDelivery {
                            id: format!("invitation-{id}"),
                            kind: "feedback.invitation",
                            recipient: format!("patients/{patient}"),
                            department: n.department.clone(),
                            reference: format!("invitations/{id}"),
                            message: json!({ "invitation": id }),
                            not_before: now,
                            source_at: None,
                        },
                    )
                    .await?;
            }
        }
        if created > 0 {
            let name = format!("questionnaires/{}", n.questionnaire_id);
            let audit = actor.audit_entry(
                "invitation.create",
                &name,
                "",
                json!({ "count": created, "version": version, "department": n.department, "send": n.send }),
            );
            let event = NewEvent {
                kind: "feedback.invitations_created",
                resource: name.clone(),
                payload: json!({ "questionnaire": name, "version": version, "count": created, "department": n.department }),
            };
            hcrm_kit::ledger::append(&mut tx, now, &[audit], &[event]).await?;
        }
        tx.commit().await?;
        self.committed(n.send && created > 0);
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut sql = Sql::new("SELECT * FROM invitations WHERE id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Text(id.clone()));
            }
            sql.push(")");
            let rows = sql.query().fetch_all(&self.db.pool).await?;
            let mut found: std::collections::HashMap<String, Invitation> = std::collections::HashMap::new();
            for r in &rows {
                found.insert(col(r, "id")?, self.invitation_of(r)?);
            }
            for id in chunk {
                let mut inv = found
                    .remove(id)
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("invitation {id} vanished")))?;
                inv.token = self.token_of(id);
                inv.link = self.link_of(&inv.token);
                out.push(inv);
            }
        }
        Ok(out)
    }

    /// Invitations of a questionnaire, newest first, after `before` (created_at, id).
    pub async fn list_invitations(
        &self,
        questionnaire_id: &str,
        state: InvitationState,
        department: Option<&str>,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(Invitation, i64)>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM invitations WHERE questionnaire_id = ");
        sql.bind(Value::Text(questionnaire_id.into()));
        if let Some(d) = department {
            sql.push(" AND department = ").bind(Value::Text(d.into()));
        }
        match state {
            InvitationState::Answered => {
                sql.push(" AND answered = 1");
            }
            InvitationState::Open => {
                sql.push(" AND answered = 0 AND expires_at > ")
                    .bind(Value::Int(self.now()));
            }
            InvitationState::Expired => {
                sql.push(" AND answered = 0 AND expires_at <= ")
                    .bind(Value::Int(self.now()));
            }
            InvitationState::Unspecified => {}
        }
        if let Some((at, id)) = before {
            sql.push(" AND (created_at < ").bind(Value::Int(at));
            sql.push(" OR (created_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| Ok((self.invitation_of(r)?, col(r, "created_at")?)))
            .collect()
    }

    /// The invitation of a token, if it can still be answered: an unknown token is NOT_FOUND
    /// (a forged one looks the same), a used or expired one FAILED_PRECONDITION.
    pub fn usable(&self, row: Option<AnyRow>) -> Result<AnyRow, ApiError> {
        let row = row.ok_or_else(|| ApiError::not_found("invitation"))?;
        if col::<i64>(&row, "answered")? == 1 {
            return Err(ApiError::FailedPrecondition(
                "this invitation has already been answered".into(),
            ));
        }
        if col::<i64>(&row, "expires_at")? <= self.now() {
            return Err(ApiError::FailedPrecondition("this invitation has expired".into()));
        }
        Ok(row)
    }

    /// What the patient's page shows for a token: (invitation, questionnaire version body).
    pub async fn open_invitation(&self, token: &str) -> Result<(Invitation, Vec<u8>), ApiError> {
        let row = sqlx::query("SELECT * FROM invitations WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(&self.db.pool)
            .await?;
        let row = self.usable(row)?;
        let inv = self.invitation_of(&row)?;
        let body = self
            .questionnaire_version(&col::<String>(&row, "questionnaire_id")?, col(&row, "version")?)
            .await?;
        Ok((inv, body))
    }

    /// Whether an invitation was answered; `None` when there is no such invitation.
    pub async fn invitation_answered(&self, id: &str) -> Result<Option<bool>, ApiError> {
        let row = sqlx::query("SELECT answered FROM invitations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.map(|r| col::<i64>(&r, "answered")).transpose()?.map(|a| a == 1))
    }

    /// Queues the one reminder of sent invitations still unanswered after the configured days.
    pub async fn remind_non_responders(&self) -> Result<u64, ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let queued = sqlx::query(
            "INSERT INTO deliveries (id, kind, recipient, department, ref, message, state, attempts, next_attempt_at, \
             lease_owner, lease_until, last_error, source_at, delivered_at, created_at) \
             SELECT 'reminder-' || id, 'feedback.invitation_reminder', 'patients/' || patient_id, department, \
             'invitations/' || id, '{\"invitation\":\"' || id || '\"}', 'pending', 0, $1, '', 0, '', NULL, NULL, $1 \
             FROM invitations WHERE sent = 1 AND answered = 0 AND reminded = 0 AND created_at <= $2 AND expires_at > $1 \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .bind(now - self.rules.remind_after_micros)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE invitations SET reminded = 1 WHERE sent = 1 AND answered = 0 AND reminded = 0 AND created_at <= $2 AND expires_at > $1",
        )
        .bind(now)
        .bind(now - self.rules.remind_after_micros)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if queued > 0 {
            self.outbox.wake();
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::token_hash;

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(token_hash("abc").len(), 64);
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }
}
