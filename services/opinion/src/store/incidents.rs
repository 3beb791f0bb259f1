//! Incidents: opened from an alert, a story or by hand, worked through the workflow with notes,
//! linked to a patient and a complaint case, escalated to feedback through the event feed, and
//! answered publicly once a second person approved the reply.

use super::{Actor, Store, decode, etag};
use crate::domain::workflow;
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::ledger::NewEvent;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::opinion::{Incident, IncidentAction, IncidentNote, IncidentState, PublicReply, ReplyState};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

/// What escalation to feedback asks for.
#[derive(Debug, Clone, Default)]
pub struct CaseRequest {
    pub department: String,
    pub category: String,
    pub severity: String,
    pub description: String,
}

fn incident_of(row: &AnyRow) -> Result<Incident, ApiError> {
    let mut i: Incident = decode(&col::<Vec<u8>>(row, "body")?)?;
    i.name = format!("incidents/{}", col::<String>(row, "id")?);
    i.state = col::<i64>(row, "state")? as i32;
    i.owner = col(row, "owner")?;
    i.allowed_actions = workflow::allowed(IncidentState::try_from(i.state).unwrap_or_default())
        .into_iter()
        .map(|a| a as i32)
        .collect();
    i.create_time = Some(to_timestamp(col(row, "created_at")?));
    i.update_time = Some(to_timestamp(col(row, "updated_at")?));
    i.etag = etag(col(row, "version")?);
    Ok(i)
}

fn document(i: &Incident) -> Vec<u8> {
    Incident {
        name: String::new(),
        allowed_actions: vec![],
        create_time: None,
        update_time: None,
        etag: String::new(),
        ..i.clone()
    }
    .encode_to_vec()
}

fn note(actor: &Actor, text: String, now: i64) -> IncidentNote {
    IncidentNote {
        author: actor.subject().to_string(),
        text,
        create_time: Some(to_timestamp(now)),
    }
}

