//! Background loops of the followup service: the patients feed consumer, the reminder planner,
//! the statistics rollup, and what the outbox dispatcher (`hcrm_kit::outbox`) sends. Each may
//! run on every replica at once.

mod send;

pub use send::FollowupSender;

use crate::store::Store;
use crate::store::feed::{Effect, FEEDBACK_FEED, PATIENTS_FEED, discharge_plans};
use hcrm_kit::ApiError;
use hcrm_kit::peers::patients::Patients;
use hcrm_kit::server::{Job, periodic};
use hcrm_proto::patients::InteractionKind;
use hcrm_proto::types::Event;
use std::time::Duration;

/// Follows the patients feed from this service's cursor: discharges create plans, exam results
/// queue notices, admissions are kept for readmission figures, a death or a do-not-contact
/// request stops the patient's plans.
pub struct PatientEvents {
    pub store: Store,
    pub patients: Patients,
}

/// The patients feed's events this service acts on.
pub const PATIENT_EVENTS: &[&str] = &["interaction.recorded", "patient.updated", "patient.deleted"];

impl hcrm_kit::peers::feed::Consumer for PatientEvents {
    async fn cursor(&self) -> Result<i64, ApiError> {
        self.store.cursor(PATIENTS_FEED).await
    }

    async fn apply(&self, event: Event) -> Result<(), ApiError> {
        let effect = decide(&self.store, &self.patients, &event).await?;
        self.store.apply_event(PATIENTS_FEED, event.sequence, effect).await?;
        Ok(())
    }
}

/// What an `interaction.recorded` event asks of this service.
async fn decide(store: &Store, patients: &Patients, event: &Event) -> Result<Effect, ApiError> {
    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap_or_default();
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let patient_id = text("patient").trim_start_matches("patients/").to_string();
    let interaction = text("interaction");
    let occur = chrono::DateTime::parse_from_rfc3339(&text("occur_time"))
        .map(|t| t.timestamp_micros())
        .unwrap_or_else(|_| store.now());
    if patient_id.is_empty() {
        return Ok(Effect::None);
    }
    if event.r#type == "patient.deleted" {
        return Ok(Effect::StopContact {
            patient_id,
            reason: "patient record deleted".into(),
        });
    }
    if event.r#type == "patient.updated" {
        // Staff updates name their fields; a re-import from the HIS does not, and may carry a
        // death or an opt-out too.
        let fields: Option<Vec<&str>> = payload
            .get("fields")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect());
        if fields.is_some_and(|f| {
            !f.iter()
                .any(|f| *f == "deceased" || f.starts_with("contact_preferences"))
        }) {
            return Ok(Effect::None);
        }
        return Ok(match patients.contact(&patient_id).await? {
            Some(c) if c.reachable() => Effect::None,
            Some(c) => Effect::StopContact {
                patient_id,
                reason: if c.deceased {
                    "patient deceased"
                } else {
                    "patient asked not to be contacted"
                }
                .into(),
            },
            None => Effect::None,
        });
    }
    let kind = text("kind");
    if kind
        == InteractionKind::Discharge
            .as_str_name()
            .trim_start_matches("INTERACTION_KIND_")
    {
        let templates = store.discharge_templates().await?;
        let diagnoses: Vec<String> = payload
            .get("diagnosis_codes")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let plans = discharge_plans(
            &templates,
            &patient_id,
            &text("department"),
            &diagnoses,
            occur,
            &interaction,
        );
        if plans.is_empty() {
            return Ok(Effect::None);
        }
        // A deceased or do-not-contact patient gets no plan; a deleted one neither.
        return Ok(match patients.contact(&patient_id).await? {
            Some(contact) if contact.reachable() => Effect::Plans(plans),
            _ => {
                tracing::info!(source = %interaction, "discharge of an unreachable patient: no follow-up plan");
                Effect::None
            }
        });
    }
    if kind == "EXAM_REPORT" {
        return Ok(Effect::ExamNotice {
            id: interaction.rsplit('/').next().unwrap_or_default().to_string(),
            patient_id,
            department: text("department"),
            result_at: occur,
            summary: "检查结果已出，请留意医院通知 / Your exam result is ready".into(),
        });
    }
    if kind == "ADMISSION" {
        return Ok(Effect::Admission {
            source: interaction,
            patient_id,
            at: occur,
        });
    }
    Ok(Effect::None)
}

/// Follows the feedback feed: a complainant who was replied to gets a call asking whether the
/// fix worked (a one-task plan of origin COMPLAINT, due tomorrow, for the confirmation pool).
/// Anonymous complainants and patients who may not be contacted get none: staff confirm those.
pub struct ConfirmationRequests {
    pub store: Store,
    pub patients: Patients,
    pub assignee: String,
}

impl hcrm_kit::peers::feed::Consumer for ConfirmationRequests {
    async fn cursor(&self) -> Result<i64, ApiError> {
        self.store.cursor(FEEDBACK_FEED).await
    }

    async fn apply(&self, event: Event) -> Result<(), ApiError> {
        let effect = self.confirmation_plan(&event).await?;
        self.store.apply_event(FEEDBACK_FEED, event.sequence, effect).await?;
        Ok(())
    }
}

impl ConfirmationRequests {
    async fn confirmation_plan(&self, event: &Event) -> Result<Effect, ApiError> {
        let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap_or_default();
        let text = |key: &str| {
            payload
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let patient_id = text("patient").trim_start_matches("patients/").to_string();
        if event.r#type != "feedback.confirmation_requested" || patient_id.is_empty() {
            return Ok(Effect::None);
        }
        match self.patients.contact(&patient_id).await? {
            Some(c) if c.reachable() => {}
            _ => return Ok(Effect::None),
        }
        let plan = crate::store::plans::NewPlan {
            patient_id,
            template: None,
            department: text("department"),
            responsible: self.assignee.clone(),
            origin: hcrm_proto::followup::PlanOrigin::Complaint,
            anchor_at: self.store.now(),
            // One plan per request: a case replied to again after a failed fix asks again.
            source: format!("{}#{}", text("case"), event.sequence),
            diagnoses: Vec::new(),
            steps: vec![crate::store::plans::Step {
                due_day: self.store.today() + 1,
                window_days: 3,
                channel: hcrm_proto::followup::Channel::Phone as i32,
                purpose: format!("投诉处理回访 did the fix work? {} {}", text("number"), text("title")),
                notify_patient: false,
            }],
        };
        Ok(Effect::Plans(vec![plan]))
    }
}

/// Queues tomorrow's reminders, every `poll_ms` (set-based and idempotent: cheap to repeat).
pub fn reminder_planner(store: Store, poll_ms: u64) -> Job {
    periodic(
        "reminder_planner",
        Duration::from_millis(poll_ms.max(100) * 10),
        move || {
            let store = store.clone();
            async move { store.plan_reminders().await }
        },
    )
}

/// Rolls up the statistics of closed days that changed, every `poll_ms` × 10.
pub fn stats_rollup(store: Store, poll_ms: u64) -> Job {
    periodic(
        "stats_rollup",
        Duration::from_millis(poll_ms.max(100) * 10),
        move || {
            let store = store.clone();
            async move { store.roll_up_dirty().await.map(|n| n as u64) }
        },
    )
}
