//! Deadlines per severity, counted in working days, and where a case stands against them.

use super::workdays::WorkCalendar;
use hcrm_proto::feedback::{Severity, SlaState};
use serde::{Deserialize, Serialize};

/// Working days to the first response and to the close (0: by the end of the working day).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub response_days: u32,
    pub resolution_days: u32,
}

/// The SLA of each severity (`feedback.sla.low` …).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SlaTable {
    pub low: Sla,
    pub medium: Sla,
    pub high: Sla,
    pub critical: Sla,
}

impl Default for SlaTable {
    fn default() -> Self {
        Self {
            low: Sla {
                response_days: 2,
                resolution_days: 15,
            },
            medium: Sla {
                response_days: 1,
                resolution_days: 10,
            },
            high: Sla {
                response_days: 1,
                resolution_days: 5,
            },
            critical: Sla {
                response_days: 0,
                resolution_days: 3,
            },
        }
    }
}

impl SlaTable {
    pub fn of(&self, severity: Severity) -> Sla {
        match severity {
            Severity::Low => self.low,
            Severity::High => self.high,
            Severity::Critical => self.critical,
            Severity::Medium | Severity::Unspecified => self.medium,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        for (name, sla) in [
            ("low", self.low),
            ("medium", self.medium),
            ("high", self.high),
            ("critical", self.critical),
        ] {
            if sla.resolution_days < sla.response_days || sla.resolution_days > 90 {
                return Err(format!(
                    "sla.{name}: resolution_days must be at least response_days and at most 90"
                ));
            }
        }
        Ok(())
    }
}

/// The two deadlines of a case received at `at`.
pub fn deadlines(cal: &WorkCalendar, sla: Sla, at: i64) -> (i64, i64) {
    (
        cal.deadline(at, sla.response_days),
        cal.deadline(at, sla.resolution_days),
    )
}

/// Facts about a case that decide its SLA state.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: i64,
    pub open: bool,
    pub response_due: i64,
    pub resolution_due: i64,
    pub first_response_at: Option<i64>,
    pub closed_at: Option<i64>,
}

/// The deadline that is pending now (response first, then resolution), for an open case.
pub fn pending_deadline(c: &Clock) -> i64 {
    if c.first_response_at.is_none() {
        c.response_due
    } else {
        c.resolution_due
    }
}

pub fn state(c: &Clock, warn_before_micros: i64) -> SlaState {
    if !c.open {
        let response_ok = c.first_response_at.is_some_and(|t| t <= c.response_due);
        let close_ok = c.closed_at.is_some_and(|t| t <= c.resolution_due);
        return if response_ok && close_ok {
            SlaState::Met
        } else {
            SlaState::Missed
        };
    }
    let due = pending_deadline(c);
    if c.now >= due {
        SlaState::Overdue
    } else if c.now >= due - warn_before_micros {
        SlaState::DueSoon
    } else {
        SlaState::OnTrack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    #[test]
    fn states_follow_the_pending_deadline() {
        let mut c = Clock {
            now: 0,
            open: true,
            response_due: 10 * H,
            resolution_due: 100 * H,
            first_response_at: None,
            closed_at: None,
        };
        assert_eq!(state(&c, 4 * H), SlaState::OnTrack);
        c.now = 7 * H;
        assert_eq!(state(&c, 4 * H), SlaState::DueSoon);
        c.now = 10 * H;
        assert_eq!(state(&c, 4 * H), SlaState::Overdue);
        c.first_response_at = Some(9 * H);
        assert_eq!(
            state(&c, 4 * H),
            SlaState::OnTrack,
            "answered in time: the close deadline is next"
        );
        c.first_response_at = Some(11 * H);
        c.open = false;
        c.closed_at = Some(50 * H);
        assert_eq!(state(&c, 4 * H), SlaState::Missed);
        c.first_response_at = Some(9 * H);
        assert_eq!(state(&c, 4 * H), SlaState::Met);
        assert!(SlaTable::default().check().is_ok());
    }
}