/// An event of an incident change: its type and what it adds to the incident's summary.
type Change = Option<(&'static str, serde_json::Value)>;

impl Store {
    pub async fn create_incident(
        &self,
        actor: &Actor,
        mut inc: Incident,
        owner: &str,
        key: Option<&str>,
    ) -> Result<Incident, ApiError> {
        let alert_id = inc.alert.strip_prefix("alerts/").unwrap_or_default().to_string();
        let story_id = inc.story.strip_prefix("stories/").unwrap_or_default().to_string();
        let mut tx = self.db.begin_write().await?;
        let id = hcrm_kit::new_id();
        let name = format!("incidents/{id}");
        if let Some(existing) = self.claim_request(&mut tx, key, &name).await? {
            drop(tx);
            return self.get_incident(existing.trim_start_matches("incidents/")).await;
        }
        if !alert_id.is_empty() {
            let alert = self.get_alert(&alert_id).await?;
            if !alert.incident.is_empty() {
                return Err(ApiError::AlreadyExists {
                    what: format!("an incident for {}", alert.name),
                    existing: alert.incident,
                });
            }
            if inc.story.is_empty() && !alert.story.is_empty() {
                inc.story = alert.story.clone();
            }
            if inc.title.is_empty() {
                inc.title = alert
                    .message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
            }
        }
        let story_id = if story_id.is_empty() {
            inc.story.strip_prefix("stories/").unwrap_or_default().to_string()
        } else {
            story_id
        };
        if !story_id.is_empty() {
            let story = self.get_story(&story_id).await?;
            if !story.incident.is_empty() && alert_id.is_empty() {
                return Err(ApiError::AlreadyExists {
                    what: format!("an incident for {}", story.name),
                    existing: story.incident,
                });
            }
            if inc.title.is_empty() {
                inc.title = story.title.chars().take(200).collect();
            }
        }
        if inc.title.is_empty() {
            return Err(ApiError::invalid(
                "incident.title",
                "is required when there is no alert or story",
            ));
        }
        let now = self.now();
        let owner = if owner.is_empty() { actor.subject() } else { owner };
        let stored = Incident {
            title: inc.title.clone(),
            description: inc.description.clone(),
            alert: inc.alert.clone(),
            story: inc.story.clone(),
            ..Default::default()
        };
        let inserted = sqlx::query(
            "INSERT INTO incidents (id, state, owner, alert_id, story_id, body, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(&id)
        .bind(IncidentState::Open as i64)
        .bind(owner)
        .bind(&alert_id)
        .bind(&story_id)
        .bind(document(&stored))
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if hcrm_kit::error::is_unique_violation(&err) => {
                return Err(ApiError::AlreadyExists {
                    what: format!("an incident for alerts/{alert_id}"),
                    existing: "another incident".into(),
                });
            }
            Err(err) => return Err(err.into()),
        }
        if !alert_id.is_empty() {
            sqlx::query("UPDATE alerts SET incident_id = $1 WHERE id = $2")
                .bind(&id)
                .bind(&alert_id)
                .execute(&mut *tx)
                .await?;
        }
        if !story_id.is_empty() {
            sqlx::query("UPDATE stories SET incident_id = $1 WHERE id = $2 AND incident_id = ''")
                .bind(&id)
                .bind(&story_id)
                .execute(&mut *tx)
                .await?;
        }
        let audit = actor.audit_entry(
            "incident.create",
            &name,
            "",
            json!({ "alert": inc.alert, "story": inc.story }),
        );
        let event = NewEvent {
            kind: "opinion.incident_opened",
            resource: name.clone(),
            payload: json!({ "incident": name, "title": inc.title, "owner": owner, "alert": inc.alert, "story": inc.story }),
        };
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_incident(&id).await
    }

    pub async fn get_incident(&self, id: &str) -> Result<Incident, ApiError> {
        let row = sqlx::query("SELECT * FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("incidents/{id}")))?;
        incident_of(&row)
    }

    /// Newest first; `after` is the (created_at, id) of the previous page's last.
    pub async fn list_incidents(
        &self,
        states: &[i32],
        owner: Option<&str>,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Incident>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM incidents WHERE 1 = 1");
        if !states.is_empty() {
            sql.push(" AND state IN (");
            for (i, s) in states.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Int(i64::from(*s)));
            }
            sql.push(")");
        }
        if let Some(owner) = owner {
            sql.push(" AND owner = ").bind(Value::Text(owner.to_string()));
        }
        if let Some((at, id)) = after {
            sql.push(" AND (created_at < ").bind(Value::Int(at));
            sql.push(" OR (created_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id));
            sql.push("))");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(incident_of).collect()
    }

    /// Reads the incident for update, checks the etag, applies `change`, writes it back with its
    /// audit entry and event in one transaction.
    async fn mutate<F>(
        &self,
        actor: &Actor,
        id: &str,
        expected: &str,
        action: &str,
        change: F,
    ) -> Result<Incident, ApiError>
    where
        F: FnOnce(&mut Incident, i64) -> Result<Change, ApiError>,
    {
        let resource = format!("incidents/{id}");
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let mut inc = incident_of(&self.locked(&mut tx, "incidents", &resource, id, expected).await?)?;
        let event = change(&mut inc, now)?;
        sqlx::query("UPDATE incidents SET state = $1, owner = $2, body = $3, version = version + 1, updated_at = $4 WHERE id = $5")
            .bind(i64::from(inc.state))
            .bind(&inc.owner)
            .bind(document(&inc))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audit = actor.audit_entry(action, &resource, "", json!({ "state": inc.state }));
        let events: Vec<NewEvent> = event
            .into_iter()
            .map(|(kind, payload)| NewEvent {
                kind,
                resource: resource.clone(),
                payload,
            })
            .collect();
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &events).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_incident(id).await
    }

    pub async fn transition_incident(
        &self,
        actor: &Actor,
        id: &str,
        action: IncidentAction,
        reason: &str,
        expected: &str,
    ) -> Result<Incident, ApiError> {
        self.mutate(actor, id, expected, "incident.transition", |inc, now| {
            let state = IncidentState::try_from(inc.state).unwrap_or_default();
            let Some(next) = workflow::next(state, action) else {
                let allowed: Vec<&str> = workflow::allowed(state).iter().map(|a| a.as_str_name()).collect();
                return Err(ApiError::FailedPrecondition(format!(
                    "{} is {}; {} is not allowed (allowed: {})",
                    inc.name,
                    state.as_str_name(),
                    action.as_str_name(),
                    if allowed.is_empty() {
                        "none".into()
                    } else {
                        allowed.join(", ")
                    }
                )));
            };
            inc.state = next as i32;
            if action == IncidentAction::Resolve {
                inc.resolution = reason.to_string();
            }
            let text = if reason.is_empty() {
                action.as_str_name().to_string()
            } else {
                format!("{}: {reason}", action.as_str_name())
            };
            inc.notes.push(note(actor, text, now));
            Ok(Some((
                "opinion.incident_changed",
                json!({ "incident": inc.name, "state": next.as_str_name(), "by": actor.subject(), "reason": reason }),
            )))
        })
        .await
    }

    pub async fn add_note(&self, actor: &Actor, id: &str, text: &str) -> Result<Incident, ApiError> {
        self.mutate(actor, id, "", "incident.note", |inc, now| {
            inc.notes.push(note(actor, text.to_string(), now));
            Ok(None)
        })
        .await
    }

    pub async fn update_links(
        &self,
        actor: &Actor,
        id: &str,
        owner: &str,
        patient: &str,
        case: &str,
        expected: &str,
    ) -> Result<Incident, ApiError> {
        self.mutate(actor, id, expected, "incident.links", |inc, now| {
            let mut changed = Vec::new();
            if !owner.is_empty() && owner != inc.owner {
                changed.push(format!("owner {} → {owner}", inc.owner));
                inc.owner = owner.to_string();
            }
            if !patient.is_empty() {
                changed.push(format!("patient {patient}"));
                inc.patient = patient.to_string();
            }
            if !case.is_empty() {
                changed.push(format!("case {case}"));
                inc.case = case.to_string();
            }
            inc.notes.push(note(actor, changed.join("; "), now));
            Ok(None)
        })
        .await
    }

    /// Asks feedback for a complaint case through the event feed, once.
    pub async fn escalate(
        &self,
        actor: &Actor,
        id: &str,
        request: CaseRequest,
        expected: &str,
    ) -> Result<Incident, ApiError> {
        let url = self.incident_url(id).await?;
        self.mutate(actor, id, expected, "incident.escalate", |inc, now| {
            if !inc.case.is_empty() || inc.case_request_time.is_some() {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} was escalated already{}",
                    inc.name,
                    if inc.case.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", inc.case)
                    }
                )));
            }
            if inc.state == IncidentState::Resolved as i32 {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} is resolved; reopen it first",
                    inc.name
                )));
            }
            inc.case_request_time = Some(to_timestamp(now));
            inc.notes.push(note(
                actor,
                format!("escalated to feedback ({})", request.department),
                now,
            ));
            let description = if request.description.is_empty() {
                inc.description.clone()
            } else {
                request.description.clone()
            };
            Ok(Some((
                "opinion.case_requested",
                json!({
                    "incident": inc.name, "title": inc.title, "description": description,
                    "department": request.department, "category": request.category, "severity": request.severity,
                    "patient": inc.patient, "url": url, "requested_by": actor.subject(),
                }),
            )))
        })
        .await
    }

    /// The URL of the post an incident is about (its story's first mention), for the case.
    async fn incident_url(&self, id: &str) -> Result<String, ApiError> {
        let inc = self.get_incident(id).await?;
        let Some(story) = inc.story.strip_prefix("stories/") else {
            return Ok(String::new());
        };
        let story = self.get_story(story).await?;
        let mention = story.first_mention.trim_start_matches("mentions/");
        Ok(self.get_mention(mention).await.map(|m| m.url).unwrap_or_default())
    }

    pub async fn draft_reply(&self, actor: &Actor, id: &str, text: &str, expected: &str) -> Result<Incident, ApiError> {
        self.mutate(actor, id, expected, "incident.reply_draft", |inc, now| {
            if inc.state == IncidentState::Resolved as i32 {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} is resolved; reopen it first",
                    inc.name
                )));
            }
            inc.reply = Some(PublicReply {
                text: text.to_string(),
                state: ReplyState::Draft as i32,
                drafted_by: actor.subject().to_string(),
                draft_time: Some(to_timestamp(now)),
                approved_by: String::new(),
                approve_time: None,
            });
            Ok(None)
        })
        .await
    }

    /// Approves the draft; `check` re-checks its text (the linked patient may have changed).
    pub async fn approve_reply<F>(
        &self,
        actor: &Actor,
        id: &str,
        expected: &str,
        check: F,
    ) -> Result<Incident, ApiError>
    where
        F: FnOnce(&str) -> Result<(), ApiError>,
    {
        self.mutate(actor, id, expected, "incident.reply_approve", |inc, now| {
            let Some(reply) = inc.reply.as_mut().filter(|r| r.state == ReplyState::Draft as i32) else {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} has no draft reply to approve",
                    inc.name
                )));
            };
            if reply.drafted_by == actor.subject() {
                return Err(ApiError::PermissionDenied(
                    "a reply needs a second person's approval; its author may not approve it".into(),
                ));
            }
            check(&reply.text)?;
            reply.state = ReplyState::Approved as i32;
            reply.approved_by = actor.subject().to_string();
            reply.approve_time = Some(to_timestamp(now));
            Ok(Some((
                "opinion.reply_approved",
                json!({ "incident": inc.name, "drafted_by": reply.drafted_by, "approved_by": reply.approved_by }),
            )))
        })
        .await
    }

    /// Links the case feedback opened for an incident (from the feedback feed).
    pub async fn link_case(&self, tx: &mut Tx, incident_id: &str, case: &str) -> Result<bool, ApiError> {
        let resource = format!("incidents/{incident_id}");
        let mut inc = match self
            .locked(tx, "incidents", &resource, incident_id, "")
            .await
            .and_then(|r| incident_of(&r))
        {
            Ok(inc) => inc,
            Err(ApiError::NotFound { .. }) => return Ok(false),
            Err(err) => return Err(err),
        };
        if !inc.case.is_empty() {
            return Ok(false);
        }
        inc.case = case.to_string();
        let now = self.now();
        inc.notes.push(IncidentNote {
            author: "service:opinion".into(),
            text: format!("feedback opened {case}"),
            create_time: Some(to_timestamp(now)),
        });
        sqlx::query("UPDATE incidents SET body = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(document(&inc))
            .bind(now)
            .bind(incident_id)
            .execute(&mut **tx)
            .await?;
        let audit = Actor::service().audit_entry("incident.case_linked", &inc.name, "", json!({ "case": case }));
        hcrm_kit::ledger::append(tx, now, &[audit], &[]).await?;
        Ok(true)
    }
}
