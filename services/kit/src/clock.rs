//! The time services read. Production reads the system clock; tests hold a manual clock and move
//! it, so "the day before a task is due" needs no sleeping until tomorrow.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Microseconds since the Unix epoch, from the system or from a test.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock shared by every clone.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `micros` until a test moves it.
    pub fn manual(micros: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(micros))),
        }
    }

    /// Now, in microseconds since the epoch.
    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => crate::time::now_micros(),
        }
    }

    /// Sets a manual clock; ignored by the system clock.
    pub fn set(&self, micros: i64) {
        if let Some(at) = &self.manual {
            at.store(micros, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock forward; ignored by the system clock.
    pub fn advance(&self, micros: i64) {
        if let Some(at) = &self.manual {
            at.fetch_add(micros, Ordering::SeqCst);
        }
    }

    /// Whether tests drive this clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let other = clock.clone();
        assert_eq!(clock.now(), 1_000);
        other.advance(500);
        assert_eq!(clock.now(), 1_500);
        clock.set(10);
        assert_eq!(other.now(), 10);
        let system = Clock::system();
        system.set(10);
        assert!(system.now() > 1_700_000_000_000_000);
    }
}
