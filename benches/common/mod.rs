//! What the benchmark programs share: the server process they start, the load driver, the
//! summary rows, the ceilings measured in the same run (a bare tonic unary RPC, a raw single-row
//! INSERT), and the table printer.

#![allow(dead_code)]

use hcrm_kit::testing::TestBackend;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub struct Row {
    pub backend: &'static str,
    pub what: String,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub note: String,
}

pub fn summarize(backend: &'static str, what: &str, wall: Duration, mut latencies: Vec<Duration>, note: String) -> Row {
    latencies.sort();
    let pick = |q: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            latencies[((latencies.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
        }
    };
    Row {
        backend,
        what: what.to_string(),
        ops_per_sec: latencies.len() as f64 / wall.as_secs_f64(),
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        note,
    }
}

/// Runs `ops` calls of `op` spread over `concurrency` workers; returns wall time and latencies.
pub async fn drive<F, Fut>(concurrency: usize, ops: usize, op: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= ops {
                        break;
                    }
                    let t = Instant::now();
                    op(i).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(ops);
    for w in workers {
        all.extend(w.await.unwrap());
    }
    (start.elapsed(), all)
}

/// A release `hcrm serve` a benchmark runs as its own process; killed when dropped.
pub struct Process {
    pub child: std::process::Child,
    /// Its gRPC address.
    pub addr: String,
    /// From spawning to SERVING.
    pub startup: Duration,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hcrm serve --target {target}` on free ports with `settings` (`HCRM__…` pairs, after
/// the defaults, so they win) and waits until it answers SERVING. The server logs at
/// `BENCH_SERVER_LOG_LEVEL` (warn) into the file `BENCH_SERVER_LOG`, or nowhere. `one_cpu` pins
/// it to the first core (taskset), leaving the other to the clients.
pub async fn serve(
    target: &str,
    data_dir: &std::path::Path,
    secret: &str,
    settings: &[(&str, &str)],
    one_cpu: bool,
) -> Process {
    use std::process::{Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_hcrm");
    let addr = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let mut command = if one_cpu {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    command
        .args(["serve", "--target", target, "--data-dir"])
        .arg(data_dir)
        .env("HCRM__SERVER__GRPC_ADDR", &addr)
        .env("HCRM__SERVER__ADMIN_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("HCRM__GATEWAY__HTTP_ADDR", "127.0.0.1:0")
        .env("HCRM__AUTH__HS256_SECRET", secret)
        .env(
            "HCRM__TELEMETRY__LOG_LEVEL",
            std::env::var("BENCH_SERVER_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
        )
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(match std::env::var("BENCH_SERVER_LOG") {
            Ok(path) => Stdio::from(std::fs::File::create(path).expect("server log file")),
            Err(_) => Stdio::null(),
        });
    let child = command.spawn().expect("start hcrm");
    let mut health = HealthClient::new(Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy());
    loop {
        if let Ok(r) = health.check(HealthCheckRequest { service: String::new() }).await
            && r.into_inner().status == 1
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "server did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Process {
        child,
        addr,
        startup: started.elapsed(),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Ceiling 2: a bare tonic server (health Check: a trivial unary RPC) with no layers or auth.
pub async fn echo_ceiling(rows: &mut Vec<Row>) {
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let ops = env_usize("BENCH_OPS", 4_000) * 3;
    let (_reporter, service) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = HealthClient::new(channel);
    let (wall, lat) = drive(concurrency, ops, move |_| {
        let mut c = client.clone();
        async move {
            c.check(HealthCheckRequest { service: String::new() })
                .await
                .expect("echo");
        }
    })
    .await;
    rows.push(summarize(
        "-",
        "ceiling: bare tonic unary RPC",
        wall,
        lat,
        format!("{concurrency} clients, in the bench process"),
    ));
}

/// Ceiling: raw single-row INSERT through sqlx on `url`, the best sqlx does on each backend.
pub async fn raw_insert_ceiling(
    backend: TestBackend,
    label: &'static str,
    url: &str,
    concurrency: usize,
    ops: usize,
) -> Row {
    sqlx::any::install_default_drivers();
    // The best sqlx does on each backend: SQLite has one writer at a time, so one connection
    // (more only collide in SQLite's sleeping busy handler); PostgreSQL gets a pool of 8.
    let connections = if backend == TestBackend::Sqlite { 1 } else { 8 };
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await
        .unwrap();
    if backend == TestBackend::Sqlite {
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA busy_timeout = 10000",
        ] {
            sqlx::query(pragma).execute(&pool).await.unwrap();
        }
    }
    sqlx::query("CREATE TABLE bench_raw (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let p = pool.clone();
    let (wall, lat) = drive(concurrency, ops, move |i| {
        let p = p.clone();
        async move {
            sqlx::query("INSERT INTO bench_raw (id, body) VALUES ($1, $2)")
                .bind(format!("row-{i}"))
                .bind("x".repeat(200))
                .execute(&p)
                .await
                .expect("raw insert");
        }
    })
    .await;
    let row = summarize(
        label,
        "ceiling: raw sqlx single-row INSERT",
        wall,
        lat,
        format!("{concurrency} tasks, {connections} connection(s)"),
    );
    pool.close().await;
    row
}

/// Prints rows as a Markdown table.
pub fn print_rows(rows: &[Row]) {
    println!("\n| backend | operation | ops/s | p50 ms | p99 ms | notes |");
    println!("|---|---|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            r.backend, r.what, r.ops_per_sec, r.p50_ms, r.p99_ms, r.note
        );
    }
}
