//! Adaptive chronic-disease schedules. The rules are data ([`ChronicRules`] in a template):
//! hypertension ships as the first built-in, and another disease is another template.
//!
//! A plan starts in the early phase (follow-ups at the early intervals, e.g. twice a week);
//! `stable_after` consecutive controlled readings make it stable (weekly); `maintenance_after`
//! more make it maintenance (the longest gap, at least monthly). One uncontrolled reading sends
//! it back to the early phase at once and alerts the responsible clinician.

use hcrm_kit::validate::Violations;
use hcrm_proto::followup::{ChronicPhase, ChronicRules, Reading};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Early,
    Stable,
    Maintenance,
}

impl Phase {
    pub fn to_proto(self) -> ChronicPhase {
        match self {
            Phase::Early => ChronicPhase::Early,
            Phase::Stable => ChronicPhase::Stable,
            Phase::Maintenance => ChronicPhase::Maintenance,
        }
    }
}

/// Where a chronic plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub phase: Phase,
    /// Consecutive controlled readings in the current phase.
    pub consecutive: i32,
    /// Position in the early-phase interval cycle.
    pub cycle: u32,
}

impl State {
    pub const START: State = State {
        phase: Phase::Early,
        consecutive: 0,
        cycle: 0,
    };
}

/// The built-in hypertension rules: controlled below 140/90; stable after 3 controlled readings;
/// twice a week early, weekly when stable, monthly after 8 more controlled readings.
pub fn hypertension() -> ChronicRules {
    ChronicRules {
        measure: "blood_pressure".into(),
        systolic_below: 140,
        diastolic_below: 90,
        stable_after: 3,
        early_intervals_days: vec![3, 4],
        stable_interval_days: 7,
        max_interval_days: 30,
        maintenance_after: 8,
    }
}

/// Checks rules as a whole.
pub fn check_rules(field: &str, r: &ChronicRules, v: &mut Violations) {
    if r.measure != "blood_pressure" {
        v.add(
            format!("{field}.measure"),
            "must be \"blood_pressure\" (the measure readings carry)",
        );
    }
    if !(60..=250).contains(&r.systolic_below) {
        v.add(format!("{field}.systolic_below"), "must be 60–250 mmHg");
    }
    if !(40..=150).contains(&r.diastolic_below) {
        v.add(format!("{field}.diastolic_below"), "must be 40–150 mmHg");
    }
    if !(1..=50).contains(&r.stable_after) {
        v.add(format!("{field}.stable_after"), "must be 1–50 readings");
    }
    if !(0..=100).contains(&r.maintenance_after) {
        v.add(
            format!("{field}.maintenance_after"),
            "must be 0–100 readings (0: never)",
        );
    }
    if !(1..=31).contains(&r.max_interval_days) {
        v.add(
            format!("{field}.max_interval_days"),
            "must be 1–31 days (at least monthly)",
        );
    }
    if r.early_intervals_days.is_empty() || r.early_intervals_days.len() > 14 {
        v.add(format!("{field}.early_intervals_days"), "must list 1–14 intervals");
    }
    for (i, d) in r.early_intervals_days.iter().enumerate() {
        if !(1..=r.max_interval_days.max(1)).contains(d) {
            v.add(
                format!("{field}.early_intervals_days[{i}]"),
                "must be 1 day up to max_interval_days",
            );
        }
    }
    if !(1..=r.max_interval_days.max(1)).contains(&r.stable_interval_days) {
        v.add(
            format!("{field}.stable_interval_days"),
            "must be 1 day up to max_interval_days",
        );
    }
}

/// Checks a reading's physical plausibility.
pub fn check_reading(field: &str, r: &Reading, v: &mut Violations) {
    if !(40..=300).contains(&r.systolic) {
        v.add(format!("{field}.systolic"), "must be 40–300 mmHg");
    }
    if !(20..=200).contains(&r.diastolic) {
        v.add(format!("{field}.diastolic"), "must be 20–200 mmHg");
    } else if r.diastolic >= r.systolic {
        v.add(format!("{field}.diastolic"), "must be below systolic");
    }
    if r.measure_time.is_none() {
        v.add(format!("{field}.measure_time"), "is required");
    }
    v.text(&format!("{field}.external_id"), &r.external_id, false, 128);
}

pub fn controlled(rules: &ChronicRules, systolic: i32, diastolic: i32) -> bool {
    systolic < rules.systolic_below && diastolic < rules.diastolic_below
}

/// What one reading did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub state: State,
    /// Uncontrolled: the clinician is alerted and the next follow-up comes sooner.
    pub uncontrolled: bool,
    pub phase_changed: bool,
}

/// Applies one reading.
pub fn apply(rules: &ChronicRules, state: State, systolic: i32, diastolic: i32) -> Change {
    if !controlled(rules, systolic, diastolic) {
        let next = State::START;
        return Change {
            state: next,
            uncontrolled: true,
            phase_changed: state.phase != Phase::Early,
        };
    }
    let mut next = State {
        consecutive: state.consecutive + 1,
        ..state
    };
    match state.phase {
        Phase::Early if next.consecutive >= rules.stable_after => {
            next = State {
                phase: Phase::Stable,
                consecutive: 0,
                cycle: 0,
            }
        }
        Phase::Stable if rules.maintenance_after > 0 && next.consecutive >= rules.maintenance_after => {
            next = State {
                phase: Phase::Maintenance,
                consecutive: 0,
                cycle: 0,
            }
        }
        _ => {}
    }
    Change {
        state: next,
        uncontrolled: false,
        phase_changed: next.phase != state.phase,
    }
}

