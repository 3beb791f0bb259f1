//! The timeline and the event feed: a discharge becomes an event other services receive.

use crate::both_backends;
use crate::helpers::*;
use futures::StreamExt;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use std::time::Duration;
use tonic::Code;

both_backends!(timeline_and_discharge_events);

fn at(seconds_ago: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() - seconds_ago,
        nanos: 0,
    })
}

async fn timeline_and_discharge_events(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let p = create(&svc, zhang_san()).await;
    let mut integration = svc.patients(Role::Integration);

    // A watcher that starts before the discharge sees it arrive.
    let mut watcher = svc.patients(Role::Integration);
    let mut feed = watcher
        .watch_events(WatchEventsRequest {
            after_sequence: 0,
            types: vec!["interaction.recorded".into()],
        })
        .await
        .unwrap()
        .into_inner();

    let discharge = Interaction {
        kind: InteractionKind::Discharge as i32,
        department: "cardiology".into(),
        occur_time: at(600),
        summary: "出院".into(),
        source_system: "his".into(),
        external_id: "D-1001".into(),
        details_json: r#"{"ward":"3B"}"#.into(),
        diagnosis_codes: vec!["i10".into(), "E11.9".into()],
        ..Default::default()
    };
    let recorded = integration
        .record_interaction(RecordInteractionRequest {
            parent: p.name.clone(),
            interaction: Some(discharge.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let repeat = integration
        .record_interaction(RecordInteractionRequest {
            parent: p.name.clone(),
            interaction: Some(discharge),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        recorded.name, repeat.name,
        "source system + external id make a record idempotent"
    );

    let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("event in time")
        .unwrap()
        .unwrap();
    assert_eq!(event.r#type, "interaction.recorded");
    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap();
    assert_eq!(payload["kind"], "DISCHARGE");
    assert_eq!(payload["patient"], p.name.as_str());
    assert_eq!(payload["diagnosis_codes"], serde_json::json!(["I10", "E11.9"]));

    for (kind, ago) in [
        (InteractionKind::Appointment, 86_400 * 3),
        (InteractionKind::ExamReport, 86_400),
    ] {
        integration
            .record_interaction(RecordInteractionRequest {
                parent: p.name.clone(),
                interaction: Some(Interaction {
                    kind: kind as i32,
                    occur_time: at(ago),
                    department: "radiology".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let timeline = integration
        .list_interactions(ListInteractionsRequest {
            parent: p.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<i32> = timeline.interactions.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        vec![
            InteractionKind::Discharge as i32,
            InteractionKind::ExamReport as i32,
            InteractionKind::Appointment as i32
        ]
    );
    let radiology = integration
        .list_interactions(ListInteractionsRequest {
            parent: p.name.clone(),
            department: "radiology".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(radiology.interactions.len(), 1);
    let next = integration
        .list_interactions(ListInteractionsRequest {
            parent: p.name.clone(),
            department: "radiology".into(),
            page_size: 1,
            page_token: radiology.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.interactions[0].kind, InteractionKind::Appointment as i32);

    // The visit made the patient active.
    let now = integration
        .get_patient(GetPatientRequest {
            name: p.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.customer_class, CustomerClass::Active as i32);

    // A consumer resuming from its cursor gets exactly what came after.
    let mut resumed = integration
        .watch_events(WatchEventsRequest {
            after_sequence: event.sequence,
            types: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let next_event = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next_event.sequence, event.sequence + 1);

    assert_status(
        svc.patients(Role::Guide)
            .watch_events(WatchEventsRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    svc.stop().await;
}
