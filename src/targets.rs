//! Targets: which services a process runs. `all` on a laptop, one per Kubernetes Deployment.
//! Adding a service = one variant, one arm in [`build`] and [`migrate`], one manifest.

use crate::Settings;
use hcrm_kit::deps::Deps;
use hcrm_kit::server::Built;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Every service.
    All,
    Patients,
    Followup,
    Feedback,
    Opinion,
    Gateway,
}

impl Target {
    /// Every target name, `all` first.
    pub const NAMES: &[(&str, Target)] = &[
        ("all", Target::All),
        ("patients", Target::Patients),
        ("followup", Target::Followup),
        ("feedback", Target::Feedback),
        ("opinion", Target::Opinion),
        ("gateway", Target::Gateway),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<_> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown target {s:?}; valid targets: {}", names.join(", "))
            })
    }
}

/// Parses a comma-separated target list (`patients,followup`).
pub fn parse_list(text: &str) -> Result<Vec<Target>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Target::from_str)
        .collect()
}

/// The concrete services of a target list, without duplicates.
pub fn expand(targets: &[Target]) -> Vec<Target> {
    let mut out: Vec<Target> = if targets.is_empty() || targets.contains(&Target::All) {
        Target::NAMES
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| *t != Target::All)
            .collect()
    } else {
        targets.to_vec()
    };
    out.sort();
    out.dedup();
    out
}

/// Builds one concrete target.
pub async fn build(target: Target, settings: &Settings, deps: Deps) -> anyhow::Result<Built> {
    match target {
        Target::Patients => hcrm_patients::build(&settings.patients, deps).await,
        Target::Followup => hcrm_followup::build(&settings.followup, deps).await,
        Target::Feedback => hcrm_feedback::build(&settings.feedback, deps).await,
        Target::Opinion => hcrm_opinion::build(&settings.opinion, deps).await,
        Target::Gateway => hcrm_gateway::build(&settings.gateway, deps).await,
        Target::All => anyhow::bail!("`all` is expanded before building"),
    }
}

/// Applies one concrete target's migrations.
pub async fn migrate(target: Target, settings: &Settings) -> anyhow::Result<()> {
    match target {
        Target::Patients => hcrm_patients::migrate(&settings.patients, &settings.data).await,
        Target::Followup => hcrm_followup::migrate(&settings.followup, &settings.data).await,
        Target::Feedback => hcrm_feedback::migrate(&settings.feedback, &settings.data).await,
        Target::Opinion => hcrm_opinion::migrate(&settings.opinion, &settings.data).await,
        Target::Gateway => hcrm_gateway::migrate(&settings.gateway, &settings.data).await,
        Target::All => anyhow::bail!("`all` is expanded before migrating"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_targets_list_the_valid_ones() {
        let err = parse_list("patients,nope").unwrap_err();
        assert!(
            err.contains("valid targets: all, patients, followup, feedback, opinion, gateway"),
            "{err}"
        );
        assert_eq!(
            expand(&parse_list("all").unwrap()),
            vec![
                Target::Patients,
                Target::Followup,
                Target::Feedback,
                Target::Opinion,
                Target::Gateway
            ]
        );
        assert_eq!(
            expand(&[]),
            vec![
                Target::Patients,
                Target::Followup,
                Target::Feedback,
                Target::Opinion,
                Target::Gateway
            ]
        );
    }
}
