//! Rules of the opinion service that need no database: the incident workflow, what counts as
//! personal data in a public reply, and the local day of a time.

pub mod days;
pub mod privacy;
pub mod workflow;
