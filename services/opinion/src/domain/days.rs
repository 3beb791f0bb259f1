//! Days of the reputation trend: local `yyyymmdd` integers in the hospital's time zone.

use chrono::{Datelike, NaiveDate};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The local day of `micros` (UTC) as `yyyymmdd`.
pub fn day_of(micros: i64, utc_offset_minutes: i32) -> i64 {
    let local = micros + i64::from(utc_offset_minutes) * 60_000_000;
    let days = local.div_euclid(MICROS_PER_DAY);
    let date = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days);
    ymd(date)
}

pub fn ymd(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day())
}

pub fn date_of(day: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt((day / 10_000) as i32, ((day / 100) % 100) as u32, (day % 100) as u32)
}

/// The UTC instant a local day starts.
pub fn start_of(date: NaiveDate, utc_offset_minutes: i32) -> i64 {
    let days = (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days();
    days * MICROS_PER_DAY - i64::from(utc_offset_minutes) * 60_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_follow_the_hospital_time_zone() {
        // 2026-06-01T17:00Z is 2026-06-02 01:00 in China.
        let t = chrono::DateTime::parse_from_rfc3339("2026-06-01T17:00:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(day_of(t, 480), 20260602);
        assert_eq!(day_of(t, 0), 20260601);
        let d = date_of(20260602).unwrap();
        assert_eq!(start_of(d, 480), t - 3_600_000_000);
        assert!(date_of(20261340).is_none());
    }
}
