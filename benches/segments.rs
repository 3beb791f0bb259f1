//! Benchmark of segments and grades (a program, not a test): `cargo bench --bench segments`.
//!
//! Starts the release `hcrm serve --target patients` as its own process (which migrates), fills
//! its tables with bulk SQL (patients with a realistic spread of fields, and their timeline
//! facts: visit counts, last visits, departments seen, diagnosis codes, unanswered follow-ups,
//! amounts), then measures over real gRPC:
//! 1. CountSegment for four representative segments (p50/p99 of a few repetitions each), beside
//!    a ceiling `SELECT COUNT(*) FROM patients` through sqlx in the same run;
//! 2. the grade pass over every patient (RecomputeGrades, the nightly pass's code path): first
//!    on an empty grade table (every grade and a history row written), then again with nothing
//!    changed, beside a ceiling of one raw set-based UPDATE touching every grade row.
//!
//! Environment: `BENCH_BACKENDS=postgres,sqlite` (default both), `BENCH_SEGMENT_PATIENTS`
//! (PostgreSQL, default 1000000), `BENCH_SEGMENT_PATIENTS_SQLITE` (default 200000),
//! `BENCH_REPS` (default 7).

mod common;

use common::*;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::patients::grading_service_client::GradingServiceClient;
use hcrm_proto::patients::segment_service_client::SegmentServiceClient;
use hcrm_proto::patients::*;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const SECRET: &str = "benchmark-signing-secret-0123456789abcdef";
const DAY_US: i64 = 24 * 3600 * 1_000_000;

type Server = Process;

async fn start_server(data_dir: &std::path::Path, database_url: &str) -> Server {
    // RecomputeGrades over a million patients answers after minutes.
    let settings = [
        ("HCRM__PATIENTS__DATABASE_URL", database_url),
        ("HCRM__SERVER__REQUEST_TIMEOUT_SECS", "1800"),
    ];
    serve("patients", data_dir, SECRET, &settings, false).await
}

/// `CASE (expr) WHEN 0 THEN 'a' WHEN 1 THEN 'b' … END`: picks a value on both dialects.
fn pick(expr: &str, values: &[&str]) -> String {
    let mut s = format!("CASE ({expr})");
    for (n, v) in values.iter().enumerate() {
        s.push_str(&format!(" WHEN {n} THEN '{v}'"));
    }
    s.push_str(" END");
    s
}

const PROVINCES: &[&str] = &[
    "北京", "上海", "广东", "江苏", "浙江", "山东", "四川", "湖北", "河南", "福建",
];
const CITIES: &[&str] = &[
    "北京", "上海", "广州", "南京", "杭州", "济南", "成都", "武汉", "郑州", "福州",
];
const OCCUPATIONS: &[&str] = &[
    "teacher", "engineer", "farmer", "retired", "worker", "doctor", "clerk", "student",
];
const DEPARTMENTS: &[&str] = &[
    "cardiology",
    "oncology",
    "neurology",
    "orthopaedics",
    "endocrinology",
    "respiratory",
    "gastro",
    "dermatology",
];
const CODES: &[&str] = &[
    "I10", "I11.0", "E11.9", "J45.9", "K29.7", "M54.5", "C34.9", "N18.3", "I25.1", "E78.5",
];

