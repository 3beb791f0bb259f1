//! Reminders the day before, patient notices within consent, exam-result notices, retries, and
//! exactly-once delivery with several replicas and one killed mid-batch.

use crate::both_backends;
use crate::helpers::*;
use hcrm_followup::store::plans::{NewPlan, Step};
use hcrm_kit::auth::Role;
use hcrm_kit::notify::{Message, Notifier, NotifyError};
use hcrm_kit::outbox::Dispatcher;
use hcrm_kit::peers::patients::Patients;
use hcrm_proto::followup::*;
use hcrm_proto::patients::{ContactPreferences, Interaction, InteractionKind, Patient, RecordInteractionRequest};
use hcrm_proto::types::ContactChannel;
use std::sync::Arc;

/// A notifier that takes its time: a replica that is slow when it dies.
struct Slow(Arc<dyn Notifier>);

impl Notifier for Slow {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, message: &'a Message) -> futures::future::BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            self.0.send(message).await
        })
    }
}

both_backends!(reminders_go_out_the_day_before_once_and_respect_consent);

fn delivered(suite: &Suite, key: &str) -> u32 {
    suite.webhook.lock().unwrap().by_key.get(key).copied().unwrap_or(0)
}

/// Waits for `key` to arrive, nudging the test clock forward so retry backoffs (which count on
/// it) elapse.
async fn wait_delivered(suite: &Suite, key: &str) {
    eventually(key, || async {
        suite.clock.advance(50_000);
        (delivered(suite, key) > 0).then_some(())
    })
    .await
}

