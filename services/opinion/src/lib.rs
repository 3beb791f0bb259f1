//! The opinion service: online mentions collected from feeds, pages and pushes, matched to the
//! watch list, de-duplicated into stories and scored for sentiment; alerts, incidents and the
//! reputation trend. See `proto/hcrm/opinion/v1/`.
//!
//! It polls its sources, watches the feedback feed (a case opened for an incident is linked
//! back) and sends alert notices through its outbox.

pub mod analysis;
pub mod domain;
pub mod fetch;
pub mod grpc;
pub mod jobs;
pub mod permissions;
pub mod store;

use hcrm_kit::db::{Db, Migrations};
use hcrm_kit::notify::NotifierConfig;
use hcrm_kit::outbox::DeliveryConfig;
use hcrm_kit::paging::PageTokens;
use hcrm_kit::request::AuthInterceptor;
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Built;
use hcrm_proto::opinion::incident_service_server::IncidentServiceServer;
use hcrm_proto::opinion::mention_service_server::MentionServiceServer;
use hcrm_proto::opinion::reputation_service_server::ReputationServiceServer;
use hcrm_proto::opinion::watch_service_server::WatchServiceServer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;

pub use hcrm_kit::deps::Deps;

/// Target name.
pub const TARGET: &str = "opinion";

/// gRPC services this target serves.
pub const SERVICES: &[&str] = &[
    "hcrm.opinion.v1.WatchService",
    "hcrm.opinion.v1.MentionService",
    "hcrm.opinion.v1.IncidentService",
    "hcrm.opinion.v1.ReputationService",
];

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

/// How sources are fetched (`[opinion.fetch]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchSettings {
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    /// A page or feed larger than this is not read (a recorded fetch error).
    pub max_bytes: usize,
    pub max_redirects: usize,
    /// Hosts that may resolve to private or loopback addresses (an intranet news site); every
    /// other host must be public.
    pub allow_hosts: Vec<String>,
    /// At most one request per host this often.
    pub min_interval_ms: u64,
    pub max_text_chars: usize,
    pub user_agent: String,
}

impl Default for FetchSettings {
    fn default() -> Self {
        let d = fetch::FetchConfig::default();
        Self {
            connect_timeout_ms: d.connect_timeout.as_millis() as u64,
            timeout_ms: d.timeout.as_millis() as u64,
            max_bytes: d.max_bytes,
            max_redirects: d.max_redirects,
            allow_hosts: d.allow_hosts,
            min_interval_ms: d.min_interval.as_millis() as u64,
            max_text_chars: d.max_text_chars,
            user_agent: d.user_agent,
        }
    }
}

impl FetchSettings {
    pub fn to_config(&self) -> fetch::FetchConfig {
        fetch::FetchConfig {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            timeout: Duration::from_millis(self.timeout_ms),
            max_bytes: self.max_bytes,
            max_redirects: self.max_redirects,
            allow_hosts: self.allow_hosts.clone(),
            min_interval: Duration::from_millis(self.min_interval_ms),
            max_text_chars: self.max_text_chars,
            user_agent: self.user_agent.clone(),
        }
    }
}

/// Configuration of the opinion service (`[opinion]`, `HCRM__OPINION__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database URL; default `sqlite://{data.dir}/opinion.db`.
    pub database_url: Option<Secret>,
    /// The patients service's gRPC address (linked patients, personal data in replies);
    /// default this process.
    pub patients_url: Option<String>,
    /// The feedback service's gRPC address (its feed links escalated cases back); default this
    /// process, empty to run without feedback.
    pub feedback_url: Option<String>,
    /// The hospital's time zone as a fixed offset from UTC (China: 480); days of the trend.
    pub utc_offset_minutes: i32,
    /// A mention joins a story last active within this many days.
    pub story_window_days: i64,
    /// Mentions whose estimated Jaccard similarity (MinHash over 3-character shingles) reaches
    /// this are the same story.
    pub near_duplicate_similarity: f64,
    /// How often alert rules are evaluated.
    pub alert_every_seconds: u64,
    /// How often the poller looks for sources due.
    pub poll_every_seconds: u64,
    /// Who is told of an alert when its rule names no one.
    pub default_notify: Vec<String>,
    /// E-mail addresses of staff subjects and groups.
    pub staff_email: BTreeMap<String, String>,
    pub fetch: FetchSettings,
    /// Whether this replica polls sources, evaluates alerts, follows the feedback feed and
    /// sends notices.
    pub run_jobs: bool,
    pub notifier: NotifierConfig,
    pub delivery: DeliveryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            patients_url: None,
            feedback_url: None,
            utc_offset_minutes: 480,
            story_window_days: 7,
            near_duplicate_similarity: 0.5,
            alert_every_seconds: 30,
            poll_every_seconds: 5,
            default_notify: vec!["group:opinion".into()],
            staff_email: BTreeMap::new(),
            fetch: FetchSettings::default(),
            run_jobs: true,
            notifier: NotifierConfig::default(),
            delivery: DeliveryConfig::default(),
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
            (-720..=840).contains(&self.utc_offset_minutes),
            "opinion.utc_offset_minutes must be between -720 and 840"
        );
        anyhow::ensure!(
            (1..=90).contains(&self.story_window_days),
            "opinion.story_window_days must be 1–90"
        );
        anyhow::ensure!(
            (0.3..=1.0).contains(&self.near_duplicate_similarity),
            "opinion.near_duplicate_similarity must be 0.3–1.0 (below, unrelated posts merge)"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.alert_every_seconds),
            "opinion.alert_every_seconds must be 1–3600"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.poll_every_seconds),
            "opinion.poll_every_seconds must be 1–3600"
        );
        anyhow::ensure!(
            !self.default_notify.is_empty() && self.default_notify.iter().all(|s| !s.trim().is_empty()),
            "opinion.default_notify must name at least one subject"
        );
        let f = &self.fetch;
        anyhow::ensure!(
            (100..=120_000).contains(&f.connect_timeout_ms) && (100..=300_000).contains(&f.timeout_ms),
            "opinion.fetch timeouts must be 100 ms to a few minutes"
        );
        anyhow::ensure!(
            (1024..=64 << 20).contains(&f.max_bytes),
            "opinion.fetch.max_bytes must be 1 KiB–64 MiB"
        );
        anyhow::ensure!(f.max_redirects <= 20, "opinion.fetch.max_redirects must be 0–20");
        anyhow::ensure!(
            (1000..=1_000_000).contains(&f.max_text_chars),
            "opinion.fetch.max_text_chars must be 1,000–1,000,000"
        );
        self.delivery.check("opinion.delivery", self.notifier.timeout_ms)?;
        self.notifier
            .check()
            .map_err(|e| anyhow::anyhow!("opinion.notifier: {e}"))?;
        Ok(())
    }
}

