//! Benchmark of the guide desk's directory queries (a program, not a test):
//! `cargo bench --bench directory`.
//!
//! Starts the release `hcrm serve --target patients` as its own process on SQLite and on
//! PostgreSQL, fills the directory through the `ImportDirectory` stream (the HIS's path, not
//! bulk SQL): ~40 departments, `BENCH_DOCTORS` doctors (default 5,000) with three weekly patterns
//! each and ten exceptions each over the coming year (eight leave days, two extra sessions). Then
//! it measures p50/p99 of the three queries (FindDepartments, NextClinicSessions,
//! FindClinicSessions) with a few concurrent clients, beside a ceiling measured in the same run: a
//! bare tonic server answering health Check. Target: p99 under 10 ms.
//!
//! Environment: `BENCH_BACKENDS=sqlite,postgres` (default both), `BENCH_DOCTORS` (default 5000),
//! `BENCH_CONCURRENCY` (default 4), `BENCH_OPS` (calls per query, default 3000).

mod common;

use common::*;
use futures::StreamExt;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::patients::directory_row::Row as DirRow;
use hcrm_proto::patients::directory_service_client::DirectoryServiceClient;
use hcrm_proto::patients::*;
use hcrm_proto::types::Date;
use std::sync::Arc;
use std::time::Instant;
use tonic::transport::Channel;

const SECRET: &str = "benchmark-signing-secret-0123456789abcdef";

type Server = Process;

async fn start_server(data_dir: &std::path::Path, database_url: &str) -> Server {
    serve(
        "patients",
        data_dir,
        SECRET,
        &[("HCRM__PATIENTS__DATABASE_URL", database_url)],
        false,
    )
    .await
}

