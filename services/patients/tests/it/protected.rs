//! Protected fields are encrypted at rest: canary values appear nowhere in plain text — not in
//! the SQLite file (with its WAL), not in a PostgreSQL dump, not in the logs.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use prost_types::FieldMask;

both_backends!(canaries_never_appear_in_plain_text);

const CANARY_ALLERGY: &str = "CANARY-ALLERGY-7f3a";
const CANARY_INSURANCE: &str = "CANARYINS9182";

async fn canaries_never_appear_in_plain_text(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let identity = resident_id("19671231", 777);
    let card = "4111111111111111";
    let mut p = zhang_san();
    p.identity_number = identity.clone();
    p.bank_card = card.into();
    p.insurance_number = CANARY_INSURANCE.into();
    p.medical_history = Some(MedicalHistory {
        allergies: vec![CANARY_ALLERGY.into()],
        ..Default::default()
    });
    let created = create(&svc, p).await;
    assert_eq!(created.bank_card, "************1111");
    assert_eq!(created.medical_history.as_ref().unwrap().allergies, vec!["***"]);
    // Read in full, update protected data, search by it: every path that touches it.
    let mut guide = svc.patients(Role::Guide);
    let full = guide
        .get_patient(GetPatientRequest {
            name: created.name.clone(),
            view: PatientView::Full as i32,
            access_reason: "canary test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.insurance_number, CANARY_INSURANCE);
    assert_eq!(full.medical_history.unwrap().allergies, vec![CANARY_ALLERGY]);
    guide
        .update_patient(UpdatePatientRequest {
            patient: Some(Patient {
                name: created.name.clone(),
                medical_history: Some(MedicalHistory {
                    allergies: vec![CANARY_ALLERGY.into(), "青霉素".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["medical_history".into()],
            }),
            etag: created.etag.clone(),
            reason: String::new(),
        })
        .await
        .unwrap();
    let found = guide
        .search_patients(SearchPatientsRequest {
            query: identity.clone(),
            page_size: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.matches.len(), 1);

    let canaries = [identity.as_str(), card, CANARY_INSURANCE, CANARY_ALLERGY];
    let stored: Vec<u8> = match backend {
        TestBackend::Sqlite => {
            let path = svc
                .db
                .url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_string();
            let mut bytes = std::fs::read(&path).unwrap();
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        TestBackend::Postgres => {
            let bin = hcrm_kit::testing::postgres_bin_dir().unwrap();
            let out = std::process::Command::new(bin.join("pg_dump"))
                .arg("--dbname")
                .arg(&svc.db.url)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("CREATE TABLE public.patients"),
                "the dump is real"
            );
            out.stdout
        }
    };
    assert!(stored.len() > 1000);
    let logs = captured_logs().lock().unwrap().clone();
    assert!(!logs.is_empty(), "logs were captured");
    for canary in canaries {
        assert!(
            !contains(&stored, canary.as_bytes()),
            "{canary} found in the stored database"
        );
        assert!(!contains(&logs, canary.as_bytes()), "{canary} found in the logs");
    }
    svc.stop().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
