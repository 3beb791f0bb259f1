//! The patients service as this service sees it: contact preferences before anyone is
//! contacted, the timeline a recorded follow-up is written to, and the event feed.

use crate::domain::calendar::parse_hhmm;
use hcrm_kit::ApiError;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::{Caller, lazy_channel};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{GetPatientRequest, Interaction, RecordInteractionRequest, WatchEventsRequest};
use hcrm_proto::types::{ContactChannel, Event};
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
    pub fn new(url: &str, authenticator: Arc<Authenticator>) -> anyhow::Result<Self> {
        Ok(Self {
            client: PatientServiceClient::new(lazy_channel(url)?),
            caller: Caller::new("followup", &[Role::Integration], authenticator),
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

    /// The patients feed after `after`, live.
    pub async fn watch(&self, after: i64, types: &[&str]) -> Result<tonic::Streaming<Event>, ApiError> {
        let mut request = self.caller.request(
            WatchEventsRequest {
                after_sequence: after,
                types: types.iter().map(|t| t.to_string()).collect(),
            },
            CALL_TIMEOUT,
        )?;
        // A feed is long-lived: no deadline on the stream itself.
        request.metadata_mut().remove("grpc-timeout");
        self.client
            .clone()
            .watch_events(request)
            .await
            .map(|r| r.into_inner())
            .map_err(call_error)
    }
}
