//! Sign-in, sessions, CSRF, throttling, account administration, rate limits: the security of
//! the console and the API.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::json;

crate::both_backends!(
    nothing_works_without_a_session,
    sessions_are_locked_down_and_end,
    accounts_are_administered
);

async fn nothing_works_without_a_session(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    for path in [
        "/console",
        "/console/patients?q=李",
        "/console/admin",
        "/console/patients/new",
    ] {
        let response = suite.http.get(suite.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let to = location(response.headers());
        assert!(to.starts_with("/login?next=%2Fconsole"), "{path} → {to}");
    }
    // A forged cookie is no session.
    let response = suite
        .http
        .get(suite.url("/console"))
        .header(COOKIE, "__Host-hcrm_session=forged-value")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // Console writes without a session go to sign-in; the API says 401.
    let response = suite
        .http
        .post(suite.url("/console/patients/new"))
        .form(&[("display_name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, err) = suite
        .call(None, "hcrm.patients.v1.PatientService/ListPatients", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["code"], "UNAUTHENTICATED");
    // The sign-in page sends nobody elsewhere: `next` must be a local path.
    let response = suite
        .http
        .post(suite.url("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(response.headers()), "/console");
}

async fn sessions_are_locked_down_and_end(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let response = suite
        .http
        .post(suite.url("/login"))
        .form(&[
            ("username", "guide-li"),
            ("password", GUIDE_PASSWORD),
            ("next", "/console/patients"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/console/patients");
    let set = session_cookie_header(response.headers());
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    let browser = suite.sign_in("guide-li", GUIDE_PASSWORD).await;
    let (status, page, headers) = suite.get(&browser, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("李导医"));
    assert!(headers.get("content-security-policy").is_some());
    assert_eq!(headers.get("x-frame-options").unwrap(), "DENY");

    // API writes with the cookie need the CSRF token; the token of another session is no good.
    let api = |csrf: Option<String>, origin: Option<&'static str>| {
        let mut r = suite
            .http
            .post(suite.url("/api/v1/hcrm.patients.v1.PatientService/CreatePatient"))
            .header(COOKIE, format!("__Host-hcrm_session={}", browser.cookie))
            .json(&json!({ "patient": { "displayName": "周四" } }));
        if let Some(csrf) = csrf {
            r = r.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            r = r.header("origin", origin);
        }
        r.send()
    };
    let response = api(None, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let other = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let response = api(Some(other.csrf.clone()), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = api(Some(browser.csrf.clone()), Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "a foreign origin");
    let response = api(Some(browser.csrf.clone()), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    // The call was made as the guide: the patients service recorded who created it.
    // Console forms: without the CSRF field, refused.
    let response = suite
        .http
        .post(suite.url("/console/patients/new"))
        .header(COOKIE, format!("__Host-hcrm_session={}", browser.cookie))
        .form(&[("display_name", "吴五")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Sign-out needs the CSRF token, then ends the session for good.
    let (status, _, _) = suite
        .post_form(
            &Browser {
                csrf: "wrong".into(),
                ..other.clone()
            },
            "/logout",
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, headers) = suite.post_form(&other, "/logout", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(session_cookie_header(&headers).contains("Max-Age=0"));
    assert_eq!(suite.get(&other, "/console").await.0, StatusCode::SEE_OTHER);

    // Inactivity ends a session: 29 minutes is fine, then 31 minutes of silence is not.
    suite.clock.advance(29 * MINUTE);
    assert_eq!(suite.get(&browser, "/console/patients").await.0, StatusCode::OK);
    suite.clock.advance(31 * MINUTE);
    let (status, _, headers) = suite.get(&browser, "/console/patients").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).starts_with("/login"));

    // Failed sign-ins are throttled per account, even for the right password afterwards, with
    // the same answer for a wrong username and a wrong password.
    for _ in 0..5 {
        let response = suite
            .http
            .post(suite.url("/login"))
            .form(&[("username", "admin"), ("password", "wrong-password-1")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let text = response.text().await.unwrap();
        assert!(text.contains("wrong username or password"), "{text}");
    }
    let response = suite
        .http
        .post(suite.url("/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let response = suite
        .http
        .post(suite.url("/login"))
        .form(&[("username", "nobody"), ("password", "wrong-password-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The window passes; the right password works again.
    suite.clock.advance(16 * MINUTE);
    suite.sign_in("admin", ADMIN_PASSWORD).await;
}

async fn accounts_are_administered(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;
    // Only administrators reach the administration.
    assert_eq!(suite.get(&guide, "/console/admin").await.0, StatusCode::FORBIDDEN);
    let (status, _, _) = suite
        .post_form(
            &guide,
            "/console/admin/accounts",
            &[
                ("username", "mallory"),
                ("displayName", "M"),
                ("roles", "admin"),
                ("password", "mallory-password"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A bad account form names its fields and creates nothing.
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts",
            &[
                ("username", "Dr Chen"),
                ("displayName", ""),
                ("roles", "clinician"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for field in ["username", "displayName", "department", "password"] {
        assert!(page.contains(&format!("<code>{field}</code>")), "{field} not named");
    }
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts",
            &[
                ("username", "dr-chen"),
                ("displayName", "陈医生"),
                ("roles", "clinician"),
                ("roles", "guide"),
                ("department", "cardiology"),
                ("password", "chen-password-01"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "post/redirect/get: {page}");
    let (_, page, _) = suite.get(&admin, "/console/admin?created=dr-chen").await;
    assert!(page.contains("data-username=\"dr-chen\""));
    assert!(page.contains("role=\"status\""), "the notice of the creation");
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts",
            &[
                ("username", "dr-chen"),
                ("displayName", "x"),
                ("roles", "guide"),
                ("password", "another-password"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let chen = suite.sign_in("dr-chen", "chen-password-01").await;

    // Disabling ends the account's sessions and stops its sign-in.
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts/dr-chen",
            &[
                ("displayName", "陈医生"),
                ("roles", "clinician"),
                ("department", "cardiology"),
                ("disabled", "true"),
                ("version", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(suite.get(&chen, "/console").await.0, StatusCode::SEE_OTHER);
    let response = suite
        .http
        .post(suite.url("/login"))
        .form(&[("username", "dr-chen"), ("password", "chen-password-01")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A stale version is ABORTED, not a lost update.
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts/dr-chen",
            &[
                ("displayName", "陈"),
                ("roles", "clinician"),
                ("department", "cardiology"),
                ("version", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // An administrator cannot lock themselves out.
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts/admin",
            &[("displayName", "管理员"), ("roles", "guide"), ("version", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);

    // A password reset ends the sessions of that account.
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts/guide-li/password",
            &[("password", "new-guide-password")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(suite.get(&guide, "/console").await.0, StatusCode::SEE_OTHER);
    let guide = suite.sign_in("guide-li", "new-guide-password").await;

    // Everyone changes their own password, with the current one; it signs them out everywhere.
    let (status, page, _) = suite
        .post_form(
            &guide,
            "/console/account",
            &[("current", "not-my-password"), ("password", "guide-password-3")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>currentPassword</code>"), "{page}");
    let (status, _, headers) = suite
        .post_form(
            &guide,
            "/console/account",
            &[("current", "new-guide-password"), ("password", "guide-password-3")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/login");
    assert_eq!(suite.get(&guide, "/console").await.0, StatusCode::SEE_OTHER);
    suite.sign_in("guide-li", "guide-password-3").await;
    // A non-administrator learns nothing about other accounts from the reset form.
    let guide = suite.sign_in("guide-li", "guide-password-3").await;
    for who in ["admin", "nobody-here"] {
        let (status, _, _) = suite
            .post_form(
                &guide,
                &format!("/console/admin/accounts/{who}/password"),
                &[("password", "whatever-1234")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
    }
}

crate::both_backends!(a_burst_of_guesses_is_throttled_as_a_whole);

/// Parallel guesses all see each other: the attempt is written before the password is checked.
async fn a_burst_of_guesses_is_throttled_as_a_whole(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let guesses = (0..16).map(|i| {
        suite
            .http
            .post(suite.url("/login"))
            .form(&[
                ("username", "admin".to_string()),
                ("password", format!("guess-number-{i}")),
            ])
            .send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(
        checked <= 5,
        "at most the allowed guesses had their password checked: {statuses:?}"
    );
    assert_eq!(checked + refused, 16, "{statuses:?}");
    // Names no account can have are refused at once.
    let long = "a".repeat(5000);
    let response = suite
        .http
        .post(suite.url("/login"))
        .form(&[("username", long.as_str()), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The language switch sends nobody elsewhere, however the path is dressed up.
    for next in [
        "/%09/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
    ] {
        let response = suite
            .http
            .get(suite.url(&format!("/lang/en?next={next}")))
            .send()
            .await
            .unwrap();
        assert_eq!(location(response.headers()), "/console", "{next}");
    }
    // Bodies over the limit are refused before anything reads them.
    let big = "x".repeat(2 * 1024 * 1024);
    let response = suite
        .http
        .post(suite.url("/api/v1/hcrm.patients.v1.PatientService/GetPatient"))
        .bearer_auth(suite.token("admin", hcrm_kit::auth::Role::Admin))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // CORS is closed: a preflight from another origin gets no permission.
    let response = suite
        .http
        .request(
            reqwest::Method::OPTIONS,
            suite.url("/api/v1/hcrm.patients.v1.PatientService/GetPatient"),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
    // The public complaint page refuses posts from another site's page.
    let response = suite
        .http
        .post(suite.url("/complaint"))
        .header("origin", "https://evil.example")
        .form(&[
            ("kind", "complaint"),
            ("category", "waiting"),
            ("title", "x"),
            ("description", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// Rate limits keep no state in the database: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patients_pages_have_their_own_rate_budget() {
    let suite = Suite::start_tuned(TestBackend::Sqlite, |cfg| cfg.public_rate_per_minute = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = suite.http.get(suite.url("/s/AAAAAAAAAAAAAAAA")).send().await.unwrap();
        statuses.push((response.status(), response.headers().get("retry-after").is_some()));
    }
    assert_eq!(
        statuses[..3]
            .iter()
            .filter(|(s, _)| *s == StatusCode::NOT_FOUND)
            .count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses[3..]
            .iter()
            .all(|(s, retry)| *s == StatusCode::TOO_MANY_REQUESTS && *retry),
        "{statuses:?}"
    );
    // The staff budget is separate.
    assert_eq!(
        suite.http.get(suite.url("/login")).send().await.unwrap().status(),
        StatusCode::OK
    );
}
