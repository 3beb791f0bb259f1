//! The audit log and the event feed every service keeps in its own database.
//!
//! Writers append audit entries and events in the same transaction as the change they describe
//! ([`append`]): plain inserts, no shared lock, so writers run in parallel. A sealer
//! ([`seal`], run by a background job and before every read of the log or the feed) then, under
//! one head-row lock, gives the rows committed so far their feed positions — strictly above
//! every position handed out before, so a consumer reading `sequence > cursor` never skips a
//! late-committing event — and closes them into a hash-chained block.
//!
//! Tamper evidence: each audit row stores the SHA-256 of its own content; each block stores the
//! SHA-256 of the previous block's hash and its rows' hashes in order. [`verify`] recomputes
//! both, so an edited, deleted or inserted row is found.
//!
//! Tables (each service's migrations create them): `audit_log`, `audit_blocks`, `events`,
//! `ledger_head`; see `services/patients/migrations` for the DDL to copy.

use crate::auth::Principal;
use crate::db::{Backend, Db, Sql, Tx, Value, col};
use crate::request::RequestContext;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;

/// An audit entry about to be written.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: String,
    pub roles: String,
    pub action: String,
    pub resource: String,
    pub reason: String,
    pub request_id: String,
    /// JSON object: field names and ids, never protected values.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    pub fn new(ctx: &RequestContext, action: &str, resource: &str, reason: &str, detail: serde_json::Value) -> Self {
        Self::by(&ctx.principal, &ctx.request_id, action, resource, reason, detail)
    }

    pub fn by(
        principal: &Principal,
        request_id: &str,
        action: &str,
        resource: &str,
        reason: &str,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            actor: principal.subject.clone(),
            roles: principal.roles_text(),
            action: action.to_string(),
            resource: resource.to_string(),
            reason: reason.to_string(),
            request_id: request_id.to_string(),
            detail,
        }
    }
}

/// A domain event about to be published.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Dotted type, e.g. `patient.created`.
    pub kind: &'static str,
    pub resource: String,
    pub payload: serde_json::Value,
}

/// A sealed audit entry as stored.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub sequence: i64,
    pub at: i64,
    pub actor: String,
    pub roles: String,
    pub action: String,
    pub resource: String,
    pub reason: String,
    pub request_id: String,
    pub detail: String,
    /// SHA-256 of the fields above but the sequence.
    pub hash: String,
}

/// A published event as stored.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub sequence: i64,
    pub kind: String,
    pub resource: String,
    pub payload: String,
    pub at: i64,
}

