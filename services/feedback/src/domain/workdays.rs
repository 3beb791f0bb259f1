//! The working-day calendar that case deadlines are counted on: Monday to Friday, minus the
//! configured public holidays, plus the configured make-up working days (调休, weekend days
//! worked to bridge a holiday). Days are local (the hospital's fixed UTC offset) and kept as
//! day numbers since 1970-01-01, months as `yyyymm`.

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeSet;

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    pub utc_offset_minutes: i32,
    holidays: BTreeSet<i32>,
    workdays: BTreeSet<i32>,
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch")
}

/// A day number of a date.
pub fn day_number(date: NaiveDate) -> i32 {
    (date - epoch()).num_days() as i32
}

/// The date of a day number.
pub fn date_of(day: i32) -> NaiveDate {
    epoch() + chrono::TimeDelta::days(day as i64)
}

/// Parses `YYYY-MM-DD` or an inclusive range `YYYY-MM-DD..YYYY-MM-DD` into day numbers.
pub fn parse_days(text: &str) -> Result<Vec<i32>, String> {
    let parse = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(day_number)
            .map_err(|_| format!("{s:?} is not a date like 2026-10-01"))
    };
    match text.split_once("..") {
        Some((from, to)) => {
            let (from, to) = (parse(from)?, parse(to)?);
            if to < from || to - from > 60 {
                return Err(format!("{text:?}: a range must run forwards and span at most 60 days"));
            }
            Ok((from..=to).collect())
        }
        None => Ok(vec![parse(text)?]),
    }
}

impl WorkCalendar {
    /// A calendar from configured holidays and make-up working days (each a date or a range).
    pub fn new(utc_offset_minutes: i32, holidays: &[String], workdays: &[String]) -> Result<Self, String> {
        let mut cal = Self {
            utc_offset_minutes,
            ..Default::default()
        };
        for h in holidays {
            cal.holidays.extend(parse_days(h)?);
        }
        for w in workdays {
            cal.workdays.extend(parse_days(w)?);
        }
        if let Some(day) = cal.holidays.intersection(&cal.workdays).next() {
            return Err(format!("{} is both a holiday and a make-up working day", date_of(*day)));
        }
        Ok(cal)
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

    /// The local month (`yyyymm`) of an instant.
    pub fn month_of(&self, micros: i64) -> i32 {
        let d = date_of(self.day_of(micros));
        d.year() * 100 + d.month() as i32
    }

    /// The instant a month starts.
    pub fn month_start(&self, month: i32) -> i64 {
        let date = NaiveDate::from_ymd_opt(month / 100, (month % 100) as u32, 1).unwrap_or_else(epoch);
        self.start_of(day_number(date))
    }

    pub fn is_working(&self, day: i32) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        if self.holidays.contains(&day) {
            return false;
        }
        !matches!(date_of(day).weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The `n`th working day after `day` (n ≥ 1), or for n = 0 `day` itself when it is a
    /// working day and else the next one.
    pub fn add_working_days(&self, day: i32, n: u32) -> i32 {
        let mut d = day;
        if n == 0 {
            while !self.is_working(d) {
                d += 1;
            }
            return d;
        }
        let mut left = n;
        while left > 0 {
            d += 1;
            if self.is_working(d) {
                left -= 1;
            }
        }
        d
    }

    /// The deadline `n` working days after an instant: the end of the `n`th working day after
    /// its local day (n = 0: the end of that day, or of the next working day).
    pub fn deadline(&self, at: i64, n: u32) -> i64 {
        self.start_of(self.add_working_days(self.day_of(at), n) + 1)
    }
}

/// `YYYY-MM` → `yyyymm`; `None` when it is not a month between 2000 and 2200.
pub fn parse_month(text: &str) -> Option<i32> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, i32) = (y.parse().ok()?, m.parse().ok()?);
    ((2000..=2200).contains(&y) && (1..=12).contains(&m)).then_some(y * 100 + m)
}

/// `yyyymm` → `YYYY-MM`.
pub fn format_month(month: i32) -> String {
    format!("{:04}-{:02}", month / 100, month % 100)
}