/// The bulk SQL that fills the tables for `n` patients, per dialect.
fn generation(backend: TestBackend, n: usize, now: i64) -> Vec<String> {
    let pg = backend == TestBackend::Postgres;
    let with = if pg {
        format!("WITH s AS (SELECT generate_series(1, {n})::bigint AS g) ")
    } else {
        format!("WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) ")
    };
    let id = if pg {
        "'b' || lpad(g::text, 8, '0')"
    } else {
        "'b' || printf('%08d', g)"
    };
    let birth = if pg {
        "to_char(date '1930-01-01' + ((g * 7919) % 30000)::int, 'YYYY-MM-DD')"
    } else {
        "date('1930-01-01', '+' || ((g * 7919) % 30000) || ' days')"
    };
    let empty_doc = if pg { "decode('', 'hex')" } else { "X''" };
    // 10% never visited; the others last came 0–999 days ago.
    let last_visit = format!("CASE WHEN g % 10 = 0 THEN NULL ELSE {now} - ((g * 7907) % 1000) * {DAY_US} END");
    let patients = format!(
        "{with}INSERT INTO patients (id, code, display_name, name_pinyin, name_initials, sex, birth_date, phone, \
         phone_last4, email, occupation, industry, education, marital_status, income_band, province, city, department, \
         intent_grade, value_tier, vip, do_not_contact, tags, last_visit_at, doc, version, created_at, updated_at, deceased) \
         SELECT {id}, 'B' || {id}, '患者' || g, 'huanzhe' || g, 'hz', 1 + g % 2, {birth}, '', '', '', {occ}, '', \
         g % 7, g % 5, (g * 17) % 6, {prov}, {city}, {dept}, 0, 0, CASE WHEN g % 50 = 0 THEN 1 ELSE 0 END, \
         CASE WHEN g % 40 = 0 THEN 1 ELSE 0 END, \
         CASE g % 5 WHEN 0 THEN '|hypertension|' WHEN 1 THEN '|diabetes|' WHEN 2 THEN '|hypertension|diabetes|' ELSE '' END, \
         {last_visit}, {empty_doc}, 1, {now}, {now}, CASE WHEN g % 997 = 0 THEN 1 ELSE 0 END FROM s",
        occ = pick("(g * 31) % 8", OCCUPATIONS),
        prov = pick("(g * 13) % 10", PROVINCES),
        city = pick("(g * 13) % 10", CITIES),
        dept = pick("g % 8", DEPARTMENTS),
    );
    let facts = format!(
        "{with}INSERT INTO patient_facts (patient_id, visit_count, first_visit_at, last_visit_at, last_event_at, \
         unanswered_follow_ups, complaints, value_cents, dirty) \
         SELECT {id}, 1 + g % 12, {last_visit} - (g % 500) * {DAY_US}, {last_visit}, {last_visit}, \
         CASE WHEN g % 13 = 0 THEN 3 ELSE 0 END, CASE WHEN g % 101 = 0 THEN 1 ELSE 0 END, (g * 97) % 5000000, 0 \
         FROM s WHERE g % 10 <> 0"
    );
    let departments = format!(
        "{with}INSERT INTO patient_departments (patient_id, department, visits) \
         SELECT {id}, {d1}, 1 + g % 6 FROM s WHERE g % 10 <> 0 \
         UNION ALL SELECT {id}, {d2}, 1 + g % 3 FROM s WHERE g % 10 <> 0 AND g % 3 = 0",
        d1 = pick("g % 8", DEPARTMENTS),
        d2 = pick("(g + 3) % 8", DEPARTMENTS),
    );
    let diagnoses = format!(
        "{with}INSERT INTO patient_diagnoses (patient_id, code) \
         SELECT {id}, {c1} FROM s WHERE g % 10 <> 0 \
         UNION ALL SELECT {id}, {c2} FROM s WHERE g % 10 <> 0 AND g % 2 = 0",
        c1 = pick("(g * 7) % 10", CODES),
        c2 = pick("(g * 7 + 3) % 10", CODES),
    );
    vec![patients, facts, departments, diagnoses]
}

async fn timed_sql(pool: &sqlx::AnyPool, sql: &str) -> Duration {
    let t = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", &sql[..sql.len().min(200)]));
    t.elapsed()
}

fn ts(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: 0,
    }
}

