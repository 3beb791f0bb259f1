//! Consultations: logging with idempotent retries, the patient's timeline, search, masking of
//! callers' phones, department scope, and statistics in local time.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use prost_types::Timestamp;
use tonic::Code;

both_backends!(
    consultations_are_logged_searched_and_put_on_the_timeline,
    bad_consultations_are_rejected_without_writing,
    consultation_permissions_and_scope,
    consultation_statistics_count_in_local_time,
);

/// Every field named by an INVALID_ARGUMENT status.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// A timestamp from RFC 3339 text.
pub fn at(text: &str) -> Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn about_results(patient: &str) -> Consultation {
    Consultation {
        patient: patient.into(),
        channel: ConsultationChannel::Hotline as i32,
        category: ConsultationCategory::ExamResults as i32,
        question: "胸部CT的结果什么时候能出？".into(),
        answer: "一般两个工作日，可申请邮寄。".into(),
        referral_department: "cardiology".into(),
        referral_doctor: "doctors/d-wang".into(),
        referral_phone: "0755-2600 1234".into(),
        follow_up_needed: true,
        follow_up_note: "结果出来后回电".into(),
        duration_seconds: 180,
        ..Default::default()
    }
}

fn unknown_caller() -> Consultation {
    Consultation {
        caller_phone: "139 0000 1234".into(),
        caller_name: "李女士".into(),
        channel: ConsultationChannel::Counter as i32,
        category: ConsultationCategory::Directions as i32,
        question: "How do I get to the radiology building?".into(),
        answer: "Building B, second floor.".into(),
        duration_seconds: 60,
        ..Default::default()
    }
}