/// The month before.
pub fn previous_month(month: i32) -> i32 {
    if month % 100 == 1 { month - 100 + 11 } else { month - 1 }
}

/// The month after.
pub fn next_month(month: i32) -> i32 {
    if month % 100 == 12 { month + 100 - 11 } else { month + 1 }
}

/// Months from `from` to `to` inclusive.
pub fn months(from: i32, to: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut m = from;
    while m <= to {
        out.push(m);
        m = next_month(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> i32 {
        day_number(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    /// China's 2025 National Day and Mid-Autumn holiday: 1–8 October off; Sunday 28 September
    /// and Saturday 11 October worked instead.
    fn national_day_2025() -> WorkCalendar {
        WorkCalendar::new(
            480,
            &["2025-10-01..2025-10-08".into()],
            &["2025-09-28".into(), "2025-10-11".into()],
        )
        .unwrap()
    }

    #[test]
    fn national_day_with_make_up_days() {
        let cal = national_day_2025();
        assert!(cal.is_working(day("2025-09-28")), "a make-up Sunday is worked");
        assert!(!cal.is_working(day("2025-10-01")));
        assert!(!cal.is_working(day("2025-10-08")), "a Wednesday inside the holiday");
        assert!(cal.is_working(day("2025-10-11")), "a make-up Saturday");
        assert!(!cal.is_working(day("2025-10-12")), "an ordinary Sunday");
        // Received on Tuesday 30 September: the 1st working day after is Thursday 9 October.
        assert_eq!(cal.add_working_days(day("2025-09-30"), 1), day("2025-10-09"));
        // 3 working days after Saturday 27 September: Sun 28 (make-up), Mon 29, Tue 30.
        assert_eq!(cal.add_working_days(day("2025-09-27"), 3), day("2025-09-30"));
        // 5 working days after 30 September: 9, 10, 11 (Sat, make-up), 13, 14 October.
        assert_eq!(cal.add_working_days(day("2025-09-30"), 5), day("2025-10-14"));
        // Without the calendar the same count ends on 7 October.
        let plain = WorkCalendar::new(480, &[], &[]).unwrap();
        assert_eq!(plain.add_working_days(day("2025-09-30"), 5), day("2025-10-07"));
    }

    #[test]
    fn deadline_is_the_end_of_the_local_working_day() {
        let cal = national_day_2025();
        // 2025-09-30 15:00 in China = 07:00 UTC.
        let at = cal.start_of(day("2025-09-30")) + 15 * 3_600_000_000;
        let due = cal.deadline(at, 1);
        assert_eq!(due, cal.start_of(day("2025-10-10")), "end of 9 October, local");
        // n = 0 on a holiday moves to the end of the next working day.
        let on_holiday = cal.start_of(day("2025-10-03")) + 3_600_000_000;
        assert_eq!(cal.deadline(on_holiday, 0), cal.start_of(day("2025-10-10")));
        assert_eq!(cal.deadline(at, 0), cal.start_of(day("2025-10-01")));
    }

    #[test]
    fn bad_calendars_are_refused() {
        assert!(WorkCalendar::new(480, &["2025-13-01".into()], &[]).is_err());
        assert!(WorkCalendar::new(480, &["2025-10-08..2025-10-01".into()], &[]).is_err());
        assert!(WorkCalendar::new(480, &["2025-10-01".into()], &["2025-10-01".into()]).is_err());
    }

    #[test]
    fn months() {
        assert_eq!(parse_month("2026-10"), Some(202610));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("26-10"), None);
        assert_eq!(previous_month(202601), 202512);
        assert_eq!(next_month(202612), 202701);
        assert_eq!(super::months(202611, 202602), Vec::<i32>::new());
        assert_eq!(super::months(202611, 202702), vec![202611, 202612, 202701, 202702]);
        assert_eq!(format_month(202603), "2026-03");
        let cal = WorkCalendar::new(480, &[], &[]).unwrap();
        // 2026-09-30 20:00 UTC is 1 October 04:00 in China.
        let at = cal.month_start(202610) - 4 * 3_600_000_000 + 8 * 3_600_000_000;
        assert_eq!(cal.month_of(at), 202610);
    }
}
