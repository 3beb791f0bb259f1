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
        /// Once serving, fill an empty installation with a synthetic demo hospital (`hcrm demo`).
        #[arg(long)]
        demo: bool,
    },
    /// Fill an empty installation with a synthetic hospital through the public APIs: departments
    /// and doctors, patients, follow-ups, cases, a survey with answers, mentions and an incident.
    Demo(crate::demo::DemoArgs),
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
    /// Manage the console's staff accounts (in the gateway's database).
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountAction {
    /// Create an account. The password is read from `HCRM_PASSWORD`, or generated and printed once.
    Add {
        #[arg(long)]
        username: String,
        /// Role to grant; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Department code, for clinician and department_head.
        #[arg(long, default_value = "")]
        department: String,
        /// Name shown in the console; default the username.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Set a new password (from `HCRM_PASSWORD`, or generated and printed once); signs the
    /// account out everywhere.
    Password {
        #[arg(long)]
        username: String,
    },
    /// List the accounts.
    List,
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
        Command::Serve { target, demo } => {
            let _guard = hcrm_kit::telemetry::init(&settings.telemetry)?;
            let targets = targets::parse_list(&target).map_err(anyhow::Error::msg)?;
            crate::serve(&settings, &targets, demo).await
        }
        Command::Demo(args) => {
            let _guard = hcrm_kit::telemetry::init(&settings.telemetry)?;
            crate::demo::run(&settings, &args).await
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
        Command::Account { action } => account(&settings, action).await,
        Command::Targets => {
            for (name, _) in targets::Target::NAMES {
                println!("{name}");
            }
            Ok(())
        }
    }
}

/// The password for `hcrm account`: `HCRM_PASSWORD`, or a generated one that is printed.
fn chosen_password() -> (String, bool) {
    match std::env::var("HCRM_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (hcrm_gateway::auth::random_token(), true),
    }
}

async fn account(settings: &Settings, action: AccountAction) -> anyhow::Result<()> {
    use hcrm_gateway::auth::accounts;
    let store = hcrm_gateway::account_store(&settings.gateway, &settings.data).await?;
    let by = hcrm_kit::auth::Principal {
        subject: "cli".into(),
        roles: vec![Role::Admin],
        department: None,
    };
    let request_id = hcrm_kit::new_id();
    match action {
        AccountAction::Add {
            username,
            roles,
            department,
            display_name,
        } => {
            let (password, generated) = chosen_password();
            let input = accounts::AccountInput {
                display_name: display_name.unwrap_or_else(|| username.clone()),
                username,
                roles,
                department,
                password: password.clone(),
            };
            let account = accounts::create(&store, &by, &request_id, input)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "created account {} ({})",
                account.username,
                account.principal().roles_text()
            );
            if generated {
                println!("password: {password}");
            }
        }
        AccountAction::Password { username } => {
            let (password, generated) = chosen_password();
            accounts::set_password(&store, &by, &request_id, &username, None, &password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password of {username} changed; its sessions are closed");
            if generated {
                println!("password: {password}");
            }
        }
        AccountAction::List => {
            for a in store.list_accounts().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                let state = if a.disabled { "disabled" } else { "active" };
                let department = a.department.as_deref().unwrap_or("-");
                println!(
                    "{}\t{}\t{}\t{department}\t{state}",
                    a.username,
                    a.display_name,
                    a.principal().roles_text()
                );
            }
        }
    }
    Ok(())
}
