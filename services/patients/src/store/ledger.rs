//! The audit chain and the event feed, appended in the same transaction as the change they
//! describe. One `ledger_head` row serialises appends, so sequence order equals commit order
//! (a consumer that reads `sequence > cursor` never skips a late-committing event) and each
//! audit entry's hash covers its predecessor's.

use hcrm_kit::auth::Principal;
use hcrm_kit::db::{Backend, Sql, Tx, Value, col};
use hcrm_kit::request::RequestContext;
use sha2::{Digest, Sha256};

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
    pub kind: &'static str,
    pub resource: String,
    pub payload: serde_json::Value,
}

/// A stored audit entry.
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
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over the previous hash and every field, unit-separated.
pub fn entry_hash(prev: &str, r: &AuditRecord) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &r.sequence.to_string(),
        &r.at.to_string(),
        &r.actor,
        &r.roles,
        &r.action,
        &r.resource,
        &r.reason,
        &r.request_id,
        &r.detail,
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

/// Rows per multi-row INSERT (keeps well under both backends' parameter limits).
const CHUNK: usize = 200;

/// Appends `audits` and `events` inside `tx`; call it last, just before commit, so the head row
/// is locked for as short a time as possible.
pub async fn append(
    tx: &mut Tx,
    backend: Backend,
    now: i64,
    audits: &[AuditEntry],
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    if audits.is_empty() && events.is_empty() {
        return Ok(());
    }
    let lock = match backend {
        Backend::Postgres => "SELECT audit_seq, audit_hash, event_seq FROM ledger_head WHERE id = 1 FOR UPDATE",
        Backend::Sqlite => "SELECT audit_seq, audit_hash, event_seq FROM ledger_head WHERE id = 1",
    };
    let head = sqlx::query(lock).fetch_one(&mut **tx).await?;
    let mut audit_seq: i64 = col(&head, "audit_seq")?;
    let mut hash: String = col(&head, "audit_hash")?;
    let mut event_seq: i64 = col(&head, "event_seq")?;

    for chunk in audits.chunks(CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO audit_log (sequence, at, actor, roles, action, resource, reason, request_id, detail, prev_hash, hash) VALUES ",
        );
        for (i, a) in chunk.iter().enumerate() {
            audit_seq += 1;
            let mut record = AuditRecord {
                sequence: audit_seq,
                at: now,
                actor: a.actor.clone(),
                roles: a.roles.clone(),
                action: a.action.clone(),
                resource: a.resource.clone(),
                reason: a.reason.clone(),
                request_id: a.request_id.clone(),
                detail: a.detail.to_string(),
                prev_hash: hash.clone(),
                hash: String::new(),
            };
            record.hash = entry_hash(&hash, &record);
            hash = record.hash.clone();
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(");
            for (j, value) in [
                Value::Int(record.sequence),
                Value::Int(record.at),
                Value::Text(record.actor),
                Value::Text(record.roles),
                Value::Text(record.action),
                Value::Text(record.resource),
                Value::Text(record.reason),
                Value::Text(record.request_id),
                Value::Text(record.detail),
                Value::Text(record.prev_hash),
                Value::Text(record.hash),
            ]
            .into_iter()
            .enumerate()
            {
                if j > 0 {
                    sql.push(", ");
                }
                sql.bind(value);
            }
            sql.push(")");
        }
        sql.query().execute(&mut **tx).await?;
    }

    for chunk in events.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO events (sequence, type, resource, payload, created_at) VALUES ");
        for (i, e) in chunk.iter().enumerate() {
            event_seq += 1;
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(Value::Int(event_seq))
                .push(", ")
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

    sqlx::query("UPDATE ledger_head SET audit_seq = $1, audit_hash = $2, event_seq = $3 WHERE id = 1")
        .bind(audit_seq)
        .bind(hash)
        .bind(event_seq)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
