//! The opinion area of the console over HTTP, as the opinion group uses it: the watch list
//! made through the form, posts pushed by a crawler seen in the stream and grouped into a
//! story, an incident opened from the story and worked through its steps, a public reply that
//! must not carry personal data and needs a second person, sources and rules checked by the
//! service, and a guide kept out.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_kit::testing::eventually;
use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::opinion::watch_service_client::WatchServiceClient;
use hcrm_proto::opinion::{
    GetIncidentRequest, IncidentState, IngestMentionsRequest, ListEntitiesRequest, ListSourcesRequest, PushedMention,
    ReplyState,
};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use reqwest::StatusCode;
use reqwest::header::COOKIE;

crate::both_backends!(
    an_incident_is_worked_from_the_stream_to_an_approved_reply,
    the_watch_list_sources_and_rules_are_checked_and_guides_are_kept_out
);

const ANGRY: &str = "仁心医院急诊科医生态度恶劣，把我母亲晾在走廊两个小时，投诉无门！";

/// Pushes posts as a crawler would.
async fn push(suite: &Suite, posts: Vec<PushedMention>) -> i64 {
    let mut client = MentionServiceClient::new(suite.authed("crawler", Role::Integration));
    client
        .ingest_mentions(tokio_stream::iter(vec![IngestMentionsRequest { mentions: posts }]))
        .await
        .expect("ingest")
        .into_inner()
        .accepted
}

fn post(url: &str, title: &str, text: &str, reach: i64) -> PushedMention {
    PushedMention {
        url: url.into(),
        site: "weibo.com".into(),
        author: "网友".into(),
        title: title.into(),
        text: text.into(),
        reach,
        ..Default::default()
    }
}

/// The value of the first `attr="…"` on the page after `after`.
fn attr_after(page: &str, after: &str, attr: &str) -> String {
    let start = page
        .find(after)
        .unwrap_or_else(|| panic!("{after} not on the page: {page}"));
    let rest = &page[start..];
    let key = format!("{attr}=\"");
    let at = rest.find(&key).unwrap_or_else(|| panic!("no {attr} after {after}")) + key.len();
    let raw = rest[at..].split('"').next().unwrap_or_default();
    raw.replace("&quot;", "\"").replace("&amp;", "&")
}

/// The error box names `field`.
fn names(page: &str, field: &str) -> bool {
    page.contains(&format!("<code>{field}</code>"))
}

