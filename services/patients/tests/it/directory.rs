//! The directory: departments, doctors, clinic schedules, the HIS import stream and the guide
//! desk's three queries, with field-level errors and permissions.

use crate::both_backends;
use crate::helpers::*;
use futures::StreamExt;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::directory_row::Row;
use hcrm_proto::patients::directory_service_client::DirectoryServiceClient;
use hcrm_proto::patients::*;
use hcrm_proto::types::Date;
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

both_backends!(
    directory_records,
    directory_roles,
    directory_import,
    directory_queries,
    directory_timezone
);

type Client = DirectoryServiceClient<Authed>;

fn date(y: i32, m: i32, d: i32) -> Date {
    Date {
        year: y,
        month: m,
        day: d,
    }
}

/// A local (UTC+8) time as an instant.
fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
    let t = chrono::NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
        .and_utc()
        .timestamp()
        - 8 * 3600;
    Timestamp { seconds: t, nanos: 0 }
}

fn cardiology() -> Department {
    Department {
        code: "cardiology".into(),
        display_name: "心血管内科".into(),
        english_name: "Cardiology".into(),
        treats: vec!["胸痛".into(), "高血压".into(), "心悸".into()],
        treats_en: vec!["chest pain".into(), "hypertension".into(), "palpitations".into()],
        location: Some(DepartmentLocation {
            building: "门诊楼".into(),
            floor: "3".into(),
            room: "301-310".into(),
        }),
        phone: "0755-8392 0000".into(),
        ..Default::default()
    }
}

fn neurology() -> Department {
    Department {
        code: "neurology".into(),
        display_name: "神经内科".into(),
        english_name: "Neurology".into(),
        treats: vec!["头痛".into(), "头晕".into(), "中风".into()],
        treats_en: vec!["headache".into(), "dizziness".into(), "stroke".into()],
        ..Default::default()
    }
}

fn cardiac_surgery() -> Department {
    Department {
        code: "cardiac-surgery".into(),
        display_name: "心脏外科".into(),
        english_name: "Cardiac Surgery".into(),
        treats: vec!["冠心病".into(), "心脏瓣膜病".into()],
        treats_en: vec!["coronary heart disease".into(), "heart valve disease".into()],
        ..Default::default()
    }
}

fn li_ming() -> Doctor {
    Doctor {
        display_name: "李明".into(),
        title: DoctorTitle::ChiefPhysician as i32,
        expert: true,
        specialties: vec!["冠心病介入".into(), "高血压".into()],
        departments: vec!["cardiology".into()],
        office_phone: "0755-83920001".into(),
        bio: "从事心血管内科临床工作三十年".into(),
        source_system: "his".into(),
        external_id: "D1".into(),
        ..Default::default()
    }
}

fn wang_fang() -> Doctor {
    Doctor {
        display_name: "王芳".into(),
        title: DoctorTitle::AttendingPhysician as i32,
        expert: false,
        specialties: vec!["高血压".into()],
        departments: vec!["cardiology".into()],
        source_system: "his".into(),
        external_id: "D2".into(),
        ..Default::default()
    }
}

