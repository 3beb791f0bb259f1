//! The effect comparison (followed-up vs not, same diagnosis) and the outbox's dead letters.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::followup::*;
use hcrm_proto::patients::{Interaction, InteractionKind, RecordInteractionRequest};

both_backends!(follow_up_effect_is_compared_and_failed_deliveries_end_dead);

fn tune(cfg: &mut hcrm_followup::Config) {
    cfg.min_group_size = 2;
    cfg.delivery.max_attempts = 2;
}

fn reached(score: f64) -> FollowUpRecord {
    FollowUpRecord {
        channel: Channel::Phone as i32,
        outcome: Outcome::Reached as i32,
        score_answers: vec![
            ScoreAnswer {
                key: "mobility".into(),
                value: 4.0,
            },
            ScoreAnswer {
                key: "pain".into(),
                value: 10.0 - score / 10.0,
            },
        ],
        ..Default::default()
    }
}

async fn follow_up_effect_is_compared_and_failed_deliveries_end_dead(backend: TestBackend) {
    let suite = Suite::start_tuned(backend, true, tune).await;
    // The receiver is down for good: reminders fail, are retried once, then dead.
    suite.webhook.lock().unwrap().fail_next = u32::MAX;
    let mut template = discharge_template();
    template.applies_to.as_mut().unwrap().diagnosis_prefixes = vec!["I10".into()];
    create_template(&suite, template).await;
    let mut client = suite.followup(Role::Inspector);
    let mut patients = Vec::new();
    for i in 0..6 {
        let id = suite.patient(&format!("患者{i}"), &format!("1380013810{i}")).await;
        suite.discharge(&id, "card", &["I10"], &format!("dis-{i}")).await;
        patients.push(id);
    }
    for (i, id) in patients.iter().enumerate() {
        let plan = plans_of(&suite, id, 1).await.remove(0);
        let tasks = tasks_of(&suite, &plan.name).await;
        // Patients 0–2 are reached (0 and 1 twice), 3–5 never.
        let calls: Vec<FollowUpRecord> = match i {
            0 | 1 => vec![reached(60.0), reached(80.0 + i as f64 * 10.0)],
            2 => vec![reached(50.0)],
            _ => vec![FollowUpRecord {
                channel: Channel::Phone as i32,
                outcome: Outcome::WrongNumber as i32,
                ..Default::default()
            }],
        };
        for (task, record) in tasks.iter().zip(calls) {
            client
                .record_follow_up(RecordFollowUpRequest {
                    task: task.name.clone(),
                    record: Some(record),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
    }
    // Ten days later two of the unreached are admitted again.
    suite.clock.advance(10 * DAY);
    for id in &patients[3..5] {
        suite
            .patients()
            .record_interaction(RecordInteractionRequest {
                parent: format!("patients/{id}"),
                interaction: Some(Interaction {
                    kind: InteractionKind::Admission as i32,
                    department: "card".into(),
                    occur_time: Some(hcrm_kit::time::to_timestamp(suite.clock.now())),
                    summary: "再入院".into(),
                    source_system: "his".into(),
                    external_id: format!("adm-{id}"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    // Discharges count once their 30-day readmission window has closed.
    let day0 = today(&suite) - 10;
    let request = GetStatisticsRequest {
        start_date: Some(hcrm_followup::domain::calendar::to_date(day0)),
        diagnosis_prefix: "I10".into(),
        ..Default::default()
    };
    let early = client
        .get_statistics(request.clone())
        .await
        .unwrap()
        .into_inner()
        .effect
        .unwrap();
    assert_eq!(
        (early.followed_up_patients, early.not_followed_up_patients),
        (0, 0),
        "too early to compare"
    );
    suite.clock.advance(21 * DAY);
    let effect = eventually("admissions seen", || async {
        let stats = suite
            .followup(Role::Inspector)
            .get_statistics(request.clone())
            .await
            .unwrap()
            .into_inner();
        let effect = stats.effect.unwrap();
        (effect.readmission_not_followed_up.as_ref().unwrap().hits == 2).then_some(effect)
    })
    .await;
    assert_eq!((effect.followed_up_patients, effect.not_followed_up_patients), (3, 3));
    let followed = effect.readmission_followed_up.unwrap();
    assert_eq!((followed.n, followed.hits, followed.rate), (3, 0, Some(0.0)));
    let not = effect.readmission_not_followed_up.unwrap();
    assert!((not.rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!(not.ci_low.unwrap() < not.rate.unwrap() && not.ci_high.unwrap() > not.rate.unwrap());
    // Recovery at the last call of the two followed twice: full mobility (40) plus pain 2 and 1
    // of 10 (48 and 54 of 60), so 88 and 94; one checked once is too few to show.
    let recovery = effect.recovery_followed_up.unwrap();
    assert_eq!(recovery.n, 2);
    assert!((recovery.mean.unwrap() - 91.0).abs() < 1e-9, "{recovery:?}");
    assert_eq!(effect.recovery_checked_once.unwrap().mean, None);
    assert_eq!(effect.significant, Some(false), "three against three proves nothing");

    // Dead letters: a reminder tried twice against a receiver that answers 500, then given up,
    // with the error kept.
    let task = task_due_tomorrow(&suite, &patients[2], false).await;
    let key = format!(
        "reminder-{}-{}",
        task.name.trim_start_matches("tasks/"),
        today(&suite) + 1
    );
    let dead = eventually("a dead reminder", || async {
        suite.clock.advance(50_000);
        let dead = suite
            .followup(Role::Admin)
            .list_deliveries(ListDeliveriesRequest {
                state: DeliveryState::Dead as i32,
                kind: "followup.reminder".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deliveries;
        dead.into_iter().find(|d| d.idempotency_key == key)
    })
    .await;
    assert_eq!(dead.attempts, 2);
    assert!(dead.last_error.contains("500"), "{dead:?}");
    assert!(suite.webhook.lock().unwrap().by_key.is_empty());
    suite.stop().await;
}
