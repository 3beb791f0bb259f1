//! The feedback service over real gRPC together with the patients and followup services it
//! works with, on SQLite and on a throwaway PostgreSQL cluster. One binary; each scenario runs
//! per backend.

mod helpers;

use hcrm_kit::both_backends;

mod cases;
mod intake;
mod outage;
mod reports;
mod surveys;
