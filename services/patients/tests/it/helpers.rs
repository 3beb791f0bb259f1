//! Starting the service on port 0 with a fresh database, and clients with tokens per role.

use hcrm_kit::auth::{Authenticator, Role};
pub use hcrm_kit::client::Bearer;
use hcrm_kit::config::{DataConfig, SecurityConfig, ServerConfig};
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Handle;
pub use hcrm_kit::testing::{TestBackend, TestDatabase, assert_status};
use hcrm_proto::patients::audit_service_client::AuditServiceClient;
use hcrm_proto::patients::organization_service_client::OrganizationServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::*;
use hcrm_proto::types::Date;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const SECRET: &str = "test-signing-secret-0123456789abcdef";

/// Everything logged by the service under test, to check that no protected value leaks.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber_init(move || SharedWriter(writer.clone()));
        buffer
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tracing_subscriber_init<F>(make: F) -> Result<(), String>
where
    F: Fn() -> SharedWriter + Send + Sync + 'static,
{
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(make)
        .finish()
        .try_init()
        .map_err(|e| e.to_string())
}

pub type Authed = InterceptedService<Channel, Bearer>;

/// A running patients service with its own database.
pub struct Service {
    pub db: TestDatabase,
    _data_dir: tempfile::TempDir,
    pub auth: Authenticator,
    channel: Channel,
    handle: Option<Handle>,
}

impl Service {
    pub async fn start(backend: TestBackend) -> Service {
        Service::start_with(backend, |_| {}).await
    }

    pub fn token(&self, role: Role, department: Option<&str>) -> String {
        self.auth
            .mint(&format!("{role}-user"), &[role], department, 600)
            .unwrap()
    }

    fn intercepted(&self, token: Option<String>) -> Authed {
        InterceptedService::new(
            self.channel.clone(),
            token.map_or_else(Bearer::none, |t| Bearer::new(&t).expect("a header value")),
        )
    }

    pub fn patients(&self, role: Role) -> PatientServiceClient<Authed> {
        PatientServiceClient::new(self.intercepted(Some(self.token(role, None))))
    }

    pub fn patients_in(&self, role: Role, department: &str) -> PatientServiceClient<Authed> {
        PatientServiceClient::new(self.intercepted(Some(self.token(role, Some(department)))))
    }

    pub fn patients_with_token(&self, token: Option<String>) -> PatientServiceClient<Authed> {
        PatientServiceClient::new(self.intercepted(token))
    }

    pub fn organizations(&self, role: Role) -> OrganizationServiceClient<Authed> {
        OrganizationServiceClient::new(self.intercepted(Some(self.token(role, None))))
    }

    pub fn audit(&self, role: Role) -> AuditServiceClient<Authed> {
        AuditServiceClient::new(self.intercepted(Some(self.token(role, None))))
    }

    pub fn segments(&self, role: Role) -> hcrm_proto::patients::segment_service_client::SegmentServiceClient<Authed> {
        hcrm_proto::patients::segment_service_client::SegmentServiceClient::new(
            self.intercepted(Some(self.token(role, None))),
        )
    }

    pub fn grading(&self, role: Role) -> hcrm_proto::patients::grading_service_client::GradingServiceClient<Authed> {
        hcrm_proto::patients::grading_service_client::GradingServiceClient::new(
            self.intercepted(Some(self.token(role, None))),
        )
    }

    pub fn referrals(
        &self,
        role: Role,
    ) -> hcrm_proto::patients::referral_service_client::ReferralServiceClient<Authed> {
        hcrm_proto::patients::referral_service_client::ReferralServiceClient::new(
            self.intercepted(Some(self.token(role, None))),
        )
    }

    pub fn directory(
        &self,
        role: Role,
    ) -> hcrm_proto::patients::directory_service_client::DirectoryServiceClient<Authed> {
        hcrm_proto::patients::directory_service_client::DirectoryServiceClient::new(
            self.intercepted(Some(self.token(role, None))),
        )
    }

    pub fn fhir(&self, role: Role) -> hcrm_proto::patients::fhir_service_client::FhirServiceClient<Authed> {
        hcrm_proto::patients::fhir_service_client::FhirServiceClient::new(
            self.intercepted(Some(self.token(role, None))),
        )
    }

    pub fn appointments(
        &self,
        role: Role,
    ) -> hcrm_proto::patients::appointment_service_client::AppointmentServiceClient<Authed> {
        hcrm_proto::patients::appointment_service_client::AppointmentServiceClient::new(
            self.intercepted(Some(self.token(role, None))),
        )
    }

    pub fn appointments_in(
        &self,
        role: Role,
        department: &str,
    ) -> hcrm_proto::patients::appointment_service_client::AppointmentServiceClient<Authed> {
        hcrm_proto::patients::appointment_service_client::AppointmentServiceClient::new(
            self.intercepted(Some(self.token(role, Some(department)))),
        )
    }

