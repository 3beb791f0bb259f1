//! Politeness towards the sites we poll: one request per host per interval.
//!
//! Many sources often live on one host (a portal's channel feeds, several pages of one news
//! site); without spacing, a poll round would hit that host in a burst, which looks like abuse
//! and gets the hospital's egress address banned.
//!
//! Slots are reserved, not just checked: each caller books the next free slot for its host and
//! then sleeps until it, so concurrent callers queue up one interval apart instead of all waking
//! at once. [`Fetcher::fetch`](super::Fetcher::fetch) waits through [`HostLimiter::acquire`]; a
//! scheduler that would rather defer a source than hold a task can use
//! [`HostLimiter::try_acquire`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Above this many remembered hosts, entries whose slot has passed are dropped, so a long-running
/// poller with many one-off hosts does not grow the map forever.
const PRUNE_ABOVE: usize = 1024;

/// Cheap to clone; clones share the same bookkeeping.
#[derive(Debug, Clone)]
pub struct HostLimiter {
    min_interval: Duration,
    /// Host → earliest instant at which the next request may start.
    next_free: Arc<Mutex<HashMap<String, Instant>>>,
}

impl HostLimiter {
    pub fn new(min_interval: Duration) -> Self {
        HostLimiter {
            min_interval,
            next_free: Arc::default(),
        }
    }

    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// Books the next slot for `host` and returns how long until it starts (zero: go now). The
    /// slot is taken even if the caller then gives up, which only makes us more polite.
    pub fn reserve(&self, host: &str) -> Duration {
        if self.min_interval.is_zero() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, next| *next > now);
        }
        let key = host.to_ascii_lowercase();
        let slot = map.get(&key).map_or(now, |next| (*next).max(now));
        map.insert(key, slot + self.min_interval);
        slot - now
    }

    /// Takes the slot for `host` if it is free now; otherwise books nothing and returns how long
    /// until it will be, so the caller can reschedule the source instead of waiting.
    pub fn try_acquire(&self, host: &str) -> Result<(), Duration> {
        if self.min_interval.is_zero() {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.lock();
        let key = host.to_ascii_lowercase();
        if let Some(next) = map.get(&key)
            && *next > now
        {
            return Err(*next - now);
        }
        map.insert(key, now + self.min_interval);
        Ok(())
    }

    /// Waits for this caller's slot for `host`.
    pub async fn acquire(&self, host: &str) {
        let wait = self.reserve(host);
        if !wait.is_zero() {
            tracing::debug!(
                host,
                wait_ms = wait.as_millis() as u64,
                "waiting for per-host rate limit"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // The map holds plain instants; a panic elsewhere cannot leave it inconsistent.
        self.next_free.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_queue_one_interval_apart() {
        let limiter = HostLimiter::new(Duration::from_secs(10));
        assert_eq!(limiter.reserve("a.example"), Duration::ZERO);
        let second = limiter.reserve("A.example");
        assert!(
            second > Duration::from_secs(9) && second <= Duration::from_secs(10),
            "{second:?}"
        );
        let third = limiter.reserve("a.example");
        assert!(
            third > Duration::from_secs(19) && third <= Duration::from_secs(20),
            "{third:?}"
        );
        // Other hosts are independent.
        assert_eq!(limiter.reserve("b.example"), Duration::ZERO);
    }

    #[test]
    fn try_acquire_defers_without_booking() {
        let limiter = HostLimiter::new(Duration::from_secs(10));
        assert_eq!(limiter.try_acquire("a.example"), Ok(()));
        let wait = limiter.try_acquire("a.example").unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        // The refused attempt did not push the slot further out.
        let again = limiter.try_acquire("a.example").unwrap_err();
        assert!(again <= wait);
        assert_eq!(limiter.try_acquire("b.example"), Ok(()));
    }

    #[test]
    fn zero_interval_never_waits() {
        let limiter = HostLimiter::new(Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(limiter.reserve("a.example"), Duration::ZERO);
            assert_eq!(limiter.try_acquire("a.example"), Ok(()));
        }
    }

    #[test]
    fn clones_share_state() {
        let limiter = HostLimiter::new(Duration::from_secs(10));
        let clone = limiter.clone();
        assert_eq!(limiter.reserve("a.example"), Duration::ZERO);
        assert!(clone.try_acquire("a.example").is_err());
    }

    #[test]
    fn stale_hosts_are_pruned() {
        let limiter = HostLimiter::new(Duration::from_millis(1));
        for i in 0..=PRUNE_ABOVE {
            limiter.reserve(&format!("h{i}.example"));
        }
        std::thread::sleep(Duration::from_millis(5));
        limiter.reserve("last.example");
        assert!(limiter.lock().len() <= 2);
    }

    #[tokio::test]
    async fn acquire_sleeps_until_the_slot() {
        let limiter = HostLimiter::new(Duration::from_millis(200));
        let start = Instant::now();
        limiter.acquire("a.example").await;
        assert!(start.elapsed() < Duration::from_millis(150));
        limiter.acquire("a.example").await;
        assert!(start.elapsed() >= Duration::from_millis(190), "{:?}", start.elapsed());
    }
}
