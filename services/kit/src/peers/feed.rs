//! Another service's event feed and the loop that follows it. Every HCRM service serves
//! `WatchEvents(after_sequence, types) → stream Event` with the same request fields, so one
//! client reads any of them given the method's path; the consumer keeps its cursor in its own
//! database and applies each event with it (see `docs/conventions.md`, "Between services").

use crate::ApiError;
use crate::auth::{Authenticator, Role};
use crate::client::{Caller, lazy_channel};
use crate::server::{Job, pause};
use futures::StreamExt;
use hcrm_proto::patients::WatchEventsRequest;
use hcrm_proto::types::Event;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tonic::transport::Channel;

/// The WatchEvents methods of the services.
pub const PATIENTS: &str = "/hcrm.patients.v1.PatientService/WatchEvents";
pub const FOLLOWUP: &str = "/hcrm.followup.v1.FollowupService/WatchEvents";
pub const FEEDBACK: &str = "/hcrm.feedback.v1.CaseService/WatchEvents";
pub const OPINION: &str = "/hcrm.opinion.v1.MentionService/WatchEvents";

/// One peer's feed.
#[derive(Clone)]
pub struct Feed {
    grpc: tonic::client::Grpc<Channel>,
    path: &'static str,
    caller: Caller,
}

impl Feed {
    /// The feed served at `path` (one of the constants) by the peer at `url`, read as
    /// `service:{service}` with the integration role.
    pub fn new(
        service: &str,
        url: &str,
        path: &'static str,
        authenticator: Arc<Authenticator>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            grpc: tonic::client::Grpc::new(lazy_channel(url)?),
            path,
            caller: Caller::new(service, &[Role::Integration], authenticator),
        })
    }

    /// The events after `after` of the given types, then live.
    pub async fn watch(&self, after: i64, types: &[&str]) -> Result<tonic::Streaming<Event>, ApiError> {
        let unavailable = |what: String| ApiError::Unavailable(format!("{}: {what}", self.path));
        let mut request = self.caller.request(
            WatchEventsRequest {
                after_sequence: after,
                types: types.iter().map(|t| t.to_string()).collect(),
            },
            Duration::from_secs(5),
        )?;
        // A feed is long-lived: no deadline on the stream itself.
        request.metadata_mut().remove("grpc-timeout");
        let mut grpc = self.grpc.clone();
        grpc.ready().await.map_err(|e| unavailable(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<WatchEventsRequest, Event>::default();
        let path = http::uri::PathAndQuery::from_static(self.path);
        grpc.server_streaming(request, path, codec)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| unavailable(s.message().to_string()))
    }
}

/// Where a consumer is in `feed`: the position kept in its `consumer_cursors` table (0 before
/// the first event).
pub async fn position(db: &crate::db::Db, feed: &str) -> Result<i64, ApiError> {
    let row = sqlx::query("SELECT position FROM consumer_cursors WHERE feed = $1")
        .bind(feed)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row
        .map(|r| crate::db::col::<i64>(&r, "position"))
        .transpose()?
        .unwrap_or(0))
}

/// What a consumer does: where it is, and applying one event together with its cursor (an
/// event the cursor has passed must be a no-op).
pub trait Consumer: Send + Sync + 'static {
    fn cursor(&self) -> impl Future<Output = Result<i64, ApiError>> + Send;
    fn apply(&self, event: Event) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// Follows `feed` from the consumer's cursor until the process stops; reconnects with backoff
/// (quietly at first: a peer starting later is normal).
pub fn consume<C: Consumer>(name: &'static str, feed: Feed, types: &'static [&'static str], consumer: C) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            let mut failures = 0u32;
            loop {
                if *stop.borrow() {
                    return;
                }
                match follow(&feed, types, &consumer, &mut stop).await {
                    Ok(()) => failures = 0,
                    Err(err) => {
                        failures += 1;
                        if failures > 3 {
                            tracing::warn!(feed = name, error = %err, failures, "feed interrupted; reconnecting");
                        } else {
                            tracing::debug!(feed = name, error = %err, "feed not reachable yet");
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

async fn follow<C: Consumer>(
    feed: &Feed,
    types: &[&str],
    consumer: &C,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ApiError> {
    let mut events = feed.watch(consumer.cursor().await?, types).await?;
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(event) = next else { return Ok(()) };
        let event = event.map_err(|s| ApiError::Unavailable(format!("feed: {}", s.message())))?;
        consumer.apply(event).await?;
    }
}
