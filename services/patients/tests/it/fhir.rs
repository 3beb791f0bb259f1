//! FHIR R4: importing realistic Chinese hospital resources, exporting them back, round trips
//! into a fresh service, masking, bad input and permissions.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use hcrm_proto::types::{Address, Date};
use serde_json::{Value, json};
use tonic::Code;

both_backends!(
    realistic_resources_import_and_export_their_mapped_fields,
    unmapped_elements_are_reported_exactly,
    a_bundle_imports_patients_with_their_related_persons,
    wrong_entries_fail_alone_by_fhir_path,
    an_export_imports_into_a_fresh_service_unchanged,
    exports_are_masked_unless_full_and_permissions_hold
);

const RESIDENT_ID: &str = "urn:oid:2.16.156.10011.1.3";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/it/fixtures/fhir/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn import(svc: &Service, json: &str, source: &str, dry_run: bool) -> Result<ImportFhirResponse, tonic::Status> {
    svc.fhir(Role::Integration)
        .import_fhir(ImportFhirRequest {
            resource_json: json.to_string(),
            source_system: source.into(),
            dry_run,
        })
        .await
        .map(|r| r.into_inner())
}

async fn export_full(svc: &Service, name: &str) -> Value {
    let r = svc
        .fhir(Role::Admin)
        .export_patient(ExportPatientRequest {
            name: name.into(),
            view: PatientView::Full as i32,
            access_reason: "转诊资料交换".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.masked);
    serde_json::from_str(&r.resource_json).unwrap()
}

fn patient_of(bundle: &Value) -> &Value {
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    &bundle["entry"][0]["resource"]
}

fn issues(list: &[FhirIssue]) -> Vec<(&str, &str)> {
    list.iter().map(|i| (i.path.as_str(), i.reason.as_str())).collect()
}

fn digits(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_digit()).collect()
}

