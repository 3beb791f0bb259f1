//! What the process gives every service it builds.

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::{DataConfig, SecurityConfig, ServerConfig};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone)]
pub struct Deps {
    pub authenticator: Arc<Authenticator>,
    pub data: DataConfig,
    pub security: SecurityConfig,
    pub server: ServerConfig,
    /// Turns `true` when the process starts draining; long-lived streams and jobs end then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    pub clock: Clock,
    /// This process's own gRPC address: the default for clients of services it may run itself
    /// ("services call each other over gRPC even in one process").
    pub self_addr: SocketAddr,
}

impl Deps {
    /// `http://{addr}` of this process, with `0.0.0.0` turned into loopback.
    pub fn self_url(&self) -> String {
        let mut addr = self.self_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }
}
