//! The feedback service: complaints, suggestions and praise through a PDCA workflow with
//! working-day deadlines and escalation; questionnaires, invitations and answers; counter
//! ratings; satisfaction and complaint reports and the monthly analysis report. See
//! `proto/hcrm/feedback/v1/`.
//!
//! It watches the followup feed (a complaint raised on a follow-up call opens a case) and
//! writes to the patients timeline through its outbox.

pub mod domain;
pub mod grpc;
pub mod jobs;
pub mod permissions;
pub mod store;

use domain::sla::SlaTable;
use domain::taxonomy::{Category, default_categories};
use domain::workdays::WorkCalendar;
use hcrm_kit::db::{Db, Migrations};
use hcrm_kit::notify::NotifierConfig;
use hcrm_kit::outbox::DeliveryConfig;
use hcrm_kit::paging::PageTokens;
use hcrm_kit::request::AuthInterceptor;
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Built;
use hcrm_proto::feedback::case_service_server::CaseServiceServer;
use hcrm_proto::feedback::report_service_server::ReportServiceServer;
use hcrm_proto::feedback::survey_service_server::SurveyServiceServer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tonic::service::interceptor::InterceptedService;

pub use hcrm_kit::deps::Deps;

/// Target name.
pub const TARGET: &str = "feedback";

/// gRPC services this target serves.
pub const SERVICES: &[&str] = &[
    "hcrm.feedback.v1.CaseService",
    "hcrm.feedback.v1.SurveyService",
    "hcrm.feedback.v1.ReportService",
];

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

/// Configuration of the feedback service (`[feedback]`, `HCRM__FEEDBACK__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database URL; default `sqlite://{data.dir}/feedback.db`.
    pub database_url: Option<Secret>,
    /// The patients service's gRPC address; default this process.
    pub patients_url: Option<String>,
    /// The followup service's gRPC address (its feed opens cases); default this process, empty
    /// to run without followup.
    pub followup_url: Option<String>,
    /// The opinion service's gRPC address (an escalated incident opens a case; free-text answers
    /// are scored for sentiment); default this process, empty to run without opinion.
    pub opinion_url: Option<String>,
    /// The hospital's time zone as a fixed offset from UTC (China: 480).
    pub utc_offset_minutes: i32,
    /// Public holidays: dates `2026-10-01` or ranges `2026-10-01..2026-10-07`.
    pub holidays: Vec<String>,
    /// Make-up working days (调休): weekend days that are worked.
    pub workdays: Vec<String>,
    /// Deadlines per severity in working days.
    pub sla: SlaTable,
    /// The owner is warned this many hours before a deadline.
    pub warn_before_hours: i64,
    /// Working days after a missed deadline until the centre director is told.
    pub escalate_again_days: u32,
    /// Who is told at a missed deadline, per department code; default `department-head:{code}`.
    pub department_heads: BTreeMap<String, String>,
    /// Who is told when a case is overdue again.
    pub director: String,
    /// Owner of cases that open themselves (low survey ratings); follow-up complaints are
    /// owned by the staff member who made the call.
    pub intake_owner: String,
    /// The same patient's complaints within this many days may be linked as duplicates.
    pub duplicate_window_days: i64,
    /// Default rating (1–5) at or below which an answer opens a case.
    pub case_threshold: i32,
    /// Days until an invitation link expires.
    pub invitation_days: i32,
    /// Days after which non-responders get their one reminder.
    pub remind_after_days: i32,
    /// The patients' survey page; the token is appended.
    pub survey_base_url: String,
    /// Reports show no figure for groups smaller than this.
    pub min_group_size: i64,
    /// The two-level complaint taxonomy.
    pub categories: Vec<Category>,
    /// E-mail addresses of staff subjects (owners, department heads, the director).
    pub staff_email: BTreeMap<String, String>,
    /// Whether this replica consumes the followup feed and runs the escalation and delivery jobs.
    pub run_jobs: bool,
    /// Where escalations, invitations and reminders go.
    pub notifier: NotifierConfig,
    pub delivery: DeliveryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            patients_url: None,
            followup_url: None,
            opinion_url: None,
            utc_offset_minutes: 480,
            holidays: Vec::new(),
            workdays: Vec::new(),
            sla: SlaTable::default(),
            warn_before_hours: 4,
            escalate_again_days: 1,
            department_heads: BTreeMap::new(),
            director: "director".into(),
            intake_owner: "group:inspection".into(),
            duplicate_window_days: 7,
            case_threshold: 2,
            invitation_days: 14,
            remind_after_days: 3,
            survey_base_url: "http://127.0.0.1:8080/s/".into(),
            min_group_size: 30,
            categories: default_categories(),
            staff_email: BTreeMap::new(),
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

    /// The working-day calendar.
    pub fn calendar(&self) -> anyhow::Result<WorkCalendar> {
        WorkCalendar::new(self.utc_offset_minutes, &self.holidays, &self.workdays)
            .map_err(|e| anyhow::anyhow!("feedback.holidays/workdays: {e}"))
    }

    /// Checks what deserialisation cannot.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (-720..=840).contains(&self.utc_offset_minutes),
            "feedback.utc_offset_minutes must be between -720 and 840"
        );
        self.calendar()?;
        self.sla.check().map_err(|e| anyhow::anyhow!("feedback.{e}"))?;
        anyhow::ensure!(
            (0..=72).contains(&self.warn_before_hours),
            "feedback.warn_before_hours must be 0–72"
        );
        anyhow::ensure!(
            (1..=30).contains(&self.escalate_again_days),
            "feedback.escalate_again_days must be 1–30"
        );
        anyhow::ensure!(
            (1..=5).contains(&self.case_threshold),
            "feedback.case_threshold must be 1–5"
        );
        anyhow::ensure!(
            (1..=365).contains(&self.invitation_days),
            "feedback.invitation_days must be 1–365"
        );
        anyhow::ensure!(
            (1..=self.invitation_days).contains(&self.remind_after_days),
            "feedback.remind_after_days must be between 1 and invitation_days"
        );
        anyhow::ensure!(
            (1..=90).contains(&self.duplicate_window_days),
            "feedback.duplicate_window_days must be 1–90"
        );
        anyhow::ensure!(self.min_group_size >= 1, "feedback.min_group_size must be at least 1");
        anyhow::ensure!(!self.director.is_empty(), "feedback.director must name a subject");
        anyhow::ensure!(
            !self.intake_owner.is_empty(),
            "feedback.intake_owner must name a subject"
        );
        anyhow::ensure!(
            self.survey_base_url.starts_with("http://") || self.survey_base_url.starts_with("https://"),
            "feedback.survey_base_url must be an http(s) URL"
        );
        domain::taxonomy::check(&self.categories).map_err(|e| anyhow::anyhow!("feedback.categories: {e}"))?;
        self.delivery.check("feedback.delivery", self.notifier.timeout_ms)?;
        self.notifier
            .check()
            .map_err(|e| anyhow::anyhow!("feedback.notifier: {e}"))?;
        Ok(())
    }
}

