//! The gateway's database: staff accounts, sessions, failed sign-ins. The only place with SQL.
//! Sign-ins, sign-outs and every account change are audited in the same transaction.

use hcrm_kit::ApiError;
use hcrm_kit::auth::{Principal, Role};
use hcrm_kit::clock::Clock;
use hcrm_kit::db::{Db, Sql, Value, col};
use hcrm_kit::feed::Ledger;
use hcrm_kit::ledger::{self, AuditEntry};
use hcrm_kit::server::Job;
use sqlx::any::AnyRow;
use std::time::Duration;

/// A staff account as the console shows it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub department: Option<String>,
    pub disabled: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Account {
    /// The identity forwarded to the services for this account.
    pub fn principal(&self) -> Principal {
        Principal {
            subject: self.username.clone(),
            roles: self.roles.clone(),
            department: self.department.clone(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }
}

/// What creating an account needs; checked by `auth::accounts` before it gets here.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub department: Option<String>,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

#[derive(Clone)]
pub struct Store {
    pub db: Db,
    pub ledger: Ledger,
    clock: Clock,
}

const ACCOUNT_COLUMNS: &str =
    "username, display_name, password_hash, roles, department, disabled, version, created_at, updated_at";

fn account_of(row: &AnyRow) -> Result<(Account, String), ApiError> {
    let roles: String = col(row, "roles")?;
    let roles = roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored role: {e}")))?;
    let department: String = col(row, "department")?;
    let disabled: i64 = col(row, "disabled")?;
    Ok((
        Account {
            username: col(row, "username")?,
            display_name: col(row, "display_name")?,
            roles,
            department: (!department.is_empty()).then_some(department),
            disabled: disabled != 0,
            version: col(row, "version")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
        },
        col(row, "password_hash")?,
    ))
}

fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

impl Store {
    pub fn new(db: Db, clock: Clock) -> Self {
        Self {
            ledger: Ledger::new(db.clone()),
            db,
            clock,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn ledger_sealer(&self) -> Job {
        self.ledger.sealer_job()
    }

    /// Removes expired sessions and failures older than a day, every ten minutes.
    pub fn cleanup_job(&self) -> Job {
        let store = self.clone();
        hcrm_kit::server::periodic("gateway-cleanup", Duration::from_secs(600), move || {
            let store = store.clone();
            async move { store.cleanup().await }
        })
    }

    async fn cleanup(&self) -> Result<u64, ApiError> {
        let now = self.now();
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        let failures = sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(now - 24 * 3_600_000_000)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        Ok(sessions + failures)
    }

    pub async fn count_accounts(&self) -> Result<i64, ApiError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(col(&row, "n")?)
    }

    /// The account and its password hash.
    pub async fn account(&self, username: &str) -> Result<Option<(Account, String)>, ApiError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(username)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(account_of).transpose()
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>, ApiError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.db.pool).await?;
        rows.iter().map(|r| account_of(r).map(|(a, _)| a)).collect()
    }

    /// Creates an account; ALREADY_EXISTS when the username is taken.
    pub async fn create_account(&self, by: &Principal, request_id: &str, new: NewAccount) -> Result<Account, ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT 1 AS x FROM accounts WHERE username = $1")
            .bind(new.username.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if taken {
            return Err(ApiError::AlreadyExists {
                what: "account".into(),
                existing: format!("accounts/{}", new.username),
            });
        }
        let mut sql = Sql::new(format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ("));
        sql.bind(Value::Text(new.username.clone()))
            .push(", ")
            .bind(Value::Text(new.display_name.clone()))
            .push(", ")
            .bind(Value::Text(new.password_hash))
            .push(", ")
            .bind(Value::Text(roles_text(&new.roles)))
            .push(", ")
            .bind(Value::Text(new.department.clone().unwrap_or_default()))
            .push(", 0, 1, ")
            .bind(Value::Int(now))
            .push(", ")
            .bind(Value::Int(now))
            .push(")");
        sql.query().execute(&mut *tx).await?;
        let audit = AuditEntry::by(
            by,
            request_id,
            "account.create",
            &format!("accounts/{}", new.username),
            "",
            serde_json::json!({ "roles": roles_text(&new.roles), "department": new.department }),
        );
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.ledger.changed();
        Ok(Account {
            username: new.username,
            display_name: new.display_name,
            roles: new.roles,
            department: new.department,
            disabled: false,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// Changes an account's name, roles, department and whether it is disabled, if it is still at
    /// `version` (ABORTED otherwise). Disabling ends its sessions.
    pub async fn update_account(
        &self,
        by: &Principal,
        request_id: &str,
        changed: &Account,
    ) -> Result<Account, ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE accounts SET display_name = $1, roles = $2, department = $3, disabled = $4, \
             version = version + 1, updated_at = $5 WHERE username = $6 AND version = $7",
        )
        .bind(changed.display_name.as_str())
        .bind(roles_text(&changed.roles))
        .bind(changed.department.clone().unwrap_or_default())
        .bind(i64::from(changed.disabled))
        .bind(now)
        .bind(changed.username.as_str())
        .bind(changed.version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            let exists = sqlx::query("SELECT 1 AS x FROM accounts WHERE username = $1")
                .bind(changed.username.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(if exists {
                ApiError::Aborted("the account changed since it was read; reload and try again".into())
            } else {
                ApiError::not_found(format!("accounts/{}", changed.username))
            });
        }
        if changed.disabled {
            sqlx::query("DELETE FROM sessions WHERE username = $1")
                .bind(changed.username.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let audit = AuditEntry::by(
            by,
            request_id,
            "account.update",
            &format!("accounts/{}", changed.username),
            "",
            serde_json::json!({
                "roles": roles_text(&changed.roles),
                "department": changed.department,
                "disabled": changed.disabled,
            }),
        );
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.ledger.changed();
        Ok(Account {
            version: changed.version + 1,
            updated_at: now,
            ..changed.clone()
        })
    }

    /// Replaces a password and ends the account's sessions.
    pub async fn set_password(
        &self,
        by: &Principal,
        request_id: &str,
        username: &str,
        hash: &str,
    ) -> Result<(), ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE accounts SET password_hash = $1, version = version + 1, updated_at = $2 WHERE username = $3",
        )
        .bind(hash)
        .bind(now)
        .bind(username)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(ApiError::not_found(format!("accounts/{username}")));
        }
        sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        let audit = AuditEntry::by(
            by,
            request_id,
            "account.set_password",
            &format!("accounts/{username}"),
            "",
            serde_json::json!({}),
        );
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.ledger.changed();
        Ok(())
    }

    /// Failed sign-ins per key since `since`.
    pub async fn failures_since(&self, key: &str, since: i64) -> Result<i64, ApiError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM login_failures WHERE key = $1 AND at >= $2")
            .bind(key)
            .bind(since)
            .fetch_one(&self.db.pool)
            .await?;
        Ok(col(&row, "n")?)
    }

    /// Records a sign-in attempt under each key before its password is checked; it counts as a
    /// failure unless [`Store::open_session`] removes it.
    pub async fn begin_attempt(&self, attempt: &str, keys: &[String]) -> Result<(), ApiError> {
        let now = self.now();
        let mut sql = Sql::new("INSERT INTO login_failures (key, attempt, at) VALUES ");
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(Value::Text(key.clone()))
                .push(", ")
                .bind(Value::Text(attempt.to_string()))
                .push(", ")
                .bind(Value::Int(now))
                .push(")");
        }
        sql.query().execute(&self.db.pool).await?;
        Ok(())
    }

    /// Audits a failed sign-in. The account is named only when it exists: what someone typed
    /// into the username field (sometimes their password) never reaches the permanent log.
    pub async fn audit_failed_sign_in(&self, account: Option<&str>, client: &str) -> Result<(), ApiError> {
        let now = self.now();
        let audit = AuditEntry {
            actor: account.unwrap_or("unknown").to_string(),
            roles: String::new(),
            action: "session.sign_in_failed".into(),
            resource: account.map(|a| format!("accounts/{a}")).unwrap_or_default(),
            reason: String::new(),
            request_id: String::new(),
            detail: serde_json::json!({ "client": client }),
        };
        ledger::append_alone(&self.db, now, &[audit]).await?;
        self.ledger.changed();
        Ok(())
    }

    /// Opens a session: removes the attempt and the account's earlier failures (its own and from
    /// this address: `clear`), and audits the sign-in.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_session(
        &self,
        id_hash: &str,
        account: &Account,
        csrf: &str,
        expires_at: i64,
        client: &str,
        attempt: &str,
        clear: &[String],
    ) -> Result<(), ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, username, csrf, created_at, last_seen, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(account.username.as_str())
        .bind(csrf)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM login_failures WHERE attempt = $1")
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        for key in clear {
            sqlx::query("DELETE FROM login_failures WHERE key = $1")
                .bind(key.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let audit = AuditEntry::by(
            &account.principal(),
            "",
            "session.sign_in",
            &format!("accounts/{}", account.username),
            "",
            serde_json::json!({ "client": client }),
        );
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.ledger.changed();
        Ok(())
    }

    /// A session that has not expired.
    pub async fn session(&self, id_hash: &str) -> Result<Option<Session>, ApiError> {
        let row = sqlx::query(
            "SELECT username, csrf, created_at, last_seen, expires_at FROM sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(self.now())
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|row| -> Result<Session, ApiError> {
            Ok(Session {
                username: col(&row, "username")?,
                csrf: col(&row, "csrf")?,
                created_at: col(&row, "created_at")?,
                last_seen: col(&row, "last_seen")?,
                expires_at: col(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    /// Moves a session's inactivity deadline.
    pub async fn touch_session(&self, id_hash: &str, expires_at: i64) -> Result<(), ApiError> {
        sqlx::query("UPDATE sessions SET last_seen = $1, expires_at = $2 WHERE id_hash = $3")
            .bind(self.now())
            .bind(expires_at)
            .bind(id_hash)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Ends a session (sign-out), audited.
    pub async fn close_session(&self, id_hash: &str, account: &Account) -> Result<(), ApiError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *tx)
            .await?;
        let audit = AuditEntry::by(
            &account.principal(),
            "",
            "session.sign_out",
            &format!("accounts/{}", account.username),
            "",
            serde_json::json!({}),
        );
        ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.ledger.changed();
        Ok(())
    }
}
