//! Reading and verifying the audit chain, and recording denied attempts.

use super::Store;
use super::ledger::{self, AuditEntry, AuditRecord, entry_hash};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value, col};
use sqlx::any::AnyRow;

fn to_record(r: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
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
        prev_hash: col(r, "prev_hash")?,
        hash: col(r, "hash")?,
    })
}

/// The outcome of a verification.
pub struct Verification {
    pub checked: i64,
    pub first_broken: Option<(i64, String)>,
}

const AUDIT_COLUMNS: &str = "sequence, at, actor, roles, action, resource, reason, request_id, detail, prev_hash, hash";

impl Store {
    /// Appends one audit entry in its own transaction (denied attempts).
    pub async fn audit_alone(&self, entry: AuditEntry) -> Result<(), ApiError> {
        let mut tx = self.db.begin_write().await?;
        ledger::append(&mut tx, self.backend(), hcrm_kit::time::now_micros(), &[entry], &[]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit entries matching `where_sql`, newest first, before sequence `before`.
    pub async fn list_audit(
        &self,
        where_sql: &Sql,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, ApiError> {
        let mut sql = Sql::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE "));
        sql.text.push_str(&where_sql.text);
        sql.args = where_sql.args.clone();
        if let Some(before) = before {
            sql.push(" AND sequence < ").bind(Value::Int(before));
        }
        sql.push(" ORDER BY sequence DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(to_record)
            .collect::<Result<_, _>>()
            .map_err(ApiError::from)
    }

    /// Walks the whole chain: each entry must follow its predecessor in sequence and its hash
    /// must cover the predecessor's hash and its own content; the head must match the last entry.
    pub async fn verify_audit(&self) -> Result<Verification, ApiError> {
        let mut prev_hash = String::new();
        let mut expected_seq = 1i64;
        let mut checked = 0i64;
        loop {
            let sql =
                format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE sequence >= $1 ORDER BY sequence LIMIT 2000");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(expected_seq)
                .fetch_all(&self.db.pool)
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let record = to_record(r)?;
                if record.sequence != expected_seq {
                    return Ok(Verification {
                        checked,
                        first_broken: Some((expected_seq, format!("entry {expected_seq} is missing"))),
                    });
                }
                if record.prev_hash != prev_hash || entry_hash(&prev_hash, &record) != record.hash {
                    return Ok(Verification {
                        checked,
                        first_broken: Some((
                            record.sequence,
                            format!("entry {} does not match its hash", record.sequence),
                        )),
                    });
                }
                prev_hash = record.hash;
                expected_seq += 1;
                checked += 1;
            }
        }
        let head = sqlx::query("SELECT audit_seq, audit_hash FROM ledger_head WHERE id = 1")
            .fetch_one(&self.db.pool)
            .await?;
        let head_seq: i64 = col(&head, "audit_seq")?;
        let head_hash: String = col(&head, "audit_hash")?;
        if head_seq != checked || head_hash != prev_hash {
            return Ok(Verification {
                checked,
                first_broken: Some((
                    checked + 1,
                    format!("the chain ends at {checked} but the head says {head_seq}: entries were removed"),
                )),
            });
        }
        Ok(Verification {
            checked,
            first_broken: None,
        })
    }
}
