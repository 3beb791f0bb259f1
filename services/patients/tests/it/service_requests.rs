//! Service requests (便民服务): the state machine with etags, per-type due times, overdue
//! requests on the worklist and in the statistics, the proxy discharge precondition, the
//! timeline entry when done, department scope, and nothing half-written.

use crate::both_backends;
use crate::consultations::violated_fields;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::service_request::Details;
use hcrm_proto::patients::*;
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

both_backends!(
    a_result_delivery_goes_from_overdue_to_done,
    a_proxy_discharge_needs_its_papers,
    bad_service_requests_are_rejected_without_writing,
    service_request_permissions_and_scope,
);

const HOUR: i64 = 3600;

fn now_seconds() -> i64 {
    hcrm_kit::time::now_micros() / 1_000_000
}

fn ts(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

fn result_delivery(patient: &str, result_time: i64) -> ServiceRequest {
    ServiceRequest {
        patient: patient.into(),
        r#type: ServiceRequestType::ResultDelivery as i32,
        details: Some(Details::ResultDelivery(ResultDeliveryDetails {
            method: ResultDeliveryMethod::Phone as i32,
            result_time: Some(ts(result_time)),
            exam: "胸部CT".into(),
            phone: "138 0013 8000".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn home_care(patient: &str) -> ServiceRequest {
    ServiceRequest {
        patient: patient.into(),
        r#type: ServiceRequestType::HomeCare as i32,
        details: Some(Details::HomeCare(HomeCareDetails {
            service: "上门换药".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn proxy_discharge(patient: &str, signed: bool) -> ServiceRequest {
    ServiceRequest {
        patient: patient.into(),
        r#type: ServiceRequestType::ProxyDischarge as i32,
        details: Some(Details::ProxyDischarge(ProxyDischargeDetails {
            authorization_signed: signed,
            deposit_slip_received: false,
            invoice_delivery: InvoiceDelivery::Mail as i32,
            invoice_address: Some(hcrm_proto::types::Address {
                city: "深圳市".into(),
                street: "南山区科技园路1号".into(),
                postal_code: "518057".into(),
                ..Default::default()
            }),
            ward: "心内科二病区".into(),
        })),
        ..Default::default()
    }
}

fn create_req(r: ServiceRequest, request_id: &str) -> CreateServiceRequestRequest {
    CreateServiceRequestRequest {
        service_request: Some(r),
        request_id: request_id.into(),
    }
}

fn range_around_now() -> GetServiceRequestStatisticsRequest {
    GetServiceRequestStatisticsRequest {
        start_time: Some(ts(now_seconds() - 24 * HOUR)),
        end_time: Some(ts(now_seconds() + 24 * HOUR)),
    }
}

fn of_type(s: &ServiceRequestStatistics, t: ServiceRequestType) -> ServiceRequestTypeStatistics {
    s.by_type.iter().find(|f| f.r#type == t as i32).cloned().unwrap()
}

async fn a_result_delivery_goes_from_overdue_to_done(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let patient = create(&svc, zhang_san()).await;
    let mut guide = svc.service_requests(Role::Guide, None);
    let result_time = now_seconds() - 2 * HOUR;
    let results = guide
        .create_service_request(create_req(result_delivery(&patient.name, result_time), "sr-0001"))
        .await
        .unwrap()
        .into_inner();
    assert!(results.name.starts_with("service_requests/"));
    assert_eq!(results.state, ServiceRequestState::Open as i32);
    assert_eq!(results.department, "cardiology", "defaults to the patient's department");
    assert_eq!(results.owner, "");
    assert_eq!(results.created_by, "guide-user");
    assert_eq!(
        results.due_time,
        Some(ts(result_time + HOUR)),
        "one hour after the result"
    );
    assert_eq!(results.sla_state, ServiceRequestSlaState::Overdue as i32);
    assert_eq!(results.history.len(), 1);
    assert_eq!(results.history[0].action, "created");
    match &results.details {
        Some(Details::ResultDelivery(d)) => assert_eq!(d.phone, "13800138000"),
        other => panic!("{other:?}"),
    }

    // A retry returns the first one.
    let again = guide
        .create_service_request(create_req(result_delivery(&patient.name, result_time), "sr-0001"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, results.name);
    assert_eq!(svc.count("service_requests").await, 1);

    let care = guide
        .create_service_request(create_req(home_care(&patient.name), ""))
        .await
        .unwrap()
        .into_inner();
    let created = care.create_time.unwrap().seconds;
    assert_eq!(
        care.due_time.unwrap().seconds - created,
        24 * HOUR,
        "home care: a day from creation"
    );
    assert_eq!(care.sla_state, ServiceRequestSlaState::OnTrack as i32);

    // The worklist: most urgent first; the overdue filter surfaces the result delivery only.
    let reader = guide.clone();
    let worklist = |req: ListServiceRequestsRequest| {
        let mut guide = reader.clone();
        async move {
            guide
                .list_service_requests(req)
                .await
                .unwrap()
                .into_inner()
                .service_requests
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        worklist(ListServiceRequestsRequest::default()).await,
        [results.name.clone(), care.name.clone()]
    );
    assert_eq!(
        worklist(ListServiceRequestsRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await,
        vec![results.name.clone()]
    );
    assert_eq!(
        worklist(ListServiceRequestsRequest {
            r#type: ServiceRequestType::HomeCare as i32,
            ..Default::default()
        })
        .await,
        vec![care.name.clone()]
    );
    let page1 = guide
        .list_service_requests(ListServiceRequestsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let page2 = guide
        .list_service_requests(ListServiceRequestsRequest {
            page_size: 1,
            page_token: page1.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.service_requests[0].name, care.name);

    let stats = guide
        .get_service_request_statistics(range_around_now())
        .await
        .unwrap()
        .into_inner();
    let rd = of_type(&stats, ServiceRequestType::ResultDelivery);
    assert_eq!((rd.created, rd.done, rd.open_overdue_now), (1, 0, 1));
    let hc = of_type(&stats, ServiceRequestType::HomeCare);
    assert_eq!((hc.created, hc.open_overdue_now), (1, 0));
    assert_eq!(stats.total.as_ref().unwrap().open_overdue_now, 1);
    assert_eq!(stats.by_type.len(), 6);

    // The state machine: no completing an open request, no stale etags.
    let status = guide
        .complete_service_request(CompleteServiceRequestRequest {
            name: results.name.clone(),
            etag: results.etag.clone(),
            outcome: "done".into(),
        })
        .await;
    let status = assert_status(status, Code::FailedPrecondition, None);
    assert!(status.message().contains("IN_PROGRESS"), "{}", status.message());
    let status = guide
        .start_service_request(StartServiceRequestRequest {
            name: results.name.clone(),
            etag: "\"99\"".into(),
            owner: String::new(),
        })
        .await;
    assert_status(status, Code::Aborted, None);
    let started = guide
        .start_service_request(StartServiceRequestRequest {
            name: results.name.clone(),
            etag: results.etag.clone(),
            owner: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state, ServiceRequestState::InProgress as i32);
    assert_eq!(started.owner, "guide-user");
    assert_ne!(started.etag, results.etag);
    let status = guide
        .start_service_request(StartServiceRequestRequest {
            name: results.name.clone(),
            etag: started.etag.clone(),
            owner: String::new(),
        })
        .await;
    assert_status(status, Code::FailedPrecondition, None);
    let assigned = guide
        .assign_service_request(AssignServiceRequestRequest {
            name: results.name.clone(),
            etag: started.etag.clone(),
            owner: "nurse-wang".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.owner, "nurse-wang");
    assert_eq!(
        worklist(ListServiceRequestsRequest {
            owner: "nurse-wang".into(),
            ..Default::default()
        })
        .await,
        vec![results.name.clone()]
    );
    assert_eq!(
        worklist(ListServiceRequestsRequest {
            unassigned_only: true,
            ..Default::default()
        })
        .await,
        vec![care.name.clone()]
    );
    assert_eq!(
        worklist(ListServiceRequestsRequest {
            states: vec![ServiceRequestState::InProgress as i32],
            ..Default::default()
        })
        .await,
        vec![results.name.clone()]
    );

    let done = guide
        .complete_service_request(CompleteServiceRequestRequest {
            name: results.name.clone(),
            etag: assigned.etag.clone(),
            outcome: "结果已电话告知本人".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, ServiceRequestState::Done as i32);
    assert_eq!(
        done.sla_state,
        ServiceRequestSlaState::Missed as i32,
        "done after its due time"
    );
    assert_eq!(done.outcome, "结果已电话告知本人");
    assert!(done.close_time.is_some());
    assert_eq!(
        done.history.iter().map(|h| h.action.as_str()).collect::<Vec<_>>(),
        ["created", "started", "assigned", "completed"]
    );
    assert_eq!(done.history[3].actor, "guide-user");
    assert_eq!(done.history[2].owner, "nurse-wang");
    let timeline = svc
        .patients(Role::Guide)
        .list_interactions(ListInteractionsRequest {
            parent: patient.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .interactions;
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].name, done.interaction);
    assert_eq!(timeline[0].kind, InteractionKind::Other as i32);
    assert_eq!(timeline[0].summary, "exam results given by phone — 结果已电话告知本人");
    assert_eq!(timeline[0].department, "cardiology");

    let status = guide
        .cancel_service_request(CancelServiceRequestRequest {
            name: results.name.clone(),
            etag: done.etag.clone(),
            reason: "too late".into(),
        })
        .await;
    assert_status(status, Code::FailedPrecondition, None);
    let status = guide
        .cancel_service_request(CancelServiceRequestRequest {
            name: care.name.clone(),
            etag: care.etag.clone(),
            reason: String::new(),
        })
        .await;
    assert_status(status, Code::InvalidArgument, Some("reason"));
    let cancelled = guide
        .cancel_service_request(CancelServiceRequestRequest {
            name: care.name.clone(),
            etag: care.etag.clone(),
            reason: "患者已自行预约".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, ServiceRequestState::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, "患者已自行预约");
    assert_eq!(cancelled.sla_state, ServiceRequestSlaState::Unspecified as i32);

    let stats = guide
        .get_service_request_statistics(range_around_now())
        .await
        .unwrap()
        .into_inner();
    let rd = of_type(&stats, ServiceRequestType::ResultDelivery);
    assert_eq!(
        (rd.created, rd.done, rd.done_on_time, rd.open_overdue_now),
        (1, 1, 0, 0)
    );
    assert_eq!(rd.done_on_time_percent, 0.0);
    assert!(
        rd.mean_seconds_to_done >= 0.0 && rd.mean_seconds_to_done < 60.0,
        "{}",
        rd.mean_seconds_to_done
    );
    let hc = of_type(&stats, ServiceRequestType::HomeCare);
    assert_eq!((hc.created, hc.done, hc.cancelled), (1, 0, 1));
    let total = stats.total.unwrap();
    assert_eq!(
        (total.created, total.done, total.cancelled, total.open_overdue_now),
        (2, 1, 1, 0)
    );

    // An on-time delivery counts as on time.
    let fresh = guide
        .create_service_request(create_req(result_delivery(&patient.name, now_seconds() - 60), ""))
        .await
        .unwrap()
        .into_inner();
    let fresh = guide
        .start_service_request(StartServiceRequestRequest {
            name: fresh.name.clone(),
            etag: fresh.etag.clone(),
            owner: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let fresh = guide
        .complete_service_request(CompleteServiceRequestRequest {
            name: fresh.name.clone(),
            etag: fresh.etag.clone(),
            outcome: "已告知".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.sla_state, ServiceRequestSlaState::Met as i32);
    let stats = guide
        .get_service_request_statistics(range_around_now())
        .await
        .unwrap()
        .into_inner();
    let rd = of_type(&stats, ServiceRequestType::ResultDelivery);
    assert_eq!((rd.done, rd.done_on_time), (2, 1));
    assert_eq!(rd.done_on_time_percent, 50.0);
    svc.stop().await;
}

async fn a_proxy_discharge_needs_its_papers(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let patient = create(&svc, zhang_san()).await;
    let mut guide = svc.service_requests(Role::Guide, None);
    let discharge = guide
        .create_service_request(create_req(proxy_discharge(&patient.name, false), ""))
        .await
        .unwrap()
        .into_inner();
    let created = discharge.create_time.unwrap().seconds;
    assert_eq!(discharge.due_time.unwrap().seconds - created, 48 * HOUR);
    let started = guide
        .start_service_request(StartServiceRequestRequest {
            name: discharge.name.clone(),
            etag: discharge.etag.clone(),
            owner: "guide-li".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.owner, "guide-li");
    let events_before = svc.count("events").await;

    let status = guide
        .complete_service_request(CompleteServiceRequestRequest {
            name: discharge.name.clone(),
            etag: started.etag.clone(),
            outcome: "已办理出院".into(),
        })
        .await;
    let status = assert_status(status, Code::FailedPrecondition, None);
    assert!(
        status.message().contains("authorization_signed") && status.message().contains("deposit_slip_received"),
        "{}",
        status.message()
    );
    // Nothing half-written: same state and etag, no timeline entry, no event.
    let unchanged = guide
        .get_service_request(GetServiceRequestRequest {
            name: discharge.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.state, ServiceRequestState::InProgress as i32);
    assert_eq!(unchanged.etag, started.etag);
    assert_eq!(unchanged.history.len(), 2);
    assert_eq!(svc.count("interactions").await, 0);
    assert_eq!(svc.count("events").await, events_before);

    // Details of another type do not fit.
    let status = guide
        .update_service_request(UpdateServiceRequestRequest {
            service_request: Some(ServiceRequest {
                name: discharge.name.clone(),
                ..home_care(&patient.name)
            }),
            update_mask: Some(FieldMask {
                paths: vec!["details".into()],
            }),
            etag: started.etag.clone(),
        })
        .await;
    assert_status(status, Code::InvalidArgument, Some("service_request.home_care"));

    // The papers arrive.
    let mut papers = proxy_discharge(&patient.name, true);
    if let Some(Details::ProxyDischarge(d)) = &mut papers.details {
        d.deposit_slip_received = true;
    }
    papers.name = discharge.name.clone();
    let updated = guide
        .update_service_request(UpdateServiceRequestRequest {
            service_request: Some(papers),
            update_mask: Some(FieldMask {
                paths: vec!["details".into()],
            }),
            etag: started.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(updated.etag, started.etag);
    assert_eq!(updated.state, ServiceRequestState::InProgress as i32);
    assert_eq!(updated.history.last().unwrap().action, "updated");
    let done = guide
        .complete_service_request(CompleteServiceRequestRequest {
            name: discharge.name.clone(),
            etag: updated.etag.clone(),
            outcome: "已办理出院，发票邮寄".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, ServiceRequestState::Done as i32);
    assert_eq!(svc.count("interactions").await, 1);
    let status = guide
        .update_service_request(UpdateServiceRequestRequest {
            service_request: Some(ServiceRequest {
                name: discharge.name.clone(),
                description: "late".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["description".into()],
            }),
            etag: done.etag.clone(),
        })
        .await;
    assert_status(status, Code::FailedPrecondition, None);

    // Events describe each change.
    use sqlx::Row;
    let pool = svc.sql().await;
    let kinds: Vec<String> = sqlx::query("SELECT type FROM events WHERE resource = $1")
        .bind(&discharge.name)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("type"))
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "service_request.created").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "service_request.changed").count(), 3);
    let audited: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE resource = $1")
        .bind(&discharge.name)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(audited, 4, "create, start, update, complete");
    pool.close().await;
    svc.stop().await;
}

async fn bad_service_requests_are_rejected_without_writing(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let patient = create(&svc, zhang_san()).await;
    let mut guide = svc.service_requests(Role::Guide, None);
    let status = guide
        .create_service_request(create_req(ServiceRequest::default(), ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["service_request.patient", "service_request.type"]
    );

    let now = now_seconds();
    let with_details = |f: &dyn Fn(&mut ResultDeliveryDetails)| {
        let mut r = result_delivery(&patient.name, now - HOUR);
        if let Some(Details::ResultDelivery(d)) = &mut r.details {
            f(d);
        }
        r
    };
    let cases: Vec<(ServiceRequest, &str)> = vec![
        (
            ServiceRequest {
                details: None,
                ..result_delivery(&patient.name, now)
            },
            "service_request.result_delivery",
        ),
        (
            ServiceRequest {
                r#type: ServiceRequestType::ExamEscort as i32,
                ..result_delivery(&patient.name, now)
            },
            "service_request.result_delivery",
        ),
        (
            with_details(&|d| d.result_time = Some(ts(now + 2 * HOUR))),
            "service_request.result_delivery.result_time",
        ),
        (
            with_details(&|d| d.result_time = None),
            "service_request.result_delivery.result_time",
        ),
        (
            with_details(&|d| d.method = ResultDeliveryMethod::Mail as i32),
            "service_request.result_delivery.address.street",
        ),
        (
            with_details(&|d| {
                d.method = ResultDeliveryMethod::Email as i32;
                d.email = "not-an-address".into();
            }),
            "service_request.result_delivery.email",
        ),
        (
            with_details(&|d| d.phone = "phone".into()),
            "service_request.result_delivery.phone",
        ),
        (
            ServiceRequest {
                patient: patient.name.clone(),
                r#type: ServiceRequestType::AdmissionHelp as i32,
                details: Some(Details::AdmissionHelp(AdmissionHelpDetails {
                    ward: "心内科二病区".into(),
                    notifying_department: "Outpatient".into(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            "service_request.admission_help.notifying_department",
        ),
        (
            ServiceRequest {
                patient: patient.name.clone(),
                r#type: ServiceRequestType::ExamEscort as i32,
                details: Some(Details::ExamEscort(ExamEscortDetails::default())),
                ..Default::default()
            },
            "service_request.exam_escort.exams",
        ),
        (
            ServiceRequest {
                patient: patient.name.clone(),
                r#type: ServiceRequestType::Other as i32,
                ..Default::default()
            },
            "service_request.description",
        ),
        (
            ServiceRequest {
                owner: "two words".into(),
                ..home_care(&patient.name)
            },
            "service_request.owner",
        ),
        (
            ServiceRequest {
                department: "Cardiology".into(),
                ..home_care(&patient.name)
            },
            "service_request.department",
        ),
        (
            ServiceRequest {
                patient: "nobody".into(),
                ..home_care(&patient.name)
            },
            "service_request.patient",
        ),
    ];
    for (r, field) in cases {
        let status = guide.create_service_request(create_req(r, "")).await;
        assert_status(status, Code::InvalidArgument, Some(field));
    }
    assert_status(
        guide
            .create_service_request(create_req(home_care(&patient.name), "bad id with spaces"))
            .await,
        Code::InvalidArgument,
        Some("request_id"),
    );
    assert_status(
        guide
            .create_service_request(create_req(home_care("patients/nobody"), ""))
            .await,
        Code::NotFound,
        None,
    );
    assert_eq!(svc.count("service_requests").await, 0);
    assert_eq!(svc.count("idempotency").await, 0);

    assert_status(
        guide
            .get_service_request(GetServiceRequestRequest {
                name: "requests/1".into(),
            })
            .await,
        Code::InvalidArgument,
        Some("name"),
    );
    assert_status(
        guide
            .get_service_request(GetServiceRequestRequest {
                name: "service_requests/nope".into(),
            })
            .await,
        Code::NotFound,
        None,
    );
    for (req, field) in [
        (
            ListServiceRequestsRequest {
                states: vec![99],
                ..Default::default()
            },
            "states[0]",
        ),
        (
            ListServiceRequestsRequest {
                owner: "nurse-wang".into(),
                unassigned_only: true,
                ..Default::default()
            },
            "unassigned_only",
        ),
        (
            ListServiceRequestsRequest {
                department: "Not A Code".into(),
                ..Default::default()
            },
            "department",
        ),
        (
            ListServiceRequestsRequest {
                patient: "x".into(),
                ..Default::default()
            },
            "patient",
        ),
        (
            ListServiceRequestsRequest {
                page_size: 501,
                ..Default::default()
            },
            "page_size",
        ),
    ] {
        assert_status(
            guide.list_service_requests(req).await,
            Code::InvalidArgument,
            Some(field),
        );
    }
    let care = guide
        .create_service_request(create_req(home_care(&patient.name), ""))
        .await
        .unwrap()
        .into_inner();
    assert_status(
        guide
            .start_service_request(StartServiceRequestRequest {
                name: care.name.clone(),
                etag: String::new(),
                owner: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("etag"),
    );
    assert_status(
        guide
            .complete_service_request(CompleteServiceRequestRequest {
                name: care.name.clone(),
                etag: care.etag.clone(),
                outcome: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("outcome"),
    );
    assert_status(
        guide
            .update_service_request(UpdateServiceRequestRequest {
                service_request: Some(ServiceRequest {
                    name: care.name.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["state".into()],
                }),
                etag: care.etag.clone(),
            })
            .await,
        Code::InvalidArgument,
        Some("update_mask.paths[0]"),
    );
    assert_status(
        guide
            .get_service_request_statistics(GetServiceRequestStatisticsRequest::default())
            .await,
        Code::InvalidArgument,
        Some("start_time"),
    );
    let unchanged = guide
        .get_service_request(GetServiceRequestRequest {
            name: care.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.etag, care.etag);
    svc.stop().await;
}

async fn service_request_permissions_and_scope(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let patient = create(&svc, zhang_san()).await;
    let mut guide = svc.service_requests(Role::Guide, None);
    let cardiology = guide
        .create_service_request(create_req(home_care(&patient.name), ""))
        .await
        .unwrap()
        .into_inner();
    let neurology = guide
        .create_service_request(create_req(
            ServiceRequest {
                department: "neurology".into(),
                ..home_care(&patient.name)
            },
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(neurology.department, "neurology");

    for role in [Role::Auditor, Role::OpinionAnalyst] {
        let mut client = svc.service_requests(role, None);
        assert_status(
            client
                .list_service_requests(ListServiceRequestsRequest::default())
                .await,
            Code::PermissionDenied,
            None,
        );
        assert_status(
            client
                .create_service_request(create_req(home_care(&patient.name), ""))
                .await,
            Code::PermissionDenied,
            None,
        );
    }
    for role in [
        Role::Inspector,
        Role::Clinician,
        Role::DepartmentHead,
        Role::Integration,
    ] {
        let status = svc
            .service_requests(role, Some("cardiology"))
            .start_service_request(StartServiceRequestRequest {
                name: cardiology.name.clone(),
                etag: cardiology.etag.clone(),
                owner: String::new(),
            })
            .await;
        assert_status(status, Code::PermissionDenied, None);
    }
    assert_eq!(svc.count("service_requests").await, 2);

    // Department-scoped readers see their department's requests only.
    for role in [Role::Clinician, Role::DepartmentHead] {
        let mut scoped = svc.service_requests(role, Some("cardiology"));
        let seen = scoped
            .list_service_requests(ListServiceRequestsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .service_requests;
        assert_eq!(
            seen.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            [cardiology.name.as_str()]
        );
        assert_status(
            scoped
                .get_service_request(GetServiceRequestRequest {
                    name: neurology.name.clone(),
                })
                .await,
            Code::NotFound,
            None,
        );
        let stats = scoped
            .get_service_request_statistics(range_around_now())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stats.total.unwrap().created, 1);
    }
    let inspector = svc
        .service_requests(Role::Inspector, None)
        .list_service_requests(ListServiceRequestsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inspector.service_requests.len(), 2);
    svc.stop().await;
}
