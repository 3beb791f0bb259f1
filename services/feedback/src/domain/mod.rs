//! The rules of the feedback service, free of storage and transport.

pub mod questionnaire;
pub mod report;
pub mod sla;
pub mod taxonomy;
pub mod workdays;
pub mod workflow;