/// Connects to (and on SQLite migrates) the database.
pub async fn open_store(cfg: &Config, deps: &Deps) -> anyhow::Result<store::Store> {
    let db = Db::connect(&cfg.url(&deps.data), &deps.data).await?;
    db.migrate(&MIGRATIONS).await?;
    Ok(store::Store::new(db, cfg, deps.clock.clone()))
}

/// Applies the migrations and returns (for `hcrm migrate`).
pub async fn migrate(cfg: &Config, data: &hcrm_kit::config::DataConfig) -> anyhow::Result<()> {
    let db = Db::connect(&cfg.url(data), data).await?;
    db.migrate(&MIGRATIONS).await
}

/// Builds the service: its store, clients, API, servers and jobs.
pub async fn build(cfg: &Config, deps: Deps) -> anyhow::Result<Built> {
    cfg.check()?;
    let store = open_store(cfg, &deps).await?;
    let patients_url = cfg.patients_url.clone().unwrap_or_else(|| deps.self_url());
    let patients = hcrm_kit::peers::patients::Patients::new(TARGET, &patients_url, deps.authenticator.clone())?;
    let fetcher = Arc::new(fetch::Fetcher::new(cfg.fetch.to_config())?);
    let key = hcrm_kit::crypto::BlindIndex::from_config(&deps.security, &deps.data.dir)?.derive("opinion-page-token");
    let mut jobs = vec![
        store.ledger.sealer_job(),
        hcrm_kit::idempotency::cleanup_job(store.db.clone()),
    ];
    if cfg.run_jobs {
        let feedback_url = cfg.feedback_url.clone().unwrap_or_else(|| deps.self_url());
        if !feedback_url.is_empty() {
            use hcrm_kit::peers::feed::{FEEDBACK, Feed, consume};
            let feed = Feed::new(TARGET, &feedback_url, FEEDBACK, deps.authenticator.clone())?;
            jobs.push(consume(
                "feedback",
                feed,
                jobs::FEEDBACK_EVENTS,
                jobs::FeedbackEvents(store.clone()),
            ));
        }
        jobs.push(jobs::poller(
            store.clone(),
            fetcher.clone(),
            Duration::from_secs(cfg.poll_every_seconds),
        ));
        jobs.push(jobs::alerts(
            store.clone(),
            Duration::from_secs(cfg.alert_every_seconds),
        ));
        let sender = jobs::OpinionSender {
            notifier: hcrm_kit::notify::from_config(&cfg.notifier)?,
            staff_email: Arc::new(cfg.staff_email.clone()),
        };
        jobs.push(hcrm_kit::outbox::dispatcher(
            store.outbox.clone(),
            Arc::new(sender),
            cfg.delivery.clone(),
            hcrm_kit::new_id(),
        ));
    }
    let readiness = store.db.readiness();
    let api = grpc::Api {
        store,
        patients,
        fetcher,
        allow_hosts: Arc::new(cfg.fetch.allow_hosts.clone()),
        pages: PageTokens::new(key),
        stopping: deps.stopping.clone(),
    };
    let limit = deps.server.max_message_bytes;
    let interceptor = AuthInterceptor::new(deps.authenticator.clone());
    let watch = WatchServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mentions = MentionServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let incidents = IncidentServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let reputation = ReputationServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(Built {
        target: TARGET,
        services: SERVICES.to_vec(),
        mount: Box::new(move |routes| {
            routes.add_service(InterceptedService::new(watch, interceptor.clone()));
            routes.add_service(InterceptedService::new(mentions, interceptor.clone()));
            routes.add_service(InterceptedService::new(incidents, interceptor.clone()));
            routes.add_service(InterceptedService::new(reputation, interceptor));
        }),
        jobs,
        readiness: Some(readiness),
        http: None,
    })
}
