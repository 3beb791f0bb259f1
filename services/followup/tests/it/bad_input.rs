//! Bad input gets a field-level error and writes nothing; wrong states are FAILED_PRECONDITION.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::followup::*;
use hcrm_proto::patients::Patient;
use tonic::Code;

both_backends!(bad_templates_plans_and_records_are_refused_whole);

async fn bad_templates_plans_and_records_are_refused_whole(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut templates = suite.templates(Role::Admin);

    // Templates: negative offsets, weights that do not add up, an empty schedule.
    let mut bad = discharge_template();
    bad.schedule[1].offset_days = -7;
    bad.score.as_mut().unwrap().items[0].weight = 10.0;
    let status = assert_status(
        templates
            .create_template(CreateTemplateRequest {
                template: Some(bad),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("template.schedule[1].offset_days"),
    );
    assert!(status.message().contains("add up to 100"), "{}", status.message());
    let mut empty = discharge_template();
    empty.schedule.clear();
    assert_status(
        templates
            .create_template(CreateTemplateRequest {
                template: Some(empty),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("template.schedule"),
    );
    assert_eq!(
        suite.count("SELECT COUNT(*) FROM templates").await,
        1,
        "nothing written beside the built-in hypertension template"
    );

    // Revising with a stale etag is ABORTED; archiving stops new plans.
    let template = create_template(&suite, discharge_template()).await;
    let mut revised = template.clone();
    revised.display_name = "心内科出院随访（第二版）".into();
    let v2 = templates
        .revise_template(ReviseTemplateRequest {
            template: Some(revised.clone()),
            reason: "add a question".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    assert_status(
        templates
            .revise_template(ReviseTemplateRequest {
                template: Some(revised),
                reason: String::new(),
            })
            .await,
        Code::Aborted,
        None,
    );
    let v1 = templates
        .get_template(GetTemplateRequest {
            name: template.name.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.display_name, "心内科出院随访");

    // Plans: unknown and deceased patients, both a template and steps, bad steps.
    let mut client = suite.followup(Role::Admin);
    let li = suite.patient("李四", "13800138001").await;
    let plan = |patient: &str| Plan {
        patient: format!("patients/{patient}"),
        template: template.name.clone(),
        department: "card".into(),
        responsible: "nurse-li".into(),
        ..Default::default()
    };
    let create = |plan: Plan, steps: Vec<ManualStep>| CreatePlanRequest {
        plan: Some(plan),
        steps,
        request_id: String::new(),
    };
    assert_status(
        client.create_plan(create(plan("0190-nobody"), vec![])).await,
        Code::NotFound,
        None,
    );
    let deceased = suite
        .patient_with(Patient {
            display_name: "王五".into(),
            deceased: true,
            ..Default::default()
        })
        .await;
    assert_status(
        client.create_plan(create(plan(&deceased), vec![])).await,
        Code::FailedPrecondition,
        None,
    );
    let step = ManualStep {
        due_date: Some(hcrm_proto::types::Date {
            year: 2026,
            month: 2,
            day: 30,
        }),
        window_days: 120,
        ..Default::default()
    };
    let status = assert_status(
        client.create_plan(create(plan(&li), vec![step])).await,
        Code::InvalidArgument,
        Some("plan.template"),
    );
    use tonic_types::StatusExt;
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert!(fields.contains(&"steps[0].due_date".to_string()), "{fields:?}");
    assert!(fields.contains(&"steps[0].window_days".to_string()), "{fields:?}");
    assert_eq!(suite.count("SELECT COUNT(*) FROM plans").await, 0);

    // Records: missing outcome, answers out of range, satisfaction off the scale.
    let plan = client
        .create_plan(create(plan(&li), vec![]))
        .await
        .unwrap()
        .into_inner();
    let task = tasks_of(&suite, &plan.name).await.remove(0);
    let record = |r: FollowUpRecord| RecordFollowUpRequest {
        task: task.name.clone(),
        record: Some(r),
        request_id: String::new(),
    };
    assert_status(
        client
            .record_follow_up(record(FollowUpRecord {
                channel: Channel::Phone as i32,
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
        Some("record.outcome"),
    );
    let out_of_range = FollowUpRecord {
        channel: Channel::Phone as i32,
        outcome: Outcome::Reached as i32,
        score_answers: vec![
            ScoreAnswer {
                key: "mobility".into(),
                value: 9.0,
            },
            ScoreAnswer {
                key: "pain".into(),
                value: 1.0,
            },
        ],
        ..Default::default()
    };
    assert_status(
        client.record_follow_up(record(out_of_range)).await,
        Code::InvalidArgument,
        Some("record.score_answers[0].value"),
    );
    let unhappy = FollowUpRecord {
        channel: Channel::Phone as i32,
        outcome: Outcome::NotReached as i32,
        satisfaction: vec![Satisfaction {
            dimension: Dimension::Attitude as i32,
            rating: 9,
        }],
        complaint_summary: "?".into(),
        ..Default::default()
    };
    assert_status(
        client.record_follow_up(record(unhappy)).await,
        Code::InvalidArgument,
        Some("record.satisfaction[0].rating"),
    );
    assert_eq!(suite.count("SELECT COUNT(*) FROM follow_ups").await, 0);
    assert_eq!(suite.count("SELECT COUNT(*) FROM tasks WHERE state = 'open'").await, 2);

    // Tasks: stale etag, wrong state, unknown and malformed names.
    assert_status(
        client
            .reschedule_task(RescheduleTaskRequest {
                name: task.name.clone(),
                due_date: task.due_date,
                etag: "\"99\"".into(),
                reason: String::new(),
            })
            .await,
        Code::Aborted,
        None,
    );
    let cancelled = client
        .cancel_task(CancelTaskRequest {
            name: task.name.clone(),
            etag: task.etag.clone(),
            reason: "患者转院".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, TaskStatus::Cancelled as i32);
    let status = assert_status(
        client
            .cancel_task(CancelTaskRequest {
                name: task.name.clone(),
                etag: String::new(),
                reason: "again".into(),
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    assert!(status.message().contains("only an open task"), "{}", status.message());
    assert_status(
        client
            .get_task(GetTaskRequest {
                name: "tasks/nope".into(),
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        client.get_task(GetTaskRequest { name: "plans/x".into() }).await,
        Code::InvalidArgument,
        Some("name"),
    );
    assert_status(
        client
            .cancel_plan(CancelPlanRequest {
                name: plan.name.clone(),
                reason: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("reason"),
    );
    assert_status(
        client
            .get_statistics(GetStatisticsRequest {
                start_date: Some(hcrm_proto::types::Date {
                    year: 2026,
                    month: 5,
                    day: 1,
                }),
                end_date: Some(hcrm_proto::types::Date {
                    year: 2026,
                    month: 4,
                    day: 1,
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("start_date"),
    );
    suite.stop().await;
}
