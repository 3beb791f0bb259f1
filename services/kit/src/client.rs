//! Calls from one service to another: a lazily connected channel (so the callee may start later,
//! or be this very process) and a short-lived token minted with the process's signing key.
//!
//! A peer's URL is either `http://host:port` (one connection: behind a Kubernetes ClusterIP
//! Service every call of this process goes to the one pod the connection landed on) or
//! `dns:///host:port`, gRPC's name for "every address `host` resolves to": one connection to each,
//! each call to the less loaded of two picked at random, the set following DNS. With a headless
//! Service the addresses are the ready pods, so calls spread over all replicas and new ones get
//! traffic within seconds of becoming ready.

use crate::ApiError;
use crate::auth::{Authenticator, Role};
use anyhow::Context as _;
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

/// How long a minted service token lives; it is renewed well before.
const TOKEN_TTL_SECS: u64 = 3600;
const RENEW_AFTER: Duration = Duration::from_secs(TOKEN_TTL_SECS / 2);

/// How often a `dns:///` peer is resolved again. Kubernetes changes a headless Service's records
/// as pods become ready or stop; the old address set is kept while resolution fails.
const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// gRPC's scheme for a name resolved to every address it has.
const DNS_SCHEME: &str = "dns:///";

/// A lazily connected channel to `url` (`http://host:port`, or `dns:///host:port` balanced
/// over every address of `host`; see the module's comment). Must be called inside a Tokio
/// runtime for `dns:///`, which resolves in a task that ends with the channel.
pub fn lazy_channel(url: &str) -> anyhow::Result<Channel> {
    match peer(url)? {
        Peer::Direct(endpoint) => Ok(endpoint.connect_lazy()),
        Peer::Resolved(name) => {
            let target = name.clone();
            let resolve = move || {
                let name = target.clone();
                async move { Ok(tokio::net::lookup_host(name).await?.collect()) }
            };
            resolving_channel(&name, resolve, RESOLVE_EVERY)
        }
    }
}

/// Whether `url` names a peer `lazy_channel` can reach (for `hcrm config check`).
pub fn check_peer_url(url: &str) -> anyhow::Result<()> {
    peer(url).map(drop)
}

enum Peer {
    Direct(Box<Endpoint>),
    /// `host:port` to resolve.
    Resolved(String),
}

