//! The settings of the whole process: the kit's sections plus one section per service.

use anyhow::Context as _;
use hcrm_kit::config::{AuthConfig, DataConfig, SecurityConfig, ServerConfig, TelemetryConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerConfig,
    pub data: DataConfig,
    pub auth: AuthConfig,
    pub security: SecurityConfig,
    pub telemetry: TelemetryConfig,
    pub patients: hcrm_patients::Config,
    pub followup: hcrm_followup::Config,
    pub feedback: hcrm_feedback::Config,
    pub opinion: hcrm_opinion::Config,
    pub gateway: hcrm_gateway::Config,
}

impl Settings {
    /// Defaults → `file` → `HCRM__…` environment → `overrides`.
    pub fn load(file: Option<&Path>, overrides: &[(&str, String)]) -> anyhow::Result<Settings> {
        let settings: Settings = hcrm_kit::config::load(file, overrides)?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks what deserialisation cannot: values that parse but make no sense together.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.server.max_message_bytes >= 64 * 1024,
            "server.max_message_bytes must be at least 65536"
        );
        anyhow::ensure!(
            self.server.concurrency_limit >= 1,
            "server.concurrency_limit must be at least 1"
        );
        anyhow::ensure!(
            self.data.max_connections >= 1,
            "data.max_connections must be at least 1"
        );
        anyhow::ensure!(
            matches!(self.auth.algorithm.as_str(), "HS256" | "RS256" | "ES256"),
            "auth.algorithm must be HS256, RS256 or ES256"
        );
        for url in [
            &self.patients.database_url,
            &self.followup.database_url,
            &self.feedback.database_url,
            &self.opinion.database_url,
            &self.gateway.database_url,
        ]
        .into_iter()
        .flatten()
        {
            hcrm_kit::db::Backend::of_url(url.expose())?;
        }
        let peers = [
            ("followup.patients_url", &self.followup.patients_url),
            ("followup.feedback_url", &self.followup.feedback_url),
            ("feedback.patients_url", &self.feedback.patients_url),
            ("feedback.followup_url", &self.feedback.followup_url),
            ("feedback.opinion_url", &self.feedback.opinion_url),
            ("opinion.patients_url", &self.opinion.patients_url),
            ("opinion.feedback_url", &self.opinion.feedback_url),
            ("gateway.patients_url", &self.gateway.patients_url),
            ("gateway.followup_url", &self.gateway.followup_url),
            ("gateway.feedback_url", &self.gateway.feedback_url),
            ("gateway.opinion_url", &self.gateway.opinion_url),
        ];
        for (key, url) in peers {
            if let Some(url) = url.as_deref().filter(|u| !u.is_empty()) {
                hcrm_kit::client::check_peer_url(url).context(key)?;
            }
        }
        self.patients.check()?;
        self.followup.check()?;
        self.feedback.check()?;
        self.opinion.check()?;
        self.gateway.check()?;
        Ok(())
    }

    /// The effective settings as TOML, secrets redacted.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}
