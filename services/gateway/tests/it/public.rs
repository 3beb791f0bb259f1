//! The patients' pages: a survey answered from its link (once; a low rating opens a case the
//! console shows), and a complaint filed with a reference number back.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::*;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, Patient};
use reqwest::StatusCode;

crate::both_backends!(a_patient_answers_a_survey_from_the_link, a_patient_files_a_complaint);

fn text(zh: &str, en: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        zh: zh.into(),
        en: en.into(),
    })
}

/// A published questionnaire with a rating, a follow-up question shown for low ratings and a
/// comment; one invitation per patient. Returns the tokens.
pub async fn invitations(suite: &Suite, count: usize) -> Vec<String> {
    let mut surveys = SurveyServiceClient::new(suite.authed("inspector-zhou", Role::Inspector));
    let q = surveys
        .create_questionnaire(CreateQuestionnaireRequest {
            questionnaire: Some(Questionnaire {
                title: text("出院患者满意度调查", "Discharge satisfaction survey"),
                sections: vec![Section {
                    title: text("总体评价", "Overall"),
                    questions: vec![
                        Question {
                            id: "attitude".into(),
                            kind: QuestionKind::Rating as i32,
                            text: text("医护人员的服务态度", "Attitude of the staff"),
                            required: true,
                            dimension: Dimension::Attitude as i32,
                            ..Default::default()
                        },
                        Question {
                            id: "what".into(),
                            kind: QuestionKind::FreeText as i32,
                            text: text("哪里让您不满意？", "What went wrong?"),
                            show_if: Some(ShowIf {
                                question: "attitude".into(),
                                values: vec!["1".into(), "2".into()],
                            }),
                            ..Default::default()
                        },
                    ],
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let q = surveys
        .publish_questionnaire(PublishQuestionnaireRequest {
            name: q.name,
            etag: q.etag,
        })
        .await
        .unwrap()
        .into_inner();
    let mut patients = Vec::new();
    let mut client = PatientServiceClient::new(suite.authed("admin", Role::Admin));
    for i in 0..count {
        let p = client
            .create_patient(CreatePatientRequest {
                patient: Some(Patient {
                    display_name: format!("患者{i}"),
                    phones: vec![format!("1390013900{i}")],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        patients.push(p.name);
    }
    surveys
        .create_invitations(CreateInvitationsRequest {
            questionnaire: q.name,
            patients,
            department: "cardiology".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
        .into_iter()
        .map(|i| i.token)
        .collect()
}

async fn a_patient_answers_a_survey_from_the_link(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let tokens = invitations(&suite, 2).await;
    let link = format!("/s/{}", tokens[0]);

    let response = suite
        .http
        .get(suite.url(&link))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("Attitude of the staff"), "{page}");
    assert!(!page.contains("患者0"), "the page shows nothing about the patient");

    // A low rating with the follow-up answer: accepted, and it opens a case.
    let response = suite
        .http
        .post(suite.url(&link))
        .form(&[("q.attitude", "1"), ("q.what", "护士态度生硬，呼叫不应")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("thanks"));

    // The link works once.
    let response = suite.http.get(suite.url(&link)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    let response = suite
        .http
        .post(suite.url(&link))
        .form(&[("q.attitude", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    // Unknown and malformed links are a friendly 404.
    for bad in ["/s/AAAAAAAAAAAAAAAAAAAAAAAA", "/s/..%2F..%2Fetc"] {
        let response = suite.http.get(suite.url(bad)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    // A high rating with an answer to the hidden question: the hidden answer is dropped, not refused.
    let response = suite
        .http
        .post(suite.url(&format!("/s/{}", tokens[1])))
        .form(&[("q.attitude", "5"), ("q.what", "n/a")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // The low rating's case is in the inbox.
    let mut cases = CaseServiceClient::new(suite.authed("inspector-zhou", Role::Inspector));
    let opened = hcrm_kit::testing::eventually("a case from the low rating", || {
        let mut cases = cases.clone();
        async move {
            let list = cases
                .list_cases(ListCasesRequest::default())
                .await
                .ok()?
                .into_inner()
                .cases;
            list.into_iter().find(|c| c.channel == IntakeChannel::Survey as i32)
        }
    })
    .await;
    assert_eq!(opened.department, "cardiology");
    let _ = cases
        .get_case(GetCaseRequest {
            name: opened.name,
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn a_patient_files_a_complaint(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let page = suite
        .http
        .get(suite.url("/complaint"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("value=\"waiting\""),
        "categories from the taxonomy: {page}"
    );

    // Missing fields are named and nothing is filed.
    let response = suite
        .http
        .post(suite.url("/complaint"))
        .form(&[
            ("kind", "complaint"),
            ("category", "waiting"),
            ("title", ""),
            ("description", ""),
            ("request_id", "c-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("<code>title</code>") && text.contains("<code>description</code>"),
        "{text}"
    );

    let form = [
        ("kind", "complaint"),
        ("category", "waiting"),
        ("department", "radiology"),
        ("title", "CT 检查等了三个小时"),
        ("description", "预约了上午九点的CT，十二点才做上，没有人解释原因。"),
        ("name", "刘女士"),
        ("phone", "13700137000"),
        ("request_id", "c-2"),
    ];
    let response = suite
        .http
        .post(suite.url("/complaint"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let at = text.find("id=\"number\">").expect("a reference number") + "id=\"number\">".len();
    let number = text[at..].split('<').next().unwrap().to_string();
    assert_eq!(number.len(), 9, "{number}");
    // Sent twice (a double tap): still one case.
    let again = suite
        .http
        .post(suite.url("/complaint"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains(&number), "{again}");

    let mut cases = CaseServiceClient::new(suite.authed("inspector-zhou", Role::Inspector));
    let case = cases
        .get_case(GetCaseRequest {
            name: number.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(case.channel, IntakeChannel::Web as i32);
    assert_eq!(case.department, "radiology");
    assert_eq!(case.owner, "group:inspection");
    assert_eq!(
        case.contact_phone, "137****7000",
        "the contact is sealed and read masked"
    );
    let all = cases
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(all.len(), 1);
}
