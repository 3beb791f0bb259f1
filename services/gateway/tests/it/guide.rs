//! The guide desk over HTTP: a department seeded through the directory's gRPC API found by a
//! symptom with its location and phone, a doctor's next clinic and the experts of a weekday;
//! a consultation logged for a patient shown in the log, its statistics and the patient's
//! timeline, a wrong form naming its field; a service request created overdue, started and
//! completed with its etag (a stale etag refused); roles without the permission refused.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::directory_service_client::DirectoryServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::service_request_service_client::ServiceRequestServiceClient;
use hcrm_proto::patients::*;
use reqwest::StatusCode;

crate::both_backends!(
    the_desk_finds_a_department_and_a_doctors_next_clinic,
    a_consultation_is_logged_for_a_patient_and_shown_on_the_timeline,
    an_overdue_service_request_is_started_and_completed_with_its_etag
);

/// The value of `attr="…"` after the first `after` in a page.
fn attr(page: &str, after: &str, attr: &str) -> String {
    let from = page.find(after).unwrap_or_else(|| panic!("no {after} in {page}"));
    let key = format!("{attr}=\"");
    let at = page[from..].find(&key).expect(attr) + from + key.len();
    page[at..]
        .split('"')
        .next()
        .unwrap_or("")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The error box names `field`.
fn names(page: &str, field: &str) -> bool {
    page.contains(&format!("<code>{field}</code>"))
}

async fn patient(suite: &Suite, name: &str, phone: &str) -> Patient {
    PatientServiceClient::new(suite.authed("setup", Role::Admin))
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: name.into(),
                phones: vec![phone.into()],
                ..Default::default()
            }),
            request_id: format!("p-{phone}"),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// An account with one role, made through the administration form.
