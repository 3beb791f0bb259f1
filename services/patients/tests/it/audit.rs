//! The audit log: written with every change and every unmasked read, hash-chained, verified.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;

both_backends!(audit_chain_detects_tampering);

async fn audit_chain_detects_tampering(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let p = create(&svc, zhang_san()).await;
    svc.patients(Role::Guide)
        .get_patient(GetPatientRequest {
            name: p.name.clone(),
            view: PatientView::Full as i32,
            access_reason: "identity check at counter".into(),
        })
        .await
        .unwrap();
    let mut auditor = svc.audit(Role::Auditor);
    let events = auditor
        .list_audit_events(ListAuditEventsRequest {
            filter: format!(r#"resource = "{}""#, p.name),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["patient.read_protected", "patient.create"]);
    assert_eq!(events[0].actor, "guide-user");
    assert_eq!(events[0].reason, "identity check at counter");
    assert!(!events[0].request_id.is_empty());
    let verified = auditor
        .verify_audit_log(VerifyAuditLogRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact, "{verified:?}");
    assert_eq!(verified.checked, 2);

    // The table refuses edits…
    let pool = svc.sql().await;
    assert!(
        sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE sequence = 1")
            .execute(&pool)
            .await
            .is_err()
    );
    // …and someone who bypasses that (here: drops the trigger) is caught by the chain.
    let drop_trigger = match backend {
        TestBackend::Sqlite => "DROP TRIGGER audit_log_no_update",
        TestBackend::Postgres => "DROP TRIGGER audit_log_no_change ON audit_log",
    };
    sqlx::query(drop_trigger).execute(&pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE sequence = 1")
        .execute(&pool)
        .await
        .unwrap();
    let verified = auditor
        .verify_audit_log(VerifyAuditLogRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!verified.intact);
    assert_eq!(verified.first_broken_sequence, 1);
    assert!(verified.problem.contains("changed"), "{verified:?}");

    // Deleting a row is caught too: the block no longer matches.
    let drop_delete = match backend {
        TestBackend::Sqlite => "DROP TRIGGER audit_log_no_delete",
        TestBackend::Postgres => "SELECT 1",
    };
    sqlx::query(drop_delete).execute(&pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'admin-user' WHERE sequence = 1")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE sequence = 2")
        .execute(&pool)
        .await
        .unwrap();
    let verified = auditor
        .verify_audit_log(VerifyAuditLogRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!verified.intact, "{verified:?}");
    pool.close().await;
    svc.stop().await;
}
