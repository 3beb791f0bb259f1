//! patients + feedback + opinion in one server on port 0 with fresh databases, a manual clock
//! and a local webhook receiver, as `hcrm serve` runs them.

use hcrm_kit::auth::{Authenticator, Role};
pub use hcrm_kit::client::Bearer;
use hcrm_kit::clock::Clock;
use hcrm_kit::config::ServerConfig;
use hcrm_kit::deps::Deps;
use hcrm_kit::notify::NotifierConfig;
use hcrm_kit::outbox::DeliveryConfig;
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Handle;
pub use hcrm_kit::testing::{
    Received, TestBackend, TestDatabase, WEBHOOK_SECRET, assert_status, eventually, webhook_receiver,
};
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::opinion::reputation_service_client::ReputationServiceClient;
use hcrm_proto::opinion::watch_service_client::WatchServiceClient;
pub use hcrm_proto::opinion::*;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use std::sync::{Arc, Mutex};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel as GrpcChannel;

pub const SECRET: &str = "test-signing-secret-0123456789abcdef";
/// 2026-06-01 02:00 UTC = Monday 10:00 in Beijing.
pub const START: i64 = 1_780_279_200_000_000;
pub const MINUTE: i64 = 60 * 1_000_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

pub type Authed = InterceptedService<GrpcChannel, Bearer>;

pub struct Suite {
    pub patients_db: TestDatabase,
    pub feedback_db: TestDatabase,
    pub opinion_db: TestDatabase,
    pub data_dir: tempfile::TempDir,
    pub clock: Clock,
    pub auth: Authenticator,
    pub channel: GrpcChannel,
    pub webhook: Arc<Mutex<Received>>,
    handle: Option<Handle>,
}

impl Suite {
    pub async fn start(backend: TestBackend) -> Suite {
        Self::start_tuned(backend, |_| {}).await
    }

