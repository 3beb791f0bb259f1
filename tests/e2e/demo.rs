//! `hcrm demo` against a fresh `hcrm serve` on SQLite: the installation is filled through the
//! public APIs (patients, cases in many states, a published survey with answers, a repost storm
//! grouped into one story with an incident, tasks waiting, the guide desk's directory,
//! consultations, service requests, segments and referrals), the printed password signs in to
//! the console, and a second run changes nothing.

use crate::free_port;
use hcrm_kit::client::Bearer;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::{
    InvitationState, ListCasesRequest, ListInvitationsRequest, ListQuestionnairesRequest, QuestionnaireState,
};
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::{ListTasksRequest, TaskView};
use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::opinion::{ListIncidentsRequest, ListMentionsRequest, ListStoriesRequest};
use hcrm_proto::patients::consultation_service_client::ConsultationServiceClient;
use hcrm_proto::patients::directory_service_client::DirectoryServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::referral_service_client::ReferralServiceClient;
use hcrm_proto::patients::segment_service_client::SegmentServiceClient;
use hcrm_proto::patients::service_request_service_client::ServiceRequestServiceClient;
use hcrm_proto::patients::{
    ClinicKind, FindDepartmentsRequest, ListClinicPatternsRequest, ListConsultationsRequest, ListDepartmentsRequest,
    ListDoctorsRequest, ListPatientsRequest, ListScheduleExceptionsRequest, ListSegmentsRequest,
    ListServiceRequestsRequest, ListTopIntroducersRequest, ScheduleExceptionKind, ServiceRequestSlaState,
    ServiceRequestState,
};
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_hcrm");

