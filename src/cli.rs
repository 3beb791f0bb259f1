//! The command line: parse, load settings, run.

use crate::{Settings, targets};
use clap::{Parser, Subcommand};
use hcrm_kit::auth::{Authenticator, Role};
use std::path::PathBuf;

/// HCRM: the patient-service platform for hospitals.
#[derive(Debug, Parser)]
#[command(name = "hcrm", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables `HCRM__SECTION__KEY` override it.
    #[arg(long, global = true, env = "HCRM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded databases and generated keys (overrides `data.dir`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the targets' gRPC APIs until SIGTERM.
    Serve {
        /// Comma-separated targets (see `hcrm targets`).
        #[arg(long, default_value = "all", env = "HCRM_TARGET")]
        target: String,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long, default_value = "all", env = "HCRM_TARGET")]
        target: String,
    },
    /// Mint a bearer token signed with the configured key.
    Token {
        /// Role to grant; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Subject (staff id or system name).
        #[arg(long, default_value = "admin")]
        subject: String,
        /// Department code, for clinician and department_head.
        #[arg(long)]
        department: Option<String>,
        /// Lifetime in seconds; default `auth.token_ttl_secs`.
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Show or check the effective configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// List the target names.
    Targets,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (secrets redacted).
    Print,
    /// Load and check the configuration; exit non-zero if it is wrong.
    Check,
}

impl Cli {
    /// Loads the settings with this command line's overrides.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut overrides = Vec::new();
        if let Some(dir) = &self.data_dir {
            overrides.push(("data.dir", dir.display().to_string()));
        }
        Settings::load(self.config.as_deref(), &overrides)
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings()?;
    match cli.command {
        Command::Serve { target } => {
            let _guard = hcrm_kit::telemetry::init(&settings.telemetry)?;
            let targets = targets::parse_list(&target).map_err(anyhow::Error::msg)?;
            crate::serve(&settings, &targets).await
        }
        Command::Migrate { target } => {
            let _guard = hcrm_kit::telemetry::init(&settings.telemetry)?;
            let targets = targets::parse_list(&target).map_err(anyhow::Error::msg)?;
            for target in targets::expand(&targets) {
                targets::migrate(target, &settings).await?;
                tracing::info!(%target, "migrated");
            }
            Ok(())
        }
        Command::Token {
            roles,
            subject,
            department,
            ttl,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            if roles.iter().any(|r| r.is_department_scoped()) && department.is_none() {
                anyhow::bail!("clinician and department_head tokens need --department");
            }
            let (auth, _) = Authenticator::from_config(&settings.auth, &settings.data.dir)?;
            let token = auth.mint(
                &subject,
                &roles,
                department.as_deref(),
                ttl.unwrap_or(settings.auth.token_ttl_secs),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Print,
        } => {
            print!("{}", settings.to_toml()?);
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check,
        } => {
            // Check configured keys without generating missing ones: `check` changes nothing.
            if settings.auth.algorithm != "HS256" || settings.auth.hs256_secret.is_some() {
                Authenticator::from_config(&settings.auth, &settings.data.dir)?;
            }
            if let Some(keys) = &settings.security.data_keys {
                hcrm_kit::crypto::Sealer::from_spec(keys.expose(), settings.security.active_key_id.as_deref())?;
            }
            if let Some(key) = &settings.security.index_key {
                hcrm_kit::keys::decode_key(key.expose())?;
            }
            println!("configuration ok");
            Ok(())
        }
        Command::Targets => {
            for (name, _) in targets::Target::NAMES {
                println!("{name}");
            }
            Ok(())
        }
    }
}