async fn full_patient(svc: &Service, name: &str) -> Patient {
    svc.patients(Role::Admin)
        .get_patient(GetPatientRequest {
            name: name.into(),
            view: PatientView::Full as i32,
            access_reason: "check".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn realistic_resources_import_and_export_their_mapped_fields(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let input: Value = serde_json::from_str(&fixture("patient-zhang-wei.json")).unwrap();

    // A dry run writes nothing and says what would happen.
    let dry = import(&svc, &input.to_string(), "regional", true).await.unwrap();
    assert_eq!(dry.results.len(), 1);
    assert_eq!(dry.results[0].outcome, FhirImportOutcome::Created as i32);
    assert_eq!(svc.count("patients").await, 0);

    let out = import(&svc, &input.to_string(), "regional", false).await.unwrap();
    let r = &out.results[0];
    assert_eq!(r.outcome, FhirImportOutcome::Created as i32, "{r:?}");
    assert_eq!(r.fhir_id, "HIS-0098812");
    assert_eq!(issues(&r.errors), vec![]);
    assert_eq!(issues(&r.unmapped), vec![]);

    let p = full_patient(&svc, &r.patient).await;
    assert_eq!(p.display_name, "张伟");
    assert_eq!(p.name_pinyin, "zhang wei");
    assert_eq!(p.sex, Sex::Male as i32);
    assert_eq!(
        p.birth_date,
        Some(Date {
            year: 1985,
            month: 6,
            day: 12
        })
    );
    assert_eq!(p.phones, vec!["13912345678", "075586012345"]);
    assert_eq!(p.email, "zhangwei@example.cn");
    assert_eq!(p.identity_type, IdentityType::ResidentId as i32);
    assert_eq!(p.identity_number, "440305198506121237");
    assert_eq!(p.marital_status, MaritalStatus::Married as i32);
    assert_eq!(
        p.address,
        Some(Address {
            province: "广东省".into(),
            city: "深圳市".into(),
            district: "南山区".into(),
            street: "科技园南路88号3栋502".into(),
            postal_code: "518057".into(),
        })
    );
    let mut ext: Vec<(String, String)> = p
        .external_ids
        .iter()
        .map(|e| (e.source_system.clone(), e.external_id.clone()))
        .collect();
    ext.sort();
    assert_eq!(
        ext,
        vec![
            ("his".to_string(), "0098812".to_string()),
            ("regional".to_string(), "HIS-0098812".to_string())
        ]
    );

    // Export and compare what was mapped with what came in.
    let bundle = export_full(&svc, &r.patient).await;
    let exported = patient_of(&bundle);
    assert_eq!(exported["gender"], input["gender"]);
    assert_eq!(exported["birthDate"], input["birthDate"]);
    assert_eq!(exported["name"][0]["text"], input["name"][0]["text"]);
    assert_eq!(exported["name"][0]["family"], input["name"][0]["family"]);
    assert_eq!(exported["name"][0]["given"], input["name"][0]["given"]);
    assert_eq!(exported["name"][1]["text"], input["name"][1]["text"]);
    assert_eq!(exported["name"][1]["use"], "usual");
    for key in ["line", "city", "district", "state", "postalCode", "country"] {
        assert_eq!(exported["address"][0][key], input["address"][0][key], "address.{key}");
    }
    assert_eq!(exported["maritalStatus"]["coding"][0]["code"], "M");
    let telecom = |r: &Value| -> Vec<(String, String)> {
        r["telecom"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let v = t["value"].as_str().unwrap();
                let v = if t["system"] == "phone" {
                    digits(v)
                } else {
                    v.to_string()
                };
                (t["system"].as_str().unwrap().to_string(), v)
            })
            .collect()
    };
    assert_eq!(telecom(exported), telecom(&input));
    let idents = exported["identifier"].as_array().unwrap();
    let resident: Vec<&Value> = idents.iter().filter(|i| i["system"] == RESIDENT_ID).collect();
    assert_eq!(resident.len(), 1);
    assert_eq!(resident[0]["value"], "440305198506121237");
    assert!(
        idents
            .iter()
            .any(|i| i["system"] == "urn:hcrm:source:his" && i["value"] == "0098812")
    );
    assert!(
        idents
            .iter()
            .any(|i| i["system"] == "urn:hcrm:source:regional" && i["value"] == "HIS-0098812")
    );

    // The same resource again updates the same patient.
    let again = import(&svc, &input.to_string(), "regional", false).await.unwrap();
    assert_eq!(again.results[0].outcome, FhirImportOutcome::Updated as i32);
    assert_eq!(again.results[0].patient, r.patient);
    assert_eq!(svc.count("patients").await, 1);
    svc.stop().await;
}

async fn unmapped_elements_are_reported_exactly(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let out = import(&svc, &fixture("patient-extensions.json"), "regional", false)
        .await
        .unwrap();
    let r = &out.results[0];
    assert_eq!(r.outcome, FhirImportOutcome::Created as i32, "{r:?}");
    let paths: Vec<&str> = r.unmapped.iter().map(|u| u.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "address[0]",
            "address[1].period",
            "communication[0]",
            "contact[0]",
            "extension[0]",
            "extension[1]",
            "generalPractitioner[0]",
            "identifier[1]",
            "managingOrganization",
            "maritalStatus",
            "multipleBirthBoolean",
            "name[1]",
            "photo[0]",
            "telecom[2]",
        ]
    );
    let reason = |path: &str| r.unmapped.iter().find(|u| u.path == path).unwrap().reason.clone();
    assert_eq!(
        reason("extension[0]"),
        "unknown extension http://hl7.org.cn/fhir/StructureDefinition/ethnicity"
    );
    assert_eq!(
        reason("identifier[1]"),
        "unsupported identifier system urn:oid:2.16.156.10011.1.15"
    );
    assert_eq!(reason("telecom[2]"), "contact system \"fax\" is not kept");
    assert_eq!(reason("photo[0]"), "photos are not kept");
    assert_eq!(reason("name[1]"), "only one name is kept");

    let p = full_patient(&svc, &r.patient).await;
    assert_eq!(p.display_name, "司马建国");
    // Rank 1 first.
    assert_eq!(p.phones, vec!["13805710001", "057187001234"]);
    assert_eq!(p.wechat_id, "sima_jg");
    assert!(p.deceased);
    assert_eq!(
        p.death_date,
        Some(Date {
            year: 2026,
            month: 9,
            day: 30
        })
    );
    assert_eq!(p.address.as_ref().unwrap().district, "上城区");
    assert_eq!(p.marital_status, MaritalStatus::Unspecified as i32);
    let bundle = export_full(&svc, &r.patient).await;
    let exported = patient_of(&bundle);
    assert_eq!(exported["name"][0]["family"], "司马");
    assert_eq!(exported["name"][0]["given"], json!(["建国"]));
    assert_eq!(exported["deceasedDateTime"], "2026-09-30");
    let wechat: Vec<&Value> = exported["telecom"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["system"] == "other")
        .collect();
    assert_eq!(wechat[0]["value"], "sima_jg");
    assert_eq!(wechat[0]["extension"][0]["valueCode"], "wechat");
    svc.stop().await;
}

async fn a_bundle_imports_patients_with_their_related_persons(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let text = fixture("bundle-family.json");
    let out = import(&svc, &text, "emr", false).await.unwrap();
    assert_eq!(out.results.len(), 1);
    let r = &out.results[0];
    assert_eq!(r.index, 0);
    assert_eq!(r.outcome, FhirImportOutcome::Created as i32, "{r:?}");
    assert_eq!(
        issues(&r.unmapped),
        vec![("entry[1].resource.gender", "not kept for related persons")]
    );
    assert_eq!(r.related_persons.len(), 2);
    assert_eq!(
        issues(&out.unmapped),
        vec![
            (
                "entry[3].resource.patient",
                "the patient \"Patient/EMR-00001\" is not in the Bundle"
            ),
            ("entry[4].resource", "Observation resources are not imported"),
        ]
    );
    let p = full_patient(&svc, &r.patient).await;
    assert_eq!(p.display_name, "欧阳娜娜");
    assert_eq!(p.marital_status, MaritalStatus::Widowed as i32);
    assert_eq!(p.phones.len(), 2);
    let related = svc
        .patients(Role::Admin)
        .list_related_persons(ListRelatedPersonsRequest {
            parent: r.patient.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .related_persons;
    let mut got: Vec<(String, String, bool, Vec<String>)> = related
        .iter()
        .map(|r| {
            (
                r.display_name.clone(),
                r.relationship.clone(),
                r.emergency_contact,
                r.phones.clone(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("李娟".into(), "朋友".into(), false, vec!["13512345678".into()]),
            ("欧阳小雨".into(), "child".into(), true, vec!["13701234567".into()]),
        ]
    );
    // Exported back with the compound surname split and the relationships coded.
    let bundle = export_full(&svc, &r.patient).await;
    assert_eq!(patient_of(&bundle)["name"][0]["family"], "欧阳");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let child = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["name"][0]["text"] == "欧阳小雨")
        .unwrap();
    assert_eq!(child["resourceType"], "RelatedPerson");
    assert_eq!(child["relationship"][0]["coding"][0]["code"], "CHILD");
    assert_eq!(child["relationship"][1]["coding"][0]["code"], "C");
    assert_eq!(child["name"][0]["family"], "欧阳");
    let pid = r.patient.trim_start_matches("patients/");
    assert_eq!(child["patient"]["reference"], format!("Patient/{pid}"));

    // Importing the Bundle again adds no second copy of the related persons.
    let again = import(&svc, &text, "emr", false).await.unwrap();
    assert_eq!(again.results[0].outcome, FhirImportOutcome::Updated as i32);
    assert!(again.results[0].related_persons.is_empty());
    assert_eq!(svc.count("related_persons").await, 2);
    svc.stop().await;
}

async fn wrong_entries_fail_alone_by_fhir_path(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let out = import(&svc, &fixture("bundle-invalid.json"), "regional", false)
        .await
        .unwrap();
    let outcomes: Vec<i32> = out.results.iter().map(|r| r.outcome).collect();
    let failed = FhirImportOutcome::Failed as i32;
    assert_eq!(
        outcomes,
        vec![FhirImportOutcome::Created as i32, failed, failed, failed, failed]
    );
    let paths = |i: usize| -> Vec<String> { out.results[i].errors.iter().map(|e| e.path.clone()).collect() };
    assert_eq!(paths(1), vec!["entry[1].resource.birthDate"]);
    assert_eq!(
        paths(2),
        vec!["entry[2].resource.gender", "entry[2].resource.telecom[0]"]
    );
    assert_eq!(paths(3), vec!["entry[3].resource.identifier[0].value"]);
    assert_eq!(paths(4), vec!["entry[4].resource.id"]);
    assert_eq!(svc.count("patients").await, 1, "only the valid entry was written");

    // Whole-request mistakes name the request field.
    for (json, source, field) in [
        ("{\"resourceType\": \"Patient\",", "regional", "resource_json"),
        ("", "regional", "resource_json"),
        ("[]", "regional", "resource_json"),
        (
            "{\"resourceType\": \"Observation\"}",
            "regional",
            "resource_json.resourceType",
        ),
        ("{\"id\": \"x\"}", "regional", "resource_json.resourceType"),
        (
            "{\"resourceType\": \"Bundle\", \"type\": \"document\"}",
            "regional",
            "resource_json.type",
        ),
        (
            "{\"resourceType\": \"Patient\", \"id\": \"1\"}",
            "Regional System",
            "source_system",
        ),
        ("{\"resourceType\": \"Patient\", \"id\": \"1\"}", "", "source_system"),
    ] {
        assert_status(
            import(&svc, json, source, false).await,
            Code::InvalidArgument,
            Some(field),
        );
    }
    // A second Patient with the same id in one Bundle fails, not both.
    let twice = json!({ "resourceType": "Bundle", "type": "collection", "entry": [
        { "resource": { "resourceType": "Patient", "id": "D-1", "name": [{ "text": "郑一" }] } },
        { "resource": { "resourceType": "Patient", "id": "D-1", "name": [{ "text": "郑二" }] } }
    ]});
    let out = import(&svc, &twice.to_string(), "regional", false).await.unwrap();
    assert_eq!(out.results[0].outcome, FhirImportOutcome::Created as i32);
    assert_eq!(out.results[1].outcome, failed);
    assert_eq!(out.results[1].errors[0].path, "entry[1].resource.id");
    svc.stop().await;
}

/// A patient with everything the mapping carries, and two related persons.
fn rich_patient() -> Patient {
    Patient {
        display_name: "欧阳修远".into(),
        code: "P2026000777".into(),
        sex: Sex::Male as i32,
        birth_date: Some(Date {
            year: 1958,
            month: 11,
            day: 2,
        }),
        phones: vec!["13800138001".into(), "02087654321".into()],
        email: "ouyang@example.cn".into(),
        wechat_id: "oyxy_58".into(),
        address: Some(Address {
            province: "广东省".into(),
            city: "广州市".into(),
            district: "越秀区".into(),
            street: "中山二路58号".into(),
            postal_code: "510080".into(),
        }),
        marital_status: MaritalStatus::Married as i32,
        identity_type: IdentityType::ResidentId as i32,
        identity_number: resident_id("19581102", 317),
        ..Default::default()
    }
}

/// A resource without what differs between services by nature: ids, times, the source key.
fn comparable(mut r: Value, source_key_system: &str) -> Value {
    let obj = r.as_object_mut().unwrap();
    obj.remove("id");
    obj.remove("meta");
    obj.remove("patient");
    if let Some(Value::Array(ids)) = obj.get_mut("identifier") {
        ids.retain(|i| i["system"] != source_key_system);
    }
    r
}

async fn an_export_imports_into_a_fresh_service_unchanged(backend: TestBackend) {
    let a = Service::start(backend).await;
    let p = create(&a, rich_patient()).await;
    for (name, relationship, emergency) in [("王芳", "spouse", true), ("欧阳晨", "child", false)] {
        a.patients(Role::Admin)
            .create_related_person(CreateRelatedPersonRequest {
                parent: p.name.clone(),
                related_person: Some(RelatedPerson {
                    display_name: name.into(),
                    relationship: relationship.into(),
                    phones: vec!["13900000001".into()],
                    emergency_contact: emergency,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let first = export_full(&a, &p.name).await;

    let b = Service::start(backend).await;
    let out = import(&b, &first.to_string(), "hospital-a", false).await.unwrap();
    let r = &out.results[0];
    assert_eq!(r.outcome, FhirImportOutcome::Created as i32, "{r:?}");
    assert_eq!(issues(&r.unmapped), vec![]);
    assert_eq!(issues(&out.unmapped), vec![]);
    assert_eq!(r.related_persons.len(), 2);
    let second = export_full(&b, &r.patient).await;

    let key = "urn:hcrm:source:hospital-a";
    let entries = |b: &Value| -> Vec<Value> {
        let mut v: Vec<Value> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| comparable(e["resource"].clone(), key))
            .collect();
        v.sort_by_key(|r| r.to_string());
        v
    };
    assert_eq!(entries(&first), entries(&second));
    // The records match field by field too.
    let (x, y) = (full_patient(&a, &p.name).await, full_patient(&b, &r.patient).await);
    assert_eq!(x.display_name, y.display_name);
    assert_eq!(x.code, y.code);
    assert_eq!(x.phones, y.phones);
    assert_eq!(x.identity_number, y.identity_number);
    assert_eq!(x.address, y.address);
    assert_eq!(x.wechat_id, y.wechat_id);
    assert_eq!(x.birth_date, y.birth_date);
    assert_eq!(x.marital_status, y.marital_status);
    assert_eq!(x.sex, y.sex);
    a.stop().await;
    b.stop().await;
}

async fn exports_are_masked_unless_full_and_permissions_hold(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let p = create(&svc, zhang_san()).await;
    let masked = svc
        .fhir(Role::Guide)
        .export_patient(ExportPatientRequest {
            name: p.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(masked.masked);
    assert!(!masked.resource_json.contains(RESIDENT_ID), "{}", masked.resource_json);
    assert!(!masked.resource_json.contains(&zhang_san().identity_number));
    let full = export_full(&svc, &p.name).await;
    assert!(full.to_string().contains(&zhang_san().identity_number));
    let audited = svc.count("audit_log WHERE action = 'patient.read_protected'").await;
    assert_eq!(audited, 1, "the FULL export is audited like GetPatient FULL");

    let mut fhir = svc.fhir(Role::Admin);
    let export = |view: PatientView, reason: &str, name: &str| ExportPatientRequest {
        name: name.into(),
        view: view as i32,
        access_reason: reason.into(),
    };
    assert_status(
        fhir.export_patient(export(PatientView::Full, "", &p.name)).await,
        Code::InvalidArgument,
        Some("access_reason"),
    );
    assert_status(
        fhir.export_patient(export(PatientView::Masked, "", "people/1")).await,
        Code::InvalidArgument,
        Some("name"),
    );
    assert_status(
        fhir.export_patient(ExportPatientRequest {
            view: 9,
            ..export(PatientView::Masked, "", &p.name)
        })
        .await,
        Code::InvalidArgument,
        Some("view"),
    );
    assert_status(
        fhir.export_patient(export(PatientView::Masked, "", "patients/missing"))
            .await,
        Code::NotFound,
        None,
    );
    // Integrations export masked only; roles without the grant export nothing.
    assert_status(
        svc.fhir(Role::Integration)
            .export_patient(export(PatientView::Full, "exchange", &p.name))
            .await,
        Code::PermissionDenied,
        None,
    );
    svc.fhir(Role::Integration)
        .export_patient(export(PatientView::Masked, "", &p.name))
        .await
        .unwrap();
    for role in [Role::Inspector, Role::Auditor, Role::Clinician, Role::OpinionAnalyst] {
        assert_status(
            svc.fhir(role)
                .export_patient(export(PatientView::Masked, "", &p.name))
                .await,
            Code::PermissionDenied,
            None,
        );
    }
    // Only admin and integration import.
    let json = fixture("patient-zhang-wei.json");
    for role in [Role::Guide, Role::Clinician, Role::Inspector] {
        assert_status(
            svc.fhir(role)
                .import_fhir(ImportFhirRequest {
                    resource_json: json.clone(),
                    source_system: "regional".into(),
                    dry_run: false,
                })
                .await,
            Code::PermissionDenied,
            None,
        );
    }
    assert_eq!(svc.count("patients").await, 1);
    svc.stop().await;
}
