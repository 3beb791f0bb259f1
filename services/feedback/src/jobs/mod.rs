//! Background loops of the feedback service: the followup feed consumer, the escalation pass,
//! reminders to non-responders, and the outbox dispatcher. Each may run on every replica.

mod send;

pub use send::FeedbackSender;

use crate::store::Store;
use hcrm_kit::ApiError;
use hcrm_kit::server::{Job, periodic};
use std::time::Duration;

/// The followup feed as this service consumes it (see `store::feed`).
pub struct FollowupEvents(pub Store);

impl hcrm_kit::peers::feed::Consumer for FollowupEvents {
    async fn cursor(&self) -> Result<i64, ApiError> {
        self.0.cursor(crate::store::feed::FOLLOWUP_FEED).await
    }

    async fn apply(&self, event: hcrm_proto::types::Event) -> Result<(), ApiError> {
        self.0
            .apply_event(crate::store::feed::FOLLOWUP_FEED, &event)
            .await
            .map(|_| ())
    }
}

/// The opinion feed as this service consumes it (see `store::feed`).
pub struct OpinionEvents(pub Store);

impl hcrm_kit::peers::feed::Consumer for OpinionEvents {
    async fn cursor(&self) -> Result<i64, ApiError> {
        self.0.cursor(crate::store::feed::OPINION_FEED).await
    }

    async fn apply(&self, event: hcrm_proto::types::Event) -> Result<(), ApiError> {
        self.0
            .apply_event(crate::store::feed::OPINION_FEED, &event)
            .await
            .map(|_| ())
    }
}

/// The opinion feed's events this service acts on.
pub const OPINION_EVENTS: &[&str] = &["opinion.case_requested"];

/// The followup feed's events this service acts on.
pub const FOLLOWUP_EVENTS: &[&str] = &["followup.complaint_raised", "followup.case_confirmed"];

/// Warns owners and escalates overdue cases.
pub fn escalation(store: Store, poll_ms: u64) -> Job {
    periodic("escalation", Duration::from_millis(poll_ms.max(100) * 5), move || {
        let store = store.clone();
        async move { store.escalate().await }
    })
}

/// Sends the one reminder to non-responders.
pub fn invitation_reminders(store: Store, poll_ms: u64) -> Job {
    periodic(
        "invitation_reminders",
        Duration::from_millis(poll_ms.max(100) * 30),
        move || {
            let store = store.clone();
            async move { store.remind_non_responders().await }
        },
    )
}
