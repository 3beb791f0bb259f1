//! A suite of patients + followup on port 0 with fresh databases, a manual clock, and a local
//! webhook receiver that counts deliveries by idempotency key.

use hcrm_kit::auth::{Authenticator, Role};
pub use hcrm_kit::client::Bearer;
use hcrm_kit::clock::Clock;
use hcrm_kit::config::ServerConfig;
use hcrm_kit::deps::Deps;
use hcrm_kit::notify::NotifierConfig;
use hcrm_kit::secret::Secret;
use hcrm_kit::server::Handle;
pub use hcrm_kit::testing::{
    Receiver, TestBackend, TestDatabase, WEBHOOK_SECRET, assert_status, eventually, webhook_receiver,
};
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::template_service_client::TemplateServiceClient;
use hcrm_proto::followup::*;
use hcrm_proto::patients::appointment_service_client::AppointmentServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Interaction, InteractionKind, Patient, RecordInteractionRequest};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel as GrpcChannel;

pub const SECRET: &str = "test-signing-secret-0123456789abcdef";
/// 2026-06-01 02:00 UTC = 10:00 in Beijing. In the past, so the patients service (which reads
/// the real clock for "not in the future" checks) accepts events dated by the test clock.
pub const START: i64 = 1_780_279_200_000_000;
pub const DAY: i64 = 86_400 * 1_000_000;

pub type Authed = InterceptedService<GrpcChannel, Bearer>;

/// patients + followup in one server, as `hcrm serve` runs them.
pub struct Suite {
    pub patients_db: TestDatabase,
    pub followup_db: TestDatabase,
    pub data_dir: tempfile::TempDir,
    pub clock: Clock,
    pub auth: Authenticator,
    pub channel: GrpcChannel,
    pub webhook: Receiver,
    pub webhook_url: String,
    /// `http://…` of the first server (patients, and followup unless stopped).
    pub url: String,
    /// Adjusts followup's configuration before each start.
    pub tune: fn(&mut hcrm_followup::Config),
    handles: Vec<Handle>,
}

pub fn followup_config(db: &TestDatabase, webhook_url: &str, run_jobs: bool) -> hcrm_followup::Config {
    hcrm_followup::Config {
        database_url: Some(Secret::new(db.url.clone())),
        run_jobs,
        notifier: NotifierConfig {
            kind: "webhook".into(),
            webhook_url: webhook_url.into(),
            webhook_secret: Some(Secret::new(WEBHOOK_SECRET.to_string())),
            timeout_ms: 2_000,
            ..Default::default()
        },
        delivery: hcrm_followup::DeliveryConfig {
            poll_ms: 50,
            backoff_ms: 10,
            ..Default::default()
        },
        ..Default::default()
    }
}

impl Suite {
    pub async fn start(backend: TestBackend) -> Suite {
        Self::start_with(backend, true).await
    }

    /// `followup_jobs = false` runs followup without its background jobs: "followup down" for
    /// the feed, while its API answers.
    pub async fn start_with(backend: TestBackend, followup_jobs: bool) -> Suite {
        Self::start_tuned(backend, followup_jobs, |_| {}).await
    }

    pub async fn start_tuned(backend: TestBackend, followup_jobs: bool, tune: fn(&mut hcrm_followup::Config)) -> Suite {
        let patients_db = TestDatabase::new(backend).await.expect("patients database");
        let followup_db = TestDatabase::new(backend).await.expect("followup database");
        let data_dir = tempfile::tempdir().unwrap();
        let (webhook_url, webhook) = webhook_receiver().await;
        let mut suite = Suite {
            patients_db,
            followup_db,
            data_dir,
            clock: Clock::manual(START),
            auth: Authenticator::hs256(SECRET),
            channel: GrpcChannel::from_static("http://127.0.0.1:1").connect_lazy(),
            webhook,
            webhook_url,
            url: String::new(),
            tune,
            handles: Vec::new(),
        };
        let handle = suite.serve(true, Some(followup_jobs), None).await;
        suite.url = format!("http://{}", handle.grpc_addr);
        suite.channel = GrpcChannel::from_shared(suite.url.clone()).unwrap().connect_lazy();
        suite.handles.push(handle);
        suite
    }

