//! The follow-up area of the console over HTTP: templates written on the form, a plan made
//! for a patient, the task in the worklist, a call recorded on the task page (checked in the
//! followup service), tasks moved, given away and cancelled with their etags, the overdue view,
//! and what a guide may not do.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::template_service_client::TemplateServiceClient;
use hcrm_proto::followup::{
    AppointmentKind, CreatePlanRequest, CreateTemplateRequest, GetTaskRequest, ListFollowUpsRequest, ListTasksRequest,
    Outcome, Plan, ScheduleStep, Task, TaskStatus, TaskView, Template, TemplateKind,
};
use hcrm_proto::patients::appointment_service_client::AppointmentServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{
    AppointmentKind as PatientAppointmentKind, ContactPreferences, CreatePatientRequest,
    ListAppointmentRequestsRequest, Patient,
};
use hcrm_proto::types::{ContactChannel, Date};
use reqwest::StatusCode;
use reqwest::header::COOKIE;

crate::both_backends!(
    a_call_is_recorded_from_the_worklist,
    tasks_are_moved_given_away_and_overdue_ones_listed
);

const DAY: i64 = 24 * 60 * MINUTE;

/// A proto date as the form writes it.
fn date_text(d: &Option<Date>) -> String {
    d.as_ref()
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .unwrap_or_default()
}

async fn new_patient(suite: &Suite, name: &str, phone: &str) -> String {
    let mut patients = PatientServiceClient::new(suite.authed("setup", Role::Admin));
    patients
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: name.into(),
                phones: vec![phone.into()],
                contact_preferences: Some(ContactPreferences {
                    allowed_channels: vec![ContactChannel::Phone as i32],
                    quiet_hours_start: "22:00".into(),
                    quiet_hours_end: "08:00".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: format!("patient-{phone}"),
            reason: String::new(),
        })
        .await
        .expect("patient")
        .into_inner()
        .name
}

async fn tasks_of(suite: &Suite, patient: &str) -> Vec<Task> {
    let mut followup = FollowupServiceClient::new(suite.authed("setup", Role::Admin));
    followup
        .list_tasks(ListTasksRequest {
            view: TaskView::All as i32,
            patient: patient.into(),
            ..Default::default()
        })
        .await
        .expect("tasks")
        .into_inner()
        .tasks
}

async fn task(suite: &Suite, name: &str) -> Task {
    let mut followup = FollowupServiceClient::new(suite.authed("setup", Role::Admin));
    followup
        .get_task(GetTaskRequest { name: name.into() })
        .await
        .expect("task")
        .into_inner()
}

/// The `/console/…` path of a redirect, without its query.
fn path_of(location: &str) -> String {
    location.split('?').next().unwrap_or("").to_string()
}

