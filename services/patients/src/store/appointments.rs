//! Appointment requests handed to the booking platform: the request and its delivery are
//! written in one transaction; the platform's answer and its timeline entry in another.

use super::patients::{View, etag, name_of as patient_name};
use super::{Store, decode};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::outbox::{NewDelivery, Outbox};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::{from_timestamp, now_micros, rfc3339, to_timestamp};
use hcrm_proto::patients::{AppointmentKind, AppointmentRequest, AppointmentState, Interaction, InteractionKind};
use prost::Message;
use serde_json::json;
use sqlx::any::AnyRow;

/// The outbox kind of a request sent to the booking platform.
pub const DELIVERY_KIND: &str = "patients.appointment_request";
/// The recipient id of deliveries to the booking platform.
pub const RECIPIENT: &str = "booking-platform";
/// The source system of timeline entries recording the platform's answers.
pub const TIMELINE_SOURCE: &str = "booking";

pub fn name_of(id: &str) -> String {
    format!("appointment_requests/{id}")
}

/// The delivery id (the receivers' idempotency key) of a request.
pub fn delivery_id(id: &str) -> String {
    format!("appointment-{id}")
}

fn kind_label(kind: i32) -> &'static str {
    match AppointmentKind::try_from(kind).unwrap_or(AppointmentKind::Other) {
        AppointmentKind::Revisit => "revisit",
        AppointmentKind::Expert => "expert",
        _ => "other",
    }
}

fn state_label(state: i32) -> &'static str {
    AppointmentState::try_from(state)
        .unwrap_or(AppointmentState::Unspecified)
        .as_str_name()
        .trim_start_matches("APPOINTMENT_STATE_")
}

fn to_request(row: &AnyRow) -> Result<AppointmentRequest, ApiError> {
    let doc: Vec<u8> = col(row, "doc")?;
    let mut a: AppointmentRequest = decode(&doc)?;
    a.name = name_of(&col::<String>(row, "id")?);
    a.etag = etag(col(row, "version")?);
    a.state = i32::try_from(col::<i64>(row, "state")?).unwrap_or_default();
    a.create_time = Some(to_timestamp(col(row, "created_at")?));
    a.update_time = Some(to_timestamp(col(row, "updated_at")?));
    Ok(a)
}

const COLUMNS: &str = "id, patient_id, patient_department, state, doc, version, created_at, updated_at";

/// The booking platform's answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Confirmed { booked_at: i64, reference: String },
    Rejected { reason: String },
}

