//! Appointment wishes: a revisit or expert booking a patient asked for on a follow-up call,
//! checked here and handed to the patients service's booking hand-off through the outbox.

use super::calendar::{Calendar, from_date};
use hcrm_kit::validate::Violations;
use hcrm_proto::followup::{AppointmentKind, AppointmentWish};

/// The most a wish's reason may say (the patients service's limit).
pub const MAX_REASON: usize = 500;

/// Department codes of the patients service: 1–64 lower-case letters, digits, `-` or `_`.
pub fn is_department(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Trims the texts and lower-cases the department, as the patients service reads them.
pub fn normalize(w: &mut AppointmentWish) {
    w.department = w.department.trim().to_lowercase();
    w.doctor = w.doctor.trim().to_string();
    w.reason = w.reason.trim().to_string();
}

/// Checks a normalised wish at `field` (`record.appointment`); `today` is the local day the
/// call is recorded. Returns the earliest and latest days when they are valid.
pub fn check(field: &str, w: &AppointmentWish, today: i32, v: &mut Violations) -> (Option<i32>, Option<i32>) {
    let f = |name: &str| format!("{field}.{name}");
    match AppointmentKind::try_from(w.kind) {
        Ok(AppointmentKind::Revisit | AppointmentKind::Expert) => {}
        _ => v.add(f("kind"), "is required: REVISIT or EXPERT"),
    }
    if !w.department.is_empty() && !is_department(&w.department) {
        v.add(
            f("department"),
            "must be a department code: 1–64 letters, digits, - or _",
        );
    }
    if !w.doctor.is_empty() && hcrm_kit::resource::parse_name(&f("doctor"), &w.doctor, "doctors").is_err() {
        v.add(f("doctor"), "must look like doctors/{id}");
    }
    let mut day = |name: &str, date: Option<&hcrm_proto::types::Date>| {
        let date = date?;
        match from_date(date) {
            None => {
                v.add(f(name), "must be a real date between 1900 and 2200");
                None
            }
            Some(d) if d < today => {
                v.add(f(name), "is in the past");
                None
            }
            Some(d) => Some(d),
        }
    };
    let earliest = day("earliest_date", w.earliest_date.as_ref());
    let latest = day("latest_date", w.latest_date.as_ref());
    if let (Some(e), Some(l)) = (earliest, latest)
        && l < e
    {
        v.add(f("latest_date"), "must not be before earliest_date");
    }
    v.text(&f("reason"), &w.reason, false, MAX_REASON);
    (earliest, latest)
}

/// The booking window `[start, end)` of a wish's days in the hospital's time zone: from the
/// start of the earliest day, never before `now` (a day that began already, or a send retried
/// later), to the end of the latest day. A wish without days asks from `now` on; one with only
/// a latest day leaves the start open.
pub fn window(cal: &Calendar, earliest: Option<i32>, latest: Option<i32>, now: i64) -> (Option<i64>, Option<i64>) {
    let end = latest.map(|d| cal.start_of(d + 1));
    let start = match earliest {
        Some(d) => Some(cal.start_of(d).max(now)),
        None if end.is_none() => Some(now),
        None => None,
    };
    (start, end)
}

/// The short name of a kind, as queued deliveries say it.
pub fn kind_key(kind: i32) -> &'static str {
    match AppointmentKind::try_from(kind) {
        Ok(AppointmentKind::Expert) => "expert",
        Ok(AppointmentKind::Revisit) => "revisit",
        _ => "unspecified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::to_date;

    fn fields(v: Violations) -> Vec<String> {
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(hcrm_kit::ApiError::InvalidArgument(list)) => list.into_iter().map(|f| f.field).collect(),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_wish_is_checked_field_by_field() {
        let today = 20_600;
        let mut good = AppointmentWish {
            kind: AppointmentKind::Revisit as i32,
            department: " Card ".into(),
            doctor: "doctors/d1".into(),
            earliest_date: Some(to_date(today)),
            latest_date: Some(to_date(today + 7)),
            reason: " 复查血压 ".into(),
        };
        normalize(&mut good);
        assert_eq!((good.department.as_str(), good.reason.as_str()), ("card", "复查血压"));
        let mut v = Violations::new();
        assert_eq!(
            check("record.appointment", &good, today, &mut v),
            (Some(today), Some(today + 7))
        );
        assert!(fields(v).is_empty());

        let bad = AppointmentWish {
            kind: 0,
            department: "card iology".into(),
            doctor: "dr-wang".into(),
            earliest_date: Some(to_date(today + 3)),
            latest_date: Some(to_date(today + 1)),
            reason: "x".repeat(501),
        };
        let mut v = Violations::new();
        check("record.appointment", &bad, today, &mut v);
        assert_eq!(
            fields(v),
            [
                "record.appointment.kind",
                "record.appointment.department",
                "record.appointment.doctor",
                "record.appointment.latest_date",
                "record.appointment.reason",
            ]
        );
        let past = AppointmentWish {
            kind: AppointmentKind::Expert as i32,
            earliest_date: Some(to_date(today - 1)),
            latest_date: Some(hcrm_proto::types::Date {
                year: 2026,
                month: 2,
                day: 30,
            }),
            ..Default::default()
        };
        let mut v = Violations::new();
        check("record.appointment", &past, today, &mut v);
        assert_eq!(
            fields(v),
            ["record.appointment.earliest_date", "record.appointment.latest_date"]
        );
    }

    #[test]
    fn the_window_starts_no_earlier_than_now_and_ends_after_the_latest_day() {
        let cal = Calendar::new(480);
        let day = 20_600;
        let now = cal.start_of(day) + 10 * 3_600_000_000;
        assert_eq!(
            window(&cal, Some(day), Some(day), now),
            (Some(now), Some(cal.start_of(day + 1)))
        );
        assert_eq!(
            window(&cal, Some(day + 2), None, now),
            (Some(cal.start_of(day + 2)), None)
        );
        assert_eq!(
            window(&cal, None, Some(day + 3), now),
            (None, Some(cal.start_of(day + 4)))
        );
        assert_eq!(window(&cal, None, None, now), (Some(now), None));
    }
}