async fn reminders_go_out_the_day_before_once_and_respect_consent(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    create_template(&suite, discharge_template()).await;
    let li = suite.patient("李四", "13800138001").await;
    // Quiet from 09:00 to 12:00 local time; it is 10:00 now.
    let quiet = suite
        .patient_with(Patient {
            display_name: "钱七".into(),
            phones: vec!["13800138003".into()],
            contact_preferences: Some(ContactPreferences {
                allowed_channels: vec![ContactChannel::Sms as i32],
                quiet_hours_start: "09:00".into(),
                quiet_hours_end: "12:00".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let day0 = today(&suite);
    // The first delivery fails twice with 500: it is retried, not lost.
    suite.webhook.lock().unwrap().fail_next = 2;
    suite.discharge(&li, "card", &["I21.9"], "dis-1").await;
    let plan = plans_of(&suite, &li, 1).await.remove(0);
    let tasks = tasks_of(&suite, &plan.name).await;
    let id = |t: &Task| t.name.trim_start_matches("tasks/").to_string();

    // The T+1 task is due tomorrow: its assignee is reminded now.
    let first = format!("reminder-{}-{}", id(&tasks[0]), day0 + 1);
    wait_delivered(&suite, &first).await;
    {
        let seen = suite.webhook.lock().unwrap();
        let body = seen
            .bodies
            .iter()
            .find(|b| b["idempotency_key"] == first.as_str())
            .unwrap();
        assert_eq!(body["kind"], "followup.reminder");
        assert_eq!(body["recipient"]["id"], "department:card");
        assert_eq!(body["payload"]["task"], tasks[0].name.as_str());
        assert_eq!(seen.bad_signatures, 0);
    }

    // Six days later the T+7 re-check is due tomorrow: staff reminder and a patient notice.
    suite.clock.advance(6 * DAY);
    let second = format!("reminder-{}-{}", id(&tasks[1]), day0 + 7);
    let notice = format!("notice-{}-{}", id(&tasks[1]), day0 + 7);
    wait_delivered(&suite, &second).await;
    wait_delivered(&suite, &notice).await;
    {
        let seen = suite.webhook.lock().unwrap();
        let body = seen
            .bodies
            .iter()
            .find(|b| b["idempotency_key"] == notice.as_str())
            .unwrap();
        assert_eq!(body["recipient"]["phone"], "13800138001");
        assert_eq!(body["recipient"]["id"], format!("patients/{li}"));
    }

    // An exam result: the patient hears within the hour, and the SLA counts it.
    let exam = suite
        .patients()
        .record_interaction(RecordInteractionRequest {
            parent: format!("patients/{li}"),
            interaction: Some(Interaction {
                kind: InteractionKind::ExamReport as i32,
                department: "card".into(),
                occur_time: Some(hcrm_kit::time::to_timestamp(suite.clock.now())),
                summary: "心脏彩超".into(),
                source_system: "lis".into(),
                external_id: "exam-1".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let exam_key = format!("exam-{}", exam.name.rsplit('/').next().unwrap());
    wait_delivered(&suite, &exam_key).await;

    // A patient in quiet hours: the notice waits until 12:00 local time.
    let mut followup = suite.followup(Role::Admin);
    let quiet_task = task_due_tomorrow(&suite, &quiet, true).await;
    let quiet_notice = format!("notice-{}-{}", id(&quiet_task), today(&suite) + 1);
    let quiet_reminder = format!("reminder-{}-{}", id(&quiet_task), today(&suite) + 1);
    wait_delivered(&suite, &quiet_reminder).await;
    let waiting = eventually("the postponed notice", || async {
        let list = suite
            .followup(Role::Admin)
            .list_deliveries(ListDeliveriesRequest {
                kind: "followup.patient_notice".into(),
                state: DeliveryState::Pending as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deliveries;
        list.into_iter().find(|d| {
            d.idempotency_key == quiet_notice
                && d.not_before
                    .as_ref()
                    .is_some_and(|t| t.seconds * 1_000_000 > suite.clock.now())
        })
    })
    .await;
    assert_eq!(waiting.attempts, 0, "a postponement is not a failed attempt");
    assert_eq!(delivered(&suite, &quiet_notice), 0);
    suite.clock.advance(2 * 3600 * 1_000_000 + 60_000_000);
    wait_delivered(&suite, &quiet_notice).await;

    // A patient who accepts no channel the notifier reaches gets no notice; it is skipped with
    // the reason, not retried.
    let silent = suite
        .patient_with(Patient {
            display_name: "吴十".into(),
            phones: vec!["13800138004".into()],
            contact_preferences: Some(ContactPreferences {
                allowed_channels: vec![ContactChannel::Wechat as i32],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let silent_task = task_due_tomorrow(&suite, &silent, true).await;
    let silent_notice = format!("notice-{}-{}", id(&silent_task), today(&suite) + 1);
    let skipped = eventually("the skipped notice", || async {
        suite
            .followup(Role::Admin)
            .list_deliveries(ListDeliveriesRequest {
                state: DeliveryState::Skipped as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deliveries
            .into_iter()
            .find(|d| d.idempotency_key == silent_notice)
    })
    .await;
    assert!(
        skipped.last_error.contains("no channel the patient accepts"),
        "{skipped:?}"
    );
    assert_eq!(delivered(&suite, &silent_notice), 0);

    // Exactly once each, whatever the retries; the failures were recorded, not lost.
    {
        let seen = suite.webhook.lock().unwrap();
        let duplicates: Vec<_> = seen.by_key.iter().filter(|(_, n)| **n > 1).collect();
        assert!(duplicates.is_empty(), "duplicates: {duplicates:?}");
    }
    let stats = followup
        .get_statistics(GetStatisticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let sla = stats.exam_notices.unwrap();
    assert_eq!((sla.results, sla.notified_within_hour, sla.late), (1, 1, 0));
    suite.stop().await;
}

/// 2,000 reminders, three dispatchers on separate pools against one PostgreSQL, one killed in
/// the middle of its batch: every reminder reaches the receiver, none twice as an effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_deliver_2000_reminders_once_with_one_killed() {
    let suite = Suite::start_with(TestBackend::Postgres, false).await;
    let patient = suite.patient("孙八", "13800138009").await;
    suite.webhook.lock().unwrap().delay_ms = 2;
    let deps = suite.deps(
        &tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        hcrm_kit::server::shutdown_channel().1,
    );
    let cfg = followup_config(&suite.followup_db, &suite.webhook_url, true);
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(hcrm_followup::open_store(&cfg, &deps).await.unwrap());
    }
    // 2,000 open tasks due tomorrow.
    let tomorrow = stores[0].today() + 1;
    let mut tx = stores[0].db.begin_write().await.unwrap();
    for i in 0..2000 {
        let plan = NewPlan {
            patient_id: patient.clone(),
            template: None,
            department: "card".into(),
            responsible: format!("nurse-{}", i % 7),
            origin: PlanOrigin::Manual,
            anchor_at: suite.clock.now(),
            source: String::new(),
            diagnoses: Vec::new(),
            steps: vec![Step {
                due_day: tomorrow,
                window_days: 1,
                channel: Channel::Phone as i32,
                purpose: "电话随访".into(),
                notify_patient: false,
            }],
        };
        stores[0]
            .insert_plan(&mut tx, &format!("plan-{i}"), "test", &plan)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // Every replica plans: the reminders exist once.
    let mut queued = 0;
    for store in &stores {
        queued += store.plan_reminders().await.unwrap();
    }
    assert_eq!(queued, 2000);

    let patients = Patients::new("followup", &suite.url, deps.authenticator.clone()).unwrap();
    let notifier = hcrm_kit::notify::from_config(&cfg.notifier).unwrap();
    let delivery = hcrm_followup::DeliveryConfig {
        batch: 100,
        concurrency: 8,
        lease_secs: 30,
        ..cfg.delivery.clone()
    };
    let run = |store: hcrm_followup::store::Store, owner: &'static str, notifier: Arc<dyn Notifier>| {
        let dispatcher = Dispatcher {
            outbox: store.outbox.clone(),
            sender: Arc::new(hcrm_followup::jobs::FollowupSender {
                store,
                patients: patients.clone(),
                notifier,
                staff_email: Default::default(),
            }),
            cfg: delivery.clone(),
            owner: owner.to_string(),
        };
        tokio::spawn(async move { while dispatcher.once().await.unwrap() > 0 {} })
    };
    // Replica A is slow (40 ms a send), so it is surely in the middle of its batch when killed.
    let victim = run(stores[0].clone(), "replica-a", Arc::new(Slow(notifier.clone())));
    let b = run(stores[1].clone(), "replica-b", notifier.clone());
    let c = run(stores[2].clone(), "replica-c", notifier.clone());
    // Kill replica A once it is in the middle of its work.
    eventually("replica A sending", || async {
        let n: u32 = suite.webhook.lock().unwrap().by_key.values().sum();
        (n >= 150).then_some(())
    })
    .await;
    victim.abort();
    let _ = victim.await;
    b.await.unwrap();
    c.await.unwrap();
    let stranded = suite
        .count("SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_owner = 'replica-a'")
        .await;
    // Its leases expire; the survivors take the stranded deliveries over.
    suite.clock.advance(31 * 1_000_000);
    assert!(stranded > 0, "replica A was killed holding claims");
    let b = run(stores[1].clone(), "replica-b", notifier.clone());
    let c = run(stores[2].clone(), "replica-c", notifier.clone());
    b.await.unwrap();
    c.await.unwrap();

    assert_eq!(
        suite
            .count("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")
            .await,
        2000
    );
    let (distinct, received, all_reminders) = {
        let seen = suite.webhook.lock().unwrap();
        let received: u32 = seen.by_key.values().sum();
        (
            seen.by_key.len(),
            received,
            seen.by_key.keys().all(|k| k.starts_with("reminder-")),
        )
    };
    let repeated = received as usize - distinct;
    println!(
        "reminders: 2000 queued, {distinct} distinct received, {repeated} repeated sends (killed replica held {stranded} claims)"
    );
    assert_eq!(distinct, 2000, "every reminder arrives");
    // A repeat can only be a send the killed replica had in flight (≤ its concurrency); the
    // receiver recognises it by its Idempotency-Key, so the effects are exactly 2,000.
    assert!(repeated <= delivery.concurrency, "{repeated} repeats");
    assert!(all_reminders);
    suite.stop().await;
}
