//! Feedback's free-text answers scored by the opinion service's analyser (through feedback's
//! outbox, so a missing opinion service only delays them) and counted in the monthly report.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::report_service_client::ReportServiceClient;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::*;

crate::both_backends!(free_text_answers_are_scored_and_reported);

fn text(s: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        zh: s.into(),
        en: s.into(),
    })
}

async fn free_text_answers_are_scored_and_reported(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut surveys = SurveyServiceClient::new(suite.authed_as("inspector-zhou", Role::Inspector));
    let q = surveys
        .create_questionnaire(CreateQuestionnaireRequest {
            questionnaire: Some(Questionnaire {
                title: text("门诊满意度"),
                sections: vec![Section {
                    title: text("意见"),
                    questions: vec![
                        Question {
                            id: "attitude".into(),
                            kind: QuestionKind::Rating as i32,
                            text: text("服务态度"),
                            required: true,
                            dimension: Dimension::Attitude as i32,
                            ..Default::default()
                        },
                        Question {
                            id: "comment".into(),
                            kind: QuestionKind::FreeText as i32,
                            text: text("您的意见"),
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
    for i in 0..3 {
        patients.push(suite.patient(&format!("患者{i}"), &format!("1380013800{i}")).await);
    }
    let invitations = surveys
        .create_invitations(CreateInvitationsRequest {
            questionnaire: q.name.clone(),
            patients,
            department: "cardiology".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    let comments = [
        "护士态度冷漠，排队太久，收费也不透明，很失望。",
        "医生非常耐心细致，感谢！",
        "",
    ];
    let mut answering = SurveyServiceClient::new(suite.authed_as("gateway", Role::Integration));
    for (invitation, comment) in invitations.iter().zip(comments) {
        let mut answers = vec![Answer {
            question: "attitude".into(),
            score: Some(4),
            ..Default::default()
        }];
        if !comment.is_empty() {
            answers.push(Answer {
                question: "comment".into(),
                text: comment.into(),
                ..Default::default()
            });
        }
        answering
            .submit_survey_response(SubmitSurveyResponseRequest {
                token: invitation.token.clone(),
                answers,
            })
            .await
            .unwrap();
    }
    let mut reports = ReportServiceClient::new(suite.authed_as("inspector-zhou", Role::Inspector));
    let figures = eventually("both comments scored", || {
        let mut reports = reports.clone();
        async move {
            let c = reports
                .get_monthly_report(GetMonthlyReportRequest {
                    month: "2026-06".into(),
                })
                .await
                .ok()?
                .into_inner()
                .comments?;
            (c.analyzed == 2).then_some(c)
        }
    })
    .await;
    assert_eq!(
        (figures.total, figures.negative, figures.positive),
        (2, 1, 1),
        "{figures:?}"
    );
    assert!(
        figures.negative_topics.iter().any(|t| t.topic == "service_attitude"),
        "{figures:?}"
    );
    let markdown = reports
        .get_monthly_report(GetMonthlyReportRequest {
            month: "2026-06".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .markdown;
    assert!(markdown.contains("2 comments, 2 scored: 1 negative"), "{markdown}");
    suite.stop().await;
}
