//! The REST/JSON API and grpc-web through the gateway, against the running services.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

crate::both_backends!(json_in_json_out_with_errors_mapped);

async fn json_in_json_out_with_errors_mapped(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.token("admin-wang", Role::Admin);

    let (status, created) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/CreatePatient",
            json!({ "patient": { "displayName": "王芳", "phones": ["13800138001"], "sex": "SEX_FEMALE",
                                 "birthDate": { "year": 1962, "month": 3, "day": 14 } },
                    "requestId": "rest-1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let name = created["name"].as_str().expect("a name").to_string();
    assert!(name.starts_with("patients/"), "{created}");
    assert_eq!(created["sex"], "SEX_FEMALE", "enums by name");
    assert!(
        created["createTime"].as_str().is_some_and(|t| t.ends_with('Z')),
        "timestamps in RFC 3339: {created}"
    );

    let (status, got) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/GetPatient",
            json!({ "name": name }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["displayName"], "王芳");

    // The same request id is the same patient (a retry through the gateway stays safe).
    let (_, again) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/CreatePatient",
            json!({ "patient": { "displayName": "王芳", "phones": ["13800138001"] }, "requestId": "rest-1" }),
        )
        .await;
    assert_eq!(again["name"], created["name"]);

    // INVALID_ARGUMENT → 400 with the fields named, and the request id to quote.
    let (status, err) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/CreatePatient",
            json!({ "patient": { "phones": ["12"] } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(err["error"]["status"], 400);
    let fields: Vec<&str> = err["error"]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"patient.display_name"), "{err}");
    assert!(fields.iter().any(|f| f.starts_with("patient.phones")), "{err}");
    assert!(!err["error"]["requestId"].as_str().unwrap_or("").is_empty(), "{err}");

    // NOT_FOUND → 404.
    let (status, err) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/GetPatient",
            json!({ "name": "patients/nope" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["error"]["code"], "NOT_FOUND");

    // ALREADY_EXISTS → 409 (a second questionnaire id? use a case source seen before).
    let case = json!({ "case": { "kind": "CASE_KIND_COMPLAINT", "channel": "INTAKE_CHANNEL_HOTLINE", "department": "cardiology",
                                  "category": "attitude", "title": "态度差", "description": "护士态度生硬", "source": "his/visit/1" } });
    let (status, first) = suite
        .call(Some(&admin), "hcrm.feedback.v1.CaseService/CreateCase", case.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, err) = suite
        .call(Some(&admin), "hcrm.feedback.v1.CaseService/CreateCase", case)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["code"], "ALREADY_EXISTS");

    // FAILED_PRECONDITION → 412: closing a case that was never worked.
    let (status, err) = suite
        .call(
            Some(&admin),
            "hcrm.feedback.v1.CaseService/TransitionCase",
            json!({ "name": first["name"], "action": "CASE_ACTION_CLOSE", "etag": first["etag"] }),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{err}");
    assert_eq!(err["error"]["code"], "FAILED_PRECONDITION");

    // PERMISSION_DENIED → 403; UNAUTHENTICATED → 401 (no token, a forged token).
    let auditor = suite.token("auditor-zhao", Role::Auditor);
    let (status, err) = suite
        .call(
            Some(&auditor),
            "hcrm.patients.v1.PatientService/CreatePatient",
            json!({ "patient": { "displayName": "x" } }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    let (status, err) = suite
        .call(
            None,
            "hcrm.patients.v1.PatientService/GetPatient",
            json!({ "name": name }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["error"]["code"], "UNAUTHENTICATED");
    let (status, _) = suite
        .call(
            Some("not.a.token"),
            "hcrm.patients.v1.PatientService/GetPatient",
            json!({ "name": name }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Mistakes in the request itself: unknown method, unknown field, wrong type, not JSON.
    let (status, err) = suite
        .call(Some(&admin), "hcrm.patients.v1.PatientService/Nope", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("openapi.json"),
        "{err}"
    );
    let (status, err) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/GetPatient",
            json!({ "nmae": name }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["fieldViolations"][0]["field"], "body");
    assert!(
        err["error"]["fieldViolations"][0]["description"]
            .as_str()
            .unwrap()
            .contains("nmae"),
        "{err}"
    );
    let (status, _) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/GetPatient",
            json!({ "name": 7 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let response = suite
        .http
        .post(suite.url("/api/v1/hcrm.patients.v1.PatientService/GetPatient"))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Nothing half-written: the failed creates left exactly one patient.
    let (_, list) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/ListPatients",
            json!({ "pageSize": 50 }),
        )
        .await;
    assert_eq!(list["patients"].as_array().map(Vec::len), Some(1), "{list}");
}

crate::both_backends!(streams_are_ndjson_and_arrays);

async fn streams_are_ndjson_and_arrays(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.token("admin-wang", Role::Admin);
    // A bidirectional stream: a JSON array in, one NDJSON line per answer out.
    let response = suite
        .http
        .post(suite.url("/api/v1/hcrm.patients.v1.PatientService/ImportPatients"))
        .bearer_auth(&admin)
        .json(&json!([
            { "rows": [ { "sourceSystem": "his", "externalId": "H1", "patient": { "displayName": "赵一" } },
                        { "sourceSystem": "his", "externalId": "H3", "patient": { "displayName": "" } } ] },
            { "rows": [ { "sourceSystem": "his", "externalId": "H2", "patient": { "displayName": "钱二" } } ] }
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("content-type").unwrap(), "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty(), "{text}");
    assert!(lines.iter().all(|l| l.get("error").is_none()), "{text}");

    // A client stream: a JSON array in, one JSON answer out.
    let (status, answer) = suite
        .call(
            Some(&suite.token("crawler", Role::Integration)),
            "hcrm.opinion.v1.MentionService/IngestMentions",
            json!([{ "mentions": [] }]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Not an array for a client stream: the body is named.
    let (status, err) = suite
        .call(
            Some(&admin),
            "hcrm.opinion.v1.MentionService/IngestMentions",
            json!({ "mentions": [] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["fieldViolations"][0]["field"], "body");
}

crate::both_backends!(every_documented_route_is_served_and_nothing_else);

async fn every_documented_route_is_served_and_nothing_else(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.token("admin-wang", Role::Admin);
    let doc: Value = suite
        .http
        .get(suite.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    // The document lists exactly the methods of the services' descriptors.
    let pool = prost_reflect::DescriptorPool::decode(hcrm_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut expected: Vec<String> = pool
        .services()
        .filter(|s| s.package_name().starts_with("hcrm."))
        .flat_map(|s| {
            s.methods()
                .map(|m| format!("/api/v1/{}/{}", s.full_name(), m.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    expected.sort();
    let mut documented: Vec<String> = paths
        .keys()
        .filter(|p| p.starts_with("/api/v1/hcrm."))
        .cloned()
        .collect();
    documented.sort();
    assert_eq!(documented, expected);

    // Every documented route answers as documented: never "no method", errors in the documented
    // shape, successes as JSON (or NDJSON for server streams).
    let mut served = 0;
    for (path, item) in paths {
        let op = &item["post"];
        let streams_out = op["responses"]["200"]["content"]["application/x-ndjson"].is_object();
        let streams_in = op["requestBody"]["content"]["application/json"]["schema"]["type"] == "array";
        let body = if streams_in { json!([]) } else { json!({}) };
        let response = suite
            .http
            .post(suite.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if streams_out && status == StatusCode::OK {
            // A feed stays open: seeing the stream begin is enough.
            assert_eq!(content_type, "application/x-ndjson", "{path}");
            served += 1;
            continue;
        }
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            assert!(value.is_object(), "{path}: {value}");
        } else {
            let code = value["error"]["code"].as_str().unwrap_or("");
            assert!(!code.is_empty(), "{path}: {status} {value}");
            assert_eq!(value["error"]["status"], status.as_u16(), "{path}");
            assert!(
                !value["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("no method"),
                "{path} is documented but not served"
            );
            let documented = op["responses"][status.as_str()].is_object();
            assert!(documented, "{path}: {status} is not among the documented responses");
        }
        served += 1;
    }
    assert_eq!(served, expected.len());

    // A response's fields are the documented schema's properties.
    let (status, taxonomy) = suite
        .call(Some(&admin), "hcrm.feedback.v1.CaseService/GetTaxonomy", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let schema = &doc["components"]["schemas"]["hcrm.feedback.v1.Category"]["properties"];
    for category in taxonomy["categories"].as_array().unwrap() {
        for key in category.as_object().unwrap().keys() {
            assert!(schema.get(key).is_some(), "{key} is not in the Category schema");
        }
    }
}

crate::both_backends!(grpc_web_goes_through_the_gateway);

async fn grpc_web_goes_through_the_gateway(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let admin = suite.token("admin-wang", Role::Admin);
    let (_, created) = suite
        .call(
            Some(&admin),
            "hcrm.patients.v1.PatientService/CreatePatient",
            json!({ "patient": { "displayName": "孙三" } }),
        )
        .await;
    let request = hcrm_proto::patients::GetPatientRequest {
        name: created["name"].as_str().unwrap().to_string(),
        ..Default::default()
    };
    let payload = request.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let send = |token: Option<String>| {
        let mut r = suite
            .http
            .post(suite.url("/hcrm.patients.v1.PatientService/GetPatient"))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(frame.clone());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let response = send(Some(admin.clone())).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.unwrap();
    // First frame: the message; then the trailers frame (flag 0x80) with grpc-status 0.
    assert_eq!(bytes[0], 0, "a data frame first");
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    let patient = hcrm_proto::patients::Patient::decode(&bytes[5..5 + len]).unwrap();
    assert_eq!(patient.display_name, "孙三");
    let trailers = String::from_utf8_lossy(&bytes[5 + len + 5..]).to_lowercase();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // Without credentials the gateway answers 401 itself.
    let response = send(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