    /// The consultation API for `role`, scoped to `department` when given.
    pub fn consultations(
        &self,
        role: Role,
        department: Option<&str>,
    ) -> hcrm_proto::patients::consultation_service_client::ConsultationServiceClient<Authed> {
        hcrm_proto::patients::consultation_service_client::ConsultationServiceClient::new(
            self.intercepted(Some(self.token(role, department))),
        )
    }

    /// The service request API for `role`, scoped to `department` when given.
    pub fn service_requests(
        &self,
        role: Role,
        department: Option<&str>,
    ) -> hcrm_proto::patients::service_request_service_client::ServiceRequestServiceClient<Authed> {
        hcrm_proto::patients::service_request_service_client::ServiceRequestServiceClient::new(
            self.intercepted(Some(self.token(role, department))),
        )
    }

    /// Like [`Service::start`], with the configuration changed by `configure` first.
    pub async fn start_with(backend: TestBackend, configure: impl FnOnce(&mut hcrm_patients::Config)) -> Service {
        captured_logs();
        let db = TestDatabase::new(backend).await.expect("test database");
        let data_dir = tempfile::tempdir().unwrap();
        let data = DataConfig {
            dir: data_dir.path().to_path_buf(),
            max_connections: 8,
            acquire_timeout_secs: 10,
        };
        let security = SecurityConfig {
            data_keys: Some(Secret::new(format!("k1:{}", base64_key(7)))),
            active_key_id: None,
            index_key: Some(Secret::new(base64_key(9))),
        };
        let server = ServerConfig::default();
        let mut cfg = hcrm_patients::Config {
            database_url: Some(Secret::new(db.url.clone())),
            ..Default::default()
        };
        configure(&mut cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (shutdown, stopping) = hcrm_kit::server::shutdown_channel();
        let deps = hcrm_patients::Deps {
            authenticator: Arc::new(Authenticator::hs256(SECRET)),
            data,
            security,
            server: server.clone(),
            stopping,
            clock: hcrm_kit::clock::Clock::system(),
            self_addr: listener.local_addr().unwrap(),
        };
        let built = hcrm_patients::build(&cfg, deps).await.expect("build patients");
        let handle = hcrm_kit::server::start(
            vec![built],
            hcrm_kit::server::Listeners::grpc(listener),
            &server,
            shutdown,
        )
        .await
        .expect("start");
        let channel = Channel::from_shared(format!("http://{}", handle.grpc_addr))
            .unwrap()
            .connect_lazy();
        Service {
            db,
            _data_dir: data_dir,
            auth: Authenticator::hs256(SECRET),
            channel,
            handle: Some(handle),
        }
    }

    /// A second handle on the service's database and keys, as another replica opens it.
    pub async fn open_store(&self) -> hcrm_patients::store::Store {
        let data = DataConfig {
            dir: self._data_dir.path().to_path_buf(),
            max_connections: 4,
            acquire_timeout_secs: 10,
        };
        let security = SecurityConfig {
            data_keys: Some(Secret::new(format!("k1:{}", base64_key(7)))),
            active_key_id: None,
            index_key: Some(Secret::new(base64_key(9))),
        };
        let db = hcrm_kit::db::Db::connect(&self.db.url, &data).await.expect("connect");
        let sealer = hcrm_kit::crypto::Sealer::from_config(&security, &data.dir).expect("sealer");
        let index = hcrm_kit::crypto::BlindIndex::from_config(&security, &data.dir).expect("index");
        hcrm_patients::store::Store::new(db, sealer, index)
    }

    /// Runs SQL directly against the service's database (for tamper tests and counts).
    pub async fn sql(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.db.url).await.unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        let pool = self.sql().await;
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
        pool.close().await;
        n
    }

    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop().await.unwrap();
        }
    }
}

fn base64_key(byte: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// A valid resident ID number with the check digit computed for `seq`.
pub fn resident_id(birth: &str, seq: u32) -> String {
    let body = format!("110101{birth}{:03}", seq % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = body
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    format!("{body}{}", CHECK[(sum % 11) as usize])
}

/// A typical patient.
pub fn zhang_san() -> Patient {
    Patient {
        display_name: "张三".into(),
        sex: Sex::Male as i32,
        birth_date: Some(Date {
            year: 1990,
            month: 3,
            day: 7,
        }),
        phones: vec!["138 0013 8000".into()],
        identity_type: IdentityType::ResidentId as i32,
        identity_number: resident_id("19900307", 451),
        department: "cardiology".into(),
        tags: vec!["hypertension".into()],
        ..Default::default()
    }
}

/// Creates a patient as admin and returns it.
pub async fn create(svc: &Service, p: Patient) -> Patient {
    svc.patients(Role::Admin)
        .create_patient(CreatePatientRequest {
            patient: Some(p),
            ..Default::default()
        })
        .await
        .expect("create patient")
        .into_inner()
}