fn zhang_wei() -> Doctor {
    Doctor {
        display_name: "张伟".into(),
        title: DoctorTitle::ChiefPhysician as i32,
        expert: true,
        specialties: vec!["头痛".into()],
        departments: vec!["neurology".into()],
        source_system: "his".into(),
        external_id: "D3".into(),
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn pattern(
    doctor_external_id: &str,
    external_id: &str,
    department: &str,
    weekday: Weekday,
    session: DaySession,
    start: &str,
    end: &str,
    kind: ClinicKind,
) -> ClinicPattern {
    ClinicPattern {
        doctor_external_id: doctor_external_id.into(),
        department: department.into(),
        weekday: weekday as i32,
        session: session as i32,
        start_time: start.into(),
        end_time: end.into(),
        kind: kind as i32,
        location: format!("{department} 诊室"),
        quota: 30,
        source_system: "his".into(),
        external_id: external_id.into(),
        ..Default::default()
    }
}

fn row(r: Row) -> DirectoryRow {
    DirectoryRow { row: Some(r) }
}

async fn import(client: &mut Client, messages: Vec<Vec<DirectoryRow>>) -> Vec<RowResult> {
    let requests = tokio_stream::iter(messages.into_iter().map(|rows| ImportDirectoryRequest { rows }));
    let mut stream = client.import_directory(requests).await.unwrap().into_inner();
    let mut results = Vec::new();
    while let Some(r) = stream.next().await {
        results.extend(r.unwrap().results);
    }
    results
}

async fn create_department(client: &mut Client, d: Department) -> Department {
    client
        .create_department(CreateDepartmentRequest { department: Some(d) })
        .await
        .unwrap()
        .into_inner()
}

async fn create_doctor(client: &mut Client, d: Doctor) -> Doctor {
    client
        .create_doctor(CreateDoctorRequest {
            doctor: Some(d),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn directory_records(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut dir = svc.directory(Role::Guide);
    let cardio = create_department(&mut dir, cardiology()).await;
    assert_eq!(cardio.name, "departments/cardiology");
    assert_eq!(cardio.phone, "075583920000");
    assert!(!cardio.archived);
    create_department(&mut dir, neurology()).await;
    assert_status(
        dir.create_department(CreateDepartmentRequest {
            department: Some(cardiology()),
        })
        .await,
        Code::AlreadyExists,
        None,
    );
    assert_status(
        dir.create_department(CreateDepartmentRequest {
            department: Some(Department {
                code: "Bad Code!".into(),
                display_name: String::new(),
                treats: vec!["胸痛".into(), "x".repeat(65)],
                ..Default::default()
            }),
        })
        .await,
        Code::InvalidArgument,
        Some("department.code"),
    );
    let status = dir
        .create_department(CreateDepartmentRequest {
            department: Some(Department {
                code: "ok".into(),
                treats: vec!["x".repeat(65)],
                ..Default::default()
            }),
        })
        .await;
    let status = assert_status(status, Code::InvalidArgument, Some("department.display_name"));
    assert!(status.message().contains("department.treats[0]"), "{status:?}");

    // Doctors: field errors, unknown departments, duplicates.
    assert_status(
        dir.create_doctor(CreateDoctorRequest {
            doctor: Some(Doctor { title: 42, ..li_ming() }),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        Some("doctor.title"),
    );
    assert_status(
        dir.create_doctor(CreateDoctorRequest {
            doctor: Some(Doctor {
                departments: vec!["cardiology".into(), "dermatology".into()],
                ..li_ming()
            }),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        Some("doctor.departments[1]"),
    );
    assert_status(
        dir.create_doctor(CreateDoctorRequest {
            doctor: Some(Doctor {
                departments: vec![],
                ..li_ming()
            }),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        Some("doctor.departments"),
    );
    let li = dir
        .create_doctor(CreateDoctorRequest {
            doctor: Some(li_ming()),
            request_id: "create-li".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(li.name.starts_with("doctors/"));
    assert_eq!(li.name_pinyin, "li ming");
    assert_eq!(li.office_phone, "075583920001");
    // A retry with the same request id returns the first result.
    let again = dir
        .create_doctor(CreateDoctorRequest {
            doctor: Some(li_ming()),
            request_id: "create-li".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, li.name);
    assert_status(
        dir.create_doctor(CreateDoctorRequest {
            doctor: Some(li_ming()),
            request_id: String::new(),
        })
        .await,
        Code::AlreadyExists,
        None,
    );
    let wang = create_doctor(&mut dir, wang_fang()).await;
    let zhang = create_doctor(&mut dir, zhang_wei()).await;

    // Update: mask, etag, stale etag, department check.
    let updated = dir
        .update_doctor(UpdateDoctorRequest {
            doctor: Some(Doctor {
                name: wang.name.clone(),
                departments: vec!["cardiology".into(), "neurology".into()],
                specialties: vec!["高血压".into(), "心律失常".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["departments".into(), "specialties".into()],
            }),
            etag: wang.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.departments, vec!["cardiology", "neurology"]);
    assert_eq!(updated.display_name, "王芳");
    assert_ne!(updated.etag, wang.etag);
    assert_status(
        dir.update_doctor(UpdateDoctorRequest {
            doctor: Some(Doctor {
                name: wang.name.clone(),
                bio: "x".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["bio".into()],
            }),
            etag: wang.etag.clone(),
        })
        .await,
        Code::Aborted,
        None,
    );
    assert_status(
        dir.update_doctor(UpdateDoctorRequest {
            doctor: Some(Doctor {
                name: wang.name.clone(),
                departments: vec!["nowhere".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["departments".into()],
            }),
            etag: updated.etag.clone(),
        })
        .await,
        Code::InvalidArgument,
        Some("doctor.departments[0]"),
    );
    assert_status(
        dir.update_doctor(UpdateDoctorRequest {
            doctor: Some(Doctor {
                name: wang.name.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["external_id".into()],
            }),
            etag: updated.etag.clone(),
        })
        .await,
        Code::InvalidArgument,
        Some("update_mask.paths[0]"),
    );
    assert_status(
        dir.get_doctor(GetDoctorRequest {
            name: "doctors/nobody".into(),
        })
        .await,
        Code::NotFound,
        None,
    );
    let dept = dir
        .update_department(UpdateDepartmentRequest {
            department: Some(Department {
                name: "departments/cardiology".into(),
                treats: vec!["胸痛".into(), "胸闷".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["treats".into()],
            }),
            etag: cardio.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dept.treats, vec!["胸痛", "胸闷"]);
    assert_eq!(dept.display_name, "心血管内科");
    assert_status(
        dir.update_department(UpdateDepartmentRequest {
            department: Some(Department {
                name: "departments/cardiology".into(),
                phone: "x".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["phone".into()],
            }),
            etag: cardio.etag.clone(),
        })
        .await,
        Code::Aborted,
        None,
    );

    // Lists: by department, specialty, expert flag and name (pinyin).
    let names = |list: ListDoctorsResponse| list.doctors.into_iter().map(|d| d.display_name).collect::<Vec<_>>();
    let by = |department: &str, specialty: &str, experts_only: bool, query: &str| ListDoctorsRequest {
        department: department.into(),
        specialty: specialty.into(),
        experts_only,
        query: query.into(),
        ..Default::default()
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let in_cardiology = names(
        dir.list_doctors(by("cardiology", "", false, ""))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(sorted(in_cardiology), vec!["李明", "王芳"]);
    let in_neurology = names(
        dir.list_doctors(by("neurology", "", false, ""))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(sorted(in_neurology), vec!["张伟", "王芳"]);
    let hypertension = names(
        dir.list_doctors(by("", "高血压", false, ""))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(sorted(hypertension), vec!["李明", "王芳"]);
    let experts = names(
        dir.list_doctors(by("cardiology", "", true, ""))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(experts, vec!["李明"]);
    let pinyin = names(dir.list_doctors(by("", "", false, "zhang")).await.unwrap().into_inner());
    assert_eq!(pinyin, vec!["张伟"]);
    assert_status(
        dir.list_doctors(by("Not A Code", "", false, "")).await,
        Code::InvalidArgument,
        Some("department"),
    );

    // Patterns: field errors named, unknown doctor and department, then a good one.
    let p = ClinicPattern {
        doctor: li.name.clone(),
        department: "cardiology".into(),
        weekday: Weekday::Thursday as i32,
        session: DaySession::Morning as i32,
        start_time: "08:00".into(),
        end_time: "12:00".into(),
        kind: ClinicKind::Expert as i32,
        location: "门诊楼3楼305".into(),
        quota: 20,
        ..Default::default()
    };
    let create = |p: ClinicPattern| CreateClinicPatternRequest {
        pattern: Some(p),
        request_id: String::new(),
    };
    assert_status(
        dir.create_clinic_pattern(create(ClinicPattern {
            weekday: 8,
            ..p.clone()
        }))
        .await,
        Code::InvalidArgument,
        Some("pattern.weekday"),
    );
    assert_status(
        dir.create_clinic_pattern(create(ClinicPattern {
            end_time: "07:30".into(),
            ..p.clone()
        }))
        .await,
        Code::InvalidArgument,
        Some("pattern.end_time"),
    );
    assert_status(
        dir.create_clinic_pattern(create(ClinicPattern {
            start_time: "8h".into(),
            ..p.clone()
        }))
        .await,
        Code::InvalidArgument,
        Some("pattern.start_time"),
    );
    assert_status(
        dir.create_clinic_pattern(create(ClinicPattern {
            valid_from: Some(date(2026, 12, 1)),
            valid_until: Some(date(2026, 11, 1)),
            ..p.clone()
        }))
        .await,
        Code::InvalidArgument,
        Some("pattern.valid_until"),
    );
    assert_status(
        dir.create_clinic_pattern(create(ClinicPattern {
            department: "dermatology".into(),
            ..p.clone()
        }))
        .await,
        Code::InvalidArgument,
        Some("pattern.department"),
    );
    assert_status(
        dir.create_clinic_pattern(create(ClinicPattern {
            doctor: "doctors/nobody".into(),
            ..p.clone()
        }))
        .await,
        Code::InvalidArgument,
        Some("pattern.doctor"),
    );
    let created = dir.create_clinic_pattern(create(p.clone())).await.unwrap().into_inner();
    assert!(created.name.starts_with("clinicPatterns/"));
    assert_eq!(created.doctor, li.name);
    let listed = dir
        .list_clinic_patterns(ListClinicPatternsRequest {
            doctor: li.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.patterns.len(), 1);
    assert_eq!(listed.patterns[0].location, "门诊楼3楼305");

    // Exceptions: leave must not carry extra-session fields; extra needs its times.
    let leave = ScheduleException {
        doctor: li.name.clone(),
        date: Some(date(2026, 12, 3)),
        kind: ScheduleExceptionKind::Leave as i32,
        reason: "外出会诊".into(),
        ..Default::default()
    };
    assert_status(
        dir.create_schedule_exception(CreateScheduleExceptionRequest {
            exception: Some(ScheduleException {
                start_time: "08:00".into(),
                ..leave.clone()
            }),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        Some("exception.start_time"),
    );
    assert_status(
        dir.create_schedule_exception(CreateScheduleExceptionRequest {
            exception: Some(ScheduleException {
                kind: ScheduleExceptionKind::Extra as i32,
                session: DaySession::Morning as i32,
                department: "cardiology".into(),
                clinic_kind: ClinicKind::Special as i32,
                start_time: "10:00".into(),
                end_time: "09:00".into(),
                ..leave.clone()
            }),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        Some("exception.end_time"),
    );
    let e = dir
        .create_schedule_exception(CreateScheduleExceptionRequest {
            exception: Some(leave),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let listed = dir
        .list_schedule_exceptions(ListScheduleExceptionsRequest {
            doctor: li.name.clone(),
            from_date: Some(date(2026, 12, 1)),
            to_date: Some(date(2026, 12, 31)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.exceptions.len(), 1);
    assert_eq!(listed.exceptions[0].name, e.name);
    assert_eq!(listed.exceptions[0].reason, "外出会诊");

    // Archiving: the department disappears from lists and cannot be named any more.
    let archived = dir
        .archive_department(ArchiveDepartmentRequest {
            name: "departments/neurology".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archived);
    assert!(archived.archive_time.is_some());
    let list = dir
        .list_departments(ListDepartmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.departments.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(),
        vec!["cardiology"]
    );
    let all = dir
        .list_departments(ListDepartmentsRequest {
            show_archived: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.departments.len(), 2);
    assert_status(
        dir.archive_department(ArchiveDepartmentRequest {
            name: "departments/neurology".into(),
        })
        .await,
        Code::FailedPrecondition,
        None,
    );
    assert_status(
        dir.create_clinic_pattern(create(ClinicPattern {
            doctor: zhang.name.clone(),
            department: "neurology".into(),
            ..p.clone()
        }))
        .await,
        Code::InvalidArgument,
        Some("pattern.department"),
    );
    dir.archive_doctor(ArchiveDoctorRequest {
        name: zhang.name.clone(),
    })
    .await
    .unwrap();
    let doctors = dir
        .list_doctors(ListDoctorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(doctors.doctors.len(), 2);
    // Every write was audited.
    let audit = svc
        .audit(Role::Auditor)
        .list_audit_events(ListAuditEventsRequest {
            page_size: 200,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<&str> = audit.audit_events.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "department.create",
        "department.update",
        "department.archive",
        "doctor.create",
        "doctor.update",
        "doctor.archive",
        "clinic_pattern.create",
        "schedule_exception.create",
    ] {
        assert!(actions.contains(&action), "{action} not audited: {actions:?}");
    }
    svc.stop().await;
}

async fn directory_roles(backend: TestBackend) {
    let svc = Service::start(backend).await;
    create_department(&mut svc.directory(Role::Admin), cardiology()).await;
    // Inspectors read the directory but do not edit it.
    let mut inspector = svc.directory(Role::Inspector);
    inspector
        .get_department(GetDepartmentRequest {
            name: "departments/cardiology".into(),
        })
        .await
        .unwrap();
    inspector
        .find_departments(FindDepartmentsRequest {
            query: "胸痛".into(),
            limit: 0,
        })
        .await
        .unwrap();
    assert_status(
        inspector
            .create_department(CreateDepartmentRequest {
                department: Some(neurology()),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    // Clinicians may not run the import.
    let requests = tokio_stream::iter(vec![ImportDirectoryRequest {
        rows: vec![row(Row::Department(neurology()))],
    }]);
    assert_status(
        svc.directory(Role::Clinician).import_directory(requests).await,
        Code::PermissionDenied,
        None,
    );
    // Auditors see the audit log, not the directory.
    let mut auditor = svc.directory(Role::Auditor);
    assert_status(
        auditor
            .get_department(GetDepartmentRequest {
                name: "departments/cardiology".into(),
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        auditor
            .find_clinic_sessions(FindClinicSessionsRequest {
                department: "cardiology".into(),
                weekday: Weekday::Thursday as i32,
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    // Integrations (the HIS) may import.
    let results = import(
        &mut svc.directory(Role::Integration),
        vec![vec![row(Row::Department(neurology()))]],
    )
    .await;
    assert_eq!(results[0].code, 0);
    assert_eq!(svc.count("departments").await, 2);
    svc.stop().await;
}

async fn directory_import(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut dir = svc.directory(Role::Integration);
    let thursday = |ext: &str| {
        pattern(
            "D1",
            ext,
            "cardiology",
            Weekday::Thursday,
            DaySession::Morning,
            "08:00",
            "12:00",
            ClinicKind::Expert,
        )
    };
    let monday = pattern(
        "D1",
        "P2",
        "cardiology",
        Weekday::Monday,
        DaySession::Afternoon,
        "14:00",
        "17:00",
        ClinicKind::Regular,
    );
    let first = vec![
        row(Row::Department(cardiology())),
        row(Row::Department(Department {
            code: "Bad Code!".into(),
            ..neurology()
        })),
        row(Row::Doctor(li_ming())),
        row(Row::Doctor(Doctor {
            title: 9,
            ..wang_fang()
        })),
        row(Row::Doctor(Doctor {
            external_id: "D4".into(),
            departments: vec!["nowhere".into()],
            ..wang_fang()
        })),
        row(Row::Pattern(thursday("P1"))),
        row(Row::Pattern(monday.clone())),
        row(Row::Pattern(ClinicPattern {
            end_time: "07:00".into(),
            ..thursday("P3")
        })),
        row(Row::Pattern(ClinicPattern {
            doctor_external_id: "D9".into(),
            ..thursday("P4")
        })),
        row(Row::Exception(ScheduleException {
            doctor_external_id: "D1".into(),
            date: Some(date(2026, 12, 3)),
            kind: ScheduleExceptionKind::Leave as i32,
            source_system: "his".into(),
            external_id: "E1".into(),
            ..Default::default()
        })),
        DirectoryRow { row: None },
    ];
    let second = vec![row(Row::Doctor(wang_fang()))];
    let results = import(&mut dir, vec![first.clone(), second.clone()]).await;
    assert_eq!(results.len(), 12);
    assert_eq!(
        results.iter().map(|r| r.index).collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>()
    );
    let codes: Vec<i32> = results.iter().map(|r| r.code).collect();
    let bad = Code::InvalidArgument as i32;
    assert_eq!(codes, vec![0, bad, 0, bad, bad, 0, 0, bad, bad, 0, bad, 0]);
    for (i, field) in [
        (1, "rows[1].department.code"),
        (3, "rows[3].doctor.title"),
        (4, "rows[4].doctor.departments[0]"),
        (7, "rows[7].pattern.end_time"),
        (8, "rows[8].pattern.doctor_external_id"),
        (10, "rows[10]"),
    ] {
        assert!(
            results[i].message.contains(field),
            "row {i}: {:?} should name {field}",
            results[i].message
        );
    }
    assert!(results.iter().filter(|r| r.code == 0).all(|r| r.created));
    assert_eq!(results[0].name, "departments/cardiology");
    let li_name = results[2].name.clone();
    assert!(li_name.starts_with("doctors/"));
    assert_eq!(svc.count("doctors").await, 2);
    assert_eq!(svc.count("clinic_patterns").await, 2);
    assert_eq!(svc.count("schedule_exceptions").await, 1);
    let p1 = dir
        .get_clinic_pattern(GetClinicPatternRequest {
            name: results[5].name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p1.doctor, li_name);
    assert_eq!(p1.start_time, "08:00");

    // The same stream again changes nothing.
    let again = import(&mut dir, vec![first, second]).await;
    assert_eq!(again.iter().map(|r| r.code).collect::<Vec<_>>(), codes);
    assert!(again.iter().filter(|r| r.code == 0).all(|r| !r.created));
    assert_eq!(
        again.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        results.iter().map(|r| r.name.clone()).collect::<Vec<_>>()
    );
    assert_eq!(svc.count("doctors").await, 2);
    assert_eq!(svc.count("clinic_patterns").await, 2);
    assert_eq!(svc.count("schedule_exceptions").await, 1);

    // A changed row updates in place.
    let mut li = li_ming();
    li.title = DoctorTitle::AssociateChiefPhysician as i32;
    let changed = import(&mut dir, vec![vec![row(Row::Doctor(li))]]).await;
    assert_eq!((changed[0].code, changed[0].created), (0, false));
    assert_eq!(changed[0].name, li_name);
    let doctor = dir
        .get_doctor(GetDoctorRequest { name: li_name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(doctor.title, DoctorTitle::AssociateChiefPhysician as i32);

    // A pattern added by hand survives the replacement of the HIS's set.
    let by_hand = svc
        .directory(Role::Guide)
        .create_clinic_pattern(CreateClinicPatternRequest {
            pattern: Some(ClinicPattern {
                doctor: li_name.clone(),
                doctor_external_id: String::new(),
                source_system: String::new(),
                external_id: String::new(),
                weekday: Weekday::Saturday as i32,
                ..thursday("")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // The complete set: P1 moved to another room, P2 gone, P5 new.
    let set = DoctorPatterns {
        doctor: String::new(),
        doctor_external_id: "D1".into(),
        source_system: "his".into(),
        patterns: vec![
            ClinicPattern {
                location: "门诊楼5楼502".into(),
                ..thursday("P1")
            },
            pattern(
                "",
                "P5",
                "cardiology",
                Weekday::Wednesday,
                DaySession::Evening,
                "18:00",
                "21:00",
                ClinicKind::Special,
            ),
        ],
    };
    let replaced = import(&mut dir, vec![vec![row(Row::DoctorPatterns(set.clone()))]]).await;
    assert_eq!((replaced[0].code, replaced[0].name.as_str()), (0, li_name.as_str()));
    let listed = dir
        .list_clinic_patterns(ListClinicPatternsRequest {
            doctor: li_name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut summary: Vec<(String, String)> = listed
        .patterns
        .iter()
        .map(|p| (p.external_id.clone(), p.location.clone()))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![
            (String::new(), "cardiology 诊室".to_string()),
            ("P1".to_string(), "门诊楼5楼502".to_string()),
            ("P5".to_string(), "cardiology 诊室".to_string()),
        ]
    );
    let p1_after = listed.patterns.iter().find(|p| p.external_id == "P1").unwrap();
    assert_eq!(p1_after.name, p1.name, "an upserted pattern keeps its name");
    assert!(listed.patterns.iter().any(|p| p.name == by_hand.name));
    // A set naming an unknown department fails whole, by field, and writes nothing.
    let mut wrong = set.clone();
    wrong.patterns[1].department = "nowhere".into();
    wrong.patterns.truncate(2);
    let failed = import(&mut dir, vec![vec![row(Row::DoctorPatterns(wrong))]]).await;
    assert_eq!(failed[0].code, bad);
    assert!(
        failed[0]
            .message
            .contains("rows[0].doctor_patterns.patterns[1].department")
    );
    assert_eq!(svc.count("clinic_patterns").await, 3);
    // An empty set removes the HIS's patterns, not the hand-made one.
    let empty = DoctorPatterns {
        patterns: vec![],
        ..set
    };
    import(&mut dir, vec![vec![row(Row::DoctorPatterns(empty))]]).await;
    assert_eq!(svc.count("clinic_patterns").await, 1);
    // Too many rows in one message ends the stream with INVALID_ARGUMENT.
    let requests = tokio_stream::iter(vec![ImportDirectoryRequest {
        rows: vec![row(Row::Department(cardiology())); 1001],
    }]);
    let mut stream = dir.import_directory(requests).await.unwrap().into_inner();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    svc.stop().await;
}

/// Departments, three doctors, patterns and exceptions used by the query tests.
async fn seed(dir: &mut Client) -> (String, String, String) {
    let mut rows = vec![
        row(Row::Department(cardiology())),
        row(Row::Department(neurology())),
        row(Row::Department(cardiac_surgery())),
        row(Row::Doctor(li_ming())),
        row(Row::Doctor(wang_fang())),
        row(Row::Doctor(zhang_wei())),
    ];
    rows.push(row(Row::Pattern(ClinicPattern {
        valid_from: Some(date(2026, 11, 1)),
        location: "门诊楼3楼305".into(),
        ..pattern(
            "D1",
            "P1",
            "cardiology",
            Weekday::Thursday,
            DaySession::Morning,
            "08:00",
            "12:00",
            ClinicKind::Expert,
        )
    })));
    rows.push(row(Row::Pattern(ClinicPattern {
        valid_until: Some(date(2026, 11, 30)),
        ..pattern(
            "D1",
            "P2",
            "cardiology",
            Weekday::Monday,
            DaySession::Afternoon,
            "14:00",
            "17:00",
            ClinicKind::Regular,
        )
    })));
    rows.push(row(Row::Pattern(pattern(
        "D2",
        "P3",
        "cardiology",
        Weekday::Thursday,
        DaySession::Afternoon,
        "14:00",
        "17:00",
        ClinicKind::Regular,
    ))));
    rows.push(row(Row::Pattern(pattern(
        "D3",
        "P4",
        "neurology",
        Weekday::Thursday,
        DaySession::Morning,
        "08:30",
        "11:30",
        ClinicKind::Expert,
    ))));
    // Li Ming is away on Thursday 3 December and holds an extra special clinic on Saturday 5th.
    rows.push(row(Row::Exception(ScheduleException {
        doctor_external_id: "D1".into(),
        date: Some(date(2026, 12, 3)),
        kind: ScheduleExceptionKind::Leave as i32,
        reason: "外出会诊".into(),
        source_system: "his".into(),
        external_id: "E1".into(),
        ..Default::default()
    })));
    rows.push(row(Row::Exception(ScheduleException {
        doctor_external_id: "D1".into(),
        date: Some(date(2026, 12, 5)),
        kind: ScheduleExceptionKind::Extra as i32,
        session: DaySession::Morning as i32,
        department: "cardiology".into(),
        start_time: "09:00".into(),
        end_time: "11:30".into(),
        clinic_kind: ClinicKind::Special as i32,
        location: "特需门诊".into(),
        quota: 10,
        source_system: "his".into(),
        external_id: "E2".into(),
        ..Default::default()
    })));
    let results = import(dir, vec![rows]).await;
    assert!(results.iter().all(|r| r.code == 0), "{results:?}");
    (
        results[3].name.clone(),
        results[4].name.clone(),
        results[5].name.clone(),
    )
}

fn dates(sessions: &[ClinicSession]) -> Vec<(i32, i32, String)> {
    sessions
        .iter()
        .map(|s| {
            let d = s.date.unwrap();
            (d.month, d.day, s.start_time.clone())
        })
        .collect()
}

async fn directory_queries(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut dir = svc.directory(Role::Guide);
    let (li, wang, zhang) = seed(&mut dir).await;

    // Which department treats X.
    let find = |query: &str| FindDepartmentsRequest {
        query: query.into(),
        limit: 0,
    };
    let codes = |r: FindDepartmentsResponse| {
        r.matches
            .into_iter()
            .map(|m| (m.department.unwrap().code, m.score))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(dir.find_departments(find("胸痛")).await.unwrap().into_inner()),
        vec![("cardiology".to_string(), 60)]
    );
    assert_eq!(
        codes(dir.find_departments(find("突发胸痛两小时")).await.unwrap().into_inner()),
        vec![("cardiology".to_string(), 20)]
    );
    assert_eq!(
        codes(dir.find_departments(find("心")).await.unwrap().into_inner()),
        vec![("cardiac-surgery".to_string(), 80), ("cardiology".to_string(), 80)]
    );
    assert_eq!(
        codes(dir.find_departments(find("Headache")).await.unwrap().into_inner()),
        vec![("neurology".to_string(), 60)]
    );
    assert_eq!(
        codes(dir.find_departments(find("heart disease")).await.unwrap().into_inner()),
        vec![("cardiac-surgery".to_string(), 40)]
    );
    let top = dir.find_departments(find("胸痛")).await.unwrap().into_inner();
    assert_eq!(top.matches[0].matched, vec!["胸痛"]);
    assert!(
        dir.find_departments(find("骨折"))
            .await
            .unwrap()
            .into_inner()
            .matches
            .is_empty()
    );
    assert_status(
        dir.find_departments(find("")).await,
        Code::InvalidArgument,
        Some("query"),
    );
    assert_status(
        dir.find_departments(FindDepartmentsRequest {
            query: "胸痛".into(),
            limit: 51,
        })
        .await,
        Code::InvalidArgument,
        Some("limit"),
    );

    // When does Dr Li see patients next: from Thursday 26 November 12:30 (the morning clinic
    // is over); Monday 30th is the pattern's last day; the 3rd is leave; the 5th is extra.
    let next = |from: Timestamp, limit: i32| NextClinicSessionsRequest {
        doctor: li.clone(),
        from_time: Some(from),
        limit,
    };
    let sessions = dir
        .next_clinic_sessions(next(local(2026, 11, 26, 12, 30), 4))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(
        dates(&sessions),
        vec![
            (11, 30, "14:00".to_string()),
            (12, 5, "09:00".to_string()),
            (12, 10, "08:00".to_string()),
            (12, 17, "08:00".to_string()),
        ]
    );
    assert_eq!(sessions[0].start, Some(local(2026, 11, 30, 14, 0)));
    assert_eq!(sessions[0].weekday, Weekday::Monday as i32);
    assert!(sessions[0].source.starts_with("clinicPatterns/"));
    assert!(sessions[1].source.starts_with("scheduleExceptions/"));
    assert_eq!(sessions[1].kind, ClinicKind::Special as i32);
    assert_eq!(sessions[1].location, "特需门诊");
    assert_eq!(sessions[2].doctor_display_name, "李明");
    assert_eq!(sessions[2].department_display_name, "心血管内科");
    assert_eq!(sessions[2].location, "门诊楼3楼305");
    // At 11:00 the morning clinic is still on.
    let sessions = dir
        .next_clinic_sessions(next(local(2026, 11, 26, 11, 0), 1))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(dates(&sessions), vec![(11, 26, "08:00".to_string())]);
    // Before valid_from nothing of that pattern: from 1 October the first is 1 November's week.
    let sessions = dir
        .next_clinic_sessions(next(local(2026, 10, 1, 0, 0), 2))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(
        dates(&sessions),
        vec![(10, 5, "14:00".to_string()), (10, 12, "14:00".to_string())]
    );
    assert_status(
        dir.next_clinic_sessions(NextClinicSessionsRequest {
            doctor: "doctors/nobody".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        None,
    );
    assert_status(
        dir.next_clinic_sessions(NextClinicSessionsRequest {
            doctor: "patients/x".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        Some("doctor"),
    );

    // Which experts in cardiology see patients on Thursday 10 December: Li Ming.
    let on = |department: &str, specialty: &str, day: Date, experts_only: bool| FindClinicSessionsRequest {
        department: department.into(),
        specialty: specialty.into(),
        date: Some(day),
        experts_only,
        ..Default::default()
    };
    let found = dir
        .find_clinic_sessions(on("cardiology", "", date(2026, 12, 10), true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.date, Some(date(2026, 12, 10)));
    assert_eq!(found.sessions.len(), 1);
    let s = &found.sessions[0];
    assert_eq!(
        (s.doctor.as_str(), s.doctor_display_name.as_str(), s.doctor_title),
        (li.as_str(), "李明", DoctorTitle::ChiefPhysician as i32)
    );
    assert_eq!(s.specialties, vec!["冠心病介入", "高血压"]);
    assert_eq!((s.start_time.as_str(), s.end_time.as_str()), ("08:00", "12:00"));
    assert_eq!(s.location, "门诊楼3楼305");
    assert_eq!(s.quota, 30);
    // On the 3rd Li Ming is on leave: no experts, only Wang Fang's regular clinic.
    let found = dir
        .find_clinic_sessions(on("cardiology", "", date(2026, 12, 3), true))
        .await
        .unwrap()
        .into_inner();
    assert!(found.sessions.is_empty());
    let found = dir
        .find_clinic_sessions(on("cardiology", "", date(2026, 12, 3), false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        found.sessions.iter().map(|s| s.doctor.clone()).collect::<Vec<_>>(),
        vec![wang.clone()]
    );
    // By specialty, across departments, by start time.
    let found = dir
        .find_clinic_sessions(on("", "高血压", date(2026, 12, 10), false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        found
            .sessions
            .iter()
            .map(|s| (s.doctor_display_name.clone(), s.start_time.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("李明".to_string(), "08:00".to_string()),
            ("王芳".to_string(), "14:00".to_string())
        ]
    );
    // The extra Saturday clinic, and a kind filter.
    let found = dir
        .find_clinic_sessions(on("cardiology", "", date(2026, 12, 5), false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dates(&found.sessions), vec![(12, 5, "09:00".to_string())]);
    let found = dir
        .find_clinic_sessions(FindClinicSessionsRequest {
            kind: ClinicKind::Regular as i32,
            ..on("cardiology", "", date(2026, 12, 10), false)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        found.sessions.iter().map(|s| s.doctor.clone()).collect::<Vec<_>>(),
        vec![wang.clone()]
    );
    // By weekday: the next Thursday from today, today included.
    let found = dir
        .find_clinic_sessions(FindClinicSessionsRequest {
            department: "neurology".into(),
            weekday: Weekday::Thursday as i32,
            experts_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let answered = found.date.unwrap();
    let answered = chrono::NaiveDate::from_ymd_opt(answered.year, answered.month as u32, answered.day as u32).unwrap();
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    use chrono::Datelike;
    assert_eq!(answered.weekday(), chrono::Weekday::Thu);
    assert!(answered >= today && answered < today + chrono::Duration::days(7));
    assert_eq!(
        found.sessions.iter().map(|s| s.doctor.clone()).collect::<Vec<_>>(),
        vec![zhang.clone()]
    );
    // Wrong requests name their field.
    assert_status(
        dir.find_clinic_sessions(FindClinicSessionsRequest {
            weekday: Weekday::Thursday as i32,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        Some("department"),
    );
    assert_status(
        dir.find_clinic_sessions(FindClinicSessionsRequest {
            department: "cardiology".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        Some("date"),
    );
    assert_status(
        dir.find_clinic_sessions(FindClinicSessionsRequest {
            department: "cardiology".into(),
            weekday: 8,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        Some("weekday"),
    );
    assert_status(
        dir.find_clinic_sessions(FindClinicSessionsRequest {
            date: Some(date(2026, 2, 30)),
            ..on("cardiology", "", date(2026, 2, 30), false)
        })
        .await,
        Code::InvalidArgument,
        Some("date"),
    );
    // An archived doctor has no sessions.
    dir.archive_doctor(ArchiveDoctorRequest { name: li.clone() })
        .await
        .unwrap();
    let found = dir
        .find_clinic_sessions(on("cardiology", "", date(2026, 12, 10), true))
        .await
        .unwrap()
        .into_inner();
    assert!(found.sessions.is_empty());
    svc.stop().await;
}

/// A Wednesday clinic until 23:50 local and an extra session at 06:30 on Thursday, both on the
/// other side of midnight in UTC than in the hospital's zone (+08:00).
async fn directory_timezone(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut dir = svc.directory(Role::Guide);
    let results = import(
        &mut dir,
        vec![vec![
            row(Row::Department(neurology())),
            row(Row::Doctor(zhang_wei())),
            row(Row::Pattern(pattern(
                "D3",
                "N1",
                "neurology",
                Weekday::Wednesday,
                DaySession::Evening,
                "22:00",
                "23:50",
                ClinicKind::Regular,
            ))),
            row(Row::Exception(ScheduleException {
                doctor_external_id: "D3".into(),
                date: Some(date(2026, 11, 26)),
                kind: ScheduleExceptionKind::Extra as i32,
                session: DaySession::Morning as i32,
                department: "neurology".into(),
                start_time: "06:30".into(),
                end_time: "07:30".into(),
                clinic_kind: ClinicKind::Expert as i32,
                source_system: "his".into(),
                external_id: "X1".into(),
                ..Default::default()
            })),
        ]],
    )
    .await;
    assert!(results.iter().all(|r| r.code == 0), "{results:?}");
    let zhang = results[1].name.clone();
    // 15:55Z on Wednesday is 23:55 local: Wednesday's clinic is over.
    let sessions = dir
        .next_clinic_sessions(NextClinicSessionsRequest {
            doctor: zhang.clone(),
            from_time: Some(Timestamp {
                seconds: local(2026, 11, 25, 23, 55).seconds,
                nanos: 0,
            }),
            limit: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(
        dates(&sessions),
        vec![(11, 26, "06:30".to_string()), (12, 2, "22:00".to_string())]
    );
    // Thursday 06:30 local is Wednesday 22:30 UTC.
    assert_eq!(
        sessions[0].start,
        Some(Timestamp {
            seconds: chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
                .unwrap()
                .and_hms_opt(22, 30, 0)
                .unwrap()
                .and_utc()
                .timestamp(),
            nanos: 0
        })
    );
    assert_eq!(sessions[1].end, Some(local(2026, 12, 2, 23, 50)));
    // At 23:45 local the Wednesday clinic is still on.
    let sessions = dir
        .next_clinic_sessions(NextClinicSessionsRequest {
            doctor: zhang.clone(),
            from_time: Some(local(2026, 11, 25, 23, 45)),
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(dates(&sessions), vec![(11, 25, "22:00".to_string())]);
    // Thursday's sessions are the extra one only, though it starts on Wednesday in UTC.
    let found = dir
        .find_clinic_sessions(FindClinicSessionsRequest {
            department: "neurology".into(),
            date: Some(date(2026, 11, 26)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dates(&found.sessions), vec![(11, 26, "06:30".to_string())]);
    let found = dir
        .find_clinic_sessions(FindClinicSessionsRequest {
            department: "neurology".into(),
            date: Some(date(2026, 11, 25)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dates(&found.sessions), vec![(11, 25, "22:00".to_string())]);
    svc.stop().await;
}
