//! The opinion service over real gRPC together with the patients and feedback services it works
//! with, on SQLite and on a throwaway PostgreSQL cluster. Feeds and pages are served by a local
//! HTTP server inside the tests (no internet). One binary; each scenario runs per backend.

mod helpers;

use hcrm_kit::both_backends;

mod alerts;
mod comments;
mod incidents;
mod ingest;
mod polling;
mod reputation;
mod watch;
