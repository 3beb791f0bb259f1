//! The patients service: patient records, related persons, organisations, the interaction
//! timeline and its event feed, and the audit log. See `proto/hcrm/patients/v1/`.

pub mod domain;
pub mod grpc;
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
use hcrm_proto::patients::audit_service_server::AuditServiceServer;
use hcrm_proto::patients::organization_service_server::OrganizationServiceServer;
use hcrm_proto::patients::patient_service_server::PatientServiceServer;
use serde::{Deserialize, Serialize};
use tonic::service::interceptor::InterceptedService;

/// Target name.
pub const TARGET: &str = "patients";

/// gRPC services this target serves.
pub const SERVICES: &[&str] = &[
    "hcrm.patients.v1.PatientService",
    "hcrm.patients.v1.OrganizationService",
    "hcrm.patients.v1.AuditService",
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            utc_offset_minutes: 480,
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

/// Builds the service: its store, API and servers, ready to mount.
pub async fn build(cfg: &Config, deps: Deps) -> anyhow::Result<Built> {
    let store = open_store(cfg, &deps).await?;
    let pages = PageTokens::new(store.index.derive("page-token"));
    let jobs = vec![
        store.ledger.sealer_job(),
        hcrm_kit::idempotency::cleanup_job(store.db.clone()),
    ];
    let readiness = store.db.readiness();
    let api = grpc::Api {
        store,
        pages,
        stopping: deps.stopping.clone(),
    };
    let limit = deps.server.max_message_bytes;
    let interceptor = AuthInterceptor::new(deps.authenticator.clone());
    let patients = PatientServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let organizations = OrganizationServiceServer::new(api.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let audit = AuditServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(Built {
        target: TARGET,
        services: SERVICES.to_vec(),
        mount: Box::new(move |routes| {
            routes.add_service(InterceptedService::new(patients, interceptor.clone()));
            routes.add_service(InterceptedService::new(organizations, interceptor.clone()));
            routes.add_service(InterceptedService::new(audit, interceptor));
        }),
        jobs,
        readiness: Some(readiness),
        http: None,
    })
}
