//! The split topology, as the production overlay runs it: each target its own process on its own
//! port against one PostgreSQL, configured by environment variables only (what the ConfigMap and
//! the Secret give a pod), migrated first by `hcrm migrate` (the Job). Then faults: replicas
//! starting together on an empty database, the patients service down while followup's outbox
//! holds a timeline entry, followup killed with SIGKILL and restarted — the entry arrives once,
//! and the complaint raised on that call becomes one case in feedback; an online post pushed to
//! opinion becomes an incident, escalated into a case in feedback and linked back.

use crate::free_port;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::Bearer;
use hcrm_kit::testing::{TestBackend, TestDatabase, eventually};
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::{IntakeChannel, ListCasesRequest};
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::template_service_client::TemplateServiceClient;
use hcrm_proto::followup::*;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{
    CreatePatientRequest, Interaction, InteractionKind, ListInteractionsRequest, Patient, RecordInteractionRequest,
};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel as GrpcChannel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_hcrm");
const SECRET: &str = "split-topology-signing-secret-0123456789";

/// What every pod gets: the ConfigMap's and the Secret's settings, as environment variables.
fn shared_env(
    patients_db: &str,
    followup_db: &str,
    feedback_db: &str,
    opinion_db: &str,
    gateway_db: &str,
) -> Vec<(String, String)> {
    use base64::Engine;
    let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    [
        ("HCRM__PATIENTS__DATABASE_URL", patients_db.to_string()),
        ("HCRM__FOLLOWUP__DATABASE_URL", followup_db.to_string()),
        ("HCRM__FEEDBACK__DATABASE_URL", feedback_db.to_string()),
        ("HCRM__OPINION__DATABASE_URL", opinion_db.to_string()),
        ("HCRM__GATEWAY__DATABASE_URL", gateway_db.to_string()),
        ("HCRM__AUTH__HS256_SECRET", SECRET.to_string()),
        ("HCRM__SECURITY__DATA_KEYS", format!("k1:{}", key(3))),
        ("HCRM__SECURITY__INDEX_KEY", key(5)),
        ("HCRM__TELEMETRY__LOG_FORMAT", "json".to_string()),
        ("HCRM__FOLLOWUP__DELIVERY__BACKOFF_MS", "200".to_string()),
        ("HCRM__FOLLOWUP__DELIVERY__POLL_MS", "100".to_string()),
        // A delivery claimed by a killed process is free again after its lease: keep it short.
        ("HCRM__FOLLOWUP__NOTIFIER__TIMEOUT_MS", "1000".to_string()),
        ("HCRM__FOLLOWUP__DELIVERY__LEASE_SECS", "13".to_string()),
        ("HCRM__FEEDBACK__DELIVERY__BACKOFF_MS", "200".to_string()),
        ("HCRM__FEEDBACK__DELIVERY__POLL_MS", "100".to_string()),
        ("HCRM__FEEDBACK__NOTIFIER__TIMEOUT_MS", "1000".to_string()),
        ("HCRM__FEEDBACK__DELIVERY__LEASE_SECS", "13".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One target in its own process.
struct Pod {
    child: Child,
    grpc: String,
    _data: tempfile::TempDir,
}

impl Pod {
    fn start(target: &str, env: &[(String, String)], extra: &[(&str, String)]) -> Pod {
        Self::start_on(target, env, extra, free_port())
    }

    fn start_on(target: &str, env: &[(String, String)], extra: &[(&str, String)], port: u16) -> Pod {
        let data = tempfile::tempdir().unwrap();
        let grpc = format!("127.0.0.1:{port}");
        let child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HCRM_TARGET", target)
            .env("HCRM__DATA__DIR", data.path())
            .env("HCRM__SERVER__GRPC_ADDR", &grpc)
            .env("HCRM__SERVER__ADMIN_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("HCRM__GATEWAY__HTTP_ADDR", "127.0.0.1:0")
            .envs(env.iter().cloned())
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hcrm");
        Pod {
            child,
            grpc,
            _data: data,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Waits until the process reports SERVING; fails if it exits first.
    async fn serving(&mut self) -> GrpcChannel {
        let channel = GrpcChannel::from_shared(self.url()).unwrap().connect_lazy();
        let mut health = HealthClient::new(channel.clone());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("hcrm exited before serving: {status}");
            }
            let status = health
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
                return channel;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "not serving: {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Authed = tonic::service::interceptor::InterceptedService<GrpcChannel, Bearer>;

fn authed(channel: GrpcChannel) -> Authed {
    let token = Authenticator::hs256(SECRET)
        .mint("nurse-li", &[Role::Admin], None, 600)
        .unwrap();
    tonic::service::interceptor::InterceptedService::new(channel, Bearer::new(&token).unwrap())
}

fn migrate(env: &[(String, String)]) {
    let out = Command::new(BIN)
        .args(["migrate"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn follow_up_entries(patients: &GrpcChannel, patient: &str) -> usize {
    PatientServiceClient::new(authed(patients.clone()))
        .list_interactions(ListInteractionsRequest {
            parent: patient.to_string(),
            kinds: vec![InteractionKind::FollowUp as i32],
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().interactions.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_topology_runs_the_flows_and_survives_faults() {
    let patients_db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let followup_db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let feedback_db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let opinion_db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let gateway_db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let env = shared_env(
        &patients_db.url,
        &followup_db.url,
        &feedback_db.url,
        &opinion_db.url,
        &gateway_db.url,
    );
    migrate(&env);

    let (patients_port, followup_port, feedback_port, opinion_port) =
        (free_port(), free_port(), free_port(), free_port());
    // Peers named as the manifests name them: `dns:///` over a name (there a headless Service).
    let url = |port: u16| format!("dns:///localhost:{port}");
    let mut patients = Pod::start_on("patients", &env, &[], patients_port);
    let patients_channel = patients.serving().await;
    let to_peers = [
        ("HCRM__FOLLOWUP__PATIENTS_URL", url(patients_port)),
        ("HCRM__FOLLOWUP__FEEDBACK_URL", url(feedback_port)),
    ];
    let mut followup = Pod::start_on("followup", &env, &to_peers, followup_port);
    let followup_channel = followup.serving().await;
    let feedback_peers = [
        ("HCRM__FEEDBACK__PATIENTS_URL", url(patients_port)),
        ("HCRM__FEEDBACK__FOLLOWUP_URL", url(followup_port)),
        ("HCRM__FEEDBACK__OPINION_URL", url(opinion_port)),
    ];
    let mut feedback = Pod::start_on("feedback", &env, &feedback_peers, feedback_port);
    let feedback_channel = feedback.serving().await;
    let opinion_peers = [
        ("HCRM__OPINION__PATIENTS_URL", url(patients_port)),
        ("HCRM__OPINION__FEEDBACK_URL", url(feedback_port)),
    ];
    let mut opinion = Pod::start_on("opinion", &env, &opinion_peers, opinion_port);
    let opinion_channel = opinion.serving().await;
    // Each process serves only its own target.
    let mut health = HealthClient::new(patients_channel.clone());
    let other = health
        .check(HealthCheckRequest {
            service: "hcrm.followup.v1.FollowupService".into(),
        })
        .await;
    assert_eq!(other.unwrap_err().code(), tonic::Code::NotFound);

    // The user flow: a patient, a discharge template, a discharge, the plan in followup.
    let patient = PatientServiceClient::new(authed(patients_channel.clone()))
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: "郑十一".into(),
                phones: vec!["13800138011".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    TemplateServiceClient::new(authed(followup_channel.clone()))
        .create_template(CreateTemplateRequest {
            template: Some(Template {
                display_name: "出院随访".into(),
                kind: TemplateKind::Scheduled as i32,
                applies_to: Some(Applicability {
                    on_discharge: true,
                    ..Default::default()
                }),
                schedule: vec![ScheduleStep {
                    offset_days: 1,
                    window_days: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    PatientServiceClient::new(authed(patients_channel.clone()))
        .record_interaction(RecordInteractionRequest {
            parent: patient.name.clone(),
            interaction: Some(Interaction {
                kind: InteractionKind::Discharge as i32,
                department: "cardiology".into(),
                occur_time: Some(prost_types::Timestamp {
                    seconds: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64
                        - 3600,
                    nanos: 0,
                }),
                source_system: "his".into(),
                external_id: "split-discharge-1".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut client = FollowupServiceClient::new(authed(followup_channel.clone()));
    let plan = eventually("the plan from the discharge", || {
        let mut client = client.clone();
        let patient = patient.name.clone();
        async move {
            client
                .list_plans(ListPlansRequest {
                    patient,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .plans
                .into_iter()
                .next()
        }
    })
    .await;
    let task = client
        .list_tasks(ListTasksRequest {
            view: TaskView::All as i32,
            plan: plan.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
        .remove(0);

    // Patients goes down; a follow-up recorded meanwhile waits in followup's outbox.
    patients.kill();
    client
        .record_follow_up(RecordFollowUpRequest {
            task: task.name.clone(),
            record: Some(FollowUpRecord {
                channel: Channel::Phone as i32,
                outcome: Outcome::Reached as i32,
                content: "恢复良好，但抱怨出院结算慢".into(),
                complaint_raised: true,
                complaint_summary: "出院结算排队两小时".into(),
                ..Default::default()
            }),
            request_id: "split-call-1".into(),
        })
        .await
        .unwrap();
    // Followup is killed (SIGKILL) while the entry is still queued, and comes back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    followup.kill();
    let mut followup = Pod::start_on("followup", &env, &to_peers, followup_port);
    followup.serving().await;
    // Patients comes back on its address: the entry arrives, once.
    let mut patients = Pod::start_on("patients", &env, &[], patients_port);
    let patients_channel = patients.serving().await;
    eventually("the timeline entry after the outage", || async {
        (follow_up_entries(&patients_channel, &patient.name).await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        follow_up_entries(&patients_channel, &patient.name).await,
        1,
        "delivered once"
    );

    // The complaint raised on that call became one case in feedback (through followup's feed,
    // across the restart), and the case reached the patient's timeline.
    let case = eventually("the case from the follow-up call", || async {
        CaseServiceClient::new(authed(feedback_channel.clone()))
            .list_cases(ListCasesRequest {
                patient: patient.name.clone(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .cases
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(case.channel, IntakeChannel::FollowUp as i32);
    assert_eq!(case.title, "出院结算排队两小时");
    let complaints = || async {
        PatientServiceClient::new(authed(patients_channel.clone()))
            .list_interactions(ListInteractionsRequest {
                parent: patient.name.clone(),
                kinds: vec![InteractionKind::Complaint as i32],
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().interactions.len())
            .unwrap_or(0)
    };
    eventually("the case on the timeline", || async {
        (complaints().await == 1).then_some(())
    })
    .await;
    let listed = CaseServiceClient::new(authed(feedback_channel.clone()))
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(listed.len(), 1, "one case however often the feed was read");

    online_post_becomes_a_case(&opinion_channel, &feedback_channel, &patient.name).await;

    // The gateway in its own process reaches the four services over their addresses.
    let gateway_peers = [
        ("HCRM__GATEWAY__PATIENTS_URL", url(patients_port)),
        ("HCRM__GATEWAY__FOLLOWUP_URL", url(followup_port)),
        ("HCRM__GATEWAY__FEEDBACK_URL", url(feedback_port)),
        ("HCRM__GATEWAY__OPINION_URL", url(opinion_port)),
    ];
    console_over_the_split_topology(&env, &gateway_peers, &patient.name).await;

    // Three replicas of a target starting together on an empty database: one migrates, none
    // crash, all serve.
    let empty = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let env = shared_env(
        &patients_db.url,
        &empty.url,
        &feedback_db.url,
        &opinion_db.url,
        &gateway_db.url,
    );
    let mut replicas: Vec<Pod> = (0..3).map(|_| Pod::start("followup", &env, &to_peers)).collect();
    for replica in &mut replicas {
        replica.serving().await;
    }
    drop(replicas);
    drop(opinion);
    drop(feedback);
    drop(followup);
    drop(patients);
}

/// The gateway as its own process: an account made with `hcrm account add` (as an operator
/// would, against the same database), sign-in, the patient's page with the timeline that
/// followup and feedback wrote, the REST API with the session, and the public complaint page
/// opening a case in the feedback process.
async fn console_over_the_split_topology(env: &[(String, String)], peers: &[(&str, String); 4], patient: &str) {
    let out = Command::new(BIN)
        .args([
            "account",
            "add",
            "--username",
            "guide-wu",
            "--role",
            "guide",
            "--display-name",
            "吴导医",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HCRM_PASSWORD", "guide-wu-password-1")
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let http_port = free_port();
    let mut extra: Vec<(&str, String)> = peers.to_vec();
    extra.push(("HCRM__GATEWAY__HTTP_ADDR", format!("127.0.0.1:{http_port}")));
    let mut gateway = Pod::start("gateway", env, &extra);
    gateway.serving().await;
    let base = format!("http://127.0.0.1:{http_port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);

    let signed = http
        .post(format!("{base}/login"))
        .form(&[("username", "guide-wu"), ("password", "guide-wu-password-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER);
    let cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("__Host-hcrm_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let page = http
        .get(format!("{base}/console/{patient}"))
        .header("cookie", format!("__Host-hcrm_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("郑十一"), "the patient's file through the gateway");
    assert!(
        page.contains("出院结算排队两小时"),
        "the complaint on the timeline: {page}"
    );
    let at = page.find("name=\"_csrf\" value=\"").expect("a CSRF field") + "name=\"_csrf\" value=\"".len();
    let csrf = page[at..].split('"').next().unwrap().to_string();
    let listed: serde_json::Value = http
        .post(format!("{base}/api/v1/hcrm.feedback.v1.CaseService/ListCases"))
        .header("cookie", format!("__Host-hcrm_session={cookie}"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({ "patient": patient }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["cases"].as_array().is_some_and(|c| !c.is_empty()), "{listed}");

    let filed = http
        .post(format!("{base}/complaint"))
        .form(&[
            ("kind", "suggestion"),
            ("category", "environment"),
            ("title", "候诊区座位不够"),
            ("description", "上午候诊区经常没有座位，希望增加座椅。"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(filed.status(), reqwest::StatusCode::OK);
    assert!(filed.text().await.unwrap().contains("id=\"number\""));
}

/// Opinion in its own process: a post pushed by a crawler, an incident, the escalation through
/// opinion's feed to feedback, and the case linked back through feedback's feed.
async fn online_post_becomes_a_case(opinion: &GrpcChannel, feedback: &GrpcChannel, patient: &str) {
    use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
    use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
    use hcrm_proto::opinion::watch_service_client::WatchServiceClient;
    use hcrm_proto::opinion::*;
    WatchServiceClient::new(authed(opinion.clone()))
        .create_entity(CreateEntityRequest {
            entity: Some(Entity {
                kind: EntityKind::Hospital as i32,
                display_name: "仁心医院".into(),
                terms: vec!["仁心医院".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let pushed = MentionServiceClient::new(authed(opinion.clone()))
        .ingest_mentions(tokio_stream::iter(vec![IngestMentionsRequest {
            mentions: vec![PushedMention {
                url: "https://weibo.com/p/split-1".into(),
                text: "仁心医院出院结算排队两个小时，太折腾人了！".into(),
                ..Default::default()
            }],
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pushed.accepted, 1);
    let story = MentionServiceClient::new(authed(opinion.clone()))
        .list_stories(ListStoriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stories
        .remove(0);
    let mut incidents = IncidentServiceClient::new(authed(opinion.clone()));
    let incident = incidents
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                story: story.name,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    incidents
        .update_incident_links(UpdateIncidentLinksRequest {
            name: incident.name.clone(),
            patient: patient.to_string(),
            ..Default::default()
        })
        .await
        .expect("the patient checked against the patients process");
    incidents
        .escalate_incident(EscalateIncidentRequest {
            name: incident.name.clone(),
            department: "finance".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let case = eventually("the incident's case linked back", || {
        let mut incidents = incidents.clone();
        let name = incident.name.clone();
        async move {
            let i = incidents
                .get_incident(GetIncidentRequest { name })
                .await
                .ok()?
                .into_inner();
            (!i.case.is_empty()).then_some(i.case)
        }
    })
    .await;
    let case = CaseServiceClient::new(authed(feedback.clone()))
        .get_case(hcrm_proto::feedback::GetCaseRequest {
            name: case,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(case.channel, IntakeChannel::OnlinePost as i32);
    assert_eq!(case.patient, patient);
}
