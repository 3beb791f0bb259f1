//! Calls from one service to another: a lazily connected channel (so the callee may start later,
//! or be this very process) and a short-lived token minted with the process's signing key.

use crate::ApiError;
use crate::auth::{Authenticator, Role};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// How long a minted service token lives; it is renewed well before.
const TOKEN_TTL_SECS: u64 = 3600;
const RENEW_AFTER: Duration = Duration::from_secs(TOKEN_TTL_SECS / 2);

/// A lazily connected channel to `url`, with connect timeout and keep-alive so a dead peer is
/// noticed (a half-open connection would otherwise hang every call).
pub fn lazy_channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// A service's identity towards other services: `service:{name}` with fixed roles.
#[derive(Clone)]
pub struct Caller {
    subject: String,
    roles: Vec<Role>,
    authenticator: Arc<Authenticator>,
    cached: Arc<Mutex<Option<(String, Instant)>>>,
}

impl Caller {
    pub fn new(service: &str, roles: &[Role], authenticator: Arc<Authenticator>) -> Self {
        Self {
            subject: format!("service:{service}"),
            roles: roles.to_vec(),
            authenticator,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    fn token(&self) -> Result<String, ApiError> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, at)) = cached.as_ref()
            && at.elapsed() < RENEW_AFTER
        {
            return Ok(token.clone());
        }
        let token = self
            .authenticator
            .mint(&self.subject, &self.roles, None, TOKEN_TTL_SECS)
            .map_err(ApiError::internal)?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    /// A request carrying this service's bearer token and a deadline.
    pub fn request<T>(&self, message: T, timeout: Duration) -> Result<tonic::Request<T>, ApiError> {
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {}", self.token()?)
            .parse()
            .map_err(|e| ApiError::internal(anyhow::anyhow!("token is not a header value: {e}")))?;
        request.metadata_mut().insert("authorization", value);
        request.set_timeout(timeout);
        Ok(request)
    }
}

/// An interceptor that sends a bearer token with every call (or none: for tests of
/// unauthenticated calls).
#[derive(Clone, Debug)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// `authorization: Bearer {token}`; an error when the token is not a valid header value.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self(Some(format!("Bearer {token}").parse()?)))
    }

    /// No `authorization` header.
    pub fn none() -> Self {
        Self(None)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}
