//! What every handler of the gateway shares.

use crate::Config;
use crate::api::catalog::Catalog;
use crate::limits::Limits;
use crate::store::Store;
use crate::upstream::Upstreams;
use hcrm_kit::auth::{Authenticator, Principal, Role};
use hcrm_kit::client::Caller;
use hcrm_kit::deps::Deps;
use std::sync::Arc;
use std::time::Duration;

/// How long a token minted for one forwarded call lives: long enough for a slow call, short
/// enough that a signed-out session's token is soon useless.
const FORWARDED_TOKEN_SECS: u64 = 300;

pub struct Gateway {
    pub cfg: Config,
    pub store: Store,
    pub upstreams: Upstreams,
    pub catalog: Catalog,
    pub authenticator: Arc<Authenticator>,
    pub limits: Arc<Limits>,
    /// The gateway's own identity for the patients' pages: `service:gateway` with the
    /// integration role (answer surveys, file cases; read no one's records).
    pub service: Caller,
    /// The OpenAPI document, rendered once.
    pub openapi: bytes::Bytes,
    /// HTTP/1.1 client for grpc-web forwarding (the services' listeners speak grpc-web).
    pub http: reqwest::Client,
    /// Turns true when the process starts draining: readiness fails at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Password checks at once (argon2id takes 19 MiB and ~30 ms of CPU each).
    hashing: tokio::sync::Semaphore,
}

/// Password checks that may run at once, and how long one waits for its turn.
const HASHING_AT_ONCE: usize = 4;
const HASHING_WAIT: Duration = Duration::from_secs(10);

impl Gateway {
    pub fn new(cfg: Config, store: Store, upstreams: Upstreams, deps: Deps) -> anyhow::Result<Self> {
        let catalog = Catalog::new(&upstreams)?;
        let call_timeout = Duration::from_secs(cfg.call_timeout_secs);
        let openapi = serde_json::to_vec_pretty(&crate::api::openapi::document(&catalog.services()))?.into();
        Ok(Self {
            limits: Arc::new(Limits::new(&cfg)),
            service: Caller::new(crate::TARGET, &[Role::Integration], deps.authenticator.clone()),
            stopping: deps.stopping.clone(),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
            authenticator: deps.authenticator,
            cfg,
            store,
            upstreams,
            catalog,
            openapi,
            http: reqwest::Client::builder()
                .http1_only()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .timeout(call_timeout)
                .build()?,
        })
    }

    /// A bearer token for one call on behalf of `principal`.
    pub fn mint(&self, principal: &Principal) -> Result<String, hcrm_kit::ApiError> {
        self.authenticator
            .mint(
                &principal.subject,
                &principal.roles,
                principal.department.as_deref(),
                FORWARDED_TOKEN_SECS,
            )
            .map_err(hcrm_kit::ApiError::internal)
    }

    /// Runs a password check on the blocking pool, a few at a time; UNAVAILABLE when the queue
    /// does not move within ten seconds (a burst of sign-ins).
    pub async fn checking_password<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, hcrm_kit::ApiError> {
        let _permit = tokio::time::timeout(HASHING_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| hcrm_kit::ApiError::Unavailable("too many sign-ins at once; try again shortly".into()))?
            .map_err(hcrm_kit::ApiError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(hcrm_kit::ApiError::internal)
    }

    /// The deadline of a call to a service.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.call_timeout_secs)
    }
}
