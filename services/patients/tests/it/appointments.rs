//! Appointment hand-off: the request goes to the booking platform through the outbox (signed,
//! retried, idempotent) and the platform's answer lands on the timeline once.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_kit::secret::Secret;
use hcrm_kit::testing::{WEBHOOK_SECRET, eventually, webhook_receiver};
use hcrm_proto::patients::*;
use hcrm_proto::types::Date;
use tonic::Code;

both_backends!(
    a_request_is_delivered_signed_once_after_failures_and_confirmed_once,
    a_delivery_the_outbox_gives_up_on_fails_the_request,
    a_rejection_is_recorded_on_the_timeline,
    wrong_input_is_named_by_field,
    who_may_request_confirm_and_read
);

async fn start(backend: TestBackend, url: &str, max_attempts: i64) -> Service {
    let url = url.to_string();
    Service::start_with(backend, move |cfg| {
        cfg.booking.kind = "webhook".into();
        cfg.booking.webhook_url = url;
        cfg.booking.webhook_secret = Some(Secret::new(WEBHOOK_SECRET.to_string()));
        cfg.booking.timeout_ms = 2_000;
        cfg.booking_delivery.backoff_ms = 20;
        cfg.booking_delivery.poll_ms = 25;
        cfg.booking_delivery.max_attempts = max_attempts;
    })
    .await
}

