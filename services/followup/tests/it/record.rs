//! Recording follow-ups: scores, retries, the timeline, the complaint event, statistics.

use crate::both_backends;
use crate::helpers::*;
use futures::StreamExt;
use hcrm_kit::auth::Role;
use hcrm_proto::followup::*;
use hcrm_proto::patients::{InteractionKind, ListInteractionsRequest};
use tonic::Code;

both_backends!(a_follow_up_closes_its_task_reaches_the_timeline_and_raises_complaints);

fn reached() -> FollowUpRecord {
    FollowUpRecord {
        channel: Channel::Phone as i32,
        outcome: Outcome::Reached as i32,
        content: "恢复良好，伤口不痛".into(),
        score_answers: vec![
            ScoreAnswer {
                key: "mobility".into(),
                value: 3.0,
            },
            ScoreAnswer {
                key: "pain".into(),
                value: 2.0,
            },
        ],
        health_guidance: "低盐饮食，按时服药".into(),
        satisfaction: vec![
            Satisfaction {
                dimension: Dimension::Attitude as i32,
                rating: 5,
            },
            Satisfaction {
                dimension: Dimension::Communication as i32,
                rating: 4,
            },
        ],
        complaint_raised: true,
        complaint_summary: "出院结算排队太久".into(),
        ..Default::default()
    }
}

