//! Signing in (with throttling) and the administration of staff accounts.

use super::{SignedIn, password, random_token};
use crate::state::Gateway;
use crate::store::{Account, NewAccount, Store};
use hcrm_kit::ApiError;
use hcrm_kit::auth::{Principal, Role};
use hcrm_kit::validate::Violations;

/// A new session: the cookie value (shown to the browser once) and its account.
pub struct Opened {
    pub cookie_value: String,
    pub account: Account,
}

const WRONG: &str = "wrong username or password";

/// Checks a username and password and opens a session.
///
/// Throttling: each attempt is recorded before its password is checked, under the account, the
/// account from this address and the address; more than `login_max_failures` for the account from
/// one address, or four times as many for the account or for the address, within the window is
/// RESOURCE_EXHAUSTED without checking the password. So one address gets a few guesses per
/// account, and locking an account out takes many addresses. A wrong username, a wrong password
/// and a disabled account are the same UNAUTHENTICATED, in the same time (unknown names are checked
/// against a decoy hash). Password checks run a few at a time (argon2id takes 19 MiB each): a
/// burst waits or is turned away, it never exhausts memory.
pub async fn sign_in(gw: &Gateway, username: &str, password_text: &str, client: &str) -> Result<Opened, ApiError> {
    let username = username.trim().to_lowercase();
    // Names no account can have (and absurd passwords) cost nothing and are stored nowhere.
    if !is_username(&username) || password_text.len() > 4 * password::MAX_LEN {
        return Err(ApiError::Unauthenticated(WRONG.into()));
    }
    let now = gw.store.now();
    let since = now - gw.cfg.login_window_minutes * 60_000_000;
    let max = gw.cfg.login_max_failures;
    let keys = [
        format!("user:{username}@{client}"),
        format!("user:{username}"),
        format!("ip:{client}"),
    ];
    let attempt = hcrm_kit::new_id();
    gw.store.begin_attempt(&attempt, &keys).await?;
    // This attempt is among the rows counted, hence `>`.
    for (key, limit) in keys.iter().zip([max, 4 * max, 4 * max]) {
        if gw.store.failures_since(key, since).await? > limit {
            return Err(ApiError::ResourceExhausted(format!(
                "too many failed sign-ins; try again in {} minutes",
                gw.cfg.login_window_minutes
            )));
        }
    }
    let found = gw.store.account(&username).await?;
    let (phc, account) = match &found {
        Some((account, phc)) => (phc.clone(), Some(account.clone())),
        None => (password::decoy().to_string(), None),
    };
    let candidate = password_text.to_string();
    let matches = gw.checking_password(move || password::verify(&phc, &candidate)).await?;
    match account {
        Some(account) if matches && !account.disabled => {
            let cookie_value = random_token();
            let expires = super::expiry(gw, now, now);
            let clear = [keys[0].clone(), keys[1].clone()];
            gw.store
                .open_session(
                    &super::id_hash(&cookie_value),
                    &account,
                    &random_token(),
                    expires,
                    client,
                    &attempt,
                    &clear,
                )
                .await?;
            Ok(Opened { cookie_value, account })
        }
        _ => {
            let known = found.as_ref().map(|(a, _)| a.username.as_str());
            gw.store.audit_failed_sign_in(known, client).await?;
            Err(ApiError::Unauthenticated(WRONG.into()))
        }
    }
}

fn is_username(username: &str) -> bool {
    (2..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Ends the session.
pub async fn sign_out(gw: &Gateway, who: &SignedIn) -> Result<(), ApiError> {
    gw.store.close_session(&who.id_hash, &who.account).await
}

/// What an administrator fills in for a new account.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountInput {
    pub username: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub department: String,
    pub password: String,
}

fn check_roles(v: &mut Violations, roles: &[String], department: &str) -> Vec<Role> {
    let mut parsed = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        match role.parse::<Role>() {
            Ok(r) if !parsed.contains(&r) => parsed.push(r),
            Ok(_) => v.add(format!("roles[{i}]"), "is listed twice"),
            Err(e) => v.add(format!("roles[{i}]"), e),
        }
    }
    if roles.is_empty() {
        v.add("roles", "at least one role is required");
    }
    if parsed.iter().any(|r| r.is_department_scoped()) && department.trim().is_empty() {
        v.add("department", "clinicians and department heads need a department");
    }
    parsed
}

