//! Bulk intake from the HIS: 100,000 rows in one stream, upserts, per-row errors.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use tokio_stream::StreamExt;

both_backends!(
    import_hundred_thousand_patients_in_one_stream,
    import_upserts_and_reports_rows
);

fn row(i: usize) -> ImportPatientRow {
    ImportPatientRow {
        source_system: "his".into(),
        external_id: format!("H{i:07}"),
        patient: Some(Patient {
            display_name: format!("患者{i}"),
            phones: vec![format!("139{i:08}")],
            department: ["cardiology", "oncology", "neurology"][i % 3].into(),
            ..Default::default()
        }),
    }
}

async fn import_hundred_thousand_patients_in_one_stream(backend: TestBackend) {
    let svc = Service::start(backend).await;
    const ROWS: usize = 100_000;
    const PER_MESSAGE: usize = 1_000;
    let requests = tokio_stream::iter((0..ROWS / PER_MESSAGE).map(|m| ImportPatientsRequest {
        rows: (m * PER_MESSAGE..(m + 1) * PER_MESSAGE).map(row).collect(),
    }));
    let mut responses = svc
        .patients(Role::Integration)
        .import_patients(requests)
        .await
        .unwrap()
        .into_inner();
    let mut ok = 0;
    let mut last_index = -1;
    while let Some(response) = responses.next().await {
        for r in response.unwrap().results {
            assert_eq!(r.code, 0, "{r:?}");
            assert!(r.index > last_index);
            last_index = r.index;
            ok += 1;
        }
    }
    assert_eq!(ok, ROWS);
    assert_eq!(svc.count("patients").await, ROWS as i64);
    assert_eq!(svc.count("external_ids").await, ROWS as i64);
    assert_eq!(svc.count("audit_log").await, ROWS as i64);
    svc.stop().await;
}

async fn import_upserts_and_reports_rows(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let existing = create(&svc, zhang_san()).await;
    let mut staff_tagged = row(1);
    staff_tagged.patient.as_mut().unwrap().tags = vec!["vip-care".into()];
    let rows = vec![
        row(0),
        staff_tagged,
        // Invalid: bad phone.
        ImportPatientRow {
            patient: Some(Patient {
                display_name: "错号".into(),
                phones: vec!["12ab".into()],
                ..Default::default()
            }),
            ..row(2)
        },
        // Conflict: the identity number belongs to an existing patient.
        ImportPatientRow {
            patient: Some(Patient {
                display_name: "冒名".into(),
                identity_type: IdentityType::ResidentId as i32,
                identity_number: zhang_san().identity_number,
                ..Default::default()
            }),
            ..row(3)
        },
        // Missing external id.
        ImportPatientRow {
            external_id: String::new(),
            ..row(4)
        },
        // The same HIS record twice in one message: created once, then updated.
        row(5),
        row(5),
    ];
    let mut client = svc.patients(Role::Integration);
    let results: Vec<RowResult> = client
        .import_patients(tokio_stream::iter(vec![ImportPatientsRequest { rows }]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap()
        .results;
    let codes: Vec<i32> = results.iter().map(|r| r.code).collect();
    assert_eq!(codes, vec![0, 0, 3, 6, 3, 0, 0], "{results:?}");
    assert!(results[5].created && !results[6].created);
    assert_eq!(results[5].name, results[6].name);
    assert!(
        results[2].message.contains("rows[2].patient.phones[0]"),
        "{}",
        results[2].message
    );
    assert!(results[3].message.contains(&existing.name));
    assert!(results[0].created);

    // The same rows again update instead of creating, keeping what staff added.
    let mut renamed = row(1);
    renamed.patient.as_mut().unwrap().display_name = "改名".into();
    let again: Vec<RowResult> = client
        .import_patients(tokio_stream::iter(vec![ImportPatientsRequest {
            rows: vec![row(0), renamed],
        }]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap()
        .results;
    assert!(again.iter().all(|r| r.code == 0 && !r.created), "{again:?}");
    assert_eq!(again[1].name, results[1].name);
    let p = client
        .get_patient(GetPatientRequest {
            name: again[1].name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.display_name, "改名");
    assert_eq!(p.tags, vec!["vip-care"]);
    assert_eq!(svc.count("patients").await, 4);

    // Interactions by the patient's HIS id.
    let interactions = vec![
        ImportInteractionRow {
            patient: String::new(),
            patient_external_id: "H0000000".into(),
            interaction: Some(Interaction {
                kind: InteractionKind::Admission as i32,
                occur_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() - 60,
                    nanos: 0,
                }),
                source_system: "his".into(),
                external_id: "A-1".into(),
                ..Default::default()
            }),
        },
        ImportInteractionRow {
            patient: String::new(),
            patient_external_id: "H9999999".into(),
            interaction: Some(Interaction {
                kind: InteractionKind::Admission as i32,
                occur_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() - 60,
                    nanos: 0,
                }),
                source_system: "his".into(),
                external_id: "A-2".into(),
                ..Default::default()
            }),
        },
    ];
    let results = client
        .import_interactions(tokio_stream::iter(vec![ImportInteractionsRequest {
            rows: interactions,
        }]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap()
        .results;
    assert_eq!(results.iter().map(|r| r.code).collect::<Vec<_>>(), vec![0, 5]);
    assert_status(
        svc.patients(Role::Guide)
            .import_patients(tokio_stream::iter(vec![ImportPatientsRequest { rows: vec![row(9)] }]))
            .await
            .map(|_| ()),
        tonic::Code::PermissionDenied,
        None,
    );
    svc.stop().await;
}
