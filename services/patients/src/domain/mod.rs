//! Rules of the patients service: validation, normalisation, masking, derived values. No I/O.

pub mod identity;
pub mod interaction;
pub mod names;
pub mod organization;
pub mod patient;
pub mod related;
