//! Tokens and roles: who may call what, and department scoping without existence leaks.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use tonic::Code;

both_backends!(tokens_roles_and_departments);

async fn tokens_roles_and_departments(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let cardio = create(&svc, zhang_san()).await;
    let onco = create(
        &svc,
        Patient {
            display_name: "王五".into(),
            department: "oncology".into(),
            ..Default::default()
        },
    )
    .await;
    let get = |name: &str| GetPatientRequest {
        name: name.into(),
        ..Default::default()
    };

    // No token, a malformed one, a forged one, an expired one.
    assert_status(
        svc.patients_with_token(None).get_patient(get(&cardio.name)).await,
        Code::Unauthenticated,
        None,
    );
    assert_status(
        svc.patients_with_token(Some("nonsense".into()))
            .get_patient(get(&cardio.name))
            .await,
        Code::Unauthenticated,
        None,
    );
    let forged = hcrm_kit::auth::Authenticator::hs256("another-secret-0123456789abcdef0123")
        .mint("x", &[Role::Admin], None, 60)
        .unwrap();
    assert_status(
        svc.patients_with_token(Some(forged))
            .get_patient(get(&cardio.name))
            .await,
        Code::Unauthenticated,
        None,
    );

    // A clinician sees their department only; others' patients do not exist for them.
    let mut clinician = svc.patients_in(Role::Clinician, "cardiology");
    clinician.get_patient(get(&cardio.name)).await.expect("own department");
    assert_status(clinician.get_patient(get(&onco.name)).await, Code::NotFound, None);
    let listed = clinician
        .list_patients(ListPatientsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    let found = clinician
        .search_patients(SearchPatientsRequest {
            query: "王五".into(),
            page_size: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(found.matches.is_empty());
    // A clinician may read protected data of their own patients, audited.
    let full = clinician
        .get_patient(GetPatientRequest {
            name: cardio.name.clone(),
            view: PatientView::Full as i32,
            access_reason: "ward round".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!full.masked);

    // A department head may read but not change.
    let mut head = svc.patients_in(Role::DepartmentHead, "cardiology");
    head.get_patient(get(&cardio.name)).await.expect("head reads");
    assert_status(
        head.get_patient(GetPatientRequest {
            name: cardio.name.clone(),
            view: PatientView::Full as i32,
            access_reason: "x".into(),
        })
        .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        head.delete_patient(DeletePatientRequest {
            name: cardio.name.clone(),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        None,
    );

    // Roles without a grant are denied, and the denial is audited.
    let mut analyst = svc.patients(Role::OpinionAnalyst);
    assert_status(
        analyst
            .create_patient(CreatePatientRequest {
                patient: Some(zhang_san()),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    let mut inspector = svc.patients(Role::Inspector);
    assert_status(
        inspector
            .get_patient(GetPatientRequest {
                name: cardio.name.clone(),
                view: PatientView::Full as i32,
                access_reason: "x".into(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    let denied = svc
        .audit(Role::Auditor)
        .list_audit_events(ListAuditEventsRequest {
            filter: r#"action = "permission.denied""#.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(denied.audit_events.len(), 4, "{denied:?}");
    assert!(
        denied
            .audit_events
            .iter()
            .any(|e| e.actor == "opinion_analyst-user" && e.resource == "CreatePatient")
    );
    // Only auditors and admins read the audit log.
    assert_status(
        svc.audit(Role::Guide)
            .list_audit_events(ListAuditEventsRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    svc.stop().await;
}
