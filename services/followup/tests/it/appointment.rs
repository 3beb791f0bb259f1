//! A revisit the patient asks for on a follow-up call: one appointment request in the patients
//! service, however often the call or its delivery is retried; a bad wish writes nothing; a
//! wish the patients service refuses ends as a dead delivery with its reason.

use crate::both_backends;
use crate::helpers::*;
use chrono::Datelike;
use hcrm_followup::domain::calendar::{Calendar, from_date, to_date};
use hcrm_kit::auth::Role;
use hcrm_proto::followup::*;
use hcrm_proto::patients::{self as pt, ListAppointmentRequestsRequest};
use hcrm_proto::types::Date;
use tonic::Code;

both_backends!(
    a_wish_on_a_call_becomes_one_appointment_request,
    a_bad_wish_is_refused_and_writes_nothing,
    a_wish_the_patients_service_refuses_ends_dead_with_its_reason
);

/// A local date `days` after the real today. The patients service checks "not in the past"
/// against the real clock, while the suite's clock stands in 2026-06; dates ahead of both suit
/// both services.
fn real_date(days: i64) -> Date {
    let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

fn reached_with(wish: AppointmentWish) -> FollowUpRecord {
    FollowUpRecord {
        channel: Channel::Phone as i32,
        outcome: Outcome::Reached as i32,
        content: "血压仍偏高，想挂专家号复诊".into(),
        appointment: Some(wish),
        ..Default::default()
    }
}

fn wish() -> AppointmentWish {
    AppointmentWish {
        kind: AppointmentKind::Revisit as i32,
        department: " Neuro ".into(),
        doctor: "doctors/wang".into(),
        earliest_date: Some(real_date(10)),
        latest_date: Some(real_date(20)),
        reason: "复查血压".into(),
    }
}

async fn requests_of(suite: &Suite, patient_id: &str) -> Vec<pt::AppointmentRequest> {
    suite
        .appointments()
        .list_appointment_requests(ListAppointmentRequestsRequest {
            patient: format!("patients/{patient_id}"),
            ..Default::default()
        })
        .await
        .expect("list appointment requests")
        .into_inner()
        .appointment_requests
}

async fn record_of(suite: &Suite, task: &str) -> FollowUpRecord {
    suite
        .followup(Role::Admin)
        .list_follow_ups(ListFollowUpsRequest {
            task: task.into(),
            ..Default::default()
        })
        .await
        .expect("list follow-ups")
        .into_inner()
        .follow_ups
        .remove(0)
}

async fn a_wish_on_a_call_becomes_one_appointment_request(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let wang = suite.patient("王五", "13800138005").await;
    let task = task_due_tomorrow(&suite, &wang, false).await;
    let mut client = suite.followup(Role::Inspector);
    let request = RecordFollowUpRequest {
        task: task.name.clone(),
        record: Some(reached_with(wish())),
        request_id: "call-with-wish".into(),
    };
    let record = client.record_follow_up(request.clone()).await.unwrap().into_inner();
    let kept = record.appointment.clone().expect("the wish is kept on the record");
    assert_eq!(kept.department, "neuro", "trimmed and lower-cased");
    assert_eq!(
        record.appointment_request, "",
        "not known before the patients service answers"
    );

    let made = eventually("the appointment request", || async {
        let list = requests_of(&suite, &wang).await;
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(made.len(), 1, "{made:?}");
    let a = &made[0];
    assert_eq!(a.kind, pt::AppointmentKind::Revisit as i32);
    assert_eq!(a.department, "neuro");
    assert_eq!(a.doctor, "doctors/wang");
    assert_eq!(a.reason, "复查血压");
    assert_eq!(a.source, task.name, "the source is the follow-up task");
    assert_eq!(a.requested_by, "service:followup");
    assert_eq!(a.patient, format!("patients/{wang}"));
    // The days are a window in the hospital's time zone: from the earliest day's start to the
    // latest day's end.
    let cal = Calendar::new(480);
    let earliest = from_date(&real_date(10)).unwrap();
    let latest = from_date(&real_date(20)).unwrap();
    let at = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(hcrm_kit::time::from_timestamp);
    assert_eq!(at(&a.window_start_time), Some(cal.start_of(earliest)));
    assert_eq!(at(&a.window_end_time), Some(cal.start_of(latest + 1)));
    // The record learns the request's name.
    let stored = eventually("the request's name on the record", || async {
        let r = record_of(&suite, &task.name).await;
        (!r.appointment_request.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(stored.appointment_request, a.name);
    assert_eq!(stored.name, record.name);

    // A retry of the call is the same record and queues nothing more.
    let again = client.record_follow_up(request).await.unwrap().into_inner();
    assert_eq!(again.name, record.name);
    assert_eq!(
        suite
            .count("SELECT COUNT(*) FROM deliveries WHERE kind = 'patients.appointment'")
            .await,
        1
    );
    // A delivery sent again (a lease that expired after the patients service answered) asks
    // with the same request id: still one request.
    let pool = suite.sql().await;
    sqlx::query("UPDATE deliveries SET state = 'pending', next_attempt_at = 0 WHERE kind = 'patients.appointment'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    eventually("the second send", || async {
        let n = suite
            .count(
                "SELECT COUNT(*) FROM deliveries WHERE kind = 'patients.appointment' AND state = 'delivered' \
                 AND attempts = 2",
            )
            .await;
        (n == 1).then_some(())
    })
    .await;
    let made = requests_of(&suite, &wang).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].name, a.name);
    suite.stop().await;
}

async fn a_bad_wish_is_refused_and_writes_nothing(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let wang = suite.patient("王五", "13800138005").await;
    let task = task_due_tomorrow(&suite, &wang, false).await;
    let mut client = suite.followup(Role::Inspector);
    let today = today(&suite);
    let cases: Vec<(FollowUpRecord, &str)> = vec![
        (
            reached_with(AppointmentWish {
                kind: AppointmentKind::Unspecified as i32,
                ..wish()
            }),
            "record.appointment.kind",
        ),
        (
            reached_with(AppointmentWish {
                department: "神经内科".into(),
                ..wish()
            }),
            "record.appointment.department",
        ),
        (
            reached_with(AppointmentWish {
                doctor: "dr-wang".into(),
                ..wish()
            }),
            "record.appointment.doctor",
        ),
        (
            reached_with(AppointmentWish {
                earliest_date: Some(to_date(today - 1)),
                ..wish()
            }),
            "record.appointment.earliest_date",
        ),
        (
            reached_with(AppointmentWish {
                latest_date: Some(real_date(5)),
                ..wish()
            }),
            "record.appointment.latest_date",
        ),
        (
            reached_with(AppointmentWish {
                reason: "x".repeat(501),
                ..wish()
            }),
            "record.appointment.reason",
        ),
        (
            FollowUpRecord {
                outcome: Outcome::NotReached as i32,
                content: String::new(),
                ..reached_with(wish())
            },
            "record.appointment",
        ),
    ];
    for (record, field) in cases {
        assert_status(
            client
                .record_follow_up(RecordFollowUpRequest {
                    task: task.name.clone(),
                    record: Some(record),
                    request_id: String::new(),
                })
                .await,
            Code::InvalidArgument,
            Some(field),
        );
    }
    assert_eq!(suite.count("SELECT COUNT(*) FROM follow_ups").await, 0);
    assert_eq!(
        suite
            .count("SELECT COUNT(*) FROM deliveries WHERE kind LIKE 'patients.%'")
            .await,
        0
    );
    let task = client
        .get_task(GetTaskRequest { name: task.name })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(task.attempts, 0, "the task is untouched");
    assert!(requests_of(&suite, &wang).await.is_empty());
    suite.stop().await;
}

async fn a_wish_the_patients_service_refuses_ends_dead_with_its_reason(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let wang = suite.patient("王五", "13800138005").await;
    let task = task_due_tomorrow(&suite, &wang, false).await;
    // Ahead of the suite's clock, so followup takes it, but months behind the real clock the
    // patients service checks against: it refuses the window as past, for good.
    let today = today(&suite);
    let record = suite
        .followup(Role::Inspector)
        .record_follow_up(RecordFollowUpRequest {
            task: task.name.clone(),
            record: Some(reached_with(AppointmentWish {
                kind: AppointmentKind::Expert as i32,
                department: String::new(),
                doctor: String::new(),
                earliest_date: Some(to_date(today + 1)),
                latest_date: Some(to_date(today + 3)),
                reason: String::new(),
            })),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        record.appointment.as_ref().map(|w| w.department.as_str()),
        Some("card"),
        "a wish without a department books in the task's"
    );
    let dead = eventually("the dead delivery", || async {
        let list = suite
            .followup(Role::Admin)
            .list_deliveries(ListDeliveriesRequest {
                kind: "patients.appointment".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deliveries;
        list.into_iter().find(|d| d.state == DeliveryState::Dead as i32)
    })
    .await;
    assert_eq!(dead.attempts, 1, "a refusal is not retried");
    assert!(
        dead.last_error.contains("appointment_request.window"),
        "the reason names the field: {}",
        dead.last_error
    );
    assert!(requests_of(&suite, &wang).await.is_empty());
    assert_eq!(record_of(&suite, &task.name).await.appointment_request, "");
    suite.stop().await;
}
