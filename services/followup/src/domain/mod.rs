//! Types and rules of follow-up work: no I/O, unit-tested inline.

pub mod appointment;
pub mod calendar;
pub mod chronic;
pub mod score;
pub mod stats;
pub mod template;
