//! The console's staff accounts, one per role a newcomer wants to try, created in the gateway's
//! account store as `hcrm account add` does.

use crate::Settings;
use hcrm_gateway::auth::accounts::{self, AccountInput};
use hcrm_kit::auth::{Principal, Role};

/// Username, display name, role, department.
pub const ACCOUNTS: &[(&str, &str, &str, &str)] = &[
    ("admin", "系统管理员", "admin", ""),
    ("guide", "导医组 李敏", "guide", ""),
    ("inspector", "督查组 周静", "inspector", ""),
    ("analyst", "舆情组 吴昊", "opinion_analyst", ""),
    ("cardiology-head", "心血管内科主任", "department_head", "cardiology"),
];

pub struct Created {
    pub password: String,
    /// Usernames created now.
    pub created: Vec<String>,
    /// Usernames that existed already (their passwords are unchanged).
    pub existing: Vec<String>,
}

/// The demo's password: `HCRM_DEMO_PASSWORD`, or a fresh random one.
pub fn password() -> String {
    match std::env::var("HCRM_DEMO_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => hcrm_gateway::auth::random_token(),
    }
}

/// Creates the accounts that do not exist yet.
pub async fn create(settings: &Settings, password: &str) -> anyhow::Result<Created> {
    let store = hcrm_gateway::account_store(&settings.gateway, &settings.data).await?;
    let by = Principal {
        subject: "hcrm-demo".into(),
        roles: vec![Role::Admin],
        department: None,
    };
    let mut out = Created {
        password: password.to_string(),
        created: Vec::new(),
        existing: Vec::new(),
    };
    for (username, display_name, role, department) in ACCOUNTS {
        if store
            .account(username)
            .await
            .map_err(|e| anyhow::anyhow!("reading account {username}: {e}"))?
            .is_some()
        {
            out.existing.push((*username).to_string());
            continue;
        }
        let input = AccountInput {
            username: (*username).into(),
            display_name: (*display_name).into(),
            roles: vec![(*role).into()],
            department: (*department).into(),
            password: password.to_string(),
        };
        accounts::create(&store, &by, &format!("demo-account-{username}"), input)
            .await
            .map_err(|e| anyhow::anyhow!("creating account {username}: {e}"))?;
        out.created.push((*username).to_string());
    }
    Ok(out)
}
