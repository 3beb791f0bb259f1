//! The patients service: patient records, related persons, organisations, the interaction
//! timeline and its event feed, and the audit log; and the guide desk's work around them: the
//! department and doctor directory with clinic schedules, consultations, service requests,
//! appointment hand-off, segments, explainable grades, referrals and FHIR R4.
//! See `proto/hcrm/patients/v1/`.

pub mod domain;
pub mod grpc;
pub mod jobs;
pub mod permissions;
pub mod query;
pub mod store;

use hcrm_kit::config::DataConfig;
use hcrm_kit::crypto::{BlindIndex, Sealer};
use hcrm_kit::db::{Db, Migrations};
use hcrm_kit::paging::PageTokens;
use hcrm_kit::request::AuthInterceptor;
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Built;
use hcrm_proto::patients::appointment_service_server::AppointmentServiceServer;
use hcrm_proto::patients::audit_service_server::AuditServiceServer;
use hcrm_proto::patients::consultation_service_server::ConsultationServiceServer;
use hcrm_proto::patients::directory_service_server::DirectoryServiceServer;
use hcrm_proto::patients::fhir_service_server::FhirServiceServer;
use hcrm_proto::patients::grading_service_server::GradingServiceServer;
use hcrm_proto::patients::organization_service_server::OrganizationServiceServer;
use hcrm_proto::patients::patient_service_server::PatientServiceServer;
use hcrm_proto::patients::referral_service_server::ReferralServiceServer;
use hcrm_proto::patients::segment_service_server::SegmentServiceServer;
use hcrm_proto::patients::service_request_service_server::ServiceRequestServiceServer;
use serde::{Deserialize, Serialize};
use tonic::service::interceptor::InterceptedService;

/// Target name.
pub const TARGET: &str = "patients";

/// gRPC services this target serves.
pub const SERVICES: &[&str] = &[
    "hcrm.patients.v1.PatientService",
    "hcrm.patients.v1.OrganizationService",
    "hcrm.patients.v1.AuditService",
    "hcrm.patients.v1.SegmentService",
    "hcrm.patients.v1.GradingService",
    "hcrm.patients.v1.ReferralService",
    "hcrm.patients.v1.DirectoryService",
    "hcrm.patients.v1.FhirService",
    "hcrm.patients.v1.AppointmentService",
    "hcrm.patients.v1.ConsultationService",
    "hcrm.patients.v1.ServiceRequestService",
];

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

/// Configuration of the patients service (`[patients]`, `HCRM__PATIENTS__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database URL; default `sqlite://{data.dir}/patients.db`.
    pub database_url: Option<Secret>,
    /// The hospital's time zone as a fixed offset from UTC (China: 480): clinic schedules,
    /// busy hours and the nightly pass are in local time.
    pub utc_offset_minutes: i32,
    /// Local hour (0–23) from which the nightly grade pass runs once a day.
    pub grading_hour: u32,
    /// How often dirty patients (whose timeline changed) are regraded, in milliseconds.
    pub grading_poll_ms: u64,
    /// Patients per batch of a grading pass (1–20000).
    pub grading_batch: usize,
    /// FHIR R4 identifier systems (`[patients.fhir]`).
    pub fhir: domain::fhir::FhirConfig,
    /// Where appointment requests go: the hospital's booking platform (a signed webhook).
    pub booking: hcrm_kit::notify::NotifierConfig,
    /// How the outbox paces deliveries to the booking platform.
    pub booking_delivery: hcrm_kit::outbox::DeliveryConfig,
    /// Minutes to the due time of each type of service request (`[patients.service_request_sla]`).
    pub service_request_sla: domain::service_request::SlaTable,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            utc_offset_minutes: 480,
            grading_hour: 2,
            grading_poll_ms: 1_000,
            grading_batch: 2_000,
            fhir: Default::default(),
            booking: Default::default(),
            booking_delivery: Default::default(),
            service_request_sla: Default::default(),
        }
    }
}

pub use hcrm_kit::deps::Deps;

impl Config {
    /// Checks what deserialisation cannot.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (-720..=840).contains(&self.utc_offset_minutes),
            "patients.utc_offset_minutes must be between -720 and 840"
        );
        anyhow::ensure!(self.grading_hour < 24, "patients.grading_hour must be 0–23");
        anyhow::ensure!(
            (10..=3_600_000).contains(&self.grading_poll_ms),
            "patients.grading_poll_ms must be 10–3600000"
        );
        anyhow::ensure!(
            (1..=20_000).contains(&self.grading_batch),
            "patients.grading_batch must be 1–20000"
        );
        self.fhir.check("patients.fhir")?;
        self.service_request_sla
            .check()
            .map_err(|e| anyhow::anyhow!("patients.{e}"))?;
        self.booking_delivery
            .check("patients.booking_delivery", self.booking.timeout_ms)?;
        self.booking
            .check()
            .map_err(|e| anyhow::anyhow!("patients.booking: {e}"))?;
        Ok(())
    }

    /// The effective database URL.
    pub fn url(&self, data: &DataConfig) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => data.default_url(TARGET),
        }
    }
}

