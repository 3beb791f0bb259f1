//! A service's ledger at run time: wakes the sealer after commits, seals, and serves the event
//! feed as a `WatchEvents` stream — the same way in every service.

use crate::ApiError;
use crate::db::Db;
use crate::ledger::{self, AuditEntry};
use crate::request::RequestContext;
use crate::server::Job;
use hcrm_proto::types::Event;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tonic::Status;

/// A server-streaming response.
pub type ServerStream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A response stream fed by a spawned task through a bounded channel (back-pressure: the task
/// waits while the client is slow).
pub fn async_stream<T, F, Fut>(body: F) -> ServerStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// The audit log and event feed of one service's database.
#[derive(Clone)]
pub struct Ledger {
    db: Db,
    /// Woken after every commit that wrote audit entries or events: the sealer job listens.
    unsealed: Arc<Notify>,
    /// Woken after every seal that published events: WatchEvents streams in this process listen.
    published: Arc<Notify>,
}

impl Ledger {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            unsealed: Arc::new(Notify::new()),
            published: Arc::new(Notify::new()),
        }
    }

    /// Wakes the sealer after a commit that wrote to the ledger.
    pub fn changed(&self) {
        self.unsealed.notify_one();
    }

    /// Seals what is committed and wakes local watchers when events were published.
    pub async fn seal(&self) -> Result<(), ApiError> {
        let mut published = false;
        loop {
            let sealed = ledger::seal(&self.db).await?;
            if sealed == ledger::Sealed::default() {
                break;
            }
            published |= sealed.events > 0;
        }
        if published {
            self.published.notify_waiters();
        }
        Ok(())
    }

    /// Appends one audit entry in its own transaction (denied attempts).
    /// The scope in which the caller of `ctx` holds `perm` of `table`; a denial is written to
    /// the audit log and answered PERMISSION_DENIED.
    pub async fn authorize<P: PartialEq + std::fmt::Debug + Copy>(
        &self,
        ctx: &RequestContext,
        table: &crate::auth::PermissionTable<P>,
        perm: P,
        method: &str,
    ) -> Result<crate::auth::Scope, Status> {
        match ctx.principal.authorize(table, perm) {
            Ok(scope) => Ok(scope),
            Err(err) => {
                let entry = AuditEntry::new(
                    ctx,
                    "permission.denied",
                    method,
                    "",
                    serde_json::json!({ "permission": format!("{perm:?}") }),
                );
                if let Err(audit_err) = self.audit_alone(entry).await {
                    tracing::warn!(error = %audit_err, method, "could not audit a denied call");
                }
                tracing::info!(subject = %ctx.principal.subject, method, permission = ?perm, "permission denied");
                Err(ctx.status(err))
            }
        }
    }

    pub async fn audit_alone(&self, entry: AuditEntry) -> Result<(), ApiError> {
        ledger::append_alone(&self.db, crate::time::now_micros(), &[entry]).await?;
        self.changed();
        Ok(())
    }

    /// Seals committed audit entries and events: woken by every commit, and every second for
    /// commits made by other replicas.
    pub fn sealer_job(&self) -> Job {
        let ledger = self.clone();
        Box::new(move |mut stop| {
            Box::pin(async move {
                loop {
                    tokio::select! {
                        _ = ledger.unsealed.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                    }
                    // Coalesce bursts (bulk intake commits every few milliseconds): one seal per
                    // 25 ms at most. Readers seal for themselves, so this adds no latency for them.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                        _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                    }
                    if let Err(err) = ledger.seal().await {
                        tracing::warn!(error = %err, "sealing the ledger failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            })
        })
    }

    /// Checks a WatchEvents request.
    pub fn check_watch(after_sequence: i64, types: &[String]) -> Result<(), ApiError> {
        if after_sequence < 0 {
            return Err(ApiError::invalid("after_sequence", "must not be negative"));
        }
        if types.len() > 20 || types.iter().any(|t| t.is_empty() || t.len() > 64) {
            return Err(ApiError::invalid("types", "at most 20 types of 1–64 characters"));
        }
        Ok(())
    }

    /// The feed after `after_sequence`, then live until the client leaves or the server drains.
    pub fn watch(
        &self,
        ctx: RequestContext,
        after_sequence: i64,
        types: Vec<String>,
        mut stopping: watch::Receiver<bool>,
    ) -> ServerStream<Event> {
        let ledger = self.clone();
        async_stream(move |tx| async move {
            let mut cursor = after_sequence;
            loop {
                // Register for wake-ups before reading, so a commit in between is not missed.
                let notified = ledger.published.notified();
                let events = match ledger::events_after(&ledger.db, cursor, &types, 500).await {
                    Ok(events) if events.is_empty() => {
                        // Nothing sealed yet: seal what is committed (the job may be asleep) and look again.
                        match ledger.seal().await {
                            Ok(()) => ledger::events_after(&ledger.db, cursor, &types, 500).await,
                            Err(e) => {
                                let _ = tx.send(Err(ctx.status(e))).await;
                                return;
                            }
                        }
                    }
                    other => other,
                };
                match events {
                    Ok(events) if !events.is_empty() => {
                        for e in events {
                            cursor = e.sequence;
                            let event = Event {
                                sequence: e.sequence,
                                r#type: e.kind,
                                resource: e.resource,
                                occur_time: Some(crate::time::to_timestamp(e.at)),
                                payload_json: e.payload,
                            };
                            if tx.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(ctx.status(e.into()))).await;
                        return;
                    }
                }
                // Other replicas' commits are not notified here: poll as well.
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = tx.closed() => return,
                    _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
                        let _ = tx.send(Err(Status::unavailable(
                            "server is shutting down; resume from your cursor on another replica",
                        ))).await;
                        return;
                    }
                }
            }
        })
    }
}
