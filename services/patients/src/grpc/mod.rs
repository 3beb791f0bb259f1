//! Thin gRPC adapters: check the caller's permission, validate the request at the edge, call the
//! store, map errors to status. No SQL here.

pub mod appointments;
pub mod audit;
pub mod consultations;
pub mod directory;
pub mod fhir;
pub mod grading;
pub mod organizations;
pub mod patients;
pub mod referrals;
pub mod segments;
pub mod service_requests;

use crate::permissions::{PERMISSIONS, Perm};
use crate::store::Store;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::paging::PageTokens;
use hcrm_kit::request::RequestContext;
use tonic::{Request, Status};

/// Shared state of the patients service's gRPC servers.
#[derive(Clone)]
pub struct Api {
    pub store: Store,
    pub pages: PageTokens,
    /// `true` once the server drains: streams end so the drain does not wait on them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The outbox: appointment requests on their way to the booking platform.
    pub outbox: hcrm_kit::outbox::Outbox,
    /// FHIR identifier systems.
    pub fhir: std::sync::Arc<crate::domain::fhir::FhirConfig>,
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
        let scope = self.check(&ctx, perm, method).await?;
        Ok((ctx, scope))
    }

    /// The scope in which the caller of `ctx` holds `perm`; a denial is audited.
    pub async fn check(&self, ctx: &RequestContext, perm: Perm, method: &str) -> Result<Scope, Status> {
        self.store.ledger.authorize(ctx, &PERMISSIONS, perm, method).await
    }
}

/// Checks a free-text reason: at most 256 characters, required when `required`.
pub fn check_reason(field: &str, reason: &str, required: bool) -> Result<(), ApiError> {
    let mut v = hcrm_kit::validate::Violations::new();
    v.text(field, reason, required, 256);
    v.finish()
}

/// The idempotency key of a create: scoped to the caller and method so ids of different callers
/// never collide.
pub fn request_key(method: &str, ctx: &RequestContext, request_id: &str) -> Option<String> {
    (!request_id.is_empty()).then(|| format!("{method}\u{1f}{}\u{1f}{request_id}", ctx.principal.subject))
}

/// The update mask's paths, INVALID_ARGUMENT when missing or naming unknown fields.
pub fn mask_paths(mask: Option<&prost_types::FieldMask>, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let paths = mask.map(|m| m.paths.clone()).unwrap_or_default();
    let mut v = hcrm_kit::validate::Violations::new();
    if paths.is_empty() {
        v.add("update_mask", "is required: name the fields to update");
    }
    for (i, path) in paths.iter().enumerate() {
        if !allowed.contains(&path.as_str()) {
            v.add(
                format!("update_mask.paths[{i}]"),
                format!("{path:?} is not updatable; updatable: {}", allowed.join(", ")),
            );
        }
    }
    v.finish()?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::patient::UPDATABLE_PATHS;

    #[test]
    fn masks_must_name_updatable_fields() {
        assert!(mask_paths(None, UPDATABLE_PATHS).is_err());
        let mask = |paths: &[&str]| prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        };
        assert!(mask_paths(Some(&mask(&[])), UPDATABLE_PATHS).is_err());
        assert!(mask_paths(Some(&mask(&["etag"])), UPDATABLE_PATHS).is_err());
        assert_eq!(
            mask_paths(Some(&mask(&["vip", "address.city"])), UPDATABLE_PATHS).unwrap(),
            vec!["vip", "address.city"]
        );
    }
}
