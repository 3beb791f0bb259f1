//! Cases: intake, the workflow, hand-over, duplicates, history. The case document is stored
//! whole (`body`); the columns beside it are what lists, deadlines and reports filter on, and
//! are written from the document in the same statement.

use super::{Store, check_etag, decode, etag};
use crate::domain::sla;
use crate::domain::workflow::{self, action_name, allowed, is_open};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Principal;
use hcrm_kit::crypto::mask;
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::ledger::{AuditEntry, NewEvent};
use hcrm_kit::outbox::NewDelivery;
use hcrm_kit::time::{rfc3339, to_timestamp};
use hcrm_proto::feedback::{
    Case, CaseAction, CaseHistoryEntry, CaseKind, CaseState, Confirmation, ConfirmationSource, CorrectiveAction, Reply,
    Resolution, Severity, SlaState,
};
use prost::Message;
use rand::Rng;
use serde_json::json;
use sqlx::any::AnyRow;

/// Who acts, for the history and the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub request_id: String,
}

impl Actor {
    /// This service acting on its own (feed consumer, jobs).
    pub fn service() -> Self {
        Self {
            principal: Principal {
                subject: "service:feedback".into(),
                roles: vec![],
                department: None,
            },
            request_id: String::new(),
        }
    }

    pub fn audit_entry(&self, action: &str, resource: &str, reason: &str, detail: serde_json::Value) -> AuditEntry {
        AuditEntry::by(&self.principal, &self.request_id, action, resource, reason, detail)
    }
}

/// A step of the workflow with what it carries (already validated for shape).
#[derive(Debug, Clone, Default)]
pub struct Transition {
    pub action: CaseAction,
    pub reason: String,
    pub assignee: String,
    pub root_cause: String,
    pub corrective_actions: Vec<CorrectiveAction>,
    pub reply: Option<Reply>,
    pub confirmation: Option<Confirmation>,
    pub etag: String,
}

/// Filters of a case list.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    pub states: Vec<CaseState>,
    pub department: Option<String>,
    pub owner: String,
    pub patient_id: String,
    pub kind: CaseKind,
    pub sla_state: SlaState,
    pub open_only: bool,
}

/// A short confirmation number: 8 characters without look-alikes (no 0/O, 1/I/L).
fn new_number() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    let chars: String = (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

fn kind_label(kind: CaseKind) -> &'static str {
    match kind {
        CaseKind::Complaint => "投诉 complaint",
        CaseKind::Suggestion => "建议 suggestion",
        CaseKind::Praise => "表扬 praise",
        CaseKind::Unspecified => "case",
    }
}

impl Store {
    fn sla_clock(&self, row: &AnyRow) -> Result<sla::Clock, ApiError> {
        Ok(sla::Clock {
            now: self.now(),
            open: col::<i64>(row, "is_open")? == 1,
            response_due: col(row, "response_due")?,
            resolution_due: col(row, "resolution_due")?,
            first_response_at: col(row, "first_response_at")?,
            closed_at: col(row, "closed_at")?,
        })
    }

    /// A case as callers see it: the document plus what is computed now.
    fn case_of(&self, row: &AnyRow) -> Result<Case, ApiError> {
        self.case_with_contact(row, false)
    }

    /// A case with the complainant's contact masked, or in clear when `full`.
    fn case_with_contact(&self, row: &AnyRow, full: bool) -> Result<Case, ApiError> {
        let mut c: Case = decode(&col::<Vec<u8>>(row, "body")?)?;
        let sealed: String = col(row, "contact_sealed")?;
        if !sealed.is_empty() {
            let id: String = col(row, "id")?;
            let plain = self.sealer.open(&sealed, id.as_bytes()).map_err(ApiError::internal)?;
            let contact: serde_json::Value = serde_json::from_slice(&plain).map_err(ApiError::internal)?;
            let text = |k: &str| contact.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
            let (name, phone) = (text("name"), text("phone"));
            c.contact_name = if full { name } else { mask(&name, 1, 0) };
            c.contact_phone = if full { phone } else { mask(&phone, 3, 4) };
        }
        let kind = CaseKind::try_from(c.kind).unwrap_or_default();
        let state = CaseState::try_from(c.state).unwrap_or_default();
        c.sla_state = sla::state(&self.sla_clock(row)?, self.rules.warn_before_micros) as i32;
        c.escalation_level = col::<i64>(row, "escalation_level")? as i32;
        c.allowed_actions = allowed(kind, state).into_iter().map(|a| a as i32).collect();
        c.etag = etag(col(row, "version")?);
        Ok(c)
    }

