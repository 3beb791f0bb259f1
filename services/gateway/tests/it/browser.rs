//! The console in a real browser: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`), against the whole suite. Screenshots of the pages visited are saved under
//! `target/screenshots/` for people to look at. Needs `chromium` and `chromium-driver`
//! (`scripts/install-test-deps` installs them).

use crate::helpers::*;
use fantoccini::{Client, ClientBuilder, Locator};
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::{IntakeChannel, ListCasesRequest};
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::{CreatePlanRequest, ListFollowUpsRequest, ManualStep, Plan};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    pub client: Client,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    /// `http://localhost:{port}`: a secure context, so the Secure session cookie works over HTTP.
    pub base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub async fn open(suite: &Suite, name: &str) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run scripts/install-test-deps (Debian: chromium chromium-driver)");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                // The centre's staff read Chinese first; the language switch is tested below.
                "prefs": { "intl.accept_languages": "zh-CN,zh" },
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("no WebDriver session: {err}"),
            }
        };
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/screenshots")
            .join(name);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        let port = suite.base.rsplit(':').next().unwrap().to_string();
        Browser {
            driver,
            client,
            _profile: profile,
            shots,
            base: format!("http://localhost:{port}"),
        }
    }

    pub async fn go(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Waits (bounded) until the page holds `text`: a click's navigation may still be loading
    /// when the click returns, more so on a busy machine.
    pub async fn until_contains(&self, text: &str) {
        let started = Instant::now();
        loop {
            if self.source().await.contains(text) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the page never showed {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) until the path satisfies `ok`; returns it.
    pub async fn until_path(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let path = self.path().await;
            if ok(&path) {
                return path;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "never reached {what}: at {path}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot of the page as `{n}-{what}.png`.
    pub async fn shot(&self, what: &str) {
        let png = self.client.screenshot().await.unwrap();
        let n = std::fs::read_dir(&self.shots).map(|d| d.count()).unwrap_or(0);
        std::fs::write(self.shots.join(format!("{n:02}-{what}.png")), png).unwrap();
    }

    pub async fn sign_in(&self, username: &str, password: &str) {
        self.go("/console").await;
        assert!(
            self.path().await.starts_with("/login"),
            "the console sends strangers to sign in"
        );
        self.fill("input[name=username]", username).await;
        self.fill("input[name=password]", password).await;
        self.shot("sign-in").await;
        self.click("form button[type=submit]").await;
        self.until_path("the dashboard after signing in", |p| p == "/console")
            .await;
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_at_the_centre_in_a_browser() {
    let suite = Suite::start(TestBackend::Sqlite).await;
    PatientServiceClient::new(suite.authed("admin", Role::Admin))
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: "欧阳娜娜".into(),
                phones: vec!["13566667777".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let tokens = crate::public::invitations(&suite, 1).await;
    // A follow-up due today for the admin, made by hand (no template).
    let patient = PatientServiceClient::new(suite.authed("admin", Role::Admin))
        .search_patients(hcrm_proto::patients::SearchPatientsRequest {
            query: "欧阳娜娜".into(),
            page_size: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .matches
        .remove(0)
        .patient
        .unwrap();
    FollowupServiceClient::new(suite.authed("admin", Role::Admin))
        .create_plan(CreatePlanRequest {
            plan: Some(Plan {
                patient: patient.name.clone(),
                department: "cardiology".into(),
                responsible: "admin".into(),
                ..Default::default()
            }),
            steps: vec![ManualStep {
                due_date: Some(hcrm_proto::types::Date {
                    year: 2026,
                    month: 6,
                    day: 1,
                }),
                purpose: "出院后电话随访".into(),
                ..Default::default()
            }],
            request_id: String::new(),
        })
        .await
        .unwrap();
    let b = Browser::open(&suite, "console").await;

    // Sign in; the dashboard with today's follow-up.
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.until_contains("管理员").await;
    b.shot("dashboard").await;

    // Find a patient by pinyin and open the file.
    b.go("/console/patients").await;
    b.fill("input[name=q]", "ouyang").await;
    b.click("form[role=search] button").await;
    b.shot("patient-search").await;
    b.click("#results a").await;
    b.until_path("the patient page", |p| p.starts_with("/console/patients/"))
        .await;
    b.until_contains("<h1>欧阳娜娜</h1>").await;
    b.shot("patient").await;

    // Record the follow-up from the worklist on its one form.
    b.go("/console/followups").await;
    b.shot("worklist").await;
    b.click("#tasks tbody tr a[href*='/tasks/']").await;
    b.until_path("the task page", |p| p.contains("/console/followups/tasks/"))
        .await;
    b.click("#record select[name=outcome] option[value=reached]").await;
    b.fill("#record textarea[name=content]", "伤口愈合良好，按时服药").await;
    b.fill("#record textarea[name=health_guidance]", "低盐饮食，一周后复查")
        .await;
    b.click("#record select[name=sat_attitude] option[value='5']").await;
    b.shot("record-form").await;
    b.click("#record button[type=submit]").await;
    b.until_path("the task page after recording", |p| !p.contains("/record"))
        .await;
    b.until_contains("伤口愈合良好").await;
    b.shot("recorded").await;
    let records = FollowupServiceClient::new(suite.authed("admin", Role::Admin))
        .list_follow_ups(ListFollowUpsRequest {
            patient: patient.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(records.follow_ups.len(), 1, "the call was recorded");
    assert!(records.follow_ups[0].content.contains("伤口愈合良好"));

    // Switch the language and back: the same page again, in the other language.
    let here = b.path().await;
    b.click("a[data-lang=en]").await;
    b.until_contains("Patients</a>").await;
    assert_eq!(b.path().await, here, "back on the same page");
    b.shot("patient-en").await;
    b.click("a[data-lang=zh]").await;
    b.until_contains("患者</a>").await;

    // A patient answers the survey from the link (another browser tab would do; same session
    // does not matter: the page needs none).
    b.go(&format!("/s/{}", tokens[0])).await;
    b.shot("survey").await;
    b.click("input[name='q.attitude'][value='1']").await;
    b.fill("textarea[name='q.what']", "夜班护士呼叫不应").await;
    b.click("#survey button[type=submit]").await;
    b.until_contains("id=\"thanks\"").await;
    b.shot("survey-thanks").await;

    // The low rating opened a case that feedback now holds.
    let mut cases = CaseServiceClient::new(suite.authed("inspector-zhou", Role::Inspector));
    let case = hcrm_kit::testing::eventually("the case from the survey", || {
        let mut cases = cases.clone();
        async move {
            cases
                .list_cases(ListCasesRequest::default())
                .await
                .ok()?
                .into_inner()
                .cases
                .into_iter()
                .find(|c| c.channel == IntakeChannel::Survey as i32)
        }
    })
    .await;
    let _ = &mut cases;
    // …and it appears in the console's inbox, from where the guide opens it.
    b.go("/console/cases").await;
    b.shot("cases").await;
    b.click(&format!("#cases tr[data-number='{}'] a", case.number)).await;
    b.until_path("the case page", |p| {
        p.starts_with("/console/cases/") && p != "/console/cases"
    })
    .await;
    b.until_contains(&case.number).await;
    b.shot("case").await;

    // Sign out.
    b.go("/console").await;
    b.click("header form button").await;
    b.until_path("the sign-in page after signing out", |p| p.starts_with("/login"))
        .await;
    b.go("/console").await;
    b.until_path("the sign-in page again (signed out for good)", |p| {
        p.starts_with("/login")
    })
    .await;
    b.close().await;
}
