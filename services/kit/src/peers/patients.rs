//! The patients service as other services see it: contact preferences before anyone is
//! contacted, the timeline a recorded follow-up (or a complaint) is written to, appointment
//! requests handed to the booking platform, and the event feed.

use crate::ApiError;
use crate::auth::{Authenticator, Role};
use crate::client::{Caller, lazy_channel};
use crate::error::FieldViolation;
use crate::outbox::{Claimed, Outcome};
use crate::time::parse_hhmm;
use hcrm_proto::patients::appointment_service_client::AppointmentServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{
    AppointmentRequest, GetPatientRequest, Interaction, InteractionKind, RecordInteractionRequest,
    RequestAppointmentRequest,
};
use hcrm_proto::types::ContactChannel;
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What decides whether and how a patient may be contacted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    pub deceased: bool,
    pub do_not_contact: bool,
    pub allowed_channels: Vec<ContactChannel>,
    /// Quiet hours as local minutes of the day `[start, end)`.
    pub quiet_hours: Option<(i32, i32)>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The patient's name and every phone number: what a public text must not disclose.
    pub display_name: String,
    pub phones: Vec<String>,
}

impl Contact {
    /// Whether the patient may get anything from us at all.
    pub fn reachable(&self) -> bool {
        !self.deceased && !self.do_not_contact
    }
}

#[derive(Clone)]
pub struct Patients {
    client: PatientServiceClient<Channel>,
    appointments: AppointmentServiceClient<Channel>,
    caller: Caller,
}

/// A patients call that failed: `Ok(None)`-style absence is not an error; these are.
fn call_error(status: tonic::Status) -> ApiError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => {
            ApiError::Unavailable(format!("patients service: {}", status.message()))
        }
        _ => ApiError::internal(anyhow::anyhow!(
            "patients service answered {:?}: {}",
            status.code(),
            status.message()
        )),
    }
}

impl Patients {
    /// A client at `url` calling as `service:{service}`.
    pub fn new(service: &str, url: &str, authenticator: Arc<Authenticator>) -> anyhow::Result<Self> {
        let channel = lazy_channel(url)?;
        Ok(Self {
            client: PatientServiceClient::new(channel.clone()),
            appointments: AppointmentServiceClient::new(channel),
            caller: Caller::new(service, &[Role::Integration], authenticator),
        })
    }

    /// The patient's contact facts; `None` when the patient does not exist (or was deleted).
    pub async fn contact(&self, patient_id: &str) -> Result<Option<Contact>, ApiError> {
        let request = self.caller.request(
            GetPatientRequest {
                name: format!("patients/{patient_id}"),
                ..Default::default()
            },
            CALL_TIMEOUT,
        )?;
        let patient = match self.client.clone().get_patient(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Ok(None),
            Err(status) => return Err(call_error(status)),
        };
        let prefs = patient.contact_preferences.unwrap_or_default();
        let quiet_hours = match (parse_hhmm(&prefs.quiet_hours_start), parse_hhmm(&prefs.quiet_hours_end)) {
            (Some(start), Some(end)) if start != end => Some((start, end)),
            _ => None,
        };
        Ok(Some(Contact {
            deceased: patient.deceased,
            do_not_contact: prefs.do_not_contact,
            allowed_channels: prefs
                .allowed_channels
                .iter()
                .filter_map(|c| ContactChannel::try_from(*c).ok())
                .collect(),
            quiet_hours,
            phone: patient.phones.first().cloned(),
            email: (!patient.email.is_empty()).then_some(patient.email),
            display_name: patient.display_name,
            phones: patient.phones,
        }))
    }

    /// Writes an entry on the patient's timeline; idempotent by the interaction's source
    /// system and external id.
    pub async fn record_timeline(&self, patient_id: &str, interaction: Interaction) -> Result<(), ApiError> {
        let request = self.caller.request(
            RecordInteractionRequest {
                parent: format!("patients/{patient_id}"),
                interaction: Some(interaction),
            },
            CALL_TIMEOUT,
        )?;
        match self.client.clone().record_interaction(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::AlreadyExists => Ok(()),
            Err(status) if status.code() == Code::NotFound => {
                Err(ApiError::not_found(format!("patients/{patient_id}")))
            }
            Err(status) => Err(call_error(status)),
        }
    }

    /// Asks the patients service for an appointment at the hospital's booking platform
    /// (`AppointmentService.RequestAppointment`); `request_id` (1–64 printable ASCII characters)
    /// makes a repeat return the first request, so an outbox retry books once. A refusal keeps
    /// its code and field violations (see [`refusal`]).
    pub async fn request_appointment(
        &self,
        appointment: AppointmentRequest,
        request_id: &str,
    ) -> Result<AppointmentRequest, ApiError> {
        let request = self.caller.request(
            RequestAppointmentRequest {
                appointment_request: Some(appointment),
                request_id: request_id.to_string(),
            },
            CALL_TIMEOUT,
        )?;
        match self.appointments.clone().request_appointment(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(refusal(status)),
        }
    }

