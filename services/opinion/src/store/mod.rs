//! The only place with SQL. One implementation serves SQLite and PostgreSQL (`$n` placeholders,
//! integers for times and days, text and bytes); dialect differences are chosen by [`Backend`].

pub mod alerts;
pub mod feed;
pub mod incidents;
pub mod ingest;
pub mod mentions;
pub mod reputation;
pub mod sources;
pub mod watch;

use crate::analysis::{Analyzer, Matcher};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Principal;
use hcrm_kit::clock::Clock;
use hcrm_kit::db::{Backend, Db, col};
use hcrm_kit::feed::Ledger;
use hcrm_kit::ledger::AuditEntry;
use hcrm_kit::outbox::Outbox;
use std::sync::{Arc, Mutex};

pub use hcrm_kit::resource::{check_etag, decode, etag, parse_name};

/// What the store needs from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub utc_offset_minutes: i32,
    pub story_window_micros: i64,
    pub near_duplicate_similarity: f64,
    pub default_notify: Vec<String>,
}

/// The watch list compiled for matching, and the revision it was built from.
pub struct Watch {
    pub revision: i64,
    pub matcher: Matcher,
    /// Entity ids by the matcher's index.
    pub ids: Vec<String>,
}

#[derive(Clone)]
pub struct Store {
    pub db: Db,
    pub ledger: Ledger,
    pub outbox: Outbox,
    pub clock: Clock,
    pub rules: Arc<Rules>,
    pub analyzer: Arc<Analyzer>,
    watch: Arc<Mutex<Option<Arc<Watch>>>>,
}

/// Who acts, for the audit log and incident notes.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub request_id: String,
}

impl Actor {
    /// This service acting on its own (poller, alert pass, feed consumer).
    pub fn service() -> Self {
        Self {
            principal: Principal {
                subject: "service:opinion".into(),
                roles: vec![],
                department: None,
            },
            request_id: String::new(),
        }
    }

    pub fn subject(&self) -> &str {
        &self.principal.subject
    }

    pub fn audit_entry(&self, action: &str, resource: &str, reason: &str, detail: serde_json::Value) -> AuditEntry {
        AuditEntry::by(&self.principal, &self.request_id, action, resource, reason, detail)
    }
}

impl Store {
    pub fn new(db: Db, cfg: &crate::Config, clock: Clock) -> Self {
        Self {
            ledger: Ledger::new(db.clone()),
            outbox: Outbox::new(db.clone(), clock.clone()),
            db,
            clock,
            rules: Arc::new(Rules {
                utc_offset_minutes: cfg.utc_offset_minutes,
                story_window_micros: cfg.story_window_days * 86_400_000_000,
                near_duplicate_similarity: cfg.near_duplicate_similarity,
                default_notify: cfg.default_notify.clone(),
            }),
            analyzer: shared_analyzer(),
            watch: Arc::new(Mutex::new(None)),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, where `BEGIN IMMEDIATE` holds the lock.
    pub fn for_update(&self) -> &'static str {
        match self.db.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// After a commit that wrote to the ledger and maybe the outbox.
    pub fn committed(&self, outbox: bool) {
        self.ledger.changed();
        if outbox {
            self.outbox.wake();
        }
    }

    /// The row `id` of `table`, locked for this transaction (PostgreSQL; SQLite's write lock is
    /// held already), after checking the caller's `expected` etag: NOT_FOUND as `resource`,
    /// ABORTED when stale.
    pub async fn locked(
        &self,
        tx: &mut hcrm_kit::db::Tx,
        table: &'static str,
        resource: &str,
        id: &str,
        expected: &str,
    ) -> Result<sqlx::any::AnyRow, ApiError> {
        let sql = format!("SELECT * FROM {table} WHERE id = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| ApiError::not_found(resource))?;
        check_etag(resource, expected, col(&row, "version")?)?;
        Ok(row)
    }

    /// Claims a create's idempotency key for `resource` first thing in its transaction;
    /// `Some(existing)` when an earlier call with the key made `existing`.
    pub async fn claim_request(
        &self,
        tx: &mut hcrm_kit::db::Tx,
        key: Option<&str>,
        resource: &str,
    ) -> Result<Option<String>, ApiError> {
        match key {
            Some(key) => Ok(hcrm_kit::idempotency::claim(&self.db, tx, key, resource, self.now()).await?),
            None => Ok(None),
        }
    }

    /// The compiled watch list, rebuilt when another call or replica changed it.
    pub async fn watch(&self) -> Result<Arc<Watch>, ApiError> {
        let revision: i64 = sqlx::query("SELECT revision FROM watch_revision WHERE id = 1")
            .fetch_one(&self.db.pool)
            .await
            .map(|r| col(&r, "revision"))??;
        if let Some(w) = self.watch.lock().expect("watch lock").as_ref()
            && w.revision == revision
        {
            return Ok(w.clone());
        }
        let entities = self.active_entity_terms().await?;
        let ids: Vec<String> = entities.iter().map(|(id, _)| id.clone()).collect();
        let indexed: Vec<(i64, Vec<String>)> = entities
            .into_iter()
            .enumerate()
            .map(|(i, (_, terms))| (i as i64, terms))
            .collect();
        let built = Arc::new(Watch {
            revision,
            matcher: Matcher::new(&indexed),
            ids,
        });
        *self.watch.lock().expect("watch lock") = Some(built.clone());
        Ok(built)
    }
}

impl Watch {
    /// The ids of the entities `text` mentions.
    pub fn entities_in(&self, text: &str) -> Vec<String> {
        self.matcher
            .find(text)
            .into_iter()
            .filter_map(|i| self.ids.get(i as usize).cloned())
            .collect()
    }
}

/// The analyser (segmentation dictionary and model) is loaded once per process: every store
/// of every test and replica in it shares it.
fn shared_analyzer() -> Arc<Analyzer> {
    static ANALYZER: std::sync::OnceLock<Arc<Analyzer>> = std::sync::OnceLock::new();
    ANALYZER.get_or_init(|| Arc::new(Analyzer::new())).clone()
}

/// ALREADY_EXISTS for a unique index a concurrent create hit first; other errors as they are.
pub fn taken(err: sqlx::Error, what: impl FnOnce() -> String) -> ApiError {
    if hcrm_kit::error::is_unique_violation(&err) {
        ApiError::AlreadyExists {
            what: what(),
            existing: "one created at the same moment".into(),
        }
    } else {
        err.into()
    }
}

/// A JSON array of strings as stored in text columns.
pub fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