struct Server {
    child: Child,
    grpc: String,
    http: String,
    data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let grpc = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let env = vec![
            ("HCRM__SERVER__GRPC_ADDR".to_string(), grpc.clone()),
            (
                "HCRM__SERVER__ADMIN_ADDR".to_string(),
                format!("127.0.0.1:{}", free_port()),
            ),
            ("HCRM__GATEWAY__HTTP_ADDR".to_string(), http.clone()),
            ("HCRM__TELEMETRY__LOG_FORMAT".to_string(), "json".to_string()),
        ];
        let child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data_dir.path())
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hcrm");
        Server {
            child,
            grpc,
            http,
            data_dir,
            env,
        }
    }

    fn hcrm(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .envs(self.env.iter().cloned())
            .envs(extra_env.iter().copied())
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
                .check(HealthCheckRequest { service: String::new() })
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

    /// A channel carrying a token minted by `hcrm token` with the server's data dir.
    fn authed(&self, channel: &Channel, role: &str, subject: &str) -> InterceptedService<Channel, Bearer> {
        let out = self.hcrm(&["token", "--role", role, "--subject", subject], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap();
        InterceptedService::new(channel.clone(), Bearer::new(token.trim()).unwrap())
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn patient_count(client: &mut PatientServiceClient<InterceptedService<Channel, Bearer>>) -> i64 {
    client
        .list_patients(ListPatientsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total_size
}

type Authed = InterceptedService<Channel, Bearer>;

/// What the guide desk's stage left, counted through the public APIs.
#[derive(Debug, PartialEq, Eq)]
struct Desk {
    departments: usize,
    doctors: usize,
    patterns: usize,
    consultations: usize,
    service_requests: usize,
    segments: usize,
    referrals: i64,
}

async fn desk(admin: &Authed) -> Desk {
    let mut directory = DirectoryServiceClient::new(admin.clone());
    let departments = directory
        .list_departments(ListDepartmentsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .departments;
    let doctors = directory
        .list_doctors(ListDoctorsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .doctors;
    let patterns = directory
        .list_clinic_patterns(ListClinicPatternsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .patterns;
    let consultations = ConsultationServiceClient::new(admin.clone())
        .list_consultations(ListConsultationsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .consultations;
    let requests = ServiceRequestServiceClient::new(admin.clone())
        .list_service_requests(ListServiceRequestsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .service_requests;
    let segments = SegmentServiceClient::new(admin.clone())
        .list_segments(ListSegmentsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .segments;
    let introducers = ReferralServiceClient::new(admin.clone())
        .list_top_introducers(ListTopIntroducersRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .introducers;
    Desk {
        departments: departments.len(),
        doctors: doctors.len(),
        patterns: patterns.len(),
        consultations: consultations.len(),
        service_requests: requests.len(),
        segments: segments.len(),
        referrals: introducers.iter().map(|i| i.referrals).sum(),
    }
}

/// The guide desk's data in detail: the directory answers the desk's questions, the worklist
/// has overdue rows, consultations are spread over the day and some reach patients' timelines.
async fn check_guide_desk(admin: &Authed) -> Desk {
    let mut directory = DirectoryServiceClient::new(admin.clone());
    let departments = directory
        .list_departments(ListDepartmentsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .departments;
    assert_eq!(departments.len(), 10, "{departments:?}");
    for d in &departments {
        assert!(
            !d.english_name.is_empty() && !d.treats.is_empty() && !d.treats_en.is_empty() && !d.phone.is_empty(),
            "{d:?}"
        );
        assert!(d.location.as_ref().is_some_and(|l| !l.building.is_empty()), "{d:?}");
    }
    for query in ["高血压", "突发胸痛", "hypertension", "Chest Pain"] {
        let matches = directory
            .find_departments(FindDepartmentsRequest {
                query: query.into(),
                limit: 5,
            })
            .await
            .unwrap()
            .into_inner()
            .matches;
        let first = matches
            .first()
            .and_then(|m| m.department.as_ref())
            .map(|d| d.code.as_str());
        assert_eq!(first, Some("cardiology"), "{query}: {matches:?}");
    }
    let doctors = directory
        .list_doctors(ListDoctorsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .doctors;
    assert!(doctors.len() >= 20, "{} doctors", doctors.len());
    let titles: BTreeSet<i32> = doctors.iter().map(|d| d.title).collect();
    assert!(titles.len() >= 3, "titles {titles:?}");
    assert!(doctors.iter().any(|d| d.expert) && doctors.iter().any(|d| !d.expert));
    assert!(doctors.iter().all(|d| !d.specialties.is_empty()), "{doctors:?}");
    let patterns = directory
        .list_clinic_patterns(ListClinicPatternsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .patterns;
    let mut per_doctor: HashMap<&str, usize> = HashMap::new();
    for p in &patterns {
        *per_doctor.entry(p.doctor.as_str()).or_default() += 1;
    }
    assert_eq!(per_doctor.len(), doctors.len(), "every doctor has a weekly set");
    assert!(per_doctor.values().all(|n| (2..=4).contains(n)), "{per_doctor:?}");
    assert!(patterns.iter().any(|p| p.kind == ClinicKind::Expert as i32));
    let exceptions = directory
        .list_schedule_exceptions(ListScheduleExceptionsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .exceptions;
    for kind in [ScheduleExceptionKind::Leave, ScheduleExceptionKind::Extra] {
        assert!(
            exceptions.iter().any(|e| e.kind == kind as i32),
            "no {kind:?} in {exceptions:?}"
        );
    }

    let consultations = ConsultationServiceClient::new(admin.clone())
        .list_consultations(ListConsultationsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .consultations;
    assert!(consultations.len() >= 60, "{} consultations", consultations.len());
    assert!(
        consultations.iter().any(|c| !c.interaction.is_empty()),
        "none on a timeline"
    );
    assert!(
        consultations
            .iter()
            .any(|c| c.patient.is_empty() && !c.caller_phone.is_empty())
    );
    assert!(
        consultations.iter().any(|c| !c.referral_doctor.is_empty()),
        "none referred to an expert"
    );
    let categories: BTreeSet<i32> = consultations.iter().map(|c| c.category).collect();
    assert!(categories.len() >= 6, "categories {categories:?}");

    let mut requests = ServiceRequestServiceClient::new(admin.clone());
    let listed = requests
        .list_service_requests(ListServiceRequestsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .service_requests;
    assert!(listed.len() >= 40, "{} service requests", listed.len());
    let states: BTreeSet<i32> = listed.iter().map(|r| r.state).collect();
    for state in [
        ServiceRequestState::Open,
        ServiceRequestState::InProgress,
        ServiceRequestState::Done,
        ServiceRequestState::Cancelled,
    ] {
        assert!(states.contains(&(state as i32)), "no {state:?} request");
    }
    let types: BTreeSet<i32> = listed.iter().map(|r| r.r#type).collect();
    assert_eq!(types.len(), 6, "types {types:?}");
    let overdue = requests
        .list_service_requests(ListServiceRequestsRequest {
            overdue_only: true,
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .service_requests;
    assert!(overdue.len() >= 3, "{} overdue", overdue.len());
    assert!(
        overdue
            .iter()
            .all(|r| r.sla_state == ServiceRequestSlaState::Overdue as i32)
    );

    let found = desk(admin).await;
    assert_eq!(found.segments, 3, "{found:?}");
    assert!(found.referrals >= 30, "{found:?}");
    found
}

#[tokio::test]
async fn demo_fills_an_empty_installation_once() {
    let server = Server::start();
    let channel = server.wait_serving().await;
    let password = "demo-password-2026";

    let first = server.hcrm(&["demo", "--patients", "200"], &[("HCRM_DEMO_PASSWORD", password)]);
    assert!(first.status.success(), "{}", text(&first));
    let printed = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(printed.contains(&format!("http://{}/", server.http)), "{printed}");
    assert!(printed.contains(&format!("Password:  {password}")), "{printed}");

    let admin = server.authed(&channel, "admin", "e2e-admin");
    let mut patients = PatientServiceClient::new(admin.clone());
    let count = patient_count(&mut patients).await;
    assert!(count >= 200, "{count} patients");
    for line in ["directory", "consultations", "service requests", "referrals"] {
        assert!(printed.contains(line), "no {line} in {printed}");
    }
    let guide_desk = check_guide_desk(&admin).await;

    let cases = CaseServiceClient::new(admin.clone())
        .list_cases(ListCasesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    let states: BTreeSet<i32> = cases.iter().map(|c| c.state).collect();
    assert!(states.len() >= 5, "cases in states {states:?}");

    let mut surveys = SurveyServiceClient::new(admin.clone());
    let questionnaires = surveys
        .list_questionnaires(ListQuestionnairesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .questionnaires;
    let published = questionnaires
        .iter()
        .find(|q| q.state == QuestionnaireState::Published as i32)
        .expect("a published questionnaire");
    let answered = surveys
        .list_invitations(ListInvitationsRequest {
            questionnaire: published.name.clone(),
            state: InvitationState::Answered as i32,
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert!(answered.len() >= 30, "{} answered invitations", answered.len());

    let mut mentions = MentionServiceClient::new(admin.clone());
    let listed = mentions
        .list_mentions(ListMentionsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mentions;
    assert!(listed.len() >= 100, "{} mentions", listed.len());
    let stories = mentions
        .list_stories(ListStoriesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stories;
    let biggest = stories.iter().map(|s| s.mention_count).max().unwrap_or_default();
    assert!(biggest >= 10, "the largest story has {biggest} mentions");

    let incidents = IncidentServiceClient::new(admin.clone())
        .list_incidents(ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert!(!incidents.is_empty(), "no incident");

    let inspector = server.authed(&channel, "inspector", "inspector");
    let mut followup = FollowupServiceClient::new(inspector);
    for view in [TaskView::MineToday, TaskView::Overdue] {
        let tasks = followup
            .list_tasks(ListTasksRequest {
                view: view as i32,
                page_size: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .tasks;
        assert!(!tasks.is_empty(), "no tasks in {view:?}");
    }

    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{}/login", server.http))
        .form(&[("username", "inspector"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cookie.starts_with("__Host-hcrm_session="), "{cookie}");

    let second = server.hcrm(&["demo", "--patients", "200"], &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already has patients"),
        "{}",
        text(&second)
    );
    assert_eq!(patient_count(&mut patients).await, count);
    assert_eq!(
        desk(&admin).await,
        guide_desk,
        "the second run changed the guide desk's data"
    );
}
