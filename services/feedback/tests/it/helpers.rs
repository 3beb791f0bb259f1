//! patients + followup + feedback in one server on port 0 with fresh databases, a manual clock
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
use hcrm_proto::feedback::report_service_client::ReportServiceClient;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::*;
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use std::sync::{Arc, Mutex};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel as GrpcChannel;

pub const SECRET: &str = "test-signing-secret-0123456789abcdef";
/// 2026-06-01 02:00 UTC = Monday 10:00 in Beijing (in the past: patients accepts it).
pub const START: i64 = 1_780_279_200_000_000;
pub const HOUR: i64 = 3_600 * 1_000_000;
pub const DAY: i64 = 24 * HOUR;

pub type Authed = InterceptedService<GrpcChannel, Bearer>;

pub struct Suite {
    pub patients_db: TestDatabase,
    pub followup_db: TestDatabase,
    pub feedback_db: TestDatabase,
    pub data_dir: tempfile::TempDir,
    pub clock: Clock,
    pub auth: Authenticator,
    pub channel: GrpcChannel,
    pub webhook: Arc<Mutex<Received>>,
    pub webhook_url: String,
    handle: Option<Handle>,
}

/// The feedback configuration of the tests: webhook notifier, fast loops, China's 2025 National
/// Day holiday with its make-up days, groups of 3 answers or more shown in reports.
pub fn feedback_config(db: &TestDatabase, webhook_url: &str) -> hcrm_feedback::Config {
    hcrm_feedback::Config {
        database_url: Some(Secret::new(db.url.clone())),
        holidays: vec!["2025-10-01..2025-10-08".into()],
        workdays: vec!["2025-09-28".into(), "2025-10-11".into()],
        min_group_size: 3,
        // Opinion is not part of this suite (the opinion suite runs the escalation).
        opinion_url: Some(String::new()),
        notifier: NotifierConfig {
            kind: "webhook".into(),
            webhook_url: webhook_url.into(),
            webhook_secret: Some(Secret::new(WEBHOOK_SECRET.to_string())),
            timeout_ms: 2_000,
            ..Default::default()
        },
        delivery: DeliveryConfig {
            poll_ms: 50,
            backoff_ms: 10,
            ..Default::default()
        },
        ..Default::default()
    }
}

impl Suite {
    pub async fn start(backend: TestBackend) -> Suite {
        Self::start_at(backend, START).await
    }

    pub async fn start_at(backend: TestBackend, now: i64) -> Suite {
        Self::start_tuned(backend, now, |_| {}).await
    }