/// The hash of an audit entry's content: its time, then actor, roles, action, resource,
/// reason, request id and detail.
pub fn content_hash(at: i64, fields: [&str; 7]) -> String {
    let mut h = Sha256::new();
    let at = at.to_string();
    for part in std::iter::once(at.as_str()).chain(fields) {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

fn block_hash(prev: &str, first: i64, last: i64, row_hashes: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(format!("\u{1f}{first}\u{1f}{last}").as_bytes());
    for r in row_hashes {
        h.update([0x1f]);
        h.update(r.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Rows per multi-row INSERT (keeps well under both backends' parameter limits).
const CHUNK: usize = 40;
/// Rows sealed per block at most.
const SEAL_BATCH: i64 = 5_000;

/// Appends `audits` and `events` inside `tx`. They are invisible to readers of the log and the
/// feed until sealed; call [`seal`] (or wake the sealer job) after commit.
pub async fn append(tx: &mut Tx, now: i64, audits: &[AuditEntry], events: &[NewEvent]) -> Result<(), sqlx::Error> {
    for chunk in audits.chunks(CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO audit_log (at, actor, roles, action, resource, reason, request_id, detail, hash) VALUES ",
        );
        for (i, a) in chunk.iter().enumerate() {
            let detail = a.detail.to_string();
            let hash = content_hash(
                now,
                [
                    &a.actor,
                    &a.roles,
                    &a.action,
                    &a.resource,
                    &a.reason,
                    &a.request_id,
                    &detail,
                ],
            );
            sql.push(if i > 0 { ", (" } else { "(" });
            let values = [
                Value::Int(now),
                Value::Text(a.actor.clone()),
                Value::Text(a.roles.clone()),
                Value::Text(a.action.clone()),
                Value::Text(a.resource.clone()),
                Value::Text(a.reason.clone()),
                Value::Text(a.request_id.clone()),
                Value::Text(detail),
                Value::Text(hash),
            ];
            for (j, v) in values.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.bind(v);
            }
            sql.push(")");
        }
        sql.query().execute(&mut **tx).await?;
    }
    for chunk in events.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO events (type, resource, payload, created_at) VALUES ");
        for (i, e) in chunk.iter().enumerate() {
            sql.push(if i > 0 { ", (" } else { "(" })
                .bind(Value::Text(e.kind.to_string()))
                .push(", ")
                .bind(Value::Text(e.resource.clone()))
                .push(", ")
                .bind(Value::Text(e.payload.to_string()))
                .push(", ")
                .bind(Value::Int(now))
                .push(")");
        }
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Appends in a transaction of its own (e.g. a denied call, which changes nothing else) and seals.
pub async fn append_alone(db: &Db, now: i64, audits: &[AuditEntry]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    append(&mut tx, now, audits, &[]).await?;
    tx.commit().await?;
    Ok(())
}

/// What one seal did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    pub audits: i64,
    pub events: i64,
}

/// Gives every committed, unsealed row its position and closes audit rows into a block. Safe to
/// run from several processes at once (the head row serialises them). Returns what it sealed.
pub async fn seal(db: &Db) -> Result<Sealed, sqlx::Error> {
    // Cheap check first: most calls find nothing and should not take the write lock.
    let pending = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM audit_log WHERE sequence IS NULL LIMIT 1) a) + \
         (SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE sequence IS NULL LIMIT 1) e) AS n",
    )
    .fetch_one(&db.pool)
    .await?;
    if col::<i64>(&pending, "n")? == 0 {
        return Ok(Sealed::default());
    }
    let mut tx = db.begin_write().await?;
    let lock = match db.backend {
        Backend::Postgres => "SELECT audit_seq, audit_hash, event_seq FROM ledger_head WHERE id = 1 FOR UPDATE",
        Backend::Sqlite => "SELECT audit_seq, audit_hash, event_seq FROM ledger_head WHERE id = 1",
    };
    let head = sqlx::query(lock).fetch_one(&mut *tx).await?;
    let mut audit_seq: i64 = col(&head, "audit_seq")?;
    let mut audit_hash: String = col(&head, "audit_hash")?;
    let mut event_seq: i64 = col(&head, "event_seq")?;
    let mut sealed = Sealed::default();

    // Positions are `offset + id` over the id range seen now: above every earlier position, in
    // id order, unique. A row that commits later inside the range was not seen and waits for
    // the next seal (`id >= first` keeps it out of this one's numbering).
    if let Some((first, last)) = id_range(&mut tx, "audit_log").await? {
        let offset = audit_seq + 1 - first;
        let done =
            sqlx::query("UPDATE audit_log SET sequence = id + $1 WHERE sequence IS NULL AND id >= $2 AND id <= $3")
                .bind(offset)
                .bind(first)
                .bind(last)
                .execute(&mut *tx)
                .await?;
        let rows = sqlx::query("SELECT sequence, hash FROM audit_log WHERE sequence > $1 ORDER BY sequence")
            .bind(audit_seq)
            .fetch_all(&mut *tx)
            .await?;
        let hashes: Vec<String> = rows
            .iter()
            .map(|r| col::<String>(r, "hash"))
            .collect::<Result<_, _>>()?;
        let first_seq = audit_seq + 1;
        let last_seq = match rows.last() {
            Some(r) => col::<i64>(r, "sequence")?,
            None => audit_seq,
        };
        if !hashes.is_empty() {
            audit_hash = block_hash(&audit_hash, first_seq, last_seq, &hashes);
            sqlx::query(
                "INSERT INTO audit_blocks (last_sequence, first_sequence, entries, hash) VALUES ($1, $2, $3, $4)",
            )
            .bind(last_seq)
            .bind(first_seq)
            .bind(hashes.len() as i64)
            .bind(&audit_hash)
            .execute(&mut *tx)
            .await?;
            audit_seq = last_seq;
        }
        sealed.audits = done.rows_affected() as i64;
    }
    if let Some((first, last)) = id_range(&mut tx, "events").await? {
        let offset = event_seq + 1 - first;
        let done = sqlx::query("UPDATE events SET sequence = id + $1 WHERE sequence IS NULL AND id >= $2 AND id <= $3")
            .bind(offset)
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        event_seq = last + offset;
        sealed.events = done.rows_affected() as i64;
    }
    sqlx::query("UPDATE ledger_head SET audit_seq = $1, audit_hash = $2, event_seq = $3 WHERE id = 1")
        .bind(audit_seq)
        .bind(audit_hash)
        .bind(event_seq)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(sealed)
}

/// The id range of up to [`SEAL_BATCH`] unsealed rows of `table`.
async fn id_range(tx: &mut Tx, table: &'static str) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT MIN(id) AS first, MAX(id) AS last FROM (SELECT id FROM {table} WHERE sequence IS NULL ORDER BY id LIMIT {SEAL_BATCH}) t"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut **tx).await?;
    let first: Option<i64> = col(&row, "first")?;
    let last: Option<i64> = col(&row, "last")?;
    Ok(first.zip(last))
}

/// Seals until nothing is left (readers call this so they see everything committed before).
pub async fn seal_all(db: &Db) -> Result<(), sqlx::Error> {
    while seal(db).await? != Sealed::default() {}
    Ok(())
}

