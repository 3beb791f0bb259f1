//! Incidents: opened from an alert or a story, worked through the workflow with notes, linked
//! to a patient, escalated into a complaint case in feedback, and answered publicly only with a
//! second person's approval and without personal data.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use tonic::Code;

crate::both_backends!(
    an_incident_is_worked_and_escalated_to_feedback,
    a_public_reply_needs_a_second_person_and_no_personal_data
);

async fn story(suite: &Suite) -> Story {
    suite.hospital().await;
    suite
        .push(vec![post(
            "https://weibo.com/p/angry",
            "仁心医院急诊科医生态度恶劣，把我母亲晾在走廊两个小时，投诉无门！",
        )])
        .await;
    suite
        .mentions(Role::OpinionAnalyst)
        .list_stories(ListStoriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stories
        .remove(0)
}

async fn an_incident_is_worked_and_escalated_to_feedback(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let story = story(&suite).await;
    let mut analyst = suite.incidents_as("analyst-li");
    let inc = analyst
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                story: story.name.clone(),
                description: "微博投诉，转发较多".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inc.state, IncidentState::Open as i32);
    assert_eq!(inc.owner, "analyst-li");
    assert_eq!(inc.title, story.title);
    let again = analyst
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                story: story.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert_status(again, Code::AlreadyExists, None);
    let linked_story = suite
        .mentions(Role::OpinionAnalyst)
        .get_story(GetStoryRequest {
            name: story.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(linked_story.incident, inc.name);
    // The workflow: a wrong step names the allowed ones; a stale etag is ABORTED.
    let wrong = analyst
        .transition_incident(TransitionIncidentRequest {
            name: inc.name.clone(),
            action: IncidentAction::Reopen as i32,
            reason: "x".into(),
            ..Default::default()
        })
        .await;
    let status = assert_status(wrong, Code::FailedPrecondition, None);
    assert!(
        status.message().contains("INCIDENT_ACTION_ACKNOWLEDGE"),
        "{}",
        status.message()
    );
    let acked = analyst
        .transition_incident(TransitionIncidentRequest {
            name: inc.name.clone(),
            action: IncidentAction::Acknowledge as i32,
            etag: inc.etag.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acked.state, IncidentState::Acknowledged as i32);
    assert_status(
        analyst
            .transition_incident(TransitionIncidentRequest {
                name: inc.name.clone(),
                action: IncidentAction::Respond as i32,
                etag: inc.etag.clone(),
                ..Default::default()
            })
            .await,
        Code::Aborted,
        None,
    );
    let noted = analyst
        .add_incident_note(AddIncidentNoteRequest {
            name: inc.name.clone(),
            text: "已联系急诊科主任核实".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(noted.notes.last().unwrap().text, "已联系急诊科主任核实");
    assert_eq!(noted.notes.last().unwrap().author, "analyst-li");
    // The patient concerned, checked against patients.
    let patient = suite.patient("赵敏", "13800138011").await;
    assert_status(
        analyst
            .update_incident_links(UpdateIncidentLinksRequest {
                name: inc.name.clone(),
                patient: "patients/nobody".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        None,
    );
    let linked = analyst
        .update_incident_links(UpdateIncidentLinksRequest {
            name: inc.name.clone(),
            patient: patient.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(linked.patient, patient);
    // Escalation: feedback opens an online-post complaint and the case comes back linked.
    assert_status(
        analyst
            .escalate_incident(EscalateIncidentRequest {
                name: inc.name.clone(),
                severity: "URGENT".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("department"),
    );
    let escalated = analyst
        .escalate_incident(EscalateIncidentRequest {
            name: inc.name.clone(),
            department: "emergency".into(),
            category: "attitude".into(),
            severity: "HIGH".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(escalated.case_request_time.is_some());
    let case_name = eventually("the case linked back", || async {
        let i = suite
            .incidents(Role::OpinionAnalyst)
            .get_incident(GetIncidentRequest { name: inc.name.clone() })
            .await
            .unwrap()
            .into_inner();
        (!i.case.is_empty()).then_some(i.case)
    })
    .await;
    let case = suite
        .cases()
        .get_case(hcrm_proto::feedback::GetCaseRequest {
            name: case_name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(case.channel, hcrm_proto::feedback::IntakeChannel::OnlinePost as i32);
    assert_eq!(case.kind, hcrm_proto::feedback::CaseKind::Complaint as i32);
    assert_eq!(case.department, "emergency");
    assert_eq!(case.patient, patient);
    assert_eq!(case.severity, hcrm_proto::feedback::Severity::High as i32);
    assert_eq!(case.source, format!("opinion/{}", inc.name));
    assert!(case.attachments.contains(&"https://weibo.com/p/angry".to_string()));
    assert_status(
        analyst
            .escalate_incident(EscalateIncidentRequest {
                name: inc.name.clone(),
                department: "emergency".into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    let resolved = analyst
        .transition_incident(TransitionIncidentRequest {
            name: inc.name.clone(),
            action: IncidentAction::Resolve as i32,
            reason: "已道歉并整改，网友表示理解".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.state, IncidentState::Resolved as i32);
    assert_eq!(resolved.allowed_actions, vec![IncidentAction::Reopen as i32]);
    suite.stop().await;
}

async fn a_public_reply_needs_a_second_person_and_no_personal_data(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let story = story(&suite).await;
    let mut author = suite.incidents_as("analyst-li");
    let mut second = suite.incidents_as("analyst-wang");
    let inc = author
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                story: story.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let patient = suite.patient("赵敏", "13800138011").await;
    author
        .update_incident_links(UpdateIncidentLinksRequest {
            name: inc.name.clone(),
            patient,
            ..Default::default()
        })
        .await
        .unwrap();
    for text in [
        "赵敏女士您好，我们已经了解情况。",
        "请拨打 13800138011 与我们联系。",
        "请提供身份证号 11010519491231002X 以便核实。",
    ] {
        assert_status(
            author
                .draft_reply(DraftReplyRequest {
                    name: inc.name.clone(),
                    text: text.into(),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            Some("text"),
        );
    }
    let drafted = author
        .draft_reply(DraftReplyRequest {
            name: inc.name.clone(),
            text: "感谢您的反馈，医院已成立专项小组调查，并将尽快与您本人联系，服务热线12320。".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let reply = drafted.reply.clone().unwrap();
    assert_eq!(reply.state, ReplyState::Draft as i32);
    assert_eq!(reply.drafted_by, "analyst-li");
    assert_status(
        author
            .approve_reply(ApproveReplyRequest {
                name: inc.name.clone(),
                etag: drafted.etag.clone(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite
            .incidents(Role::Inspector)
            .approve_reply(ApproveReplyRequest {
                name: inc.name.clone(),
                etag: drafted.etag.clone(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        second
            .approve_reply(ApproveReplyRequest {
                name: inc.name.clone(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("etag"),
    );
    // The author redrafts after the approver read the first draft: that approval is refused.
    let redrafted = author
        .draft_reply(DraftReplyRequest {
            name: inc.name.clone(),
            text: "感谢您的反馈，我院已成立专项小组调查处理，结果将及时公布。".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_status(
        second
            .approve_reply(ApproveReplyRequest {
                name: inc.name.clone(),
                etag: drafted.etag.clone(),
            })
            .await,
        Code::Aborted,
        None,
    );
    let approved = second
        .approve_reply(ApproveReplyRequest {
            name: inc.name.clone(),
            etag: redrafted.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let reply = approved.reply.clone().unwrap();
    assert_eq!(reply.state, ReplyState::Approved as i32);
    assert_eq!(reply.approved_by, "analyst-wang");
    assert_eq!(reply.text, redrafted.reply.unwrap().text);
    assert_status(
        second
            .approve_reply(ApproveReplyRequest {
                name: inc.name.clone(),
                etag: approved.etag.clone(),
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    suite.stop().await;
}