/// (code, Chinese name, English name, what it treats in Chinese, in English).
type DepartmentSeed = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const DEPARTMENTS: &[DepartmentSeed] = &[
    (
        "cardiology",
        "心血管内科",
        "Cardiology",
        &["胸痛", "高血压", "心悸"],
        &["chest pain", "hypertension", "palpitations"],
    ),
    (
        "neurology",
        "神经内科",
        "Neurology",
        &["头痛", "头晕", "中风"],
        &["headache", "dizziness", "stroke"],
    ),
    (
        "respiratory",
        "呼吸内科",
        "Respiratory Medicine",
        &["咳嗽", "哮喘", "肺炎"],
        &["cough", "asthma", "pneumonia"],
    ),
    (
        "gastroenterology",
        "消化内科",
        "Gastroenterology",
        &["胃痛", "腹泻", "胃溃疡"],
        &["stomach ache", "diarrhoea", "ulcer"],
    ),
    (
        "endocrinology",
        "内分泌科",
        "Endocrinology",
        &["糖尿病", "甲亢", "肥胖"],
        &["diabetes", "hyperthyroidism", "obesity"],
    ),
    (
        "nephrology",
        "肾内科",
        "Nephrology",
        &["肾炎", "蛋白尿", "尿毒症"],
        &["nephritis", "proteinuria", "uraemia"],
    ),
    (
        "haematology",
        "血液内科",
        "Haematology",
        &["贫血", "白血病", "淋巴瘤"],
        &["anaemia", "leukaemia", "lymphoma"],
    ),
    (
        "rheumatology",
        "风湿免疫科",
        "Rheumatology",
        &["关节痛", "红斑狼疮", "痛风"],
        &["joint pain", "lupus", "gout"],
    ),
    (
        "infectious-diseases",
        "感染科",
        "Infectious Diseases",
        &["发热", "肝炎", "结核"],
        &["fever", "hepatitis", "tuberculosis"],
    ),
    (
        "general-surgery",
        "普通外科",
        "General Surgery",
        &["阑尾炎", "疝气", "胆结石"],
        &["appendicitis", "hernia", "gallstones"],
    ),
    (
        "orthopaedics",
        "骨科",
        "Orthopaedics",
        &["骨折", "腰痛", "关节置换"],
        &["fracture", "back pain", "joint replacement"],
    ),
    (
        "neurosurgery",
        "神经外科",
        "Neurosurgery",
        &["脑肿瘤", "脑出血", "颅脑损伤"],
        &["brain tumour", "brain haemorrhage", "head injury"],
    ),
    (
        "cardiac-surgery",
        "心脏外科",
        "Cardiac Surgery",
        &["冠心病", "心脏瓣膜病", "先心病"],
        &[
            "coronary heart disease",
            "heart valve disease",
            "congenital heart disease",
        ],
    ),
    (
        "thoracic-surgery",
        "胸外科",
        "Thoracic Surgery",
        &["肺结节", "食管癌", "气胸"],
        &["lung nodule", "oesophageal cancer", "pneumothorax"],
    ),
    (
        "urology",
        "泌尿外科",
        "Urology",
        &["肾结石", "前列腺增生", "尿路感染"],
        &["kidney stones", "prostate enlargement", "urinary infection"],
    ),
    (
        "vascular-surgery",
        "血管外科",
        "Vascular Surgery",
        &["静脉曲张", "动脉瘤", "血栓"],
        &["varicose veins", "aneurysm", "thrombosis"],
    ),
    (
        "plastic-surgery",
        "整形外科",
        "Plastic Surgery",
        &["疤痕", "烧伤修复", "整形"],
        &["scar", "burn repair", "cosmetic surgery"],
    ),
    (
        "breast-surgery",
        "乳腺外科",
        "Breast Surgery",
        &["乳腺结节", "乳腺癌", "乳腺增生"],
        &["breast lump", "breast cancer", "breast hyperplasia"],
    ),
    (
        "obstetrics",
        "产科",
        "Obstetrics",
        &["孕检", "分娩", "妊娠高血压"],
        &["prenatal check", "childbirth", "gestational hypertension"],
    ),
    (
        "gynaecology",
        "妇科",
        "Gynaecology",
        &["月经不调", "子宫肌瘤", "宫颈炎"],
        &["irregular periods", "uterine fibroids", "cervicitis"],
    ),
    (
        "paediatrics",
        "儿科",
        "Paediatrics",
        &["小儿发热", "小儿咳嗽", "生长发育"],
        &["child fever", "child cough", "growth"],
    ),
    (
        "neonatology",
        "新生儿科",
        "Neonatology",
        &["新生儿黄疸", "早产儿", "新生儿肺炎"],
        &["neonatal jaundice", "premature infant", "neonatal pneumonia"],
    ),
    (
        "ophthalmology",
        "眼科",
        "Ophthalmology",
        &["白内障", "青光眼", "近视"],
        &["cataract", "glaucoma", "myopia"],
    ),
    (
        "ent",
        "耳鼻喉科",
        "Otorhinolaryngology",
        &["鼻炎", "中耳炎", "咽喉痛"],
        &["rhinitis", "otitis media", "sore throat"],
    ),
    (
        "stomatology",
        "口腔科",
        "Stomatology",
        &["牙痛", "龋齿", "牙周炎"],
        &["toothache", "dental caries", "periodontitis"],
    ),
    (
        "dermatology",
        "皮肤科",
        "Dermatology",
        &["湿疹", "痤疮", "荨麻疹"],
        &["eczema", "acne", "urticaria"],
    ),
    (
        "psychiatry",
        "精神心理科",
        "Psychiatry",
        &["失眠", "抑郁", "焦虑"],
        &["insomnia", "depression", "anxiety"],
    ),
    (
        "oncology",
        "肿瘤科",
        "Oncology",
        &["化疗", "肿瘤", "放疗"],
        &["chemotherapy", "tumour", "radiotherapy"],
    ),
    (
        "rehabilitation",
        "康复医学科",
        "Rehabilitation Medicine",
        &["中风康复", "颈椎病", "运动损伤"],
        &["stroke rehabilitation", "cervical spondylosis", "sports injury"],
    ),
    (
        "tcm",
        "中医科",
        "Traditional Chinese Medicine",
        &["针灸", "调理", "推拿"],
        &["acupuncture", "conditioning", "tuina massage"],
    ),
    (
        "emergency",
        "急诊科",
        "Emergency Medicine",
        &["急救", "外伤", "中毒"],
        &["first aid", "trauma", "poisoning"],
    ),
    (
        "icu",
        "重症医学科",
        "Intensive Care",
        &["重症监护", "呼吸衰竭", "休克"],
        &["intensive care", "respiratory failure", "shock"],
    ),
    (
        "anaesthesiology",
        "麻醉科",
        "Anaesthesiology",
        &["麻醉评估", "疼痛治疗", "镇痛"],
        &["anaesthesia assessment", "pain management", "analgesia"],
    ),
    (
        "pain",
        "疼痛科",
        "Pain Medicine",
        &["慢性疼痛", "带状疱疹后神经痛", "三叉神经痛"],
        &["chronic pain", "postherpetic neuralgia", "trigeminal neuralgia"],
    ),
    (
        "nutrition",
        "临床营养科",
        "Clinical Nutrition",
        &["营养不良", "饮食指导", "体重管理"],
        &["malnutrition", "diet advice", "weight management"],
    ),
    (
        "geriatrics",
        "老年医学科",
        "Geriatrics",
        &["老年病", "骨质疏松", "认知障碍"],
        &["geriatric care", "osteoporosis", "cognitive impairment"],
    ),
    (
        "andrology",
        "男科",
        "Andrology",
        &["前列腺炎", "不育", "性功能障碍"],
        &["prostatitis", "infertility", "sexual dysfunction"],
    ),
    (
        "reproductive-medicine",
        "生殖医学科",
        "Reproductive Medicine",
        &["试管婴儿", "不孕", "促排卵"],
        &["ivf", "infertility treatment", "ovulation induction"],
    ),
    (
        "health-check",
        "体检中心",
        "Health Check-up",
        &["体检", "健康评估", "入职体检"],
        &["health check", "health assessment", "employment check"],
    ),
    (
        "nuclear-medicine",
        "核医学科",
        "Nuclear Medicine",
        &["甲状腺扫描", "骨扫描", "碘治疗"],
        &["thyroid scan", "bone scan", "iodine therapy"],
    ),
];

