//! The gRPC listener every process runs, and the admin HTTP listener.
//!
//! One listener mounts the enabled services with `grpc.health.v1` (NOT_SERVING until ready and
//! again on shutdown), reflection v1 and v1alpha built from the enabled descriptors (plus health
//! and `google.rpc`), grpc-web, and tower layers: per-RPC metrics and tracing with trace context
//! from the caller, a process-wide concurrency limit with load shedding, the caller's deadline
//! (or a default), and message size limits (set by each service on its server).

use crate::config::ServerConfig;
use crate::request::REQUEST_ID_HEADER;
use crate::telemetry::{HeaderExtractor, metrics_handle};
use futures::future::BoxFuture;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tower::{Layer, Service};
use tracing::Instrument;

/// A background job of a service; it stops when the receiver turns `true`.
pub type Job = Box<dyn FnOnce(watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send>;

/// Sleeps `d` unless the process stops first; true when it stops.
pub async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// A job that runs `pass` every `every` until the process stops; a pass that did something
/// (returns more than 0) is logged, a failed one is logged and retried at the next turn.
pub fn periodic<F, Fut, N>(name: &'static str, every: Duration, pass: F) -> Job
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<N, crate::ApiError>> + Send,
    N: Into<u64>,
{
    Box::new(move |mut stop| {
        Box::pin(async move {
            loop {
                match pass().await.map(Into::into) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(job = name, done = n, "pass done"),
                    Err(err) => tracing::warn!(job = name, error = %err, "pass failed"),
                }
                if pause(&mut stop, every).await {
                    return;
                }
            }
        })
    })
}

/// What a service's `build()` returns: how to mount it and what it runs in the background.
pub struct Built {
    /// Target name, e.g. `patients`.
    pub target: &'static str,
    /// Fully qualified gRPC service names, for health and reflection.
    pub services: Vec<&'static str>,
    /// Adds the service's servers to the routes.
    pub mount: Box<dyn FnOnce(&mut RoutesBuilder) + Send>,
    /// Background loops.
    pub jobs: Vec<Job>,
    /// Whether the service can answer now (its database reachable); polled every second once
    /// serving, and its services' health follows it, so readiness fails while the database is
    /// down and recovers without a restart.
    pub readiness: Option<Readiness>,
    /// An HTTP application served on the process's HTTP listener (the gateway's).
    pub http: Option<axum::Router>,
}

/// A readiness check: true when the service can answer.
pub type Readiness = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// A running server; dropping `shutdown` or sending on it starts the drain.
pub struct Handle {
    pub grpc_addr: std::net::SocketAddr,
    pub admin_addr: Option<std::net::SocketAddr>,
    /// Where the HTTP application (the gateway) listens, when one is served.
    pub http_addr: Option<std::net::SocketAddr>,
    shutdown: watch::Sender<bool>,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Handle {
    /// Starts the drain and waits for the server to stop.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.join.await?
    }

    /// Waits for the server to stop by itself (after a signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.join.await?
    }

    /// A sender that starts the drain.
    pub fn shutdown_sender(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// The sockets a process serves on, bound by the caller (tests pass port 0).
pub struct Listeners {
    /// gRPC (and grpc-web) of every enabled service.
    pub grpc: TcpListener,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub admin: Option<TcpListener>,
    /// The HTTP application of a target that has one (the gateway); required when one does.
    pub http: Option<TcpListener>,
}

impl Listeners {
    /// Only the gRPC listener.
    pub fn grpc(grpc: TcpListener) -> Self {
        Self {
            grpc,
            admin: None,
            http: None,
        }
    }
}

/// Starts serving `built` services on the given listeners; returns once they accept calls.
/// `shutdown` is the sender of [`shutdown_channel`]: services hold its receivers so that
/// long-lived streams end when the drain starts.
pub async fn start(
    built: Vec<Built>,
    listeners: Listeners,
    cfg: &ServerConfig,
    shutdown: watch::Sender<bool>,
) -> anyhow::Result<Handle> {
    let Listeners { grpc, admin, http } = listeners;
    let grpc_addr = grpc.local_addr()?;
    let admin_addr = admin.as_ref().map(|a| a.local_addr()).transpose()?;
    let http_addr = http.as_ref().map(|a| a.local_addr()).transpose()?;
    let (shutdown_tx, shutdown_rx) = (shutdown.clone(), shutdown.subscribe());
    let ready = Arc::new(AtomicBool::new(false));

    let (health, health_server) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::NotServing).await;
    let mut names: Vec<&'static str> = Vec::new();
    let mut routes = RoutesBuilder::default();
    let mut jobs = Vec::new();
    let mut targets = Vec::new();
    let mut checks: Vec<(Vec<&'static str>, Readiness)> = Vec::new();
    let mut apps: Vec<axum::Router> = Vec::new();
    for b in built {
        apps.extend(b.http);
        targets.push(b.target);
        names.extend(b.services.iter().copied());
        (b.mount)(&mut routes);
        jobs.extend(b.jobs);
        if let Some(check) = b.readiness {
            checks.push((b.services.clone(), check));
        }
    }
    for name in &names {
        health.set_service_status(*name, ServingStatus::NotServing).await;
    }
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hcrm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in &names {
        reflection = reflection.with_service_name(*name);
    }
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hcrm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    let reflection_alpha = names
        .iter()
        .fold(reflection_alpha, |r, name| r.with_service_name(*name));
    routes.add_service(health_server);
    routes.add_service(reflection.build_v1()?);
    routes.add_service(reflection_alpha.build_v1alpha()?);

    for job in jobs {
        tokio::spawn(job(shutdown_rx.clone()));
    }
    if let Some(admin) = admin {
        tokio::spawn(serve_admin(admin, ready.clone(), shutdown_rx.clone()));
    }
    match (apps.is_empty(), http) {
        (true, _) => {}
        (false, None) => anyhow::bail!("a target serves HTTP but no HTTP listener was given"),
        (false, Some(listener)) => {
            let app = apps.into_iter().fold(axum::Router::new(), axum::Router::merge);
            tokio::spawn(serve_http(listener, app, shutdown_rx.clone(), cfg.drain_delay_secs));
        }
    }

    let limit = cfg.concurrency_limit.max(1);
    let layers = tower::ServiceBuilder::new()
        .layer(ObserveLayer)
        .map_err(move |err: tower::BoxError| overloaded_is_unavailable(err, limit))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limit));
    let mut server = tonic::transport::Server::builder()
        .accept_http1(true)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(cfg.request_timeout_secs.max(1)))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(layers);

    let drain_delay = Duration::from_secs(cfg.drain_delay_secs);
    let drain_timeout = Duration::from_secs(cfg.drain_timeout_secs);
    let mut signal_rx = shutdown_rx.clone();
    let health_for_drain = health.clone();
    let names_for_drain = names.clone();
    let ready_for_drain = ready.clone();
    let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        let _ = signal_rx.wait_for(|stop| *stop).await;
        ready_for_drain.store(false, Ordering::SeqCst);
        health_for_drain.set_service_status("", ServingStatus::NotServing).await;
        for name in &names_for_drain {
            health_for_drain
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        tracing::info!("draining: reported not serving");
        tokio::time::sleep(drain_delay).await;
        let _ = drain_started_tx.send(());
    };
    // Without TCP_NODELAY a response split into headers, body and trailers waits on delayed
    // ACKs: ~40 ms per call.
    let incoming = tonic::transport::server::TcpIncoming::from(grpc)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let serve = server
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, signal);
    let join = tokio::spawn(async move {
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => result.map_err(anyhow::Error::from),
            _ = async {
                let _ = drain_started_rx.await;
                tokio::time::sleep(drain_timeout).await;
            } => {
                tracing::warn!(timeout_secs = drain_timeout.as_secs(), "drain timed out; stopping with requests in flight");
                Ok(())
            }
        }
    });

    for name in &names {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
    health.set_service_status("", ServingStatus::Serving).await;
    ready.store(true, Ordering::SeqCst);
    tokio::spawn(watch_readiness(checks, health.clone(), shutdown_rx.clone()));
    tracing::info!(%grpc_addr, admin = ?admin_addr, http = ?http_addr, targets = ?targets, services = ?names, "serving");
    Ok(Handle {
        grpc_addr,
        admin_addr,
        http_addr,
        shutdown: shutdown_tx,
        join,
    })
}

