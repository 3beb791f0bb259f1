//! Local days. Due dates are calendar days in the hospital's time zone (config
//! `followup.utc_offset_minutes`, China Standard Time by default); storage keeps a day as the
//! number of days since 1970-01-01, so comparisons and "tomorrow" are integer arithmetic.

use chrono::{Datelike, NaiveDate};
use hcrm_proto::types::Date;

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// Calendar arithmetic in one fixed UTC offset (China has no daylight saving time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    pub utc_offset_minutes: i32,
}

impl Calendar {
    pub fn new(utc_offset_minutes: i32) -> Self {
        Self { utc_offset_minutes }
    }

    fn offset_micros(&self) -> i64 {
        self.utc_offset_minutes as i64 * 60 * 1_000_000
    }

    /// The local day of an instant.
    pub fn day_of(&self, micros: i64) -> i32 {
        (micros + self.offset_micros()).div_euclid(MICROS_PER_DAY) as i32
    }

    /// The instant a local day starts.
    pub fn start_of(&self, day: i32) -> i64 {
        day as i64 * MICROS_PER_DAY - self.offset_micros()
    }

    /// Local minute of the day (0–1439) of an instant.
    pub fn minute_of_day(&self, micros: i64) -> i32 {
        ((micros + self.offset_micros()).rem_euclid(MICROS_PER_DAY) / 60_000_000) as i32
    }

    /// Local hour (0–23) of an instant.
    pub fn hour_of(&self, micros: i64) -> i32 {
        self.minute_of_day(micros) / 60
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch")
}

/// A day number as a proto date.
pub fn to_date(day: i32) -> Date {
    let d = epoch() + chrono::Days::new(0) + chrono::TimeDelta::days(day as i64);
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// A proto date as a day number; `None` when it is not a real date between 1900 and 2200.
pub fn from_date(date: &Date) -> Option<i32> {
    if !(1900..=2200).contains(&date.year) {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(
        date.year,
        u32::try_from(date.month).ok()?,
        u32::try_from(date.day).ok()?,
    )?;
    Some((d - epoch()).num_days() as i32)
}

/// The earliest instant at or after `at` outside quiet hours `[start, end)` (local minutes; the
/// window may wrap midnight, e.g. 21:00–08:00).
pub fn outside_quiet_hours(cal: &Calendar, at: i64, start: i32, end: i32) -> i64 {
    if start == end {
        return at;
    }
    let minute = cal.minute_of_day(at);
    let quiet = if start < end {
        minute >= start && minute < end
    } else {
        minute >= start || minute < end
    };
    if !quiet {
        return at;
    }
    let day = cal.day_of(at);
    let end_today = cal.start_of(day) + end as i64 * 60_000_000;
    if end_today > at {
        end_today
    } else {
        end_today + MICROS_PER_DAY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcrm_kit::time::parse_hhmm;

    #[test]
    fn local_days_follow_china_time() {
        let cal = Calendar::new(480);
        // 2026-11-23T16:30:00Z is 00:30 on the 24th in Beijing.
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T16:30:00Z")
            .unwrap()
            .timestamp_micros();
        let day = cal.day_of(at);
        assert_eq!(
            to_date(day),
            Date {
                year: 2026,
                month: 11,
                day: 24
            }
        );
        assert_eq!(from_date(&to_date(day)), Some(day));
        assert_eq!(cal.hour_of(at), 0);
        assert_eq!(cal.start_of(day), at - 30 * 60_000_000);
        assert_eq!(
            from_date(&Date {
                year: 2026,
                month: 2,
                day: 30
            }),
            None
        );
    }

    #[test]
    fn quiet_hours_push_a_notice_to_their_end() {
        let cal = Calendar::new(0);
        let day = 20_000;
        let at = |h: i64, m: i64| cal.start_of(day) + (h * 60 + m) * 60_000_000;
        let (start, end) = (parse_hhmm("21:00").unwrap(), parse_hhmm("08:00").unwrap());
        assert_eq!(outside_quiet_hours(&cal, at(12, 0), start, end), at(12, 0));
        assert_eq!(outside_quiet_hours(&cal, at(7, 10), start, end), at(8, 0));
        assert_eq!(
            outside_quiet_hours(&cal, at(22, 0), start, end),
            at(8, 0) + MICROS_PER_DAY
        );
        let (start, end) = (parse_hhmm("12:00").unwrap(), parse_hhmm("14:00").unwrap());
        assert_eq!(outside_quiet_hours(&cal, at(13, 0), start, end), at(14, 0));
    }
}
