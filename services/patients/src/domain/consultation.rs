//! Consultations of the guide desk: what a valid one is, how the caller's phone is masked, what
//! its timeline entry says, and how start times fall into local hours and weekdays.

use super::patient::is_code;
use hcrm_kit::validate::{Violations, normalize_phone};
use hcrm_proto::patients::{Consultation, ConsultationCategory, ConsultationChannel};

/// Earliest accepted start time (2000-01-01T00:00:00Z): keeps local-hour arithmetic on
/// non-negative numbers.
pub const EARLIEST: i64 = 946_684_800_000_000;

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Trims free text and puts phone numbers in their canonical form.
pub fn normalize(c: &mut Consultation) {
    for phone in [&mut c.caller_phone, &mut c.referral_phone] {
        if let Some(n) = normalize_phone(phone) {
            *phone = n;
        }
    }
    c.caller_name = c.caller_name.trim().to_string();
    c.question = c.question.trim().to_string();
    c.answer = c.answer.trim().to_string();
    c.follow_up_note = c.follow_up_note.trim().to_string();
    c.referral_department = c.referral_department.trim().to_string();
}

/// Clears what the server sets.
pub fn clear_output_only(c: &mut Consultation) {
    c.name.clear();
    c.handled_by.clear();
    c.masked = false;
    c.create_time = None;
    c.interaction.clear();
}

/// Whether `name` looks like `{collection}/{id}`.
pub fn is_name(name: &str, collection: &str) -> bool {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|id| {
            !id.is_empty() && id.len() <= 64 && !id.contains('/') && id.chars().all(|c| c.is_ascii_graphic())
        })
}

/// Checks a consultation to be created; `start` is its effective start time.
pub fn validate(c: &Consultation, prefix: &str, start: Option<i64>, now: i64, v: &mut Violations) {
    let f = |field: &str| format!("{prefix}.{field}");
    if !c.patient.is_empty() && !is_name(&c.patient, "patients") {
        v.add(f("patient"), "must look like patients/{id}");
    }
    if c.caller_phone.is_empty() {
        if c.patient.is_empty() {
            v.add(f("caller_phone"), "is required when the caller is not a known patient");
        }
    } else {
        v.phone(&f("caller_phone"), &c.caller_phone);
    }
    v.text(&f("caller_name"), &c.caller_name, false, 64);
    v.enum_value::<ConsultationChannel>(&f("channel"), c.channel, true);
    v.enum_value::<ConsultationCategory>(&f("category"), c.category, true);
    v.text(&f("question"), &c.question, true, 2000);
    v.text(&f("answer"), &c.answer, false, 4000);
    if !c.referral_department.is_empty() && !is_code(&c.referral_department, 64) {
        v.add(
            f("referral_department"),
            "must be a department code: 1–64 lower-case letters, digits, - or _",
        );
    }
    if !c.referral_doctor.is_empty() && !is_name(&c.referral_doctor, "doctors") {
        v.add(f("referral_doctor"), "must look like doctors/{id}");
    }
    if !c.referral_phone.is_empty() {
        v.phone(&f("referral_phone"), &c.referral_phone);
    }
    v.text(&f("follow_up_note"), &c.follow_up_note, false, 1000);
    if !c.follow_up_needed && !c.follow_up_note.is_empty() {
        v.add(f("follow_up_note"), "is only allowed with follow_up_needed");
    }
    match (c.start_time.is_some(), start) {
        (true, None) => v.add(f("start_time"), "is out of range"),
        (_, Some(t)) if t < EARLIEST => v.add(f("start_time"), "must not be before 2000"),
        (_, Some(t)) if t > now + DAY_MICROS => v.add(f("start_time"), "must not be more than a day in the future"),
        _ => {}
    }
    if !(0..=86_400).contains(&c.duration_seconds) {
        v.add(f("duration_seconds"), "must be between 0 and 86400");
    }
}

/// Masks the caller's phone for readers who may not see protected data (`138****8000`).
pub fn mask(c: &mut Consultation) {
    if !c.caller_phone.is_empty() {
        c.caller_phone = super::identity::mask(&c.caller_phone, 3, 4);
    }
    c.masked = true;
}

/// The last four digits of a phone number; empty when it has fewer.
pub fn last4(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 4 {
        digits[digits.len() - 4..].iter().collect()
    } else {
        String::new()
    }
}

/// Short name of a category (`EXAM_RESULTS`).
pub fn category_name(c: i32) -> &'static str {
    ConsultationCategory::try_from(c)
        .unwrap_or(ConsultationCategory::Other)
        .as_str_name()
        .trim_start_matches("CONSULTATION_CATEGORY_")
}

/// Short name of a channel (`HOTLINE`).
pub fn channel_name(c: i32) -> &'static str {
    ConsultationChannel::try_from(c)
        .unwrap_or(ConsultationChannel::Other)
        .as_str_name()
        .trim_start_matches("CONSULTATION_CHANNEL_")
}

/// The one-line summary of the timeline entry: channel, category and the start of the question.
pub fn timeline_summary(c: &Consultation) -> String {
    let question: String = c.question.chars().take(300).collect();
    let ellipsis = if c.question.chars().count() > 300 { "…" } else { "" };
    format!(
        "{} consultation ({}): {question}{ellipsis}",
        channel_name(c.channel).to_lowercase(),
        category_name(c.category).to_lowercase().replace('_', " ")
    )
}

