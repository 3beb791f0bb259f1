//! The console as a guide uses it, over HTTP: create a patient, find them, open the file,
//! reveal protected fields with a reason, see the dashboard, switch the language.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::COOKIE;

crate::both_backends!(a_guide_registers_finds_and_opens_a_patient);

async fn a_guide_registers_finds_and_opens_a_patient(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;

    // A wrong form comes back with the fields named and the entries kept.
    let (status, page, _) = suite
        .post_form(
            &guide,
            "/console/patients/new",
            &[
                ("display_name", "张建国"),
                ("phone", "123"),
                ("birth_date", "1950-02-30"),
                ("request_id", "p-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("birth_date"), "{page}");
    assert!(page.contains("value=\"张建国\""), "entries kept");

    let (status, _, headers) = suite
        .post_form(
            &guide,
            "/console/patients/new",
            &[
                ("display_name", "张建国"),
                ("sex", "male"),
                ("birth_date", "1950-02-28"),
                ("phone", "13912345678"),
                ("identity_number", "11010519491231002X"),
                ("city", "北京"),
                ("request_id", "p-2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let patient_page = location(&headers);
    assert!(patient_page.starts_with("/console/patients/"), "{patient_page}");

    // Found by pinyin, by name and by the last four digits of the phone.
    for q in ["zhangjianguo", "张建国", "5678"] {
        let (status, page, _) = suite
            .get(&guide, &format!("/console/patients?q={}", urlencode(q)))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&format!("href=\"{patient_page}\"")), "{q}: {page}");
    }

    // The file shows the identity number masked until revealed with a reason.
    let (status, page, _) = suite.get(&guide, &patient_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("11010519491231002X"), "masked by default");
    assert!(page.contains("/reveal"));
    let (status, page, _) = suite
        .post_form(&guide, &format!("{patient_page}/reveal"), &[("reason", "")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("role=\"alert\""),
        "a reveal without a reason is refused: {page}"
    );
    assert!(!page.contains("11010519491231002X"));
    let (status, page, _) = suite
        .post_form(
            &guide,
            &format!("{patient_page}/reveal"),
            &[("reason", "患者来电核对身份")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("11010519491231002X"), "{page}");

    // Edit the file: phones, tags, consent; a stale etag is refused with the entries kept.
    let (status, page, _) = suite.get(&guide, &format!("{patient_page}/edit")).await;
    assert_eq!(status, StatusCode::OK);
    let etag = value_of(&page, "etag");
    let edit = |etag: String| {
        vec![
            ("etag", etag),
            ("display_name", "张建国".to_string()),
            ("sex", "male".to_string()),
            ("birth_date", "1950-02-28".to_string()),
            ("phones", "13912345678\n13800001111".to_string()),
            ("tags", "高血压, 术后".to_string()),
            ("channel", "phone".to_string()),
            ("channel", "sms".to_string()),
            ("quiet_start", "21:00".to_string()),
            ("quiet_end", "08:00".to_string()),
        ]
    };
    let fields = edit(etag.clone());
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, headers) = suite.post_form(&guide, &format!("{patient_page}/edit"), &pairs).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), patient_page);
    let (_, page, _) = suite.get(&guide, &patient_page).await;
    assert!(
        page.contains("13800001111") && page.contains("术后") && page.contains("21:00"),
        "{page}"
    );
    let (status, page, _) = suite.post_form(&guide, &format!("{patient_page}/edit"), &pairs).await;
    assert_eq!(status, StatusCode::CONFLICT, "the etag read before the change is stale");
    assert!(page.contains("13800001111"), "entries kept");
    let bad: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| {
            if *k == "birth_date" {
                (*k, "1950-13-01")
            } else {
                (*k, *v)
            }
        })
        .collect();
    let (status, page, _) = suite.post_form(&guide, &format!("{patient_page}/edit"), &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>birth_date</code>"));

    // An unknown patient is a 404 page, not an error dump.
    let (status, page, _) = suite.get(&guide, "/console/patients/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("data-code=\"NOT_FOUND\""));

    // The dashboard has its figures; the language switch turns the console to English and back.
    let (status, page, _) = suite.get(&guide, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-figure"), "{page}");
    assert!(page.contains("工作台"));
    let response = suite
        .http
        .get(suite.url("/lang/en?next=%2Fconsole"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/console");
    let page = suite
        .http
        .get(suite.url("/console"))
        .header(COOKIE, format!("__Host-hcrm_session={}; hcrm_lang=en", guide.cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Dashboard") && page.contains("<html lang=\"en\""),
        "{page}"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the first hidden input named `name`.
fn value_of(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).map(|i| i + marker.len()).unwrap_or(0);
    let raw = html[at..].split('"').next().unwrap_or("");
    // Attribute values come HTML-escaped.
    raw.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
