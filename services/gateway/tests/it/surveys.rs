//! Surveys and reports in the console, over HTTP: a questionnaire built through the form (a
//! wrong row comes back named), edited with its etag, published, patients invited through the
//! form, answers given on the patients' page, and the answers seen in the satisfaction results
//! and the monthly report; a guide reads questionnaires but neither designs them nor reads
//! reports; a month without data still makes a report.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::*;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use reqwest::StatusCode;

crate::both_backends!(
    a_questionnaire_is_built_sent_answered_and_reported,
    a_guide_reads_questionnaires_but_neither_designs_nor_reads_reports,
    reports_render_for_a_month_without_data
);

/// The questionnaire form: an attitude rating, a free-text follow-up shown for low ratings,
/// and a multiple choice in a second section.
fn questionnaire_form(title: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("rows", "8"),
        ("request_id", "survey-form-1"),
        ("title_zh", title),
        ("title_en", "Discharge survey"),
        ("description_zh", "感谢您抽出时间"),
        ("case_threshold", "2"),
        ("q1.section_zh", "总体评价"),
        ("q1.section_en", "Overall"),
        ("q1.id", "attitude"),
        ("q1.kind", "rating"),
        ("q1.zh", "医护人员的服务态度"),
        ("q1.en", "Attitude of the staff"),
        ("q1.required", "true"),
        ("q1.dimension", "attitude"),
        ("q2.id", "why"),
        ("q2.kind", "free_text"),
        ("q2.zh", "哪里让您不满意？"),
        ("q2.show_if_question", "attitude"),
        ("q2.show_if_values", "1, 2"),
        ("q3.section_zh", "环境"),
        ("q3.id", "areas"),
        ("q3.kind", "multiple_choice"),
        ("q3.zh", "哪些方面需要改进？"),
        ("q3.options", "parking | 停车 | Parking\nfood | 饮食 | Food"),
    ]
}

fn with(
    form: &[(&'static str, &'static str)],
    key: &'static str,
    value: &'static str,
) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<_> = form.iter().filter(|(k, _)| *k != key).copied().collect();
    out.push((key, value));
    out
}

/// The value of the first `name="{name}" value="…"` input of a page.
fn input_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no {name}: {page}"));
    let escaped = page[at..].split('"').next().unwrap_or("");
    // Etags are quoted (`"3"`), so the page carries them escaped.
    escaped.replace("&quot;", "\"").replace("&amp;", "&")
}

fn all_attr(page: &str, attr: &str) -> Vec<String> {
    let marker = format!("{attr}=\"");
    page.match_indices(&marker)
        .map(|(i, _)| page[i + marker.len()..].split('"').next().unwrap_or("").to_string())
        .collect()
}

