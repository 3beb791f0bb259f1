//! The life of a patient record: create, read masked and in full, update with etags, delete,
//! undelete, list with filters and pages, merge.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use prost_types::FieldMask;
use tonic::Code;

both_backends!(lifecycle, listing_filters_and_pages, merge_moves_everything);

async fn lifecycle(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut admin = svc.patients(Role::Admin);
    let created = create(&svc, zhang_san()).await;
    assert!(created.name.starts_with("patients/"));
    assert!(created.code.starts_with('P'));
    assert_eq!(created.name_pinyin, "zhang san");
    assert_eq!(created.name_initials, "zs");
    assert_eq!(created.phones, vec!["13800138000"]);
    assert!(created.masked);
    let id = zhang_san().identity_number;
    assert_eq!(created.identity_number, format!("110{}{}", "*".repeat(11), &id[14..]));
    assert_eq!(created.customer_class, CustomerClass::Potential as i32);

    // The full view needs a reason and shows the number in clear.
    let name = created.name.clone();
    assert_status(
        admin
            .get_patient(GetPatientRequest {
                name: name.clone(),
                view: PatientView::Full as i32,
                access_reason: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("access_reason"),
    );
    let full = admin
        .get_patient(GetPatientRequest {
            name: name.clone(),
            view: PatientView::Full as i32,
            access_reason: "registration check".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.identity_number, zhang_san().identity_number);
    assert!(!full.masked);

    // Update with the current etag; a stale one is ABORTED and changes nothing.
    let update = |etag: &str, city: &str| UpdatePatientRequest {
        patient: Some(Patient {
            name: name.clone(),
            address: Some(hcrm_proto::types::Address {
                city: city.into(),
                ..Default::default()
            }),
            vip: true,
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["address.city".into(), "vip".into()],
        }),
        etag: etag.into(),
        reason: "patient called".into(),
    };
    let updated = admin
        .update_patient(update(&created.etag, "深圳市"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.address.as_ref().unwrap().city, "深圳市");
    assert!(updated.vip);
    assert_eq!(updated.display_name, "张三");
    assert_ne!(updated.etag, created.etag);
    assert_status(
        admin.update_patient(update(&created.etag, "广州市")).await,
        Code::Aborted,
        None,
    );
    let again = admin
        .get_patient(GetPatientRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.address.unwrap().city, "深圳市");

    // Recording a death is an update like any other, and lists can leave the deceased out.
    let dead = admin
        .update_patient(UpdatePatientRequest {
            patient: Some(Patient {
                name: name.clone(),
                deceased: true,
                death_date: Some(hcrm_proto::types::Date {
                    year: 2026,
                    month: 1,
                    day: 2,
                }),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["deceased".into(), "death_date".into()],
            }),
            etag: updated.etag.clone(),
            reason: "notified by family".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(dead.deceased);
    let alive = admin
        .list_patients(ListPatientsRequest {
            filter: "deceased = false".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alive.total_size, 0);

    // Soft delete hides it from lists; undelete brings it back.
    let deleted = admin
        .delete_patient(DeletePatientRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    let listed = admin
        .list_patients(ListPatientsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);
    let listed = admin
        .list_patients(ListPatientsRequest {
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    assert_status(
        admin
            .delete_patient(DeletePatientRequest {
                name: name.clone(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    let restored = admin
        .undelete_patient(UndeletePatientRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(restored.delete_time.is_none());
    assert_status(
        admin
            .get_patient(GetPatientRequest {
                name: "patients/does-not-exist".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        None,
    );
    svc.stop().await;
}

async fn listing_filters_and_pages(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut admin = svc.patients(Role::Admin);
    for i in 0..25u32 {
        let p = Patient {
            display_name: format!("病人{i:02}"),
            phones: vec![format!("1390000{i:04}")],
            department: if i % 2 == 0 {
                "cardiology".into()
            } else {
                "oncology".into()
            },
            vip: i % 5 == 0,
            tags: if i % 3 == 0 { vec!["diabetes".into()] } else { vec![] },
            birth_date: Some(hcrm_proto::types::Date {
                year: 1950 + i as i32,
                month: 1,
                day: 1,
            }),
            ..Default::default()
        };
        create(&svc, p).await;
    }
    let list = |filter: &str, order: &str, size: i32, token: &str| ListPatientsRequest {
        filter: filter.into(),
        order_by: order.into(),
        page_size: size,
        page_token: token.into(),
        show_deleted: false,
    };
    let r = admin
        .list_patients(list(r#"department = "cardiology" AND vip = true"#, "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total_size, 3); // 0, 10, 20
    let r = admin
        .list_patients(list(r#"tags:"diabetes" OR birth_date >= "1973-01-01""#, "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total_size, 9 + 1); // multiples of 3 (0..24: 9) plus 23 (1973) … and 24 is both
    let r = admin
        .list_patients(list("NOT vip = true", "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total_size, 20);
    let r = admin
        .list_patients(list("customer_class = POTENTIAL", "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total_size, 25);

    // Pages: stable, complete, no duplicates; tokens are bound to the query.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_patients(list("", "display_name desc", 10, &token))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.patients.iter().map(|p| p.display_name.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert_status(
            admin.list_patients(list("vip = true", "", 10, &token)).await,
            Code::InvalidArgument,
            Some("page_token"),
        );
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[0], "病人24");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 25);
    svc.stop().await;
}

async fn merge_moves_everything(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut admin = svc.patients(Role::Admin);
    let keep = create(
        &svc,
        Patient {
            display_name: "李四".into(),
            phones: vec!["13700000001".into()],
            ..Default::default()
        },
    )
    .await;
    let dup = create(
        &svc,
        Patient {
            display_name: "李四".into(),
            phones: vec!["13700000002".into()],
            identity_type: IdentityType::ResidentId as i32,
            identity_number: resident_id("19800101", 12),
            external_ids: vec![
                ExternalId {
                    source_system: "his".into(),
                    external_id: "H-1".into(),
                },
                ExternalId {
                    source_system: "emr".into(),
                    external_id: "E:7,8".into(),
                },
            ],
            ..Default::default()
        },
    )
    .await;
    admin
        .create_related_person(CreateRelatedPersonRequest {
            parent: dup.name.clone(),
            related_person: Some(RelatedPerson {
                display_name: "王五".into(),
                relationship: "spouse".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    admin
        .record_interaction(RecordInteractionRequest {
            parent: dup.name.clone(),
            interaction: Some(Interaction {
                kind: InteractionKind::OutpatientVisit as i32,
                occur_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() - 3600,
                    nanos: 0,
                }),
                summary: "复诊".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let merged = admin
        .merge_patients(MergePatientsRequest {
            survivor: keep.name.clone(),
            merged: dup.name.clone(),
            reason: "same person".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            merged.moved_related_persons,
            merged.moved_interactions,
            merged.moved_external_ids
        ),
        (1, 1, 2)
    );
    let survivor = merged.survivor.unwrap();
    let ids: Vec<(&str, &str)> = survivor
        .external_ids
        .iter()
        .map(|e| (e.source_system.as_str(), e.external_id.as_str()))
        .collect();
    assert_eq!(ids, vec![("emr", "E:7,8"), ("his", "H-1")]);
    assert_eq!(survivor.phones, vec!["13700000001", "13700000002"]);
    assert!(survivor.identity_number.ends_with(&resident_id("19800101", 12)[14..]));
    assert_eq!(survivor.customer_class, CustomerClass::Active as i32);
    let pointer = admin
        .get_patient(GetPatientRequest {
            name: dup.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pointer.merged_into, keep.name);
    let related = admin
        .list_related_persons(ListRelatedPersonsRequest {
            parent: keep.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(related.related_persons.len(), 1);
    // The identity number now finds the survivor.
    let found = admin
        .search_patients(SearchPatientsRequest {
            query: resident_id("19800101", 12),
            page_size: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.matches[0].patient.as_ref().unwrap().name, keep.name);
    // The audit log says what moved where.
    let audit = svc
        .audit(Role::Auditor)
        .list_audit_events(ListAuditEventsRequest {
            filter: r#"action = "patient.merge""#.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.audit_events.len(), 1);
    assert!(audit.audit_events[0].detail_json.contains("\"moved_interactions\":1"));
    assert_status(
        admin
            .merge_patients(MergePatientsRequest {
                survivor: keep.name.clone(),
                merged: dup.name.clone(),
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    svc.stop().await;
}