/// The SQL bucket of a start time: hours since the epoch in local time, modulo one week (168).
/// `hour_of_week(t, off) == ((t / 1e6 + off * 60) / 3600) % 168` for `t >= EARLIEST`.
pub fn hour_of_week(micros: i64, utc_offset_minutes: i32) -> i64 {
    ((micros / 1_000_000 + i64::from(utc_offset_minutes) * 60) / 3600) % 168
}

/// The local hour of day (0–23) and weekday (0 Monday … 6 Sunday) of an `hour_of_week` bucket.
/// Hour 0 of the epoch was a Thursday (weekday 3).
pub fn split_hour_of_week(bucket: i64) -> (usize, usize) {
    let bucket = bucket.rem_euclid(168);
    ((bucket % 24) as usize, ((bucket / 24 + 3) % 7) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike};

    fn consultation() -> Consultation {
        Consultation {
            caller_phone: "138 0013 8000".into(),
            channel: ConsultationChannel::Hotline as i32,
            category: ConsultationCategory::ExamResults as i32,
            question: " 胸部CT结果什么时候出？ ".into(),
            ..Default::default()
        }
    }

    fn fields(c: &Consultation, start: Option<i64>) -> Vec<String> {
        let mut v = Violations::new();
        validate(c, "consultation", start, EARLIEST * 2, &mut v);
        match v.finish() {
            Ok(()) => vec![],
            Err(hcrm_kit::ApiError::InvalidArgument(list)) => list.into_iter().map(|f| f.field).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_valid_consultation_is_normalised() {
        let mut c = consultation();
        normalize(&mut c);
        assert_eq!(c.caller_phone, "13800138000");
        assert_eq!(c.question, "胸部CT结果什么时候出？");
        assert!(fields(&c, None).is_empty());
    }

    #[test]
    fn wrong_fields_are_named() {
        let c = Consultation {
            patient: "people/1".into(),
            caller_phone: "12ab".into(),
            channel: 99,
            category: 0,
            question: String::new(),
            referral_department: "Cardiology".into(),
            referral_doctor: "doctor-1".into(),
            follow_up_note: "call back".into(),
            duration_seconds: -1,
            ..Default::default()
        };
        assert_eq!(
            fields(&c, Some(1)),
            [
                "consultation.patient",
                "consultation.caller_phone",
                "consultation.channel",
                "consultation.category",
                "consultation.question",
                "consultation.referral_department",
                "consultation.referral_doctor",
                "consultation.follow_up_note",
                "consultation.start_time",
                "consultation.duration_seconds",
            ]
        );
        let unknown = Consultation {
            caller_phone: String::new(),
            ..consultation()
        };
        assert_eq!(fields(&unknown, None), ["consultation.caller_phone"]);
        let known = Consultation {
            patient: "patients/abc".into(),
            caller_phone: String::new(),
            ..consultation()
        };
        assert!(fields(&known, None).is_empty());
    }

    #[test]
    fn phones_are_masked_keeping_the_ends() {
        let mut c = Consultation {
            caller_phone: "13800138000".into(),
            ..Default::default()
        };
        mask(&mut c);
        assert_eq!(c.caller_phone, "138****8000");
        assert!(c.masked);
        assert_eq!(last4("+86 138-0013-8000"), "8000");
        assert_eq!(last4("123"), "");
    }

    #[test]
    fn local_hours_and_weekdays_follow_the_offset() {
        // 2026-11-24 (a Tuesday) 15:30 UTC is 23:30 in China (UTC+8), still Tuesday.
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 15, 30, 0).unwrap();
        let micros = t.timestamp_micros();
        assert_eq!(split_hour_of_week(hour_of_week(micros, 480)), (23, 1));
        assert_eq!(split_hour_of_week(hour_of_week(micros, 0)), (15, 1));
        // 16:30 UTC is 00:30 on Wednesday in China.
        let later = micros + 3600 * 1_000_000;
        assert_eq!(split_hour_of_week(hour_of_week(later, 480)), (0, 2));
        // New York (UTC−5): 10:30 on Tuesday.
        assert_eq!(split_hour_of_week(hour_of_week(micros, -300)), (10, 1));
        // Every hour of a week agrees with chrono.
        for h in 0..168 {
            let at = micros + h * 3600 * 1_000_000;
            let local = chrono::DateTime::from_timestamp_micros(at).unwrap() + chrono::Duration::minutes(480);
            let (hour, weekday) = split_hour_of_week(hour_of_week(at, 480));
            assert_eq!(hour as u32, local.hour());
            assert_eq!(weekday as u32, local.weekday().num_days_from_monday());
        }
    }

    #[test]
    fn the_timeline_summary_names_channel_and_category() {
        let c = consultation();
        assert_eq!(
            timeline_summary(&c),
            "hotline consultation (exam results):  胸部CT结果什么时候出？ "
        );
        let long = Consultation {
            question: "问".repeat(400),
            ..consultation()
        };
        assert!(timeline_summary(&long).chars().count() <= 500);
    }
}