/// Connects to (and on SQLite migrates) the database.
pub async fn open_store(cfg: &Config, deps: &Deps) -> anyhow::Result<store::Store> {
    let db = Db::connect(&cfg.url(&deps.data), &deps.data).await?;
    db.migrate(&MIGRATIONS).await?;
    let sealer = Sealer::from_config(&deps.security, &deps.data.dir)?;
    let index = BlindIndex::from_config(&deps.security, &deps.data.dir)?;
    Ok(store::Store::new(db, sealer, index))
}

/// Applies the migrations and returns (for `hcrm migrate`).
pub async fn migrate(cfg: &Config, data: &DataConfig) -> anyhow::Result<()> {
    let db = Db::connect(&cfg.url(data), data).await?;
    db.migrate(&MIGRATIONS).await
}

/// Adds each server with the message size limit, behind the authentication interceptor.
macro_rules! mount {
    ($routes:expr, $interceptor:expr, $limit:expr, $($server:expr),+ $(,)?) => {
        $(
            $routes.add_service(InterceptedService::new(
                $server.max_decoding_message_size($limit).max_encoding_message_size($limit),
                $interceptor.clone(),
            ));
        )+
    };
}

/// Builds the service: its store, API and servers, ready to mount.
pub async fn build(cfg: &Config, deps: Deps) -> anyhow::Result<Built> {
    cfg.check()?;
    let store = open_store(cfg, &deps).await?;
    let pages = PageTokens::new(store.index.derive("page-token"));
    let mut jobs = vec![
        store.ledger.sealer_job(),
        hcrm_kit::idempotency::cleanup_job(store.db.clone()),
    ];
    let outbox = hcrm_kit::outbox::Outbox::new(store.db.clone(), deps.clock.clone());
    let handoff = jobs::handoff::HandoffSender {
        store: store.clone(),
        notifier: hcrm_kit::notify::from_config(&cfg.booking)?,
        max_attempts: cfg.booking_delivery.max_attempts,
    };
    jobs.push(hcrm_kit::outbox::dispatcher(
        outbox.clone(),
        std::sync::Arc::new(handoff),
        cfg.booking_delivery.clone(),
        hcrm_kit::new_id(),
    ));
    let readiness = store.db.readiness();
    let grader = jobs::grading::Grader::new(
        store.clone(),
        deps.clock.clone(),
        cfg.grading_hour,
        cfg.grading_batch,
        cfg.utc_offset_minutes,
    );
    jobs.push(jobs::grading::job(grader.clone(), cfg.grading_poll_ms));
    let api = grpc::Api {
        store,
        pages,
        stopping: deps.stopping.clone(),
        outbox,
        fhir: std::sync::Arc::new(cfg.fhir.clone()),
    };
    let limit = deps.server.max_message_bytes;
    let interceptor = AuthInterceptor::new(deps.authenticator.clone());
    let directory = grpc::directory::Directory::new(api.clone(), cfg.utc_offset_minutes, deps.clock.clone());
    let customers = grpc::segments::Customers {
        api: api.clone(),
        grader,
    };
    let consultations = grpc::consultations::Consultations {
        api: api.clone(),
        utc_offset_minutes: cfg.utc_offset_minutes,
        clock: deps.clock.clone(),
    };
    let service_requests = grpc::service_requests::ServiceRequests {
        api: api.clone(),
        sla: std::sync::Arc::new(cfg.service_request_sla.clone()),
        clock: deps.clock.clone(),
    };
    Ok(Built {
        target: TARGET,
        services: SERVICES.to_vec(),
        mount: Box::new(move |routes| {
            mount!(
                routes,
                interceptor,
                limit,
                PatientServiceServer::new(api.clone()),
                OrganizationServiceServer::new(api.clone()),
                AuditServiceServer::new(api.clone()),
                FhirServiceServer::new(api.clone()),
                AppointmentServiceServer::new(api),
                DirectoryServiceServer::new(directory),
                SegmentServiceServer::new(customers.clone()),
                GradingServiceServer::new(customers.clone()),
                ReferralServiceServer::new(customers),
                ConsultationServiceServer::new(consultations),
                ServiceRequestServiceServer::new(service_requests),
            );
        }),
        jobs,
        readiness: Some(readiness),
        http: None,
    })
}
