//! Races: retries with one request id, two updates with one etag, concurrent duplicates.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use prost_types::FieldMask;
use tonic::Code;

both_backends!(
    concurrent_writers_publish_every_event_once_in_order,
    same_request_id_ten_times_makes_one_patient,
    one_etag_two_updates_one_wins,
    same_identity_ten_times_makes_one_patient
);

async fn same_request_id_ten_times_makes_one_patient(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let calls = (0..10).map(|_| {
        let mut client = svc.patients(Role::Integration);
        async move {
            client
                .create_patient(CreatePatientRequest {
                    patient: Some(zhang_san()),
                    request_id: "req-42".into(),
                    reason: String::new(),
                })
                .await
                .map(|r| r.into_inner().name)
        }
    });
    let names: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("every retry succeeds"))
        .collect();
    assert!(names.iter().all(|n| *n == names[0]), "{names:?}");
    assert_eq!(svc.count("patients").await, 1);
    svc.stop().await;
}

async fn one_etag_two_updates_one_wins(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let p = create(&svc, zhang_san()).await;
    let calls = ["13911111111", "13922222222"].map(|phone| {
        let mut client = svc.patients(Role::Guide);
        let req = UpdatePatientRequest {
            patient: Some(Patient {
                name: p.name.clone(),
                phones: vec![phone.into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["phones".into()],
            }),
            etag: p.etag.clone(),
            reason: String::new(),
        };
        async move { client.update_patient(req).await }
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let aborted = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Aborted))
        .count();
    assert_eq!((ok, aborted), (1, 1), "{results:?}");
    svc.stop().await;
}

async fn same_identity_ten_times_makes_one_patient(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let calls = (0..10).map(|i| {
        let mut client = svc.patients(Role::Guide);
        let mut p = zhang_san();
        p.display_name = format!("张三{i}");
        async move {
            client
                .create_patient(CreatePatientRequest {
                    patient: Some(p),
                    ..Default::default()
                })
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let winners: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.get_ref().name.clone())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        if let Err(status) = r {
            assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
            assert!(
                status.message().contains(&winners[0]),
                "the error names the existing patient: {status:?}"
            );
        }
    }
    assert_eq!(svc.count("patients").await, 1);
    svc.stop().await;
}

async fn concurrent_writers_publish_every_event_once_in_order(backend: TestBackend) {
    use futures::StreamExt;
    let svc = Service::start(backend).await;
    let calls = (0..20).map(|i| {
        let mut client = svc.patients(Role::Guide);
        let p = Patient {
            display_name: format!("并发{i}"),
            ..Default::default()
        };
        async move {
            client
                .create_patient(CreatePatientRequest {
                    patient: Some(p),
                    ..Default::default()
                })
                .await
        }
    });
    for r in futures::future::join_all(calls).await {
        r.expect("create");
    }
    let mut feed = svc
        .patients(Role::Integration)
        .watch_events(WatchEventsRequest {
            after_sequence: 0,
            types: vec!["patient.created".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let mut sequences = Vec::new();
    let mut resources = std::collections::HashSet::new();
    while sequences.len() < 20 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap();
        sequences.push(event.sequence);
        resources.insert(event.resource);
    }
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert_eq!(resources.len(), 20);
    svc.stop().await;
}