async fn consultations_are_logged_searched_and_put_on_the_timeline(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let patient = create(&svc, zhang_san()).await;
    let mut guide = svc.consultations(Role::Guide, None);
    let first = guide
        .create_consultation(CreateConsultationRequest {
            consultation: Some(about_results(&patient.name)),
            request_id: "hotline-0001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(first.name.starts_with("consultations/"), "{}", first.name);
    assert_eq!(first.handled_by, "guide-user");
    assert_eq!(first.referral_phone, "075526001234");
    assert!(first.start_time.is_some() && first.create_time.is_some());
    assert!(
        first
            .interaction
            .starts_with(&format!("{}/interactions/", patient.name))
    );

    // A retry with the same request id returns the first one and writes nothing more.
    let again = guide
        .create_consultation(CreateConsultationRequest {
            consultation: Some(about_results(&patient.name)),
            request_id: "hotline-0001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, first.name);
    assert_eq!(svc.count("consultations").await, 1);
    assert_eq!(svc.count("interactions").await, 1);

    // The consultation is on the patient's timeline.
    let timeline = svc
        .patients(Role::Guide)
        .list_interactions(ListInteractionsRequest {
            parent: patient.name.clone(),
            kinds: vec![InteractionKind::Consultation as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .interactions;
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].name, first.interaction);
    assert_eq!(timeline[0].department, "cardiology");
    assert_eq!(
        timeline[0].summary,
        "hotline consultation (exam results): 胸部CT的结果什么时候能出？"
    );
    assert!(timeline[0].details_json.contains(&first.name));

    // An unknown caller: no timeline entry.
    let second = guide
        .create_consultation(CreateConsultationRequest {
            consultation: Some(unknown_caller()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.caller_phone, "13900001234");
    assert!(second.interaction.is_empty());
    assert_eq!(svc.count("interactions").await, 1);

    let got = guide
        .get_consultation(GetConsultationRequest {
            name: second.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.caller_phone, "13900001234");
    assert!(!got.masked);
    assert_eq!(got.caller_name, "李女士");

    // Searches.
    let names = |list: ListConsultationsResponse| list.consultations.into_iter().map(|c| c.name).collect::<Vec<_>>();
    let reader = guide.clone();
    let list = |req: ListConsultationsRequest| {
        let mut guide = reader.clone();
        async move { guide.list_consultations(req).await.unwrap().into_inner() }
    };
    assert_eq!(
        names(list(ListConsultationsRequest::default()).await),
        vec![second.name.clone(), first.name.clone()],
        "newest first"
    );
    for phone in ["1234", "139-0000-1234", "13900001234"] {
        let found = list(ListConsultationsRequest {
            phone: phone.into(),
            ..Default::default()
        })
        .await;
        assert_eq!(names(found), vec![second.name.clone()], "phone {phone}");
    }
    let by_patient = list(ListConsultationsRequest {
        patient: patient.name.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(names(by_patient), vec![first.name.clone()]);
    let by_category = list(ListConsultationsRequest {
        category: ConsultationCategory::Directions as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(names(by_category), vec![second.name.clone()]);
    let by_channel = list(ListConsultationsRequest {
        channel: ConsultationChannel::Hotline as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(names(by_channel), vec![first.name.clone()]);
    let follow_ups = list(ListConsultationsRequest {
        follow_up_needed: Some(true),
        ..Default::default()
    })
    .await;
    assert_eq!(names(follow_ups), vec![first.name.clone()]);
    let no_follow_ups = list(ListConsultationsRequest {
        follow_up_needed: Some(false),
        ..Default::default()
    })
    .await;
    assert_eq!(names(no_follow_ups), vec![second.name.clone()]);
    for (text, expected) in [
        ("ct的结果", &first.name),
        ("RADIOLOGY", &second.name),
        ("邮寄", &first.name),
    ] {
        let found = list(ListConsultationsRequest {
            query: text.into(),
            ..Default::default()
        })
        .await;
        assert_eq!(names(found), vec![expected.clone()], "query {text}");
    }
    let wildcard = list(ListConsultationsRequest {
        query: "%".into(),
        ..Default::default()
    })
    .await;
    assert!(wildcard.consultations.is_empty(), "% is literal");
    let by_handler = list(ListConsultationsRequest {
        handled_by: "someone-else".into(),
        ..Default::default()
    })
    .await;
    assert!(by_handler.consultations.is_empty());
    let long_ago = list(ListConsultationsRequest {
        end_time: Some(at("2020-01-01T00:00:00Z")),
        ..Default::default()
    })
    .await;
    assert!(long_ago.consultations.is_empty());

    // Paging, newest first.
    let page1 = list(ListConsultationsRequest {
        page_size: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(page1.consultations[0].name, second.name);
    assert!(!page1.next_page_token.is_empty());
    let page2 = list(ListConsultationsRequest {
        page_size: 1,
        page_token: page1.next_page_token.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(page2.consultations[0].name, first.name);
    // A token does not carry over to another query.
    let status = guide
        .list_consultations(ListConsultationsRequest {
            page_size: 1,
            page_token: page1.next_page_token,
            channel: ConsultationChannel::Counter as i32,
            ..Default::default()
        })
        .await;
    assert_status(status, Code::InvalidArgument, Some("page_token"));

    // The inspection group reads consultations but not protected data: phones masked.
    let masked = svc
        .consultations(Role::Inspector, None)
        .list_consultations(ListConsultationsRequest {
            phone: "1234".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .consultations;
    assert_eq!(masked.len(), 1);
    assert_eq!(masked[0].caller_phone, "139****1234");
    assert!(masked[0].masked);
    let masked = svc
        .consultations(Role::Inspector, None)
        .get_consultation(GetConsultationRequest {
            name: second.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(masked.caller_phone, "139****1234");
    svc.stop().await;
}

async fn bad_consultations_are_rejected_without_writing(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let patient = create(&svc, zhang_san()).await;
    let mut guide = svc.consultations(Role::Guide, None);
    let create_with = |c: Consultation, request_id: &str| CreateConsultationRequest {
        consultation: Some(c),
        request_id: request_id.into(),
    };

    let status = guide
        .create_consultation(create_with(Consultation::default(), ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "consultation.caller_phone",
            "consultation.channel",
            "consultation.category",
            "consultation.question"
        ]
    );
    let cases: Vec<(Consultation, &str, &str)> = vec![
        (
            Consultation {
                caller_phone: "call me".into(),
                ..unknown_caller()
            },
            "",
            "consultation.caller_phone",
        ),
        (
            Consultation {
                patient: "patient-1".into(),
                ..about_results("")
            },
            "",
            "consultation.patient",
        ),
        (
            Consultation {
                referral_doctor: "dr wang".into(),
                ..about_results(&patient.name)
            },
            "",
            "consultation.referral_doctor",
        ),
        (
            Consultation {
                referral_department: "Cardiology Dept".into(),
                ..about_results(&patient.name)
            },
            "",
            "consultation.referral_department",
        ),
        (
            Consultation {
                category: 42,
                ..unknown_caller()
            },
            "",
            "consultation.category",
        ),
        (
            Consultation {
                duration_seconds: 90_000,
                ..unknown_caller()
            },
            "",
            "consultation.duration_seconds",
        ),
        (
            Consultation {
                start_time: Some(at("2031-01-01T00:00:00Z")),
                ..unknown_caller()
            },
            "",
            "consultation.start_time",
        ),
        (
            Consultation {
                follow_up_needed: false,
                follow_up_note: "call back".into(),
                ..unknown_caller()
            },
            "",
            "consultation.follow_up_note",
        ),
        (
            Consultation {
                question: "x".repeat(2001),
                ..unknown_caller()
            },
            "",
            "consultation.question",
        ),
        (unknown_caller(), "not ascii 请求", "request_id"),
    ];
    for (c, request_id, field) in cases {
        let status = guide.create_consultation(create_with(c, request_id)).await;
        assert_status(status, Code::InvalidArgument, Some(field));
    }

    // An unknown patient is NOT_FOUND; a deleted one FAILED_PRECONDITION; neither writes.
    let status = guide
        .create_consultation(create_with(about_results("patients/nobody"), ""))
        .await;
    assert_status(status, Code::NotFound, None);
    svc.patients(Role::Admin)
        .delete_patient(DeletePatientRequest {
            name: patient.name.clone(),
            etag: String::new(),
            reason: "duplicate".into(),
        })
        .await
        .unwrap();
    let status = guide
        .create_consultation(create_with(about_results(&patient.name), "after-delete"))
        .await;
    assert_status(status, Code::FailedPrecondition, None);
    assert_eq!(svc.count("consultations").await, 0);
    assert_eq!(svc.count("interactions").await, 0);
    assert_eq!(svc.count("idempotency").await, 0);

    assert_status(
        guide
            .get_consultation(GetConsultationRequest {
                name: "consultations/nope".into(),
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        guide
            .get_consultation(GetConsultationRequest { name: String::new() })
            .await,
        Code::InvalidArgument,
        Some("name"),
    );
    for (req, field) in [
        (
            ListConsultationsRequest {
                phone: "12ab".into(),
                ..Default::default()
            },
            "phone",
        ),
        (
            ListConsultationsRequest {
                patient: "nobody".into(),
                ..Default::default()
            },
            "patient",
        ),
        (
            ListConsultationsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListConsultationsRequest {
                channel: 17,
                ..Default::default()
            },
            "channel",
        ),
        (
            ListConsultationsRequest {
                start_time: Some(at("2026-02-01T00:00:00Z")),
                end_time: Some(at("2026-01-01T00:00:00Z")),
                ..Default::default()
            },
            "end_time",
        ),
        (
            ListConsultationsRequest {
                page_token: "forged".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        assert_status(guide.list_consultations(req).await, Code::InvalidArgument, Some(field));
    }
    for (req, field) in [
        (GetConsultationStatisticsRequest::default(), "start_time"),
        (
            GetConsultationStatisticsRequest {
                start_time: Some(at("2026-01-01T00:00:00Z")),
                end_time: None,
            },
            "end_time",
        ),
        (
            GetConsultationStatisticsRequest {
                start_time: Some(at("2024-01-01T00:00:00Z")),
                end_time: Some(at("2026-01-01T00:00:00Z")),
            },
            "end_time",
        ),
    ] {
        assert_status(
            guide.get_consultation_statistics(req).await,
            Code::InvalidArgument,
            Some(field),
        );
    }
    svc.stop().await;
}

async fn consultation_permissions_and_scope(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut guide = svc.consultations(Role::Guide, None);
    let referred = guide
        .create_consultation(CreateConsultationRequest {
            consultation: Some(Consultation {
                referral_department: "cardiology".into(),
                ..unknown_caller()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let elsewhere = guide
        .create_consultation(CreateConsultationRequest {
            consultation: Some(Consultation {
                referral_department: "neurology".into(),
                ..unknown_caller()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    // The auditor and clinicians have no business with consultations; the inspection group
    // reads but does not log them.
    for role in [Role::Auditor, Role::Clinician, Role::OpinionAnalyst] {
        let status = svc
            .consultations(role, Some("cardiology"))
            .list_consultations(ListConsultationsRequest::default())
            .await;
        assert_status(status, Code::PermissionDenied, None);
    }
    for role in [Role::Auditor, Role::Inspector, Role::DepartmentHead] {
        let status = svc
            .consultations(role, Some("cardiology"))
            .create_consultation(CreateConsultationRequest {
                consultation: Some(unknown_caller()),
                request_id: String::new(),
            })
            .await;
        assert_status(status, Code::PermissionDenied, None);
    }
    assert_eq!(svc.count("consultations").await, 2);

    // A department head sees what was referred to the department.
    let mut head = svc.consultations(Role::DepartmentHead, Some("cardiology"));
    let seen = head
        .list_consultations(ListConsultationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .consultations;
    assert_eq!(
        seen.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        [referred.name.as_str()]
    );
    assert!(seen[0].masked, "department heads do not read protected data");
    assert_status(
        head.get_consultation(GetConsultationRequest {
            name: elsewhere.name.clone(),
        })
        .await,
        Code::NotFound,
        None,
    );
    let now = hcrm_kit::time::now_micros() / 1_000_000;
    let range = GetConsultationStatisticsRequest {
        start_time: Some(Timestamp {
            seconds: now - 3600,
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: now + 3600,
            nanos: 0,
        }),
    };
    let scoped = head.get_consultation_statistics(range).await.unwrap().into_inner();
    assert_eq!(scoped.total, 1);
    let all = guide.get_consultation_statistics(range).await.unwrap().into_inner();
    assert_eq!(all.total, 2);
    svc.stop().await;
}

async fn consultation_statistics_count_in_local_time(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut guide = svc.consultations(Role::Guide, None);
    // (start UTC, category, channel, duration, follow-up). China is UTC+8.
    let calls = [
        // Tuesday 23:30 local.
        (
            "2025-03-04T15:30:00Z",
            ConsultationCategory::ExamResults,
            ConsultationChannel::Hotline,
            60,
            true,
        ),
        // Tuesday 09:00 local.
        (
            "2025-03-04T01:00:00Z",
            ConsultationCategory::ExamResults,
            ConsultationChannel::Hotline,
            120,
            false,
        ),
        // Wednesday 10:15 local.
        (
            "2025-03-05T02:15:00Z",
            ConsultationCategory::Registration,
            ConsultationChannel::Hotline,
            180,
            false,
        ),
        // Saturday 16:30 UTC is Sunday 00:30 local.
        (
            "2025-03-08T16:30:00Z",
            ConsultationCategory::Directions,
            ConsultationChannel::Counter,
            240,
            false,
        ),
        // Outside the range.
        (
            "2025-03-20T02:00:00Z",
            ConsultationCategory::Medication,
            ConsultationChannel::Wechat,
            600,
            true,
        ),
    ];
    for (start, category, channel, duration, follow_up) in calls {
        guide
            .create_consultation(CreateConsultationRequest {
                consultation: Some(Consultation {
                    category: category as i32,
                    channel: channel as i32,
                    duration_seconds: duration,
                    follow_up_needed: follow_up,
                    start_time: Some(at(start)),
                    ..unknown_caller()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let s = guide
        .get_consultation_statistics(GetConsultationStatisticsRequest {
            start_time: Some(at("2025-03-03T00:00:00Z")),
            end_time: Some(at("2025-03-10T00:00:00Z")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.total, 4);
    assert_eq!(s.utc_offset_minutes, 480);
    let mut hours = vec![0i64; 24];
    hours[23] = 1;
    hours[9] = 1;
    hours[10] = 1;
    hours[0] = 1;
    assert_eq!(s.by_hour, hours, "15:30 UTC counts at 23:30 local");
    assert_eq!(s.by_weekday, vec![0, 2, 1, 0, 0, 0, 1]);
    let category = |c: ConsultationCategory| s.by_category.iter().find(|b| b.category == c as i32).unwrap().count;
    assert_eq!(s.by_category.len(), 9);
    assert_eq!(category(ConsultationCategory::ExamResults), 2);
    assert_eq!(category(ConsultationCategory::Registration), 1);
    assert_eq!(category(ConsultationCategory::Directions), 1);
    assert_eq!(category(ConsultationCategory::Medication), 0);
    let channel = |c: ConsultationChannel| s.by_channel.iter().find(|b| b.channel == c as i32).unwrap().count;
    assert_eq!(channel(ConsultationChannel::Hotline), 3);
    assert_eq!(channel(ConsultationChannel::Counter), 1);
    assert_eq!(channel(ConsultationChannel::Wechat), 0);
    assert_eq!(s.mean_duration_seconds, 150.0);
    assert_eq!(s.follow_up_needed, 1);

    // The listing's time range agrees.
    let listed = guide
        .list_consultations(ListConsultationsRequest {
            start_time: Some(at("2025-03-04T00:00:00Z")),
            end_time: Some(at("2025-03-05T00:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .consultations;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].start_time, Some(at("2025-03-04T15:30:00Z")));
    svc.stop().await;
}
