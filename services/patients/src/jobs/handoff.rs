//! The patients service's outbox [`Sender`]: appointment requests go to the hospital's booking
//! platform through the configured notifier (a signed webhook; the delivery id is the
//! `Idempotency-Key`). An accepted request becomes SENT; one the outbox gives up on, FAILED.

use crate::store::Store;
use crate::store::appointments::{DELIVERY_KIND, RECIPIENT};
use futures::future::BoxFuture;
use hcrm_kit::ApiError;
use hcrm_kit::notify::{Message, Notifier, Recipient};
use hcrm_kit::outbox::{Claimed, Deadline, Outcome, Sender};
use hcrm_proto::patients::AppointmentState;
use std::sync::Arc;

/// Sends what the patients outbox holds.
#[derive(Clone)]
pub struct HandoffSender {
    pub store: Store,
    pub notifier: Arc<dyn Notifier>,
    /// Failed attempts before the outbox gives up (`booking_delivery.max_attempts`).
    pub max_attempts: i64,
}

impl Sender for HandoffSender {
    fn attempt_group<'a>(
        &'a self,
        group: &'a [Claimed],
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ApiError>> {
        Box::pin(async move { Ok(deadline.each(group, |d| self.attempt(d)).await) })
    }
}

impl HandoffSender {
    async fn attempt(&self, d: &Claimed) -> Outcome {
        match d.kind.as_str() {
            DELIVERY_KIND => self.appointment(d).await,
            other => Outcome::Skipped(format!("unknown delivery kind {other}")),
        }
    }

    async fn appointment(&self, d: &Claimed) -> Outcome {
        let id = d.reference.trim_start_matches("appointment_requests/");
        match self.store.appointment_state(id).await {
            Ok(None) => return Outcome::Skipped("the appointment request no longer exists".into()),
            Ok(Some(AppointmentState::Confirmed | AppointmentState::Rejected)) => {
                return Outcome::Skipped("the booking platform already answered".into());
            }
            Ok(Some(_)) => {}
            Err(err) => return Outcome::failed(err),
        }
        let payload: serde_json::Value = serde_json::from_str(&d.message).unwrap_or_default();
        let message = Message {
            idempotency_key: d.id.clone(),
            kind: d.kind.clone(),
            recipient: Recipient {
                id: RECIPIENT.into(),
                email: None,
                phone: None,
            },
            subject: "预约请求 / appointment request".into(),
            body: format!("appointment request {}", d.reference),
            payload,
        };
        let outcome = hcrm_kit::outbox::send_via(self.notifier.as_ref(), &message).await;
        let marked = match &outcome {
            Outcome::Delivered => self.store.appointment_sent(id).await,
            Outcome::Failed { error, transient } if !*transient || d.attempts >= self.max_attempts => {
                self.store.appointment_failed(id, error).await
            }
            _ => Ok(()),
        };
        if let Err(err) = marked {
            // The delivery stands; the state catches up on the next answer or retry.
            tracing::warn!(delivery = %d.id, error = %err, "could not record the hand-off state");
        }
        outcome
    }
}
