//! The patients service over real gRPC, on SQLite and on a throwaway PostgreSQL cluster.
//! One binary (linking dominates on two cores); each scenario runs once per backend.

mod helpers;

use hcrm_kit::both_backends;

mod appointments;
mod audit;
mod bad_input;
mod concurrency;
mod consultations;
mod directory;
mod events;
mod fhir;
mod grading;
mod grading_pass;
mod import;
mod organizations;
mod patients;
mod protected;
mod referrals;
mod related;
mod roles;
mod search;
mod segments;
mod service_requests;