/// Connects to (and on SQLite migrates) the database.
pub async fn open_store(cfg: &Config, deps: &Deps) -> anyhow::Result<store::Store> {
    let db = Db::connect(&cfg.url(&deps.data), &deps.data).await?;
    db.migrate(&MIGRATIONS).await?;
    let tokens =
        hcrm_kit::crypto::BlindIndex::from_config(&deps.security, &deps.data.dir)?.derive("feedback-invitation");
    let sealer = hcrm_kit::crypto::Sealer::from_config(&deps.security, &deps.data.dir)?;
    store::Store::new(db, cfg, deps.clock.clone(), tokens, sealer)
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
    let followup_url = cfg.followup_url.clone().unwrap_or_else(|| deps.self_url());
    let patients = hcrm_kit::peers::patients::Patients::new(TARGET, &patients_url, deps.authenticator.clone())?;
    let key = hcrm_kit::crypto::BlindIndex::from_config(&deps.security, &deps.data.dir)?.derive("feedback-page-token");
    let mut jobs = vec![
        store.ledger.sealer_job(),
        hcrm_kit::idempotency::cleanup_job(store.db.clone()),
    ];
    if cfg.run_jobs {
        let notifier = hcrm_kit::notify::from_config(&cfg.notifier)?;
        use hcrm_kit::peers::feed::{FOLLOWUP, Feed, OPINION, consume};
        if !followup_url.is_empty() {
            let feed = Feed::new(TARGET, &followup_url, FOLLOWUP, deps.authenticator.clone())?;
            jobs.push(consume(
                "followup",
                feed,
                jobs::FOLLOWUP_EVENTS,
                jobs::FollowupEvents(store.clone()),
            ));
        }
        let opinion_url = cfg.opinion_url.clone().unwrap_or_else(|| deps.self_url());
        if !opinion_url.is_empty() {
            let feed = Feed::new(TARGET, &opinion_url, OPINION, deps.authenticator.clone())?;
            jobs.push(consume(
                "opinion",
                feed,
                jobs::OPINION_EVENTS,
                jobs::OpinionEvents(store.clone()),
            ));
        }
        jobs.push(jobs::escalation(store.clone(), cfg.delivery.poll_ms));
        jobs.push(jobs::invitation_reminders(store.clone(), cfg.delivery.poll_ms));
        let opinion = match cfg.opinion_url.clone().unwrap_or_else(|| deps.self_url()) {
            url if url.is_empty() => None,
            url => Some(hcrm_kit::peers::opinion::Opinion::new(
                TARGET,
                &url,
                deps.authenticator.clone(),
            )?),
        };
        let sender = jobs::FeedbackSender {
            store: store.clone(),
            patients: patients.clone(),
            opinion,
            notifier,
            staff_email: std::sync::Arc::new(cfg.staff_email.clone()),
        };
        jobs.push(hcrm_kit::outbox::dispatcher(
            store.outbox.clone(),
            std::sync::Arc::new(sender),
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
    };
    let limit = deps.server.max_message_bytes;
    let interceptor = AuthInterceptor::new(deps.authenticator.clone());
    let cases = CaseServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let surveys = SurveyServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let reports = ReportServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(Built {
        target: TARGET,
        services: SERVICES.to_vec(),
        mount: Box::new(move |routes| {
            routes.add_service(InterceptedService::new(cases, interceptor.clone()));
            routes.add_service(InterceptedService::new(surveys, interceptor.clone()));
            routes.add_service(InterceptedService::new(reports, interceptor));
        }),
        jobs,
        readiness: Some(readiness),
        http: None,
    })
}
