//! Benchmark of the patients service (a program, not a test): `cargo bench --bench patients`.
//!
//! Starts the release `hcrm serve` as a separate process, drives it over real gRPC with
//! concurrent clients, and prints ops/s and p50/p99 beside two ceilings measured in the same
//! run on the same machine: a bare tonic server answering a trivial unary RPC (health Check, no
//! layers, no auth) and a raw single-row INSERT through sqlx on the same database. Also: resident
//! memory of the server idle and after the load, and the time from start to SERVING.
//!
//! Environment: `BENCH_BACKENDS=sqlite,postgres` (default both), `BENCH_PATIENTS` (search corpus
//! and import size, default 100000), `BENCH_CONCURRENCY` (default 16), `BENCH_OPS` (default 4000).

mod common;

use common::*;
use futures::StreamExt;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const SECRET: &str = "benchmark-signing-secret-0123456789abcdef";

type Server = Process;

async fn start_server(data_dir: &std::path::Path, database_url: &str, target: &str) -> Server {
    serve(
        target,
        data_dir,
        SECRET,
        &[("HCRM__PATIENTS__DATABASE_URL", database_url)],
        false,
    )
    .await
}

fn resident_id(n: usize) -> String {
    let body = format!("1101011990{:02}{:02}{:03}", n % 12 + 1, n % 28 + 1, n % 1000);
    // Vary the region code so numbers differ across n.
    let body = format!("{:06}{}", 110000 + (n / 1000) % 890_000, &body[6..]);
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = body.chars().zip(W).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    format!("{body}{}", C[(sum % 11) as usize])
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平",
];

fn person(i: usize) -> Patient {
    let name = format!(
        "{}{}{}",
        SURNAMES[i % SURNAMES.len()],
        GIVEN[(i / 16) % GIVEN.len()],
        GIVEN[(i / 320) % GIVEN.len()]
    );
    Patient {
        display_name: name,
        phones: vec![format!("13{:09}", i)],
        department: ["cardiology", "oncology", "neurology", "orthopaedics"][i % 4].into(),
        ..Default::default()
    }
}