async fn patient(suite: &Suite, name: &str, phone: &str) -> Patient {
    PatientServiceClient::new(suite.authed("admin", Role::Admin))
        .create_patient(CreatePatientRequest {
            patient: Some(Patient {
                display_name: name.into(),
                phones: vec![phone.into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn a_questionnaire_is_built_sent_answered_and_reported(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    let (status, page, _) = suite.get(&admin, "/console/surveys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"no-surveys\""), "{page}");

    // An option line the form cannot read is named by its row, before anything is sent.
    let form = questionnaire_form("出院满意度调查");
    let (status, page, _) = suite
        .post_form(&admin, "/console/surveys/new", &with(&form, "q3.options", "parking"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains("data-row-error=\"3\"") && page.contains("q3.options"),
        "{page}"
    );
    // A choice question with one option: the service's field error lands on its row, entries kept.
    let (status, page, _) = suite
        .post_form(
            &admin,
            "/console/surveys/new",
            &with(&form, "q3.options", "parking | 停车"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains("data-field=\"q3.options\"") && page.contains("href=\"#row-3\""),
        "{page}"
    );
    assert!(!page.contains("data-row-error=\"1\""), "only the wrong row: {page}");
    assert!(page.contains("value=\"出院满意度调查\"") && page.contains("value=\"Attitude of the staff\""));
    // More rows keep what was typed and save nothing.
    let (status, page, _) = suite
        .post_form(&admin, "/console/surveys/new", &with(&form, "action", "more"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-row=\"13\"") && page.contains("value=\"why\""),
        "{page}"
    );

    let (status, _, headers) = suite.post_form(&admin, "/console/surveys/new", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page_path = location(&headers);
    let id = page_path.trim_start_matches("/console/surveys/").to_string();
    let name = format!("questionnaires/{id}");
    let mut surveys = SurveyServiceClient::new(suite.authed("admin", Role::Admin));
    let draft = surveys
        .get_questionnaire(GetQuestionnaireRequest {
            name: name.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(draft.sections.len(), 2);
    let why = &draft.sections[0].questions[1];
    assert_eq!(why.show_if.as_ref().unwrap().values, ["1", "2"]);
    assert_eq!(draft.sections[1].questions[0].options.len(), 2);
    assert_eq!(draft.case_threshold, 2);

    // Editing sends the etag read; a stale one is refused with the form kept.
    let (status, page, _) = suite.get(&admin, &format!("{page_path}/edit")).await;
    assert_eq!(status, StatusCode::OK);
    let etag = input_value(&page, "etag");
    let edit = with(&with(&form, "etag", "stale-etag"), "title_en", "Discharge survey 2026");
    let (status, page, _) = suite.post_form(&admin, &format!("{page_path}/edit"), &edit).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("data-code=\"ABORTED\"") && page.contains("value=\"Discharge survey 2026\""));
    let edit: Vec<(&str, &str)> = edit
        .iter()
        .map(|(k, v)| if *k == "etag" { (*k, etag.as_str()) } else { (*k, *v) })
        .collect();
    let (status, _, headers) = suite.post_form(&admin, &format!("{page_path}/edit"), &edit).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), page_path);

    // Not published yet: no invitations. Then published with the page's etag.
    let (status, page, _) = suite.get(&admin, &page_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"publish-first\"") && page.contains("data-question=\"areas\""),
        "{page}"
    );
    let etag = input_value(&page, "etag");
    let (status, _, _) = suite
        .post_form(&admin, &format!("{page_path}/publish"), &[("etag", &etag)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let published = surveys
        .get_questionnaire(GetQuestionnaireRequest {
            name: name.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(published.title.unwrap().en, "Discharge survey 2026");
    // The old etag is stale now.
    let (status, page, _) = suite
        .post_form(&admin, &format!("{page_path}/publish"), &[("etag", &etag)])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    let (status, page, _) = suite.get(&admin, &format!("{page_path}/preview?version=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"preview\"") && page.contains("医护人员的服务态度"),
        "{page}"
    );

    // Invitations: one patient by code, one ticked after a search; a wrong code is named.
    let wang = patient(&suite, "王秀英", "13900139001").await;
    let zhao = patient(&suite, "赵建国", "13900139002").await;
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{page_path}/invitations"),
            &[
                ("patients", &format!("{}\nP-NOBODY", wang.code)),
                ("department", "cardiology"),
                ("request_id", "inv-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains("<code>patients</code>") && page.contains("P-NOBODY"),
        "{page}"
    );
    let (status, page, _) = suite
        .get(&admin, &format!("{page_path}?find=%E8%B5%B5%E5%BB%BA%E5%9B%BD"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("value=\"{}\"", zhao.name)),
        "the search offers 赵建国: {page}"
    );
    let (status, page, _) = suite
        .post_form(
            &admin,
            &format!("{page_path}/invitations"),
            &[
                ("patients", &wang.code),
                ("pick", &zhao.name),
                ("department", "cardiology"),
                ("request_id", "inv-2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"new-links\"") && page.contains("王秀英"), "{page}");
    let tokens = all_attr(&page, "data-token");
    assert_eq!(tokens.len(), 2, "{page}");
    assert!(
        page.contains(&format!("href=\"/console/{}\"", zhao.name)),
        "patients link to their files"
    );

    // The patients answer: one satisfied, one not (which opens a complaint).
    for (token, answers) in [
        (&tokens[0], vec![("q.attitude", "5"), ("q.areas", "parking")]),
        (&tokens[1], vec![("q.attitude", "1"), ("q.why", "护士态度生硬")]),
    ] {
        let response = suite
            .http
            .post(suite.url(&format!("/s/{token}")))
            .form(&answers)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, page, _) = suite.get(&admin, &format!("{page_path}?state=answered")).await;
    assert_eq!(
        all_attr(&page, "data-state")
            .iter()
            .filter(|s| *s == "answered")
            .count(),
        2,
        "{page}"
    );

    // The results of June: two answers, too few for a figure.
    let (status, page, _) = suite
        .get(&admin, "/console/surveys/results?from_month=2026-05&to_month=2026-06")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("data-month=\"2026-06\" data-department=\"\" data-dimension=\"all\" data-responses=\"2\""),
        "{page}"
    );
    assert!(
        page.contains(
            "data-month=\"2026-06\" data-department=\"cardiology\" data-dimension=\"attitude\" data-responses=\"2\""
        ),
        "{page}"
    );
    assert!(page.contains("答卷太少") && page.contains("<svg"), "{page}");

    // The monthly report of June shows the answers and the complaint the low rating opened.
    let (status, page, _) = suite.get(&admin, "/console/reports?month=2026-06").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-figure=\"responses\" data-current=\"2\""), "{page}");
    assert!(page.contains("data-figure=\"complaints\" data-current=\"1\""), "{page}");
    assert!(
        page.contains("data-figure=\"satisfaction\" data-suppressed=\"true\""),
        "{page}"
    );
    assert!(
        page.contains("<h2>2026-06 患者服务月度分析报告"),
        "the Markdown as HTML: {page}"
    );
    let counts = page.split("id=\"complaint-counts\"").nth(1).expect("complaint counts");
    assert!(counts.contains("data-category=\"attitude\""), "{page}");
    assert!(counts.contains("<td data-month=\"2026-06\">1</td>"), "{page}");
}

async fn a_guide_reads_questionnaires_but_neither_designs_nor_reads_reports(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let guide = suite.sign_in("guide-li", GUIDE_PASSWORD).await;
    // Guides read questionnaires (the feedback permission table grants SurveyRead) …
    let (status, _, _) = suite.get(&guide, "/console/surveys").await;
    assert_eq!(status, StatusCode::OK);
    // … but do not design them (SurveyDesign: admins and inspectors): the form comes back denied.
    let (status, page, _) = suite
        .post_form(&guide, "/console/surveys/new", &questionnaire_form("导医的问卷"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"PERMISSION_DENIED\"") && page.contains("value=\"导医的问卷\""));
    let mut surveys = SurveyServiceClient::new(suite.authed("admin", Role::Admin));
    let listed = surveys
        .list_questionnaires(ListQuestionnairesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.questionnaires.is_empty(), "nothing was created");
    // Nor read reports (ReportRead).
    for path in ["/console/reports", "/console/surveys/results"] {
        let (status, page, _) = suite.get(&guide, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
        assert!(page.contains("data-code=\"PERMISSION_DENIED\""), "{path}");
    }
}

async fn reports_render_for_a_month_without_data(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.sign_in("admin", ADMIN_PASSWORD).await;
    // Last month by default (START is in June 2026).
    let (status, page, _) = suite.get(&admin, "/console/reports").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-month=\"2026-05\""), "{page}");
    assert!(page.contains("data-figure=\"responses\" data-current=\"0\""), "{page}");
    assert!(
        page.contains("id=\"no-complaints\"") && page.contains("id=\"complaint-report\""),
        "{page}"
    );
    // A month that is not one is named.
    let (status, page, _) = suite.get(&admin, "/console/reports?month=2026-13").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>month</code>"), "{page}");
    let (status, page, _) = suite
        .get(&admin, "/console/surveys/results?from_month=May&to_month=2026-06")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>from_month</code>"), "{page}");
    // The service's own range rule (at most 36 months) comes back against its field.
    let (status, page, _) = suite
        .get(&admin, "/console/surveys/results?from_month=2020-01&to_month=2026-06")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>to_month</code>"), "{page}");
}