async fn account(suite: &Suite, username: &str, role: &str) -> Browser {
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/admin/accounts",
            &[
                ("username", username),
                ("displayName", "赵"),
                ("roles", role),
                ("password", "another-password-2026"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    suite.sign_in(username, "another-password-2026").await
}

async fn the_desk_finds_a_department_and_a_doctors_next_clinic(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut directory = DirectoryServiceClient::new(suite.authed("setup", Role::Admin));
    directory
        .create_department(CreateDepartmentRequest {
            department: Some(Department {
                code: "cardiology".into(),
                display_name: "心血管内科".into(),
                english_name: "Cardiology".into(),
                treats: vec!["胸痛".into(), "高血压".into()],
                treats_en: vec!["chest pain".into()],
                location: Some(DepartmentLocation {
                    building: "门诊楼".into(),
                    floor: "3".into(),
                    room: "301-305".into(),
                }),
                phone: "0755-83001234".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let doctor = directory
        .create_doctor(CreateDoctorRequest {
            doctor: Some(Doctor {
                display_name: "李明".into(),
                title: DoctorTitle::ChiefPhysician as i32,
                expert: true,
                specialties: vec!["冠心病介入".into()],
                departments: vec!["cardiology".into()],
                ..Default::default()
            }),
            request_id: "d-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // Thursday mornings; the suite's clock stands on Monday 2026-06-01 10:00.
    directory
        .create_clinic_pattern(CreateClinicPatternRequest {
            pattern: Some(ClinicPattern {
                doctor: doctor.name.clone(),
                department: "cardiology".into(),
                weekday: Weekday::Thursday as i32,
                session: DaySession::Morning as i32,
                start_time: "08:00".into(),
                end_time: "12:00".into(),
                kind: ClinicKind::Expert as i32,
                location: "门诊楼3楼 305诊室".into(),
                ..Default::default()
            }),
            request_id: "cp-1".into(),
        })
        .await
        .unwrap();
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;

    // The navigation leads to the desk.
    let (status, page, _) = suite.get(&guide, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("href=\"/console/guide\""), "{page}");

    // "Which department treats chest pain": the department with where it is and its phone.
    let (status, page, _) = suite.get(&guide, "/console/guide?q=%E8%83%B8%E7%97%9B").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-department=\"cardiology\""), "{page}");
    assert!(
        page.contains("门诊楼 · 3 · 301-305") && page.contains("075583001234"),
        "{page}"
    );
    // … and a link to log the call with the referral filled in.
    let log = attr(&page, "data-department=\"cardiology\"", "class=\"log\" href");
    assert_eq!(log, "/console/guide/consultations?referral_department=cardiology");
    let (status, form, _) = suite.get(&guide, &log).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        form.contains("name=\"referral_department\" value=\"cardiology\""),
        "{form}"
    );
    assert!(form.contains("value=\"department_guidance\" selected"), "{form}");
    let (_, page, _) = suite.get(&guide, "/console/guide?q=hearing+loss").await;
    assert!(page.contains("id=\"no-departments\""), "{page}");

    // The doctor by name: the next session is Thursday 2026-06-04.
    let (status, page, _) = suite.get(&guide, "/console/guide?doctor=%E6%9D%8E%E6%98%8E").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let next = attr(&page, "id=\"next-sessions\"", "data-doctor");
    assert_eq!(next, doctor.name);
    let sessions = &page[page.find("id=\"next-sessions\"").unwrap()..];
    assert!(
        sessions.contains("2026-06-04") && sessions.contains("08:00–12:00"),
        "{page}"
    );
    assert!(sessions.contains("门诊楼3楼 305诊室"));

    // The department's experts on Thursday link to the doctor's next sessions.
    let (status, page, _) = suite
        .get(
            &guide,
            "/console/guide?department=cardiology&weekday=thursday&experts=1",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("2026-06-04"), "{page}");
    let link = attr(&page, "id=\"sessions\"", "href");
    assert!(link.starts_with("/console/guide?next=doctors%2F"), "{link}");
    let (status, page, _) = suite.get(&guide, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(attr(&page, "id=\"next-for\"", "data-doctor"), doctor.name);
    // Nobody on Tuesday; a weekday that is not one names the parameter.
    let (_, page, _) = suite
        .get(&guide, "/console/guide?department=cardiology&weekday=tuesday")
        .await;
    assert!(page.contains("id=\"no-clinics\""), "{page}");
    let (status, page, _) = suite
        .get(&guide, "/console/guide?department=cardiology&weekday=someday")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(names(&page, "weekday"), "{page}");

    // Auditors do not read the directory.
    let auditor = account(&suite, "auditor-zhao", "auditor").await;
    let (status, page, _) = suite.get(&auditor, "/console/guide?q=%E8%83%B8%E7%97%9B").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"PERMISSION_DENIED\""));
}

async fn a_consultation_is_logged_for_a_patient_and_shown_on_the_timeline(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let p = patient(&suite, "王秀英", "13900001111").await;
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;
    let (status, page, _) = suite.get(&guide, "/console/guide/consultations").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"no-consultations\"") && page.contains("id=\"busy-hours\""));

    // The caller's phone finds the patient and keeps what was typed.
    let typed = [
        ("channel", "hotline"),
        ("question", "胸口疼应该挂哪个科？"),
        ("answer", "心血管内科，门诊楼3楼"),
        ("referral_department", "cardiology"),
        ("referral_phone", "075583001234"),
        ("duration_minutes", "4"),
        ("request_id", "c-1"),
    ];
    let mut search = typed.to_vec();
    search.extend([("patient_query", "13900001111"), ("op", "search")]);
    let (status, page, _) = suite.post_form(&guide, "/console/guide/consultations", &search).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("data-patient=\"{}\"", p.name)), "{page}");
    assert!(page.contains("胸口疼应该挂哪个科？"), "entries kept");

    // Without a category the service names the field; the entries and the patient stay.
    let mut create = typed.to_vec();
    create.extend([("patient", p.name.as_str()), ("op", "create")]);
    let (status, page, _) = suite.post_form(&guide, "/console/guide/consultations", &create).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(names(&page, "consultation.category"), "{page}");
    assert!(page.contains("胸口疼应该挂哪个科？") && page.contains("value=\"075583001234\""));
    assert!(page.contains(&format!("value=\"{}\" checked", p.name)), "{page}");
    // A duration that is no number names the form's field.
    let mut wrong = create.clone();
    wrong.extend([("category", "department_guidance"), ("duration_minutes", "four")]);
    wrong.retain(|(k, v)| *k != "duration_minutes" || *v == "four");
    let (status, page, _) = suite.post_form(&guide, "/console/guide/consultations", &wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        names(&page, "duration_minutes") && page.contains("value=\"four\""),
        "{page}"
    );

    // An inspector reads consultations but does not log them: refused, the form kept.
    let inspector = account(&suite, "inspector-zhou", "inspector").await;
    create.push(("category", "department_guidance"));
    let (status, page, _) = suite
        .post_form(&inspector, "/console/guide/consultations", &create)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"PERMISSION_DENIED\"") && page.contains("胸口疼应该挂哪个科？"));

    let (status, page, headers) = suite.post_form(&guide, "/console/guide/consultations", &create).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), "/console/guide/consultations?done=logged");
    let (status, page, _) = suite.get(&guide, &location(&headers)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"done\""));
    let list = &page[page.find("id=\"consultations\"").expect("the list")..];
    assert!(list.contains("data-category=\"department_guidance\""), "{page}");
    assert!(list.contains("胸口疼应该挂哪个科？") && list.contains(&format!("href=\"/console/{}\"", p.name)));
    // The statistics count it under its category.
    let counts = &page[page.find("id=\"by-category\"").expect("the counts")..];
    assert!(counts.contains("data-category=\"department_guidance\">1<"), "{page}");
    assert!(page.contains("data-figure=\"total\">1<"), "{page}");
    // Filters.
    let (_, page, _) = suite
        .get(&guide, "/console/guide/consultations?category=exam_results")
        .await;
    assert!(page.contains("id=\"no-consultations\""), "{page}");
    let (_, page, _) = suite
        .get(
            &guide,
            "/console/guide/consultations?channel=hotline&text=%E8%83%B8%E5%8F%A3",
        )
        .await;
    assert!(page.contains("id=\"consultations\""), "{page}");
    let (status, page, _) = suite.get(&guide, "/console/guide/consultations?channel=fax").await;
    assert_eq!(status, StatusCode::OK);
    assert!(names(&page, "channel"), "{page}");

    // The patient's timeline shows the consultation.
    let (status, page, _) = suite.get(&guide, &format!("/console/{}", p.name)).await;
    assert_eq!(status, StatusCode::OK);
    let timeline = &page[page.find("id=\"timeline\"").expect("a timeline")..];
    assert!(timeline.contains("胸口疼应该挂哪个科？"), "{page}");

    // The timeline changed, so the patient is graded a moment later, and the page says why: a
    // consultation is no visit, so a lead who never came (class M).
    let graded = hcrm_kit::testing::eventually("the grade on the patient page", || {
        let (suite, guide, path) = (&suite, &guide, format!("/console/{}", p.name));
        async move {
            let (_, page, _) = suite.get(guide, &path).await;
            page.contains("data-reason=\"never_visited\"").then_some(page)
        }
    })
    .await;
    assert!(graded.contains("data-class=\"1\""), "{graded}");
    assert!(
        graded.contains("登记后从未就诊") || graded.contains("never"),
        "{graded}"
    );
}

