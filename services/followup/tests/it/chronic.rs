//! The hypertension schedule over the API: readings streamed in, follow-ups recorded on their
//! due days, and the due dates the rules promise.

use crate::both_backends;
use crate::helpers::*;
use hcrm_followup::domain::calendar::{from_date, to_date};
use hcrm_followup::domain::chronic;
use hcrm_kit::auth::Role;
use hcrm_proto::followup::*;

both_backends!(the_hypertension_schedule_follows_the_readings);

fn hypertension_template() -> Template {
    Template {
        display_name: "高血压慢病管理".into(),
        kind: TemplateKind::Chronic as i32,
        default_channel: Channel::Phone as i32,
        chronic: Some(chronic::hypertension()),
        ..Default::default()
    }
}

async fn the_hypertension_schedule_follows_the_readings(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    // The built-in hypertension template is there from the first start.
    let template = suite
        .templates(Role::Admin)
        .get_template(GetTemplateRequest {
            name: "templates/builtin-hypertension".into(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(template.chronic, hypertension_template().chronic);
    let patient = suite.patient("周九", "13800138010").await;
    // A clinician of the cardiology department enrols the patient.
    let mut client = suite.followup_in(Role::Clinician, "card");
    let plan = client
        .create_plan(CreatePlanRequest {
            plan: Some(Plan {
                patient: format!("patients/{patient}"),
                template: template.name.clone(),
                department: "card".into(),
                responsible: "dr-wang".into(),
                ..Default::default()
            }),
            steps: vec![],
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.chronic.as_ref().unwrap().phase, ChronicPhase::Early as i32);
    let day0 = today(&suite);

    // The same series as the domain test: stable after three controlled readings, back to the
    // early phase on an uncontrolled one.
    let series = [(2, 130, 85), (5, 128, 82), (9, 135, 80), (20, 165, 102), (22, 150, 95)];
    let mut due_days = Vec::new();
    for day in 0..=30 {
        suite.clock.set(START + day as i64 * DAY);
        for &(d, sys, dia) in series.iter().filter(|r| r.0 == day) {
            let reading = ReadingInput {
                plan: plan.name.clone(),
                reading: Some(Reading {
                    systolic: sys,
                    diastolic: dia,
                    measure_time: Some(hcrm_kit::time::to_timestamp(suite.clock.now())),
                    source: ReadingSource::HomeDevice as i32,
                    external_id: format!("bp-{d}"),
                }),
            };
            let out = client
                .record_readings(futures::stream::iter(vec![RecordReadingsRequest {
                    readings: vec![reading.clone(), reading],
                }]))
                .await
                .unwrap()
                .into_inner();
            assert_eq!((out.accepted, out.duplicates, out.rejected), (1, 1, 0), "day {day}");
        }
        let open = tasks_of(&suite, &plan.name)
            .await
            .into_iter()
            .find(|t| t.status == TaskStatus::Due as i32 || t.status == TaskStatus::Pending as i32)
            .expect("a chronic plan always has an open task");
        let due = from_date(open.due_date.as_ref().unwrap()).unwrap();
        if due == day0 + day {
            due_days.push(day);
            client
                .record_follow_up(RecordFollowUpRequest {
                    task: open.name.clone(),
                    record: Some(FollowUpRecord {
                        channel: Channel::Phone as i32,
                        outcome: Outcome::Reached as i32,
                        content: "血压随访".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
    }
    let expected: Vec<i32> = chronic::simulate(&chronic::hypertension(), 0, &series, 30);
    assert_eq!(due_days, expected);
    assert_eq!(due_days, vec![3, 7, 10, 17, 23, 27, 30]);

    let plan = client
        .get_plan(GetPlanRequest {
            name: plan.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let status = plan.chronic.unwrap();
    assert_eq!(status.phase, ChronicPhase::Early as i32);
    assert_eq!(status.last_reading.unwrap().systolic, 150);
    assert_eq!(status.next_due_date, Some(to_date(day0 + 34)));
    assert!(plan.history.iter().any(|h| h.action == "phase_changed"));
    // The uncontrolled readings alerted the responsible clinician.
    let alerts = eventually("alerts", || async {
        let seen = suite.webhook.lock().unwrap();
        let n = seen
            .bodies
            .iter()
            .filter(|b| b["kind"] == "followup.alert" && b["recipient"]["id"] == "dr-wang")
            .count();
        (n == 2).then_some(n)
    })
    .await;
    assert_eq!(alerts, 2);

    // Implausible readings are rejected one by one; the stream goes on.
    let bad = ReadingInput {
        plan: plan.name.clone(),
        reading: Some(Reading {
            systolic: 400,
            diastolic: 90,
            measure_time: Some(hcrm_kit::time::to_timestamp(suite.clock.now())),
            ..Default::default()
        }),
    };
    let good = ReadingInput {
        plan: plan.name.clone(),
        reading: Some(Reading {
            systolic: 120,
            diastolic: 80,
            measure_time: Some(hcrm_kit::time::to_timestamp(suite.clock.now())),
            ..Default::default()
        }),
    };
    let out = client
        .record_readings(futures::stream::iter(vec![RecordReadingsRequest {
            readings: vec![bad, good],
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((out.accepted, out.rejected), (1, 1));
    assert_eq!(out.rejections[0].index, 0);
    assert_eq!(out.rejections[0].code, "INVALID_ARGUMENT");
    assert!(
        out.rejections[0].message.contains("reading.systolic"),
        "{}",
        out.rejections[0].message
    );
    suite.stop().await;
}