    /// Writes the case's columns and document (insert or update of a locked row).
    async fn save(
        &self,
        tx: &mut Tx,
        c: &Case,
        id: &str,
        version: i64,
        insert: bool,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut doc = c.clone();
        doc.etag.clear();
        doc.allowed_actions.clear();
        doc.sla_state = 0;
        // The complainant's contact is personal data: sealed in its own column at intake, never
        // in the document (so it is not rewritten, or leaked, by later steps).
        doc.contact_name.clear();
        doc.contact_phone.clear();
        let contact_sealed = if c.contact_name.is_empty() && c.contact_phone.is_empty() {
            String::new()
        } else {
            let plain = json!({ "name": c.contact_name, "phone": c.contact_phone }).to_string();
            self.sealer.seal(plain.as_bytes(), id.as_bytes())
        };
        let state = CaseState::try_from(c.state).unwrap_or_default();
        let micros = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(hcrm_kit::time::from_timestamp);
        let sql = if insert {
            "INSERT INTO cases (id, number, kind, channel, patient_id, department, category, severity, state, is_open, \
             owner, assignee, resolution, source, reopen_count, response_due, resolution_due, first_response_at, closed_at, \
             escalation_level, linked_to, month, body, version, created_at, updated_at, contact_sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 0, $20, $21, $22, $23, $24, $24, $25)"
        } else {
            "UPDATE cases SET number = $2, kind = $3, channel = $4, patient_id = $5, department = $6, category = $7, \
             severity = $8, state = $9, is_open = $10, owner = $11, assignee = $12, resolution = $13, source = $14, \
             reopen_count = $15, response_due = $16, resolution_due = $17, first_response_at = $18, closed_at = $19, \
             linked_to = $20, month = $21, body = $22, version = $23, updated_at = $24 WHERE id = $1"
        };
        let created = micros(&c.create_time).unwrap_or(now);
        let mut query = sqlx::query(sql)
            .bind(id)
            .bind(&c.number)
            .bind(c.kind as i64)
            .bind(c.channel as i64)
            .bind(c.patient.trim_start_matches("patients/"))
            .bind(&c.department)
            .bind(&c.category)
            .bind(c.severity as i64)
            .bind(c.state as i64)
            .bind(i64::from(is_open(state)))
            .bind(&c.owner)
            .bind(&c.assignee)
            .bind(c.resolution as i64)
            .bind(&c.source)
            .bind(c.reopen_count as i64)
            .bind(micros(&c.response_due_time).unwrap_or_default())
            .bind(micros(&c.resolution_due_time).unwrap_or_default())
            .bind(micros(&c.first_response_time))
            .bind(micros(&c.close_time))
            .bind(&c.linked_to)
            .bind(self.cal.month_of(created) as i64)
            .bind(doc.encode_to_vec())
            .bind(version)
            .bind(now);
        if insert {
            query = query.bind(&contact_sealed);
        }
        query.execute(&mut **tx).await.map_err(|e| {
            // Two intakes of one source racing: the second is told which case exists.
            if insert && !c.source.is_empty() && hcrm_kit::error::is_unique_violation(&e) {
                ApiError::AlreadyExists {
                    what: format!("a case for source {}", c.source),
                    existing: "the case opened from it (ListCases)".into(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        tx: &mut Tx,
        id: &str,
        at: i64,
        actor: &str,
        action: &str,
        from: CaseState,
        to: CaseState,
        reason: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO case_history (case_id, at, actor, action, from_state, to_state, reason, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(from as i64)
        .bind(to as i64)
        .bind(reason)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Queues the timeline entry of a case step for a registered patient.
    async fn to_timeline(&self, tx: &mut Tx, c: &Case, version: i64, what: &str, at: i64) -> Result<(), ApiError> {
        if c.patient.is_empty() {
            return Ok(());
        }
        let kind = CaseKind::try_from(c.kind).unwrap_or_default();
        let external_id = format!("{}@{version}", c.name);
        let message = json!({
            "kind": "INTERACTION_KIND_COMPLAINT",
            "department": c.department,
            "occur_time": rfc3339(at),
            "summary": format!("{} {}: {what} — {}", kind_label(kind), c.number, c.title),
            "source_system": "hcrm-feedback",
            "external_id": external_id,
            "details": { "case": c.name, "number": c.number, "state": CaseState::try_from(c.state).unwrap_or_default().as_str_name(), "step": what },
        });
        self.outbox
            .enqueue(
                tx,
                NewDelivery {
                    id: format!("timeline-{external_id}"),
                    kind: "patients.timeline",
                    recipient: c.patient.clone(),
                    department: c.department.clone(),
                    reference: c.name.clone(),
                    message,
                    not_before: at,
                    source_at: Some(at),
                },
            )
            .await
    }

    /// The case a source (a follow-up record, a survey response, a post) already opened.
    pub async fn case_of_source(&self, tx: &mut Tx, source: &str) -> Result<Option<Case>, ApiError> {
        if source.is_empty() {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM cases WHERE source = $1")
            .bind(source)
            .fetch_optional(&mut **tx)
            .await?;
        row.map(|r| self.case_of(&r)).transpose()
    }

    /// Opens case `id` inside `tx` (content validated; the caller checked `c.source` is new).
    pub async fn insert_case(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        id: &str,
        mut c: Case,
        owner: &str,
        now: i64,
    ) -> Result<Case, ApiError> {
        let severity = Severity::try_from(c.severity).unwrap_or_default();
        let severity = if severity == Severity::Unspecified {
            Severity::Medium
        } else {
            severity
        };
        let (response_due, resolution_due) = sla::deadlines(&self.cal, self.rules.sla.of(severity), now);
        c.name = format!("cases/{id}");
        c.number = new_number();
        c.severity = severity as i32;
        c.state = CaseState::Received as i32;
        c.owner = owner.to_string();
        c.assignee.clear();
        c.root_cause.clear();
        c.corrective_actions.clear();
        c.reply = None;
        c.confirmation = None;
        c.resolution = 0;
        c.reason.clear();
        c.reopen_count = 0;
        c.response_due_time = Some(to_timestamp(response_due));
        c.resolution_due_time = Some(to_timestamp(resolution_due));
        c.first_response_time = None;
        c.close_time = None;
        c.linked_to.clear();
        c.linked_cases.clear();
        c.create_time = Some(to_timestamp(now));
        c.update_time = Some(to_timestamp(now));
        self.save(tx, &c, id, 1, true, now).await?;
        self.history(
            tx,
            id,
            now,
            &actor.principal.subject,
            "created",
            CaseState::Unspecified,
            CaseState::Received,
            "",
            json!({ "owner": owner, "channel": c.channel, "severity": c.severity }),
        )
        .await?;
        self.to_timeline(tx, &c, 1, "受理 received", now).await?;
        let audit = actor.audit_entry(
            "case.create",
            &c.name,
            "",
            json!({ "owner": owner, "source": c.source }),
        );
        let event = NewEvent {
            kind: "feedback.case_opened",
            resource: c.name.clone(),
            payload: json!({
                "case": c.name, "number": c.number, "kind": CaseKind::try_from(c.kind).unwrap_or_default().as_str_name(),
                "patient": c.patient, "department": c.department, "category": c.category,
                "severity": severity.as_str_name(), "channel": c.channel, "owner": owner, "source": c.source,
            }),
        };
        hcrm_kit::ledger::append(tx, now, &[audit], &[event]).await?;
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        self.case_of(&row)
    }

    /// Opens a case (retry-safe with `key`); a source that already opened a case is
    /// ALREADY_EXISTS naming it.
    pub async fn create_case(&self, actor: &Actor, c: Case, owner: &str, key: Option<&str>) -> Result<Case, ApiError> {
        let id = hcrm_kit::new_id();
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.claim_request(&mut tx, key, &format!("cases/{id}")).await? {
            drop(tx);
            return self.get_case(super::parse_name("name", &existing, "cases")?).await;
        }
        if let Some(existing) = self.case_of_source(&mut tx, &c.source).await? {
            return Err(ApiError::AlreadyExists {
                what: format!("a case for source {}", c.source),
                existing: existing.name,
            });
        }
        let now = self.now();
        let c = self.insert_case(&mut tx, actor, &id, c, owner, now).await?;
        tx.commit().await?;
        self.committed(!c.patient.is_empty());
        Ok(c)
    }

    pub async fn get_case(&self, id: &str) -> Result<Case, ApiError> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("cases/{id}")))?;
        self.case_of(&row)
    }

    /// A case with the complainant's contact in clear; the read is audited with its reason.
    pub async fn get_case_full(&self, actor: &Actor, id: &str, reason: &str) -> Result<Case, ApiError> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("cases/{id}")))?;
        let c = self.case_with_contact(&row, true)?;
        let entry = actor.audit_entry(
            "case.read_contact",
            &c.name,
            reason,
            json!({ "fields": ["contact_name", "contact_phone"] }),
        );
        self.ledger.audit_alone(entry).await?;
        Ok(c)
    }

    pub async fn get_case_by_number(&self, number: &str) -> Result<Case, ApiError> {
        let row = sqlx::query("SELECT * FROM cases WHERE number = $1")
            .bind(number.to_ascii_uppercase())
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("case number {number}")))?;
        self.case_of(&row)
    }