async fn an_overdue_service_request_is_started_and_completed_with_its_etag(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let p = patient(&suite, "陈建国", "13800002222").await;
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;

    // A result time that is no time names the field and keeps the entries.
    let mut fields = vec![
        ("type", "result_delivery"),
        ("patient", p.name.as_str()),
        ("rd_method", "phone"),
        ("rd_phone", "13800002222"),
        ("rd_exam", "胸部CT"),
        ("request_id", "sr-1"),
        ("op", "create"),
    ];
    let mut wrong = fields.clone();
    wrong.push(("rd_result_time", "this morning"));
    let (status, page, _) = suite.post_form(&guide, "/console/guide/requests", &wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(names(&page, "service_request.result_delivery.result_time"), "{page}");
    assert!(page.contains("value=\"胸部CT\"") && page.contains("value=\"this morning\""));

    // The result came at 07:30; delivery was due an hour later, so it is overdue at 10:00.
    fields.push(("rd_result_time", "2026-06-01T07:30"));
    let (status, page, headers) = suite.post_form(&guide, "/console/guide/requests", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (status, page, _) = suite.get(&guide, &location(&headers)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"done\""));
    let id = attr(&page, "id=\"requests\"", "data-request");
    let row = format!("data-request=\"{id}\"");
    assert_eq!(attr(&page, &row, "data-sla"), "overdue", "{page}");
    assert_eq!(attr(&page, &row, "class"), "overdue");
    assert!(page.contains("2026-06-01 08:30"), "the due time is shown: {page}");
    let total = &page[page.find("id=\"request-figures\"").expect("figures")..];
    assert!(total.contains("data-overdue-now=\"1\""), "{page}");
    let (_, page, _) = suite.get(&guide, "/console/guide/requests?overdue=1").await;
    assert!(page.contains(&row), "{page}");
    // The dashboard counts it among the overdue service requests.
    let (_, page, _) = suite.get(&guide, "/console").await;
    assert!(
        page.contains("data-figure=\"便民服务已超时\">1<")
            || page.contains("data-figure=\"Service requests overdue\">1<"),
        "{page}"
    );
    let (_, page, _) = suite.get(&guide, "/console/guide/requests?type=home_care").await;
    assert!(page.contains("id=\"no-requests\""), "{page}");

    // Started with the etag shown; the same etag again is stale.
    let etag = attr(&page_of(&suite, &guide).await, &row, "data-etag");
    let act = format!("/console/guide/requests/{id}/act");
    let (status, page, headers) = suite
        .post_form(&guide, &act, &[("action", "start"), ("etag", &etag)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), "/console/guide/requests?done=start");
    let (status, page, _) = suite
        .post_form(
            &guide,
            &act,
            &[("action", "complete"), ("etag", &etag), ("outcome", "已电话告知")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("data-code=\"ABORTED\"") && page.contains("value=\"已电话告知\""),
        "{page}"
    );

    let page = page_of(&suite, &guide).await;
    assert_eq!(attr(&page, &row, "data-state"), "in_progress");
    let etag = attr(&page, &row, "data-etag");
    // No outcome: the service names it.
    let (status, page, _) = suite
        .post_form(
            &guide,
            &act,
            &[("action", "complete"), ("etag", &etag), ("outcome", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("outcome</code>"), "{page}");
    let (status, page, _) = suite
        .post_form(
            &guide,
            &act,
            &[("action", "complete"), ("etag", &etag), ("outcome", "已电话告知")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let done = ServiceRequestServiceClient::new(suite.authed("admin", Role::Admin))
        .get_service_request(GetServiceRequestRequest {
            name: format!("service_requests/{id}"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, ServiceRequestState::Done as i32);
    assert_eq!(done.sla_state, ServiceRequestSlaState::Missed as i32);
    assert_eq!(done.outcome, "已电话告知");
    let (_, page, _) = suite.get(&guide, "/console/guide/requests").await;
    assert!(!page.contains(&row), "done requests leave the worklist");
    let (_, page, _) = suite.get(&guide, "/console/guide/requests?state=done").await;
    assert_eq!(attr(&page, &row, "data-sla"), "missed");

    // A proxy discharge without the papers cannot be completed; it can be cancelled with a reason.
    let discharge = [
        ("type", "proxy_discharge"),
        ("patient", p.name.as_str()),
        ("pd_invoice", "pick_up"),
        ("pd_ward", "心内科二病区"),
        ("request_id", "sr-2"),
        ("op", "create"),
    ];
    let (status, page, _) = suite.post_form(&guide, "/console/guide/requests", &discharge).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let page = page_of(&suite, &guide).await;
    let id = attr(&page, "id=\"requests\"", "data-request");
    let row = format!("data-request=\"{id}\"");
    let act = format!("/console/guide/requests/{id}/act");
    let etag = attr(&page, &row, "data-etag");
    let (status, _, _) = suite
        .post_form(&guide, &act, &[("action", "start"), ("etag", &etag)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let etag = attr(&page_of(&suite, &guide).await, &row, "data-etag");
    let (status, page, _) = suite
        .post_form(
            &guide,
            &act,
            &[("action", "complete"), ("etag", &etag), ("outcome", "已办")],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{page}");
    assert!(page.contains("data-code=\"FAILED_PRECONDITION\""), "{page}");
    let (status, page, _) = suite
        .post_form(
            &guide,
            &act,
            &[("action", "cancel"), ("etag", &etag), ("reason", "家属自行办理")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");

    // An inspector reads the worklist but takes nothing in.
    let inspector = account(&suite, "inspector-zhou", "inspector").await;
    let (status, _, _) = suite.get(&inspector, "/console/guide/requests").await;
    assert_eq!(status, StatusCode::OK);
    let mut again = fields.clone();
    again.retain(|(k, _)| *k != "request_id");
    let (status, page, _) = suite.post_form(&inspector, "/console/guide/requests", &again).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"PERMISSION_DENIED\"") && page.contains("value=\"胸部CT\""));
}

/// The worklist as the guide sees it.
async fn page_of(suite: &Suite, who: &Browser) -> String {
    let (status, page, _) = suite.get(who, "/console/guide/requests").await;
    assert_eq!(status, StatusCode::OK);
    page
}