fn check_username(v: &mut Violations, username: &str) {
    if !is_username(username) {
        v.add(
            "username",
            "2–64 characters: lowercase letters, digits, '.', '_' or '-'",
        );
    }
}

/// Creates an account (admins only).
pub async fn create(store: &Store, by: &Principal, request_id: &str, input: AccountInput) -> Result<Account, ApiError> {
    require_admin(by)?;
    let mut v = Violations::new();
    let username = input.username.trim().to_lowercase();
    check_username(&mut v, &username);
    v.text("displayName", &input.display_name, true, 100);
    v.text("department", &input.department, false, 64);
    let roles = check_roles(&mut v, &input.roles, &input.department);
    if let Some(problem) = password::weakness(&input.password, &username) {
        v.add("password", problem);
    }
    v.finish()?;
    let password_text = input.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&password_text))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let department = Some(input.department.trim().to_string()).filter(|d| !d.is_empty());
    store
        .create_account(
            by,
            request_id,
            NewAccount {
                username,
                display_name: input.display_name.trim().to_string(),
                password_hash,
                roles,
                department,
            },
        )
        .await
}

/// What an administrator may change on an account.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountChange {
    pub display_name: String,
    pub roles: Vec<String>,
    pub department: String,
    pub disabled: bool,
    /// The version read; a stale one is ABORTED.
    pub version: i64,
}

/// Changes an account (admins only). An administrator cannot disable or demote themselves, so
/// the last way in is not locked by accident.
pub async fn update(
    store: &Store,
    by: &Principal,
    request_id: &str,
    username: &str,
    change: AccountChange,
) -> Result<Account, ApiError> {
    require_admin(by)?;
    let (current, _) = store
        .account(username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("accounts/{username}")))?;
    let mut v = Violations::new();
    v.text("displayName", &change.display_name, true, 100);
    v.text("department", &change.department, false, 64);
    let roles = check_roles(&mut v, &change.roles, &change.department);
    if change.version < 1 {
        v.add("version", "the version read is required");
    }
    v.finish()?;
    if by.subject == current.username && (change.disabled || !roles.contains(&Role::Admin)) {
        return Err(ApiError::FailedPrecondition(
            "administrators cannot disable or demote their own account".into(),
        ));
    }
    let changed = Account {
        display_name: change.display_name.trim().to_string(),
        roles,
        department: Some(change.department.trim().to_string()).filter(|d| !d.is_empty()),
        disabled: change.disabled,
        version: change.version,
        ..current
    };
    store.update_account(by, request_id, &changed).await
}

/// Sets a new password for an account (admins for anyone; everyone for themselves, with the
/// current password). Ends the account's sessions.
pub async fn set_password(
    store: &Store,
    by: &Principal,
    request_id: &str,
    username: &str,
    current_password: Option<&str>,
    new_password: &str,
) -> Result<(), ApiError> {
    // Who may ask is settled before anything about the account is revealed.
    if by.subject != username {
        require_admin(by)?;
    }
    let (account, phc) = store
        .account(username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("accounts/{username}")))?;
    if by.subject == account.username {
        let current = current_password.unwrap_or("").to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&phc, &current))
            .await
            .map_err(ApiError::internal)?;
        if !ok {
            return Err(ApiError::invalid("currentPassword", "does not match"));
        }
    }
    if let Some(problem) = password::weakness(new_password, username) {
        return Err(ApiError::invalid("password", problem));
    }
    let text = new_password.to_string();
    let hash = tokio::task::spawn_blocking(move || password::hash(&text))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    store.set_password(by, request_id, username, &hash).await
}

fn require_admin(by: &Principal) -> Result<(), ApiError> {
    if by.roles.contains(&Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied("only administrators manage accounts".into()))
    }
}
