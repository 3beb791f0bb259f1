//! Per-request context: who is calling and under which request id. An interceptor puts it into
//! the request's extensions; handlers take it out with [`RequestContext::of`].

use crate::auth::{Authenticator, Principal};
use crate::error::ApiError;
use std::sync::Arc;
use tonic::{Request, Status};

/// Metadata key of the request id; echoed back on responses by the server layer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Who is calling and under which request id.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub principal: Principal,
}

impl RequestContext {
    /// The context the auth interceptor attached; a missing one is a wiring bug and is reported
    /// as `UNAUTHENTICATED` rather than a panic.
    pub fn of<T>(request: &Request<T>) -> Result<RequestContext, Status> {
        request
            .extensions()
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("missing authentication context"))
    }

    /// Converts an error into a status carrying this request's id.
    pub fn status(&self, err: ApiError) -> Status {
        err.into_status(&self.request_id)
    }
}

/// The request id a caller sent, when it is sane, or a new one.
pub fn request_id_of<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(crate::new_id)
}

/// Interceptor that authenticates every call of a service and attaches its [`RequestContext`].
#[derive(Clone)]
pub struct AuthInterceptor {
    authenticator: Arc<Authenticator>,
}

impl AuthInterceptor {
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self { authenticator }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let request_id = request_id_of(&request);
        let header = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        match self.authenticator.verify_header(header) {
            Ok(principal) => {
                request
                    .extensions_mut()
                    .insert(RequestContext { request_id, principal });
                Ok(request)
            }
            Err(err) => {
                tracing::debug!(%request_id, "unauthenticated call rejected");
                Err(err.into_status(&request_id))
            }
        }
    }
}
