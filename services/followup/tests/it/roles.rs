//! Who may do what; department scoping answers NOT_FOUND outside the caller's department.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::followup::*;
use tonic::Code;

both_backends!(roles_and_departments_bound_every_call);

async fn roles_and_departments_bound_every_call(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    create_template(&suite, discharge_template()).await;
    let li = suite.patient("李四", "13800138001").await;
    suite.discharge(&li, "card", &["I21.9"], "dis-1").await;
    let plan = plans_of(&suite, &li, 1).await.remove(0);
    let task = tasks_of(&suite, &plan.name).await.remove(0);
    let record = RecordFollowUpRequest {
        task: task.name.clone(),
        record: Some(FollowUpRecord {
            channel: Channel::Phone as i32,
            outcome: Outcome::Refused as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    };

    // Roles without the grant.
    assert_status(
        suite.followup(Role::Guide).record_follow_up(record.clone()).await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite
            .followup(Role::OpinionAnalyst)
            .list_plans(ListPlansRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite
            .templates(Role::Clinician)
            .create_template(CreateTemplateRequest {
                template: Some(discharge_template()),
                request_id: String::new(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    // A scoped role without a department holds nothing.
    assert_status(
        suite
            .followup(Role::Clinician)
            .get_task(GetTaskRequest {
                name: task.name.clone(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );

    // Another department's clinician: the task does not exist for them.
    let orth = suite.followup_in(Role::Clinician, "orth");
    assert_status(
        orth.clone()
            .get_task(GetTaskRequest {
                name: task.name.clone(),
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        orth.clone().record_follow_up(record.clone()).await,
        Code::NotFound,
        None,
    );
    let listed = orth
        .clone()
        .list_tasks(ListTasksRequest {
            view: TaskView::Overdue as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tasks.is_empty());
    assert_status(
        orth.clone()
            .create_plan(CreatePlanRequest {
                plan: Some(Plan {
                    patient: format!("patients/{li}"),
                    department: "card".into(),
                    responsible: "dr-x".into(),
                    ..Default::default()
                }),
                steps: vec![ManualStep {
                    due_date: Some(hcrm_followup::domain::calendar::to_date(today(&suite) + 3)),
                    ..Default::default()
                }],
                request_id: String::new(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );

    // The department's own head reassigns; its clinician records; the worklist follows.
    let head = suite.followup_in(Role::DepartmentHead, "card");
    let task = head
        .clone()
        .reassign_task(ReassignTaskRequest {
            name: task.name.clone(),
            assignee: "clinician-user".into(),
            etag: task.etag.clone(),
            reason: "主管护士".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(task.assignee, "clinician-user");
    suite.clock.advance(DAY);
    let card = suite.followup_in(Role::Clinician, "card");
    let mine = card
        .clone()
        .list_tasks(ListTasksRequest {
            view: TaskView::MineToday as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mine.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        vec![task.name.clone()]
    );
    card.clone().record_follow_up(record).await.unwrap();
    assert_status(
        head.clone().record_follow_up(RecordFollowUpRequest::default()).await,
        Code::PermissionDenied,
        None,
    );
    // Statistics follow the scope: the orthopaedics clinician sees none of cardiology's calls.
    let stats = orth
        .clone()
        .get_statistics(GetStatisticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.follow_ups, stats.overdue_tasks), (0, 0));
    assert_eq!(stats.exam_notices.unwrap().results, 0);
    let stats = card
        .clone()
        .get_statistics(GetStatisticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.follow_ups, 1);
    // Denials are audited.
    assert!(
        suite
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'permission.denied'")
            .await
            >= 4
    );
    suite.stop().await;
}