/// Days from one follow-up to the next in `state`, never more than the maximum gap.
pub fn interval(rules: &ChronicRules, state: State) -> i32 {
    let days = match state.phase {
        Phase::Early => {
            let cycle = &rules.early_intervals_days;
            cycle
                .get(state.cycle as usize % cycle.len().max(1))
                .copied()
                .unwrap_or(1)
        }
        Phase::Stable => rules.stable_interval_days,
        Phase::Maintenance => rules.max_interval_days,
    };
    days.clamp(1, rules.max_interval_days.max(1))
}

/// The state after a follow-up was scheduled from it (the early cycle moves on).
pub fn scheduled(state: State) -> State {
    State {
        cycle: state.cycle.wrapping_add(1),
        ..state
    }
}

/// The due day after an uncontrolled reading on `reading_day`: sooner if the current one is
/// further away than the first early interval.
pub fn due_after_uncontrolled(rules: &ChronicRules, current_due: i32, reading_day: i32) -> i32 {
    current_due.min(reading_day + interval(rules, State::START))
}

/// The due days a plan enrolled on `start` gets up to `until`, when every follow-up is done on
/// its due day and `readings` (day, systolic, diastolic; in time order) arrive. The store applies
/// the same rules one event at a time; this replays them, for tests and for previews.
pub fn simulate(rules: &ChronicRules, start: i32, readings: &[(i32, i32, i32)], until: i32) -> Vec<i32> {
    let mut state = State::START;
    let mut due = start + interval(rules, state);
    state = scheduled(state);
    let mut out = Vec::new();
    let mut pending = readings.iter().peekable();
    loop {
        // Readings before the due day (or on it) come first.
        while let Some(&&(day, sys, dia)) = pending.peek() {
            if day > due {
                break;
            }
            pending.next();
            let change = apply(rules, state, sys, dia);
            state = change.state;
            if change.uncontrolled {
                due = due_after_uncontrolled(rules, due, day);
                state = scheduled(state);
            }
        }
        if due > until {
            return out;
        }
        out.push(due);
        due += interval(rules, state);
        state = scheduled(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hypertension_schedule_adapts_to_readings() {
        let rules = hypertension();
        let mut v = Violations::new();
        check_rules("t", &rules, &mut v);
        assert!(v.is_empty(), "{v:?}");
        // Enrolled on day 0. Controlled readings on days 2, 5, 9 make the patient stable on
        // day 9; an uncontrolled one on day 20 sends them back to twice a week.
        let readings = [(2, 130, 85), (5, 128, 82), (9, 135, 80), (20, 165, 102), (22, 150, 95)];
        let dues = simulate(&rules, 0, &readings, 45);
        // Early, cycling 3 and 4 days: 3, 7, then 10 (scheduled on day 7, still early). Stable
        // from day 9: weekly, 17. Day 20 uncontrolled: early again and the due day comes
        // forward from 24 to 23 (20 + 3); day 22 changes nothing (25 is later). Then 4, 3, 4 …
        assert_eq!(dues, vec![3, 7, 10, 17, 23, 27, 30, 34, 37, 41, 44]);
    }

    #[test]
    fn controlled_readings_space_follow_ups_out_to_the_maximum_and_never_beyond() {
        let rules = hypertension();
        // Daily controlled readings: stable after 3 (day 3), maintenance after 8 more (day 11).
        let readings: Vec<_> = (1..=60).map(|d| (d, 120, 80)).collect();
        let dues = simulate(&rules, 0, &readings, 100);
        // Stable from day 3 (so 3 + 7 = 10, 17); maintenance from day 11, so the gap after 17 is
        // the 30-day maximum: 47, 77.
        assert_eq!(dues, vec![3, 10, 17, 47, 77]);
        assert!(dues.windows(2).all(|w| w[1] - w[0] <= rules.max_interval_days));
    }

    #[test]
    fn implausible_readings_and_rules_are_rejected_by_field() {
        let mut v = Violations::new();
        let reading = Reading {
            systolic: 320,
            diastolic: 90,
            measure_time: None,
            ..Default::default()
        };
        check_reading("readings[0].reading", &reading, &mut v);
        let text = format!("{v:?}");
        assert!(text.contains("readings[0].reading.systolic"), "{text}");
        assert!(text.contains("readings[0].reading.measure_time"), "{text}");
        let mut v = Violations::new();
        check_reading(
            "r",
            &Reading {
                systolic: 80,
                diastolic: 90,
                ..Default::default()
            },
            &mut v,
        );
        assert!(format!("{v:?}").contains("below systolic"));
        let mut rules = hypertension();
        rules.max_interval_days = 45;
        rules.early_intervals_days = vec![0];
        let mut v = Violations::new();
        check_rules("template.chronic", &rules, &mut v);
        let text = format!("{v:?}");
        assert!(text.contains("template.chronic.max_interval_days"), "{text}");
        assert!(text.contains("template.chronic.early_intervals_days[0]"), "{text}");
    }
}
