//! The gateway: the services' gRPC APIs as REST/JSON (`/api/v1/…`, described by
//! `/api/v1/openapi.json`) and grpc-web for browsers, staff accounts with sessions, the staff
//! console, and the patients' pages (survey answers and complaints, no login).
//!
//! It owns no patient data: every page and every API call goes to the services over gRPC, with
//! the signed-in staff member's identity in a short-lived token minted per call. Its own database
//! holds staff accounts, sessions and sign-in failures.

pub mod api;
pub mod auth;
pub mod limits;
pub mod state;
pub mod store;
pub mod upstream;
pub mod web;

use hcrm_kit::db::{Db, Migrations};
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Built;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

pub use hcrm_kit::deps::Deps;

/// Target name.
pub const TARGET: &str = "gateway";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

/// Configuration of the gateway (`[gateway]`, `HCRM__GATEWAY__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener: REST/JSON, grpc-web, the console and the patients' pages.
    pub http_addr: SocketAddr,
    /// Database of accounts and sessions; default `sqlite://{data.dir}/gateway.db`.
    pub database_url: Option<Secret>,
    /// gRPC addresses of the services; each defaults to this process.
    pub patients_url: Option<String>,
    pub followup_url: Option<String>,
    pub feedback_url: Option<String>,
    pub opinion_url: Option<String>,
    /// Session cookies carry `Secure` (browsers then send them over HTTPS and to `localhost`
    /// only). Turn off only for plain-HTTP test set-ups on other hosts.
    pub secure_cookies: bool,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: i64,
    /// …and at the latest this many hours after sign-in.
    pub session_max_hours: i64,
    /// Failed sign-ins allowed per account, and per client address × 4, within the window.
    pub login_max_failures: i64,
    pub login_window_minutes: i64,
    /// Requests per minute per client address to the API and the console.
    pub rate_per_minute: u32,
    /// Requests per minute per client address to the patients' pages.
    pub public_rate_per_minute: u32,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Origins allowed to call the API from a browser (CORS); empty = same origin only.
    pub cors_origins: Vec<String>,
    /// Behind one reverse proxy (an ingress controller): take the client address from the last
    /// `X-Forwarded-For` entry, which that proxy appended. Leave off when clients reach the
    /// gateway directly, or they could choose their own address (and rate budget).
    pub trust_forwarded_for: bool,
    /// Deadline of each call to a service.
    pub call_timeout_secs: u64,
    /// The hospital's time zone as a fixed offset from UTC, for times on pages (China: 480).
    pub utc_offset_minutes: i32,
    /// Who owns a case filed on the public complaint page (feedback's intake group).
    pub complaint_owner: String,
    /// The department code of a public complaint whose writer names none.
    pub complaint_department: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            patients_url: None,
            followup_url: None,
            feedback_url: None,
            opinion_url: None,
            secure_cookies: true,
            session_idle_minutes: 30,
            session_max_hours: 12,
            login_max_failures: 5,
            login_window_minutes: 15,
            rate_per_minute: 1_200,
            public_rate_per_minute: 60,
            max_body_bytes: 1024 * 1024,
            cors_origins: Vec::new(),
            trust_forwarded_for: false,
            call_timeout_secs: 30,
            utc_offset_minutes: 480,
            complaint_owner: "group:inspection".into(),
            complaint_department: "service-centre".into(),
        }
    }
}

impl Config {
    /// The effective database URL.
    pub fn url(&self, data: &hcrm_kit::config::DataConfig) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => data.default_url(TARGET),
        }
    }

    /// Checks what deserialisation cannot.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=24 * 60).contains(&self.session_idle_minutes),
            "gateway.session_idle_minutes must be 1–1440"
        );
        anyhow::ensure!(
            (1..=24 * 7).contains(&self.session_max_hours),
            "gateway.session_max_hours must be 1–168"
        );
        anyhow::ensure!(
            (1..=100).contains(&self.login_max_failures),
            "gateway.login_max_failures must be 1–100"
        );
        anyhow::ensure!(
            (1..=24 * 60).contains(&self.login_window_minutes),
            "gateway.login_window_minutes must be 1–1440"
        );
        anyhow::ensure!(self.rate_per_minute >= 1, "gateway.rate_per_minute must be at least 1");
        anyhow::ensure!(
            self.public_rate_per_minute >= 1,
            "gateway.public_rate_per_minute must be at least 1"
        );
        anyhow::ensure!(
            (1024..=64 * 1024 * 1024).contains(&self.max_body_bytes),
            "gateway.max_body_bytes must be 1 KiB–64 MiB"
        );
        anyhow::ensure!(
            (1..=600).contains(&self.call_timeout_secs),
            "gateway.call_timeout_secs must be 1–600"
        );
        anyhow::ensure!(
            (-720..=840).contains(&self.utc_offset_minutes),
            "gateway.utc_offset_minutes must be between -720 and 840"
        );
        anyhow::ensure!(
            !self.complaint_owner.trim().is_empty() && !self.complaint_department.trim().is_empty(),
            "gateway.complaint_owner and gateway.complaint_department must not be empty"
        );
        for origin in &self.cors_origins {
            anyhow::ensure!(
                (origin.starts_with("https://") || origin.starts_with("http://")) && !origin.ends_with('/'),
                "gateway.cors_origins: {origin:?} must be an origin like https://console.example.org"
            );
            http::HeaderValue::from_str(origin)
                .map_err(|_| anyhow::anyhow!("gateway.cors_origins: {origin:?} is not a header value"))?;
        }
        Ok(())
    }
}

/// Connects to (and on SQLite migrates) the database.
pub async fn open_store(cfg: &Config, deps: &Deps) -> anyhow::Result<store::Store> {
    let db = Db::connect(&cfg.url(&deps.data), &deps.data).await?;
    db.migrate(&MIGRATIONS).await?;
    Ok(store::Store::new(db, deps.clock.clone()))
}

/// The account store alone, for `hcrm account …` (the gateway need not be running).
pub async fn account_store(cfg: &Config, data: &hcrm_kit::config::DataConfig) -> anyhow::Result<store::Store> {
    let db = Db::connect(&cfg.url(data), data).await?;
    db.migrate(&MIGRATIONS).await?;
    Ok(store::Store::new(db, hcrm_kit::clock::Clock::system()))
}

/// Applies the migrations and returns (for `hcrm migrate`).
pub async fn migrate(cfg: &Config, data: &hcrm_kit::config::DataConfig) -> anyhow::Result<()> {
    let db = Db::connect(&cfg.url(data), data).await?;
    db.migrate(&MIGRATIONS).await
}

/// Builds the gateway: its store, the service clients, the HTTP application and its jobs.
pub async fn build(cfg: &Config, deps: Deps) -> anyhow::Result<Built> {
    cfg.check()?;
    let store = open_store(cfg, &deps).await?;
    let upstreams = upstream::Upstreams::new(cfg, &deps)?;
    let readiness = store.db.readiness();
    let state = Arc::new(state::Gateway::new(cfg.clone(), store.clone(), upstreams, deps)?);
    let app = web::router(state.clone());
    Ok(Built {
        target: TARGET,
        services: Vec::new(),
        mount: Box::new(|_| {}),
        jobs: vec![
            store.ledger_sealer(),
            store.cleanup_job(),
            limits::cleanup_job(state.limits.clone()),
        ],
        readiness: Some(readiness),
        http: Some(app),
    })
}
