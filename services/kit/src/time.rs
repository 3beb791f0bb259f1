//! Time in storage is UTC microseconds since the Unix epoch (an integer on both backends);
//! conversion to `google.protobuf.Timestamp` happens at the edge.

use chrono::{DateTime, Utc};

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Converts stored microseconds into a protobuf timestamp.
pub fn to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Converts an optional stored value into an optional timestamp.
pub fn to_timestamp_opt(micros: Option<i64>) -> Option<prost_types::Timestamp> {
    micros.map(to_timestamp)
}

/// Converts a protobuf timestamp into microseconds; `None` when it is out of range.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    // Years 1900–2200 are enough for a hospital and keep arithmetic far from overflow.
    if !(-2_208_988_800..=7_258_118_400).contains(&ts.seconds) {
        return None;
    }
    Some(ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000)
}

/// RFC 3339 text for a stored time, for JSON payloads and logs.
pub fn rfc3339(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// Parses local "HH:MM" to minutes of the day.
pub fn parse_hhmm(text: &str) -> Option<i32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trip_keeps_microseconds() {
        let micros = 1_764_000_000_123_456;
        assert_eq!(from_timestamp(&to_timestamp(micros)), Some(micros));
        assert_eq!(from_timestamp(&to_timestamp(-1)), Some(-1));
    }

    #[test]
    fn timestamps_out_of_range_are_rejected() {
        let bad = prost_types::Timestamp { seconds: 0, nanos: -1 };
        assert_eq!(from_timestamp(&bad), None);
        let far = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(from_timestamp(&far), None);
    }

    #[test]
    fn hhmm_is_minutes_of_the_day() {
        assert_eq!(parse_hhmm("21:00"), Some(21 * 60));
        assert_eq!(parse_hhmm("08:00"), Some(8 * 60));
        assert_eq!(parse_hhmm("12:30"), Some(12 * 60 + 30));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("12:60"), None);
        assert_eq!(parse_hhmm("noon"), None);
    }
}
