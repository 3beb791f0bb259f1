//! Password hashing: argon2id with the crate's default parameters (19 MiB, 2 passes), PHC
//! strings in the database. Hashing takes tens of milliseconds on purpose, so callers run it on
//! the blocking pool.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest and longest password accepted.
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `password` matches `phc`; a malformed stored hash matches nothing.
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A hash no password matches, verified for unknown usernames so that a wrong username takes
/// as long as a wrong password (no account enumeration by timing).
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&uuid::Uuid::now_v7().to_string()).unwrap_or_default())
}

/// What is wrong with a new password, if anything.
pub fn weakness(password: &str, username: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Some(format!("must be at least {MIN_LEN} characters"));
    }
    if chars > MAX_LEN {
        return Some(format!("must be at most {MAX_LEN} characters"));
    }
    if password.eq_ignore_ascii_case(username) {
        return Some("must not be the username".into());
    }
    let distinct: std::collections::BTreeSet<char> = password.chars().collect();
    if distinct.len() < 4 {
        return Some("must use at least 4 different characters".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify(&phc, "correct horse battery"));
        assert!(!verify(&phc, "correct horse batterY"));
        assert!(!verify("not a hash", "correct horse battery"));
        assert!(!verify(decoy(), ""));
    }

    #[test]
    fn weak_passwords_are_named() {
        assert!(weakness("short", "li").is_some());
        assert!(weakness("aaaaaaaaaaaa", "li").is_some());
        assert!(weakness("zhang.wei.01", "ZHANG.WEI.01").is_some());
        assert_eq!(weakness("护士站-2026-冬季", "li"), None);
    }
}
