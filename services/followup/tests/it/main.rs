//! The followup service over real gRPC together with the patients service it reads from, on
//! SQLite and on a throwaway PostgreSQL cluster. One binary; each scenario runs per backend.

mod helpers;

use hcrm_kit::both_backends;

mod appointment;
mod bad_input;
mod chronic;
mod discharge;
mod record;
mod reminders;
mod roles;
mod statistics;
