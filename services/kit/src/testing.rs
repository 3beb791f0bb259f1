//! Fresh databases for tests and benchmarks, on either backend.
//!
//! PostgreSQL: one throwaway cluster per test process, started from the machine's
//! `initdb`/`pg_ctl` (as the unprivileged `postgres` user when running as root), with a fresh
//! database per test. A watchdog stops the cluster and removes its files when the process exits.
//! Set `HCRM_TEST_POSTGRES_URL` to an admin URL to use an existing server instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A database backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database; SQLite files are removed when it is dropped.
pub struct TestDatabase {
    pub url: String,
    pub backend: TestBackend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new empty database on `backend`.
    pub async fn new(backend: TestBackend) -> anyhow::Result<TestDatabase> {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Ok(TestDatabase {
                    url,
                    backend,
                    _dir: Some(dir),
                })
            }
            TestBackend::Postgres => Ok(TestDatabase {
                url: create_database(&postgres_admin_url()?).await?,
                backend,
                _dir: None,
            }),
        }
    }
}

/// Creates a fresh database on the server of `admin` (an admin URL) and returns its URL.
pub async fn create_database(admin: &str) -> anyhow::Result<String> {
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}

/// The admin URL of the test PostgreSQL server, starting the throwaway cluster on first use.
pub fn postgres_admin_url() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("HCRM_TEST_POSTGRES_URL") {
        return Ok(url);
    }
    static CLUSTER: OnceLock<Result<String, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| start_cluster().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!("starting a throwaway PostgreSQL cluster: {e}"))
}

/// Where the PostgreSQL server binaries are: PATH first, then Debian's directories.
pub fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|d| has(d))
        .ok_or_else(|| anyhow::anyhow!("no initdb/pg_ctl found in /usr/lib/postgresql/*/bin or on PATH"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A throwaway PostgreSQL cluster from the machine's `initdb`/`pg_ctl` (run as `postgres` when
/// root). Fault tests start their own to stop and start it; everything else shares one.
pub struct Cluster {
    bin: PathBuf,
    base: PathBuf,
    data: PathBuf,
    port: u16,
    root: bool,
    options: String,
}

impl Cluster {
    /// Creates and starts a cluster on a free port; a watchdog stops it and removes its files
    /// when this process ends.
    pub fn start() -> anyhow::Result<Cluster> {
        Self::start_with(std::env::var("HCRM_TEST_PG_DURABLE").is_ok_and(|v| v == "1"))
    }

    /// Like [`Cluster::start`]; `durable` keeps fsync and synchronous commit on (crash tests
    /// need them: without them an acknowledged commit may be lost by design).
    pub fn start_with(durable: bool) -> anyhow::Result<Cluster> {
        let bin = postgres_bin_dir()?;
        let root = is_root();
        let base = tempfile::Builder::new().prefix("hcrm-pg-").tempdir()?.keep();
        let data = base.join("data");
        if root {
            // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base)
                .status()?;
            anyhow::ensure!(status.success(), "chown of the cluster directory failed");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB",
            base.display()
        );
        if !durable {
            // Tests need no crash safety; benchmarks set HCRM_TEST_PG_DURABLE=1.
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let cluster = Cluster {
            bin,
            base,
            data,
            port,
            root,
            options,
        };
        cluster.run(
            "initdb",
            &[
                "-D".into(),
                cluster.data.display().to_string(),
                "-U".into(),
                "postgres".into(),
                "--auth=trust".into(),
                "--encoding=UTF8".into(),
                "--locale=C".into(),
            ],
        )?;
        cluster.start_again()?;
        cluster.watchdog()?;
        Ok(cluster)
    }

    /// The admin URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data.display().to_string(),
                "-o".into(),
                self.options.clone(),
                "-l".into(),
                self.base.join("server.log").display().to_string(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "start".into(),
            ],
        )?;
        Ok(())
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop_immediate(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data.display().to_string(),
                "-m".into(),
                "immediate".into(),
                "-w".into(),
                "stop".into(),
            ],
        )?;
        Ok(())
    }

    fn run(&self, program: &str, args: &[String]) -> anyhow::Result<std::process::Output> {
        let exe = self.bin.join(program);
        let mut cmd = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out)
    }

    // The watchdog outlives nothing: when this process ends, it stops the cluster and cleans up.
    fn watchdog(&self) -> anyhow::Result<()> {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.root {
            format!(
                "runuser -u postgres -- {} -D {} -m immediate stop",
                pg_ctl.display(),
                self.data.display()
            )
        } else {
            format!("{} -D {} -m immediate stop", pg_ctl.display(), self.data.display())
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {base}",
            pid = std::process::id(),
            base = self.base.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        Ok(())
    }
}

