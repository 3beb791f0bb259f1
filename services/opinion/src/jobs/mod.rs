//! Background loops of the opinion service: the poller, the alert pass, the feedback feed
//! consumer and the outbox dispatcher. Each may run on every replica.

pub mod poll;
mod send;

pub use send::OpinionSender;

use crate::fetch::Fetcher;
use crate::store::Store;
use hcrm_kit::ApiError;
use hcrm_kit::server::{Job, periodic};
use std::sync::Arc;
use std::time::Duration;

/// The feedback feed as this service consumes it (see `store::feed`).
pub struct FeedbackEvents(pub Store);

impl hcrm_kit::peers::feed::Consumer for FeedbackEvents {
    async fn cursor(&self) -> Result<i64, ApiError> {
        self.0.cursor(crate::store::feed::FEEDBACK_FEED).await
    }

    async fn apply(&self, event: hcrm_proto::types::Event) -> Result<(), ApiError> {
        self.0.apply_feedback_event(&event).await.map(|_| ())
    }
}

/// The feedback feed's events this service acts on.
pub const FEEDBACK_EVENTS: &[&str] = &["feedback.case_opened"];

/// Fetches the sources that are due.
pub fn poller(store: Store, fetcher: Arc<Fetcher>, every: Duration) -> Job {
    periodic("poller", every, move || {
        let (store, fetcher) = (store.clone(), fetcher.clone());
        async move { poll::poll_due(&store, &fetcher).await.map(|n| n as u64) }
    })
}

/// Evaluates the alert rules.
pub fn alerts(store: Store, every: Duration) -> Job {
    periodic("alerts", every, move || {
        let store = store.clone();
        async move { store.evaluate_alerts().await.map(|n| n as u64) }
    })
}