    /// Cases newest first after `before` (created_at, id).
    pub async fn list_cases(
        &self,
        q: &CaseQuery,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(Case, i64)>, ApiError> {
        let now = self.now();
        let mut sql = Sql::new("SELECT * FROM cases WHERE 1 = 1");
        if !q.states.is_empty() {
            sql.push(" AND state IN (");
            for (i, s) in q.states.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Int(*s as i64));
            }
            sql.push(")");
        }
        if let Some(d) = &q.department {
            sql.push(" AND department = ").bind(Value::Text(d.clone()));
        }
        if !q.owner.is_empty() {
            sql.push(" AND owner = ").bind(Value::Text(q.owner.clone()));
        }
        if !q.patient_id.is_empty() {
            sql.push(" AND patient_id = ").bind(Value::Text(q.patient_id.clone()));
        }
        if q.kind != CaseKind::Unspecified {
            sql.push(" AND kind = ").bind(Value::Int(q.kind as i64));
        }
        if q.open_only || matches!(q.sla_state, SlaState::OnTrack | SlaState::DueSoon | SlaState::Overdue) {
            sql.push(" AND is_open = 1");
        }
        // The pending deadline is the response's until the first response, then the close's.
        let pending = "(CASE WHEN first_response_at IS NULL THEN response_due ELSE resolution_due END)";
        match q.sla_state {
            SlaState::Overdue => {
                sql.push(&format!(" AND {pending} <= ")).bind(Value::Int(now));
            }
            SlaState::DueSoon => {
                sql.push(&format!(" AND {pending} > ")).bind(Value::Int(now));
                sql.push(&format!(" AND {pending} <= "))
                    .bind(Value::Int(now + self.rules.warn_before_micros));
            }
            SlaState::OnTrack => {
                sql.push(&format!(" AND {pending} > "))
                    .bind(Value::Int(now + self.rules.warn_before_micros));
            }
            SlaState::Met | SlaState::Missed => {
                sql.push(" AND is_open = 0 AND first_response_at IS NOT NULL AND closed_at IS NOT NULL");
                let met = "(first_response_at <= response_due AND closed_at <= resolution_due)";
                sql.push(if q.sla_state == SlaState::Met {
                    " AND "
                } else {
                    " AND NOT "
                })
                .push(met);
            }
            SlaState::Unspecified => {}
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
            .map(|r| Ok((self.case_of(r)?, col(r, "created_at")?)))
            .collect()
    }

