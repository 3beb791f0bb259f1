//! The cases area of the console over HTTP: a complaint taken at the hotline by a guide and
//! worked through the PDCA loop by an administrator with the buttons the case allows; wrong
//! steps, missing reasons and stale etags shown on the page; duplicates linked; the anonymous
//! contact revealed only with a reason; the SLA filter, "mine", paging and hand-over.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::*;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use reqwest::StatusCode;

crate::both_backends!(
    a_complaint_is_taken_and_worked_through_the_pdca_loop,
    an_anonymous_contact_is_revealed_with_a_reason_and_deadlines_are_watched
);

const DAY: i64 = 24 * 60 * MINUTE;

fn cases(suite: &Suite) -> CaseServiceClient<Authed> {
    CaseServiceClient::new(suite.authed("admin", Role::Admin))
}

async fn case(suite: &Suite, id: &str) -> Case {
    cases(suite)
        .get_case(GetCaseRequest {
            name: format!("cases/{id}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The value of `attr="…"` after the first `after` in a page.
fn attr(page: &str, after: &str, attr: &str) -> String {
    let from = page.find(after).unwrap_or_else(|| panic!("no {after} in {page}"));
    let key = format!("{attr}=\"");
    let at = page[from..].find(&key).expect(attr) + from + key.len();
    let raw = page[at..].split('"').next().unwrap_or("");
    raw.replace("&quot;", "\"").replace("&amp;", "&")
}

fn etag_of(page: &str) -> String {
    attr(page, "id=\"case\"", "data-etag")
}

/// The case id a redirect to the case page names.
fn case_id(location: &str) -> String {
    location
        .trim_start_matches("/console/cases/")
        .split('?')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Posts a workflow step and expects the redirect back to the case page.
async fn step(suite: &Suite, who: &Browser, id: &str, fields: &[(&str, &str)]) -> String {
    let path = format!("/console/cases/{id}/act");
    let (status, page, headers) = suite.post_form(who, &path, fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{fields:?}: {page}");
    let to = location(&headers);
    assert!(to.starts_with(&format!("/console/cases/{id}?done=")), "{to}");
    let (status, page, _) = suite.get(who, &to).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"done\""), "a notice says what was done");
    page
}

async fn state_is(suite: &Suite, id: &str, page: &str, want: CaseState, slug: &str) -> Case {
    assert_eq!(attr(page, "id=\"case\"", "data-state"), slug, "the page shows {slug}");
    let c = case(suite, id).await;
    assert_eq!(c.state, want as i32, "the service has {want:?}");
    c
}

async fn a_complaint_is_taken_and_worked_through_the_pdca_loop(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let patient = PatientServiceClient::new(suite.authed("setup", Role::Admin))
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: "王秀英".into(),
                phones: vec!["13900001111".into()],
                ..Default::default()
            }),
            request_id: "p-1".into(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;

    // The intake form offers the taxonomy; a search finds the patient and keeps what was typed.
    let (status, page, _) = suite.get(&guide, "/console/cases/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("value=\"waiting/consultation\""), "{page}");
    let typed = [
        ("kind", "complaint"),
        ("channel", "hotline"),
        ("category", "waiting/consultation"),
        ("severity", "medium"),
        ("title", "候诊两小时"),
        ("description", "上午挂号，中午仍未就诊"),
        ("request_id", "intake-1"),
    ];
    let mut search = typed.to_vec();
    search.extend([("patient_query", "王秀英"), ("op", "search")]);
    let (status, page, _) = suite.post_form(&guide, "/console/cases/new", &search).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("data-patient=\"{}\"", patient.name)), "{page}");
    assert!(page.contains("value=\"候诊两小时\""), "entries kept");

    // A form without a department names the field and keeps the entries.
    let mut create = typed.to_vec();
    create.extend([("patient", patient.name.as_str()), ("op", "create")]);
    let (status, page, _) = suite.post_form(&guide, "/console/cases/new", &create).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("<code>case.department</code>"), "{page}");
    assert!(page.contains("value=\"候诊两小时\"") && page.contains("上午挂号，中午仍未就诊"));
    assert!(
        page.contains(&format!("value=\"{}\" checked", patient.name)),
        "the patient stays chosen"
    );

    create.push(("department", "outpatient"));
    let (status, page, headers) = suite.post_form(&guide, "/console/cases/new", &create).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let to = location(&headers);
    let id = case_id(&to);
    // The same form sent again (a double click) is the same case.
    let (_, _, again) = suite.post_form(&guide, "/console/cases/new", &create).await;
    assert_eq!(location(&again), to);
    let (status, page, _) = suite.get(&guide, &to).await;
    assert_eq!(status, StatusCode::OK);
    let received = state_is(&suite, &id, &page, CaseState::Received, "received").await;
    assert_eq!(received.owner, "guide-li", "the guide who took it owns it");
    assert!(page.contains(&received.number));
    assert!(
        page.contains(&format!("href=\"/console/{}\">王秀英</a>", patient.name)),
        "{page}"
    );
    assert!(page.contains("data-action=\"assign\"") && page.contains("data-action=\"reject\""));
    assert!(
        !page.contains("data-action=\"close\""),
        "a complaint closes only when confirmed"
    );

    // Guides take cases but do not work them.
    let etag = etag_of(&page);
    let (status, page, _) = suite
        .post_form(
            &guide,
            &format!("/console/cases/{id}/act"),
            &[("action", "assign"), ("assignee", "guide-li"), ("etag", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"PERMISSION_DENIED\""));
    assert_eq!(case(&suite, &id).await.state, CaseState::Received as i32);

    // The same patient's call at the counter is linked into it as a duplicate.
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let duplicate = cases(&suite)
        .create_case(CreateCaseRequest {
            case: Some(Case {
                kind: CaseKind::Complaint as i32,
                channel: IntakeChannel::Counter as i32,
                patient: patient.name.clone(),
                department: "outpatient".into(),
                category: "waiting".into(),
                title: "候诊时间太长".into(),
                description: "同一件事，又到服务台反映".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let dup_id = duplicate.name.trim_start_matches("cases/").to_string();
    let link = format!("/console/cases/{dup_id}/link");
    let (status, page, _) = suite
        .post_form(&admin, &link, &[("primary", "ZZZZ-ZZZZ"), ("reason", "同一投诉")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("<code>primary</code>") && page.contains("value=\"ZZZZ-ZZZZ\""),
        "{page}"
    );
    let (status, page, _) = suite
        .post_form(&admin, &link, &[("primary", &received.number), ("reason", "同一投诉")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, page, _) = suite.get(&admin, &format!("/console/cases/{dup_id}")).await;
    assert!(page.contains(&format!("href=\"/console/cases/{id}\"")), "{page}");
    state_is(&suite, &dup_id, &page, CaseState::Linked, "linked").await;

    // Wrong steps say what is allowed; REJECT without a reason names it; nothing changes.
    let (_, page, _) = suite.get(&admin, &format!("/console/cases/{id}")).await;
    assert!(
        page.contains(&format!("href=\"/console/cases/{dup_id}\"")),
        "the primary lists it"
    );
    let first_etag = etag_of(&page);
    let act = format!("/console/cases/{id}/act");
    let (status, page, _) = suite
        .post_form(&admin, &act, &[("action", "close"), ("etag", &first_etag)])
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(
        page.contains("data-code=\"FAILED_PRECONDITION\"")
            && page.contains("CASE_ACTION_ASSIGN")
            && page.contains("id=\"allowed-now\""),
        "{page}"
    );
    let (status, page, _) = suite
        .post_form(
            &admin,
            &act,
            &[("action", "reject"), ("reason", " "), ("etag", &first_etag)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>reason</code>"), "{page}");
    assert_eq!(case(&suite, &id).await.state, CaseState::Received as i32);

    // Plan: assign, investigate …
    let page = step(
        &suite,
        &admin,
        &id,
        &[("action", "assign"), ("assignee", "guide-li"), ("etag", &first_etag)],
    )
    .await;
    let c = state_is(&suite, &id, &page, CaseState::Assigned, "assigned").await;
    assert_eq!(c.assignee, "guide-li");
    assert!(c.first_response_time.is_some(), "the first step is the first response");

    // … a second worker with the page read before the assignment is told, and keeps the entry.
    let (status, page, _) = suite
        .post_form(
            &admin,
            &act,
            &[
                ("action", "start_investigation"),
                ("reason", "调取挂号记录"),
                ("etag", &first_etag),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("data-code=\"ABORTED\"") && page.contains("记录已被他人修改"),
        "{page}"
    );
    assert!(page.contains("调取挂号记录"), "entries kept");
    assert_eq!(case(&suite, &id).await.state, CaseState::Assigned as i32);
    let page = step(
        &suite,
        &admin,
        &id,
        &[
            ("action", "start_investigation"),
            ("reason", "调取挂号记录"),
            ("etag", &etag_of(&page)),
        ],
    )
    .await;
    state_is(&suite, &id, &page, CaseState::Investigating, "investigating").await;

    // Do: root cause and corrective actions; a wrong date names its row.
    let etag = etag_of(&page);
    let plan = |due: &'static str, etag: &str| {
        vec![
            ("action", "plan_actions".to_string()),
            ("root_cause", "上午专家号放号过多".to_string()),
            ("ca_description", "按就诊能力放号".to_string()),
            ("ca_owner", "admin".to_string()),
            ("ca_due", due.to_string()),
            ("ca_description", String::new()),
            ("ca_owner", String::new()),
            ("ca_due", String::new()),
            ("etag", etag.to_string()),
        ]
    };
    let fields = plan("2026-13-01", &etag);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page, _) = suite.post_form(&admin, &act, &fields).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>corrective_actions[0].due_date</code>"), "{page}");
    assert!(
        page.contains("上午专家号放号过多") && page.contains("value=\"2026-13-01\""),
        "entries kept"
    );
    let fields = plan("2026-06-10", &etag);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = step(&suite, &admin, &id, &fields).await;
    let c = state_is(&suite, &id, &page, CaseState::ActionPlanned, "action_planned").await;
    assert_eq!(c.corrective_actions.len(), 1, "the blank row is left out");
    let due = c.corrective_actions[0].due_date.unwrap();
    assert_eq!((due.year, due.month, due.day), (2026, 6, 10));
    assert!(page.contains("id=\"corrective-actions\"") && page.contains("按就诊能力放号"));

    // Check: reply, then the complainant confirms the fix worked; act: close.
    let page = step(
        &suite,
        &admin,
        &id,
        &[
            ("action", "reply"),
            ("reply_text", "已调整放号数量，向您致歉"),
            ("reply_channel", "phone"),
            ("etag", &etag_of(&page)),
        ],
    )
    .await;
    let c = state_is(&suite, &id, &page, CaseState::Replied, "replied").await;
    assert_eq!(
        c.reply.unwrap().channel,
        hcrm_proto::types::ContactChannel::Phone as i32
    );
    let (status, page, _) = suite
        .post_form(
            &admin,
            &act,
            &[("action", "confirm"), ("note", "满意"), ("etag", &etag_of(&page))],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>confirmation.effective</code>"), "{page}");
    let page = step(
        &suite,
        &admin,
        &id,
        &[
            ("action", "confirm"),
            ("effective", "yes"),
            ("note", "患者表示满意"),
            ("source", "staff"),
            ("etag", &etag_of(&page)),
        ],
    )
    .await;
    let c = state_is(&suite, &id, &page, CaseState::Confirmed, "confirmed").await;
    assert!(c.confirmation.unwrap().effective);
    let page = step(&suite, &admin, &id, &[("action", "close"), ("etag", &etag_of(&page))]).await;
    let c = state_is(&suite, &id, &page, CaseState::Closed, "closed").await;
    assert_eq!(c.resolution, Resolution::Effective as i32);
    assert!(!page.contains("id=\"actions\""), "an ended case offers no steps");

    // The history lists every step, on the page and in the service.
    for action in [
        "created",
        "link",
        "assign",
        "start_investigation",
        "plan_actions",
        "reply",
        "confirm",
        "close",
    ] {
        assert!(
            page.contains(&format!("data-action=\"{action}\"")),
            "{action} in the history"
        );
    }
    assert!(page.contains("调取挂号记录"), "reasons are kept in the history");
    let history = cases(&suite)
        .list_case_history(ListCaseHistoryRequest {
            name: format!("cases/{id}"),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(history.len(), 8, "{history:?}");

    // The inbox shows open cases by default; ended ones when asked, deadlines met.
    let row = format!("data-case=\"{id}\"");
    let (_, page, _) = suite.get(&admin, "/console/cases").await;
    assert!(!page.contains(&row), "closed cases are not in the default inbox");
    let (status, page, _) = suite.get(&admin, "/console/cases?ended=1&kind=complaint").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&row), "{page}");
    let (_, page, _) = suite.get(&admin, "/console/cases?sla=met").await;
    assert!(page.contains(&row) && page.contains("data-sla=\"met\""), "{page}");
    let (_, page, _) = suite.get(&admin, "/console/cases?state=closed").await;
    assert!(page.contains(&row) && !page.contains(&format!("data-case=\"{dup_id}\"")));
    let (_, page, _) = suite.get(&admin, "/console/cases?state=linked").await;
    assert!(page.contains(&format!("data-case=\"{dup_id}\"")) && !page.contains(&row));
}

async fn an_anonymous_contact_is_revealed_with_a_reason_and_deadlines_are_watched(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let (status, page, headers) = suite
        .post_form(
            &guide,
            "/console/cases/new",
            &[
                ("kind", "complaint"),
                ("channel", "counter"),
                ("category", "attitude/rude"),
                ("severity", "high"),
                ("department", "pharmacy"),
                ("title", "药房窗口态度生硬"),
                ("description", "取药时被大声呵斥"),
                ("patient", ""),
                ("contact_name", "赵先生"),
                ("contact_phone", "13812345678"),
                ("request_id", "intake-anon"),
                ("op", "create"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let id = case_id(&location(&headers));
    let path = format!("/console/cases/{id}");
    let reveal = format!("{path}/reveal");

    // Masked for everyone; shown in clear only to those who work cases, with a reason.
    let (_, page, _) = suite.get(&guide, &path).await;
    assert!(page.contains("138****5678") && !page.contains("13812345678"), "{page}");
    let (status, page, _) = suite.post_form(&guide, &reveal, &[("reason", "回电")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("data-code=\"PERMISSION_DENIED\"") && !page.contains("13812345678"));
    let (status, page, _) = suite.post_form(&admin, &reveal, &[("reason", "")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("<code>access_reason</code>") && !page.contains("13812345678"),
        "{page}"
    );
    let (status, page, _) = suite.post_form(&admin, &reveal, &[("reason", "回电核实情况")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("13812345678") && page.contains("赵先生"), "{page}");

    // Found by the confirmation number the caller quotes.
    let number = case(&suite, &id).await.number;
    let (status, _, headers) = suite.get(&guide, &format!("/console/cases?number={number}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page, _) = suite.get(&guide, &location(&headers)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("data-case=\"{id}\"")));

    // In English too.
    let english = suite
        .http
        .get(suite.url(&path))
        .header(
            reqwest::header::COOKIE,
            format!("__Host-hcrm_session={}; hcrm_lang=en", guide.cookie),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        english.contains("Confirmation number") && english.contains("Reason to see the contact in full"),
        "{english}"
    );

    // By department.
    let row = format!("data-case=\"{id}\"");
    assert!(
        suite
            .get(&guide, "/console/cases?department=pharmacy")
            .await
            .1
            .contains(&row)
    );
    assert!(
        !suite
            .get(&guide, "/console/cases?department=outpatient")
            .await
            .1
            .contains(&row)
    );

    // Mine: the guide who took it owns it; hand-over needs a reason and moves it.
    assert!(suite.get(&guide, "/console/cases?mine=1").await.1.contains(&row));
    assert!(!suite.get(&admin, "/console/cases?mine=1").await.1.contains(&row));
    let (_, page, _) = suite.get(&admin, &path).await;
    let etag = etag_of(&page);
    let handover = format!("{path}/handover");
    let (status, page, _) = suite
        .post_form(
            &admin,
            &handover,
            &[("new_owner", "admin"), ("reason", ""), ("etag", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("<code>reason</code>") && page.contains("value=\"admin\""),
        "{page}"
    );
    let (status, _, _) = suite
        .post_form(
            &admin,
            &handover,
            &[("new_owner", "admin"), ("reason", "药房归质控跟进"), ("etag", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(case(&suite, &id).await.owner, "admin");
    assert!(suite.get(&admin, "/console/cases?mine=1").await.1.contains(&row));

    // Deadlines: on track now, overdue once the response deadline has passed.
    let (_, page, _) = suite.get(&admin, "/console/cases?sla=overdue").await;
    assert!(!page.contains(&row));
    let (_, page, _) = suite.get(&admin, "/console/cases?sla=on_track").await;
    assert!(page.contains(&row), "{page}");
    suite.clock.advance(2 * DAY);
    // Two days on, the sessions have ended: the next morning's shift signs in again.
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let (status, page, _) = suite.get(&admin, "/console/cases?sla=overdue").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&row) && page.contains("class=\"tag bad\" data-sla=\"overdue\""),
        "{page}"
    );
    assert_eq!(case(&suite, &id).await.sla_state, SlaState::Overdue as i32);
    let (status, page, _) = suite.get(&admin, "/console/cases?sla=late").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>sla</code>"), "{page}");

    // A page at a time, newest first, with a link to the next.
    let mut client = cases(&suite);
    for i in 0..50 {
        client
            .create_case(CreateCaseRequest {
                case: Some(Case {
                    kind: CaseKind::Suggestion as i32,
                    channel: IntakeChannel::Mailbox as i32,
                    department: "outpatient".into(),
                    category: "environment".into(),
                    title: format!("建议 {i}"),
                    description: "增加座椅".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let (_, page, _) = suite.get(&admin, "/console/cases").await;
    assert!(!page.contains(&row), "the oldest case is on the second page");
    let next = attr(&page, "id=\"next-page\"", "href");
    let (status, page, _) = suite.get(&admin, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&row), "{page}");
    assert!(!page.contains("id=\"next-page\""));
}
