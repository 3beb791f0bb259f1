//! The gateway over real HTTP in front of every service over real gRPC, on SQLite and on a
//! throwaway PostgreSQL cluster: the REST/JSON API and its OpenAPI document, grpc-web, sign-in,
//! sessions and CSRF, the console pages and the patients' pages. One binary; each scenario runs
//! per backend.

mod helpers;

use hcrm_kit::both_backends;

mod api;
mod browser;
mod cases;
mod console;
mod followups;
mod guide;
mod opinion;
mod public;
mod sessions;
mod surveys;