    pub fn deps(&self, listener: &tokio::net::TcpListener, stopping: tokio::sync::watch::Receiver<bool>) -> Deps {
        let addr = listener.local_addr().unwrap();
        hcrm_kit::testing::test_deps(SECRET, self.data_dir.path(), self.clock.clone(), addr, stopping)
    }

    /// Starts a server with patients (when `patients`) and/or followup (`Some(jobs)`), the
    /// latter reading patients at `patients_url` (default: itself).
    pub async fn serve(&self, patients: bool, followup: Option<bool>, patients_url: Option<String>) -> Handle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (shutdown, stopping) = hcrm_kit::server::shutdown_channel();
        let deps = self.deps(&listener, stopping);
        let mut built = Vec::new();
        if patients {
            let cfg = hcrm_patients::Config {
                database_url: Some(Secret::new(self.patients_db.url.clone())),
                ..Default::default()
            };
            built.push(hcrm_patients::build(&cfg, deps.clone()).await.expect("build patients"));
        }
        if let Some(jobs) = followup {
            let mut cfg = followup_config(&self.followup_db, &self.webhook_url, jobs);
            cfg.patients_url = patients_url;
            (self.tune)(&mut cfg);
            built.push(hcrm_followup::build(&cfg, deps).await.expect("build followup"));
        }
        hcrm_kit::server::start(
            built,
            hcrm_kit::server::Listeners::grpc(listener),
            &ServerConfig::default(),
            shutdown,
        )
        .await
        .expect("start")
    }

    /// Adds a server to stop with the suite.
    pub fn keep(&mut self, handle: Handle) {
        self.handles.push(handle);
    }

    pub fn token(&self, role: Role, department: Option<&str>) -> String {
        self.auth
            .mint(&format!("{role}-user"), &[role], department, 600)
            .unwrap()
    }

    fn authed(&self, role: Role, department: Option<&str>) -> Authed {
        InterceptedService::new(
            self.channel.clone(),
            Bearer::new(&self.token(role, department)).expect("a header value"),
        )
    }

    pub fn followup(&self, role: Role) -> FollowupServiceClient<Authed> {
        FollowupServiceClient::new(self.authed(role, None))
    }

    pub fn followup_in(&self, role: Role, department: &str) -> FollowupServiceClient<Authed> {
        FollowupServiceClient::new(self.authed(role, Some(department)))
    }

    pub fn templates(&self, role: Role) -> TemplateServiceClient<Authed> {
        TemplateServiceClient::new(self.authed(role, None))
    }

    pub fn patients(&self) -> PatientServiceClient<Authed> {
        PatientServiceClient::new(self.authed(Role::Admin, None))
    }

    /// The patients service's appointment requests, as an admin.
    pub fn appointments(&self) -> AppointmentServiceClient<Authed> {
        AppointmentServiceClient::new(self.authed(Role::Admin, None))
    }

    /// Creates a patient who accepts SMS, and returns its id.
    pub async fn patient(&self, name: &str, phone: &str) -> String {
        self.patient_with(Patient {
            display_name: name.into(),
            phones: vec![phone.into()],
            contact_preferences: Some(hcrm_proto::patients::ContactPreferences {
                allowed_channels: vec![hcrm_proto::types::ContactChannel::Sms as i32],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
    }

    /// Creates a patient as given, and returns its id.
    pub async fn patient_with(&self, patient: Patient) -> String {
        let p = self
            .patients()
            .create_patient(CreatePatientRequest {
                patient: Some(patient),
                ..Default::default()
            })
            .await
            .expect("create patient")
            .into_inner();
        p.name.trim_start_matches("patients/").to_string()
    }

    /// Records a discharge in the patients service.
    pub async fn discharge(&self, patient_id: &str, department: &str, diagnoses: &[&str], external_id: &str) {
        self.patients()
            .record_interaction(RecordInteractionRequest {
                parent: format!("patients/{patient_id}"),
                interaction: Some(Interaction {
                    kind: InteractionKind::Discharge as i32,
                    department: department.into(),
                    occur_time: Some(hcrm_kit::time::to_timestamp(self.clock.now())),
                    summary: "出院".into(),
                    source_system: "his".into(),
                    external_id: external_id.into(),
                    diagnosis_codes: diagnoses.iter().map(|d| d.to_string()).collect(),
                    ..Default::default()
                }),
            })
            .await
            .expect("record discharge");
    }

    pub async fn sql(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.followup_db.url).await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        let pool = self.sql().await;
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        pool.close().await;
        n
    }

    pub async fn stop(mut self) {
        for handle in self.handles.drain(..) {
            handle.stop().await.unwrap();
        }
    }
}

/// The discharge template of the tests: T+1 (score), T+7 (re-check with a patient notice).
pub fn discharge_template() -> Template {
    Template {
        display_name: "心内科出院随访".into(),
        kind: TemplateKind::Scheduled as i32,
        applies_to: Some(Applicability {
            departments: vec!["card".into()],
            diagnosis_prefixes: vec!["I2".into()],
            on_discharge: true,
        }),
        schedule: vec![
            ScheduleStep {
                offset_days: 1,
                window_days: 2,
                channel: Channel::Phone as i32,
                purpose: "出院后电话随访".into(),
                notify_patient: false,
            },
            ScheduleStep {
                offset_days: 7,
                window_days: 3,
                channel: Channel::Phone as i32,
                purpose: "复查血压".into(),
                notify_patient: true,
            },
        ],
        default_channel: Channel::Phone as i32,
        questions: vec![Question {
            key: "pain".into(),
            text: "伤口还疼吗？".into(),
        }],
        score: Some(ScoreTemplate {
            items: vec![
                ScoreItem {
                    key: "mobility".into(),
                    label: "活动能力".into(),
                    weight: 40.0,
                    min: 0.0,
                    max: 4.0,
                    lower_is_better: false,
                },
                ScoreItem {
                    key: "pain".into(),
                    label: "疼痛".into(),
                    weight: 60.0,
                    min: 0.0,
                    max: 10.0,
                    lower_is_better: true,
                },
            ],
        }),
        ..Default::default()
    }
}

pub async fn create_template(suite: &Suite, t: Template) -> Template {
    suite
        .templates(Role::Admin)
        .create_template(CreateTemplateRequest {
            template: Some(t),
            request_id: String::new(),
        })
        .await
        .expect("create template")
        .into_inner()
}

/// The tasks of a plan, by due date.
pub async fn tasks_of(suite: &Suite, plan: &str) -> Vec<Task> {
    suite
        .followup(Role::Admin)
        .list_tasks(ListTasksRequest {
            view: TaskView::All as i32,
            plan: plan.into(),
            ..Default::default()
        })
        .await
        .expect("list tasks")
        .into_inner()
        .tasks
}

/// Waits for the patient's plans to number `n`.
pub async fn plans_of(suite: &Suite, patient_id: &str, n: usize) -> Vec<Plan> {
    eventually("plans", || async {
        let plans = suite
            .followup(Role::Admin)
            .list_plans(ListPlansRequest {
                patient: format!("patients/{patient_id}"),
                ..Default::default()
            })
            .await
            .expect("list plans")
            .into_inner()
            .plans;
        (plans.len() == n).then_some(plans)
    })
    .await
}

/// Local day number of the suite's clock now.
pub fn today(suite: &Suite) -> i32 {
    hcrm_followup::domain::calendar::Calendar::new(480).day_of(suite.clock.now())
}

/// A plan made by hand for `patient_id` with one task due tomorrow (and a patient notice when
/// `notify_patient`); returns the task.
pub async fn task_due_tomorrow(suite: &Suite, patient_id: &str, notify_patient: bool) -> Task {
    let plan = suite
        .followup(hcrm_kit::auth::Role::Admin)
        .create_plan(CreatePlanRequest {
            plan: Some(Plan {
                patient: format!("patients/{patient_id}"),
                department: "card".into(),
                responsible: "nurse-li".into(),
                ..Default::default()
            }),
            steps: vec![ManualStep {
                due_date: Some(hcrm_followup::domain::calendar::to_date(today(suite) + 1)),
                window_days: 1,
                channel: Channel::Phone as i32,
                purpose: "复查".into(),
                notify_patient,
            }],
            request_id: String::new(),
        })
        .await
        .expect("create plan")
        .into_inner();
    tasks_of(suite, &plan.name).await.remove(0)
}
