//! Benchmark of the followup service (a program, not a test): `cargo bench --bench followup`.
//!
//! - RecordFollowUp ops/s and p99 against the release `hcrm serve` (patients + followup in one
//!   process, as `serve` runs them), beside a raw single-row INSERT on the same database and a
//!   bare tonic unary RPC, both measured in the same run.
//! - The daily reminder pass on PostgreSQL: `BENCH_FOLLOWUP_PLANS` plans (default 1,000,000),
//!   one in ten due tomorrow; the time to queue the reminders and to claim and deliver them all
//!   to a local webhook receiver with two dispatchers (two "replicas", separate pools), beside
//!   the same number of bare HTTP POSTs to that receiver.
//! - GetStatistics over `BENCH_FOLLOWUP_RECORDS` recorded follow-ups (default 1,000,000) on
//!   PostgreSQL, with and without the effect comparison.
//!
//! Environment: `BENCH_BACKENDS` (RecordFollowUp backends, default `sqlite,postgres`),
//! `BENCH_CONCURRENCY` (16), `BENCH_OPS` (4000), `BENCH_FOLLOWUP_PLANS`, `BENCH_FOLLOWUP_RECORDS`.

mod common;

use common::*;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::Bearer;
use hcrm_kit::outbox::Dispatcher;
use hcrm_kit::peers::patients::Patients;
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::*;
use hcrm_proto::patients::CreatePatientRequest;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel as GrpcChannel;

const SECRET: &str = "benchmark-signing-secret-0123456789abcdef";

type Server = Process;

async fn start_server(data_dir: &std::path::Path, patients_url: &str, followup_url: &str) -> Server {
    let settings = [
        ("HCRM__PATIENTS__DATABASE_URL", patients_url),
        ("HCRM__FOLLOWUP__DATABASE_URL", followup_url),
    ];
    serve("all", data_dir, SECRET, &settings, false).await
}

type Authed = tonic::service::interceptor::InterceptedService<GrpcChannel, Bearer>;

async fn connect(addr: &str) -> GrpcChannel {
    GrpcChannel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn authed(channel: GrpcChannel) -> Authed {
    let token = Authenticator::hs256(SECRET)
        .mint("bench-nurse", &[Role::Admin], None, 3600)
        .unwrap();
    let bearer = Bearer::new(&token).unwrap();
    tonic::service::interceptor::InterceptedService::new(channel, bearer)
}

async fn pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap()
}

fn label(backend: TestBackend) -> &'static str {
    match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres => "postgres",
    }
}

