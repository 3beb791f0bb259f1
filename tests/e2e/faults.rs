//! PostgreSQL stopped under load (`pg_ctl stop -m immediate`) and started again: calls fail fast
//! with UNAVAILABLE meanwhile, readiness goes NOT_SERVING (liveness stays SERVING: a restart would
//! not help), the service recovers without a restart, and every acknowledged write is there.

use hcrm_kit::auth::{Authenticator, Role};
use hcrm_kit::client::Bearer;
use hcrm_kit::testing::{Cluster, create_database};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{CreatePatientRequest, GetPatientRequest, Patient};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_hcrm");
const SECRET: &str = "faults-signing-secret-0123456789abcdef";
const SERVICE: &str = "hcrm.patients.v1.PatientService";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `hcrm serve --target patients` on `data` and `grpc`, with the test's signing secret and
/// `env` on top (admin on a free port unless `env` sets it).
fn patients_process(data: &std::path::Path, grpc: &str, env: &[(&str, &str)]) -> Process {
    Process(
        Command::new(BIN)
            .args(["serve", "--target", "patients", "--data-dir"])
            .arg(data)
            .env("HCRM__SERVER__GRPC_ADDR", grpc)
            .env("HCRM__SERVER__ADMIN_ADDR", "127.0.0.1:0")
            .env("HCRM__GATEWAY__HTTP_ADDR", "127.0.0.1:0")
            .env("HCRM__AUTH__HS256_SECRET", SECRET)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn client(channel: Channel) -> PatientServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
    let token = Authenticator::hs256(SECRET)
        .mint("load", &[Role::Admin], None, 600)
        .unwrap();
    PatientServiceClient::with_interceptor(channel, Bearer::new(&token).unwrap())
}

async fn health_of(channel: &Channel, service: &str) -> Option<i32> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

async fn until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_and_back() {
    // A cluster of its own (stopping the shared one would fail every other test), durable: the
    // shared test cluster runs without fsync, where a crash may lose acknowledged commits.
    let cluster = Cluster::start_with(true).unwrap();
    let url = create_database(&cluster.url()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", crate::free_port());
    let _server = patients_process(
        data.path(),
        &grpc,
        &[
            ("HCRM__PATIENTS__DATABASE_URL", &url),
            // How long a call waits for a connection: the bound on "fail fast".
            ("HCRM__DATA__ACQUIRE_TIMEOUT_SECS", "2"),
        ],
    );
    let channel = Channel::from_shared(format!("http://{grpc}")).unwrap().connect_lazy();
    until("serving", Duration::from_secs(30), async || {
        health_of(&channel, SERVICE).await == Some(ServingStatus::Serving as i32)
    })
    .await;

    // Load: four writers creating patients; every acknowledged name is kept.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<(Code, Duration)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (mut c, acknowledged, failures, stop) = (
                client(channel.clone()),
                acknowledged.clone(),
                failures.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let started = Instant::now();
                    let result = c
                        .create_patient(CreatePatientRequest {
                            patient: Some(Patient {
                                display_name: format!("负载{w}号{i}"),
                                phones: vec![format!("1390000{w}{:03}", i % 1000)],
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .await;
                    match result {
                        Ok(p) => acknowledged.lock().unwrap().push(p.into_inner().name),
                        Err(status) => {
                            failures.lock().unwrap().push((status.code(), started.elapsed()));
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();
    until("writes under load", Duration::from_secs(20), async || {
        acknowledged.lock().unwrap().len() >= 50
    })
    .await;

    cluster.stop_immediate().unwrap();
    let stopped_at = acknowledged.lock().unwrap().len();
    // Readiness turns NOT_SERVING; liveness stays SERVING.
    until("NOT_SERVING", Duration::from_secs(10), async || {
        health_of(&channel, SERVICE).await == Some(ServingStatus::NotServing as i32)
    })
    .await;
    assert_eq!(health_of(&channel, "").await, Some(ServingStatus::Serving as i32));
    until("failed calls", Duration::from_secs(10), async || {
        failures.lock().unwrap().len() >= 8
    })
    .await;

    cluster.start_again().unwrap();
    until("SERVING again", Duration::from_secs(20), async || {
        health_of(&channel, SERVICE).await == Some(ServingStatus::Serving as i32)
    })
    .await;
    until("writes after recovery", Duration::from_secs(20), async || {
        acknowledged.lock().unwrap().len() >= stopped_at + 50
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    // Failures while the database was down were UNAVAILABLE (retryable) and fast.
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.iter().all(|(code, _)| *code == Code::Unavailable),
        "failure codes: {:?}",
        failures.iter().map(|(c, _)| *c).collect::<Vec<_>>()
    );
    let slowest = failures.iter().map(|(_, d)| *d).max().unwrap();
    assert!(slowest < Duration::from_secs(4), "a failed call took {slowest:?}");
    // Every acknowledged write survived the crash.
    let mut c = client(channel.clone());
    let acknowledged = acknowledged.lock().unwrap().clone();
    for name in &acknowledged {
        c.get_patient(GetPatientRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{name} acknowledged but lost: {s:?}"));
    }
    println!(
        "postgres outage: {} writes acknowledged, {} failed with UNAVAILABLE (slowest {slowest:?})",
        acknowledged.len(),
        failures.len()
    );
}

/// SIGTERM under load: readiness goes NOT_SERVING at once, calls in flight finish, later ones
/// are refused as UNAVAILABLE (never INTERNAL), the process exits within its grace period, and
/// every acknowledged write is there when it starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains() {
    let data = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", crate::free_port());
    let start = || {
        patients_process(
            data.path(),
            &grpc,
            // As in the manifests: a delay for load balancers, then a bounded drain.
            &[
                ("HCRM__SERVER__DRAIN_DELAY_SECS", "1"),
                ("HCRM__SERVER__DRAIN_TIMEOUT_SECS", "10"),
            ],
        )
    };
    let mut server = start();
    let channel = Channel::from_shared(format!("http://{grpc}")).unwrap().connect_lazy();
    until("serving", Duration::from_secs(30), async || {
        health_of(&channel, SERVICE).await == Some(ServingStatus::Serving as i32)
    })
    .await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<Code>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (mut c, acknowledged, refused) = (client(channel.clone()), acknowledged.clone(), refused.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let result = c
                        .create_patient(CreatePatientRequest {
                            patient: Some(Patient {
                                display_name: format!("排空{w}号{i}"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .await;
                    match result {
                        Ok(p) => acknowledged.lock().unwrap().push(p.into_inner().name),
                        Err(status) => {
                            refused.lock().unwrap().push(status.code());
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    until("writes under load", Duration::from_secs(20), async || {
        acknowledged.lock().unwrap().len() >= 40
    })
    .await;

    let pid = server.0.id().to_string();
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    until("NOT_SERVING at once", Duration::from_millis(900), async || {
        health_of(&channel, "").await == Some(ServingStatus::NotServing as i32)
    })
    .await;
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(15),
            "still running past the grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = sent.elapsed();
    assert!(status.success(), "exit status {status}");
    for w in writers {
        w.await.unwrap();
    }
    let refused = refused.lock().unwrap().clone();
    assert!(
        refused.iter().all(|c| matches!(c, Code::Unavailable | Code::Cancelled)),
        "refused with {refused:?}"
    );

    // Started again on the same data: every acknowledged write is there.
    server = start();
    until("serving again", Duration::from_secs(30), async || {
        health_of(&channel, SERVICE).await == Some(ServingStatus::Serving as i32)
    })
    .await;
    let mut c = client(channel.clone());
    let acknowledged = acknowledged.lock().unwrap().clone();
    for name in &acknowledged {
        c.get_patient(GetPatientRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{name} acknowledged but lost: {s:?}"));
    }
    println!(
        "sigterm under load: {} writes acknowledged, {} refused ({refused:?}), exited {exited_after:?} after SIGTERM",
        acknowledged.len(),
        refused.len()
    );
    drop(server);
}

/// Calls beyond `server.concurrency_limit` are refused at once with UNAVAILABLE (what clients
/// retry elsewhere), nothing of them is written, and the metrics count them as UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_calls_are_shed_and_counted() {
    let data = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", crate::free_port());
    let admin = format!("127.0.0.1:{}", crate::free_port());
    let _server = patients_process(
        data.path(),
        &grpc,
        &[
            ("HCRM__SERVER__ADMIN_ADDR", &admin),
            ("HCRM__SERVER__CONCURRENCY_LIMIT", "2"),
        ],
    );
    let channel = Channel::from_shared(format!("http://{grpc}")).unwrap().connect_lazy();
    until("serving", Duration::from_secs(30), async || {
        health_of(&channel, SERVICE).await == Some(ServingStatus::Serving as i32)
    })
    .await;

    // 300 writes at once over four connections: two at a time fit.
    let connections: Vec<_> = (0..4)
        .map(|_| client(Channel::from_shared(format!("http://{grpc}")).unwrap().connect_lazy()))
        .collect();
    let calls: Vec<_> = (0..300)
        .map(|i| {
            let mut c = connections[i % 4].clone();
            tokio::spawn(async move {
                c.create_patient(CreatePatientRequest {
                    patient: Some(Patient {
                        display_name: format!("洪峰{i}"),
                        phones: vec![format!("1370000{i:04}")],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
            })
        })
        .collect();
    let (mut ok, mut shed) = (Vec::new(), 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(p) => ok.push(p.into_inner()),
            Err(s) if s.code() == Code::Unavailable => shed += 1,
            Err(s) => panic!("only OK or UNAVAILABLE, got {s:?}"),
        }
    }
    assert!(!ok.is_empty() && shed > 0, "{} ok, {shed} shed", ok.len());

    // Every acknowledged write is there; the shed ones wrote nothing (their phones find no one).
    let mut c = client(channel.clone());
    for p in &ok {
        let read = c
            .get_patient(GetPatientRequest {
                name: p.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.display_name, p.display_name);
    }
    let written: std::collections::HashSet<&str> = ok.iter().map(|p| p.display_name.as_str()).collect();
    let mut found = 0;
    for i in 0..300 {
        let name = format!("洪峰{i}");
        let hits = c
            .search_patients(hcrm_proto::patients::SearchPatientsRequest {
                query: format!("1370000{i:04}"),
                page_size: 5,
            })
            .await
            .unwrap()
            .into_inner()
            .matches;
        assert_eq!(hits.len(), usize::from(written.contains(name.as_str())), "{name}");
        found += hits.len();
    }
    assert_eq!(found, ok.len());

    let metrics = crate::http_get(&admin, "/metrics").await;
    let counted = |code: &str| {
        let prefix =
            format!(r#"grpc_server_handled_total{{service="{SERVICE}",method="CreatePatient",code="{code}"}} "#);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0)
    };
    assert_eq!(counted("Unavailable"), shed, "{metrics}");
    assert_eq!(counted("Ok"), ok.len(), "{metrics}");
}
