//! Segments: filters over patient fields and timeline facts on a small hand-built population,
//! saved segments, paging, wrong filters named by field, and who may read them.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use hcrm_proto::types::{Address, Date};
use tonic::Code;

both_backends!(segments_filter_on_fields_and_timeline_facts);

const DAY: i64 = 24 * 3600;

/// A timestamp `days` days ago.
pub fn days_ago(days: i64) -> prost_types::Timestamp {
    let now = chrono::Utc::now().timestamp();
    prost_types::Timestamp {
        seconds: now - days * DAY,
        nanos: 0,
    }
}

/// A birth date making the patient `years` old today (ten days past the birthday).
pub fn aged(years: i32) -> Option<Date> {
    use chrono::Datelike;
    let d = chrono::Utc::now().date_naive() - chrono::Duration::days(10);
    Some(Date {
        year: d.year() - years,
        month: d.month() as i32,
        day: d.day() as i32,
    })
}

/// Records one interaction as admin.
pub async fn record(
    svc: &Service,
    patient: &str,
    kind: InteractionKind,
    dept: &str,
    days: i64,
    codes: &[&str],
    details: &str,
) {
    svc.patients(Role::Admin)
        .record_interaction(RecordInteractionRequest {
            parent: patient.into(),
            interaction: Some(Interaction {
                kind: kind as i32,
                department: dept.into(),
                occur_time: Some(days_ago(days)),
                diagnosis_codes: codes.iter().map(|c| c.to_string()).collect(),
                details_json: details.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("record interaction");
}

#[allow(clippy::too_many_arguments)]
fn person(
    name: &str,
    sex: Sex,
    age: Option<i32>,
    province: &str,
    city: &str,
    occupation: &str,
    income: IncomeBand,
    tags: &[&str],
) -> Patient {
    Patient {
        display_name: name.into(),
        sex: sex as i32,
        birth_date: age.and_then(aged),
        address: Some(Address {
            province: province.into(),
            city: city.into(),
            ..Default::default()
        }),
        occupation: occupation.into(),
        income_band: income as i32,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        department: "guide".into(),
        ..Default::default()
    }
}

async fn count(svc: &Service, filter: SegmentFilter) -> i64 {
    svc.segments(Role::Guide)
        .count_segment(CountSegmentRequest {
            filter: Some(filter),
            ..Default::default()
        })
        .await
        .expect("count")
        .into_inner()
        .count
}

async fn members(svc: &Service, filter: SegmentFilter) -> Vec<String> {
    let mut names: Vec<String> = svc
        .segments(Role::Guide)
        .list_segment_members(ListSegmentMembersRequest {
            filter: Some(filter),
            ..Default::default()
        })
        .await
        .expect("members")
        .into_inner()
        .patients
        .into_iter()
        .map(|p| p.display_name)
        .collect();
    names.sort();
    names
}

async fn segments_filter_on_fields_and_timeline_facts(backend: TestBackend) {
    let svc = Service::start(backend).await;
    use InteractionKind as K;
    let mut p1 = person(
        "甲",
        Sex::Male,
        Some(35),
        "北京",
        "北京",
        "teacher",
        IncomeBand::Middle,
        &["hypertension", "diabetes"],
    );
    p1.vip = true;
    let p1 = create(&svc, p1).await;
    let p2 = create(
        &svc,
        person(
            "乙",
            Sex::Female,
            Some(62),
            "上海",
            "上海",
            "retired",
            IncomeBand::Low,
            &["hypertension"],
        ),
    )
    .await;
    let p3 = create(
        &svc,
        person(
            "丙",
            Sex::Female,
            Some(28),
            "北京",
            "北京",
            "engineer",
            IncomeBand::High,
            &["diabetes"],
        ),
    )
    .await;
    let mut p4 = person(
        "丁",
        Sex::Male,
        Some(45),
        "广东",
        "深圳",
        "teacher",
        IncomeBand::Middle,
        &[],
    );
    p4.contact_preferences = Some(ContactPreferences {
        do_not_contact: true,
        ..Default::default()
    });
    let p4 = create(&svc, p4).await;
    let p5 = create(
        &svc,
        person(
            "戊",
            Sex::Male,
            None,
            "北京",
            "北京",
            "teacher",
            IncomeBand::Unspecified,
            &[],
        ),
    )
    .await;

    record(
        &svc,
        &p1.name,
        K::OutpatientVisit,
        "cardiology",
        10,
        &["I10"],
        r#"{"amount": 300}"#,
    )
    .await;
    record(&svc, &p1.name, K::OutpatientVisit, "cardiology", 100, &[], "").await;
    record(&svc, &p1.name, K::OutpatientVisit, "endocrinology", 400, &["e11.9"], "").await;
    record(&svc, &p2.name, K::Admission, "cardiology", 300, &["I11.0"], "").await;
    record(&svc, &p2.name, K::Discharge, "cardiology", 295, &[], "").await;
    record(&svc, &p3.name, K::Consultation, "", 5, &[], "").await;
    record(&svc, &p4.name, K::OutpatientVisit, "oncology", 20, &["C34"], "").await;
    record(&svc, &p5.name, K::OutpatientVisit, "dermatology", 50, &["L20"], "").await;

    let f = SegmentFilter::default;
    // Everyone who may be contacted; the do-not-contact patient only on request.
    assert_eq!(count(&svc, f()).await, 4);
    assert_eq!(members(&svc, f()).await, vec!["丙", "乙", "戊", "甲"]);
    assert_eq!(
        count(
            &svc,
            SegmentFilter {
                include_do_not_contact: true,
                ..f()
            }
        )
        .await,
        5
    );
    // Timeline facts: departments seen, diagnosis prefixes, visit counts (all time and windowed).
    let seen = |d: &str| SegmentFilter {
        departments_seen: vec![d.into()],
        ..f()
    };
    assert_eq!(members(&svc, seen("cardiology")).await, vec!["乙", "甲"]);
    assert_eq!(count(&svc, seen("oncology")).await, 0);
    let diag = |p: &[&str]| SegmentFilter {
        diagnosis_prefixes: p.iter().map(|s| s.to_string()).collect(),
        ..f()
    };
    assert_eq!(members(&svc, diag(&["I1"])).await, vec!["乙", "甲"]);
    assert_eq!(members(&svc, diag(&["e11"])).await, vec!["甲"]);
    assert_eq!(members(&svc, diag(&["L", "E11"])).await, vec!["戊", "甲"]);
    assert_eq!(
        count(
            &svc,
            SegmentFilter {
                include_do_not_contact: true,
                ..diag(&["C3"])
            }
        )
        .await,
        1
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                min_visits: Some(2),
                ..f()
            }
        )
        .await,
        vec!["乙", "甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                max_visits: Some(0),
                ..f()
            }
        )
        .await,
        vec!["丙"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                min_visits: Some(1),
                visits_since: Some(days_ago(200)),
                ..f()
            }
        )
        .await,
        vec!["戊", "甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                min_visits: Some(2),
                visits_since: Some(days_ago(200)),
                ..f()
            }
        )
        .await,
        vec!["甲"]
    );
    // Last visit before / after; a patient who never came has no visit after the cut.
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                last_visit_before: Some(days_ago(180)),
                ..f()
            }
        )
        .await,
        vec!["丙", "乙"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                last_visit_after: Some(days_ago(60)),
                ..f()
            }
        )
        .await,
        vec!["戊", "甲"]
    );
    // Patient fields.
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                min_age: Some(30),
                max_age: Some(65),
                ..f()
            }
        )
        .await,
        vec!["乙", "甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                max_age: Some(35),
                ..f()
            }
        )
        .await,
        vec!["丙", "甲"]
    );
    assert_eq!(
        count(
            &svc,
            SegmentFilter {
                provinces: vec!["北京".into()],
                ..f()
            }
        )
        .await,
        3
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                cities: vec!["上海".into()],
                ..f()
            }
        )
        .await,
        vec!["乙"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                occupations: vec!["teacher".into()],
                ..f()
            }
        )
        .await,
        vec!["戊", "甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                income_bands: vec![IncomeBand::Middle as i32, IncomeBand::High as i32],
                ..f()
            }
        )
        .await,
        vec!["丙", "甲"]
    );
    assert_eq!(
        count(
            &svc,
            SegmentFilter {
                tags_any: vec!["diabetes".into(), "hypertension".into()],
                ..f()
            }
        )
        .await,
        3
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                tags_all: vec!["hypertension".into(), "diabetes".into()],
                ..f()
            }
        )
        .await,
        vec!["甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                sexes: vec![Sex::Female as i32],
                ..f()
            }
        )
        .await,
        vec!["丙", "乙"]
    );
    assert_eq!(
        members(&svc, SegmentFilter { vip: Some(true), ..f() }).await,
        vec!["甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                provinces: vec!["北京".into()],
                min_visits: Some(1),
                ..f()
            }
        )
        .await,
        vec!["戊", "甲"]
    );

    // Computed grades (after a recomputation): class, intent grade.
    let done = svc
        .grading(Role::Admin)
        .recompute_grades(RecomputeGradesRequest {})
        .await
        .expect("recompute")
        .into_inner();
    assert_eq!(done.evaluated, 5);
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                classes: vec![CustomerClass::Active as i32],
                ..f()
            }
        )
        .await,
        vec!["戊", "甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                intent_grades: vec![IntentGrade::A as i32],
                ..f()
            }
        )
        .await,
        vec!["甲"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                intent_grades: vec![IntentGrade::B as i32],
                ..f()
            }
        )
        .await,
        vec!["戊"]
    );
    assert_eq!(
        members(
            &svc,
            SegmentFilter {
                value_tiers: vec![ValueTier::High as i32],
                ..f()
            }
        )
        .await,
        vec!["甲"],
        "the VIP is high tier"
    );

    // Saved segments: create, count by name, update with etag, list, delete.
    let mut admin = svc.segments(Role::Guide);
    let saved = admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                display_name: "北京 hypertension".into(),
                description: "outreach".into(),
                filter: Some(SegmentFilter {
                    provinces: vec!["北京".into()],
                    ..f()
                }),
                ..Default::default()
            }),
            request_id: "seg-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(saved.name.starts_with("segments/"));
    assert_eq!(saved.owner, "guide-user");
    let again = admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                display_name: "another".into(),
                filter: Some(f()),
                ..Default::default()
            }),
            request_id: "seg-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, saved.name, "a retry returns the first result");
    let by_name = |name: &str| CountSegmentRequest {
        segment: name.into(),
        ..Default::default()
    };
    assert_eq!(
        admin
            .count_segment(by_name(&saved.name))
            .await
            .unwrap()
            .into_inner()
            .count,
        3
    );
    let updated = admin
        .update_segment(UpdateSegmentRequest {
            segment: Some(Segment {
                name: saved.name.clone(),
                filter: Some(SegmentFilter {
                    provinces: vec!["北京".into()],
                    tags_any: vec!["hypertension".into()],
                    ..f()
                }),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["filter".into()],
            }),
            etag: saved.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(updated.etag, saved.etag);
    assert_eq!(updated.display_name, "北京 hypertension");
    assert_eq!(
        admin
            .count_segment(by_name(&saved.name))
            .await
            .unwrap()
            .into_inner()
            .count,
        1
    );
    assert_status(
        admin
            .update_segment(UpdateSegmentRequest {
                segment: Some(Segment {
                    name: saved.name.clone(),
                    display_name: "stale".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
                etag: saved.etag.clone(),
            })
            .await,
        Code::Aborted,
        None,
    );
    let listed = admin
        .list_segments(ListSegmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.segments.len(), 1);

    // Paging members: 4 patients, 3 per page.
    let mut integration = svc.segments(Role::Integration);
    let mut seen_names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = integration
            .list_segment_members(ListSegmentMembersRequest {
                filter: Some(f()),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("integration reads members")
            .into_inner();
        pages += 1;
        seen_names.extend(page.patients.iter().map(|p| p.name.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 2);
    seen_names.sort();
    seen_names.dedup();
    assert_eq!(seen_names.len(), 4);
    // A token is bound to its query.
    let other_token = integration
        .list_segment_members(ListSegmentMembersRequest {
            filter: Some(f()),
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert_status(
        integration
            .list_segment_members(ListSegmentMembersRequest {
                filter: Some(seen("cardiology")),
                page_size: 3,
                page_token: other_token,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("page_token"),
    );

    // Wrong filters are named by field.
    assert_status(
        admin
            .count_segment(CountSegmentRequest {
                filter: Some(SegmentFilter {
                    min_age: Some(200),
                    ..f()
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("filter.min_age"),
    );
    assert_status(
        admin
            .count_segment(CountSegmentRequest {
                filter: Some(SegmentFilter {
                    min_visits: Some(5),
                    max_visits: Some(2),
                    ..f()
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("filter.max_visits"),
    );
    assert_status(
        admin
            .list_segment_members(ListSegmentMembersRequest {
                filter: Some(diag(&["I1%"])),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("filter.diagnosis_prefixes[0]"),
    );
    assert_status(
        admin
            .create_segment(CreateSegmentRequest {
                segment: Some(Segment {
                    display_name: "x".into(),
                    filter: Some(SegmentFilter { sexes: vec![42], ..f() }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("segment.filter.sexes[0]"),
    );
    assert_status(
        admin
            .create_segment(CreateSegmentRequest {
                segment: Some(Segment {
                    filter: Some(f()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("segment.display_name"),
    );
    assert_status(
        admin.count_segment(by_name("segments/nope")).await,
        Code::NotFound,
        None,
    );
    assert_status(
        admin.count_segment(by_name("groups/x")).await,
        Code::InvalidArgument,
        Some("segment"),
    );

    // Who may read and write.
    assert_status(
        svc.segments(Role::Auditor).count_segment(by_name(&saved.name)).await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        svc.segments(Role::Auditor)
            .list_segment_members(ListSegmentMembersRequest {
                segment: saved.name.clone(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        integration
            .create_segment(CreateSegmentRequest {
                segment: Some(Segment {
                    display_name: "x".into(),
                    filter: Some(f()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    let by_integration = integration
        .list_segment_members(ListSegmentMembersRequest {
            segment: saved.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_integration.patients.len(), 1);
    assert_eq!(by_integration.patients[0].name, p1.name);

    admin
        .delete_segment(DeleteSegmentRequest {
            name: saved.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert_status(
        admin
            .get_segment(GetSegmentRequest {
                name: saved.name.clone(),
            })
            .await,
        Code::NotFound,
        None,
    );
    let _ = (p3, p4, p5);
    svc.stop().await;
}
