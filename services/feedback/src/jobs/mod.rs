//! Background loops of the feedback service: the followup feed consumer, the escalation pass,
//! reminders to non-responders, and the outbox dispatcher. Each may run on every replica.

mod send;

pub use send::FeedbackSender;

use crate::store::Store;
use futures::StreamExt;
use hcrm_kit::ApiError;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::{Caller, lazy_channel};
use hcrm_kit::server::Job;
use hcrm_proto::followup::WatchEventsRequest;
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::types::Event;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tonic::transport::Channel;

/// Sleeps `d` unless the process stops first; true when it stops.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// The followup service's event feed.
#[derive(Clone)]
pub struct FollowupFeed {
    client: FollowupServiceClient<Channel>,
    caller: Caller,
}

impl FollowupFeed {
    pub fn new(url: &str, authenticator: Arc<Authenticator>) -> anyhow::Result<Self> {
        Ok(Self {
            client: FollowupServiceClient::new(lazy_channel(url)?),
            caller: Caller::new(crate::TARGET, &[Role::Integration], authenticator),
        })
    }

    /// The feed after `after`, live.
    pub async fn watch(&self, after: i64) -> Result<tonic::Streaming<Event>, ApiError> {
        let mut request = self.caller.request(
            WatchEventsRequest {
                after_sequence: after,
                types: vec!["followup.complaint_raised".into()],
            },
            Duration::from_secs(5),
        )?;
        // A feed is long-lived: no deadline on the stream itself.
        request.metadata_mut().remove("grpc-timeout");
        self.client
            .clone()
            .watch_events(request)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::Unavailable(format!("followup service: {}", s.message())))
    }
}

/// Follows the followup feed from this service's cursor; reconnects with backoff.
pub fn followup_consumer(store: Store, feed: FollowupFeed) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            let mut failures = 0u32;
            loop {
                if *stop.borrow() {
                    return;
                }
                match consume(&store, &feed, &mut stop).await {
                    Ok(()) => failures = 0,
                    Err(err) => {
                        failures += 1;
                        // The followup service starting later is normal: quiet at first.
                        if failures > 3 {
                            tracing::warn!(error = %err, failures, "followup feed interrupted; reconnecting");
                        } else {
                            tracing::debug!(error = %err, "followup feed not reachable yet");
                        }
                    }
                }
                if pause(&mut stop, Duration::from_millis(200 * 2u64.pow(failures.min(5)))).await {
                    return;
                }
            }
        })
    })
}

async fn consume(store: &Store, feed: &FollowupFeed, stop: &mut watch::Receiver<bool>) -> Result<(), ApiError> {
    let mut events = feed
        .watch(store.cursor(crate::store::feed::FOLLOWUP_FEED).await?)
        .await?;
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(event) = next else { return Ok(()) };
        let event = event.map_err(|s| ApiError::Unavailable(format!("followup feed: {}", s.message())))?;
        store.apply_followup_event(&event).await?;
    }
}

/// Runs `pass` every `every` until the process stops; failures are logged and retried.
fn every<F, Fut>(name: &'static str, every: Duration, pass: F) -> Job
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, ApiError>> + Send,
{
    Box::new(move |mut stop| {
        Box::pin(async move {
            loop {
                match pass().await {
                    Ok(n) if n > 0 => tracing::info!(job = name, queued = n, "pass done"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(job = name, error = %err, "pass failed"),
                }
                if pause(&mut stop, every).await {
                    return;
                }
            }
        })
    })
}

/// Warns owners and escalates overdue cases.
pub fn escalation(store: Store, poll_ms: u64) -> Job {
    every("escalation", Duration::from_millis(poll_ms.max(100) * 5), move || {
        let store = store.clone();
        async move { store.escalate().await }
    })
}

/// Sends the one reminder to non-responders.
pub fn invitation_reminders(store: Store, poll_ms: u64) -> Job {
    every(
        "invitation_reminders",
        Duration::from_millis(poll_ms.max(100) * 30),
        move || {
            let store = store.clone();
            async move { store.remind_non_responders().await }
        },
    )
}
