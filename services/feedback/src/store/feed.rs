//! The feeds this service consumes. Followup: a complaint raised on a follow-up call opens a
//! case owned by the staff member who made the call (first-responder ownership); a confirmation
//! call confirms or reopens its case. Opinion: an escalated incident opens an online-post case
//! for the inspection group. Each cursor lives in this database and moves in the same
//! transaction as the case, so an event opens one case across crashes, redeliveries and
//! replicas consuming at once.

use super::Store;
use super::cases::Actor;
use hcrm_kit::ApiError;
use hcrm_kit::db::col;
use hcrm_proto::feedback::{Case, CaseAction, CaseKind, Confirmation, ConfirmationSource, IntakeChannel, Severity};
use hcrm_proto::types::Event;

pub const FOLLOWUP_FEED: &str = "followup";
pub const OPINION_FEED: &str = "opinion";

/// The case a `followup.complaint_raised` event asks for; `None` for anything else.
pub fn case_of_event(event: &Event) -> Option<(Case, String)> {
    if event.r#type != "followup.complaint_raised" {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&event.payload_json).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let summary = text("summary");
    let title: String = summary.chars().take(60).collect();
    let case = Case {
        kind: CaseKind::Complaint as i32,
        channel: IntakeChannel::FollowUp as i32,
        patient: text("patient"),
        department: text("department"),
        category: String::new(),
        severity: Severity::Medium as i32,
        title: if title.is_empty() {
            "随访投诉 Complaint on a follow-up call".into()
        } else {
            title
        },
        description: summary,
        source: text("follow_up"),
        ..Default::default()
    };
    Some((case, text("recorded_by")))
}

/// The case an `opinion.case_requested` event asks for; `None` for anything else. The owner is
/// the intake owner (the opinion group does not work cases); the post's URL is attached.
pub fn case_of_incident(event: &Event) -> Option<Case> {
    if event.r#type != "opinion.case_requested" {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&event.payload_json).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let incident = text("incident");
    let url = text("url");
    let title: String = text("title").chars().take(200).collect();
    let mut description: String = text("description").chars().take(4500).collect();
    if !url.is_empty() {
        description = format!("{description}\n{url}").trim().to_string();
    }
    let patient = text("patient");
    Some(Case {
        kind: CaseKind::Complaint as i32,
        channel: IntakeChannel::OnlinePost as i32,
        patient: if patient.starts_with("patients/") {
            patient
        } else {
            String::new()
        },
        department: text("department").chars().take(40).collect(),
        category: text("category"),
        severity: Severity::from_str_name(&format!("SEVERITY_{}", text("severity"))).unwrap_or(Severity::Medium) as i32,
        title: if title.is_empty() {
            "网络舆情 Online post".into()
        } else {
            title
        },
        description: if description.is_empty() {
            incident.clone()
        } else {
            description
        },
        attachments: if url.len() <= 500 && url.contains("://") {
            vec![url]
        } else {
            vec![]
        },
        source: format!("opinion/{incident}"),
        ..Default::default()
    })
}

/// A complainant's answer on a confirmation call (`followup.case_confirmed`).
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    pub case_id: String,
    pub effective: bool,
    pub note: String,
    pub follow_up: String,
    pub recorded_by: String,
}

pub fn confirmation_of_event(event: &Event) -> Option<Confirmed> {
    if event.r#type != "followup.case_confirmed" {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&event.payload_json).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    Some(Confirmed {
        case_id: text("case").strip_prefix("cases/")?.to_string(),
        effective: v.get("effective")?.as_bool()?,
        note: text("note"),
        follow_up: text("follow_up"),
        recorded_by: text("recorded_by"),
    })
}

impl Store {
    /// Applies a confirmation call to its case: CONFIRM as the caller who made it. A case that
    /// moved on meanwhile (staff confirmed, the complainant withdrew) is left as it is.
    async fn confirm_from_call(&self, tx: &mut hcrm_kit::db::Tx, c: Confirmed) -> Result<bool, ApiError> {
        let actor = Actor {
            principal: hcrm_kit::auth::Principal {
                subject: if c.recorded_by.is_empty() {
                    "service:followup".into()
                } else {
                    c.recorded_by.clone()
                },
                roles: vec![],
                department: None,
            },
            request_id: c.follow_up.clone(),
        };
        let t = crate::store::cases::Transition {
            action: CaseAction::Confirm,
            reason: format!("回访确认 confirmation call {}", c.follow_up),
            confirmation: Some(Confirmation {
                effective: c.effective,
                note: c.note.chars().take(2000).collect(),
                source: ConfirmationSource::FollowUp as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        match self.transition_in(tx, &actor, &c.case_id, t, |_| true).await {
            Ok(outbox) => Ok(outbox),
            Err(err @ (ApiError::FailedPrecondition(_) | ApiError::NotFound { .. })) => {
                tracing::info!(case = %c.case_id, follow_up = %c.follow_up, error = %err, "confirmation call not applied");
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    pub async fn cursor(&self, feed: &str) -> Result<i64, ApiError> {
        hcrm_kit::peers::feed::position(&self.db, feed).await
    }

    /// Applies an event of `feed` unless its cursor is already past it; false when it was.
    pub async fn apply_event(&self, feed: &str, event: &Event) -> Result<bool, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT position FROM consumer_cursors WHERE feed = $1{}",
            self.for_update()
        );
        let position: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(feed)
            .fetch_one(&mut *tx)
            .await
            .map(|r| col(&r, "position"))??;
        if position >= event.sequence {
            return Ok(false);
        }
        let mut opened = false;
        if let Some(mut case) = case_of_incident(event)
            && self.case_of_source(&mut tx, &case.source).await?.is_none()
        {
            // An unknown category is filed under the taxonomy's last ("other") for the owner to
            // classify, as with follow-up complaints.
            if crate::domain::taxonomy::validate(&self.rules.categories, &case.category, "").is_err() {
                case.category = self.rules.categories.last().map(|c| c.code.clone()).unwrap_or_default();
            }
            let id = hcrm_kit::new_id();
            let owner = self.rules.intake_owner.clone();
            self.insert_case(&mut tx, &Actor::service(), &id, case, &owner, self.now())
                .await?;
            opened = true;
        } else if let Some(confirmed) = confirmation_of_event(event) {
            opened = self.confirm_from_call(&mut tx, confirmed).await?;
        } else if let Some((mut case, recorded_by)) = case_of_event(event)
            && self.case_of_source(&mut tx, &case.source).await?.is_none()
        {
            // The taxonomy is the hospital's: a call's complaint is filed under its last
            // category ("other") until the owner classifies it.
            case.category = self.rules.categories.last().map(|c| c.code.clone()).unwrap_or_default();
            let owner = if recorded_by.is_empty() {
                self.rules.intake_owner.clone()
            } else {
                recorded_by
            };
            let id = hcrm_kit::new_id();
            self.insert_case(&mut tx, &Actor::service(), &id, case, &owner, self.now())
                .await?;
            opened = true;
        }
        sqlx::query("UPDATE consumer_cursors SET position = $1 WHERE feed = $2")
            .bind(event.sequence)
            .bind(feed)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.committed(opened);
        Ok(true)
    }
}
