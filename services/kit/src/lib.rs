//! The platform every HCRM service is built from: one place for each concern.
//!
//! - [`config`]: layered settings (defaults → file → `HCRM__SECTION__KEY` env → flags).
//! - [`telemetry`]: logs, traces (OTLP when configured), Prometheus metrics.
//! - [`server`]: the gRPC listener with health, reflection, grpc-web and tower layers, and the
//!   admin HTTP listener.
//! - [`auth`]: bearer JWT → [`auth::Principal`], roles, permission tables.
//! - [`error`]: the shared error code set and its mapping to gRPC status with details.
//! - [`paging`]: tamper-evident page tokens and page sizes.
//! - [`db`]: pools for SQLite and PostgreSQL, migrations, write transactions.
//! - [`crypto`]: field encryption with key ids and blind indexes.
//! - [`filter`]: AIP-160 filters compiled to SQL over a field whitelist.
//! - [`feed`]: the ledger at run time: sealing and the `WatchEvents` stream.
//! - [`idempotency`]: retry-safe creates keyed by the caller's request id.
//! - [`notify`]: notifiers that carry messages out of the system (webhook, e-mail, log).
//! - [`outbox`]: deliveries that leave a service: queued in its transactions, claimed with a
//!   lease, sent by the service's sender, settled (retries, dead letters).
//! - [`client`]: calls between services (lazy channels, service tokens).
//! - [`peers`]: typed clients of other services (patients).
//! - [`clock`]: the time services read, which tests control.
//! - [`testing`]: fresh databases for tests on either backend.

pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod deps;
pub mod error;
pub mod feed;
pub mod filter;
pub mod idempotency;
pub mod keys;
pub mod ledger;
pub mod notify;
pub mod outbox;
pub mod paging;
pub mod peers;
pub mod request;
pub mod resource;
pub mod secret;
pub mod server;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod validate;

pub use error::{ApiError, ApiResult};

/// A new opaque identifier: UUIDv7 (time-ordered) in its hyphenated form.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
