//! Database access shared by every service: one pool type for SQLite and PostgreSQL (sqlx `Any`
//! with runtime queries and `$n` placeholders), migrations per dialect, write transactions that
//! are safe for read-then-write on SQLite, and a small builder for dynamic SQL.

use crate::config::DataConfig;
use anyhow::Context;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};
use std::time::Duration;

/// Which database a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend named by a URL's scheme.
    pub fn of_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("unsupported database URL scheme; use sqlite:// or postgres://")
        }
    }
}

/// The migrations of a service, one set per dialect.
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// A service's database.
#[derive(Debug, Clone)]
pub struct Db {
    /// For reads (and single statements that write).
    pub pool: AnyPool,
    /// For write transactions. On SQLite one connection: writers queue here instead of
    /// sleeping in SQLite's busy handler (which costs milliseconds per collision); on PostgreSQL
    /// the same pool as `pool`.
    writer: AnyPool,
    pub backend: Backend,
}

/// A write transaction.
pub type Tx = Transaction<'static, Any>;

impl Db {
    /// Connects to `url` (SQLite files are created when missing; WAL, foreign keys and a busy
    /// timeout are set on every connection).
    pub async fn connect(url: &str, cfg: &DataConfig) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite
            && let Some(path) = sqlite_path(url)
            && let Some(dir) = std::path::Path::new(&path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let pool = Self::pool_options(backend, cfg.max_connections.max(1), cfg)
            .connect(&url)
            .await
            .with_context(|| format!("connecting to the {backend:?} database"))?;
        let writer = match backend {
            Backend::Sqlite => Self::pool_options(backend, 1, cfg).connect(&url).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Db { pool, writer, backend })
    }

    fn pool_options(backend: Backend, connections: u32, cfg: &DataConfig) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(cfg.acquire_timeout_secs.max(1)))
            .idle_timeout(Duration::from_secs(600))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let statements: &[&'static str] = match backend {
                        Backend::Sqlite => &[
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                            // Pages read through a memory map and a 32 MiB cache per connection
                            // (allocated as used) instead of a read() copy from the OS cache each
                            // time: the kernel was 40% of opinion's ingestion profile.
                            "PRAGMA mmap_size = 268435456",
                            "PRAGMA cache_size = -32768",
                        ],
                        // A dead peer must not hang a query forever.
                        Backend::Postgres => &[
                            "SET statement_timeout = '60s'",
                            "SET idle_in_transaction_session_timeout = '120s'",
                        ],
                    };
                    for statement in statements {
                        sqlx::query(*statement).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
    }

    /// Applies the migrations of this backend. On PostgreSQL sqlx takes an advisory lock, so
    /// replicas starting together do not race.
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        migrator.run(&self.pool).await.context("applying migrations")?;
        self.apply_ledger_schema().await.context("applying the ledger schema")
    }

    /// Creates the audit log and event feed tables every service shares, in one transaction;
    /// on PostgreSQL under an advisory lock so replicas starting together do not race.
    async fn apply_ledger_schema(&self) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        let script = match self.backend {
            Backend::Sqlite => include_str!("../schema/ledger.sqlite.sql"),
            Backend::Postgres => {
                sqlx::query("SELECT pg_advisory_xact_lock(7262011001)")
                    .execute(&mut *tx)
                    .await?;
                include_str!("../schema/ledger.postgres.sql")
            }
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A readiness check: the database answers `SELECT 1`.
    pub fn readiness(&self) -> crate::server::Readiness {
        let pool = self.pool.clone();
        std::sync::Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move { sqlx::query("SELECT 1").execute(&pool).await.is_ok() })
        })
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a read-then-write cannot fail with SQLITE_BUSY halfway.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// A value bound into dynamic SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
    Real(f64),
    /// A text NULL.
    Null,
    /// An integer NULL: PostgreSQL will not put a text NULL in a BIGINT column.
    NullInt,
}

/// Dynamic SQL with `$n` placeholders numbered as values are pushed.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Value>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: Value) -> &mut Self {
        self.args.push(value);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends another statement's text and values, renumbering its placeholders after ours
    /// (its text holds no user input, only `$n` placeholders, so this is a plain rewrite).
    pub fn append_renumbered(&mut self, other: &Sql) -> &mut Self {
        let offset = self.args.len();
        let mut chars = other.text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    chars.next();
                }
                let n: usize = n.parse().expect("digits");
                self.text.push('$');
                self.text.push_str(&(n + offset).to_string());
            } else {
                self.text.push(c);
            }
        }
        self.args.extend(other.args.iter().cloned());
        self
    }

    /// The query, ready to run.
    pub fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.text.as_str()));
        for arg in &self.args {
            query = match arg {
                Value::Text(s) => query.bind(s.as_str()),
                Value::Int(i) => query.bind(*i),
                Value::Bytes(b) => query.bind(b.as_slice()),
                Value::Real(r) => query.bind(*r),
                Value::Null => query.bind(Option::<String>::None),
                Value::NullInt => query.bind(Option::<i64>::None),
            };
        }
        query
    }
}

/// Reads a column, mapping a decode failure into an internal error with the column's name.
pub fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    use sqlx::Row;
    row.try_get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_follow_the_url_scheme() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert!(Backend::of_url("mysql://h/db").is_err());
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut sql = Sql::new("SELECT * FROM t WHERE a = ");
        sql.bind(Value::Int(1)).push(" AND b = ").bind(Value::Text("x".into()));
        assert_eq!(sql.text, "SELECT * FROM t WHERE a = $1 AND b = $2");
        assert_eq!(sql.args.len(), 2);
    }

    #[test]
    fn appended_statements_are_renumbered() {
        let mut a = Sql::new("SELECT 1 WHERE x = ");
        a.bind(Value::Int(1));
        let mut b = Sql::new("y = ");
        b.bind(Value::Int(2)).push(" AND z = ").bind(Value::Int(3));
        a.push(" AND ").append_renumbered(&b);
        assert_eq!(a.text, "SELECT 1 WHERE x = $1 AND y = $2 AND z = $3");
        assert_eq!(a.args, vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
    }
}
