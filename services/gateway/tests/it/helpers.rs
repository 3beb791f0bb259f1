//! Every service and the gateway in one server (gRPC and HTTP on port 0) with fresh databases
//! and a manual clock, as `hcrm serve` runs them; an HTTP client that handles cookies by hand so
//! tests can see and tamper with them.

use hcrm_kit::auth::{Authenticator, Principal, Role};
use hcrm_kit::clock::Clock;
use hcrm_kit::config::ServerConfig;
use hcrm_kit::secret::Secret;
use hcrm_kit::server::{Handle, Listeners};
pub use hcrm_kit::testing::{TestBackend, TestDatabase};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const SECRET: &str = "test-signing-secret-0123456789abcdef";
/// 2026-06-01 02:00 UTC = Monday 10:00 in Beijing.
pub const START: i64 = 1_780_279_200_000_000;
pub const MINUTE: i64 = 60 * 1_000_000;
pub const ADMIN_PASSWORD: &str = "admin-password-2026";
pub const GUIDE_PASSWORD: &str = "guide-password-2026";

pub type Authed = InterceptedService<Channel, hcrm_kit::client::Bearer>;

pub struct Suite {
    _dbs: Vec<TestDatabase>,
    _data_dir: tempfile::TempDir,
    pub clock: Clock,
    pub auth: Authenticator,
    pub channel: Channel,
    /// `http://127.0.0.1:{port}` of the gateway.
    pub base: String,
    pub http: reqwest::Client,
    handle: Option<Handle>,
}

/// A signed-in browser: its session cookie and the CSRF token of its pages.
#[derive(Debug, Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

impl Suite {
    pub async fn start(backend: TestBackend) -> Suite {
        Self::start_tuned(backend, |_| {}).await
    }

    pub async fn start_tuned(backend: TestBackend, tune: fn(&mut hcrm_gateway::Config)) -> Suite {
        let mut dbs = Vec::new();
        for _ in 0..5 {
            dbs.push(TestDatabase::new(backend).await.expect("database"));
        }
        let url = |i: usize| Some(Secret::new(dbs[i].url.clone()));
        let data_dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(START);
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (shutdown, stopping) = hcrm_kit::server::shutdown_channel();
        let deps = hcrm_kit::testing::test_deps(
            SECRET,
            data_dir.path(),
            clock.clone(),
            grpc.local_addr().unwrap(),
            stopping,
        );
        let mut gateway = hcrm_gateway::Config {
            database_url: url(4),
            // Plain HTTP in tests: reqwest would not send a Secure cookie anyway, the tests send it by hand.
            secure_cookies: true,
            ..Default::default()
        };
        tune(&mut gateway);
        // Two accounts to start with, made the way `hcrm account add` makes them.
        let store = hcrm_gateway::account_store(&gateway, &deps.data)
            .await
            .expect("account store");
        let cli = Principal {
            subject: "cli".into(),
            roles: vec![Role::Admin],
            department: None,
        };
        for (username, name, role, password) in [
            ("admin", "管理员", "admin", ADMIN_PASSWORD),
            ("guide-li", "李导医", "guide", GUIDE_PASSWORD),
        ] {
            hcrm_gateway::auth::accounts::create(
                &store,
                &cli,
                "setup",
                hcrm_gateway::auth::accounts::AccountInput {
                    username: username.into(),
                    display_name: name.into(),
                    roles: vec![role.into()],
                    department: String::new(),
                    password: password.into(),
                },
            )
            .await
            .expect("account");
        }
        let built = vec![
            hcrm_patients::build(
                &hcrm_patients::Config {
                    database_url: url(0),
                    ..Default::default()
                },
                deps.clone(),
            )
            .await
            .expect("patients"),
            hcrm_followup::build(
                &hcrm_followup::Config {
                    database_url: url(1),
                    ..Default::default()
                },
                deps.clone(),
            )
            .await
            .expect("followup"),
            hcrm_feedback::build(
                &hcrm_feedback::Config {
                    database_url: url(2),
                    ..Default::default()
                },
                deps.clone(),
            )
            .await
            .expect("feedback"),
            hcrm_opinion::build(
                &hcrm_opinion::Config {
                    database_url: url(3),
                    poll_every_seconds: 3600,
                    ..Default::default()
                },
                deps.clone(),
            )
            .await
            .expect("opinion"),
            hcrm_gateway::build(&gateway, deps).await.expect("gateway"),
        ];
        let listeners = Listeners {
            grpc,
            admin: None,
            http: Some(http),
        };
        let handle = hcrm_kit::server::start(built, listeners, &ServerConfig::default(), shutdown)
            .await
            .expect("start");
        let channel = Channel::from_shared(format!("http://{}", handle.grpc_addr))
            .unwrap()
            .connect_lazy();
        Suite {
            _dbs: dbs,
            _data_dir: data_dir,
            clock,
            auth: Authenticator::hs256(SECRET),
            channel,
            base: format!("http://{}", handle.http_addr.expect("http listener")),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token(&self, subject: &str, role: Role) -> String {
        let department = matches!(role, Role::DepartmentHead | Role::Clinician).then_some("cardiology");
        self.auth.mint(subject, &[role], department, 600).unwrap()
    }

    pub fn authed(&self, subject: &str, role: Role) -> Authed {
        let bearer = hcrm_kit::client::Bearer::new(&self.token(subject, role)).unwrap();
        InterceptedService::new(self.channel.clone(), bearer)
    }

    /// Calls a REST method with a bearer token; returns the status and the JSON body.
    pub async fn call(&self, token: Option<&str>, method: &str, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(&format!("/api/v1/{method}"))).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("call");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Signs in through the login form and reads the CSRF token from the dashboard.
    pub async fn sign_in(&self, username: &str, password: &str) -> Browser {
        let response = self
            .http
            .post(self.url("/login"))
            .form(&[("username", username), ("password", password), ("next", "/console")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in of {username}");
        let cookie = session_cookie(response.headers()).expect("a session cookie");
        let mut browser = Browser {
            cookie,
            csrf: String::new(),
        };
        let page = self.get(&browser, "/console").await;
        assert_eq!(page.0, StatusCode::OK);
        browser.csrf = csrf_of(&page.1).expect("a CSRF field on the dashboard");
        browser
    }

    /// GET with the browser's cookie: status and body.
    pub async fn get(&self, browser: &Browser, path: &str) -> (StatusCode, String, HeaderMap) {
        let response = self
            .http
            .get(self.url(path))
            .header(COOKIE, format!("__Host-hcrm_session={}", browser.cookie))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }

    /// POSTs a form with the browser's cookie and CSRF token.
    pub async fn post_form(
        &self,
        browser: &Browser,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, HeaderMap) {
        let mut all: Vec<(&str, &str)> = vec![("_csrf", browser.csrf.as_str())];
        all.extend_from_slice(fields);
        let response = self
            .http
            .post(self.url(path))
            .header(COOKIE, format!("__Host-hcrm_session={}", browser.cookie))
            .form(&all)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.shutdown_sender().send(true);
        }
    }
}

/// The session cookie a response sets.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("__Host-hcrm_session="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` header for the session, whole.
pub fn session_cookie_header(headers: &HeaderMap) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-hcrm_session="))
        .unwrap_or("")
        .to_string()
}

pub fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The value of the first hidden `_csrf` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}