const SPECIALTY_SUFFIXES: &[&str] = &["疑难病", "微创治疗", "介入治疗", "康复"];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平",
];

fn date_of(day: chrono::NaiveDate) -> Date {
    use chrono::Datelike;
    Date {
        year: day.year(),
        month: day.month() as i32,
        day: day.day() as i32,
    }
}

fn specialty(dept: usize, k: usize) -> String {
    format!(
        "{}{}",
        DEPARTMENTS[dept].1,
        SPECIALTY_SUFFIXES[k % SPECIALTY_SUFFIXES.len()]
    )
}

/// The rows of the directory: departments, doctors, patterns, exceptions, in that order.
fn directory_rows(doctors: usize, today: chrono::NaiveDate) -> Vec<DirectoryRow> {
    let row = |r: DirRow| DirectoryRow { row: Some(r) };
    let mut rows = Vec::new();
    for (code, zh, en, treats, treats_en) in DEPARTMENTS {
        rows.push(row(DirRow::Department(Department {
            code: code.to_string(),
            display_name: zh.to_string(),
            english_name: en.to_string(),
            treats: treats.iter().map(|t| t.to_string()).collect(),
            treats_en: treats_en.iter().map(|t| t.to_string()).collect(),
            location: Some(DepartmentLocation {
                building: "门诊楼".into(),
                floor: format!("{}", code.len() % 9 + 1),
                room: String::new(),
            }),
            phone: "0755-83920000".into(),
            ..Default::default()
        })));
    }
    let n = DEPARTMENTS.len();
    for i in 0..doctors {
        let dept = i % n;
        let mut departments = vec![DEPARTMENTS[dept].0.to_string()];
        if i % 5 == 0 {
            departments.push(DEPARTMENTS[(dept + 1) % n].0.to_string());
        }
        rows.push(row(DirRow::Doctor(Doctor {
            display_name: format!(
                "{}{}{}",
                SURNAMES[i % SURNAMES.len()],
                GIVEN[(i / 16) % GIVEN.len()],
                GIVEN[(i / 320) % GIVEN.len()]
            ),
            title: (i % 4 + 1) as i32,
            expert: i % 10 < 3,
            specialties: vec![specialty(dept, i / n), specialty(dept, i / n + 1)],
            departments,
            source_system: "his".into(),
            external_id: format!("D{i}"),
            ..Default::default()
        })));
    }
    let from = date_of(today - chrono::Duration::days(30));
    let until = date_of(today + chrono::Duration::days(365));
    for i in 0..doctors {
        let dept = i % n;
        for j in 0..3 {
            let session = (j % 2) as i32 + 1;
            let (start, end) = if session == 1 {
                ("08:00", "12:00")
            } else {
                ("14:00", "17:30")
            };
            rows.push(row(DirRow::Pattern(ClinicPattern {
                doctor_external_id: format!("D{i}"),
                department: DEPARTMENTS[dept].0.to_string(),
                weekday: ((i + 2 * j) % 7 + 1) as i32,
                session,
                start_time: start.into(),
                end_time: end.into(),
                kind: if i % 10 < 3 && j == 0 {
                    ClinicKind::Expert as i32
                } else {
                    ClinicKind::Regular as i32
                },
                location: format!("{}{}诊室", DEPARTMENTS[dept].1, j + 1),
                valid_from: Some(from),
                valid_until: Some(until),
                quota: 30,
                source_system: "his".into(),
                external_id: format!("P{i}-{j}"),
                ..Default::default()
            })));
        }
    }
    for i in 0..doctors {
        let dept = i % n;
        for k in 0..10 {
            let day = today + chrono::Duration::days(((i * 37 + k * 41) % 365) as i64);
            let extra = k >= 8;
            rows.push(row(DirRow::Exception(ScheduleException {
                doctor_external_id: format!("D{i}"),
                date: Some(date_of(day)),
                kind: if extra {
                    ScheduleExceptionKind::Extra as i32
                } else {
                    ScheduleExceptionKind::Leave as i32
                },
                session: if extra { DaySession::Evening as i32 } else { 0 },
                department: if extra {
                    DEPARTMENTS[dept].0.to_string()
                } else {
                    String::new()
                },
                start_time: if extra { "18:00".into() } else { String::new() },
                end_time: if extra { "20:30".into() } else { String::new() },
                clinic_kind: if extra { ClinicKind::Special as i32 } else { 0 },
                reason: if extra { "加诊".into() } else { "休假".into() },
                source_system: "his".into(),
                external_id: format!("E{i}-{k}"),
                ..Default::default()
            })));
        }
    }
    rows
}

