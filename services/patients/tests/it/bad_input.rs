//! Bad requests, table-driven: each gets the right code and names the wrong field, and none
//! writes anything.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use hcrm_proto::types::{Address, Date};
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

both_backends!(bad_requests_are_rejected_without_writing);

enum Call {
    Create(Patient),
    CreateWith(CreatePatientRequest),
    Get(GetPatientRequest),
    Update(UpdatePatientRequest),
    List(ListPatientsRequest),
    Search(SearchPatientsRequest),
    Merge(MergePatientsRequest),
    Record(RecordInteractionRequest),
    Timeline(ListInteractionsRequest),
    Related(CreateRelatedPersonRequest),
    Delete(DeletePatientRequest),
}

fn with(f: impl FnOnce(&mut Patient)) -> Patient {
    let mut p = zhang_san();
    f(&mut p);
    p
}

async fn bad_requests_are_rejected_without_writing(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let existing = create(
        &svc,
        Patient {
            display_name: "已存在".into(),
            ..Default::default()
        },
    )
    .await;
    let name = existing.name.clone();
    let etag = existing.etag.clone();
    let update = |paths: &[&str], p: Patient, etag: &str| UpdatePatientRequest {
        patient: Some(Patient {
            name: name.clone(),
            ..p
        }),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|s| s.to_string()).collect(),
        }),
        etag: etag.into(),
        reason: String::new(),
    };
    let interaction = |f: &dyn Fn(&mut Interaction)| {
        let mut i = Interaction {
            kind: InteractionKind::OutpatientVisit as i32,
            occur_time: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        f(&mut i);
        Call::Record(RecordInteractionRequest {
            parent: name.clone(),
            interaction: Some(i),
        })
    };
    let cases: Vec<(&str, Call, Code, Option<&str>)> = vec![
        (
            "no patient",
            Call::CreateWith(CreatePatientRequest::default()),
            Code::InvalidArgument,
            Some("patient"),
        ),
        (
            "empty name",
            Call::Create(with(|p| p.display_name.clear())),
            Code::InvalidArgument,
            Some("patient.display_name"),
        ),
        (
            "blank name",
            Call::Create(with(|p| p.display_name = "   ".into())),
            Code::InvalidArgument,
            Some("patient.display_name"),
        ),
        (
            "long name",
            Call::Create(with(|p| p.display_name = "长".repeat(65))),
            Code::InvalidArgument,
            Some("patient.display_name"),
        ),
        (
            "control char in name",
            Call::Create(with(|p| p.display_name = "张\u{0}三".into())),
            Code::InvalidArgument,
            Some("patient.display_name"),
        ),
        (
            "bad id checksum",
            Call::Create(with(|p| p.identity_number = "110101199003074515".into())),
            Code::InvalidArgument,
            Some("patient.identity_number"),
        ),
        (
            "short id",
            Call::Create(with(|p| p.identity_number = "1101011990".into())),
            Code::InvalidArgument,
            Some("patient.identity_number"),
        ),
        (
            "id without type",
            Call::Create(with(|p| p.identity_type = 0)),
            Code::InvalidArgument,
            Some("patient.identity_type"),
        ),
        (
            "unknown identity type",
            Call::Create(with(|p| p.identity_type = 99)),
            Code::InvalidArgument,
            Some("patient.identity_type"),
        ),
        (
            "passport with symbols",
            Call::Create(with(|p| {
                p.identity_type = IdentityType::Passport as i32;
                p.identity_number = "E12$4567".into();
            })),
            Code::InvalidArgument,
            Some("patient.identity_number"),
        ),
        (
            "letters in phone",
            Call::Create(with(|p| p.phones = vec!["13800abc000".into()])),
            Code::InvalidArgument,
            Some("patient.phones[0]"),
        ),
        (
            "short phone",
            Call::Create(with(|p| p.phones = vec!["123".into()])),
            Code::InvalidArgument,
            Some("patient.phones[0]"),
        ),
        (
            "second phone bad",
            Call::Create(with(|p| p.phones = vec!["13800138000".into(), "x".into()])),
            Code::InvalidArgument,
            Some("patient.phones[1]"),
        ),
        (
            "too many phones",
            Call::Create(with(|p| p.phones = vec!["13800138000".into(); 6])),
            Code::InvalidArgument,
            Some("patient.phones"),
        ),
        (
            "bad email",
            Call::Create(with(|p| p.email = "not-an-email".into())),
            Code::InvalidArgument,
            Some("patient.email"),
        ),
        (
            "31 February",
            Call::Create(with(|p| {
                p.birth_date = Some(Date {
                    year: 1990,
                    month: 2,
                    day: 31,
                })
            })),
            Code::InvalidArgument,
            Some("patient.birth_date"),
        ),
        (
            "month 13",
            Call::Create(with(|p| {
                p.birth_date = Some(Date {
                    year: 1990,
                    month: 13,
                    day: 1,
                })
            })),
            Code::InvalidArgument,
            Some("patient.birth_date"),
        ),
        (
            "future birth",
            Call::Create(with(|p| {
                p.birth_date = Some(Date {
                    year: 2999,
                    month: 1,
                    day: 1,
                })
            })),
            Code::InvalidArgument,
            Some("patient.birth_date"),
        ),
        (
            "born 1800",
            Call::Create(with(|p| {
                p.birth_date = Some(Date {
                    year: 1800,
                    month: 1,
                    day: 1,
                })
            })),
            Code::InvalidArgument,
            Some("patient.birth_date"),
        ),
        (
            "unknown sex",
            Call::Create(with(|p| p.sex = 7)),
            Code::InvalidArgument,
            Some("patient.sex"),
        ),
        (
            "unknown grade",
            Call::Create(with(|p| p.intent_grade = 9)),
            Code::InvalidArgument,
            Some("patient.intent_grade"),
        ),
        (
            "unknown tier",
            Call::Create(with(|p| p.value_tier = -1)),
            Code::InvalidArgument,
            Some("patient.value_tier"),
        ),
        (
            "bad bank card",
            Call::Create(with(|p| p.bank_card = "4111111111111112".into())),
            Code::InvalidArgument,
            Some("patient.bank_card"),
        ),
        (
            "bad postal code",
            Call::Create(with(|p| {
                p.address = Some(Address {
                    postal_code: "51800".into(),
                    ..Default::default()
                })
            })),
            Code::InvalidArgument,
            Some("patient.address.postal_code"),
        ),
        (
            "tag with bar",
            Call::Create(with(|p| p.tags = vec!["a|b".into()])),
            Code::InvalidArgument,
            Some("patient.tags[0]"),
        ),
        (
            "too many tags",
            Call::Create(with(|p| p.tags = (0..40).map(|i| format!("t{i}")).collect())),
            Code::InvalidArgument,
            Some("patient.tags"),
        ),
        (
            "bad department",
            Call::Create(with(|p| p.department = "Cardiology Dept!".into())),
            Code::InvalidArgument,
            Some("patient.department"),
        ),
        (
            "bad quiet hours",
            Call::Create(with(|p| {
                p.contact_preferences = Some(ContactPreferences {
                    quiet_hours_start: "25:00".into(),
                    quiet_hours_end: "07:00".into(),
                    ..Default::default()
                })
            })),
            Code::InvalidArgument,
            Some("patient.contact_preferences.quiet_hours_start"),
        ),
        (
            "unknown channel",
            Call::Create(with(|p| {
                p.contact_preferences = Some(ContactPreferences {
                    allowed_channels: vec![42],
                    ..Default::default()
                })
            })),
            Code::InvalidArgument,
            Some("patient.contact_preferences.allowed_channels[0]"),
        ),
        (
            "bad external id",
            Call::Create(with(|p| {
                p.external_ids = vec![ExternalId {
                    source_system: "HIS SYSTEM".into(),
                    external_id: "1".into(),
                }]
            })),
            Code::InvalidArgument,
            Some("patient.external_ids[0].source_system"),
        ),
        (
            "long notes",
            Call::Create(with(|p| p.notes = "x".repeat(2001))),
            Code::InvalidArgument,
            Some("patient.notes"),
        ),
        (
            "bad request id",
            Call::CreateWith(CreatePatientRequest {
                patient: Some(zhang_san()),
                request_id: "has space".into(),
                reason: String::new(),
            }),
            Code::InvalidArgument,
            Some("request_id"),
        ),
        (
            "duplicate code",
            Call::Create(with(|p| p.code = existing.code.clone())),
            Code::AlreadyExists,
            None,
        ),
        (
            "empty get name",
            Call::Get(GetPatientRequest::default()),
            Code::InvalidArgument,
            Some("name"),
        ),
        (
            "wrong collection",
            Call::Get(GetPatientRequest {
                name: "doctors/1".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("name"),
        ),
        (
            "unknown patient",
            Call::Get(GetPatientRequest {
                name: "patients/0000".into(),
                ..Default::default()
            }),
            Code::NotFound,
            None,
        ),
        (
            "unknown view",
            Call::Get(GetPatientRequest {
                name: name.clone(),
                view: 5,
                access_reason: String::new(),
            }),
            Code::InvalidArgument,
            Some("view"),
        ),
        (
            "no mask",
            Call::Update(UpdatePatientRequest {
                patient: Some(Patient {
                    name: name.clone(),
                    ..Default::default()
                }),
                update_mask: None,
                etag: etag.clone(),
                reason: String::new(),
            }),
            Code::InvalidArgument,
            Some("update_mask"),
        ),
        (
            "unknown mask path",
            Call::Update(update(&["nickname"], Patient::default(), &etag)),
            Code::InvalidArgument,
            Some("update_mask.paths[0]"),
        ),
        (
            "output-only mask path",
            Call::Update(update(&["etag"], Patient::default(), &etag)),
            Code::InvalidArgument,
            Some("update_mask.paths[0]"),
        ),
        (
            "no etag",
            Call::Update(update(&["vip"], Patient::default(), "")),
            Code::InvalidArgument,
            Some("etag"),
        ),
        (
            "stale etag",
            Call::Update(update(
                &["vip"],
                Patient {
                    vip: true,
                    ..Default::default()
                },
                "\"99\"",
            )),
            Code::Aborted,
            None,
        ),
        (
            "update clears name",
            Call::Update(update(&["display_name"], Patient::default(), &etag)),
            Code::InvalidArgument,
            Some("patient.display_name"),
        ),
        (
            "update bad phone",
            Call::Update(update(
                &["phones"],
                Patient {
                    phones: vec!["abc".into()],
                    ..Default::default()
                },
                &etag,
            )),
            Code::InvalidArgument,
            Some("patient.phones[0]"),
        ),
        (
            "negative page size",
            Call::List(ListPatientsRequest {
                page_size: -1,
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("page_size"),
        ),
        (
            "huge page size",
            Call::List(ListPatientsRequest {
                page_size: 100_000,
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("page_size"),
        ),
        (
            "forged page token",
            Call::List(ListPatientsRequest {
                page_token: "eyJ4IjoxfQ.AAAA".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("page_token"),
        ),
        (
            "unknown filter field",
            Call::List(ListPatientsRequest {
                filter: "identity_number = \"1\"".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("filter"),
        ),
        (
            "filter syntax",
            Call::List(ListPatientsRequest {
                filter: "vip = ".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("filter"),
        ),
        (
            "filter injection",
            Call::List(ListPatientsRequest {
                filter: "vip = true; DROP TABLE patients".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("filter"),
        ),
        (
            "bad order",
            Call::List(ListPatientsRequest {
                order_by: "identity_hash".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("order_by"),
        ),
        (
            "empty search",
            Call::Search(SearchPatientsRequest {
                query: " ".into(),
                page_size: 0,
            }),
            Code::InvalidArgument,
            Some("query"),
        ),
        (
            "long search",
            Call::Search(SearchPatientsRequest {
                query: "x".repeat(65),
                page_size: 0,
            }),
            Code::InvalidArgument,
            Some("query"),
        ),
        (
            "search page size",
            Call::Search(SearchPatientsRequest {
                query: "张".into(),
                page_size: 101,
            }),
            Code::InvalidArgument,
            Some("page_size"),
        ),
        (
            "merge with itself",
            Call::Merge(MergePatientsRequest {
                survivor: name.clone(),
                merged: name.clone(),
                reason: String::new(),
            }),
            Code::InvalidArgument,
            Some("merged"),
        ),
        (
            "merge unknown",
            Call::Merge(MergePatientsRequest {
                survivor: name.clone(),
                merged: "patients/nope".into(),
                reason: String::new(),
            }),
            Code::NotFound,
            None,
        ),
        (
            "interaction without kind",
            interaction(&|i| i.kind = 0),
            Code::InvalidArgument,
            Some("interaction.kind"),
        ),
        (
            "interaction without time",
            interaction(&|i| i.occur_time = None),
            Code::InvalidArgument,
            Some("interaction.occur_time"),
        ),
        (
            "interaction in the future",
            interaction(&|i| {
                i.occur_time = Some(Timestamp {
                    seconds: 4_000_000_000,
                    nanos: 0,
                })
            }),
            Code::InvalidArgument,
            Some("interaction.occur_time"),
        ),
        (
            "bad nanos",
            interaction(&|i| i.occur_time = Some(Timestamp { seconds: 1, nanos: -5 })),
            Code::InvalidArgument,
            Some("interaction.occur_time"),
        ),
        (
            "details not an object",
            interaction(&|i| i.details_json = "[1,2]".into()),
            Code::InvalidArgument,
            Some("interaction.details_json"),
        ),
        (
            "external id alone",
            interaction(&|i| i.external_id = "X1".into()),
            Code::InvalidArgument,
            Some("interaction.external_id"),
        ),
        (
            "timeline unknown kind",
            Call::Timeline(ListInteractionsRequest {
                parent: name.clone(),
                kinds: vec![77],
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some("kinds[0]"),
        ),
        (
            "related without relationship",
            Call::Related(CreateRelatedPersonRequest {
                parent: name.clone(),
                related_person: Some(RelatedPerson {
                    display_name: "某人".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }),
            Code::InvalidArgument,
            Some("related_person.relationship"),
        ),
        (
            "related for unknown patient",
            Call::Related(CreateRelatedPersonRequest {
                parent: "patients/nope".into(),
                related_person: Some(RelatedPerson {
                    display_name: "某人".into(),
                    relationship: "son".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }),
            Code::NotFound,
            None,
        ),
        (
            "delete with stale etag",
            Call::Delete(DeletePatientRequest {
                name: name.clone(),
                etag: "\"7\"".into(),
                reason: String::new(),
            }),
            Code::Aborted,
            None,
        ),
        (
            "long reason",
            Call::Delete(DeletePatientRequest {
                name: name.clone(),
                etag: String::new(),
                reason: "r".repeat(300),
            }),
            Code::InvalidArgument,
            Some("reason"),
        ),
    ];
    assert!(cases.len() >= 40, "at least 40 bad requests");
    let before = (
        svc.count("patients").await,
        svc.count("audit_log").await,
        svc.count("events").await,
        svc.count("interactions").await,
    );
    let mut client = svc.patients(Role::Admin);
    for (label, call, code, field) in cases {
        let result = match call {
            Call::Create(p) => client
                .create_patient(CreatePatientRequest {
                    patient: Some(p),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            Call::CreateWith(r) => client.create_patient(r).await.map(|_| ()),
            Call::Get(r) => client.get_patient(r).await.map(|_| ()),
            Call::Update(r) => client.update_patient(r).await.map(|_| ()),
            Call::List(r) => client.list_patients(r).await.map(|_| ()),
            Call::Search(r) => client.search_patients(r).await.map(|_| ()),
            Call::Merge(r) => client.merge_patients(r).await.map(|_| ()),
            Call::Record(r) => client.record_interaction(r).await.map(|_| ()),
            Call::Timeline(r) => client.list_interactions(r).await.map(|_| ()),
            Call::Related(r) => client.create_related_person(r).await.map(|_| ()),
            Call::Delete(r) => client.delete_patient(r).await.map(|_| ()),
        };
        let status = match result {
            Ok(()) => panic!("{label}: expected {code:?}, the call succeeded"),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "{label}: {status:?}");
        if let Some(field) = field {
            use tonic_types::StatusExt;
            let details = status.get_error_details();
            let violations = details
                .bad_request()
                .map(|b| b.field_violations.clone())
                .unwrap_or_default();
            assert!(
                violations.iter().any(|v| v.field == field),
                "{label}: no violation for {field} in {violations:?}"
            );
        }
    }
    let after = (
        svc.count("patients").await,
        svc.count("audit_log").await,
        svc.count("events").await,
        svc.count("interactions").await,
    );
    assert_eq!(before, after, "a rejected request wrote something");
    let still = client
        .get_patient(GetPatientRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.etag, etag);
    svc.stop().await;
}
