//! What opinion's outbox holds and how it is sent: alert notices to staff and groups.

use futures::future::BoxFuture;
use hcrm_kit::ApiError;
use hcrm_kit::notify::{Message, Notifier, Recipient};
use hcrm_kit::outbox::{Claimed, Deadline, Outcome, Sender};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Opinion's [`Sender`] for `hcrm_kit::outbox::dispatcher`.
#[derive(Clone)]
pub struct OpinionSender {
    pub notifier: Arc<dyn Notifier>,
    /// E-mail addresses of staff subjects and groups.
    pub staff_email: Arc<BTreeMap<String, String>>,
}

impl Sender for OpinionSender {
    fn attempt_group<'a>(
        &'a self,
        group: &'a [Claimed],
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ApiError>> {
        Box::pin(async move { Ok(deadline.each(group, |d| self.attempt(d)).await) })
    }
}

impl OpinionSender {
    async fn attempt(&self, d: &Claimed) -> Outcome {
        let payload: serde_json::Value = serde_json::from_str(&d.message).unwrap_or_default();
        let body = payload
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string();
        let message = Message {
            idempotency_key: d.id.clone(),
            kind: d.kind.clone(),
            recipient: Recipient {
                id: d.recipient.clone(),
                email: self.staff_email.get(&d.recipient).cloned(),
                phone: None,
            },
            subject: "舆情预警 / Online reputation alert".into(),
            body,
            payload,
        };
        hcrm_kit::outbox::send_via(self.notifier.as_ref(), &message).await
    }
}
