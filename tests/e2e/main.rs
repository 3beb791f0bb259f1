//! End to end: the built `hcrm` binary started as a user would, driven over gRPC.

mod binary;
mod demo;
mod faults;
mod split;

/// A free local port (bound and released: the process under test binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
