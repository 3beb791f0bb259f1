//! Starts `hcrm serve`, waits for health, mints a token with `hcrm token`, and creates, finds,
//! updates and reads a patient; records the patient's discharge and sees followup make the plan
//! (services calling each other inside one process); then stops it with SIGTERM. On SQLite and
//! on PostgreSQL.

use crate::free_port;
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_hcrm");

struct Server {
    child: Child,
    grpc: String,
    admin: String,
    data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Server {
    /// `databases`: PostgreSQL URLs of patients and followup; SQLite under the data dir if none.
    fn start(databases: Option<(&str, &str)>) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let grpc = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        let mut env = vec![
            ("HCRM__SERVER__GRPC_ADDR".to_string(), grpc.clone()),
            ("HCRM__SERVER__ADMIN_ADDR".to_string(), admin.clone()),
            ("HCRM__GATEWAY__HTTP_ADDR".to_string(), "127.0.0.1:0".to_string()),
            ("HCRM__TELEMETRY__LOG_FORMAT".to_string(), "json".to_string()),
            // Long enough to observe NOT_SERVING before the listener closes.
            ("HCRM__SERVER__DRAIN_DELAY_SECS".to_string(), "1".to_string()),
        ];
        if let Some((patients, followup)) = databases {
            env.push(("HCRM__PATIENTS__DATABASE_URL".to_string(), patients.to_string()));
            env.push(("HCRM__FOLLOWUP__DATABASE_URL".to_string(), followup.to_string()));
        }
        let child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data_dir.path())
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hcrm");
        Server {
            child,
            grpc,
            admin,
            data_dir,
            env,
        }
    }

    fn hcrm(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
    }

    async fn wait_serving(&self) -> Channel {
        let started = Instant::now();
        let channel = Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect_lazy();
        let mut health = HealthClient::new(channel.clone());
        loop {
            let status = health
                .check(HealthCheckRequest {
                    service: "hcrm.patients.v1.PatientService".into(),
                })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
                return channel;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "hcrm did not become healthy: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM, checks that health turns NOT_SERVING while draining, and returns the exit
    /// status and everything it logged.
    async fn terminate(self, channel: Channel) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let mut health = HealthClient::new(channel);
        let started = Instant::now();
        loop {
            let status = health
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(s) if s == ServingStatus::NotServing as i32) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "health never reported NOT_SERVING: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let output = self.child.wait_with_output().unwrap();
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

async fn patient_flow(databases: Option<(&str, &str)>) {
    let server = Server::start(databases);
    let channel = server.wait_serving().await;

    let ready = crate::http_get(&server.admin, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    let token = server.hcrm(&["token", "--role", "guide", "--subject", "nurse-li"]);
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let mut client = PatientServiceClient::with_interceptor(channel.clone(), move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", bearer.clone());
        Ok(req)
    });

    let created = client
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: "王小明".into(),
                phones: vec!["13512345678".into()],
                department: "orthopaedics".into(),
                ..Default::default()
            }),
            request_id: "e2e-1".into(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let found = client
        .search_patients(SearchPatientsRequest {
            query: "wxm".into(),
            page_size: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.matches[0].patient.as_ref().unwrap().name, created.name);
    let updated = client
        .update_patient(UpdatePatientRequest {
            patient: Some(Patient {
                name: created.name.clone(),
                email: "wxm@example.com".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["email".into()],
            }),
            etag: created.etag.clone(),
            reason: "patient asked".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let read = client
        .get_patient(GetPatientRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.email, "wxm@example.com");
    assert_eq!(read.etag, updated.etag);

    followup_flow(&server, channel.clone(), &created.name).await;

    let metrics = crate::http_get(&server.admin, "/metrics").await;
    assert!(
        metrics.contains(
            r#"grpc_server_handled_total{service="hcrm.patients.v1.PatientService",method="CreatePatient",code="Ok"} 1"#
        ),
        "{metrics}"
    );

    // A browser's grpc-web call over HTTP/1.1 reaches the same listener.
    let web = grpc_web_health_check(&server.grpc).await;
    assert!(web.starts_with("HTTP/1.1 200"), "{web}");
    assert!(web.contains("application/grpc-web"), "{web}");
    assert!(web.contains("grpc-status:0"), "{web}");

    let (status, logs) = server.terminate(channel).await;
    assert!(status.success(), "hcrm exits cleanly on SIGTERM: {status:?}\n{logs}");
    assert!(logs.contains("draining"), "{logs}");
    assert!(!logs.contains("王小明"), "patient names stay out of the logs");
}

/// A discharge recorded through the patients API becomes a follow-up plan with its tasks.
async fn followup_flow(server: &Server, channel: Channel, patient: &str) {
    use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
    use hcrm_proto::followup::template_service_client::TemplateServiceClient;
    use hcrm_proto::followup::{
        Applicability, CreateTemplateRequest, ListPlansRequest, ListTasksRequest, ScheduleStep, TaskView, Template,
        TemplateKind,
    };
    let token = server.hcrm(&["token", "--role", "admin", "--subject", "admin-1"]);
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", String::from_utf8(token.stdout).unwrap().trim())
            .parse()
            .unwrap();
    let auth = move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", bearer.clone());
        Ok(req)
    };
    let step = |offset_days| ScheduleStep {
        offset_days,
        window_days: 2,
        ..Default::default()
    };
    TemplateServiceClient::with_interceptor(channel.clone(), auth.clone())
        .create_template(CreateTemplateRequest {
            template: Some(Template {
                display_name: "出院随访".into(),
                kind: TemplateKind::Scheduled as i32,
                applies_to: Some(Applicability {
                    on_discharge: true,
                    ..Default::default()
                }),
                schedule: vec![step(1), step(7), step(30)],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    PatientServiceClient::with_interceptor(channel.clone(), auth.clone())
        .record_interaction(RecordInteractionRequest {
            parent: patient.to_string(),
            interaction: Some(Interaction {
                kind: InteractionKind::Discharge as i32,
                department: "orthopaedics".into(),
                occur_time: Some(prost_types::Timestamp {
                    seconds: chrono_free_now_secs() - 3600,
                    nanos: 0,
                }),
                summary: "出院".into(),
                source_system: "his".into(),
                external_id: "e2e-discharge-1".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut followup = FollowupServiceClient::with_interceptor(channel, auth);
    let started = Instant::now();
    let plan = loop {
        let plans = followup
            .list_plans(ListPlansRequest {
                patient: patient.to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .plans;
        if let Some(plan) = plans.into_iter().next() {
            break plan;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no follow-up plan from the discharge"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tasks = followup
        .list_tasks(ListTasksRequest {
            view: TaskView::All as i32,
            plan: plan.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(tasks.len(), 3);
}

fn chrono_free_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A grpc-web (binary) health check over HTTP/1.1; returns the raw response with the trailer
/// frame's text.
async fn grpc_web_health_check(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = [0u8, 0, 0, 0, 0]; // one uncompressed frame carrying an empty HealthCheckRequest
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\ncontent-length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).replace("grpc-status: 0", "grpc-status:0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_patients_on_sqlite() {
    patient_flow(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_patients_on_postgres() {
    let patients = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let followup = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    // The targets without a URL here migrate SQLite files: in a directory of the test's own, not
    // in whatever the working directory is.
    let scratch = tempfile::tempdir().unwrap();
    let migrate = Command::new(BIN)
        .args(["migrate", "--data-dir"])
        .arg(scratch.path())
        .env("HCRM__PATIENTS__DATABASE_URL", &patients.url)
        .env("HCRM__FOLLOWUP__DATABASE_URL", &followup.url)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    patient_flow(Some((&patients.url, &followup.url))).await;
}

#[test]
fn cli_lists_targets_and_checks_configuration() {
    let out = Command::new(BIN).arg("targets").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "all\npatients\nfollowup\nfeedback\nopinion\ngateway\n"
    );

    let out = Command::new(BIN)
        .args(["serve", "--target", "nonsense"])
        .env("HCRM__DATA__DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("valid targets: all, patients, followup"));

    let out = Command::new(BIN)
        .args(["config", "print"])
        .env("HCRM__AUTH__HS256_SECRET", "super-secret-value-that-must-not-print")
        .env("HCRM__SERVER__CONCURRENCY_LIMIT", "64")
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(printed.contains("concurrency_limit = 64"), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");
    assert!(!printed.contains("super-secret-value"), "{printed}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hcrm.toml");
    std::fs::write(&file, "[server]\ngrpc_adr = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a misspelt key is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("grpc_adr"));
    // `config check` validates and changes nothing: no keys are generated.
    let out = Command::new(BIN)
        .args(["config", "check", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("keys").exists(), "config check generated keys");
    // A peer named without its port is caught before any pod starts, with the key named.
    let out = Command::new(BIN)
        .args(["config", "check", "--data-dir"])
        .arg(dir.path())
        .env("HCRM__GATEWAY__FEEDBACK_URL", "dns:///hcrm-feedback-peers")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a peer without a port is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("gateway.feedback_url"));
    let out = Command::new(BIN)
        .args(["config", "check", "--data-dir"])
        .arg(dir.path())
        .env("HCRM__GATEWAY__FEEDBACK_URL", "dns:///hcrm-feedback-peers:50051")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());

    let out = Command::new(BIN)
        .args(["token", "--role", "janitor", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("valid roles"));
}