    /// Sends a `patients.timeline` delivery: writes its message, an entry as JSON, to the
    /// timeline of the patient it is addressed to (`patients/{id}`). The message holds `kind`
    /// (an `InteractionKind` name, `INTERACTION_KIND_COMPLAINT` or `complaint`; a follow-up when
    /// absent), `department`, `occur_time` (RFC 3339), `summary`, `source_system`,
    /// `external_id` (with the source system, what makes a repeat send one entry) and `details`
    /// (any JSON).
    pub async fn deliver_timeline(&self, d: &Claimed) -> Outcome {
        let v: serde_json::Value = serde_json::from_str(&d.message).unwrap_or_default();
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        let kind = match v.get("kind").and_then(|k| k.as_str()) {
            None => InteractionKind::FollowUp,
            Some(name) => match interaction_kind(name) {
                Some(kind) => kind,
                None => {
                    return Outcome::Failed {
                        error: format!("unknown interaction kind {name:?}"),
                        transient: false,
                    };
                }
            },
        };
        let occur = chrono::DateTime::parse_from_rfc3339(&text("occur_time"))
            .map(|t| crate::time::to_timestamp(t.timestamp_micros()))
            .ok();
        let interaction = Interaction {
            kind: kind as i32,
            department: text("department"),
            occur_time: occur,
            summary: text("summary"),
            source_system: text("source_system"),
            external_id: text("external_id"),
            details_json: v.get("details").map(|x| x.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        let patient_id = d.recipient.trim_start_matches("patients/");
        match self.record_timeline(patient_id, interaction).await {
            Ok(()) => Outcome::Delivered,
            Err(ApiError::NotFound { .. }) => Outcome::Skipped("the patient no longer exists".into()),
            Err(err) => Outcome::failed(err),
        }
    }
}

/// A patients call the service refused, with the refusal kept: its field violations for
/// INVALID_ARGUMENT, its code for NOT_FOUND, FAILED_PRECONDITION and PERMISSION_DENIED (so an
/// outbox sender can tell a request that will never succeed from a patients service that is
/// down); anything else as [`call_error`].
fn refusal(status: tonic::Status) -> ApiError {
    use tonic_types::StatusExt;
    let message = format!("patients service: {}", status.message());
    match status.code() {
        Code::InvalidArgument => {
            let mut violations: Vec<FieldViolation> = status
                .get_error_details()
                .bad_request()
                .map(|b| {
                    b.field_violations
                        .iter()
                        .map(|v| FieldViolation {
                            field: v.field.clone(),
                            description: v.description.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if violations.is_empty() {
                violations.push(FieldViolation {
                    field: String::new(),
                    description: message,
                });
            }
            ApiError::InvalidArgument(violations)
        }
        Code::NotFound => ApiError::not_found(message),
        Code::FailedPrecondition => ApiError::FailedPrecondition(message),
        Code::PermissionDenied => ApiError::PermissionDenied(message),
        _ => call_error(status),
    }
}

/// An interaction kind by its proto name (`INTERACTION_KIND_FOLLOW_UP`) or the rest of it in
/// any case (`follow_up`, as followup's queued timeline entries say).
fn interaction_kind(name: &str) -> Option<InteractionKind> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("INTERACTION_KIND_") {
        upper
    } else {
        format!("INTERACTION_KIND_{upper}")
    };
    InteractionKind::from_str_name(&full).filter(|k| *k != InteractionKind::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interaction_kinds_are_read_by_proto_name_or_short_name() {
        assert_eq!(
            interaction_kind("INTERACTION_KIND_COMPLAINT"),
            Some(InteractionKind::Complaint)
        );
        assert_eq!(interaction_kind("follow_up"), Some(InteractionKind::FollowUp));
        assert_eq!(interaction_kind("INTERACTION_KIND_UNSPECIFIED"), None);
        assert_eq!(interaction_kind("complaint!"), None);
    }

    #[test]
    fn refusals_keep_their_code_and_field_violations() {
        let status = ApiError::invalid("appointment_request.department", "must be a department code").into_status("r1");
        match refusal(status) {
            ApiError::InvalidArgument(v) => assert_eq!(v[0].field, "appointment_request.department"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            refusal(tonic::Status::failed_precondition("patients/p1 has died")),
            ApiError::FailedPrecondition(_)
        ));
        assert!(matches!(
            refusal(tonic::Status::unavailable("down")),
            ApiError::Unavailable(_)
        ));
        assert!(matches!(
            refusal(tonic::Status::internal("boom")),
            ApiError::Internal(_)
        ));
    }
}
