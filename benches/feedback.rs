//! Benchmark of the feedback service (a program, not a test): `cargo bench --bench feedback`.
//!
//! - SubmitSurveyResponse ops/s and p99 against the release `hcrm serve` (every service in one
//!   process), each call a fresh invitation token, one in twenty with a low rating that opens a
//!   case; beside a raw single-row INSERT on the same backend and a bare tonic unary RPC, both
//!   measured in the same run.
//! - GetMonthlyReport on PostgreSQL over `BENCH_FEEDBACK_RESPONSES` answers (default 1,000,000,
//!   three rated questions each) and `BENCH_FEEDBACK_CASES` cases (default 100,000) spread over
//!   twelve months.
//!
//! Environment: `BENCH_BACKENDS` (default `sqlite,postgres`), `BENCH_CONCURRENCY` (16),
//! `BENCH_OPS` (4000), `BENCH_FEEDBACK_RESPONSES`, `BENCH_FEEDBACK_CASES`.

mod common;

use common::*;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::Bearer;
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::feedback::report_service_client::ReportServiceClient;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::*;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use std::time::Instant;
use tonic::transport::Channel as GrpcChannel;

const SECRET: &str = "benchmark-signing-secret-0123456789abcdef";

struct Server {
    // Declared first, so the process stops before its databases go.
    process: Process,
    _dbs: Vec<TestDatabase>,
    _data: tempfile::TempDir,
}

/// `hcrm serve --target all` with its own databases on `backend`; the feedback database last.
async fn start_server(backend: TestBackend) -> (Server, String) {
    let data = tempfile::tempdir().unwrap();
    let mut dbs = Vec::new();
    for _ in 0..3 {
        dbs.push(TestDatabase::new(backend).await.unwrap());
    }
    let feedback_url = dbs[2].url.clone();
    let settings = [
        ("HCRM__PATIENTS__DATABASE_URL", dbs[0].url.as_str()),
        ("HCRM__FOLLOWUP__DATABASE_URL", dbs[1].url.as_str()),
        ("HCRM__FEEDBACK__DATABASE_URL", feedback_url.as_str()),
    ];
    let process = serve("all", data.path(), SECRET, &settings, false).await;
    let server = Server {
        process,
        _dbs: dbs,
        _data: data,
    };
    (server, feedback_url)
}

type Authed = tonic::service::interceptor::InterceptedService<GrpcChannel, Bearer>;

async fn authed(addr: &str, role: Role) -> Authed {
    let channel = GrpcChannel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = Authenticator::hs256(SECRET)
        .mint("bench-staff", &[role], None, 3600)
        .unwrap();
    tonic::service::interceptor::InterceptedService::new(channel, Bearer::new(&token).unwrap())
}

fn label(backend: TestBackend) -> &'static str {
    match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres => "postgres",
    }
}

fn text(s: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        zh: s.into(),
        en: s.into(),
    })
}

fn questionnaire() -> Questionnaire {
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
                rating("skill", Dimension::ProfessionalSkill),
                rating("environment", Dimension::Environment),
                Question {
                    id: "comment".into(),
                    kind: QuestionKind::FreeText as i32,
                    text: text("意见"),
                    ..Default::default()
                },
            ],
        }],
        ..Default::default()
    }
}

