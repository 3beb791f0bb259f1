//! Background jobs of the patients service.

pub mod grading;
pub mod handoff;
