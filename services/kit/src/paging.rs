//! Page tokens: opaque, tamper-evident (HMAC) and bound to the query they were issued for, so a
//! token cannot be edited or replayed against another filter.

use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Default and maximum page sizes of a List method.
#[derive(Debug, Clone, Copy)]
pub struct PageSize {
    pub default: usize,
    pub max: usize,
}

impl PageSize {
    pub const STANDARD: PageSize = PageSize { default: 50, max: 500 };

    /// The effective page size: 0 → default; negative or above the maximum → INVALID_ARGUMENT.
    pub fn resolve(self, field: &str, requested: i32) -> Result<usize, ApiError> {
        match requested {
            0 => Ok(self.default),
            n if n < 0 => Err(ApiError::invalid(field, "must not be negative")),
            n if n as usize > self.max => Err(ApiError::invalid(field, format!("must be at most {}", self.max))),
            n => Ok(n as usize),
        }
    }
}

/// Issues and checks page tokens.
#[derive(Clone)]
pub struct PageTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens")
    }
}

impl PageTokens {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn tag(&self, query: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("any key size");
        mac.update(query.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// A token for the page after `position` of the query described by `query` (every request
    /// field that must stay the same between pages).
    pub fn issue<T: Serialize>(&self, query: &str, position: &T) -> String {
        let body = serde_json::to_vec(position).expect("page position serialises");
        let tag = self.tag(query, &body);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&body), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The position in `token`; `None` for an empty token; INVALID_ARGUMENT on `field` when it was
    /// edited, forged or issued for another query.
    pub fn read<T: DeserializeOwned>(&self, field: &str, query: &str, token: &str) -> Result<Option<T>, ApiError> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || ApiError::invalid(field, "is not a page token issued for this query");
        let (body, tag) = token.split_once('.').ok_or_else(bad)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        // Constant-time comparison of the tags.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("any key size");
        mac.update(query.as_bytes());
        mac.update(&[0]);
        mac.update(&body);
        if tag.len() != 16 || mac.verify_truncated_left(&tag).is_err() {
            return Err(bad());
        }
        serde_json::from_slice(&body).map(Some).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let tokens = PageTokens::new([7; 32]);
        let token = tokens.issue("filter=a", &120u64);
        assert_eq!(tokens.read::<u64>("page_token", "filter=a", &token).unwrap(), Some(120));
        assert!(tokens.read::<u64>("page_token", "filter=b", &token).is_err());
        let (body, tag) = token.split_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(b"999");
        assert!(
            tokens
                .read::<u64>("page_token", "filter=a", &format!("{forged_body}.{tag}"))
                .is_err()
        );
        assert!(
            tokens
                .read::<u64>("page_token", "filter=a", &format!("{body}."))
                .is_err()
        );
        assert!(tokens.read::<u64>("page_token", "filter=a", "garbage").is_err());
        assert_eq!(tokens.read::<u64>("page_token", "filter=a", "").unwrap(), None);
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PageSize::STANDARD.resolve("page_size", 0).unwrap(), 50);
        assert!(PageSize::STANDARD.resolve("page_size", -1).is_err());
        assert!(PageSize::STANDARD.resolve("page_size", 501).is_err());
    }
}