impl Store {
    /// Records a request (validated by the caller) for a live patient within `scope` and queues
    /// its delivery, in one transaction. A repeated `request_key` returns the first result.
    pub async fn request_appointment(
        &self,
        ctx: &RequestContext,
        outbox: &Outbox,
        scope: &Scope,
        patient_id: &str,
        mut a: AppointmentRequest,
        request_key: Option<String>,
    ) -> Result<AppointmentRequest, ApiError> {
        let id = hcrm_kit::new_id();
        let name = name_of(&id);
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = &request_key
            && let Some(existing) = hcrm_kit::idempotency::claim(&self.db, &mut tx, key, &name, now).await?
        {
            drop(tx);
            return self
                .get_appointment(existing.trim_start_matches("appointment_requests/"), &Scope::All)
                .await;
        }
        let row = self.load_row(&mut tx, patient_id, scope).await?;
        if row.deleted_at.is_some() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} is deleted",
                patient_name(patient_id)
            )));
        }
        let department = row.department.clone();
        let patient = self.to_patient(row, View::Masked)?;
        if patient.deceased {
            return Err(ApiError::FailedPrecondition(format!(
                "{} has died: no appointment can be booked",
                patient_name(patient_id)
            )));
        }
        a.name.clear();
        a.etag.clear();
        a.patient = patient_name(patient_id);
        a.requested_by = ctx.principal.subject.clone();
        a.state = AppointmentState::Requested as i32;
        sqlx::query(
            "INSERT INTO appointment_requests (id, patient_id, patient_department, state, doc, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(&id)
        .bind(patient_id)
        .bind(&department)
        .bind(i64::from(a.state))
        .bind(a.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let dates: Vec<String> = a
            .preferred_dates
            .iter()
            .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
            .collect();
        let window = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(from_timestamp).map(rfc3339);
        let birth = patient
            .birth_date
            .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day));
        let message = json!({
            "appointment_request": name,
            "kind": kind_label(a.kind),
            "department": a.department,
            "doctor": a.doctor,
            "preferred_dates": dates,
            "window_start_time": window(&a.window_start_time),
            "window_end_time": window(&a.window_end_time),
            "reason": a.reason,
            "source": a.source,
            "requested_by": a.requested_by,
            "patient": {
                "name": a.patient,
                "code": patient.code,
                "display_name": patient.display_name,
                "phone": patient.phones.first(),
                "sex": patient.sex,
                "birth_date": birth,
            },
        });
        outbox
            .enqueue(
                &mut tx,
                NewDelivery {
                    id: delivery_id(&id),
                    kind: DELIVERY_KIND,
                    recipient: RECIPIENT.into(),
                    department: a.department.clone(),
                    reference: name.clone(),
                    message,
                    not_before: outbox.now(),
                    source_at: None,
                },
            )
            .await?;
        let audit = AuditEntry::new(
            ctx,
            "appointment.request",
            &name,
            "",
            json!({ "patient": a.patient, "kind": kind_label(a.kind), "department": a.department }),
        );
        let event = NewEvent {
            kind: "appointment.requested",
            resource: name.clone(),
            payload: json!({
                "appointment_request": name,
                "patient": a.patient,
                "kind": kind_label(a.kind),
                "department": a.department,
                "source": a.source,
            }),
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        outbox.wake();
        self.get_appointment(&id, &Scope::All).await
    }

    /// One request, NOT_FOUND when it does not exist or its patient is outside `scope`.
    pub async fn get_appointment(&self, id: &str, scope: &Scope) -> Result<AppointmentRequest, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM appointment_requests WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        if !scope.covers(&col::<String>(&row, "patient_department")?) {
            return Err(ApiError::not_found(name_of(id)));
        }
        to_request(&row)
    }

    /// Requests newest first, after the `(created_at, id)` position.
    pub async fn list_appointments(
        &self,
        scope: &Scope,
        patient_id: Option<&str>,
        state: i32,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(AppointmentRequest, i64, String)>, ApiError> {
        let mut sql = Sql::new(format!("SELECT {COLUMNS} FROM appointment_requests WHERE 1 = 1"));
        if let Some(p) = patient_id {
            sql.push(" AND patient_id = ").bind(Value::Text(p.to_string()));
        }
        if state != 0 {
            sql.push(" AND state = ").bind(Value::Int(i64::from(state)));
        }
        if let Scope::Department(d) = scope {
            sql.push(" AND patient_department = ").bind(Value::Text(d.clone()));
        }
        if let Some((at, id)) = after {
            sql.push(" AND (created_at < ").bind(Value::Int(at));
            sql.push(" OR (created_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| Ok((to_request(r)?, col::<i64>(r, "created_at")?, col::<String>(r, "id")?)))
            .collect()
    }

    async fn lock_appointment(&self, tx: &mut Tx, id: &str) -> Result<Option<(AnyRow, String)>, ApiError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM appointment_requests WHERE id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(match row {
            Some(r) => {
                let patient: String = col(&r, "patient_id")?;
                Some((r, patient))
            }
            None => None,
        })
    }

    async fn save_appointment(&self, tx: &mut Tx, id: &str, a: &AppointmentRequest, now: i64) -> Result<(), ApiError> {
        let mut doc = a.clone();
        doc.name.clear();
        doc.etag.clear();
        doc.create_time = None;
        doc.update_time = None;
        sqlx::query(
            "UPDATE appointment_requests SET state = $1, doc = $2, version = version + 1, updated_at = $3 WHERE id = $4",
        )
        .bind(i64::from(a.state))
        .bind(doc.encode_to_vec())
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records the booking platform's answer and its timeline entry. The same answer twice is
    /// recorded once; a different answer to an answered request is FAILED_PRECONDITION.
    pub async fn confirm_appointment(
        &self,
        ctx: &RequestContext,
        id: &str,
        answer: Answer,
    ) -> Result<AppointmentRequest, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let (row, patient_id) = self
            .lock_appointment(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        let mut a = to_request(&row)?;
        let state = AppointmentState::try_from(a.state).unwrap_or(AppointmentState::Unspecified);
        let recorded = match state {
            AppointmentState::Confirmed => Some(Answer::Confirmed {
                booked_at: a.booked_time.as_ref().and_then(from_timestamp).unwrap_or_default(),
                reference: a.booking_reference.clone(),
            }),
            AppointmentState::Rejected => Some(Answer::Rejected {
                reason: a.rejection_reason.clone(),
            }),
            _ => None,
        };
        if let Some(recorded) = recorded {
            drop(tx);
            if recorded == answer {
                return Ok(a);
            }
            return Err(ApiError::FailedPrecondition(format!(
                "{} was already answered ({}) with other details",
                name_of(id),
                state_label(a.state)
            )));
        }
        let now = now_micros();
        let name = name_of(id);
        let (occurred, summary, outcome) = match &answer {
            Answer::Confirmed { booked_at, reference } => {
                a.state = AppointmentState::Confirmed as i32;
                a.booked_time = Some(to_timestamp(*booked_at));
                a.booking_reference = reference.clone();
                (
                    *booked_at,
                    format!(
                        "预约成功 / booked: {} {} ({reference})",
                        a.department,
                        rfc3339(*booked_at)
                    ),
                    "confirmed",
                )
            }
            Answer::Rejected { reason } => {
                a.state = AppointmentState::Rejected as i32;
                a.rejection_reason = reason.clone();
                (now, format!("预约未成功 / booking rejected: {reason}"), "rejected")
            }
        };
        a.answer_time = Some(to_timestamp(now));
        let interaction = Interaction {
            kind: InteractionKind::Appointment as i32,
            department: a.department.clone(),
            occur_time: Some(to_timestamp(occurred)),
            summary: summary.chars().take(500).collect(),
            source_system: TIMELINE_SOURCE.into(),
            external_id: id.to_string(),
            details_json: json!({
                "appointment_request": name,
                "outcome": outcome,
                "kind": kind_label(a.kind),
                "doctor": a.doctor,
                "booking_reference": a.booking_reference,
                "rejection_reason": a.rejection_reason,
                "source": a.source,
            })
            .to_string(),
            ..Default::default()
        };
        let (recorded, ledger_rows) = self
            .record_in_tx(&mut tx, &ctx.principal, &ctx.request_id, &patient_id, interaction, now)
            .await?;
        a.interaction = match recorded {
            super::interactions::Recorded::New(i) | super::interactions::Recorded::Existing(i) => i.name,
        };
        self.save_appointment(&mut tx, id, &a, now).await?;
        let mut audits = vec![AuditEntry::new(
            ctx,
            &format!("appointment.{outcome}"),
            &name,
            "",
            json!({ "interaction": a.interaction }),
        )];
        let mut events = vec![NewEvent {
            kind: if outcome == "confirmed" {
                "appointment.confirmed"
            } else {
                "appointment.rejected"
            },
            resource: name.clone(),
            payload: json!({ "appointment_request": name, "patient": a.patient, "interaction": a.interaction }),
        }];
        if let Some((audit, event)) = ledger_rows {
            audits.push(audit);
            events.push(event);
        }
        ledger::append(&mut tx, now, &audits, &events).await?;
        tx.commit().await?;
        self.changed();
        self.get_appointment(id, &Scope::All).await
    }

    /// Marks a request the booking platform accepted (REQUESTED → SENT); an answered request
    /// stays as it is.
    pub async fn appointment_sent(&self, id: &str) -> Result<(), ApiError> {
        self.appointment_delivery_ended(id, AppointmentState::Sent, "").await
    }

    /// Marks a request whose delivery failed for good (REQUESTED → FAILED).
    pub async fn appointment_failed(&self, id: &str, error: &str) -> Result<(), ApiError> {
        self.appointment_delivery_ended(id, AppointmentState::Failed, error)
            .await
    }

    async fn appointment_delivery_ended(&self, id: &str, to: AppointmentState, error: &str) -> Result<(), ApiError> {
        let mut tx = self.db.begin_write().await?;
        let Some((row, _)) = self.lock_appointment(&mut tx, id).await? else {
            return Ok(());
        };
        let mut a = to_request(&row)?;
        if a.state != AppointmentState::Requested as i32 {
            return Ok(());
        }
        let now = now_micros();
        a.state = to as i32;
        match to {
            AppointmentState::Sent => a.send_time = Some(to_timestamp(now)),
            _ => a.failure_reason = error.chars().take(500).collect(),
        }
        self.save_appointment(&mut tx, id, &a, now).await?;
        let name = name_of(id);
        let event = NewEvent {
            kind: if to == AppointmentState::Sent {
                "appointment.sent"
            } else {
                "appointment.failed"
            },
            resource: name.clone(),
            payload: json!({ "appointment_request": name, "patient": a.patient }),
        };
        ledger::append(&mut tx, now, &[], &[event]).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// The state of a request, `None` when it does not exist.
    pub async fn appointment_state(&self, id: &str) -> Result<Option<AppointmentState>, ApiError> {
        let row = sqlx::query("SELECT state FROM appointment_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(
                AppointmentState::try_from(i32::try_from(col::<i64>(&r, "state")?).unwrap_or_default())
                    .unwrap_or(AppointmentState::Unspecified),
            ),
            None => None,
        })
    }
}