async fn a_call_is_recorded_from_the_worklist(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;

    // A template typed on the form: a wrong line comes back naming the field and its step,
    // with what was typed kept.
    let template_form = |score: &'static str| {
        vec![
            ("display_name", "术后随访"),
            ("kind", "scheduled"),
            ("default_channel", "phone"),
            ("departments", "surgery"),
            (
                "schedule",
                "0 | 2 | phone | 出院后首次回访\n7 | 3 | phone | 复查伤口 | notify",
            ),
            ("questions", "wound | 伤口愈合如何？"),
            ("score", score),
            ("request_id", "template-1"),
        ]
    };
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/followups/templates",
            &template_form("pain | 疼痛程度 | forty | 0 | 10 | lower"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("<code>score</code>"), "{page}");
    assert!(page.contains("value=\"术后随访\""), "entries kept");
    // The service's own check (weights add up to 100) names the score field too.
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/followups/templates",
            &template_form("pain | 疼痛程度 | 40 | 0 | 10 | lower"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("weights must add up to 100"), "{page}");
    let (status, page, headers) = suite
        .post_form(
            &admin,
            "/console/followups/templates",
            &template_form("pain | 疼痛程度 | 40 | 0 | 10 | lower\nmobility | 活动能力 | 60 | 0 | 5"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let template_page = path_of(&location(&headers));
    assert!(
        template_page.starts_with("/console/followups/templates/"),
        "{template_page}"
    );
    let template = template_page.trim_start_matches("/console/followups/");
    let (status, page, _) = suite.get(&admin, &template_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-key=\"mobility\"") && page.contains("data-offset=\"7\""),
        "{page}"
    );
    let (_, page, _) = suite.get(&admin, "/console/followups/templates").await;
    assert!(page.contains("术后随访"), "{page}");

    // A plan for a patient from the template, on the form; the first task is due today and
    // assigned to the admin.
    let patient = new_patient(&suite, "王秀英", "13811112222").await;
    let patient_id = patient.trim_start_matches("patients/");
    let (status, page, headers) = suite
        .post_form(
            &admin,
            "/console/followups/plans",
            &[
                ("patient", patient_id),
                ("template", template),
                ("department", "surgery"),
                ("responsible", "admin"),
                ("anchor_date", "2026-06-01"),
                ("request_id", "plan-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let plan_page = path_of(&location(&headers));
    let (status, page, _) = suite.get(&admin, &plan_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("王秀英") && page.contains("id=\"plan-tasks\""), "{page}");
    let (_, page, _) = suite
        .get(&admin, &format!("/console/followups/plans?patient={patient_id}"))
        .await;
    assert!(page.contains(&format!("data-patient=\"{patient_id}\"")), "{page}");

    // My worklist shows the task with the patient's name linking to the patient's page.
    let tasks = tasks_of(&suite, &patient).await;
    assert_eq!(tasks.len(), 2);
    let first = &tasks[0];
    let task_id = first.name.trim_start_matches("tasks/");
    let (status, page, _) = suite.get(&admin, "/console/followups").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("data-task=\"{task_id}\"")), "{page}");
    assert!(
        page.contains(&format!("href=\"/console/{patient}\"")) && page.contains("王秀英"),
        "{page}"
    );

    // The task page: quiet hours shown, the template's questions and score items on the form.
    let task_page = format!("/console/followups/tasks/{task_id}");
    let (status, page, _) = suite.get(&admin, &task_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"quiet-hours\"") && page.contains("22:00"), "{page}");
    assert!(
        page.contains("name=\"score_pain\"") && page.contains("伤口愈合如何？"),
        "{page}"
    );

    // A wrong record: a score that is not a number names its field and keeps the entries; a
    // reached call without its score answers is refused by the service, naming the answers.
    let record = |pain: &'static str| {
        vec![
            ("channel", "phone"),
            ("outcome", "reached"),
            ("q_wound", "愈合良好"),
            ("qtext_wound", "伤口愈合如何？"),
            ("score_pain", pain),
            ("score_mobility", "4"),
            ("content", "患者恢复良好"),
            ("health_guidance", "按时换药"),
            ("sat_attitude", "5"),
            ("request_id", "record-1"),
        ]
    };
    let (status, page, _) = suite
        .post_form(&admin, &format!("{task_page}/record"), &record("a bit"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("<code>score_pain</code>"), "{page}");
    assert!(
        page.contains("value=\"愈合良好\"") && page.contains("按时换药"),
        "entries kept: {page}"
    );
    let (status, page, _) = suite
        .post_form(&admin, &format!("{task_page}/record"), &record(""))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("record.score_answers"), "{page}");

    // Booking fields typed without saying what to book are not dropped silently.
    let mut half_booked = record("2");
    half_booked.push(("appt_reason", "复查"));
    let (status, page, _) = suite
        .post_form(&admin, &format!("{task_page}/record"), &half_booked)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("<code>appt_kind</code>"), "{page}");

    // The patient asks for a revisit: it goes with the record. The days are ahead of the real
    // clock too, which the patients service checks them against (the suite's stands in 2026-06).
    let day = |days: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    let (earliest, latest) = (day(10), day(17));
    let mut booked: Vec<(&str, &str)> = record("2");
    booked.extend([
        ("appt_kind", "revisit"),
        ("appt_department", ""),
        ("appt_doctor", ""),
        ("appt_earliest", earliest.as_str()),
        ("appt_latest", latest.as_str()),
        ("appt_reason", "伤口复查"),
    ]);
    let (status, page, headers) = suite.post_form(&admin, &format!("{task_page}/record"), &booked).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), format!("{task_page}?done=recorded"));
    let done = task(&suite, &first.name).await;
    assert_eq!(done.status, TaskStatus::Done as i32);
    assert!(!done.follow_up.is_empty());
    let mut followup = FollowupServiceClient::new(suite.authed("setup", Role::Admin));
    let records = followup
        .list_follow_ups(ListFollowUpsRequest {
            task: first.name.clone(),
            ..Default::default()
        })
        .await
        .expect("follow-ups")
        .into_inner()
        .follow_ups;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.outcome, Outcome::Reached as i32);
    assert_eq!(r.recorded_by, "admin");
    assert_eq!(
        r.recovery_score,
        Some(80.0),
        "pain 2 of 10 (lower is better) × 40 + 4 of 5 × 60"
    );
    assert!(
        r.content.contains("伤口愈合如何？: 愈合良好") && r.content.contains("患者恢复良好"),
        "{}",
        r.content
    );
    assert_eq!(r.satisfaction.len(), 1);
    let wish = r.appointment.clone().expect("the wish is on the record");
    assert_eq!(wish.kind, AppointmentKind::Revisit as i32);
    assert_eq!(wish.department, "surgery", "the task's department by default");
    assert_eq!(date_text(&wish.earliest_date), earliest);
    assert_eq!(date_text(&wish.latest_date), latest);

    // The followup service hands it to the patients service: one appointment request, from
    // this task.
    let appointments = AppointmentServiceClient::new(suite.authed("setup", Role::Admin));
    let requests = hcrm_kit::testing::eventually("the appointment request", || {
        let mut appointments = appointments.clone();
        let patient = patient.clone();
        async move {
            let list = appointments
                .list_appointment_requests(ListAppointmentRequestsRequest {
                    patient,
                    ..Default::default()
                })
                .await
                .expect("appointment requests")
                .into_inner()
                .appointment_requests;
            (!list.is_empty()).then_some(list)
        }
    })
    .await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let a = &requests[0];
    assert_eq!(a.kind, PatientAppointmentKind::Revisit as i32);
    assert_eq!(a.department, "surgery");
    assert_eq!(a.reason, "伤口复查");
    assert_eq!(a.source, first.name);

    // The page shows the record and no longer offers the form; the worklist is empty.
    let (_, page, _) = suite.get(&admin, &format!("{task_page}?done=recorded")).await;
    assert!(
        page.contains("role=\"status\"") && page.contains("data-outcome=\"reached\""),
        "{page}"
    );
    assert!(!page.contains("id=\"record\""), "{page}");
    let (_, page, _) = suite.get(&admin, "/console/followups").await;
    assert!(page.contains("id=\"no-tasks\""), "{page}");
    let english = suite
        .http
        .get(suite.url(&task_page))
        .header(COOKIE, format!("__Host-hcrm_session={}; hcrm_lang=en", admin.cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        english.contains("Earlier follow-ups") && english.contains(">reached<"),
        "{english}"
    );
    assert!(page.contains("data-figure=\"follow_ups\">1<"), "{page}");

    // Revising with the etag read publishes version 2; the same etag again is stale.
    let (_, page, _) = suite.get(&admin, &template_page).await;
    let etag = attr_after(&page, "id=\"template\"", "data-etag").expect("etag");
    let revise = |etag: String| {
        vec![
            ("etag", etag),
            ("display_name", "术后随访（修订）".to_string()),
            ("kind", "scheduled".to_string()),
            ("schedule", "1 | 2 | phone | 出院后首次回访".to_string()),
            ("reason", "首次回访改为次日".to_string()),
        ]
    };
    let fields = revise(etag.clone());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page, _) = suite
        .post_form(&admin, &format!("{template_page}/revise"), &fields)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (status, page, _) = suite
        .post_form(&admin, &format!("{template_page}/revise"), &fields)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("data-code=\"ABORTED\"") && page.contains("value=\"术后随访（修订）\""),
        "{page}"
    );
    let (_, page, _) = suite.get(&admin, &template_page).await;
    assert!(page.contains("data-version=\"2\"") && page.contains("v2"), "{page}");
    // Archiving with the current etag.
    let etag = attr_after(&page, "id=\"template\"", "data-etag").expect("etag");
    let (status, _, _) = suite
        .post_form(
            &admin,
            &format!("{template_page}/archive"),
            &[("etag", &etag), ("reason", "停用")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = suite.get(&admin, &template_page).await;
    assert!(
        page.contains("data-state=\"archived\"") && !page.contains("id=\"revise\""),
        "{page}"
    );
}

async fn tasks_are_moved_given_away_and_overdue_ones_listed(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut templates = TemplateServiceClient::new(suite.authed("setup", Role::Admin));
    let template = templates
        .create_template(CreateTemplateRequest {
            template: Some(Template {
                display_name: "出院随访".into(),
                kind: TemplateKind::Scheduled as i32,
                schedule: vec![
                    ScheduleStep {
                        offset_days: 0,
                        window_days: 1,
                        purpose: "出院回访".into(),
                        ..Default::default()
                    },
                    ScheduleStep {
                        offset_days: 30,
                        purpose: "一月回访".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            request_id: "t-1".into(),
        })
        .await
        .expect("template")
        .into_inner();
    let patient = new_patient(&suite, "赵建华", "13833334444").await;
    let mut followup = FollowupServiceClient::new(suite.authed("setup", Role::Admin));
    let plan = followup
        .create_plan(CreatePlanRequest {
            plan: Some(Plan {
                patient: patient.clone(),
                template: template.name.clone(),
                department: "cardiology".into(),
                responsible: "guide-li".into(),
                ..Default::default()
            }),
            steps: vec![],
            request_id: "plan-1".into(),
        })
        .await
        .expect("plan")
        .into_inner();
    let first = tasks_of(&suite, &patient).await.remove(0);
    assert_eq!(first.purpose, "出院回访");
    let task_page = format!("/console/followups/{}", first.name);

    // The guide sees the task in their worklist but may not record it or write templates.
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;
    let (status, page, _) = suite.get(&guide, "/console/followups").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("赵建华") && page.contains(&first.name), "{page}");
    assert!(
        page.contains("data-missing=\"PERMISSION_DENIED\""),
        "no statistics for a guide: {page}"
    );
    let (status, page, _) = suite
        .post_form(
            &guide,
            &format!("{task_page}/record"),
            &[("channel", "phone"), ("outcome", "refused")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"PERMISSION_DENIED\""), "{page}");
    let (status, page, _) = suite
        .post_form(
            &guide,
            "/console/followups/templates",
            &[
                ("display_name", "导医模板"),
                ("kind", "scheduled"),
                ("schedule", "1 | 1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("data-code=\"PERMISSION_DENIED\"") && page.contains("value=\"导医模板\""),
        "{page}"
    );
    assert_eq!(task(&suite, &first.name).await.status, TaskStatus::Due as i32);

    // The admin gives the task to themself with the etag read; the old etag is then stale.
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let (_, page, _) = suite.get(&admin, &task_page).await;
    assert!(
        page.contains("data-etag=\"") && page.contains("id=\"reassign\""),
        "{page}"
    );
    let (status, page, headers) = suite
        .post_form(
            &admin,
            &format!("{task_page}/reassign"),
            &[("etag", &first.etag), ("assignee", "admin"), ("reason", "导医不做随访")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(location(&headers).ends_with("?done=reassigned"));
    assert_eq!(task(&suite, &first.name).await.assignee, "admin");
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{task_page}/reschedule"),
            &[
                ("etag", &first.etag),
                ("due_date", "2026-06-03"),
                ("reason", "患者出差"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("data-code=\"ABORTED\"") && page.contains("value=\"患者出差\""),
        "{page}"
    );
    // A date that is not one names the field.
    let current = task(&suite, &first.name).await;
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{task_page}/reschedule"),
            &[("etag", &current.etag), ("due_date", "2026-06-31")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("<code>due_date</code>"), "{page}");
    assert!(
        page.contains("id=\"reschedule\" open"),
        "the refused form is open: {page}"
    );

    // Three days on, the task is overdue (past its window) and listed so.
    suite.clock.advance(3 * DAY);
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let (status, page, _) = suite.get(&admin, "/console/followups?view=overdue").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&first.name) && page.contains("data-status=\"missed\""),
        "{page}"
    );
    assert!(page.contains("data-figure=\"overdue_tasks\">1<"), "{page}");
    let (_, page, _) = suite
        .get(&admin, "/console/followups?view=department&department=cardiology")
        .await;
    assert!(page.contains(&first.name), "{page}");

    // Not reached: the task stays open for another try.
    let (status, page, headers) = suite
        .post_form(
            &admin,
            &format!("{task_page}/record"),
            &[
                ("channel", "phone"),
                ("outcome", "not_reached"),
                ("request_id", "call-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(location(&headers).ends_with("?done=not_reached"));
    let retried = task(&suite, &first.name).await;
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.status, TaskStatus::Pending as i32, "moved to tomorrow");
    let (_, page, _) = suite.get(&admin, &location(&headers)).await;
    assert!(
        page.contains("data-outcome=\"not_reached\"") && page.contains("id=\"record\""),
        "{page}"
    );

    // Cancelled with a reason; the plan, cancelled too, shows so.
    let current = task(&suite, &first.name).await;
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{task_page}/cancel"),
            &[("etag", &current.etag), ("reason", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reason is required: {page}");
    assert!(page.contains("<code>reason</code>"), "{page}");
    let (status, _, _) = suite
        .post_form(
            &admin,
            &format!("{task_page}/cancel"),
            &[("etag", &current.etag), ("reason", "患者已转院")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cancelled = task(&suite, &first.name).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, "患者已转院");
    let plan_page = format!("/console/followups/{}", plan.name);
    let (status, _, headers) = suite
        .post_form(&admin, &format!("{plan_page}/cancel"), &[("reason", "患者已转院")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = suite.get(&admin, &location(&headers)).await;
    assert!(
        page.contains("data-state=\"cancelled\"") && !page.contains("id=\"cancel-plan\""),
        "{page}"
    );
}

/// The value of `attribute` on the element that `marker` starts, unescaped.
fn attr_after(page: &str, marker: &str, attribute: &str) -> Option<String> {
    let tag_start = page[..page.find(marker)?].rfind('<')?;
    let tag = &page[tag_start..tag_start + page[tag_start..].find('>')?];
    let at = tag.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    Some(
        tag[at..]
            .split('"')
            .next()?
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}
