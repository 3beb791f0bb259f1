//! Thin gRPC adapters: check the caller's permission, validate at the edge, call the store.

pub mod deliveries;
pub mod followup;
pub mod templates;

use crate::permissions::{PERMISSIONS, Perm};
use crate::store::Store;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::paging::PageTokens;
use hcrm_kit::peers::patients::Patients;
use hcrm_kit::request::RequestContext;
use tonic::{Request, Status};

/// Shared state of the followup service's gRPC servers.
#[derive(Clone)]
pub struct Api {
    pub store: Store,
    pub patients: Patients,
    pub pages: PageTokens,
    pub stopping: tokio::sync::watch::Receiver<bool>,
    pub max_attempts: i32,
    pub min_group_size: i64,
}

impl Api {
    /// The caller's context and the scope of `perm`; a denial is audited and answered
    /// PERMISSION_DENIED.
    pub async fn authorize<T>(
        &self,
        request: &Request<T>,
        perm: Perm,
        method: &str,
    ) -> Result<(RequestContext, Scope), Status> {
        let ctx = RequestContext::of(request)?;
        let scope = self.store.ledger.authorize(&ctx, &PERMISSIONS, perm, method).await?;
        Ok((ctx, scope))
    }
}

/// The idempotency key of a create, scoped to the caller and method.
pub fn request_key(method: &str, ctx: &RequestContext, request_id: &str) -> Option<String> {
    (!request_id.is_empty()).then(|| format!("{method}\u{1f}{}\u{1f}{request_id}", ctx.principal.subject))
}

/// A page token's position, read back for the query it was issued for.
pub fn position<T: serde::de::DeserializeOwned>(
    pages: &PageTokens,
    query: &str,
    token: &str,
) -> Result<Option<T>, ApiError> {
    pages.read("page_token", query, token)
}