/// SubmitSurveyResponse, each call with its own token.
async fn submit_bench(backend: TestBackend, rows: &mut Vec<Row>) {
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let ops = env_usize("BENCH_OPS", 4_000);
    let (server, _) = start_server(backend).await;
    let mut surveys = SurveyServiceClient::new(authed(&server.process.addr, Role::Admin).await);
    let q = surveys
        .create_questionnaire(CreateQuestionnaireRequest {
            questionnaire: Some(questionnaire()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let q = surveys
        .publish_questionnaire(PublishQuestionnaireRequest {
            name: q.name,
            etag: q.etag,
        })
        .await
        .unwrap()
        .into_inner();
    let patient = PatientServiceClient::new(authed(&server.process.addr, Role::Admin).await)
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: "基准患者".into(),
                phones: vec!["13800000000".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .name;
    // Invitations one patient per call (a call invites each patient once): setup, not timed.
    let mut tokens = Vec::with_capacity(ops);
    for i in 0..ops {
        let invitation = surveys
            .create_invitations(CreateInvitationsRequest {
                questionnaire: q.name.clone(),
                patients: vec![patient.clone()],
                department: format!("dept-{}", i % 7),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .invitations
            .remove(0);
        tokens.push(invitation.token);
    }
    let tokens = std::sync::Arc::new(tokens);
    let client = SurveyServiceClient::new(authed(&server.process.addr, Role::Integration).await);
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let mut c = client.clone();
        let token = tokens[i].clone();
        async move {
            let low = i % 20 == 0;
            let score = |base: i32| Some(if low { 1 } else { base - (i % 2) as i32 });
            c.submit_survey_response(SubmitSurveyResponseRequest {
                token,
                answers: vec![
                    Answer {
                        question: "attitude".into(),
                        score: score(5),
                        ..Default::default()
                    },
                    Answer {
                        question: "skill".into(),
                        score: score(5),
                        ..Default::default()
                    },
                    Answer {
                        question: "environment".into(),
                        score: score(4),
                        ..Default::default()
                    },
                    Answer {
                        question: "comment".into(),
                        text: "护士很耐心".into(),
                        ..Default::default()
                    },
                ],
            })
            .await
            .expect("submit");
        }
    })
    .await;
    rows.push(summarize(
        label(backend),
        "SubmitSurveyResponse",
        wall,
        lat,
        format!("{concurrency} clients; 3 ratings + text; 1 in 20 opens a case; timeline entry queued"),
    ));
    drop(server);
    let db = TestDatabase::new(backend).await.unwrap();
    rows.push(raw_insert_ceiling(backend, label(backend), &db.url, concurrency, ops).await);
}

/// GetMonthlyReport over many answers and cases on PostgreSQL.
async fn monthly_bench(rows: &mut Vec<Row>) -> String {
    let responses = env_usize("BENCH_FEEDBACK_RESPONSES", 1_000_000) as i64;
    let cases = env_usize("BENCH_FEEDBACK_CASES", 100_000) as i64;
    let (server, url) = start_server(TestBackend::Postgres).await;
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    let t = Instant::now();
    // Twelve months (2025-12 … 2026-11), 30 departments, three rated dimensions per answer.
    let month = "(CASE WHEN g % 12 = 0 THEN 202512 ELSE 202600 + g % 12 END)";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO responses (id, invitation_id, questionnaire_id, version, department, month, score, case_id, body, submitted_at) \
         SELECT 'r' || g, 'i' || g, 'q', 1, 'dept-' || (g % 30), {month}, 75, '', '\\x'::bytea, 0 FROM generate_series(1, $1) AS g"
    )))
    .bind(responses)
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ratings (source, month, department, dimension, score, per_dimension, per_answer) \
         SELECT 'responses/r' || g, {month}, 'dept-' || (g % 30), d, 1 + (g + d * 7) % 5, 1, (d = 1)::int \
         FROM generate_series(1, $1) AS g, (VALUES (1), (2), (6)) AS dims(d)"
    )))
    .bind(responses)
    .execute(&raw)
    .await
    .unwrap();
    // Cases: complaints mostly, every state; responded after hours, half closed.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO cases (id, number, kind, channel, patient_id, department, category, severity, state, is_open, owner, \
         assignee, resolution, source, reopen_count, response_due, resolution_due, first_response_at, closed_at, \
         escalation_level, linked_to, month, body, version, created_at, updated_at) \
         SELECT 'c' || g, 'N' || g, 1 + (g % 10 = 0)::int, 1 + g % 8, '', 'dept-' || (g % 30), \
         (ARRAY['attitude','waiting','fees','medical_quality','environment'])[1 + g % 5], 2, \
         CASE WHEN g % 2 = 0 THEN 7 ELSE 1 + g % 6 END, (g % 2 = 1)::int, 'owner', '', 0, '', 0, \
         1000000000 + g * 1000 + 86400000000, 1000000000 + g * 1000 + 864000000000, \
         1000000000 + g * 1000 + (g % 48) * 3600000000, \
         CASE WHEN g % 2 = 0 THEN 1000000000 + g * 1000 + (g % 240) * 3600000000 ELSE NULL END, \
         0, '', {month}, '\\x'::bytea, 1, 1000000000 + g * 1000, 1000000000 + g * 1000 FROM generate_series(1, $1) AS g"
    )))
    .bind(cases)
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query("VACUUM ANALYZE").execute(&raw).await.unwrap();
    let seeded = t.elapsed();
    raw.close().await;
    let mut reports = ReportServiceClient::new(authed(&server.process.addr, Role::Inspector).await);
    let mut lat = Vec::new();
    let t = Instant::now();
    for _ in 0..20 {
        let s = Instant::now();
        let r = reports
            .get_monthly_report(GetMonthlyReportRequest {
                month: "2026-11".into(),
            })
            .await
            .expect("monthly report")
            .into_inner();
        assert!(r.responses.unwrap().current > 0.0 && r.complaints.unwrap().current > 0.0);
        lat.push(s.elapsed());
    }
    rows.push(summarize(
        "postgres",
        "GetMonthlyReport",
        t.elapsed(),
        lat,
        format!("{responses} answers (×3 ratings), {cases} cases over 12 months; 20 calls one at a time"),
    ));
    drop(server);
    format!(
        "seeded {responses} answers and {cases} cases in {:.1} s",
        seeded.as_secs_f64()
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe { std::env::set_var("HCRM_TEST_PG_DURABLE", "1") };
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    runtime.block_on(async {
        let mut rows = Vec::new();
        echo_ceiling(&mut rows).await;
        for name in backends.split(',').filter(|n| !n.trim().is_empty()) {
            let backend = match name.trim() {
                "sqlite" => TestBackend::Sqlite,
                "postgres" => TestBackend::Postgres,
                other => panic!("unknown backend {other}"),
            };
            submit_bench(backend, &mut rows).await;
        }
        let seeded = monthly_bench(&mut rows).await;
        print_rows(&rows);
        println!("\n{seeded}");
    });
}