async fn a_follow_up_closes_its_task_reaches_the_timeline_and_raises_complaints(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    create_template(&suite, discharge_template()).await;
    let li = suite.patient("李四", "13800138001").await;
    suite.discharge(&li, "card", &["I21.9"], "dis-1").await;
    let plan = plans_of(&suite, &li, 1).await.remove(0);
    let tasks = tasks_of(&suite, &plan.name).await;
    let mut client = suite.followup(Role::Inspector);

    let request = RecordFollowUpRequest {
        task: tasks[0].name.clone(),
        record: Some(reached()),
        request_id: "call-1".into(),
    };
    let record = client.record_follow_up(request.clone()).await.unwrap().into_inner();
    // 3 of 0–4 on a 40-point item and pain 2 of 0–10 (lower is better) on 60: 30 + 48.
    assert_eq!(record.recovery_score, Some(78.0));
    assert_eq!(record.attempt, 1);
    assert_eq!(record.recorded_by, "inspector-user");
    assert_eq!(record.patient, format!("patients/{li}"));
    // A retry with the same request id is the same record; a second recording is refused.
    let again = client.record_follow_up(request).await.unwrap().into_inner();
    assert_eq!(again.name, record.name);
    let status = assert_status(
        client
            .record_follow_up(RecordFollowUpRequest {
                task: tasks[0].name.clone(),
                record: Some(reached()),
                request_id: "call-2".into(),
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    assert!(status.message().contains("recorded once"), "{}", status.message());
    let task = client
        .get_task(GetTaskRequest {
            name: tasks[0].name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(task.status, TaskStatus::Done as i32);
    assert_eq!(task.follow_up, record.name);
    assert_eq!(suite.count("SELECT COUNT(*) FROM follow_ups").await, 1);

    // The timeline gets it through the outbox.
    let record_id = record.name.trim_start_matches("followUps/").to_string();
    eventually("the timeline entry", || async {
        let entries = suite
            .patients()
            .list_interactions(ListInteractionsRequest {
                parent: format!("patients/{li}"),
                kinds: vec![InteractionKind::FollowUp as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .interactions;
        entries
            .iter()
            .any(|i| i.external_id == record_id && i.source_system == "hcrm-followup")
            .then_some(())
    })
    .await;

    // The complaint is an event feedback can pick up.
    let mut events = suite
        .followup(Role::Admin)
        .watch_events(WatchEventsRequest {
            after_sequence: 0,
            types: vec!["followup.complaint_raised".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let event = events.next().await.unwrap().unwrap();
    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap();
    assert_eq!(payload["summary"], "出院结算排队太久");
    assert_eq!(payload["patient"], format!("patients/{li}"));
    assert_eq!(payload["department"], "card");
    drop(events);

    // Not reached: the task waits for tomorrow's retry, and after the third attempt is missed.
    let not_reached = FollowUpRecord {
        channel: Channel::Phone as i32,
        outcome: Outcome::NotReached as i32,
        ..Default::default()
    };
    let today = today(&suite);
    for attempt in 1..=3 {
        let r = client
            .record_follow_up(RecordFollowUpRequest {
                task: tasks[1].name.clone(),
                record: Some(not_reached.clone()),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.attempt, attempt);
        let task = client
            .get_task(GetTaskRequest {
                name: tasks[1].name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if attempt < 3 {
            assert_eq!(task.due_date, Some(hcrm_followup::domain::calendar::to_date(today + 1)));
            assert_eq!(task.attempts, attempt);
            assert_ne!(task.status, TaskStatus::Done as i32);
        } else {
            assert_eq!(task.status, TaskStatus::Missed as i32);
        }
    }
    let plan = client
        .get_plan(GetPlanRequest {
            name: plan.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.state, PlanState::Completed as i32);
    let actions: Vec<_> = plan.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions.first(), Some(&"created"));
    assert_eq!(actions.last(), Some(&"completed"));

    // Statistics: four attempts by phone, one reached; groups under 30 show no rate.
    let stats = client
        .get_statistics(GetStatisticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.follow_ups, 4);
    assert_eq!(stats.success_by_channel.len(), 1);
    let phone = &stats.success_by_channel[0];
    assert_eq!((phone.key.as_str(), phone.n, phone.hits), ("phone", 4, 1));
    assert_eq!(phone.rate, None, "a group of 4 is too small to show");
    assert!(
        stats
            .satisfaction
            .iter()
            .any(|m| m.key == "card/attitude" && m.n == 1 && m.mean.is_none())
    );
    assert_eq!(stats.success_by_staff[0].key, "inspector-user");

    // The next day the job rolls yesterday up; the figures read from the rollups are the same.
    let day = crate::helpers::today(&suite);
    suite.clock.advance(DAY);
    eventually("the rollup", || async {
        (suite.count("SELECT COUNT(*) FROM stats_dirty").await == 0).then_some(())
    })
    .await;
    // Unmarked and recomputed in one transaction: a clean day has its rollup.
    assert!(suite.count("SELECT COUNT(*) FROM stats_daily").await > 0);
    let rolled = client
        .get_statistics(GetStatisticsRequest {
            start_date: Some(hcrm_followup::domain::calendar::to_date(day)),
            end_date: Some(hcrm_followup::domain::calendar::to_date(day)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rolled.follow_ups, stats.follow_ups);
    assert_eq!(rolled.success_by_channel, stats.success_by_channel);
    assert_eq!(rolled.success_by_hour, stats.success_by_hour);
    assert_eq!(rolled.success_by_department, stats.success_by_department);
    assert_eq!(rolled.success_by_staff, stats.success_by_staff);
    assert_eq!(rolled.satisfaction, stats.satisfaction);
    suite.stop().await;
}

/// Retries of one RecordFollowUp racing each other (a client that timed out and retried while
/// the first call was still running) make one record and all get it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_retries_of_a_recording_make_one_record() {
    for backend in [TestBackend::Postgres, TestBackend::Sqlite] {
        let suite = Suite::start(backend).await;
        create_template(&suite, discharge_template()).await;
        let li = suite.patient("李四", "13800138001").await;
        suite.discharge(&li, "card", &["I21.9"], "dis-1").await;
        let plan = plans_of(&suite, &li, 1).await.remove(0);
        let task = tasks_of(&suite, &plan.name).await.remove(0);
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let mut client = suite.followup(Role::Inspector);
                let request = RecordFollowUpRequest {
                    task: task.name.clone(),
                    record: Some(reached()),
                    request_id: "same-call".into(),
                };
                tokio::spawn(async move { client.record_follow_up(request).await })
            })
            .collect();
        let mut names = Vec::new();
        for call in calls {
            names.push(call.await.unwrap().expect("every retry succeeds").into_inner().name);
        }
        names.dedup();
        assert_eq!(names.len(), 1, "{backend:?}: {names:?}");
        assert_eq!(suite.count("SELECT COUNT(*) FROM follow_ups").await, 1);
        suite.stop().await;
    }
}