fn peer(url: &str) -> anyhow::Result<Peer> {
    let Some(target) = url.strip_prefix(DNS_SCHEME) else {
        return Ok(Peer::Direct(Box::new(endpoint(url)?)));
    };
    let (host, port) = target
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .with_context(|| format!("peer `{url}`: expected dns:///host:port"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("peer `{url}`: `{port}` is not a port"))?;
    Ok(Peer::Resolved(format!("{host}:{port}")))
}

/// The peer as an `http://host:port` base URL, for HTTP/1.1 callers (the gateway's grpc-web
/// forwarding): a `dns:///` name then reaches the address DNS gives first on each new connection.
pub fn http_base(url: &str) -> String {
    match url.strip_prefix(DNS_SCHEME) {
        Some(target) => format!("http://{target}"),
        None => url.trim_end_matches('/').to_string(),
    }
}

/// An endpoint with connect timeout and keep-alive so a dead peer is noticed (a half-open
/// connection would otherwise hang every call).
fn endpoint(url: &str) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.to_string())
        .with_context(|| format!("peer `{url}` is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

/// A channel balanced (power of two choices, by calls in flight) over the addresses `resolve`
/// gives for `peer` (named in the logs), asked again every `every`. Until the first answer,
/// calls wait (up to their deadline).
pub fn resolving_channel<R, F>(peer: &str, resolve: R, every: Duration) -> anyhow::Result<Channel>
where
    R: FnMut() -> F + Send + 'static,
    F: Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current().context("a dns:/// peer needs a Tokio runtime")?;
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    runtime.spawn(follow(peer.to_string(), resolve, every, changes));
    Ok(channel)
}

/// Sends the balancer what changed between answers; ends when the channel is dropped.
async fn follow<R, F>(
    peer: String,
    mut resolve: R,
    every: Duration,
    changes: tokio::sync::mpsc::Sender<Change<SocketAddr, Endpoint>>,
) where
    R: FnMut() -> F,
    F: Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    let mut current: HashSet<SocketAddr> = HashSet::new();
    let mut failing = false;
    loop {
        let answer = tokio::select! {
            answer = resolve() => answer,
            _ = changes.closed() => return,
        };
        match answer {
            Ok(addrs) if !addrs.is_empty() => {
                failing = false;
                let next: HashSet<SocketAddr> = addrs.into_iter().collect();
                let mut sent = Vec::new();
                for gone in current.difference(&next) {
                    sent.push(Change::Remove(*gone));
                }
                for new in next.difference(&current) {
                    match endpoint(&format!("http://{new}")) {
                        Ok(endpoint) => sent.push(Change::Insert(*new, endpoint)),
                        Err(error) => tracing::warn!(%peer, %new, %error, "peer address skipped"),
                    }
                }
                if !sent.is_empty() {
                    tracing::info!(%peer, addresses = ?next, "peer addresses changed");
                }
                for change in sent {
                    if changes.send(change).await.is_err() {
                        return;
                    }
                }
                current = next;
            }
            // Keep the last addresses: calls to them fail fast (UNAVAILABLE) rather than wait.
            Ok(_) if !failing => {
                failing = true;
                tracing::warn!(%peer, kept = current.len(), "peer name resolved to no address");
            }
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%peer, %error, kept = current.len(), "peer name did not resolve");
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = changes.closed() => return,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::ServingStatus;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    /// A health server whose service `who` reports `status`: which replica answered.
    async fn replica(status: ServingStatus) -> SocketAddr {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter.set_service_status("who", status).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }

    async fn answers(channel: &Channel, calls: usize) -> HashSet<i32> {
        let mut client = HealthClient::new(channel.clone());
        let mut seen = HashSet::new();
        for _ in 0..calls {
            let mut request = tonic::Request::new(HealthCheckRequest { service: "who".into() });
            request.set_timeout(Duration::from_secs(5));
            seen.insert(client.check(request).await.unwrap().into_inner().status);
        }
        seen
    }

    #[tokio::test]
    async fn calls_spread_over_every_address_and_follow_changes() {
        let a = replica(ServingStatus::Serving).await;
        let b = replica(ServingStatus::NotServing).await;
        let addrs = Arc::new(Mutex::new(vec![a, b]));
        let source = addrs.clone();
        let channel = resolving_channel(
            "two replicas",
            move || {
                let now = source.lock().unwrap().clone();
                async move { Ok(now) }
            },
            Duration::from_millis(50),
        )
        .unwrap();
        // Calls run one at a time, so each pick is a coin toss: 60 land on one side with p = 2^-59.
        assert_eq!(
            answers(&channel, 60).await,
            HashSet::from([1, 2]),
            "both replicas answer"
        );

        addrs.lock().unwrap().retain(|x| *x != a);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            answers(&channel, 20).await,
            HashSet::from([2]),
            "a removed replica gets no call"
        );

        // An empty answer keeps the last set rather than leaving calls nowhere to go.
        addrs.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(answers(&channel, 5).await, HashSet::from([2]));

        addrs.lock().unwrap().push(a);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(answers(&channel, 60).await, HashSet::from([1]), "a new replica is used");
    }

    #[tokio::test]
    async fn dns_peer_resolves_the_name() {
        let a = replica(ServingStatus::Serving).await;
        let channel = lazy_channel(&format!("dns:///localhost:{}", a.port())).unwrap();
        assert_eq!(answers(&channel, 3).await, HashSet::from([1]));
    }

    #[test]
    fn http_base_of_a_peer() {
        assert_eq!(
            http_base("dns:///hcrm-patients-peers:50051"),
            "http://hcrm-patients-peers:50051"
        );
        assert_eq!(http_base("http://127.0.0.1:50051/"), "http://127.0.0.1:50051");
    }

    #[tokio::test]
    async fn bad_peer_urls_are_refused_at_start() {
        for url in [
            "dns:///hcrm-patients",
            "dns:///:50051",
            "dns:///hcrm-patients:port",
            "not a url",
        ] {
            assert!(lazy_channel(url).is_err(), "{url}");
            assert!(check_peer_url(url).is_err(), "{url}");
        }
        check_peer_url("dns:///hcrm-patients-peers:50051").unwrap();
        check_peer_url("http://hcrm-patients:50051").unwrap();
    }
}
