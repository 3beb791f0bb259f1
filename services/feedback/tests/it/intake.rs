//! Intake: bad input names its fields and writes nothing, roles and department scopes, retries,
//! and the complaint raised on a follow-up call arriving through the followup feed.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::*;
use hcrm_proto::followup as fu;
use tonic::Code;

crate::both_backends!(
    bad_cases_name_their_fields_and_write_nothing,
    roles_and_department_scopes,
    a_complainants_contact_is_sealed_and_masked,
    a_complaint_on_a_follow_up_call_opens_one_case,
);

async fn bad_cases_name_their_fields_and_write_nothing(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut cases = suite.cases(Role::Guide);
    let create = |c: Case| CreateCaseRequest {
        case: Some(c),
        ..Default::default()
    };
    let status = assert_status(
        cases.create_case(create(Case::default())).await,
        Code::InvalidArgument,
        Some("case.kind"),
    );
    for field in [
        "case.channel",
        "case.department",
        "case.category",
        "case.title",
        "case.description",
    ] {
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    let mut c = complaint("", "outpatient");
    c.subcategory = "parking".into();
    let status = assert_status(
        cases.create_case(create(c)).await,
        Code::InvalidArgument,
        Some("case.subcategory"),
    );
    assert!(
        status.message().contains("registration"),
        "names the valid ones: {}",
        status.message()
    );
    let mut c = complaint("patients/does-not-exist", "outpatient");
    c.contact_phone = "12".into();
    c.attachments = vec!["not a uri".into()];
    let status = assert_status(
        cases.create_case(create(c.clone())).await,
        Code::InvalidArgument,
        Some("case.contact_phone"),
    );
    assert!(status.message().contains("case.attachments[0]"), "{}", status.message());
    c.contact_phone.clear();
    c.attachments.clear();
    assert_status(
        cases.create_case(create(c)).await,
        Code::InvalidArgument,
        Some("case.patient"),
    );
    assert_status(
        cases.create_case(CreateCaseRequest::default()).await,
        Code::InvalidArgument,
        Some("case"),
    );
    assert_eq!(suite.count("SELECT COUNT(*) FROM cases").await, 0);
    assert_eq!(suite.count("SELECT COUNT(*) FROM case_history").await, 0);
    // A retry with the same request id is the same case.
    let retry = CreateCaseRequest {
        case: Some(complaint("", "outpatient")),
        owner: String::new(),
        request_id: "hotline-call-0001".into(),
    };
    let a = cases.create_case(retry.clone()).await.unwrap().into_inner();
    let b = cases.create_case(retry).await.unwrap().into_inner();
    assert_eq!(a.name, b.name);
    assert_eq!(suite.count("SELECT COUNT(*) FROM cases").await, 1);
    // Unknown names and numbers are NOT_FOUND; malformed ones INVALID_ARGUMENT.
    assert_status(
        cases
            .get_case(GetCaseRequest {
                name: "cases/nope".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        cases
            .get_case(GetCaseRequest {
                name: "ZZZZ-ZZZZ".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        cases
            .get_case(GetCaseRequest {
                name: "hello".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("name"),
    );
    suite.stop().await;
}

async fn roles_and_department_scopes(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let card = open_case(&suite, Role::Guide, complaint("", "card")).await;
    let surgery = open_case(&suite, Role::Guide, complaint("", "surgery")).await;
    // Guides take complaints but do not run the workflow.
    let mut guide = suite.cases(Role::Guide);
    let assign = |name: &str| TransitionCaseRequest {
        name: name.into(),
        action: CaseAction::Assign as i32,
        assignee: "x".into(),
        ..Default::default()
    };
    assert_status(
        guide.transition_case(assign(&card.name)).await,
        Code::PermissionDenied,
        None,
    );
    // A department head works their own department's cases; another's do not exist for them.
    let mut head = suite.cases_in(Role::DepartmentHead, "card");
    head.transition_case(assign(&card.name)).await.unwrap();
    assert_status(head.transition_case(assign(&surgery.name)).await, Code::NotFound, None);
    assert_status(
        head.get_case(GetCaseRequest {
            name: surgery.name.clone(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        None,
    );
    let listed = head
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(
        listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        vec![card.name.as_str()]
    );
    // A clinician files complaints for their department only.
    let mut clinician = suite.cases_in(Role::Clinician, "card");
    let other = CreateCaseRequest {
        case: Some(complaint("", "surgery")),
        ..Default::default()
    };
    assert_status(clinician.create_case(other).await, Code::PermissionDenied, None);
    // The gateway's identity files complaints and answers surveys but reads no cases.
    let mut gateway = suite.cases(Role::Integration);
    assert_status(
        gateway
            .get_case(GetCaseRequest {
                name: card.name.clone(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    // Only the inspection group and admins design surveys; the auditor only reads.
    let create = CreateQuestionnaireRequest {
        questionnaire: Some(questionnaire()),
        request_id: String::new(),
    };
    assert_status(
        suite.surveys(Role::Guide).create_questionnaire(create.clone()).await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite.surveys(Role::Auditor).create_questionnaire(create).await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite
            .reports(Role::Guide)
            .get_monthly_report(GetMonthlyReportRequest {
                month: "2026-06".into(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    // Without a token: UNAUTHENTICATED.
    let mut anonymous = case_service_client::CaseServiceClient::new(suite.channel.clone());
    assert_status(
        anonymous.get_taxonomy(GetTaxonomyRequest {}).await,
        Code::Unauthenticated,
        None,
    );
    let taxonomy = suite
        .cases(Role::Integration)
        .get_taxonomy(GetTaxonomyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        taxonomy
            .categories
            .iter()
            .any(|c| c.code == "fees" && c.name_zh == "收费问题")
    );
    // A department head lists only their department's survey invitations.
    let q = published(&suite).await;
    let patient = suite.patient("周七", "13800000061").await;
    invite(&suite, &q.name, std::slice::from_ref(&patient), "card", false).await;
    invite(&suite, &q.name, std::slice::from_ref(&patient), "surgery", false).await;
    let mut head_surveys = hcrm_proto::feedback::survey_service_client::SurveyServiceClient::new(
        suite.authed(Role::DepartmentHead, Some("card")),
    );
    let listed = head_surveys
        .list_invitations(ListInvitationsRequest {
            questionnaire: q.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(
        listed.iter().map(|i| i.department.as_str()).collect::<Vec<_>>(),
        vec!["card"]
    );
    // Another department's case by its number: NOT_FOUND that names only what was asked.
    let status = assert_status(
        head.get_case(GetCaseRequest {
            name: surgery.number.clone(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        None,
    );
    assert!(!status.message().contains(&surgery.name), "{}", status.message());
    // Denials are audited.
    assert!(
        suite
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'permission.denied'")
            .await
            >= 5
    );
    suite.stop().await;
}

async fn a_complaint_on_a_follow_up_call_opens_one_case(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let patient = suite.patient("钱进", "13800000041").await;
    let mut followup = suite.followup();
    let plan = followup
        .create_plan(fu::CreatePlanRequest {
            plan: Some(fu::Plan {
                patient: patient.clone(),
                department: "card".into(),
                responsible: "nurse-li".into(),
                ..Default::default()
            }),
            steps: vec![fu::ManualStep {
                due_date: Some(hcrm_proto::types::Date {
                    year: 2026,
                    month: 6,
                    day: 1,
                }),
                window_days: 1,
                channel: fu::Channel::Phone as i32,
                purpose: "出院回访".into(),
                notify_patient: false,
            }],
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let task = followup
        .list_tasks(fu::ListTasksRequest {
            view: fu::TaskView::All as i32,
            plan: plan.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
        .remove(0);
    // An ordinary call has no fix to confirm.
    let wrong = followup
        .record_follow_up(fu::RecordFollowUpRequest {
            task: task.name.clone(),
            record: Some(fu::FollowUpRecord {
                channel: fu::Channel::Phone as i32,
                outcome: fu::Outcome::Reached as i32,
                fix_effective: Some(true),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await;
    assert_status(wrong, Code::InvalidArgument, Some("record.fix_effective"));
    let record = followup
        .record_follow_up(fu::RecordFollowUpRequest {
            task: task.name.clone(),
            record: Some(fu::FollowUpRecord {
                channel: fu::Channel::Phone as i32,
                outcome: fu::Outcome::Reached as i32,
                content: "患者反映出院结算排队太久".into(),
                complaint_raised: true,
                complaint_summary: "出院结算排队两小时".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let case = eventually("case from the follow-up call", || async {
        let cases = suite
            .cases(Role::Inspector)
            .list_cases(ListCasesRequest {
                patient: patient.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .cases;
        cases.into_iter().next()
    })
    .await;
    assert_eq!(case.channel, IntakeChannel::FollowUp as i32);
    assert_eq!(case.source, record.name);
    assert_eq!(case.owner, record.recorded_by, "the caller who heard it owns it");
    assert_eq!(
        (case.department.as_str(), case.title.as_str()),
        ("card", "出院结算排队两小时")
    );
    // The feed is consumed once: one case, the cursor past the event.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(suite.count("SELECT COUNT(*) FROM cases").await, 1);
    assert!(
        suite
            .count("SELECT position FROM consumer_cursors WHERE feed = 'followup'")
            .await
            > 0
    );
    suite.stop().await;
}

async fn a_complainants_contact_is_sealed_and_masked(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut c = complaint("", "outpatient");
    c.contact_name = "匿名女士".into();
    c.contact_phone = "13800000002".into();
    let c = open_case(&suite, Role::Guide, c).await;
    assert_eq!(
        (c.contact_name.as_str(), c.contact_phone.as_str()),
        ("匿***", "138****0002")
    );
    // Sealed in its own column; not in the document.
    assert_eq!(
        suite
            .count("SELECT COUNT(*) FROM cases WHERE contact_sealed LIKE 'k1:%'")
            .await,
        1
    );
    let get = |view: CaseView, reason: &str| GetCaseRequest {
        name: c.name.clone(),
        view: view as i32,
        access_reason: reason.into(),
    };
    let listed = suite
        .cases(Role::Inspector)
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(listed[0].contact_phone, "138****0002");
    assert_status(
        suite.cases(Role::Guide).get_case(get(CaseView::Full, "回电")).await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite.cases(Role::Inspector).get_case(get(CaseView::Full, "")).await,
        Code::InvalidArgument,
        Some("access_reason"),
    );
    let full = suite
        .cases(Role::Inspector)
        .get_case(get(CaseView::Full, "回电告知处理结果"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (full.contact_name.as_str(), full.contact_phone.as_str()),
        ("匿名女士", "13800000002")
    );
    // Steps later do not lose it.
    let after = step(&suite, &c.name, CaseAction::Assign, |r| {
        r.assignee = "head-outpatient".into()
    })
    .await
    .unwrap();
    assert_eq!(after.contact_phone, "138****0002");
    assert_eq!(
        suite
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'case.read_contact'")
            .await,
        1
    );
    suite.stop().await;
}