/// RecordFollowUp over distinct open tasks, concurrently.
async fn record_bench(backend: TestBackend, rows: &mut Vec<Row>) {
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let ops = env_usize("BENCH_OPS", 4_000);
    let patients_db = TestDatabase::new(backend).await.unwrap();
    let followup_db = TestDatabase::new(backend).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path(), &patients_db.url, &followup_db.url).await;
    let channel = connect(&server.addr).await;
    let patient = PatientServiceClient::new(authed(channel.clone()))
        .create_patient(CreatePatientRequest {
            patient: Some(hcrm_proto::patients::Patient {
                display_name: "基准患者".into(),
                phones: vec!["13800138000".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let patient_id = patient.name.trim_start_matches("patients/").to_string();

    // One open task per call, due today, written straight into the followup database.
    let db = pool(&followup_db.url).await;
    let now = hcrm_kit::time::now_micros();
    let today = hcrm_followup::domain::calendar::Calendar::new(480).day_of(now) as i64;
    let mut tx = db.begin().await.unwrap();
    for i in 0..ops {
        sqlx::query(
            "INSERT INTO plans (id, patient_id, template_id, template_version, department, responsible, state, origin, \
             anchor_at, source, diagnoses, chronic_state, last_reading, version, created_at, updated_at) \
             VALUES ($1, $2, '', 0, 'card', 'bench-nurse', 'active', 'manual', $3, '', '', NULL, NULL, 1, $3, $3)",
        )
        .bind(format!("plan-{i}"))
        .bind(&patient_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO tasks (id, plan_id, patient_id, department, assignee, due_day, window_end_day, state, channel, \
             purpose, attempts, notify_patient, follow_up_id, cancel_reason, version, created_at, updated_at) \
             VALUES ($1, $2, $3, 'card', 'bench-nurse', $4, $4, 'open', 1, '电话随访', 0, 0, '', '', 1, $5, $5)",
        )
        .bind(format!("task-{i}"))
        .bind(format!("plan-{i}"))
        .bind(&patient_id)
        .bind(today)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    db.close().await;

    let client = FollowupServiceClient::new(authed(channel));
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let mut c = client.clone();
        async move {
            c.record_follow_up(RecordFollowUpRequest {
                task: format!("tasks/task-{i}"),
                record: Some(FollowUpRecord {
                    channel: Channel::Phone as i32,
                    outcome: Outcome::Reached as i32,
                    content: "恢复良好，按时服药，血压平稳".into(),
                    health_guidance: "低盐饮食，规律作息".into(),
                    satisfaction: vec![
                        Satisfaction {
                            dimension: Dimension::Attitude as i32,
                            rating: 5,
                        },
                        Satisfaction {
                            dimension: Dimension::Communication as i32,
                            rating: 4,
                        },
                    ],
                    ..Default::default()
                }),
                request_id: format!("bench-{i}"),
            })
            .await
            .expect("record follow-up");
        }
    })
    .await;
    rows.push(summarize(
        label(backend),
        "RecordFollowUp",
        wall,
        lat,
        format!("{concurrency} clients; each also queues a timeline delivery the dispatcher sends to patients"),
    ));
    rows.push(raw_insert_ceiling(backend, label(backend), &followup_db.url, concurrency, ops).await);
    drop(server);
}

/// A webhook receiver that only counts.
async fn counting_receiver() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

fn followup_config(url: &str, webhook: &str) -> hcrm_followup::Config {
    hcrm_followup::Config {
        database_url: Some(hcrm_kit::secret::Secret::new(url.to_string())),
        notifier: hcrm_kit::notify::NotifierConfig {
            kind: "webhook".into(),
            webhook_url: webhook.into(),
            webhook_secret: Some(hcrm_kit::secret::Secret::new("bench".to_string())),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn deps(data: &std::path::Path) -> hcrm_kit::deps::Deps {
    hcrm_kit::deps::Deps {
        authenticator: Arc::new(Authenticator::hs256(SECRET)),
        data: hcrm_kit::config::DataConfig {
            dir: data.to_path_buf(),
            max_connections: 8,
            acquire_timeout_secs: 30,
        },
        security: Default::default(),
        server: Default::default(),
        stopping: hcrm_kit::server::shutdown_channel().1,
        clock: hcrm_kit::clock::Clock::system(),
        self_addr: "127.0.0.1:1".parse().unwrap(),
    }
}

/// Seeds `plans` plans with one open task each, one in ten due `tomorrow`, with set-based SQL.
async fn seed_plans(db: &sqlx::AnyPool, plans: usize, tomorrow: i64, now: i64) {
    sqlx::query(
        "INSERT INTO plans (id, patient_id, template_id, template_version, department, responsible, state, origin, \
         anchor_at, source, diagnoses, chronic_state, last_reading, version, created_at, updated_at) \
         SELECT 'p' || g, 'patient-' || (g % 200000), '', 0, 'dept-' || (g % 30), 'nurse-' || (g % 200), 'active', \
         'discharge', $2 - (g % 60) * 86400000000, 'src-' || g, CASE WHEN g % 2 = 0 THEN ',I10,' ELSE ',J18,' END, \
         NULL, NULL, 1, $2, $2 FROM generate_series(1, $1) AS g",
    )
    .bind(plans as i64)
    .bind(now)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tasks (id, plan_id, patient_id, department, assignee, due_day, window_end_day, state, channel, \
         purpose, attempts, notify_patient, follow_up_id, cancel_reason, version, created_at, updated_at) \
         SELECT 't' || g, 'p' || g, 'patient-' || (g % 200000), 'dept-' || (g % 30), 'nurse-' || (g % 200), \
         CASE WHEN g % 10 = 0 THEN $2 ELSE $2 + 2 + (g % 60) END, CASE WHEN g % 10 = 0 THEN $2 + 2 ELSE $2 + 4 + (g % 60) END, \
         'open', 1, '电话随访', 0, 0, '', '', 1, $3, $3 FROM generate_series(1, $1) AS g",
    )
    .bind(plans as i64)
    .bind(tomorrow)
    .bind(now)
    .execute(db)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(db).await.unwrap();
}

struct Pass {
    plans: usize,
    due: u64,
    seed: Duration,
    queue: Duration,
    deliver: Duration,
    ceiling: Duration,
}

/// The daily reminder pass on PostgreSQL.
async fn reminder_pass() -> Pass {
    let plans = env_usize("BENCH_FOLLOWUP_PLANS", 1_000_000);
    let db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let (webhook, received) = counting_receiver().await;
    let cfg = followup_config(&db.url, &webhook);
    let deps = deps(data.path());
    let store = hcrm_followup::open_store(&cfg, &deps).await.unwrap();
    let raw = pool(&db.url).await;
    let now = hcrm_kit::time::now_micros();
    let tomorrow = store.today() as i64 + 1;
    let t = Instant::now();
    seed_plans(&raw, plans, tomorrow, now).await;
    let seed = t.elapsed();

    let t = Instant::now();
    let due = store.plan_reminders().await.unwrap();
    let queue = t.elapsed();

    let patients = Patients::new("followup", "http://127.0.0.1:1", deps.authenticator.clone()).unwrap();
    let notifier = hcrm_kit::notify::from_config(&cfg.notifier).unwrap();
    let delivery = hcrm_followup::DeliveryConfig {
        batch: 500,
        concurrency: 32,
        ..cfg.delivery.clone()
    };
    let t = Instant::now();
    let mut replicas = Vec::new();
    for r in 0..2 {
        let store = hcrm_followup::open_store(&cfg, &deps).await.unwrap();
        let dispatcher = Dispatcher {
            outbox: store.outbox.clone(),
            sender: Arc::new(hcrm_followup::jobs::FollowupSender {
                store,
                patients: patients.clone(),
                notifier: notifier.clone(),
                staff_email: Default::default(),
            }),
            cfg: delivery.clone(),
            owner: format!("replica-{r}"),
        };
        replicas.push(tokio::spawn(
            async move { while dispatcher.once().await.unwrap() > 0 {} },
        ));
    }
    for r in replicas {
        r.await.unwrap();
    }
    let deliver = t.elapsed();
    assert_eq!(
        received.load(Ordering::Relaxed) as u64,
        due,
        "every reminder delivered once"
    );

    // Ceiling: the same number of bare POSTs to the same receiver, 64 at a time.
    let client = reqwest::Client::new();
    let t = Instant::now();
    drive(64, due as usize, move |i| {
        let (client, url) = (client.clone(), webhook.clone());
        async move {
            client
                .post(&url)
                .header("Idempotency-Key", format!("ceiling-{i}"))
                .body("{}")
                .send()
                .await
                .expect("post");
        }
    })
    .await;
    let ceiling = t.elapsed();
    raw.close().await;
    Pass {
        plans,
        due,
        seed,
        queue,
        deliver,
        ceiling,
    }
}

/// GetStatistics over many recorded follow-ups on PostgreSQL, through the release server.
async fn statistics_bench(rows: &mut Vec<Row>) -> String {
    let records = env_usize("BENCH_FOLLOWUP_RECORDS", 1_000_000);
    let plans = records / 5;
    let patients_db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let followup_db = TestDatabase::new(TestBackend::Postgres).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path(), &patients_db.url, &followup_db.url).await;
    let raw = pool(&followup_db.url).await;
    let now = hcrm_kit::time::now_micros();
    let today = hcrm_followup::domain::calendar::Calendar::new(480).day_of(now) as i64;
    let t = Instant::now();
    seed_plans(&raw, plans, today + 1, now).await;
    // Five calls per plan's task over the last 30 days, by the department's seven nurses; 60%
    // reached; two ratings per reached call.
    sqlx::query(
        "INSERT INTO follow_ups (id, task_id, plan_id, patient_id, department, recorded_by, channel, outcome, attempt, \
         occur_at, local_day, local_hour, recovery_score, complaint, body, created_at) \
         SELECT 'f' || g, 't' || (1 + g % $2), 'p' || (1 + g % $2), 'patient-' || ((1 + g % $2) % 200000), \
         'dept-' || ((1 + g % $2) % 30), 'nurse-' || (((1 + g % $2) % 30) * 7 + g % 7), 1 + g % 8, \
         CASE WHEN g % 5 < 3 THEN 1 ELSE 2 END, 1, $3 - (g % 2592000) * 1000000, \
         ($3 - (g % 2592000) * 1000000 + 28800000000) / 86400000000, \
         (($3 - (g % 2592000) * 1000000 + 28800000000) / 3600000000) % 24, \
         CASE WHEN g % 5 < 3 THEN 50 + g % 50 ELSE NULL END, 0, '\\x'::bytea, $3 FROM generate_series(1, $1) AS g",
    )
    .bind(records as i64)
    .bind(plans as i64)
    .bind(now)
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO satisfaction (follow_up_id, department, dimension, rating, occur_at, local_day) \
         SELECT f.id, f.department, d, 1 + (length(f.id) + d) % 5, f.occur_at, f.local_day \
         FROM follow_ups f, generate_series(1, 2) AS d WHERE f.outcome = 1",
    )
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO admissions (source, patient_id, at) SELECT 'adm-' || g, 'patient-' || (g * 7 % 200000), $2 - (g % 30) * 86400000000 \
         FROM generate_series(1, $1) AS g",
    )
    .bind((plans / 10) as i64)
    .bind(now)
    .execute(&raw)
    .await
    .unwrap();
    // The rows were written behind the service's back: mark their days for the rollup job, as
    // RecordFollowUp does.
    sqlx::query("INSERT INTO stats_dirty (day) SELECT DISTINCT local_day FROM follow_ups")
        .execute(&raw)
        .await
        .unwrap();
    // What autovacuum does on a live system: statistics and the visibility map (index-only scans).
    sqlx::query("VACUUM ANALYZE").execute(&raw).await.unwrap();
    let seeded = t.elapsed();
    // The server's rollup job (every 10 s, 30 days a round) catches up with the closed days.
    let t = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_dirty WHERE day < $1")
            .bind(today)
            .fetch_one(&raw)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(600), "the rollup did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rolled = t.elapsed();
    raw.close().await;

    let mut client = FollowupServiceClient::new(authed(connect(&server.addr).await));
    for (what, prefix) in [
        ("GetStatistics, 30 days", ""),
        ("GetStatistics + effect comparison (I10)", "I10"),
    ] {
        let mut lat = Vec::new();
        let t = Instant::now();
        for _ in 0..20 {
            let s = Instant::now();
            let stats = client
                .get_statistics(GetStatisticsRequest {
                    diagnosis_prefix: prefix.into(),
                    ..Default::default()
                })
                .await
                .expect("statistics")
                .into_inner();
            assert!(stats.follow_ups as usize >= records * 9 / 10, "{}", stats.follow_ups);
            lat.push(s.elapsed());
        }
        rows.push(summarize(
            "postgres",
            what,
            t.elapsed(),
            lat,
            format!("{records} follow-ups, {plans} plans; 20 calls one at a time"),
        ));
    }
    drop(server);
    format!(
        "seeded {records} follow-ups in {:.1} s; the rollup job caught up with the closed days within {:.1} s \
         (it runs every 10 s)",
        seeded.as_secs_f64(),
        rolled.as_secs_f64()
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe { std::env::set_var("HCRM_TEST_PG_DURABLE", "1") };
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
            record_bench(backend, &mut rows).await;
        }
        let seeded = statistics_bench(&mut rows).await;
        let pass = reminder_pass().await;
        print_rows(&rows);
        println!("\n{seeded}");
        println!("\n| reminder pass (postgres) | plans | due tomorrow | queue | claim + deliver | total | ceiling: bare POSTs |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        println!(
            "| 2 dispatchers × 32 in flight, batches of 500 | {} | {} | {:.1} s | {:.1} s | {:.1} s | {:.1} s |",
            pass.plans,
            pass.due,
            pass.queue.as_secs_f64(),
            pass.deliver.as_secs_f64(),
            (pass.queue + pass.deliver).as_secs_f64(),
            pass.ceiling.as_secs_f64()
        );
        println!("(seeding the plans took {:.1} s, not counted)", pass.seed.as_secs_f64());
        println!(
            "\nmachine: {} cores; RecordFollowUp and statistics: release `hcrm serve` as its own process; \
             reminder pass: dispatchers in the bench process; clients share the machine",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
    });
}
