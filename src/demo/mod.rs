//! (being written) `hcrm demo`: fills an empty installation with a synthetic hospital through
//! the public gRPC APIs.

use crate::Settings;

/// Options of `hcrm demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// gRPC address of the installation to fill; default this configuration's `server.grpc_addr`.
    #[arg(long)]
    pub url: Option<String>,
    /// How many patients to create.
    #[arg(long, default_value_t = 2000)]
    pub patients: usize,
    /// Seed of the random generator (the same seed gives the same hospital).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            url: None,
            patients: 2000,
            seed: 2026,
        }
    }
}

/// Fills the installation at `args.url` unless it already has patients.
pub async fn run(_settings: &Settings, _args: &DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("hcrm demo is not written yet")
}