async fn bench_backend(backend: TestBackend, rows: &mut Vec<Row>, memory: &mut Vec<String>) {
    let label = match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres => "postgres",
    };
    let corpus = env_usize("BENCH_PATIENTS", 100_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let ops = env_usize("BENCH_OPS", 4_000);
    let db = TestDatabase::new(backend).await.expect("database");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path(), &db.url, "all").await;
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_mb(pid);
    memory.push(format!(
        "| {label} | all | {:.0} ms | {idle:.1} MB |",
        server.startup.as_secs_f64() * 1000.0
    ));

    let token = Authenticator::hs256(SECRET)
        .mint("bench", &[Role::Admin], None, 3600)
        .unwrap();
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let client = PatientServiceClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", bearer.clone());
        Ok(req)
    });

    // Streaming import of the search corpus.
    let per_message = 1_000;
    let requests = tokio_stream::iter((0..corpus.div_ceil(per_message)).map(move |m| {
        ImportPatientsRequest {
            rows: (m * per_message..((m + 1) * per_message).min(corpus))
                .map(|i| ImportPatientRow {
                    source_system: "his".into(),
                    external_id: format!("H{i}"),
                    patient: Some(person(i)),
                })
                .collect(),
        }
    }));
    let started = Instant::now();
    let mut stream = client.clone().import_patients(requests).await.unwrap().into_inner();
    let mut imported = 0;
    while let Some(r) = stream.next().await {
        imported += r.unwrap().results.iter().filter(|r| r.code == 0).count();
    }
    let wall = started.elapsed();
    assert_eq!(imported, corpus);
    rows.push(Row {
        backend: label,
        what: format!("ImportPatients (stream, {corpus} rows)"),
        ops_per_sec: corpus as f64 / wall.as_secs_f64(),
        p50_ms: 0.0,
        p99_ms: 0.0,
        note: format!("{:.1} s total; rows/s", wall.as_secs_f64()),
    });

    // CreatePatient with encryption, blind index, audit and event.
    let c = client.clone();
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let mut c = c.clone();
        async move {
            let mut p = person(corpus + i);
            p.identity_type = IdentityType::ResidentId as i32;
            p.identity_number = resident_id(i);
            p.insurance_number = format!("INS{i:08}");
            c.create_patient(CreatePatientRequest {
                patient: Some(p),
                request_id: format!("bench-{i}"),
                reason: String::new(),
            })
            .await
            .expect("create");
        }
    })
    .await;
    rows.push(summarize(
        label,
        "CreatePatient",
        wall,
        lat,
        format!("{concurrency} clients"),
    ));

    // GetPatient on imported records.
    let mut names = Vec::new();
    let mut list_client = client.clone();
    let mut token = String::new();
    while names.len() < 2_000 {
        let page = list_client
            .list_patients(ListPatientsRequest {
                page_size: 500,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        names.extend(page.patients.into_iter().map(|p| p.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let names = Arc::new(names);
    let c = client.clone();
    let (wall, lat) = drive(concurrency, ops * 3, move |i| {
        let mut c = c.clone();
        let name = names[(i * 7919) % names.len()].clone();
        async move {
            c.get_patient(GetPatientRequest {
                name,
                ..Default::default()
            })
            .await
            .expect("get");
        }
    })
    .await;
    rows.push(summarize(
        label,
        "GetPatient",
        wall,
        lat,
        format!("{concurrency} clients"),
    ));

    // SearchPatients over the corpus: names, pinyin, initials, phones, last four digits.
    let c = client.clone();
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let mut c = c.clone();
        let p = person((i * 104_729) % corpus);
        let keys = hcrm_patients::domain::names::name_keys(&p.display_name);
        let query = match i % 5 {
            0 => p.display_name.clone(),
            1 => keys.compact.clone(),
            2 => keys.initials.clone(),
            3 => p.phones[0].clone(),
            _ => p.phones[0][p.phones[0].len() - 4..].to_string(),
        };
        async move {
            c.search_patients(SearchPatientsRequest { query, page_size: 20 })
                .await
                .expect("search");
        }
    })
    .await;
    rows.push(summarize(
        label,
        &format!("SearchPatients (over {} patients)", corpus + ops),
        wall,
        lat,
        format!("{concurrency} clients"),
    ));
    let loaded = rss_mb(pid);
    memory.push(format!("| {label} | all, after the load | | {loaded:.1} MB |"));

    // Ceiling 1: raw single-row INSERT through sqlx on the same database.
    rows.push(raw_insert_ceiling(backend, label, &db.url, concurrency, ops).await);
    drop(server);
}

async fn single_target_memory(memory: &mut Vec<String>) {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", data.path().join("patients.db").display());
    let server = start_server(data.path(), &url, "patients").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    memory.push(format!(
        "| sqlite | patients | {:.0} ms | {:.1} MB |",
        server.startup.as_secs_f64() * 1000.0,
        rss_mb(server.child.id())
    ));
}

fn main() {
    // The server under test is its own process; this runtime only drives the clients.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Realistic durability for PostgreSQL: fsync and synchronous commit stay on.
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe { std::env::set_var("HCRM_TEST_PG_DURABLE", "1") };
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    runtime.block_on(async {
        let mut rows = Vec::new();
        let mut memory = Vec::new();
        echo_ceiling(&mut rows).await;
        single_target_memory(&mut memory).await;
        for name in backends.split(',') {
            let backend = match name.trim() {
                "sqlite" => TestBackend::Sqlite,
                "postgres" => TestBackend::Postgres,
                other => panic!("unknown backend {other}"),
            };
            bench_backend(backend, &mut rows, &mut memory).await;
        }
        print_rows(&rows);
        println!("\n| backend | targets | start to SERVING | resident memory |");
        println!("|---|---|---:|---:|");
        for m in &memory {
            println!("{m}");
        }
        println!(
            "\nmachine: {} cores; server: release `hcrm serve` as its own process; clients share the machine",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
    });
}