async fn bench_backend(backend: TestBackend, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let (label, n) = match backend {
        TestBackend::Postgres => ("postgres", env_usize("BENCH_SEGMENT_PATIENTS", 1_000_000)),
        TestBackend::Sqlite => ("sqlite", env_usize("BENCH_SEGMENT_PATIENTS_SQLITE", 200_000)),
    };
    let reps = env_usize("BENCH_REPS", 7);
    let db = TestDatabase::new(backend).await.expect("database");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path(), &db.url).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .unwrap();
    if backend == TestBackend::Sqlite {
        sqlx::query("PRAGMA busy_timeout = 60000").execute(&pool).await.unwrap();
    }

    // Generation by bulk SQL. The nightly pass is marked done for today so it does not run
    // during the measurements (RecomputeGrades runs the same batches on demand).
    let now = chrono::Utc::now().timestamp_micros();
    let today = (chrono::Utc::now() + chrono::Duration::minutes(480))
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    sqlx::query("UPDATE grade_pass SET pass_day = $1, finished = 1 WHERE id = 1")
        .bind(&today)
        .execute(&pool)
        .await
        .unwrap();
    let started = Instant::now();
    for sql in generation(backend, n, now) {
        timed_sql(&pool, &sql).await;
    }
    timed_sql(&pool, "ANALYZE").await;
    let generated = started.elapsed();
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            use sqlx::Row as _;
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>("n")
        }
    };
    notes.push(format!(
        "{label}: generated {n} patients, {} fact rows, {} departments-seen rows, {} diagnosis rows in {:.1} s (bulk SQL)",
        count("patient_facts").await,
        count("patient_departments").await,
        count("patient_diagnoses").await,
        generated.as_secs_f64()
    ));

    let token = Authenticator::hs256(SECRET)
        .mint("bench", &[Role::Admin], None, 7200)
        .unwrap();
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let auth = move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", bearer.clone());
        Ok(req)
    };
    let mut segments = SegmentServiceClient::with_interceptor(channel.clone(), auth.clone());
    let grading = GradingServiceClient::with_interceptor(channel, auth);

    // The grade pass first (segment 4 filters on computed grades).
    let pass = |what: &'static str| {
        let mut grading = grading.clone();
        async move {
            let mut req = tonic::Request::new(RecomputeGradesRequest {});
            req.set_timeout(Duration::from_secs(1800));
            let t = Instant::now();
            let done = grading.recompute_grades(req).await.expect("recompute").into_inner();
            let wall = t.elapsed();
            Row {
                backend: label,
                what: format!("grade pass over {} patients, {what}", done.evaluated),
                ops_per_sec: done.evaluated as f64 / wall.as_secs_f64(),
                p50_ms: 0.0,
                p99_ms: 0.0,
                note: format!(
                    "{:.1} s wall; {} grades written, {} history rows; rows/s",
                    wall.as_secs_f64(),
                    done.updated,
                    done.changed
                ),
            }
        }
    };
    rows.push(pass("first (every grade new)").await);
    rows.push(pass("again (nothing changed)").await);
    let wall = timed_sql(&pool, "UPDATE patient_grades SET computed_at = computed_at + 1").await;
    // Fresh statistics and visibility map, as autovacuum would have after a pass this size.
    let maintenance = if backend == TestBackend::Postgres {
        "VACUUM ANALYZE"
    } else {
        "ANALYZE"
    };
    timed_sql(&pool, maintenance).await;
    rows.push(Row {
        backend: label,
        what: format!(
            "ceiling: one raw UPDATE of all {} grade rows",
            count("patient_grades").await
        ),
        ops_per_sec: n as f64 / wall.as_secs_f64(),
        p50_ms: 0.0,
        p99_ms: 0.0,
        note: format!("{:.1} s wall; rows/s", wall.as_secs_f64()),
    });

    // CountSegment for representative segments.
    let f = SegmentFilter::default;
    let cases: Vec<(&str, SegmentFilter)> = vec![
        (
            "lapsed (>180 d) hypertensives in 北京",
            SegmentFilter {
                last_visit_before: Some(ts(now - 180 * DAY_US)),
                tags_any: vec!["hypertension".into()],
                provinces: vec!["北京".into()],
                ..f()
            },
        ),
        (
            "seen in cardiology, ICD I1*, aged 50–70",
            SegmentFilter {
                departments_seen: vec!["cardiology".into()],
                diagnosis_prefixes: vec!["I1".into()],
                min_age: Some(50),
                max_age: Some(70),
                ..f()
            },
        ),
        (
            "≥5 visits, women, middle+ income",
            SegmentFilter {
                min_visits: Some(5),
                sexes: vec![Sex::Female as i32],
                income_bands: vec![
                    IncomeBand::Middle as i32,
                    IncomeBand::UpperMiddle as i32,
                    IncomeBand::High as i32,
                ],
                ..f()
            },
        ),
        (
            "computed: potential (M), intent D/E",
            SegmentFilter {
                classes: vec![CustomerClass::Potential as i32],
                intent_grades: vec![IntentGrade::D as i32, IntentGrade::E as i32],
                ..f()
            },
        ),
        ("everyone who may be contacted", f()),
    ];
    for (what, filter) in cases {
        let mut latencies = Vec::new();
        let mut matched = 0;
        let t = Instant::now();
        for _ in 0..reps {
            let s = Instant::now();
            matched = segments
                .count_segment(CountSegmentRequest {
                    filter: Some(filter.clone()),
                    ..Default::default()
                })
                .await
                .expect("count")
                .into_inner()
                .count;
            latencies.push(s.elapsed());
        }
        rows.push(summarize(
            label,
            &format!("CountSegment: {what}"),
            t.elapsed(),
            latencies,
            format!("{matched} of {n} match; {reps} runs"),
        ));
    }
    let mut latencies = Vec::new();
    let t = Instant::now();
    for _ in 0..reps {
        let s = Instant::now();
        count("patients").await;
        latencies.push(s.elapsed());
    }
    rows.push(summarize(
        label,
        "ceiling: raw SELECT COUNT(*) FROM patients",
        t.elapsed(),
        latencies,
        format!("sqlx, {reps} runs"),
    ));
    pool.close().await;
    drop(server);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Realistic durability for PostgreSQL: fsync and synchronous commit stay on.
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe { std::env::set_var("HCRM_TEST_PG_DURABLE", "1") };
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    runtime.block_on(async {
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        for name in backends.split(',') {
            let backend = match name.trim() {
                "sqlite" => TestBackend::Sqlite,
                "postgres" => TestBackend::Postgres,
                other => panic!("unknown backend {other}"),
            };
            bench_backend(backend, &mut rows, &mut notes).await;
        }
        print_rows(&rows);
        println!();
        for n in &notes {
            println!("- {n}");
        }
        println!(
            "\nmachine: {} cores; server: release `hcrm serve --target patients` as its own process",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
    });
}
