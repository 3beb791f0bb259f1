//! The only place with SQL. One implementation serves SQLite and PostgreSQL: queries use `$n`
//! placeholders and portable types (integers for times, text, bytes); the few dialect
//! differences (`FOR UPDATE`, `BEGIN IMMEDIATE`) are chosen by [`Backend`].

pub mod appointments;
pub mod consultations;
pub mod directory;
pub mod fhir;
pub mod grades;
pub mod import;
pub mod interactions;
pub mod organizations;
pub mod patients;
pub mod referrals;
pub mod related;
pub mod segments;
pub mod service_requests;

use hcrm_kit::ApiError;
use hcrm_kit::crypto::{BlindIndex, Sealer};
use hcrm_kit::db::{Backend, Db};
use hcrm_kit::feed::Ledger;

/// The patients service's database and the keys that protect its sensitive fields.
#[derive(Clone)]
pub struct Store {
    pub db: Db,
    pub sealer: Sealer,
    pub index: BlindIndex,
    /// The audit log and event feed: sealing and WatchEvents.
    pub ledger: Ledger,
}

impl Store {
    pub fn new(db: Db, sealer: Sealer, index: BlindIndex) -> Self {
        Self {
            ledger: Ledger::new(db.clone()),
            db,
            sealer,
            index,
        }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// ` FOR UPDATE` on PostgreSQL (row lock in a read-then-write); nothing on SQLite, where
    /// `BEGIN IMMEDIATE` already holds the write lock.
    pub fn for_update(&self) -> &'static str {
        match self.db.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Wakes the sealer after a commit that wrote to the ledger.
    pub fn changed(&self) {
        self.ledger.changed();
    }

    /// Seals what is committed and wakes local watchers when events were published.
    pub async fn seal(&self) -> Result<(), ApiError> {
        self.ledger.seal().await
    }

    /// Appends one audit entry in its own transaction (denied attempts).
    pub async fn audit_alone(&self, entry: hcrm_kit::ledger::AuditEntry) -> Result<(), ApiError> {
        self.ledger.audit_alone(entry).await
    }
}

/// The id part of a resource name `{collection}/{id}`; NOT_FOUND for anything else, since a
/// malformed name names nothing that exists.
pub fn parse_name<'a>(field: &str, name: &'a str, collection: &str) -> Result<&'a str, ApiError> {
    let id = name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains('/'))
        .ok_or_else(|| {
            if name.is_empty() {
                ApiError::invalid(field, "is required")
            } else {
                ApiError::invalid(field, format!("must look like {collection}/{{id}}"))
            }
        })?;
    Ok(id)
}

/// An update request after edge validation: new values, the fields to take from them, the
/// etag the caller last read, and why.
pub struct Update<T> {
    pub changes: T,
    pub paths: Vec<String>,
    pub etag: String,
    pub reason: String,
}

/// Decodes a stored protobuf document.
pub fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, ApiError> {
    M::decode(bytes).map_err(ApiError::internal)
}