async fn bench_backend(backend: TestBackend, rows: &mut Vec<Row>) {
    let label = match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres => "postgres",
    };
    let doctors = env_usize("BENCH_DOCTORS", 5_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 4);
    let ops = env_usize("BENCH_OPS", 3_000);
    let db = TestDatabase::new(backend).await.expect("database");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path(), &db.url).await;
    let token = Authenticator::hs256(SECRET)
        .mint("bench", &[Role::Admin], None, 3600)
        .unwrap();
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let client = DirectoryServiceClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", bearer.clone());
        Ok(req)
    });

    // Fill through the import stream, 1,000 rows per message.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let all = directory_rows(doctors, today);
    let total = all.len();
    let mut messages = Vec::new();
    let mut it = all.into_iter().peekable();
    while it.peek().is_some() {
        messages.push(ImportDirectoryRequest {
            rows: it.by_ref().take(1_000).collect(),
        });
    }
    let started = Instant::now();
    let mut stream = client
        .clone()
        .import_directory(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let mut ok = 0;
    while let Some(r) = stream.next().await {
        for result in r.unwrap().results {
            assert_eq!(result.code, 0, "import row failed: {}", result.message);
            ok += 1;
        }
    }
    let wall = started.elapsed();
    assert_eq!(ok, total);
    rows.push(Row {
        backend: label,
        what: format!("ImportDirectory (stream, {total} rows: {doctors} doctors, patterns, a year of exceptions)"),
        ops_per_sec: total as f64 / wall.as_secs_f64(),
        p50_ms: 0.0,
        p99_ms: 0.0,
        note: format!("{:.1} s total; rows/s", wall.as_secs_f64()),
    });

    // Doctor names for NextClinicSessions.
    let mut names = Vec::new();
    let mut page_token = String::new();
    let mut lister = client.clone();
    loop {
        let page = lister
            .list_doctors(ListDoctorsRequest {
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        names.extend(page.doctors.into_iter().map(|d| d.name));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(names.len(), doctors);
    let names = Arc::new(names);

    // Which department treats X.
    let c = client.clone();
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let mut c = c.clone();
        let (_, zh, _, treats, treats_en) = DEPARTMENTS[(i * 7) % DEPARTMENTS.len()];
        let query = match i % 4 {
            0 => treats[i % treats.len()].to_string(),
            1 => treats_en[i % treats_en.len()].to_string(),
            2 => format!("最近{}", treats[(i / 4) % treats.len()]),
            _ => zh.chars().take(2).collect(),
        };
        async move {
            let r = c
                .find_departments(FindDepartmentsRequest { query, limit: 5 })
                .await
                .expect("find departments")
                .into_inner();
            assert!(!r.matches.is_empty());
        }
    })
    .await;
    rows.push(summarize(
        label,
        &format!("FindDepartments (over {} departments)", DEPARTMENTS.len()),
        wall,
        lat,
        format!("{concurrency} clients"),
    ));

    // When does Dr Y see patients next.
    let c = client.clone();
    let n = names.clone();
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let mut c = c.clone();
        let doctor = n[(i * 7919) % n.len()].clone();
        async move {
            let r = c
                .next_clinic_sessions(NextClinicSessionsRequest {
                    doctor,
                    from_time: None,
                    limit: 5,
                })
                .await
                .expect("next sessions")
                .into_inner();
            assert_eq!(r.sessions.len(), 5);
        }
    })
    .await;
    rows.push(summarize(
        label,
        &format!("NextClinicSessions (limit 5, {doctors} doctors)"),
        wall,
        lat,
        format!("{concurrency} clients"),
    ));

    // Which experts in Z see patients on a weekday / date: Z a department, then a specialty.
    for (what, by_specialty) in [("department", false), ("specialty", true)] {
        let c = client.clone();
        let (wall, lat) = drive(concurrency, ops, move |i| {
            let mut c = c.clone();
            let dept = (i * 13) % DEPARTMENTS.len();
            let mut req = FindClinicSessionsRequest {
                experts_only: i % 2 == 0,
                ..Default::default()
            };
            if by_specialty {
                req.specialty = specialty(dept, i);
            } else {
                req.department = DEPARTMENTS[dept].0.to_string();
            }
            if i % 2 == 0 {
                req.weekday = (i % 7 + 1) as i32;
            } else {
                req.date = Some(date_of(today + chrono::Duration::days((i % 300) as i64)));
            }
            async move {
                c.find_clinic_sessions(req).await.expect("find sessions");
            }
        })
        .await;
        rows.push(summarize(
            label,
            &format!("FindClinicSessions by {what} (weekday or date, experts or all)"),
            wall,
            lat,
            format!("{concurrency} clients"),
        ));
    }
    // How big a typical answer is, for the notes.
    let sample = client
        .clone()
        .find_clinic_sessions(FindClinicSessionsRequest {
            department: DEPARTMENTS[0].0.to_string(),
            weekday: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    println!(
        "{label}: FindClinicSessions(cardiology, Thursday) answers {} sessions",
        sample.sessions.len()
    );
    drop(server);
}

fn main() {
    // The server under test is its own process; this runtime only drives the clients.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Realistic durability for PostgreSQL; the ceiling uses the same small concurrency.
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe {
        std::env::set_var("HCRM_TEST_PG_DURABLE", "1");
        if std::env::var("BENCH_CONCURRENCY").is_err() {
            std::env::set_var("BENCH_CONCURRENCY", "4");
        }
        if std::env::var("BENCH_OPS").is_err() {
            std::env::set_var("BENCH_OPS", "3000");
        }
    }
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    runtime.block_on(async {
        let mut rows = Vec::new();
        echo_ceiling(&mut rows).await;
        for name in backends.split(',') {
            let backend = match name.trim() {
                "sqlite" => TestBackend::Sqlite,
                "postgres" => TestBackend::Postgres,
                other => panic!("unknown backend {other}"),
            };
            bench_backend(backend, &mut rows).await;
        }
        print_rows(&rows);
        println!(
            "\nmachine: {} cores; server: release `hcrm serve --target patients` as its own process; clients share the machine; target: directory queries p99 < 10 ms",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
    });
}
