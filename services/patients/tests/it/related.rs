//! Related persons: create, read, update with etag, list, delete.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use prost_types::FieldMask;
use tonic::Code;

both_backends!(related_person_crud);

async fn related_person_crud(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut guide = svc.patients(Role::Guide);
    let p = create(&svc, zhang_san()).await;
    let spouse = guide
        .create_related_person(CreateRelatedPersonRequest {
            parent: p.name.clone(),
            related_person: Some(RelatedPerson {
                display_name: "李梅".into(),
                relationship: "Spouse".into(),
                phones: vec!["13600000000".into()],
                emergency_contact: true,
                ..Default::default()
            }),
            request_id: "rp-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(spouse.name.starts_with(&format!("{}/relatedPersons/", p.name)));
    assert_eq!(spouse.relationship, "spouse");
    let again = guide
        .create_related_person(CreateRelatedPersonRequest {
            parent: p.name.clone(),
            related_person: Some(RelatedPerson {
                display_name: "李梅".into(),
                relationship: "spouse".into(),
                ..Default::default()
            }),
            request_id: "rp-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, spouse.name, "a retry returns the first record");
    let updated = guide
        .update_related_person(UpdateRelatedPersonRequest {
            related_person: Some(RelatedPerson {
                name: spouse.name.clone(),
                notes: "只在晚上联系".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["notes".into()],
            }),
            etag: spouse.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.notes, "只在晚上联系");
    assert_eq!(updated.display_name, "李梅");
    assert_status(
        guide
            .update_related_person(UpdateRelatedPersonRequest {
                related_person: Some(RelatedPerson {
                    name: spouse.name.clone(),
                    notes: "x".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["notes".into()],
                }),
                etag: spouse.etag.clone(),
            })
            .await,
        Code::Aborted,
        None,
    );
    let list = guide
        .list_related_persons(ListRelatedPersonsRequest {
            parent: p.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.related_persons.len(), 1);
    guide
        .delete_related_person(DeleteRelatedPersonRequest {
            name: spouse.name.clone(),
        })
        .await
        .unwrap();
    assert_status(
        guide
            .get_related_person(GetRelatedPersonRequest {
                name: spouse.name.clone(),
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        guide
            .delete_related_person(DeleteRelatedPersonRequest {
                name: spouse.name.clone(),
            })
            .await,
        Code::NotFound,
        None,
    );
    svc.stop().await;
}
