//! Rules of the patients service: validation, normalisation, masking, derived values. No I/O.

pub mod consultation;
pub mod directory;
pub mod fhir;
pub mod grading;
pub mod identity;
pub mod interaction;
pub mod names;
pub mod organization;
pub mod patient;
pub mod related;
pub mod segment;
pub mod service_request;
