//! Request rates per client address: one budget for the API and the console, a smaller one for
//! the patients' pages (no login, reachable from the internet). Over budget is 429 with
//! `Retry-After`, before any work is done.

use crate::Config;
use crate::api::error::HttpError;
use crate::state::Gateway;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hcrm_kit::server::Job;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

pub struct Limits {
    staff: DefaultKeyedRateLimiter<IpAddr>,
    public: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n)
}

impl Limits {
    pub fn new(cfg: &Config) -> Self {
        Self {
            staff: RateLimiter::keyed(quota(cfg.rate_per_minute)),
            public: RateLimiter::keyed(quota(cfg.public_rate_per_minute)),
        }
    }

    /// How long `client` must wait, if it is over budget.
    fn check(&self, public: bool, client: IpAddr) -> Option<Duration> {
        let limiter = if public { &self.public } else { &self.staff };
        limiter
            .check_key(&client)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Forgets idle clients every minute, so the tables do not grow with every address ever seen.
pub fn cleanup_job(limits: Arc<Limits>) -> Job {
    hcrm_kit::server::periodic("gateway-rate-limits", Duration::from_secs(60), move || {
        let limits = limits.clone();
        async move {
            limits.staff.retain_recent();
            limits.public.retain_recent();
            Ok::<u64, hcrm_kit::ApiError>(0)
        }
    })
}

/// The client's address: the peer, or — behind one trusted proxy (an ingress controller) — the
/// last `X-Forwarded-For` entry, the one that proxy appended. Earlier entries come from the
/// client and could be anything.
pub fn client_addr(gw: &Gateway, request: &Request) -> IpAddr {
    if gw.cfg.trust_forwarded_for
        && let Some(ip) = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip;
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The budget an address belongs to: IPv4 addresses alone, IPv6 by their /64 (one household or
/// host gets a /64, so single addresses would give one client endless budgets).
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client address as handlers see it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

async fn limit(gw: Arc<Gateway>, public: bool, mut request: Request, next: Next) -> Response {
    let client = bucket(client_addr(&gw, &request));
    request.extensions_mut().insert(ClientAddr(client));
    if let Some(wait) = gw.limits.check(public, client) {
        let mut response =
            HttpError::new(tonic::Code::ResourceExhausted, "too many requests; slow down").into_response();
        let secs = wait.as_secs().max(1).to_string();
        if let Ok(value) = http::HeaderValue::from_str(&secs) {
            response.headers_mut().insert(http::header::RETRY_AFTER, value);
        }
        return response;
    }
    next.run(request).await
}

/// Middleware: the staff budget.
pub async fn staff(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    limit(gw, false, request, next).await
}

/// Middleware: the patients' pages budget.
pub async fn public(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    limit(gw, true, request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64_and_ipv4_stays_whole() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(other));
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(bucket(v4), v4);
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(bucket(mapped), v4);
    }
}