    /// A suite whose feedback configuration `tune` adjusts first.
    pub async fn start_tuned(backend: TestBackend, now: i64, tune: fn(&mut hcrm_feedback::Config)) -> Suite {
        let (webhook_url, webhook) = webhook_receiver().await;
        let mut suite = Suite {
            patients_db: TestDatabase::new(backend).await.expect("patients database"),
            followup_db: TestDatabase::new(backend).await.expect("followup database"),
            feedback_db: TestDatabase::new(backend).await.expect("feedback database"),
            data_dir: tempfile::tempdir().unwrap(),
            clock: Clock::manual(now),
            auth: Authenticator::hs256(SECRET),
            channel: GrpcChannel::from_static("http://127.0.0.1:1").connect_lazy(),
            webhook,
            webhook_url,
            handle: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (shutdown, stopping) = hcrm_kit::server::shutdown_channel();
        let deps = suite.deps(&listener, stopping);
        let patients = hcrm_patients::Config {
            database_url: Some(Secret::new(suite.patients_db.url.clone())),
            ..Default::default()
        };
        let followup = hcrm_followup::Config {
            database_url: Some(Secret::new(suite.followup_db.url.clone())),
            delivery: DeliveryConfig {
                poll_ms: 50,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut feedback = feedback_config(&suite.feedback_db, &suite.webhook_url);
        tune(&mut feedback);
        let built = vec![
            hcrm_patients::build(&patients, deps.clone())
                .await
                .expect("build patients"),
            hcrm_followup::build(&followup, deps.clone())
                .await
                .expect("build followup"),
            hcrm_feedback::build(&feedback, deps).await.expect("build feedback"),
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

    fn deps(&self, listener: &tokio::net::TcpListener, stopping: tokio::sync::watch::Receiver<bool>) -> Deps {
        let addr = listener.local_addr().unwrap();
        hcrm_kit::testing::test_deps(SECRET, self.data_dir.path(), self.clock.clone(), addr, stopping)
    }

    pub fn token(&self, role: Role, department: Option<&str>) -> String {
        self.auth
            .mint(&format!("{role}-user"), &[role], department, 600)
            .unwrap()
    }

    pub fn authed(&self, role: Role, department: Option<&str>) -> Authed {
        InterceptedService::new(
            self.channel.clone(),
            Bearer::new(&self.token(role, department)).expect("a header value"),
        )
    }

    pub fn cases(&self, role: Role) -> CaseServiceClient<Authed> {
        CaseServiceClient::new(self.authed(role, None))
    }

    pub fn cases_in(&self, role: Role, department: &str) -> CaseServiceClient<Authed> {
        CaseServiceClient::new(self.authed(role, Some(department)))
    }

    pub fn surveys(&self, role: Role) -> SurveyServiceClient<Authed> {
        SurveyServiceClient::new(self.authed(role, None))
    }

    pub fn reports(&self, role: Role) -> ReportServiceClient<Authed> {
        ReportServiceClient::new(self.authed(role, None))
    }

    pub fn followup(&self) -> FollowupServiceClient<Authed> {
        FollowupServiceClient::new(self.authed(Role::Admin, None))
    }

    pub fn patients(&self) -> PatientServiceClient<Authed> {
        PatientServiceClient::new(self.authed(Role::Admin, None))
    }

    /// Creates a patient who accepts SMS; returns `patients/{id}`.
    pub async fn patient(&self, name: &str, phone: &str) -> String {
        self.patients()
            .create_patient(CreatePatientRequest {
                patient: Some(Patient {
                    display_name: name.into(),
                    phones: vec![phone.into()],
                    email: format!("{phone}@example.org"),
                    contact_preferences: Some(hcrm_proto::patients::ContactPreferences {
                        allowed_channels: vec![hcrm_proto::types::ContactChannel::Sms as i32],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create patient")
            .into_inner()
            .name
    }

    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.feedback_db.url).await.unwrap();
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

/// A hotline complaint about `department` (patient optional).
pub fn complaint(patient: &str, department: &str) -> Case {
    Case {
        kind: CaseKind::Complaint as i32,
        channel: IntakeChannel::Hotline as i32,
        patient: patient.into(),
        department: department.into(),
        category: "waiting".into(),
        subcategory: "consultation".into(),
        severity: Severity::Medium as i32,
        title: "候诊两小时".into(),
        description: "挂了上午的号，等到中午还没看上。".into(),
        ..Default::default()
    }
}

pub async fn open_case(suite: &Suite, role: Role, c: Case) -> Case {
    suite
        .cases(role)
        .create_case(CreateCaseRequest {
            case: Some(c),
            ..Default::default()
        })
        .await
        .expect("create case")
        .into_inner()
}

/// Takes a case one step.
pub async fn step(
    suite: &Suite,
    name: &str,
    action: CaseAction,
    fill: impl FnOnce(&mut TransitionCaseRequest),
) -> Result<Case, tonic::Status> {
    let mut req = TransitionCaseRequest {
        name: name.into(),
        action: action as i32,
        ..Default::default()
    };
    fill(&mut req);
    suite
        .cases(Role::Inspector)
        .transition_case(req)
        .await
        .map(|r| r.into_inner())
}

/// The PDCA plan of the tests.
pub fn plan(req: &mut TransitionCaseRequest) {
    req.root_cause = "上午号源超发".into();
    req.corrective_actions = vec![CorrectiveAction {
        description: "按时段分时预约".into(),
        owner: "head-outpatient".into(),
        due_date: Some(hcrm_proto::types::Date {
            year: 2026,
            month: 6,
            day: 30,
        }),
    }];
}

pub fn reply(req: &mut TransitionCaseRequest) {
    req.reply = Some(Reply {
        text: "已调整为分时段预约，向您致歉。".into(),
        channel: hcrm_proto::types::ContactChannel::Phone as i32,
        reply_time: None,
    });
}

pub fn confirm(effective: bool) -> impl FnOnce(&mut TransitionCaseRequest) {
    move |req| {
        req.confirmation = Some(Confirmation {
            effective,
            note: if effective {
                "患者表示满意"
            } else {
                "仍需长时间等候"
            }
            .into(),
            ..Default::default()
        })
    }
}

/// The questionnaire of the tests: two rated dimensions, a choice with skip logic to a required
/// free-text question, and NPS.
pub fn questionnaire() -> Questionnaire {
    let text = |s: &str| {
        Some(LocalizedText {
            zh: s.into(),
            en: s.into(),
        })
    };
    let rating = |id: &str, d: Dimension| Question {
        id: id.into(),
        kind: QuestionKind::Rating as i32,
        text: text(id),
        required: true,
        dimension: d as i32,
        ..Default::default()
    };
    Questionnaire {
        title: text("出院患者满意度"),
        sections: vec![Section {
            title: text("服务"),
            questions: vec![
                rating("attitude", Dimension::Attitude),
                rating("environment", Dimension::Environment),
                Question {
                    id: "again".into(),
                    kind: QuestionKind::SingleChoice as i32,
                    text: text("会推荐吗"),
                    required: true,
                    options: vec![
                        Choice {
                            value: "yes".into(),
                            text: text("会"),
                        },
                        Choice {
                            value: "no".into(),
                            text: text("不会"),
                        },
                    ],
                    ..Default::default()
                },
                Question {
                    id: "why".into(),
                    kind: QuestionKind::FreeText as i32,
                    text: text("为什么"),
                    required: true,
                    show_if: Some(ShowIf {
                        question: "again".into(),
                        values: vec!["no".into()],
                    }),
                    ..Default::default()
                },
            ],
        }],
        ..Default::default()
    }
}

/// A published questionnaire.
pub async fn published(suite: &Suite) -> Questionnaire {
    let mut surveys = suite.surveys(Role::Inspector);
    let q = surveys
        .create_questionnaire(CreateQuestionnaireRequest {
            questionnaire: Some(questionnaire()),
            request_id: String::new(),
        })
        .await
        .expect("create questionnaire")
        .into_inner();
    surveys
        .publish_questionnaire(PublishQuestionnaireRequest {
            name: q.name,
            etag: q.etag,
        })
        .await
        .expect("publish")
        .into_inner()
}

/// Invitations for `patients` about `department`.
pub async fn invite(suite: &Suite, q: &str, patients: &[String], department: &str, send: bool) -> Vec<Invitation> {
    suite
        .surveys(Role::Inspector)
        .create_invitations(CreateInvitationsRequest {
            questionnaire: q.into(),
            patients: patients.to_vec(),
            department: department.into(),
            send,
            ..Default::default()
        })
        .await
        .expect("invite")
        .into_inner()
        .invitations
}

pub fn answers(attitude: i32, environment: i32) -> Vec<Answer> {
    vec![
        Answer {
            question: "attitude".into(),
            score: Some(attitude),
            ..Default::default()
        },
        Answer {
            question: "environment".into(),
            score: Some(environment),
            ..Default::default()
        },
        Answer {
            question: "again".into(),
            choices: vec!["yes".into()],
            ..Default::default()
        },
    ]
}

pub async fn submit(suite: &Suite, token: &str, answers: Vec<Answer>) -> Result<SurveyResponse, tonic::Status> {
    suite
        .surveys(Role::Integration)
        .submit_survey_response(SubmitSurveyResponseRequest {
            token: token.into(),
            answers,
        })
        .await
        .map(|r| r.into_inner())
}
