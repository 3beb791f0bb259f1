//! The followup service: templates, plans, due tasks, recorded follow-ups, reminders the day
//! before, adaptive chronic-disease schedules and statistics. See `proto/hcrm/followup/v1/`.
//!
//! It watches the patients feed (discharges create plans, exam results send notices,
//! admissions feed the readmission comparison) and reaches patients only through their API.

pub mod domain;
pub mod grpc;
pub mod jobs;
pub mod permissions;
pub mod store;

use hcrm_kit::db::{Db, Migrations};
use hcrm_kit::notify::NotifierConfig;
use hcrm_kit::paging::PageTokens;
use hcrm_kit::peers::patients::Patients;
use hcrm_kit::request::AuthInterceptor;
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Built;
use hcrm_proto::followup::followup_service_server::FollowupServiceServer;
use hcrm_proto::followup::template_service_server::TemplateServiceServer;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;

pub use hcrm_kit::deps::Deps;
pub use hcrm_kit::outbox::DeliveryConfig;

/// Target name.
pub const TARGET: &str = "followup";

/// gRPC services this target serves.
pub const SERVICES: &[&str] = &["hcrm.followup.v1.TemplateService", "hcrm.followup.v1.FollowupService"];

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

/// Configuration of the followup service (`[followup]`, `HCRM__FOLLOWUP__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database URL; default `sqlite://{data.dir}/followup.db`.
    pub database_url: Option<Secret>,
    /// The patients service's gRPC address; default this process.
    pub patients_url: Option<String>,
    /// The feedback service's gRPC address, whose feed asks for complaint confirmation calls;
    /// default this process; empty: do not follow it.
    pub feedback_url: Option<String>,
    /// Who makes complaint confirmation calls (the inspection group's pool by default).
    pub confirmation_assignee: String,
    /// The hospital's time zone as a fixed offset from UTC (China: 480).
    pub utc_offset_minutes: i32,
    /// Attempts at a not-reached patient before the task closes as missed.
    pub max_attempts: i32,
    /// Statistics show no figure for groups smaller than this.
    pub min_group_size: i64,
    /// Local hour (0–23) from which reminders and notices for tomorrow go out.
    pub send_from_hour: u32,
    /// E-mail addresses of staff subjects and department pools (`department:{code}`), for the
    /// SMTP notifier; reminders to anyone not listed are skipped when mail is the only way.
    pub staff_email: std::collections::BTreeMap<String, String>,
    /// Whether this replica consumes the patients feed and runs the reminder jobs.
    pub run_jobs: bool,
    /// Where reminders and notices go.
    pub notifier: NotifierConfig,
    pub delivery: DeliveryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            patients_url: None,
            feedback_url: None,
            confirmation_assignee: "group:inspection".into(),
            utc_offset_minutes: 480,
            max_attempts: 3,
            min_group_size: 30,
            send_from_hour: 8,
            staff_email: Default::default(),
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
            "followup.utc_offset_minutes must be between -720 and 840"
        );
        anyhow::ensure!(
            (1..=10).contains(&self.max_attempts),
            "followup.max_attempts must be 1–10"
        );
        anyhow::ensure!(self.min_group_size >= 1, "followup.min_group_size must be at least 1");
        anyhow::ensure!(
            !self.confirmation_assignee.is_empty(),
            "followup.confirmation_assignee must name a subject"
        );
        anyhow::ensure!(self.send_from_hour < 24, "followup.send_from_hour must be 0–23");
        self.delivery.check("followup.delivery", self.notifier.timeout_ms)?;
        self.notifier
            .check()
            .map_err(|e| anyhow::anyhow!("followup.notifier: {e}"))?;
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
    store.ensure_builtin_templates().await?;
    let patients_url = cfg.patients_url.clone().unwrap_or_else(|| deps.self_url());
    let patients = Patients::new(TARGET, &patients_url, deps.authenticator.clone())?;
    let notifier = hcrm_kit::notify::from_config(&cfg.notifier)?;
    let key = hcrm_kit::crypto::BlindIndex::from_config(&deps.security, &deps.data.dir)?.derive("followup-page-token");
    let mut jobs = vec![
        store.ledger.sealer_job(),
        hcrm_kit::idempotency::cleanup_job(store.db.clone()),
    ];
    if cfg.run_jobs {
        use hcrm_kit::peers::feed::{FEEDBACK, Feed, PATIENTS, consume};
        let feed = Feed::new(TARGET, &patients_url, PATIENTS, deps.authenticator.clone())?;
        let consumer = jobs::PatientEvents {
            store: store.clone(),
            patients: patients.clone(),
        };
        jobs.push(consume("patients", feed, jobs::PATIENT_EVENTS, consumer));
        let feedback_url = cfg.feedback_url.clone().unwrap_or_else(|| deps.self_url());
        if !feedback_url.is_empty() {
            let feed = Feed::new(TARGET, &feedback_url, FEEDBACK, deps.authenticator.clone())?;
            let consumer = jobs::ConfirmationRequests {
                store: store.clone(),
                patients: patients.clone(),
                assignee: cfg.confirmation_assignee.clone(),
            };
            jobs.push(consume(
                "feedback",
                feed,
                &["feedback.confirmation_requested"],
                consumer,
            ));
        }
        jobs.push(jobs::reminder_planner(store.clone(), cfg.delivery.poll_ms));
        jobs.push(jobs::stats_rollup(store.clone(), cfg.delivery.poll_ms));
        let sender = jobs::FollowupSender {
            store: store.clone(),
            patients: patients.clone(),
            notifier,
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
        pages: PageTokens::new(key),
        stopping: deps.stopping.clone(),
        max_attempts: cfg.max_attempts,
        min_group_size: cfg.min_group_size,
    };
    let limit = deps.server.max_message_bytes;
    let interceptor = AuthInterceptor::new(deps.authenticator.clone());
    let templates = TemplateServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let followup = FollowupServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(Built {
        target: TARGET,
        services: SERVICES.to_vec(),
        mount: Box::new(move |routes| {
            routes.add_service(InterceptedService::new(templates, interceptor.clone()));
            routes.add_service(InterceptedService::new(followup, interceptor));
        }),
        jobs,
        readiness: Some(readiness),
        http: None,
    })
}
