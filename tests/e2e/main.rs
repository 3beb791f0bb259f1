//! End to end: the built `hcrm` binary started as a user would, driven over gRPC.

mod binary;
mod faults;
mod split;
