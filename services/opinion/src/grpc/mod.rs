//! Thin gRPC adapters: check the caller's permission, validate at the edge, call the store.

pub mod incidents;
pub mod mentions;
pub mod reputation;
pub mod watch;

use crate::fetch::Fetcher;
use crate::permissions::{PERMISSIONS, Perm};
use crate::store::{Actor, Store};
use hcrm_kit::ApiError;
use hcrm_kit::paging::PageTokens;
use hcrm_kit::peers::patients::Patients;
use hcrm_kit::request::RequestContext;
use std::sync::Arc;
use tonic::{Request, Status};

/// Shared state of the opinion service's gRPC servers.
#[derive(Clone)]
pub struct Api {
    pub store: Store,
    pub patients: Patients,
    pub fetcher: Arc<Fetcher>,
    /// Hosts sources may name although they resolve to private addresses.
    pub allow_hosts: Arc<Vec<String>>,
    pub pages: PageTokens,
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl Api {
    /// The caller's context; a denial is audited and answered PERMISSION_DENIED. The opinion
    /// service has no department scopes.
    pub async fn authorize<T>(&self, request: &Request<T>, perm: Perm, method: &str) -> Result<RequestContext, Status> {
        let ctx = RequestContext::of(request)?;
        self.store.ledger.authorize(&ctx, &PERMISSIONS, perm, method).await?;
        Ok(ctx)
    }
}

/// The actor of a request, for notes and audit.
pub fn actor(ctx: &RequestContext) -> Actor {
    Actor {
        principal: ctx.principal.clone(),
        request_id: ctx.request_id.clone(),
    }
}

/// The idempotency key of a create, scoped to the caller and method.
pub fn request_key(method: &str, ctx: &RequestContext, request_id: &str) -> Option<String> {
    (!request_id.is_empty()).then(|| format!("{method}\u{1f}{}\u{1f}{request_id}", ctx.principal.subject))
}

/// INVALID_ARGUMENT for a malformed `request_id`.
pub fn v_request_id(request_id: &str) -> Result<(), ApiError> {
    let mut v = hcrm_kit::validate::Violations::new();
    v.request_id("request_id", request_id);
    v.finish()
}

/// A page token's position, read back for the query it was issued for.
pub fn position<T: serde::de::DeserializeOwned>(
    pages: &PageTokens,
    query: &str,
    token: &str,
) -> Result<Option<T>, ApiError> {
    pages.read("page_token", query, token)
}

/// The id of an optional resource name filter (`None` when empty).
pub fn optional_id(field: &str, name: &str, collection: &str) -> Result<Option<String>, ApiError> {
    if name.is_empty() {
        return Ok(None);
    }
    hcrm_kit::resource::parse_name(field, name, collection).map(|id| Some(id.to_string()))
}

/// A timestamp field as microseconds, INVALID_ARGUMENT when out of range.
pub fn micros(field: &str, ts: &Option<prost_types::Timestamp>) -> Result<Option<i64>, ApiError> {
    match ts {
        None => Ok(None),
        Some(t) => hcrm_kit::time::from_timestamp(t)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, "must be a valid time")),
    }
}

/// The (time, id) position of a resource listed newest first.
pub fn time_position(ts: &Option<prost_types::Timestamp>, name: &str) -> (i64, String) {
    let at = ts.as_ref().and_then(hcrm_kit::time::from_timestamp).unwrap_or_default();
    let id = name.rsplit('/').next().unwrap_or_default().to_string();
    (at, id)
}
