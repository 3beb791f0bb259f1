//! Who is calling: a bearer token (integrations: forwarded untouched, the services verify it) or
//! a console session cookie (the gateway mints a short-lived token for the account on each call).
//!
//! Session cookies are `HttpOnly`, `SameSite=Strict` and (by default) `Secure`; a session ends
//! after `session_idle_minutes` without a request and at most `session_max_hours` after sign-in.
//! Every write made with a session needs its CSRF token (form field `_csrf` or header
//! `X-CSRF-Token`), and a request whose `Origin` is another site is refused.

pub mod accounts;
pub mod password;

use crate::state::Gateway;
use crate::store::{Account, Session};
use hcrm_kit::ApiError;
use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use sha2::{Digest, Sha256};

/// The session cookie's name. With `Secure`, the `__Host-` prefix makes browsers refuse the
/// cookie unless this host set it itself (no `Domain`, `Path=/`): a sibling subdomain cannot plant
/// a session of its own choosing on the console.
pub fn session_cookie_name(gw: &Gateway) -> &'static str {
    if gw.cfg.secure_cookies {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

pub const SECURE_SESSION_COOKIE: &str = "__Host-hcrm_session";
pub const SESSION_COOKIE: &str = "hcrm_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session's inactivity deadline is written back at most this often (in microseconds), so a
/// busy console does not write on every click.
const TOUCH_EVERY: i64 = 60_000_000;
const MINUTE: i64 = 60_000_000;

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: Account,
    pub session: Session,
    pub id_hash: String,
}

/// The credentials of an API call.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `Authorization: Bearer …`, passed on as it is.
    Bearer(String),
    Session(Box<SignedIn>),
}

/// The value of a cookie in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// SHA-256 of a session cookie: what the database keeps.
pub fn id_hash(cookie_value: &str) -> String {
    hex_of(&Sha256::digest(cookie_value.as_bytes()))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random value for a session id or a CSRF token (256 bits, URL-safe).
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares in time independent of where the inputs differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in staff member of the request's session cookie, if the session is alive and the
/// account enabled; moves the inactivity deadline.
pub async fn signed_in(gw: &Gateway, headers: &HeaderMap) -> Result<Option<SignedIn>, ApiError> {
    let Some(value) = cookie(headers, session_cookie_name(gw)).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let hash = id_hash(value);
    let Some(session) = gw.store.session(&hash).await? else {
        return Ok(None);
    };
    let Some((account, _)) = gw.store.account(&session.username).await? else {
        return Ok(None);
    };
    if account.disabled {
        return Ok(None);
    }
    let now = gw.store.now();
    // Written back at most every minute, and more often for short idle limits, so a working
    // member is never signed out early by more than a tenth of the limit.
    let touch_every = TOUCH_EVERY.min(gw.cfg.session_idle_minutes * MINUTE / 10);
    if now - session.last_seen >= touch_every {
        let expires = expiry(gw, session.created_at, now);
        gw.store.touch_session(&hash, expires).await?;
    }
    Ok(Some(SignedIn {
        account,
        session,
        id_hash: hash,
    }))
}

/// When a session last used at `now` ends.
pub fn expiry(gw: &Gateway, created_at: i64, now: i64) -> i64 {
    let idle = now + gw.cfg.session_idle_minutes * MINUTE;
    let max = created_at + gw.cfg.session_max_hours * 60 * MINUTE;
    idle.min(max)
}

/// The credentials of an API call, or UNAUTHENTICATED. A bearer token wins over a cookie.
pub async fn credentials(gw: &Gateway, headers: &HeaderMap) -> Result<Credentials, ApiError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::Unauthenticated("authorization is not text".into()))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthenticated("authorization must be `Bearer <token>`".into()))?;
        return Ok(Credentials::Bearer(token.trim().to_string()));
    }
    match signed_in(gw, headers).await? {
        Some(who) => Ok(Credentials::Session(Box::new(who))),
        None => Err(ApiError::Unauthenticated(
            "sign in to the console or send `Authorization: Bearer <token>`".into(),
        )),
    }
}

/// Refuses a write made with a session unless it carries the session's CSRF token.
pub fn check_csrf(who: &SignedIn, provided: Option<&str>) -> Result<(), ApiError> {
    match provided {
        Some(token) if same(token, &who.session.csrf) => Ok(()),
        Some(_) => Err(ApiError::PermissionDenied(
            "the CSRF token does not match this session".into(),
        )),
        None => Err(ApiError::PermissionDenied(
            "a write with a session needs the CSRF token (header X-CSRF-Token or form field _csrf)".into(),
        )),
    }
}

/// Refuses a request sent by a page of another site: its `Origin` must be this host or one of
/// the configured CORS origins. Requests without `Origin` (curl, integrations) pass.
pub fn check_origin(gw: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let own = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|rest| rest == host);
    if own || gw.cfg.cors_origins.iter().any(|o| o == origin) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(format!(
            "requests from {origin} are not accepted"
        )))
    }
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(gw: &Gateway, value: &str) -> String {
    let secure = if gw.cfg.secure_cookies { "; Secure" } else { "" };
    let max_age = gw.cfg.session_max_hours * 3600;
    let name = session_cookie_name(gw);
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(gw: &Gateway) -> String {
    let secure = if gw.cfg.secure_cookies { "; Secure" } else { "" };
    let name = session_cookie_name(gw);
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; hcrm_session=abc; hcrm_lang=en".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "hcrm_lang"), Some("en"));
        assert_eq!(cookie(&headers, "nope"), None);
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..42]));
        assert_eq!(id_hash("x").len(), 64);
    }
}
