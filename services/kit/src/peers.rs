//! Other services as a service sees them: typed clients over their gRPC APIs, with a
//! `service:{name}` identity (see [`crate::client`]), shared so each caller does not write its
//! own.

pub mod feed;
pub mod opinion;
pub mod patients;