fn in_days(days: i64) -> Date {
    let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    use chrono::Datelike;
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

fn expert_request(patient: &str) -> AppointmentRequest {
    AppointmentRequest {
        patient: patient.to_string(),
        kind: AppointmentKind::Expert as i32,
        department: "cardiology".into(),
        doctor: "doctors/d-1024".into(),
        preferred_dates: vec![in_days(3), in_days(4)],
        reason: "复查心电图，需专家门诊".into(),
        source: "tasks/t-77".into(),
        ..Default::default()
    }
}

async fn request(svc: &Service, a: AppointmentRequest, request_id: &str) -> AppointmentRequest {
    svc.appointments(Role::Guide)
        .request_appointment(RequestAppointmentRequest {
            appointment_request: Some(a),
            request_id: request_id.into(),
        })
        .await
        .expect("request appointment")
        .into_inner()
}

async fn state_of(svc: &Service, name: &str) -> AppointmentRequest {
    svc.appointments(Role::Guide)
        .get_appointment_request(GetAppointmentRequestRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn appointment_entries(svc: &Service, patient: &str) -> Vec<Interaction> {
    svc.patients(Role::Admin)
        .list_interactions(ListInteractionsRequest {
            parent: patient.into(),
            kinds: vec![InteractionKind::Appointment as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .interactions
}

async fn a_request_is_delivered_signed_once_after_failures_and_confirmed_once(backend: TestBackend) {
    let (url, received) = webhook_receiver().await;
    received.lock().unwrap().fail_next = 2;
    let svc = start(backend, &url, 8).await;
    let p = create(&svc, zhang_san()).await;

    let a = request(&svc, expert_request(&p.name), "req-1").await;
    assert!(a.name.starts_with("appointment_requests/"), "{}", a.name);
    assert_eq!(a.patient, p.name);
    assert_eq!(a.requested_by, "guide-user");
    assert_eq!(a.doctor, "doctors/d-1024");
    assert!(
        [AppointmentState::Requested as i32, AppointmentState::Sent as i32].contains(&a.state),
        "{:?}",
        a.state
    );
    // A retry of the same call is the same request and the same delivery.
    let again = request(&svc, expert_request(&p.name), "req-1").await;
    assert_eq!(again.name, a.name);
    assert_eq!(svc.count("appointment_requests").await, 1);
    assert_eq!(svc.count("deliveries").await, 1);

    let sent = eventually("the request to be sent", || async {
        let now = state_of(&svc, &a.name).await;
        (now.state == AppointmentState::Sent as i32).then_some(now)
    })
    .await;
    assert!(sent.send_time.is_some());
    let id = a.name.trim_start_matches("appointment_requests/");
    {
        let r = received.lock().unwrap();
        assert_eq!(r.fail_next, 0, "both failures were answered");
        assert_eq!(r.bad_signatures, 0);
        assert_eq!(r.by_key.len(), 1);
        assert_eq!(r.by_key.get(&format!("appointment-{id}")), Some(&1), "{:?}", r.by_key);
        assert_eq!(r.bodies.len(), 1);
        let body = &r.bodies[0];
        assert_eq!(body["idempotency_key"], format!("appointment-{id}"));
        assert_eq!(body["kind"], "patients.appointment_request");
        let payload = &body["payload"];
        assert_eq!(payload["appointment_request"], a.name.as_str());
        assert_eq!(payload["kind"], "expert");
        assert_eq!(payload["department"], "cardiology");
        assert_eq!(payload["doctor"], "doctors/d-1024");
        assert_eq!(payload["source"], "tasks/t-77");
        assert_eq!(payload["reason"], "复查心电图，需专家门诊");
        assert_eq!(payload["patient"]["name"], p.name.as_str());
        assert_eq!(payload["patient"]["display_name"], "张三");
        assert_eq!(payload["patient"]["phone"], "13800138000");
        let d = in_days(3);
        assert_eq!(
            payload["preferred_dates"][0],
            format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
        );
    }
    {
        use sqlx::Row;
        let pool = svc.sql().await;
        let row = sqlx::query("SELECT state, attempts FROM deliveries")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>("state"), "delivered");
        assert_eq!(row.get::<i64, _>("attempts"), 3);
        pool.close().await;
    }

    // The booking platform answers, twice.
    let booked = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 3 * 86_400,
        nanos: 0,
    };
    let confirm = ConfirmAppointmentRequest {
        name: a.name.clone(),
        outcome: AppointmentState::Confirmed as i32,
        booked_time: Some(booked),
        booking_reference: "BK20261203-0042".into(),
        rejection_reason: String::new(),
    };
    let mut platform = svc.appointments(Role::Integration);
    let first = platform
        .confirm_appointment(confirm.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.state, AppointmentState::Confirmed as i32);
    assert_eq!(first.booking_reference, "BK20261203-0042");
    assert_eq!(first.booked_time, Some(booked));
    assert!(first.interaction.starts_with(&format!("{}/interactions/", p.name)));
    let second = platform
        .confirm_appointment(confirm.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.interaction, first.interaction);
    assert_eq!(second.etag, first.etag, "a repeated answer changes nothing");

    let entries = appointment_entries(&svc, &p.name).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].name, first.interaction);
    assert_eq!(entries[0].department, "cardiology");
    assert_eq!(entries[0].occur_time, Some(booked));
    assert!(entries[0].summary.contains("BK20261203-0042"), "{}", entries[0].summary);
    let details: serde_json::Value = serde_json::from_str(&entries[0].details_json).unwrap();
    assert_eq!(details["outcome"], "confirmed");
    assert_eq!(details["appointment_request"], a.name.as_str());

    // Another answer to an answered request is refused.
    let other = ConfirmAppointmentRequest {
        booking_reference: "BK-OTHER".into(),
        ..confirm
    };
    assert_status(
        platform.confirm_appointment(other).await,
        Code::FailedPrecondition,
        None,
    );

    let list = svc
        .appointments(Role::Guide)
        .list_appointment_requests(ListAppointmentRequestsRequest {
            patient: p.name.clone(),
            state: AppointmentState::Confirmed as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.appointment_requests.len(), 1);
    assert_eq!(list.appointment_requests[0].name, a.name);
    let none = svc
        .appointments(Role::Guide)
        .list_appointment_requests(ListAppointmentRequestsRequest {
            state: AppointmentState::Rejected as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.appointment_requests.is_empty());
    svc.stop().await;
}

async fn a_delivery_the_outbox_gives_up_on_fails_the_request(backend: TestBackend) {
    let (url, received) = webhook_receiver().await;
    received.lock().unwrap().fail_next = 1_000;
    let svc = start(backend, &url, 2).await;
    let p = create(&svc, zhang_san()).await;
    let a = request(&svc, expert_request(&p.name), "").await;
    let failed = eventually("the request to fail", || async {
        let now = state_of(&svc, &a.name).await;
        (now.state == AppointmentState::Failed as i32).then_some(now)
    })
    .await;
    assert!(failed.failure_reason.contains("500"), "{}", failed.failure_reason);
    assert_eq!(received.lock().unwrap().fail_next, 998, "two attempts, then it gave up");
    assert!(received.lock().unwrap().bodies.is_empty());
    svc.stop().await;
}

async fn a_rejection_is_recorded_on_the_timeline(backend: TestBackend) {
    let (url, _received) = webhook_receiver().await;
    let svc = start(backend, &url, 8).await;
    let p = create(&svc, zhang_san()).await;
    let window = AppointmentRequest {
        preferred_dates: vec![],
        kind: AppointmentKind::Revisit as i32,
        doctor: String::new(),
        window_start_time: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() + 86_400,
            nanos: 0,
        }),
        window_end_time: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() + 7 * 86_400,
            nanos: 0,
        }),
        ..expert_request(&p.name)
    };
    let a = request(&svc, window, "").await;
    let rejected = svc
        .appointments(Role::Integration)
        .confirm_appointment(ConfirmAppointmentRequest {
            name: a.name.clone(),
            outcome: AppointmentState::Rejected as i32,
            rejection_reason: "该时段号源已满".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.state, AppointmentState::Rejected as i32);
    assert_eq!(rejected.rejection_reason, "该时段号源已满");
    let entries = appointment_entries(&svc, &p.name).await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0].summary.contains("该时段号源已满"), "{}", entries[0].summary);
    // The request was answered: the platform's late acceptance does not move it back.
    eventually("the delivery to settle", || async {
        (svc.count("deliveries WHERE state <> 'pending'").await == 1).then_some(())
    })
    .await;
    assert_eq!(state_of(&svc, &a.name).await.state, AppointmentState::Rejected as i32);
    svc.stop().await;
}

fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

async fn wrong_input_is_named_by_field(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let p = create(&svc, zhang_san()).await;
    let mut guide = svc.appointments(Role::Guide);
    let call = |a: AppointmentRequest| RequestAppointmentRequest {
        appointment_request: Some(a),
        request_id: String::new(),
    };
    let status = assert_status(
        guide.request_appointment(call(AppointmentRequest::default())).await,
        Code::InvalidArgument,
        Some("appointment_request.patient"),
    );
    let fields = violations(&status);
    for f in [
        "appointment_request.kind",
        "appointment_request.department",
        "appointment_request.preferred_dates",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
    }
    let cases: Vec<(AppointmentRequest, &str)> = vec![
        (
            AppointmentRequest {
                doctor: "dr-1".into(),
                ..expert_request(&p.name)
            },
            "appointment_request.doctor",
        ),
        (
            AppointmentRequest {
                department: "Cardiology Dept".into(),
                ..expert_request(&p.name)
            },
            "appointment_request.department",
        ),
        (
            AppointmentRequest {
                preferred_dates: vec![in_days(2), in_days(-3)],
                ..expert_request(&p.name)
            },
            "appointment_request.preferred_dates[1]",
        ),
        (
            AppointmentRequest {
                preferred_dates: vec![Date {
                    year: 2030,
                    month: 2,
                    day: 30,
                }],
                ..expert_request(&p.name)
            },
            "appointment_request.preferred_dates[0]",
        ),
        (
            AppointmentRequest {
                preferred_dates: vec![],
                window_start_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400 * 5,
                    nanos: 0,
                }),
                window_end_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400,
                    nanos: 0,
                }),
                ..expert_request(&p.name)
            },
            "appointment_request.window_end_time",
        ),
        (
            AppointmentRequest {
                kind: 42,
                ..expert_request(&p.name)
            },
            "appointment_request.kind",
        ),
        (
            AppointmentRequest {
                patient: "people/1".into(),
                ..expert_request(&p.name)
            },
            "appointment_request.patient",
        ),
        (
            AppointmentRequest {
                reason: "很".repeat(501),
                ..expert_request(&p.name)
            },
            "appointment_request.reason",
        ),
    ];
    for (a, field) in cases {
        assert_status(
            guide.request_appointment(call(a)).await,
            Code::InvalidArgument,
            Some(field),
        );
    }
    assert_status(
        guide
            .request_appointment(RequestAppointmentRequest {
                appointment_request: Some(expert_request(&p.name)),
                request_id: "x".repeat(65),
            })
            .await,
        Code::InvalidArgument,
        Some("request_id"),
    );
    assert_status(
        guide
            .request_appointment(call(expert_request("patients/does-not-exist")))
            .await,
        Code::NotFound,
        None,
    );
    assert_eq!(svc.count("appointment_requests").await, 0);
    assert_eq!(svc.count("deliveries").await, 0);

    let a = request(&svc, expert_request(&p.name), "").await;
    let mut platform = svc.appointments(Role::Integration);
    let confirm = |f: fn(&mut ConfirmAppointmentRequest)| {
        let mut c = ConfirmAppointmentRequest {
            name: a.name.clone(),
            outcome: AppointmentState::Confirmed as i32,
            booked_time: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() + 86_400,
                nanos: 0,
            }),
            booking_reference: "BK-1".into(),
            rejection_reason: String::new(),
        };
        f(&mut c);
        c
    };
    for (req, field) in [
        (confirm(|c| c.outcome = AppointmentState::Sent as i32), "outcome"),
        (confirm(|c| c.booking_reference.clear()), "booking_reference"),
        (confirm(|c| c.booked_time = None), "booked_time"),
        (confirm(|c| c.rejection_reason = "no".into()), "rejection_reason"),
        (
            confirm(|c| {
                c.outcome = AppointmentState::Rejected as i32;
                c.booked_time = None;
                c.booking_reference.clear();
            }),
            "rejection_reason",
        ),
        (confirm(|c| c.name = "appointments/1".into()), "name"),
    ] {
        assert_status(
            platform.confirm_appointment(req).await,
            Code::InvalidArgument,
            Some(field),
        );
    }
    assert_status(
        platform
            .confirm_appointment(confirm(|c| c.name = "appointment_requests/missing".into()))
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        guide
            .list_appointment_requests(ListAppointmentRequestsRequest {
                page_size: -1,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("page_size"),
    );
    assert_status(
        guide
            .list_appointment_requests(ListAppointmentRequestsRequest {
                patient: "p/1".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("patient"),
    );
    assert_status(
        guide
            .list_appointment_requests(ListAppointmentRequestsRequest {
                page_token: "forged".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("page_token"),
    );
    assert_status(
        guide
            .get_appointment_request(GetAppointmentRequestRequest { name: "x/1".into() })
            .await,
        Code::InvalidArgument,
        Some("name"),
    );
    // Nothing was answered by the refused calls.
    assert_eq!(appointment_entries(&svc, &p.name).await.len(), 0);
    svc.stop().await;
}

async fn who_may_request_confirm_and_read(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let p = create(&svc, zhang_san()).await;
    let call = || RequestAppointmentRequest {
        appointment_request: Some(expert_request(&p.name)),
        request_id: String::new(),
    };
    for role in [Role::OpinionAnalyst, Role::Auditor, Role::DepartmentHead] {
        assert_status(
            svc.appointments(role).request_appointment(call()).await,
            Code::PermissionDenied,
            None,
        );
    }
    // Service callers (followup booking a revisit asked for on a call) hold Integration.
    svc.appointments(Role::Integration)
        .request_appointment(call())
        .await
        .expect("a service caller requests an appointment");
    // A clinician requests for patients of their own department only.
    assert_status(
        svc.appointments_in(Role::Clinician, "neurology")
            .request_appointment(call())
            .await,
        Code::NotFound,
        None,
    );
    let a = svc
        .appointments_in(Role::Clinician, "cardiology")
        .request_appointment(call())
        .await
        .unwrap()
        .into_inner();
    let confirm = ConfirmAppointmentRequest {
        name: a.name.clone(),
        outcome: AppointmentState::Rejected as i32,
        rejection_reason: "停诊".into(),
        ..Default::default()
    };
    for role in [Role::Guide, Role::Clinician, Role::Inspector, Role::Auditor] {
        assert_status(
            svc.appointments(role).confirm_appointment(confirm.clone()).await,
            Code::PermissionDenied,
            None,
        );
    }
    let get = || GetAppointmentRequestRequest { name: a.name.clone() };
    // The booking platform reads what it answers; requesters read what they request.
    for role in [Role::Integration, Role::Inspector, Role::Admin] {
        let got = svc.appointments(role).get_appointment_request(get()).await.unwrap();
        assert_eq!(got.into_inner().name, a.name);
    }
    for role in [Role::Auditor, Role::OpinionAnalyst] {
        assert_status(
            svc.appointments(role).get_appointment_request(get()).await,
            Code::PermissionDenied,
            None,
        );
    }
    assert_status(
        svc.appointments_in(Role::Clinician, "neurology")
            .get_appointment_request(get())
            .await,
        Code::NotFound,
        None,
    );
    let listed = svc
        .appointments_in(Role::Clinician, "neurology")
        .list_appointment_requests(ListAppointmentRequestsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.appointment_requests.is_empty());
    svc.appointments(Role::Admin)
        .confirm_appointment(confirm)
        .await
        .unwrap();
    svc.stop().await;
}