    /// A suite whose opinion configuration `tune` adjusts first.
    pub async fn start_tuned(backend: TestBackend, tune: fn(&mut hcrm_opinion::Config)) -> Suite {
        let (webhook_url, webhook) = webhook_receiver().await;
        let mut suite = Suite {
            patients_db: TestDatabase::new(backend).await.expect("patients database"),
            feedback_db: TestDatabase::new(backend).await.expect("feedback database"),
            opinion_db: TestDatabase::new(backend).await.expect("opinion database"),
            data_dir: tempfile::tempdir().unwrap(),
            clock: Clock::manual(START),
            auth: Authenticator::hs256(SECRET),
            channel: GrpcChannel::from_static("http://127.0.0.1:1").connect_lazy(),
            webhook,
            handle: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (shutdown, stopping) = hcrm_kit::server::shutdown_channel();
        let addr = listener.local_addr().unwrap();
        let deps: Deps =
            hcrm_kit::testing::test_deps(SECRET, suite.data_dir.path(), suite.clock.clone(), addr, stopping);
        let notifier = NotifierConfig {
            kind: "webhook".into(),
            webhook_url: webhook_url.clone(),
            webhook_secret: Some(Secret::new(WEBHOOK_SECRET.to_string())),
            timeout_ms: 2_000,
            ..Default::default()
        };
        let delivery = DeliveryConfig {
            poll_ms: 50,
            backoff_ms: 10,
            ..Default::default()
        };
        let patients = hcrm_patients::Config {
            database_url: Some(Secret::new(suite.patients_db.url.clone())),
            ..Default::default()
        };
        let feedback = hcrm_feedback::Config {
            database_url: Some(Secret::new(suite.feedback_db.url.clone())),
            // No followup in this suite.
            followup_url: Some(String::new()),
            notifier: notifier.clone(),
            delivery: delivery.clone(),
            ..Default::default()
        };
        let mut opinion = hcrm_opinion::Config {
            database_url: Some(Secret::new(suite.opinion_db.url.clone())),
            alert_every_seconds: 1,
            poll_every_seconds: 3600,
            notifier,
            delivery,
            ..Default::default()
        };
        opinion.fetch.allow_hosts = vec!["127.0.0.1".into()];
        opinion.fetch.min_interval_ms = 0;
        opinion.fetch.timeout_ms = 1_500;
        opinion.fetch.max_bytes = 256 * 1024;
        tune(&mut opinion);
        let built = vec![
            hcrm_patients::build(&patients, deps.clone())
                .await
                .expect("build patients"),
            hcrm_feedback::build(&feedback, deps.clone())
                .await
                .expect("build feedback"),
            hcrm_opinion::build(&opinion, deps).await.expect("build opinion"),
        ];
        let handle = hcrm_kit::server::start(
            built,
            hcrm_kit::server::Listeners::grpc(listener),
            &ServerConfig::default(),
            shutdown,
        )
        .await
        .expect("start");
        suite.channel = GrpcChannel::from_shared(format!("http://{}", handle.grpc_addr))
            .unwrap()
            .connect_lazy();
        suite.handle = Some(handle);
        suite
    }

    /// A caller with one role; department heads and clinicians belong to cardiology.
    pub fn authed_as(&self, subject: &str, role: Role) -> Authed {
        let department = matches!(role, Role::DepartmentHead | Role::Clinician).then_some("cardiology");
        let token = self.auth.mint(subject, &[role], department, 600).unwrap();
        InterceptedService::new(self.channel.clone(), Bearer::new(&token).expect("a header value"))
    }

    pub fn watch(&self, role: Role) -> WatchServiceClient<Authed> {
        WatchServiceClient::new(self.authed_as(&format!("{role}-user"), role))
    }

    pub fn mentions(&self, role: Role) -> MentionServiceClient<Authed> {
        MentionServiceClient::new(self.authed_as(&format!("{role}-user"), role))
    }

    pub fn incidents_as(&self, subject: &str) -> IncidentServiceClient<Authed> {
        IncidentServiceClient::new(self.authed_as(subject, Role::OpinionAnalyst))
    }

    pub fn incidents(&self, role: Role) -> IncidentServiceClient<Authed> {
        IncidentServiceClient::new(self.authed_as(&format!("{role}-user"), role))
    }

    pub fn reputation(&self, role: Role) -> ReputationServiceClient<Authed> {
        ReputationServiceClient::new(self.authed_as(&format!("{role}-user"), role))
    }

    pub fn cases(&self) -> CaseServiceClient<Authed> {
        CaseServiceClient::new(self.authed_as("admin-user", Role::Admin))
    }

    pub fn patients(&self) -> PatientServiceClient<Authed> {
        PatientServiceClient::new(self.authed_as("admin-user", Role::Admin))
    }

    pub async fn patient(&self, name: &str, phone: &str) -> String {
        self.patients()
            .create_patient(CreatePatientRequest {
                patient: Some(Patient {
                    display_name: name.into(),
                    phones: vec![phone.into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create patient")
            .into_inner()
            .name
    }

    /// The hospital on the watch list; returns its entity.
    pub async fn hospital(&self) -> Entity {
        self.entity(
            EntityKind::Hospital,
            "仁心医院",
            &["仁心医院", "仁心", "Renxin Hospital"],
        )
        .await
    }

    pub async fn entity(&self, kind: EntityKind, name: &str, terms: &[&str]) -> Entity {
        self.watch(Role::OpinionAnalyst)
            .create_entity(CreateEntityRequest {
                entity: Some(Entity {
                    kind: kind as i32,
                    display_name: name.into(),
                    terms: terms.iter().map(|t| t.to_string()).collect(),
                    ..Default::default()
                }),
            })
            .await
            .expect("create entity")
            .into_inner()
    }

    /// Pushes posts as a crawler, all in one message.
    pub async fn push(&self, posts: Vec<PushedMention>) -> IngestMentionsResponse {
        self.push_messages(vec![posts]).await.expect("ingest")
    }

    pub async fn push_messages(
        &self,
        messages: Vec<Vec<PushedMention>>,
    ) -> Result<IngestMentionsResponse, tonic::Status> {
        let requests: Vec<IngestMentionsRequest> = messages
            .into_iter()
            .map(|mentions| IngestMentionsRequest { mentions })
            .collect();
        self.mentions(Role::Integration)
            .ingest_mentions(tokio_stream::iter(requests))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.opinion_db.url).await.unwrap();
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        pool.close().await;
        n
    }

    /// Webhook bodies of a delivery kind.
    pub fn delivered(&self, kind: &str) -> Vec<serde_json::Value> {
        self.webhook
            .lock()
            .unwrap()
            .bodies
            .iter()
            .filter(|b| b.get("kind").and_then(|k| k.as_str()) == Some(kind))
            .cloned()
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop().await.unwrap();
        }
    }
}

/// A post as a crawler pushes it.
pub fn post(url: &str, text: &str) -> PushedMention {
    PushedMention {
        url: url.into(),
        site: "weibo.com".into(),
        author: "网友".into(),
        text: text.into(),
        reach: 10,
        ..Default::default()
    }
}

pub fn at(micros: i64) -> prost_types::Timestamp {
    hcrm_kit::time::to_timestamp(micros)
}