    /// Locks a case row for a change.
    async fn lock_case(&self, tx: &mut Tx, id: &str) -> Result<(Case, i64), ApiError> {
        let sql = format!("SELECT * FROM cases WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("cases/{id}")))?;
        let version: i64 = col(&row, "version")?;
        let mut c: Case = decode(&col::<Vec<u8>>(&row, "body")?)?;
        c.escalation_level = col::<i64>(&row, "escalation_level")? as i32;
        Ok((c, version))
    }

    /// Moves a case along its workflow. `department_ok` says whether the caller may touch a
    /// case of that department (else NOT_FOUND).
    pub async fn transition(
        &self,
        actor: &Actor,
        id: &str,
        t: Transition,
        department_ok: impl Fn(&str) -> bool,
    ) -> Result<Case, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let outbox = self.transition_in(&mut tx, actor, id, t, department_ok).await?;
        tx.commit().await?;
        self.committed(outbox);
        self.get_case(id).await
    }

    /// [`Self::transition`] inside `tx`; says whether it queued outbox deliveries. Refusals
    /// (wrong state, stale etag, not found) come before any write.
    pub async fn transition_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        id: &str,
        t: Transition,
        department_ok: impl Fn(&str) -> bool,
    ) -> Result<bool, ApiError> {
        let (mut c, version) = self.lock_case(tx, id).await?;
        if !department_ok(&c.department) {
            return Err(ApiError::not_found(format!("cases/{id}")));
        }
        let kind = CaseKind::try_from(c.kind).unwrap_or_default();
        let from = CaseState::try_from(c.state).unwrap_or_default();
        let effective = t.confirmation.as_ref().is_some_and(|x| x.effective);
        let (to, resolution) = workflow::next(kind, from, t.action, effective)?;
        check_etag(&c.name, &t.etag, version)?;
        let now = self.now();
        let actor_subject = actor.principal.subject.as_str();
        let mut detail = json!({});
        let mut events = Vec::new();
        match t.action {
            CaseAction::Assign => {
                detail = json!({ "assignee": t.assignee });
                c.assignee = t.assignee.clone();
            }
            CaseAction::PlanActions => {
                detail = json!({ "root_cause": t.root_cause, "actions": t.corrective_actions.len() });
                c.root_cause = t.root_cause.clone();
                c.corrective_actions = t.corrective_actions.clone();
            }
            CaseAction::Reply => {
                let mut reply = t.reply.clone().unwrap_or_default();
                reply.reply_time = Some(to_timestamp(now));
                detail = json!({ "channel": reply.channel });
                // Only a complaint has a fix for the complainant to confirm.
                if kind == CaseKind::Complaint {
                    events.push(NewEvent {
                        kind: "feedback.confirmation_requested",
                        resource: c.name.clone(),
                        payload: json!({
                            "case": c.name, "number": c.number, "patient": c.patient, "department": c.department,
                            "title": c.title, "reply": reply.text, "replied_by": actor_subject,
                        }),
                    });
                }
                c.reply = Some(reply);
            }
            CaseAction::Confirm => {
                let mut confirmation = t.confirmation.clone().unwrap_or_default();
                if confirmation.source == ConfirmationSource::Unspecified as i32 {
                    confirmation.source = ConfirmationSource::Staff as i32;
                }
                confirmation.confirmed_by = actor_subject.to_string();
                confirmation.confirm_time = Some(to_timestamp(now));
                detail = json!({ "effective": confirmation.effective, "source": confirmation.source });
                if !confirmation.effective {
                    // Check before close: the fix did not work, so the case goes round again.
                    c.reopen_count += 1;
                    c.reason = if t.reason.is_empty() {
                        confirmation.note.clone()
                    } else {
                        t.reason.clone()
                    };
                }
                c.confirmation = Some(confirmation);
            }
            CaseAction::Withdraw | CaseAction::Reject => c.reason = t.reason.clone(),
            _ => {}
        }
        if c.first_response_time.is_none() {
            c.first_response_time = Some(to_timestamp(now));
            // Escalation follows the pending deadline: the close's from now on.
            sqlx::query("UPDATE cases SET escalation_level = 0 WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        c.state = to as i32;
        if !is_open(to) {
            c.resolution = resolution as i32;
            c.close_time = Some(to_timestamp(now));
            events.push(NewEvent {
                kind: "feedback.case_closed",
                resource: c.name.clone(),
                payload: json!({ "case": c.name, "patient": c.patient, "department": c.department, "resolution": resolution.as_str_name() }),
            });
        }
        c.update_time = Some(to_timestamp(now));
        let step = action_name(t.action);
        self.save(tx, &c, id, version + 1, false, now).await?;
        self.history(tx, id, now, actor_subject, &step, from, to, &t.reason, detail.clone())
            .await?;
        self.to_timeline(tx, &c, version + 1, &step, now).await?;
        events.push(NewEvent {
            kind: "feedback.case_transitioned",
            resource: c.name.clone(),
            payload: json!({ "case": c.name, "action": step, "from": from.as_str_name(), "to": to.as_str_name(), "by": actor_subject }),
        });
        let audit = actor.audit_entry(&format!("case.{step}"), &c.name, &t.reason, detail);
        hcrm_kit::ledger::append(tx, now, &[audit], &events).await?;
        Ok(!c.patient.is_empty())
    }

    /// Hands a case to a new owner: explicit, with a reason, kept in the history.
    pub async fn hand_over(
        &self,
        actor: &Actor,
        id: &str,
        new_owner: &str,
        reason: &str,
        expected_etag: &str,
        department_ok: impl Fn(&str) -> bool,
    ) -> Result<Case, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let (mut c, version) = self.lock_case(&mut tx, id).await?;
        if !department_ok(&c.department) {
            return Err(ApiError::not_found(format!("cases/{id}")));
        }
        let state = CaseState::try_from(c.state).unwrap_or_default();
        if !is_open(state) {
            return Err(ApiError::FailedPrecondition(format!(
                "the case is {}; only an open case changes hands",
                state.as_str_name()
            )));
        }
        check_etag(&c.name, expected_etag, version)?;
        if c.owner == new_owner {
            return Err(ApiError::FailedPrecondition(format!(
                "{new_owner} already owns the case"
            )));
        }
        let now = self.now();
        let previous = std::mem::replace(&mut c.owner, new_owner.to_string());
        c.update_time = Some(to_timestamp(now));
        self.save(&mut tx, &c, id, version + 1, false, now).await?;
        let detail = json!({ "from": previous, "to": new_owner });
        self.history(
            &mut tx,
            id,
            now,
            &actor.principal.subject,
            "hand_over",
            state,
            state,
            reason,
            detail.clone(),
        )
        .await?;
        let audit = actor.audit_entry("case.hand_over", &c.name, reason, detail);
        let event = NewEvent {
            kind: "feedback.case_handed_over",
            resource: c.name.clone(),
            payload: json!({ "case": c.name, "from": previous, "to": new_owner }),
        };
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_case(id).await
    }

    /// Links `duplicate_id` into `primary_id`: the same patient, within the window, the
    /// duplicate still open.
    pub async fn link(
        &self,
        actor: &Actor,
        primary_id: &str,
        duplicate_id: &str,
        reason: &str,
        department_ok: impl Fn(&str) -> bool,
    ) -> Result<Case, ApiError> {
        if primary_id == duplicate_id {
            return Err(ApiError::invalid("duplicate", "must be another case than name"));
        }
        let mut tx = self.db.begin_write().await?;
        // Lock in id order so two opposite links cannot deadlock.
        let (first, second) = if primary_id < duplicate_id {
            (primary_id, duplicate_id)
        } else {
            (duplicate_id, primary_id)
        };
        let a = self.lock_case(&mut tx, first).await?;
        let b = self.lock_case(&mut tx, second).await?;
        let ((mut primary, pv), (mut dup, dv)) = if first == primary_id { (a, b) } else { (b, a) };
        if !department_ok(&primary.department) || !department_ok(&dup.department) {
            return Err(ApiError::not_found(format!(
                "cases/{primary_id} or cases/{duplicate_id}"
            )));
        }
        let fail = |msg: String| Err(ApiError::FailedPrecondition(msg));
        if primary.patient.is_empty() || primary.patient != dup.patient {
            return fail("only cases of the same registered patient can be linked".into());
        }
        let dup_state = CaseState::try_from(dup.state).unwrap_or_default();
        if !is_open(dup_state) {
            return fail(format!(
                "the duplicate is {} and can no longer be linked",
                dup_state.as_str_name()
            ));
        }
        if primary.state == CaseState::Linked as i32 {
            return fail(format!(
                "cases/{primary_id} is itself linked into {}; link into that one",
                primary.linked_to
            ));
        }
        let at = |c: &Case| {
            c.create_time
                .as_ref()
                .and_then(hcrm_kit::time::from_timestamp)
                .unwrap_or_default()
        };
        if (at(&primary) - at(&dup)).abs() > self.rules.duplicate_window_micros {
            return fail(format!(
                "the cases were opened more than {} days apart",
                self.rules.duplicate_window_micros / 86_400_000_000
            ));
        }
        let now = self.now();
        dup.state = CaseState::Linked as i32;
        dup.resolution = Resolution::Linked as i32;
        dup.linked_to = primary.name.clone();
        dup.reason = reason.to_string();
        dup.close_time = Some(to_timestamp(now));
        dup.first_response_time.get_or_insert(to_timestamp(now));
        dup.update_time = Some(to_timestamp(now));
        primary.linked_cases.push(dup.name.clone());
        primary.update_time = Some(to_timestamp(now));
        self.save(&mut tx, &dup, duplicate_id, dv + 1, false, now).await?;
        self.save(&mut tx, &primary, primary_id, pv + 1, false, now).await?;
        let detail = json!({ "primary": primary.name, "duplicate": dup.name });
        self.history(
            &mut tx,
            duplicate_id,
            now,
            &actor.principal.subject,
            "link",
            dup_state,
            CaseState::Linked,
            reason,
            detail.clone(),
        )
        .await?;
        let primary_state = CaseState::try_from(primary.state).unwrap_or_default();
        self.history(
            &mut tx,
            primary_id,
            now,
            &actor.principal.subject,
            "link",
            primary_state,
            primary_state,
            reason,
            detail.clone(),
        )
        .await?;
        let audit = actor.audit_entry("case.link", &primary.name, reason, detail.clone());
        let event = NewEvent {
            kind: "feedback.case_linked",
            resource: primary.name.clone(),
            payload: detail,
        };
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.committed(false);
        self.get_case(primary_id).await
    }

    pub async fn case_history(&self, id: &str) -> Result<Vec<CaseHistoryEntry>, ApiError> {
        let rows = sqlx::query("SELECT * FROM case_history WHERE case_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CaseHistoryEntry {
                    time: Some(to_timestamp(col(r, "at")?)),
                    actor: col(r, "actor")?,
                    action: col(r, "action")?,
                    from_state: col::<i64>(r, "from_state")? as i32,
                    to_state: col::<i64>(r, "to_state")? as i32,
                    reason: col(r, "reason")?,
                    detail_json: col(r, "detail")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::new_number;

    #[test]
    fn numbers_are_short_and_unambiguous() {
        let n = new_number();
        assert_eq!(n.len(), 9);
        assert_eq!(&n[4..5], "-");
        assert!(!n.contains(['0', 'O', '1', 'I', 'L']), "{n}");
        assert_ne!(new_number(), new_number());
    }
}