async fn create_analyst(suite: &Suite, admin: &Browser, username: &str) {
    let (status, page, _) = suite
        .post_form(
            admin,
            "/console/admin/accounts",
            &[
                ("username", username),
                ("displayName", "王分析"),
                ("roles", "opinion_analyst"),
                ("password", "analyst-password-2026"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
}

async fn an_incident_is_worked_from_the_stream_to_an_approved_reply(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    create_analyst(&suite, &admin, "analyst-wang").await;
    let wang = suite.sign_in("analyst-wang", "analyst-password-2026").await;

    // The watch list through the form: a wrong one names its fields and keeps the entries.
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/opinion/entities",
            &[
                ("kind", ""),
                ("display_name", "仁心医院"),
                ("terms", "仁心\nRenxin Hospital"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(names(&page, "entity.kind"), "{page}");
    assert!(page.contains("Renxin Hospital"), "entries kept");
    let (status, _, headers) = suite
        .post_form(
            &admin,
            "/console/opinion/entities",
            &[
                ("kind", "hospital"),
                ("display_name", "仁心医院"),
                ("terms", "仁心\nRenxin Hospital"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console/opinion/entities?done=created");
    let (_, page, _) = suite.get(&admin, "/console/opinion/entities?done=created").await;
    assert!(page.contains("data-done=\"created\""));
    assert!(
        page.contains("data-kind=\"hospital\"") && page.contains("Renxin Hospital"),
        "{page}"
    );

    // A crawler pushes a post and its repost; both are in the stream, negative, linked out.
    let accepted = push(
        &suite,
        vec![
            post("https://weibo.com/p/angry", "急诊态度差", ANGRY, 120),
            post("https://weibo.com/p/repost", "", &format!("转发：{ANGRY}"), 30),
        ],
    )
    .await;
    assert_eq!(accepted, 2);
    let (status, page, _) = suite.get(&admin, "/console/opinion/mentions?sentiment=negative").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page.matches("data-mention=\"mentions/").count(), 2, "{page}");
    assert!(
        page.contains("href=\"https://weibo.com/p/angry\" rel=\"noopener noreferrer\""),
        "{page}"
    );
    assert!(page.contains("data-sentiment=\"negative\"") && page.contains("data-entity=\"entities/"));
    let (_, page, _) = suite.get(&admin, "/console/opinion/mentions?sentiment=positive").await;
    assert!(page.contains("id=\"no-mentions\""), "no positive mention: {page}");
    let (status, page, _) = suite.get(&admin, "/console/opinion/mentions?from=2026-13-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(names(&page, "from"), "{page}");

    // One story of two mentions with their reach; the overview counts them.
    let (_, page, _) = suite.get(&admin, "/console/opinion/stories").await;
    let story = attr_after(&page, "id=\"stories\"", "data-story");
    assert!(story.starts_with("stories/"), "{story}");
    let story_page = format!("/console/opinion/{story}");
    let (status, page, _) = suite.get(&admin, &story_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-mention-count=\"2\"") && page.contains("data-reach=\"150\""),
        "{page}"
    );
    let (status, page, _) = suite.get(&admin, "/console/opinion").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-figure=\"negative\">2<"), "{page}");
    assert!(page.contains(&format!("data-story=\"{story}\"")), "top story listed");

    // An incident from the story, then the workflow through its buttons.
    let request_id = attr_after(
        &page_of(&suite, &admin, &story_page).await,
        "id=\"open-incident\"",
        "name=\"request_id\" value",
    );
    let (status, _, headers) = suite
        .post_form(
            &admin,
            &format!("{story_page}/incident"),
            &[
                ("request_id", request_id.as_str()),
                ("description", "微博投诉，转发较多"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let incident_page = location(&headers).split('?').next().unwrap_or_default().to_string();
    assert!(
        incident_page.starts_with("/console/opinion/incidents/"),
        "{incident_page}"
    );
    let incident = incident_page.trim_start_matches("/console/opinion/");
    let page = page_of(&suite, &admin, &incident_page).await;
    assert!(page.contains("data-state=\"open\""));
    assert!(
        page.contains("data-action=\"acknowledge\"") && !page.contains("data-action=\"reopen\""),
        "{page}"
    );
    let (_, page, _) = suite.get(&admin, &story_page).await;
    assert!(
        page.contains(&format!("href=\"{incident_page}\"")),
        "the story links its incident"
    );

    let first_etag = etag(&suite, &admin, &incident_page).await;
    step(&suite, &admin, &incident_page, "acknowledge", &first_etag, "").await;
    // A step sent with what was read before the last change is refused as stale.
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{incident_page}/transition"),
            &[("action", "respond"), ("etag", first_etag.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("data-code=\"ABORTED\""), "{page}");
    let now = etag(&suite, &admin, &incident_page).await;
    step(&suite, &admin, &incident_page, "respond", &now, "").await;

    // A reply with a phone number is refused against `text`, kept for correcting.
    let now = etag(&suite, &admin, &incident_page).await;
    let leaky = "请拨打 13800138011 与我们联系。";
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{incident_page}/reply"),
            &[("text", leaky), ("etag", now.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(names(&page, "text") && page.contains(leaky), "{page}");
    let clean = "感谢您的反馈，医院已成立专项小组调查，并将尽快与您本人联系。";
    let (status, _, headers) = suite
        .post_form(
            &admin,
            &format!("{incident_page}/reply"),
            &[("text", clean), ("etag", now.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).ends_with("?done=drafted"));
    // The author may not approve their own reply; a second analyst does.
    let now = etag(&suite, &admin, &incident_page).await;
    let (status, page, _) = suite
        .post_form(&admin, &format!("{incident_page}/approve"), &[("etag", now.as_str())])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"PERMISSION_DENIED\""));
    let wang_etag = etag(&suite, &wang, &incident_page).await;
    let (status, _, _) = suite
        .post_form(
            &wang,
            &format!("{incident_page}/approve"),
            &[("etag", wang_etag.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = page_of(&suite, &admin, &incident_page).await;
    assert!(page.contains("data-reply-state=\"approved\"") && page.contains("data-approved-by=\"analyst-wang\""));

    // The patient concerned, linked by their id; then the escalation into a complaint case,
    // whose link appears once feedback has opened it.
    let patient = PatientServiceClient::new(suite.authed("checker", Role::Admin))
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: "赵敏".into(),
                phones: vec!["13800138011".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .name;
    let now = etag(&suite, &admin, &incident_page).await;
    let patient_id = patient.trim_start_matches("patients/");
    let (status, _, _) = suite
        .post_form(
            &admin,
            &format!("{incident_page}/links"),
            &[("patient", patient_id), ("etag", now.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let now = etag(&suite, &admin, &incident_page).await;
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{incident_page}/escalate"),
            &[("department", ""), ("severity", "HIGH"), ("etag", now.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        names(&page, "department") && page.contains(&format!("href=\"/console/{patient}\"")),
        "{page}"
    );
    let (status, _, _) = suite
        .post_form(
            &admin,
            &format!("{incident_page}/escalate"),
            &[
                ("department", "emergency"),
                ("category", "attitude"),
                ("severity", "HIGH"),
                ("etag", now.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually("the case linked on the incident page", || async {
        let page = page_of(&suite, &admin, &incident_page).await;
        page.contains("href=\"/console/cases/").then_some(())
    })
    .await;

    // A note, then the resolution: it needs its reason.
    let (status, _, _) = suite
        .post_form(
            &wang,
            &format!("{incident_page}/notes"),
            &[("text", "已联系急诊科主任核实")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let now = etag(&suite, &admin, &incident_page).await;
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{incident_page}/transition"),
            &[("action", "resolve"), ("etag", now.as_str()), ("reason", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(names(&page, "reason"), "{page}");
    step(&suite, &admin, &incident_page, "resolve", &now, "已道歉并整改").await;
    let page = page_of(&suite, &admin, &incident_page).await;
    assert!(page.contains("data-state=\"resolved\"") && page.contains("已联系急诊科主任核实"));
    assert!(page.contains("data-action=\"reopen\"") && !page.contains("data-action=\"acknowledge\""));

    // The service holds what the buttons did.
    let stored = IncidentServiceClient::new(suite.authed("checker", Role::Admin))
        .get_incident(GetIncidentRequest {
            name: incident.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.state, IncidentState::Resolved as i32);
    assert_eq!(stored.resolution, "已道歉并整改");
    assert_eq!(stored.owner, "admin");
    assert_eq!(stored.patient, patient);
    assert!(stored.case.starts_with("cases/"), "{}", stored.case);
    let reply = stored.reply.unwrap();
    assert_eq!((reply.state, reply.text.as_str()), (ReplyState::Approved as i32, clean));
    assert_eq!(
        (reply.drafted_by.as_str(), reply.approved_by.as_str()),
        ("admin", "analyst-wang")
    );
    let (_, page, _) = suite.get(&admin, "/console/opinion/incidents?state=resolved").await;
    assert!(page.contains(&format!("data-incident=\"{incident}\"")), "{page}");
}

async fn page_of(suite: &Suite, browser: &Browser, path: &str) -> String {
    let (status, page, _) = suite.get(browser, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {page}");
    page
}

/// The incident's etag as its page shows it.
async fn etag(suite: &Suite, browser: &Browser, incident_page: &str) -> String {
    attr_after(
        &page_of(suite, browser, incident_page).await,
        "id=\"incident\"",
        "data-etag",
    )
}

/// One workflow button, which must succeed.
async fn step(suite: &Suite, browser: &Browser, incident_page: &str, action: &str, etag: &str, reason: &str) {
    let (status, page, headers) = suite
        .post_form(
            browser,
            &format!("{incident_page}/transition"),
            &[("action", action), ("etag", etag), ("reason", reason)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{action}: {page}");
    assert!(location(&headers).starts_with(incident_page));
}

async fn the_watch_list_sources_and_rules_are_checked_and_guides_are_kept_out(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;

    // The SSRF guard refuses a private address, named on the field, entries kept.
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/opinion/sources",
            &[
                ("kind", "feed"),
                ("url", "http://10.0.0.1/feed"),
                ("title", "内网"),
                ("interval_seconds", "900"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        names(&page, "source.url") && page.contains("value=\"http://10.0.0.1/feed\""),
        "{page}"
    );
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/opinion/sources",
            &[
                ("kind", "feed"),
                ("url", "https://news.example.org/feed.xml"),
                ("interval_seconds", "often"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(names(&page, "source.interval_seconds"), "{page}");
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/opinion/sources",
            &[
                ("kind", "feed"),
                ("url", "https://news.example.org/feed.xml"),
                ("title", "本地新闻"),
                ("interval_seconds", "600"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = page_of(&suite, &admin, "/console/opinion/sources").await;
    assert!(
        page.contains("本地新闻") && page.contains("data-failures=\"0\""),
        "{page}"
    );
    let sources = WatchServiceClient::new(suite.authed("checker", Role::Admin))
        .list_sources(ListSourcesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sources;
    assert_eq!(sources.len(), 1);
    assert_eq!(
        (sources[0].url.as_str(), sources[0].interval_seconds),
        ("https://news.example.org/feed.xml", 600)
    );

    // An entity, then a rule for it: a word for a number names the field.
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/opinion/entities",
            &[
                ("kind", "department"),
                ("display_name", "急诊科"),
                ("terms", "急诊"),
                ("department", "emergency"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = page_of(&suite, &admin, "/console/opinion/rules").await;
    let at = page.find("<option value=\"entities/").expect("the entity offered") + "<option value=\"".len();
    let entity = page[at..].split('"').next().unwrap_or_default().to_string();
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/opinion/rules",
            &[
                ("entity", entity.as_str()),
                ("kind", "negative_count"),
                ("threshold", "many"),
                ("window_minutes", "60"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        names(&page, "rule.threshold") && page.contains("value=\"many\""),
        "{page}"
    );
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/opinion/rules",
            &[
                ("entity", entity.as_str()),
                ("kind", "negative_count"),
                ("threshold", "3"),
                ("window_minutes", "2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the service's own limits");
    assert!(names(&page, "rule.window_minutes"), "{page}");
    let (status, _, _) = suite
        .post_form(
            &admin,
            "/console/opinion/rules",
            &[
                ("entity", entity.as_str()),
                ("kind", "negative_count"),
                ("threshold", "3"),
                ("window_minutes", "60"),
                ("notify", "group:opinion"),
                ("enabled", "true"),
                ("request_id", "rule-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = page_of(&suite, &admin, "/console/opinion/rules").await;
    assert!(
        page.contains("data-kind=\"negative_count\"") && page.contains("group:opinion"),
        "{page}"
    );

    // An edit carries the etag it read: the first one saves, the same one again is stale.
    let page = page_of(&suite, &admin, "/console/opinion/entities").await;
    let id = entity.trim_start_matches("entities/");
    let read = attr_after(&page, &format!("id=\"entity-{id}\""), "name=\"etag\" value");
    assert!(read.starts_with('"'), "the etag as read: {read}");
    let edit = |terms: &'static str| {
        [
            ("kind", "department"),
            ("display_name", "急诊科"),
            ("terms", terms),
            ("department", "emergency"),
        ]
    };
    let mut fields = edit("急诊\n急诊中心").to_vec();
    fields.push(("etag", read.as_str()));
    let (status, _, headers) = suite
        .post_form(&admin, &format!("/console/opinion/entities/{id}"), &fields)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).ends_with("done=saved"));
    let mut fields = edit("急诊\n急诊室").to_vec();
    fields.push(("etag", read.as_str()));
    let (status, page, _) = suite
        .post_form(&admin, &format!("/console/opinion/entities/{id}"), &fields)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("data-code=\"ABORTED\"") && page.contains("急诊室"),
        "{page}"
    );
    let page = page_of(&suite, &admin, "/console/opinion/entities").await;
    assert!(page.contains("急诊中心"), "the first edit is stored");

    // The analysis box.
    let (status, page, _) = suite
        .post_form(&admin, "/console/opinion/analyze", &[("text", ANGRY)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"analysis\"") && page.contains("data-sentiment=\"negative\""),
        "{page}"
    );
    assert!(page.contains("data-cue="), "the cues are shown");

    // In English, the page says nothing in Chinese but what was typed.
    let page = suite
        .http
        .get(suite.url("/console/opinion/rules"))
        .header(COOKIE, format!("__Host-hcrm_session={}; hcrm_lang=en", admin.cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Add an alert rule") && page.contains("Negative count"),
        "{page}"
    );
    for chinese in ["预警规则", "阈值", "新增", "启用", "监测对象"] {
        assert!(!page.contains(chinese), "{chinese} on the English page");
    }

    // A guide has no opinion grants: every page and write is refused, and nothing is written.
    for path in [
        "/console/opinion",
        "/console/opinion/mentions",
        "/console/opinion/stories",
        "/console/opinion/incidents",
        "/console/opinion/entities",
        "/console/opinion/sources",
        "/console/opinion/rules",
    ] {
        let (status, page, _) = suite.get(&guide, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("data-code=\"PERMISSION_DENIED\""), "{path}");
    }
    let (status, _, _) = suite
        .post_form(
            &guide,
            "/console/opinion/entities",
            &[("kind", "term"), ("display_name", "插队"), ("terms", "插队")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = suite
        .post_form(&guide, "/console/opinion/analyze", &[("text", ANGRY)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let entities = WatchServiceClient::new(suite.authed("checker", Role::Admin))
        .list_entities(ListEntitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entities;
    assert_eq!(entities.len(), 1, "the guide added nothing");
}
