//! Load held (a program, not a test): `cargo bench --bench load`.
//!
//! The split topology as the production overlay runs it — patients, followup, feedback, opinion
//! and the gateway each its own release `hcrm serve` process on its own port, one PostgreSQL,
//! configured by environment variables only — under a mixed workload on loopback:
//!
//! 1. **Sustainable**: `BENCH_CONCURRENCY` (8) clients back to back for `BENCH_LOAD_SECS` (60)
//!    seconds; ops/s, p50/p99 and errors.
//! 2. **Overload**: an open loop at 5× the rate phase 1 sustained, for the same time; each call
//!    has a 2 s deadline. The excess must be shed fast with UNAVAILABLE while the calls that are
//!    accepted keep their latency.
//!
//! The servers and PostgreSQL are pinned to the first half of the cores and this generator to
//! the rest (`BENCH_PIN=0` to share them all), so the generator's own work — five times the
//! calls in phase 2 — does not take CPU from the servers, as separate machines would not. Each
//! service gets `BENCH_CONNECTIONS` (4) HTTP/2 connections, as several client pods would hold.
//! Per phase: each process's resident memory at the half and at the end, and the cores each
//! process (PostgreSQL's all together) used.
//!
//! The workload: 30% GetPatient, 10% GetPatient as REST/JSON through the gateway, 10%
//! SearchPatients, 15% CreatePatient, 15% CreateCase, 10% ListCases, 5% ListTasks (overdue), 5%
//! AnalyzeText (opinion's sentiment analysis of a short review). The processes run with
//! `server.concurrency_limit` = `BENCH_LOAD_LIMIT` (4): five servers and PostgreSQL share one
//! core here, and the calls they can usefully run at once are few; 16 let accepted calls queue
//! for the CPU and nearly tripled their p99 under overload (docs/benchmarks.md).

mod common;

use common::*;
use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::Bearer;
use hcrm_kit::testing::{TestBackend, TestDatabase};
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::{Case, CaseKind, CreateCaseRequest, IntakeChannel, ListCasesRequest};
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::{ListTasksRequest, TaskView};
use hcrm_proto::opinion::AnalyzeTextRequest;
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, GetPatientRequest, Patient, SearchPatientsRequest};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel as GrpcChannel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_hcrm");
const SECRET: &str = "load-test-signing-secret-0123456789abcdef";