/// Polls each service's readiness check every second and turns its health NOT_SERVING while it
/// fails (liveness, the process-wide `""` status, stays SERVING: a restart would not bring the
/// database back). Stops when the drain starts, which owns health from then on.
async fn watch_readiness(
    checks: Vec<(Vec<&'static str>, Readiness)>,
    health: tonic_health::server::HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    let mut serving = vec![true; checks.len()];
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for (i, (names, check)) in checks.iter().enumerate() {
            let ok = tokio::time::timeout(Duration::from_secs(2), check())
                .await
                .unwrap_or(false);
            if *stop.borrow() {
                return;
            }
            if ok == serving[i] {
                continue;
            }
            serving[i] = ok;
            let status = if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if ok {
                tracing::info!(services = ?names, "dependencies reachable again; serving");
            } else {
                tracing::warn!(services = ?names, "a dependency is unreachable; not ready");
            }
            for name in names {
                health.set_service_status(*name, status).await;
            }
        }
    }
}

/// The process-wide stop signal: `true` once the drain has started.
pub fn shutdown_channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves the HTTP application until the drain; like gRPC, it keeps answering for the drain
/// delay (load balancers are still sending) and then finishes the requests in flight.
async fn serve_http(listener: TcpListener, app: axum::Router, mut shutdown: watch::Receiver<bool>, delay_secs: u64) {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            tokio::time::sleep(Duration::from_secs(delay_secs)).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "http listener failed");
    }
}