fn to_audit(r: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        sequence: col(r, "sequence")?,
        at: col(r, "at")?,
        actor: col(r, "actor")?,
        roles: col(r, "roles")?,
        action: col(r, "action")?,
        resource: col(r, "resource")?,
        reason: col(r, "reason")?,
        request_id: col(r, "request_id")?,
        detail: col(r, "detail")?,
        hash: col(r, "hash")?,
    })
}

const AUDIT_COLUMNS: &str = "sequence, at, actor, roles, action, resource, reason, request_id, detail, hash";

/// Sealed audit entries matching `where_sql` (over audit_log columns), newest first, before
/// sequence `before`.
pub async fn list_audit(
    db: &Db,
    where_sql: &Sql,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let mut sql = Sql::new(format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE sequence IS NOT NULL AND "
    ));
    sql.text.push_str(&where_sql.text);
    sql.args = where_sql.args.clone();
    if let Some(before) = before {
        sql.push(" AND sequence < ").bind(Value::Int(before));
    }
    sql.push(" ORDER BY sequence DESC LIMIT ")
        .bind(Value::Int(limit as i64));
    let rows = sql.query().fetch_all(&db.pool).await?;
    rows.iter().map(to_audit).collect()
}

/// Sealed events after `after`, oldest first, at most `limit`, optionally of the given types.
pub async fn events_after(
    db: &Db,
    after: i64,
    types: &[String],
    limit: usize,
) -> Result<Vec<EventRecord>, sqlx::Error> {
    let mut sql = Sql::new("SELECT sequence, type, resource, payload, created_at FROM events WHERE sequence > ");
    sql.bind(Value::Int(after));
    if !types.is_empty() {
        sql.push(" AND type IN (");
        for (i, t) in types.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Value::Text(t.clone()));
        }
        sql.push(")");
    }
    sql.push(" ORDER BY sequence LIMIT ").bind(Value::Int(limit as i64));
    let rows = sql.query().fetch_all(&db.pool).await?;
    rows.iter()
        .map(|r| {
            Ok(EventRecord {
                sequence: col(r, "sequence")?,
                kind: col(r, "type")?,
                resource: col(r, "resource")?,
                payload: col(r, "payload")?,
                at: col(r, "created_at")?,
            })
        })
        .collect()
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries checked.
    pub checked: i64,
    /// The first sequence found wrong, and what is wrong with it.
    pub first_broken: Option<(i64, String)>,
}

/// Recomputes every sealed entry's content hash and every block's chained hash.
pub async fn verify(db: &Db) -> Result<Verification, sqlx::Error> {
    seal_all(db).await?;
    let blocks =
        sqlx::query("SELECT first_sequence, last_sequence, entries, hash FROM audit_blocks ORDER BY last_sequence")
            .fetch_all(&db.pool)
            .await?;
    let mut prev = String::new();
    let mut checked = 0i64;
    let mut expected_first = 1i64;
    let broken = |seq: i64, why: String, checked: i64| {
        Ok(Verification {
            checked,
            first_broken: Some((seq, why)),
        })
    };
    for block in &blocks {
        let first: i64 = col(block, "first_sequence")?;
        let last: i64 = col(block, "last_sequence")?;
        let entries: i64 = col(block, "entries")?;
        let stored: String = col(block, "hash")?;
        if first != expected_first {
            return broken(
                expected_first,
                format!("a block starting at {expected_first} is missing"),
                checked,
            );
        }
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE sequence >= $1 AND sequence <= $2 ORDER BY sequence");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(first)
            .bind(last)
            .fetch_all(&db.pool)
            .await?;
        let mut hashes = Vec::with_capacity(rows.len());
        for r in &rows {
            let a = to_audit(r)?;
            let recomputed = content_hash(
                a.at,
                [
                    &a.actor,
                    &a.roles,
                    &a.action,
                    &a.resource,
                    &a.reason,
                    &a.request_id,
                    &a.detail,
                ],
            );
            if recomputed != a.hash {
                return broken(
                    a.sequence,
                    format!("entry {} was changed after it was written", a.sequence),
                    checked,
                );
            }
            hashes.push(a.hash);
            checked += 1;
        }
        if hashes.len() as i64 != entries || block_hash(&prev, first, last, &hashes) != stored {
            return broken(
                first,
                format!("entries {first}–{last} were deleted, added or reordered"),
                checked,
            );
        }
        prev = stored;
        expected_first = last + 1;
    }
    let head = sqlx::query("SELECT audit_seq, audit_hash FROM ledger_head WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    let head_seq: i64 = col(&head, "audit_seq")?;
    let head_hash: String = col(&head, "audit_hash")?;
    if head_seq != expected_first - 1 || head_hash != prev {
        return broken(expected_first, "the last blocks were removed".to_string(), checked);
    }
    let stray: i64 = col(
        &sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE sequence > $1")
            .bind(head_seq)
            .fetch_one(&db.pool)
            .await?,
        "n",
    )?;
    if stray > 0 {
        return broken(
            head_seq + 1,
            "entries exist beyond the sealed chain".to_string(),
            checked,
        );
    }
    Ok(Verification {
        checked,
        first_broken: None,
    })
}
