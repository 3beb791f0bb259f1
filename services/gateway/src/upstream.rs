//! The services behind the gateway: one lazily connected channel per service, found by the
//! package of a gRPC service name (`hcrm.patients.v1.…` → patients).

use crate::Config;
use hcrm_kit::deps::Deps;
use tonic::transport::Channel;

/// A service the gateway forwards to.
#[derive(Clone)]
pub struct Upstream {
    /// `patients`, `followup`, …
    pub name: &'static str,
    /// Its address as an HTTP base URL (`http://host:port`), for grpc-web forwarding.
    pub url: String,
    pub channel: Channel,
}

#[derive(Clone)]
pub struct Upstreams {
    pub patients: Upstream,
    pub followup: Upstream,
    pub feedback: Upstream,
    pub opinion: Upstream,
}

impl Upstreams {
    pub fn new(cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        let upstream = |name: &'static str, url: &Option<String>| -> anyhow::Result<Upstream> {
            let url = url.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| deps.self_url());
            Ok(Upstream {
                name,
                channel: hcrm_kit::client::lazy_channel(&url)
                    .map_err(|e| anyhow::anyhow!("gateway.{name}_url {url:?}: {e}"))?,
                url: hcrm_kit::client::http_base(&url),
            })
        };
        Ok(Self {
            patients: upstream("patients", &cfg.patients_url)?,
            followup: upstream("followup", &cfg.followup_url)?,
            feedback: upstream("feedback", &cfg.feedback_url)?,
            opinion: upstream("opinion", &cfg.opinion_url)?,
        })
    }

    /// The upstream serving a fully qualified gRPC service name, if it is one of HCRM's.
    pub fn for_service(&self, service: &str) -> Option<&Upstream> {
        let mut parts = service.split('.');
        if parts.next() != Some("hcrm") {
            return None;
        }
        match parts.next()? {
            "patients" => Some(&self.patients),
            "followup" => Some(&self.followup),
            "feedback" => Some(&self.feedback),
            "opinion" => Some(&self.opinion),
            _ => None,
        }
    }
}
