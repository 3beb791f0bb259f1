//! Layered configuration: code defaults → `--config FILE` → `HCRM__SECTION__KEY` environment
//! variables → command-line flags. The file is only read when named; nothing is looked up
//! relative to the working directory.

use crate::secret::Secret;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of configuration environment variables: `HCRM__SERVER__GRPC_ADDR=…`.
pub const ENV_PREFIX: &str = "HCRM";

/// Listeners and request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The one gRPC listener of the process (grpc-web is served on it too).
    pub grpc_addr: SocketAddr,
    /// Admin HTTP: `/metrics`, `/healthz`, `/readyz`.
    pub admin_addr: SocketAddr,
    /// Largest message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Requests served at once by the whole process; more are shed with UNAVAILABLE.
    pub concurrency_limit: usize,
    /// Longest a request may run when the caller sets no deadline.
    pub request_timeout_secs: u64,
    /// On SIGTERM: time between reporting NOT_SERVING and closing the listener, so load
    /// balancers stop sending first.
    pub drain_delay_secs: u64,
    /// On SIGTERM: how long in-flight requests may finish before the process stops anyway.
    pub drain_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "127.0.0.1:50051".parse().expect("valid default address"),
            admin_addr: "127.0.0.1:9090".parse().expect("valid default address"),
            max_message_bytes: 8 * 1024 * 1024,
            concurrency_limit: 512,
            request_timeout_secs: 30,
            drain_delay_secs: 0,
            drain_timeout_secs: 20,
        }
    }
}

/// Where data lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Directory of the embedded SQLite databases and of generated keys.
    pub dir: PathBuf,
    /// Connections per service pool.
    pub max_connections: u32,
    /// Longest wait for a pooled connection before answering UNAVAILABLE.
    pub acquire_timeout_secs: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./data"),
            max_connections: 8,
            acquire_timeout_secs: 5,
        }
    }
}

impl DataConfig {
    /// The default database URL of a service: `sqlite://{dir}/{service}.db`.
    pub fn default_url(&self, service: &str) -> String {
        format!("sqlite://{}?mode=rwc", self.dir.join(format!("{service}.db")).display())
    }
}

/// Token verification and minting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `HS256` (development; shared secret), `RS256` or `ES256` (production; key pair).
    pub algorithm: String,
    /// HS256 secret. When unset, a random one is generated under `{data.dir}/keys/`.
    pub hs256_secret: Option<Secret>,
    /// PEM public key that verifies RS256/ES256 tokens.
    pub public_key_file: Option<PathBuf>,
    /// PEM private key that `hcrm token` signs RS256/ES256 tokens with.
    pub private_key_file: Option<PathBuf>,
    /// Expected `iss` claim.
    pub issuer: String,
    /// Expected `aud` claim.
    pub audience: String,
    /// Lifetime of tokens minted by `hcrm token`.
    pub token_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            algorithm: "HS256".into(),
            hs256_secret: None,
            public_key_file: None,
            private_key_file: None,
            issuer: "hcrm".into(),
            audience: "hcrm".into(),
            token_ttl_secs: 8 * 3600,
        }
    }
}

/// Keys protecting sensitive fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Data-encryption keys as `id:base64key[,id:base64key…]` (32-byte AES-256 keys). When unset,
    /// one is generated under `{data.dir}/keys/`.
    pub data_keys: Option<Secret>,
    /// Key id new values are encrypted with; defaults to the last key listed.
    pub active_key_id: Option<String>,
    /// Key of the blind index (keyed hash) used for exact search and page tokens (base64, 32
    /// bytes). Generated under `{data.dir}/keys/` when unset.
    pub index_key: Option<Secret>,
}

/// Logs, traces and metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `pretty` for people, `json` for log collectors.
    pub log_format: String,
    /// A tracing filter, e.g. `info,hcrm_patients=debug`.
    pub log_level: String,
    /// OTLP/gRPC endpoint for traces, e.g. `http://otel-collector:4317`; none when unset.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported traces.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: "pretty".into(),
            log_level: "info".into(),
            otlp_endpoint: None,
            service_name: "hcrm".into(),
        }
    }
}

/// Loads settings of type `T`: its `Default`, then the file (if named), then the environment,
/// then `overrides` (dotted keys, e.g. `("data.dir", "/var/lib/hcrm")`).
pub fn load<T>(file: Option<&Path>, overrides: &[(&str, String)]) -> anyhow::Result<T>
where
    T: Default + Serialize + DeserializeOwned,
{
    let mut builder = config::Config::builder().add_source(config::Config::try_from(&T::default())?);
    if let Some(path) = file {
        anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    for (key, value) in overrides {
        builder = builder.set_override(*key, value.clone())?;
    }
    let settings = builder.build()?.try_deserialize::<T>()?;
    Ok(settings)
}