fn start_cluster() -> anyhow::Result<String> {
    Ok(Cluster::start()?.url())
}

/// Runs async scenarios `fn name(backend: TestBackend)` once on SQLite and once on PostgreSQL,
/// as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::testing::TestBackend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::testing::TestBackend::Postgres).await
                }
            }
        )*
    };
}

/// Asserts a call failed with `code`, and (for INVALID_ARGUMENT) that a field violation names
/// `field`; returns the status for further checks.
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    field: Option<&str>,
) -> tonic::Status {
    let status = result.expect_err("call should fail");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    if let Some(field) = field {
        use tonic_types::StatusExt;
        let details = status.get_error_details();
        let bad = details
            .bad_request()
            .unwrap_or_else(|| panic!("no BadRequest detail in {status:?}"));
        assert!(
            bad.field_violations.iter().any(|v| v.field == field),
            "no violation for {field}: {:?}",
            bad.field_violations
        );
    }
    status
}

/// Polls `check` until it returns `Some`, for up to 30 s: for what background jobs or other
/// processes do on their own. Not a sleep: it returns as soon as the condition holds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The signing secret of [`webhook_receiver`].
pub const WEBHOOK_SECRET: &str = "webhook-secret";

/// What a test webhook receiver saw.
#[derive(Default)]
pub struct Received {
    /// Requests per idempotency key (more than 1 is a duplicate).
    pub by_key: std::collections::HashMap<String, u32>,
    pub bodies: Vec<serde_json::Value>,
    pub bad_signatures: u32,
    /// Answer 500 to this many requests first.
    pub fail_next: u32,
    pub delay_ms: u64,
}

pub type Receiver = std::sync::Arc<std::sync::Mutex<Received>>;

async fn receive(
    axum::extract::State(state): axum::extract::State<Receiver>,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> http::StatusCode {
    let delay = state.lock().unwrap().delay_ms;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut r = state.lock().unwrap();
    if r.fail_next > 0 {
        r.fail_next -= 1;
        return http::StatusCode::INTERNAL_SERVER_ERROR;
    }
    let ok = crate::notify::verify_signature(
        WEBHOOK_SECRET.as_bytes(),
        &header("x-hcrm-timestamp"),
        &body,
        &header("x-hcrm-signature"),
    );
    if !ok {
        r.bad_signatures += 1;
        return http::StatusCode::UNAUTHORIZED;
    }
    *r.by_key.entry(header("idempotency-key")).or_default() += 1;
    r.bodies.push(serde_json::from_slice(&body).unwrap_or_default());
    http::StatusCode::OK
}

/// A local webhook receiver (signed with [`WEBHOOK_SECRET`]) for notifier tests; returns its
/// URL and what it saw.
pub async fn webhook_receiver() -> (String, Receiver) {
    let state: Receiver = std::sync::Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

/// The dependencies of a service under test: HS256 tokens signed with `secret`, fixed data and
/// index keys, data (keys, SQLite files) under `dir`, the test's clock.
pub fn test_deps(
    secret: &str,
    dir: &Path,
    clock: crate::clock::Clock,
    self_addr: std::net::SocketAddr,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> crate::deps::Deps {
    use crate::secret::Secret;
    use base64::Engine;
    let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    crate::deps::Deps {
        authenticator: std::sync::Arc::new(crate::auth::Authenticator::hs256(secret)),
        data: crate::config::DataConfig {
            dir: dir.to_path_buf(),
            max_connections: 8,
            acquire_timeout_secs: 10,
        },
        security: crate::config::SecurityConfig {
            data_keys: Some(Secret::new(format!("k1:{}", key(7)))),
            active_key_id: None,
            index_key: Some(Secret::new(key(9))),
        },
        server: crate::config::ServerConfig::default(),
        stopping,
        clock,
        self_addr,
    }
}
