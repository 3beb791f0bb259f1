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
            TestBackend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!("t_{}", uuid::Uuid::now_v7().simple());
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Ok(TestDatabase {
                    url: format!("{base}/{name}"),
                    backend,
                    _dir: None,
                })
            }
        }
    }
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

fn start_cluster() -> anyhow::Result<String> {
    let bin = postgres_bin_dir()?;
    let root = is_root();
    let base = tempfile::Builder::new().prefix("hcrm-pg-").tempdir()?.keep();
    let data = base.join("data");
    let run = |program: &str, args: &[String]| -> anyhow::Result<std::process::Output> {
        let exe = bin.join(program);
        let mut cmd = if root {
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
    };
    if root {
        // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&base)
            .status()?;
        anyhow::ensure!(status.success(), "chown of the cluster directory failed");
    }
    run(
        "initdb",
        &[
            "-D".into(),
            data.display().to_string(),
            "-U".into(),
            "postgres".into(),
            "--auth=trust".into(),
            "--encoding=UTF8".into(),
            "--locale=C".into(),
        ],
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let durable = std::env::var("HCRM_TEST_PG_DURABLE").is_ok_and(|v| v == "1");
    let mut options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB",
        base.display()
    );
    if !durable {
        // Tests need no crash safety; benchmarks set HCRM_TEST_PG_DURABLE=1.
        options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }
    run(
        "pg_ctl",
        &[
            "-D".into(),
            data.display().to_string(),
            "-o".into(),
            options,
            "-l".into(),
            base.join("server.log").display().to_string(),
            "-w".into(),
            "-t".into(),
            "60".into(),
            "start".into(),
        ],
    )?;
    // The watchdog outlives nothing: when this process ends, it stops the cluster and cleans up.
    let pg_ctl = bin.join("pg_ctl");
    let stop = if root {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!("{} -D {} -m immediate stop", pg_ctl.display(), data.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {base}",
        pid = std::process::id(),
        base = base.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}
