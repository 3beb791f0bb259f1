//! The `hcrm` binary as a library: settings, targets and the functions the CLI, the tests and
//! the benchmarks share.

pub mod cli;
pub mod demo;
pub mod settings;
pub mod targets;

pub use settings::Settings;
pub use targets::Target;

use hcrm_kit::auth::Authenticator;
use hcrm_kit::clock::Clock;
use hcrm_kit::deps::Deps;
use hcrm_kit::server::{Built, Handle, Listeners};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Builds the enabled targets and starts serving on the given listeners.
pub async fn start(settings: &Settings, targets: &[Target], listeners: Listeners) -> anyhow::Result<Handle> {
    let (authenticator, generated) = Authenticator::from_config(&settings.auth, &settings.data.dir)?;
    if generated {
        tracing::warn!(
            key_dir = %hcrm_kit::keys::key_dir(&settings.data.dir).display(),
            "generated a random token signing key; mint a token with `hcrm token --role admin` using the same --data-dir"
        );
    }
    let authenticator = Arc::new(authenticator);
    let (shutdown, stopping) = hcrm_kit::server::shutdown_channel();
    let deps = Deps {
        authenticator,
        data: settings.data.clone(),
        security: settings.security.clone(),
        server: settings.server.clone(),
        stopping,
        clock: Clock::system(),
        self_addr: listeners.grpc.local_addr()?,
    };
    let mut built: Vec<Built> = Vec::new();
    for target in targets::expand(targets) {
        built.push(targets::build(target, settings, deps.clone()).await?);
    }
    hcrm_kit::server::start(built, listeners, &settings.server, shutdown).await
}

/// Binds the configured listeners and serves until SIGTERM/Ctrl-C, then drains.
pub async fn serve(settings: &Settings, targets: &[Target], demo: bool) -> anyhow::Result<()> {
    let grpc = TcpListener::bind(settings.server.grpc_addr).await?;
    let admin = TcpListener::bind(settings.server.admin_addr).await?;
    // The gateway's HTTP listener, only when the gateway runs here.
    let http = if targets::expand(targets).contains(&Target::Gateway) {
        let addr = settings.gateway.http_addr;
        Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("binding gateway.http_addr {addr}: {e}"))?,
        )
    } else {
        None
    };
    let started = std::time::Instant::now();
    let listeners = Listeners {
        grpc,
        admin: Some(admin),
        http,
    };
    let handle = start(settings, targets, listeners).await?;
    if let Some(addr) = handle.http_addr {
        tracing::info!(console = %format!("http://{addr}/"), "gateway listening");
    }
    tracing::info!(startup_ms = started.elapsed().as_millis() as u64, "ready");
    if demo {
        let mut settings = settings.clone();
        settings.server.grpc_addr = handle.grpc_addr;
        tokio::spawn(async move {
            let args = demo::DemoArgs::default();
            if let Err(err) = demo::run(&settings, &args).await {
                tracing::error!(error = %err, "filling the demo hospital failed");
            }
        });
    }
    let shutdown = handle.shutdown_sender();
    tokio::spawn(async move {
        hcrm_kit::server::termination_signal().await;
        tracing::info!("termination signal received");
        let _ = shutdown.send(true);
    });
    handle.wait().await
}
