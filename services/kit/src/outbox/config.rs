//! How a service's dispatchers pace the outbox.

use serde::{Deserialize, Serialize};

/// The outbox's delivery loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Deliveries claimed per round.
    pub batch: i64,
    /// How long a claim holds before another replica may take the delivery over.
    pub lease_secs: i64,
    /// Failed attempts before a delivery is dead.
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt up to an hour.
    pub backoff_ms: i64,
    /// Sends in flight at once per replica.
    pub concurrency: usize,
    /// How often the loops look for work when nothing woke them.
    pub poll_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            lease_secs: 60,
            max_attempts: 8,
            backoff_ms: 2_000,
            concurrency: 16,
            poll_ms: 1_000,
        }
    }
}

impl DeliveryConfig {
    /// Checks what deserialisation cannot; messages name the fields under `section` (e.g.
    /// `followup.delivery`). `notifier_timeout_ms` bounds one send.
    pub fn check(&self, section: &str, notifier_timeout_ms: u64) -> anyhow::Result<()> {
        anyhow::ensure!((1..=5000).contains(&self.batch), "{section}.batch must be 1–5000");
        anyhow::ensure!(self.lease_secs >= 1, "{section}.lease_secs must be at least 1");
        anyhow::ensure!(self.max_attempts >= 1, "{section}.max_attempts must be at least 1");
        anyhow::ensure!(self.concurrency >= 1, "{section}.concurrency must be at least 1");
        // A claimant stops starting sends at half its lease; one send must end before the rest.
        anyhow::ensure!(
            self.lease_secs * 1000 / 2 > notifier_timeout_ms as i64 + 5_000,
            "{section}.lease_secs must exceed twice (notifier.timeout_ms + 5 s), the longest one attempt takes"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_mistakes_name_their_section() {
        DeliveryConfig::default().check("svc.delivery", 10_000).unwrap();
        let bad = DeliveryConfig {
            batch: 0,
            ..Default::default()
        };
        let err = bad.check("svc.delivery", 10_000).unwrap_err().to_string();
        assert_eq!(err, "svc.delivery.batch must be 1–5000");
        // 30 s of lease leaves 15 s to start sends: not enough for a 10 s send plus 5 s.
        let short = DeliveryConfig {
            lease_secs: 30,
            ..Default::default()
        };
        let err = short.check("svc.delivery", 10_000).unwrap_err().to_string();
        assert!(err.starts_with("svc.delivery.lease_secs must exceed twice"), "{err}");
        short.check("svc.delivery", 9_999).unwrap();
    }
}