struct Pod {
    name: &'static str,
    child: Child,
    addr: String,
    _data: tempfile::TempDir,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(name: &'static str, env: &[(String, String)], port: u16) -> Pod {
    let data = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HCRM_TARGET", name)
        .env("HCRM__DATA__DIR", data.path())
        .env("HCRM__SERVER__GRPC_ADDR", &addr)
        .env("HCRM__SERVER__ADMIN_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("HCRM__GATEWAY__HTTP_ADDR", "127.0.0.1:0")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hcrm");
    Pod {
        name,
        child,
        addr,
        _data: data,
    }
}

async fn serving(addr: &str) -> GrpcChannel {
    let channel = GrpcChannel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut health = HealthClient::new(channel.clone());
    let started = Instant::now();
    loop {
        if let Ok(r) = health.check(HealthCheckRequest { service: String::new() }).await
            && r.into_inner().status == 1
        {
            return channel;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{addr} did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Authed = tonic::service::interceptor::InterceptedService<GrpcChannel, Bearer>;

fn authed(channel: &GrpcChannel) -> Authed {
    let token = Authenticator::hs256(SECRET)
        .mint("load-guide", &[Role::Admin], None, 3600)
        .unwrap();
    tonic::service::interceptor::InterceptedService::new(channel.clone(), Bearer::new(&token).unwrap())
}

/// Each service's clients: one per connection, as several client pods would hold.
#[derive(Clone)]
struct Clients {
    patients: Vec<PatientServiceClient<Authed>>,
    followup: Vec<FollowupServiceClient<Authed>>,
    cases: Vec<CaseServiceClient<Authed>>,
    mentions: Vec<MentionServiceClient<Authed>>,
    /// REST/JSON through the gateway: the client, `http://host:port` and a bearer token.
    http: reqwest::Client,
    gateway: String,
    token: String,
    patient_names: Arc<Vec<String>>,
}

impl Clients {
    /// GetPatient as a web client makes it; 429/503 are the gateway's (or the service's) shedding.
    async fn rest_get_patient(&self, name: &str, deadline: Option<Duration>) -> Result<(), tonic::Status> {
        let mut request = self
            .http
            .post(format!(
                "{}/api/v1/hcrm.patients.v1.PatientService/GetPatient",
                self.gateway
            ))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "name": name }));
        if let Some(d) = deadline {
            request = request.timeout(d);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if matches!(r.status().as_u16(), 429 | 503) => Err(tonic::Status::unavailable("shed")),
            Ok(r) => Err(tonic::Status::internal(format!("HTTP {}", r.status()))),
            Err(e) if e.is_timeout() => Err(tonic::Status::deadline_exceeded("timed out")),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        }
    }
}

/// How one call ended.
enum End {
    Ok,
    Shed,
    Failed(Code, String),
}

impl Clients {
    async fn call(&self, i: usize, deadline: Option<Duration>) -> End {
        fn req<T>(m: T, deadline: Option<Duration>) -> tonic::Request<T> {
            let mut r = tonic::Request::new(m);
            if let Some(d) = deadline {
                r.set_timeout(d);
            }
            r
        }
        let patient = &self.patient_names[i % self.patient_names.len()];
        // `i % 20` picks the call; the connection is picked by the rest.
        let c = (i / 20) % self.patients.len();
        let result: Result<(), tonic::Status> = match i % 20 {
            6..8 => self.rest_get_patient(patient, deadline).await,
            19 => self.mentions[c]
                .clone()
                .analyze_text(req(
                    AnalyzeTextRequest {
                        text: "医生很耐心，但是排队太久了，护士态度也一般".into(),
                    },
                    deadline,
                ))
                .await
                .map(drop),
            0..6 => self.patients[c]
                .clone()
                .get_patient(req(
                    GetPatientRequest {
                        name: patient.clone(),
                        ..Default::default()
                    },
                    deadline,
                ))
                .await
                .map(drop),
            8..10 => self.patients[c]
                .clone()
                .search_patients(req(
                    SearchPatientsRequest {
                        query: "负载".into(),
                        page_size: 10,
                    },
                    deadline,
                ))
                .await
                .map(drop),
            10..13 => self.patients[c]
                .clone()
                .create_patient(req(
                    CreatePatientRequest {
                        patient: Some(Patient {
                            display_name: format!("负载{i}"),
                            phones: vec![format!("139{:08}", i % 100_000_000)],
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    deadline,
                ))
                .await
                .map(drop),
            13..16 => self.cases[c]
                .clone()
                .create_case(req(
                    CreateCaseRequest {
                        case: Some(Case {
                            kind: CaseKind::Complaint as i32,
                            channel: IntakeChannel::Hotline as i32,
                            department: format!("dept-{}", i % 10),
                            category: "waiting".into(),
                            title: "候诊时间长".into(),
                            description: "上午挂号，下午才看上".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    deadline,
                ))
                .await
                .map(drop),
            16..18 => self.cases[c]
                .clone()
                .list_cases(req(
                    ListCasesRequest {
                        open_only: true,
                        page_size: 20,
                        ..Default::default()
                    },
                    deadline,
                ))
                .await
                .map(drop),
            18 => self.followup[c]
                .clone()
                .list_tasks(req(
                    ListTasksRequest {
                        view: TaskView::Overdue as i32,
                        page_size: 20,
                        ..Default::default()
                    },
                    deadline,
                ))
                .await
                .map(drop),
            _ => unreachable!("i % 20 is below 20"),
        };
        match result {
            Ok(()) => End::Ok,
            Err(s) if matches!(s.code(), Code::ResourceExhausted | Code::Unavailable) => End::Shed,
            Err(s) => End::Failed(s.code(), format!("call {}: {}", i % 20, s.message())),
        }
    }
}

/// What a phase saw.
#[derive(Default)]
struct Tally {
    ok: Vec<Duration>,
    /// How late the generator sent each call of the open loop (its own lag, not the servers').
    lag: Vec<Duration>,
    shed: Vec<Duration>,
    failed: Vec<Code>,
    /// One message per code, to say what the errors were.
    examples: std::collections::BTreeMap<String, String>,
}

fn pick(v: &mut [Duration], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
}

/// Resident memory of each process, now.
fn memory(pods: &[Pod]) -> Vec<f64> {
    pods.iter().map(|p| rss_mb(p.child.id())).collect()
}

/// CPU seconds a process has used (with its reaped children's).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the parenthesised command name start at the 3rd (state); utime, stime,
    // cutime and cstime are the 14th to 17th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<f64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
    // Linux reports these in USER_HZ, 100 a second on every architecture it supports.
    fields.get(11..15).map(|t| t.iter().sum::<f64>() / 100.0).unwrap_or(0.0)
}

/// Every PostgreSQL process's pid (the throwaway servers are the only ones here).
fn postgres_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .collect()
}

/// CPU seconds so far: each pod, PostgreSQL (all its processes), and this load generator.
fn cpu(pods: &[Pod]) -> Vec<f64> {
    let mut v: Vec<f64> = pods.iter().map(|p| cpu_seconds(p.child.id())).collect();
    v.push(postgres_pids().into_iter().map(cpu_seconds).sum());
    v.push(cpu_seconds(std::process::id()));
    v
}

/// Pins a process, all its threads, to `cores` (a `taskset` list such as `0` or `1-3`); threads
/// and processes it starts later inherit it.
fn pin(pid: u32, cores: &str) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset could not pin {pid} to {cores}");
}

struct Phase {
    name: String,
    wall: Duration,
    tally: Tally,
    half: Vec<f64>,
    end: Vec<f64>,
    /// Cores used over the phase: each pod, PostgreSQL, the generator.
    cores: Vec<f64>,
}

fn cores_used(before: &[f64], after: &[f64], wall: Duration) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| (a - b) / wall.as_secs_f64())
        .collect()
}

/// Closed loop: `clients` back to back for `secs`.
async fn sustained(clients: &Clients, concurrency: usize, secs: u64, pods: &[Pod]) -> Phase {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let cpu_before = cpu(pods);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (clients, tally, next) = (clients.clone(), tally.clone(), next.clone());
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    let end = clients.call(i, None).await;
                    let mut tally = tally.lock().unwrap();
                    match end {
                        End::Ok => tally.ok.push(t.elapsed()),
                        End::Shed => tally.shed.push(t.elapsed()),
                        End::Failed(code, message) => {
                            tally.failed.push(code);
                            tally.examples.entry(format!("{code:?}")).or_insert(message);
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs / 2)).await;
    let half = memory(pods);
    for w in workers {
        w.await.unwrap();
    }
    let end = memory(pods);
    let wall = start.elapsed();
    let cores = cores_used(&cpu_before, &cpu(pods), wall);
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    Phase {
        name: format!("sustained: {concurrency} clients back to back"),
        wall,
        tally,
        half,
        end,
        cores,
    }
}

/// Open loop: `rate` calls a second for `secs`, each with a 2 s deadline.
async fn open_loop(clients: &Clients, rate: f64, secs: u64, pods: &[Pod]) -> Phase {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let cpu_before = cpu(pods);
    let start = Instant::now();
    let total = (rate * secs as f64) as usize;
    let mut handles = Vec::with_capacity(total);
    let mut half = Vec::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        if half.is_empty() && start.elapsed() >= Duration::from_secs(secs / 2) {
            half = memory(pods);
        }
        let (clients, tally) = (clients.clone(), tally.clone());
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            let end = clients.call(1_000_000 + i, Some(Duration::from_secs(2))).await;
            let mut tally = tally.lock().unwrap();
            tally.lag.push(t.saturating_duration_since(due));
            match end {
                End::Ok => tally.ok.push(t.elapsed()),
                End::Shed => tally.shed.push(t.elapsed()),
                End::Failed(code, message) => {
                    tally.failed.push(code);
                    tally.examples.entry(format!("{code:?}")).or_insert(message);
                }
            }
        }));
    }
    let end = memory(pods);
    // CPU over the sending period; ok/s over the whole phase, the calls' last replies included.
    let cores = cores_used(&cpu_before, &cpu(pods), start.elapsed());
    for h in handles {
        h.await.unwrap();
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    Phase {
        name: format!("overload: open loop at {rate:.0} calls/s"),
        wall: start.elapsed(),
        tally,
        half,
        end,
        cores,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe { std::env::set_var("HCRM_TEST_PG_DURABLE", "1") };
    let concurrency = env_usize("BENCH_CONCURRENCY", 8);
    let secs = env_usize("BENCH_LOAD_SECS", 60) as u64;
    let limit = env_usize("BENCH_LOAD_LIMIT", 4);
    let connections = env_usize("BENCH_CONNECTIONS", 4).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Servers and PostgreSQL on the first half of the cores, the generator on the rest: what
    // separate machines would give, so the generator's work does not slow the servers.
    let split = (env_usize("BENCH_PIN", 1) == 1 && cores >= 2).then(|| {
        let half = cores / 2;
        let list = |a: usize, b: usize| if a == b { a.to_string() } else { format!("{a}-{b}") };
        (list(0, half - 1), list(half, cores - 1))
    });
    runtime.block_on(async {
        let mut dbs = Vec::new();
        for _ in 0..5 {
            dbs.push(TestDatabase::new(TestBackend::Postgres).await.unwrap());
        }
        let (pp, fp, bp, op, gp, http_port) = (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
        let url = |p: u16| format!("http://127.0.0.1:{p}");
        use base64::Engine;
        let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        let env: Vec<(String, String)> = [
            ("HCRM__PATIENTS__DATABASE_URL", dbs[0].url.clone()),
            ("HCRM__FOLLOWUP__DATABASE_URL", dbs[1].url.clone()),
            ("HCRM__FEEDBACK__DATABASE_URL", dbs[2].url.clone()),
            ("HCRM__OPINION__DATABASE_URL", dbs[3].url.clone()),
            ("HCRM__GATEWAY__DATABASE_URL", dbs[4].url.clone()),
            ("HCRM__AUTH__HS256_SECRET", SECRET.to_string()),
            ("HCRM__SECURITY__DATA_KEYS", format!("k1:{}", key(3))),
            ("HCRM__SECURITY__INDEX_KEY", key(5)),
            ("HCRM__TELEMETRY__LOG_LEVEL", "warn".to_string()),
            ("HCRM__SERVER__CONCURRENCY_LIMIT", limit.to_string()),
            ("HCRM__FOLLOWUP__PATIENTS_URL", url(pp)),
            ("HCRM__FOLLOWUP__FEEDBACK_URL", url(bp)),
            ("HCRM__FEEDBACK__PATIENTS_URL", url(pp)),
            ("HCRM__FEEDBACK__FOLLOWUP_URL", url(fp)),
            ("HCRM__FEEDBACK__OPINION_URL", url(op)),
            ("HCRM__OPINION__PATIENTS_URL", url(pp)),
            ("HCRM__OPINION__FEEDBACK_URL", url(bp)),
            ("HCRM__GATEWAY__PATIENTS_URL", url(pp)),
            ("HCRM__GATEWAY__FOLLOWUP_URL", url(fp)),
            ("HCRM__GATEWAY__FEEDBACK_URL", url(bp)),
            ("HCRM__GATEWAY__OPINION_URL", url(op)),
            // One client address drives the whole load: the per-client budget must not be what sheds.
            ("HCRM__GATEWAY__RATE_PER_MINUTE", "100000000".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let migrate = Command::new(BIN)
            .arg("migrate")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
        let gateway_env: Vec<(String, String)> = env
            .iter()
            .cloned()
            .chain([("HCRM__GATEWAY__HTTP_ADDR".to_string(), format!("127.0.0.1:{http_port}"))])
            .collect();
        let pods = vec![
            start("patients", &env, pp),
            start("followup", &env, fp),
            start("feedback", &env, bp),
            start("opinion", &env, op),
            start("gateway", &gateway_env, gp),
        ];
        let channels = [
            serving(&pods[0].addr).await,
            serving(&pods[1].addr).await,
            serving(&pods[2].addr).await,
            serving(&pods[3].addr).await,
            serving(&pods[4].addr).await,
        ];
        if let Some((servers, generator)) = &split {
            for pid in pods.iter().map(|p| p.child.id()).chain(postgres_pids()) {
                pin(pid, servers);
            }
            pin(std::process::id(), generator);
        }
        // Separate connections (each `connect_lazy` channel is one HTTP/2 connection).
        let pool = |addr: &str| -> Vec<Authed> {
            (0..connections)
                .map(|_| authed(&GrpcChannel::from_shared(format!("http://{addr}")).unwrap().connect_lazy()))
                .collect()
        };
        let idle = memory(&pods);
        let mut patients = PatientServiceClient::new(authed(&channels[0]));
        let mut names = Vec::new();
        for i in 0..500 {
            let p = patients
                .create_patient(CreatePatientRequest {
                    patient: Some(Patient {
                        display_name: format!("负载患者{i}"),
                        phones: vec![format!("137{i:08}")],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            names.push(p.name);
        }
        let clients = Clients {
            patients: pool(&pods[0].addr).into_iter().map(PatientServiceClient::new).collect(),
            followup: pool(&pods[1].addr).into_iter().map(FollowupServiceClient::new).collect(),
            cases: pool(&pods[2].addr).into_iter().map(CaseServiceClient::new).collect(),
            mentions: pool(&pods[3].addr).into_iter().map(MentionServiceClient::new).collect(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            gateway: format!("http://127.0.0.1:{http_port}"),
            token: Authenticator::hs256(SECRET)
                .mint("load-guide", &[Role::Admin], None, 3600)
                .unwrap(),
            patient_names: Arc::new(names),
        };
        let first = sustained(&clients, concurrency, secs, &pods).await;
        let rate = first.tally.ok.len() as f64 / first.wall.as_secs_f64();
        let second = open_loop(&clients, rate * 5.0, secs, &pods).await;

        println!(
            "\nsplit topology: patients, followup, feedback, opinion, gateway as 5 processes on one \
             PostgreSQL; server.concurrency_limit = {limit}; {secs} s per phase; {connections} \
             connections per service; {}",
            match &split {
                Some((servers, generator)) => format!("servers and PostgreSQL on cores {servers}, generator on {generator}"),
                None => format!("all processes share the {cores} cores"),
            }
        );
        println!(
            "\n| phase | ok/s | p50 ms | p99 ms | shed | shed p50 / p99 ms | other errors | generator lag p99 ms | memory at {}s → {}s (MB: patients, followup, feedback, opinion, gateway) |",
            secs / 2,
            secs
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
        let mut cpu_rows = Vec::new();
        let mut examples = std::collections::BTreeMap::new();
        for mut p in [first, second] {
            examples.append(&mut p.tally.examples);
            let ok = p.tally.ok.len() as f64 / p.wall.as_secs_f64();
            let (p50, p99) = (pick(&mut p.tally.ok, 0.5), pick(&mut p.tally.ok, 0.99));
            let (shed_p50, shed_p99) = (pick(&mut p.tally.shed, 0.5), pick(&mut p.tally.shed, 0.99));
            let lag_p99 = pick(&mut p.tally.lag, 0.99);
            let mut codes: Vec<String> = p.tally.failed.iter().map(|c| format!("{c:?}")).collect();
            codes.sort();
            codes.dedup();
            let mem = |v: &[f64]| v.iter().map(|m| format!("{m:.1}")).collect::<Vec<_>>().join(" / ");
            println!(
                "| {} | {ok:.0} | {p50:.1} | {p99:.1} | {} | {shed_p50:.1} / {shed_p99:.1} | {} {} | {lag_p99:.1} | {} → {} |",
                p.name,
                p.tally.shed.len(),
                p.tally.failed.len(),
                if codes.is_empty() { String::new() } else { format!("({})", codes.join(", ")) },
                mem(&p.half),
                mem(&p.end),
            );
            cpu_rows.push(format!(
                "| {} | {} | {:.2} |",
                p.name,
                p.cores.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(" | "),
                p.cores.iter().sum::<f64>()
            ));
        }
        println!("\n| phase | cores used: patients | followup | feedback | opinion | gateway | PostgreSQL | generator | total |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in cpu_rows {
            println!("{row}");
        }
        for (code, message) in &examples {
            println!("- {code}: e.g. {message}");
        }
        let names: Vec<&str> = pods.iter().map(|p| p.name).collect();
        println!(
            "\nidle memory before the load ({}): {}",
            names.join(", "),
            idle.iter().map(|m| format!("{m:.1} MB")).collect::<Vec<_>>().join(", ")
        );
    });
}
