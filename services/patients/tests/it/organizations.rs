//! Organisations: create, read, update, list with filters, delete.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use prost_types::FieldMask;
use tonic::Code;

both_backends!(organization_crud);

async fn organization_crud(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut orgs = svc.organizations(Role::Guide);
    let centre = orgs
        .create_organization(CreateOrganizationRequest {
            organization: Some(Organization {
                display_name: "南山社区健康服务中心".into(),
                kind: OrganizationKind::CommunityHealthCentre as i32,
                address: Some(hcrm_proto::types::Address {
                    city: "深圳市".into(),
                    ..Default::default()
                }),
                contacts: vec![OrganizationContact {
                    display_name: "陈主任".into(),
                    title: "主任".into(),
                    phone: "0755-26000000".into(),
                    email: String::new(),
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    orgs.create_organization(CreateOrganizationRequest {
        organization: Some(Organization {
            display_name: "华为技术有限公司".into(),
            kind: OrganizationKind::Company as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let list = orgs
        .list_organizations(ListOrganizationsRequest {
            filter: "kind = COMMUNITY_HEALTH_CENTRE".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.organizations.len(), 1);
    assert_eq!(list.organizations[0].contacts[0].phone, "075526000000");
    let updated = orgs
        .update_organization(UpdateOrganizationRequest {
            organization: Some(Organization {
                name: centre.name.clone(),
                phone: "0755-26000001".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["phone".into()],
            }),
            etag: centre.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.phone, "075526000001");
    assert_eq!(updated.contacts.len(), 1);
    orgs.delete_organization(DeleteOrganizationRequest {
        name: centre.name.clone(),
    })
    .await
    .unwrap();
    let list = orgs
        .list_organizations(ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.organizations.len(), 1);
    assert_status(
        orgs.delete_organization(DeleteOrganizationRequest {
            name: centre.name.clone(),
        })
        .await,
        Code::NotFound,
        None,
    );
    assert_status(
        svc.organizations(Role::Inspector)
            .create_organization(CreateOrganizationRequest {
                organization: Some(Organization::default()),
                request_id: String::new(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    svc.stop().await;
}
