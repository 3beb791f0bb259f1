//! Field encryption (AES-256-GCM with a key id, so keys can rotate) and blind indexes (keyed
//! hashes that allow exact search without storing the value).

use crate::config::SecurityConfig;
use crate::keys;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::HashMap;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// Encrypts and decrypts protected values. Ciphertext text is `{key_id}:{base64(nonce ‖ ct)}`;
/// the associated data binds it to its record so it cannot be moved to another row.
#[derive(Clone)]
pub struct Sealer {
    keys: HashMap<String, Aes256Gcm>,
    active: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Builds from `id:base64key[,…]`; the active key is `active` or the last one listed.
    pub fn from_spec(spec: &str, active: Option<&str>) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        let mut last = None;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, key) = part
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("data key entries must be `id:base64key`"))?;
            anyhow::ensure!(
                !id.is_empty() && id.len() <= 16 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "data key id {id:?} must be 1–16 letters, digits or dashes"
            );
            let key = keys::decode_key(key).with_context(|| format!("data key {id}"))?;
            keys.insert(id.to_string(), Aes256Gcm::new(&key.into()));
            last = Some(id.to_string());
        }
        let active = active
            .map(str::to_string)
            .or(last)
            .ok_or_else(|| anyhow::anyhow!("no data keys"))?;
        anyhow::ensure!(
            keys.contains_key(&active),
            "active data key {active:?} is not among the keys"
        );
        Ok(Self { keys, active })
    }

    /// From configuration, or from the key generated under `{data_dir}/keys/data-k1.key`.
    pub fn from_config(cfg: &SecurityConfig, data_dir: &Path) -> anyhow::Result<Self> {
        match &cfg.data_keys {
            Some(spec) => Self::from_spec(spec.expose(), cfg.active_key_id.as_deref()),
            None => {
                let (key, _) = keys::load_or_generate(data_dir, "data-k1.key")?;
                Self::from_spec(&format!("k1:{key}"), None)
            }
        }
    }

    /// Encrypts `plaintext` bound to `aad` (e.g. the record id).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let cipher = &self.keys[&self.active];
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut buf = Vec::with_capacity(12 + ct.len());
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(&ct);
        format!("{}:{}", self.active, STANDARD_NO_PAD.encode(buf))
    }

    /// Decrypts a value sealed with any known key.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (id, data) = sealed.split_once(':').context("sealed value has no key id")?;
        let cipher = self
            .keys
            .get(id)
            .with_context(|| format!("unknown data key id {id:?}"))?;
        let buf = STANDARD_NO_PAD.decode(data).context("sealed value is not base64")?;
        anyhow::ensure!(buf.len() > 12, "sealed value too short");
        let (nonce, ct) = buf.split_at(12);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| anyhow::anyhow!("sealed value does not decrypt with key {id:?}"))
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }
}

/// A protected value as most readers see it: the first `head` and last `tail` characters kept,
/// the rest starred.
pub fn mask(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= chars.len() - tail { *c } else { '*' })
        .collect()
}

/// Keyed hashes for exact-match lookups of protected values.
#[derive(Clone)]
pub struct BlindIndex {
    key: [u8; 32],
}

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex")
    }
}

impl BlindIndex {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// From configuration, or from the key generated under `{data_dir}/keys/index.key`.
    pub fn from_config(cfg: &SecurityConfig, data_dir: &Path) -> anyhow::Result<Self> {
        let text = match &cfg.index_key {
            Some(key) => key.expose().to_string(),
            None => keys::load_or_generate(data_dir, "index.key")?.0,
        };
        Ok(Self::new(keys::decode_key(&text).context("security.index_key")?))
    }

    /// Hex HMAC-SHA256 of `value` in the namespace `kind` (so equal values of different kinds
    /// do not collide).
    pub fn hash(&self, kind: &str, value: &str) -> String {
        hex::encode(self.mac(&[kind.as_bytes(), &[0], value.as_bytes()]))
    }

    /// A key derived for another purpose (e.g. page tokens), so one configured secret serves both.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        self.mac(&[b"derive\0", purpose.as_bytes()])
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("hmac accepts any key size");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn spec(id: &str, byte: u8) -> String {
        format!("{id}:{}", STANDARD.encode([byte; 32]))
    }

    #[test]
    fn sealed_values_open_with_rotated_keys_and_bind_to_their_record() {
        let old = Sealer::from_spec(&spec("k1", 1), None).unwrap();
        let sealed = old.seal(b"110101199003074514", b"patient-1");
        assert!(sealed.starts_with("k1:"));
        assert!(!sealed.contains("110101"));
        let rotated = Sealer::from_spec(&format!("{},{}", spec("k1", 1), spec("k2", 2)), None).unwrap();
        assert_eq!(rotated.active_key_id(), "k2");
        assert_eq!(rotated.open(&sealed, b"patient-1").unwrap(), b"110101199003074514");
        assert!(rotated.open(&sealed, b"patient-2").is_err());
    }

    #[test]
    fn blind_index_is_keyed_and_namespaced() {
        let a = BlindIndex::new([1; 32]);
        let b = BlindIndex::new([2; 32]);
        assert_eq!(a.hash("id", "x"), a.hash("id", "x"));
        assert_ne!(a.hash("id", "x"), b.hash("id", "x"));
        assert_ne!(a.hash("id", "x"), a.hash("card", "x"));
    }
}
