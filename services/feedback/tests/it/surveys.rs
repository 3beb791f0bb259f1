//! Questionnaires, invitations and answers over gRPC: versions frozen at publishing, links
//! sent and reminded once, answers checked whole, tokens single-use, low ratings open cases.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::*;
use tonic::Code;

crate::both_backends!(
    answers_keep_their_version_and_tokens_are_single_use,
    a_low_rating_opens_a_case_for_the_department,
    links_are_sent_and_non_responders_reminded_once,
    counter_ratings_count_and_complain,
);

async fn answers_keep_their_version_and_tokens_are_single_use(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut surveys = suite.surveys(Role::Inspector);
    // A malformed questionnaire names each wrong field.
    let mut bad = questionnaire();
    bad.sections[0].questions[2].options.truncate(1);
    bad.sections[0].questions[3].show_if.as_mut().unwrap().question = "nope".into();
    let status = assert_status(
        surveys
            .create_questionnaire(CreateQuestionnaireRequest {
                questionnaire: Some(bad),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("questionnaire.sections[0].questions[2].options"),
    );
    assert!(status.message().contains("show_if.question"), "{}", status.message());
    // Inviting before publishing is refused.
    let draft = surveys
        .create_questionnaire(CreateQuestionnaireRequest {
            questionnaire: Some(questionnaire()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let patient = suite.patient("张伟", "13800000011").await;
    let early = surveys
        .create_invitations(CreateInvitationsRequest {
            questionnaire: draft.name.clone(),
            patients: vec![patient.clone()],
            department: "card".into(),
            ..Default::default()
        })
        .await;
    assert_status(early, Code::FailedPrecondition, None);
    let v1 = surveys
        .publish_questionnaire(PublishQuestionnaireRequest {
            name: draft.name.clone(),
            etag: draft.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.version, 1);
    let invitation = invite(&suite, &v1.name, std::slice::from_ref(&patient), "card", false)
        .await
        .remove(0);
    assert_eq!(invitation.version, 1);
    assert!(invitation.token.len() >= 20 && invitation.link.ends_with(&invitation.token));
    // Version 2 drops the free-text question; the invitation keeps version 1.
    let mut changed = suite
        .surveys(Role::Inspector)
        .get_questionnaire(GetQuestionnaireRequest {
            name: v1.name.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    changed.sections[0].questions.truncate(2);
    let etag = changed.etag.clone();
    let updated = surveys
        .update_questionnaire(UpdateQuestionnaireRequest {
            questionnaire: Some(changed),
            etag,
        })
        .await
        .unwrap()
        .into_inner();
    let v2 = surveys
        .publish_questionnaire(PublishQuestionnaireRequest {
            name: updated.name.clone(),
            etag: updated.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    assert_status(
        surveys
            .publish_questionnaire(PublishQuestionnaireRequest {
                name: v2.name.clone(),
                etag: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    let view = suite
        .surveys(Role::Integration)
        .open_invitation(OpenInvitationRequest {
            token: invitation.token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let q = view.questionnaire.unwrap();
    assert_eq!((q.version, q.sections[0].questions.len()), (1, 4));
    // Bad answers: every wrong field named, nothing stored, the token still usable.
    let mut wrong = answers(7, 4);
    wrong[2].choices = vec!["no".into()];
    let status = assert_status(
        submit(&suite, &invitation.token, wrong).await,
        Code::InvalidArgument,
        Some("answers[0].score"),
    );
    assert!(status.message().contains("\"why\" is required"), "{}", status.message());
    assert_eq!(suite.count("SELECT COUNT(*) FROM responses").await, 0);
    assert_eq!(suite.count("SELECT COUNT(*) FROM ratings").await, 0);
    let r = submit(&suite, &invitation.token, answers(5, 4)).await.unwrap();
    assert_eq!((r.version, r.score, r.case.as_str()), (1, 87.5, ""));
    // Replayed: refused. Forged: not found, like any unknown token.
    assert_status(
        submit(&suite, &invitation.token, answers(5, 5)).await,
        Code::FailedPrecondition,
        None,
    );
    let mut forged = invitation.token.clone();
    forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
    assert_status(submit(&suite, &forged, answers(5, 5)).await, Code::NotFound, None);
    assert_status(
        submit(&suite, "../../etc/passwd", answers(5, 5)).await,
        Code::NotFound,
        None,
    );
    assert_status(
        submit(&suite, "", answers(5, 5)).await,
        Code::InvalidArgument,
        Some("token"),
    );
    // Expired links are refused with a clear message.
    let late = invite(&suite, &v2.name, std::slice::from_ref(&patient), "card", false)
        .await
        .remove(0);
    suite.clock.advance(15 * DAY);
    let status = assert_status(
        submit(&suite, &late.token, answers(5, 5)).await,
        Code::FailedPrecondition,
        None,
    );
    assert!(status.message().contains("expired"), "{}", status.message());
    assert_eq!(suite.count("SELECT COUNT(*) FROM responses").await, 1);
    suite.stop().await;
}

async fn a_low_rating_opens_a_case_for_the_department(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let q = published(&suite).await;
    let patient = suite.patient("赵敏", "13800000012").await;
    let inv = invite(&suite, &q.name, std::slice::from_ref(&patient), "card", false)
        .await
        .remove(0);
    let mut low = answers(4, 1);
    low[2].choices = vec!["no".into()];
    low.push(Answer {
        question: "why".into(),
        text: "病房太吵，晚上睡不着".into(),
        ..Default::default()
    });
    let r = submit(&suite, &inv.token, low).await.unwrap();
    assert!(r.case.starts_with("cases/"), "{r:?}");
    let c = suite
        .cases(Role::Inspector)
        .get_case(GetCaseRequest {
            name: r.case.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.channel, IntakeChannel::Survey as i32);
    assert_eq!(
        (c.department.as_str(), c.category.as_str(), c.patient.as_str()),
        ("card", "environment", patient.as_str())
    );
    assert_eq!(c.owner, "group:inspection");
    assert!(c.description.contains("病房太吵"), "{}", c.description);
    assert_eq!(c.source, r.name);
    suite.stop().await;
}

async fn links_are_sent_and_non_responders_reminded_once(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let q = published(&suite).await;
    let a = suite.patient("甲", "13800000021").await;
    let b = suite.patient("乙", "13800000022").await;
    let invitations = invite(&suite, &q.name, &[a.clone(), b.clone()], "card", true).await;
    let sent = eventually("links sent", || async {
        let sent = suite.delivered("feedback.invitation");
        (sent.len() == 2).then_some(sent)
    })
    .await;
    for inv in &invitations {
        assert!(
            sent.iter().any(|m| m["payload"]["link"] == inv.link.as_str()),
            "{sent:?}"
        );
    }
    submit(&suite, &invitations[0].token, answers(5, 5)).await.unwrap();
    suite.clock.advance(3 * DAY + HOUR);
    let reminded = eventually("one reminder", || async {
        let r = suite.delivered("feedback.invitation_reminder");
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(reminded[0]["recipient"]["id"], b.as_str());
    suite.clock.advance(DAY);
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    assert_eq!(
        suite.delivered("feedback.invitation_reminder").len(),
        1,
        "reminded once, only the non-responder"
    );
    let listed = suite
        .surveys(Role::Inspector)
        .list_invitations(ListInvitationsRequest {
            questionnaire: q.name.clone(),
            state: InvitationState::Answered as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].token.is_empty(), "tokens are shown once, at creation");
    suite.stop().await;
}

async fn counter_ratings_count_and_complain(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut surveys = suite.surveys(Role::Guide);
    let rate = |rating: i32, comment: &str| RecordCounterRatingRequest {
        rating: Some(CounterRating {
            service_point: "pharmacy-3".into(),
            department: "pharmacy".into(),
            rating,
            comment: comment.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    assert_status(
        surveys.record_counter_rating(rate(6, "")).await,
        Code::InvalidArgument,
        Some("rating.rating"),
    );
    surveys.record_counter_rating(rate(5, "")).await.unwrap();
    surveys
        .record_counter_rating(rate(1, "态度很差，直接摔药"))
        .await
        .unwrap();
    assert_eq!(suite.count("SELECT COUNT(*) FROM ratings WHERE dimension = 7").await, 2);
    let cases = suite
        .cases(Role::Inspector)
        .list_cases(ListCasesRequest {
            department: "pharmacy".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].category, "attitude");
    suite.stop().await;
}
