//! What feedback's outbox holds and how each kind is sent: timeline entries, escalation
//! notices to staff, invitation links and the one reminder to patients (within their consent),
//! and free-text answers to the opinion service for their sentiment.

use crate::store::Store;
use futures::future::BoxFuture;
use hcrm_kit::ApiError;
use hcrm_kit::notify::{Message, Notifier, Recipient};
use hcrm_kit::outbox::{Claimed, Deadline, Outcome, Sender};
use hcrm_kit::peers::patients::Patients;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Feedback's [`Sender`] for `hcrm_kit::outbox::dispatcher`.
#[derive(Clone)]
pub struct FeedbackSender {
    pub store: Store,
    pub patients: Patients,
    /// The sentiment analyser; `None` when feedback runs without the opinion service.
    pub opinion: Option<hcrm_kit::peers::opinion::Opinion>,
    pub notifier: Arc<dyn Notifier>,
    /// E-mail addresses of staff subjects.
    pub staff_email: Arc<BTreeMap<String, String>>,
}

impl Sender for FeedbackSender {
    fn attempt_group<'a>(
        &'a self,
        group: &'a [Claimed],
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ApiError>> {
        Box::pin(async move { Ok(deadline.each(group, |d| self.attempt(d)).await) })
    }
}

impl FeedbackSender {
    async fn attempt(&self, d: &Claimed) -> Outcome {
        match d.kind.as_str() {
            "patients.timeline" => self.patients.deliver_timeline(d).await,
            "feedback.invitation" | "feedback.invitation_reminder" => self.invitation(d).await,
            "feedback.comment_sentiment" => self.comment_sentiment(d).await,
            _ => {
                let payload: serde_json::Value = serde_json::from_str(&d.message).unwrap_or_default();
                let message = Message {
                    idempotency_key: d.id.clone(),
                    kind: d.kind.clone(),
                    recipient: Recipient {
                        id: d.recipient.clone(),
                        email: self.staff_email.get(&d.recipient).cloned(),
                        phone: None,
                    },
                    subject: escalation_subject(&payload),
                    body: d.message.clone(),
                    payload,
                };
                hcrm_kit::outbox::send_via(self.notifier.as_ref(), &message).await
            }
        }
    }

    /// Scores the response's comments not scored yet; a retry picks up where one failed.
    async fn comment_sentiment(&self, d: &Claimed) -> Outcome {
        let Some(opinion) = &self.opinion else {
            return Outcome::Skipped("feedback runs without the opinion service".into());
        };
        let id = d.reference.trim_start_matches("responses/");
        let pending = match self.store.pending_comments(id).await {
            Ok(p) => p,
            Err(err) => return Outcome::failed(err),
        };
        for (question, text) in pending {
            let analysis = match opinion.analyze(&text).await {
                Ok(a) => a,
                Err(err) => return Outcome::failed(err),
            };
            let sentiment = analysis.sentiment.unwrap_or_default();
            if let Err(err) = self
                .store
                .record_comment(id, &question, sentiment.label, sentiment.score, &analysis.topics)
                .await
            {
                return Outcome::failed(err);
            }
        }
        Outcome::Delivered
    }

    /// An invitation link (or its reminder) to a patient who may be contacted, unless answered.
    async fn invitation(&self, d: &Claimed) -> Outcome {
        let id = d.reference.trim_start_matches("invitations/");
        match self.store.invitation_answered(id).await {
            Ok(Some(true)) => return Outcome::Skipped("already answered".into()),
            Ok(Some(false)) => {}
            Ok(None) => return Outcome::Skipped("the invitation no longer exists".into()),
            Err(err) => return Outcome::failed(err),
        }
        let patient_id = d.recipient.trim_start_matches("patients/");
        let contact = match self.patients.contact(patient_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Outcome::Skipped("the patient no longer exists".into()),
            Err(err) => return Outcome::failed(err),
        };
        if !contact.reachable() {
            return Outcome::Skipped("the patient may not be contacted".into());
        }
        let link = self.store.link_of(&self.store.token_of(id));
        let reminder = d.kind.ends_with("reminder");
        let body = if reminder {
            format!(
                "您好，您的就医体验问卷尚未填写，欢迎抽空反馈：{link}\nA reminder: please tell us about your visit: {link}"
            )
        } else {
            format!(
                "您好，感谢您在本院就医，请填写满意度问卷：{link}\nThank you for visiting us; please tell us how we did: {link}"
            )
        };
        let message = Message {
            idempotency_key: d.id.clone(),
            kind: d.kind.clone(),
            recipient: Recipient {
                id: d.recipient.clone(),
                email: contact.email.clone(),
                phone: contact.phone.clone(),
            },
            subject: "满意度调查 / Satisfaction survey".into(),
            body,
            payload: serde_json::json!({ "invitation": d.reference, "link": link, "reminder": reminder }),
        };
        hcrm_kit::outbox::send_via(self.notifier.as_ref(), &message).await
    }
}

fn escalation_subject(payload: &serde_json::Value) -> String {
    let number = payload.get("number").and_then(|x| x.as_str()).unwrap_or_default();
    match payload.get("level").and_then(|x| x.as_i64()) {
        Some(1) => format!("投诉即将超时 / case {number} due soon"),
        Some(2) => format!("投诉已超时 / case {number} overdue"),
        Some(_) => format!("投诉再次超时 / case {number} overdue again"),
        None => "患者服务通知 / patient-service notice".into(),
    }
}
