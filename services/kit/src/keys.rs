//! Keys generated on first start when none are configured: random, stored under
//! `{data_dir}/keys/` with owner-only permissions, never a fixed well-known default.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use std::path::{Path, PathBuf};

/// Directory of generated keys.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Reads the base64 key in `{data_dir}/keys/{name}`, creating a random 32-byte one if missing.
/// Returns the key text and whether it was created now.
pub fn load_or_generate(data_dir: &Path, name: &str) -> anyhow::Result<(String, bool)> {
    let dir = key_dir(data_dir);
    let path = dir.join(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok((text.trim().to_string(), false));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = STANDARD.encode(bytes);
    write_private(&path, &text)?;
    // Read back: when two processes start at once, the file that won is the key.
    let stored = std::fs::read_to_string(&path)?.trim().to_string();
    let created = stored == text;
    Ok((stored, created))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    // Another process may have created it first; then that one wins.
    if let Err(err) = &file
        && err.kind() == std::io::ErrorKind::AlreadyExists
    {
        return Ok(());
    }
    file.as_mut()
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?
        .write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    Ok(())
}

/// Decodes a base64 32-byte key.
pub fn decode_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = STANDARD.decode(text.trim()).context("key is not base64")?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("key must be 32 bytes, got {}", b.len()))
}