/// How often recorded latencies are folded into the histograms. The exporter keeps each sample
/// until then (or until a scrape): without this, a process nobody scrapes grows by every call.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

async fn serve_admin(listener: TcpListener, ready: Arc<AtomicBool>, mut shutdown: watch::Receiver<bool>) {
    use axum::routing::get;
    let handle = metrics_handle();
    let upkeep = handle.clone();
    let mut upkeep_stop = shutdown.clone();
    tokio::spawn(async move {
        while !pause(&mut upkeep_stop, METRICS_UPKEEP).await {
            upkeep.run_upkeep();
        }
    });
    let app = axum::Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| std::future::ready("ok")))
        .route(
            "/readyz",
            get(move || {
                let ok = ready.load(Ordering::SeqCst);
                std::future::ready(if ok {
                    (http::StatusCode::OK, "ready")
                } else {
                    (http::StatusCode::SERVICE_UNAVAILABLE, "not ready")
                })
            }),
        );
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "admin listener failed");
    }
}

/// Records per-RPC metrics and a tracing span (child of the caller's W3C trace context), and
/// gives every call a request id that is echoed on the response.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

impl<S, B, RB> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: AsRef<dyn std::error::Error + Send + Sync> + Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let path = request.uri().path().to_string();
        let (service, method) = split_path(&path);
        let request_id = match request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()) {
            Some(id) if !id.is_empty() && id.len() <= 128 => id.to_string(),
            _ => {
                let id = crate::new_id();
                if let Ok(value) = http::HeaderValue::from_str(&id) {
                    request.headers_mut().insert(REQUEST_ID_HEADER, value);
                }
                id
            }
        };
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
        let span = tracing::info_span!(
            "rpc",
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            request_id = %request_id,
            grpc.code = tracing::field::Empty,
        );
        let _ = span.set_parent(parent);
        let start = Instant::now();
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let result = future.await;
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0),
                    Err(err) => error_code(err) as i32,
                };
                let code_name = format!("{:?}", tonic::Code::from_i32(code));
                tracing::Span::current().record("grpc.code", code_name.as_str());
                let labels = [
                    ("service", service.clone()),
                    ("method", method.clone()),
                    ("code", code_name),
                ];
                metrics::counter!("grpc_server_handled_total", &labels).increment(1);
                metrics::histogram!(
                    "grpc_server_handling_seconds",
                    &[("service", service), ("method", method)]
                )
                .record(start.elapsed().as_secs_f64());
                result.map(|mut response| {
                    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                        response.headers_mut().insert(REQUEST_ID_HEADER, value);
                    }
                    response
                })
            }
            .instrument(span),
        )
    }
}

/// A call refused by the concurrency limit: UNAVAILABLE, which clients retry (with backoff, or on
/// another replica), as for a pod that is down — not tonic's RESOURCE_EXHAUSTED, which HCRM keeps
/// for a caller's own rate limit or quota (HTTP 429 through the gateway; this is 503).
fn overloaded_is_unavailable(err: tower::BoxError, limit: usize) -> tower::BoxError {
    if err.is::<tower::load_shed::error::Overloaded>() {
        Box::new(tonic::Status::unavailable(format!(
            "overloaded: {limit} calls already in progress; retry with backoff"
        )))
    } else {
        err
    }
}

/// The code the caller gets for an error of the layers below (tonic turns it into a status the
/// same way), so that the metrics count a shed call as UNAVAILABLE, not UNKNOWN.
fn error_code(err: &impl AsRef<dyn std::error::Error + Send + Sync>) -> tonic::Code {
    err.as_ref()
        .downcast_ref::<tonic::Status>()
        .map_or(tonic::Code::Unknown, tonic::Status::code)
}

fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_string();
    let method = parts.next().unwrap_or_default().to_string();
    (service, method)
}
