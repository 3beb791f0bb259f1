//! The directory's rules: validation of departments, doctors, weekly patterns and exceptions,
//! local dates and times, how patterns and exceptions make concrete sessions, and how a query
//! matches a department. No I/O.

use super::patient::{check_external_id, date_of, is_code};
use chrono::{Datelike, NaiveDate};
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::{
    ClinicKind, ClinicPattern, DaySession, Department, Doctor, DoctorTitle, ScheduleException, ScheduleExceptionKind,
    Weekday,
};
use hcrm_proto::types::Date;

pub const DEPARTMENT_PATHS: &[&str] = &[
    "display_name",
    "english_name",
    "treats",
    "treats_en",
    "location",
    "phone",
    "archived",
];

pub const DOCTOR_PATHS: &[&str] = &[
    "display_name",
    "title",
    "expert",
    "specialties",
    "departments",
    "office_phone",
    "bio",
    "archived",
];

/// Day number of an open `valid_from`.
pub const OPEN_FROM: i64 = -1_000_000;
/// Day number of an open `valid_until`.
pub const OPEN_UNTIL: i64 = 1_000_000;

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MINUTE;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")
}

/// Days since 1970-01-01 of a valid date.
pub fn day_number(d: NaiveDate) -> i64 {
    (d - epoch()).num_days()
}

/// The date of a day number.
pub fn date_of_day(day: i64) -> NaiveDate {
    epoch() + chrono::Duration::days(day)
}

pub fn to_date(day: i64) -> Date {
    let d = date_of_day(day);
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// ISO weekday (Monday 1 … Sunday 7) of a day number.
pub fn weekday_of(day: i64) -> i32 {
    date_of_day(day).weekday().number_from_monday() as i32
}

/// The local day number and minute of the day of an instant.
pub fn local_day_minute(micros: i64, offset_minutes: i32) -> (i64, i32) {
    let local = micros + i64::from(offset_minutes) * MINUTE;
    (local.div_euclid(DAY), (local.rem_euclid(DAY) / MINUTE) as i32)
}

/// The instant of a local day and minute.
pub fn instant(day: i64, minute: i32, offset_minutes: i32) -> i64 {
    day * DAY + i64::from(minute) * MINUTE - i64::from(offset_minutes) * MINUTE
}

/// "HH:MM" of minutes after midnight.
pub fn hhmm(minutes: i32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Lower-cases, trims and collapses white space: the form specialties are matched in.
pub fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn clean_list(items: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    items
        .iter_mut()
        .for_each(|t| *t = t.split_whitespace().collect::<Vec<_>>().join(" "));
    items.retain(|t| !t.is_empty() && seen.insert(fold(t)));
}

fn check_list(v: &mut Violations, field: &str, items: &[String], max_items: usize, max_len: usize) {
    if items.len() > max_items {
        v.add(field, format!("at most {max_items} entries"));
    }
    for (i, t) in items.iter().enumerate() {
        v.text(&format!("{field}[{i}]"), t, true, max_len);
    }
}

fn check_optional_external(v: &mut Violations, prefix: &str, source: &str, id: &str) {
    if !source.is_empty() || !id.is_empty() {
        check_external_id(source, id, prefix, v);
    }
}

fn check_code(v: &mut Violations, field: &str, code: &str, required: bool) {
    if code.is_empty() {
        if required {
            v.add(field, "is required");
        }
    } else if !is_code(code, 64) {
        v.add(
            field,
            "must be a department code: 1–64 lower-case letters, digits, - or _",
        );
    }
}

pub fn normalize_department(d: &mut Department) {
    d.code = d.code.trim().to_lowercase();
    d.display_name = d.display_name.trim().to_string();
    d.english_name = d.english_name.split_whitespace().collect::<Vec<_>>().join(" ");
    clean_list(&mut d.treats);
    clean_list(&mut d.treats_en);
    if let Some(n) = hcrm_kit::validate::normalize_phone(&d.phone) {
        d.phone = n;
    }
    if let Some(l) = &mut d.location {
        l.building = l.building.trim().to_string();
        l.floor = l.floor.trim().to_string();
        l.room = l.room.trim().to_string();
    }
}

pub fn clear_department_output(d: &mut Department) {
    d.name.clear();
    d.etag.clear();
    d.create_time = None;
    d.update_time = None;
    d.archive_time = None;
}

pub fn validate_department(d: &Department, prefix: &str, v: &mut Violations) {
    check_code(v, &format!("{prefix}.code"), &d.code, true);
    v.text(&format!("{prefix}.display_name"), &d.display_name, true, 64);
    v.text(&format!("{prefix}.english_name"), &d.english_name, false, 128);
    check_list(v, &format!("{prefix}.treats"), &d.treats, 200, 64);
    check_list(v, &format!("{prefix}.treats_en"), &d.treats_en, 200, 128);
    if let Some(l) = &d.location {
        v.text(&format!("{prefix}.location.building"), &l.building, false, 64);
        v.text(&format!("{prefix}.location.floor"), &l.floor, false, 16);
        v.text(&format!("{prefix}.location.room"), &l.room, false, 64);
    }
    if !d.phone.is_empty() {
        v.phone(&format!("{prefix}.phone"), &d.phone);
    }
}

pub fn apply_department_mask(dst: &mut Department, src: &Department, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "display_name" => dst.display_name = src.display_name.clone(),
            "english_name" => dst.english_name = src.english_name.clone(),
            "treats" => dst.treats = src.treats.clone(),
            "treats_en" => dst.treats_en = src.treats_en.clone(),
            "location" => dst.location = src.location.clone(),
            "phone" => dst.phone = src.phone.clone(),
            "archived" => dst.archived = src.archived,
            _ => {}
        }
    }
}

pub fn normalize_doctor(d: &mut Doctor) {
    d.display_name = d.display_name.trim().to_string();
    clean_list(&mut d.specialties);
    d.departments.iter_mut().for_each(|c| *c = c.trim().to_lowercase());
    let mut seen = std::collections::HashSet::new();
    d.departments.retain(|c| seen.insert(c.clone()));
    if let Some(n) = hcrm_kit::validate::normalize_phone(&d.office_phone) {
        d.office_phone = n;
    }
    d.bio = d.bio.trim().to_string();
    d.name_pinyin = super::names::name_keys(&d.display_name).spaced;
}

pub fn clear_doctor_output(d: &mut Doctor) {
    d.name.clear();
    d.etag.clear();
    d.create_time = None;
    d.update_time = None;
    d.archive_time = None;
}

pub fn validate_doctor(d: &Doctor, prefix: &str, v: &mut Violations) {
    v.text(&format!("{prefix}.display_name"), &d.display_name, true, 64);
    v.enum_value::<DoctorTitle>(&format!("{prefix}.title"), d.title, true);
    check_list(v, &format!("{prefix}.specialties"), &d.specialties, 50, 64);
    if d.departments.is_empty() {
        v.add(format!("{prefix}.departments"), "at least one department is required");
    } else if d.departments.len() > 10 {
        v.add(format!("{prefix}.departments"), "at most 10 departments");
    }
    for (i, c) in d.departments.iter().enumerate() {
        check_code(v, &format!("{prefix}.departments[{i}]"), c, true);
    }
    if !d.office_phone.is_empty() {
        v.phone(&format!("{prefix}.office_phone"), &d.office_phone);
    }
    v.text(&format!("{prefix}.bio"), &d.bio, false, 2000);
    check_optional_external(v, prefix, &d.source_system, &d.external_id);
}

pub fn apply_doctor_mask(dst: &mut Doctor, src: &Doctor, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "display_name" => dst.display_name = src.display_name.clone(),
            "title" => dst.title = src.title,
            "expert" => dst.expert = src.expert,
            "specialties" => dst.specialties = src.specialties.clone(),
            "departments" => dst.departments = src.departments.clone(),
            "office_phone" => dst.office_phone = src.office_phone.clone(),
            "bio" => dst.bio = src.bio.clone(),
            "archived" => dst.archived = src.archived,
            _ => {}
        }
    }
}

fn check_date(v: &mut Violations, field: &str, d: Option<&Date>, required: bool) -> Option<i64> {
    match d {
        None => {
            if required {
                v.add(field, "is required");
            }
            None
        }
        Some(d) => match date_of(d) {
            Some(nd) if (1900..=2200).contains(&nd.year()) => Some(day_number(nd)),
            _ => {
                v.add(field, "must be a real date between 1900 and 2200");
                None
            }
        },
    }
}

/// Checks "HH:MM" start and end; returns their minutes when both are right.
fn check_times(v: &mut Violations, prefix: &str, start: &str, end: &str) -> Option<(i32, i32)> {
    let parse = |v: &mut Violations, field: String, text: &str| {
        if text.is_empty() {
            v.add(field, "is required");
            None
        } else {
            let m = hcrm_kit::time::parse_hhmm(text).filter(|_| text.len() == 5);
            if m.is_none() {
                v.add(field, "must be a local time \"HH:MM\"");
            }
            m
        }
    };
    let s = parse(v, format!("{prefix}.start_time"), start);
    let e = parse(v, format!("{prefix}.end_time"), end);
    let (s, e) = (s?, e?);
    if e <= s {
        v.add(format!("{prefix}.end_time"), "must be after start_time on the same day");
        return None;
    }
    Some((s, e))
}

fn check_doctor_ref(v: &mut Violations, prefix: &str, doctor: &str, external: &str, source: &str) {
    if doctor.is_empty() && external.is_empty() {
        v.add(format!("{prefix}.doctor"), "is required (or doctor_external_id)");
    }
    if doctor.is_empty() && !external.is_empty() && source.is_empty() {
        v.add(
            format!("{prefix}.source_system"),
            "is required to find the doctor by doctor_external_id",
        );
    }
}

/// A weekly pattern as the schedule expansion uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternRule {
    pub id: String,
    pub doctor_id: String,
    pub department: String,
    pub weekday: i32,
    pub session: i32,
    pub start: i32,
    pub end: i32,
    pub kind: i32,
    pub location: String,
    pub quota: i32,
    pub valid_from: i64,
    pub valid_until: i64,
}

pub fn normalize_pattern(p: &mut ClinicPattern) {
    p.department = p.department.trim().to_lowercase();
    p.location = p.location.trim().to_string();
    p.doctor = p.doctor.trim().to_string();
    p.doctor_external_id = p.doctor_external_id.trim().to_string();
    p.name.clear();
    p.create_time = None;
    p.update_time = None;
}

/// Checks a weekly pattern (not its doctor's existence); the rule when it is right. With
/// `need_doctor` the doctor reference is required (not in a doctor's pattern set).
pub fn validate_pattern(p: &ClinicPattern, prefix: &str, need_doctor: bool, v: &mut Violations) -> Option<PatternRule> {
    let before = v.len();
    if need_doctor {
        check_doctor_ref(v, prefix, &p.doctor, &p.doctor_external_id, &p.source_system);
        check_optional_external(v, prefix, &p.source_system, &p.external_id);
    }
    check_code(v, &format!("{prefix}.department"), &p.department, true);
    v.enum_value::<Weekday>(&format!("{prefix}.weekday"), p.weekday, true);
    v.enum_value::<DaySession>(&format!("{prefix}.session"), p.session, true);
    v.enum_value::<ClinicKind>(&format!("{prefix}.kind"), p.kind, true);
    let times = check_times(v, prefix, &p.start_time, &p.end_time);
    v.text(&format!("{prefix}.location"), &p.location, false, 128);
    if !(0..=10_000).contains(&p.quota) {
        v.add(format!("{prefix}.quota"), "must be between 0 and 10000");
    }
    let from = check_date(v, &format!("{prefix}.valid_from"), p.valid_from.as_ref(), false);
    let until = check_date(v, &format!("{prefix}.valid_until"), p.valid_until.as_ref(), false);
    if let (Some(f), Some(u)) = (from, until)
        && u < f
    {
        v.add(format!("{prefix}.valid_until"), "must not be before valid_from");
    }
    if v.len() > before {
        return None;
    }
    let (start, end) = times?;
    Some(PatternRule {
        id: String::new(),
        doctor_id: String::new(),
        department: p.department.clone(),
        weekday: p.weekday,
        session: p.session,
        start,
        end,
        kind: p.kind,
        location: p.location.clone(),
        quota: p.quota,
        valid_from: from.unwrap_or(OPEN_FROM),
        valid_until: until.unwrap_or(OPEN_UNTIL),
    })
}

/// An exception as the schedule expansion uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionRule {
    pub id: String,
    pub doctor_id: String,
    pub day: i64,
    pub session: i32,
    pub kind: i32,
    pub department: String,
    pub start: i32,
    pub end: i32,
    pub clinic_kind: i32,
    pub location: String,
    pub quota: i32,
}

pub fn normalize_exception(e: &mut ScheduleException) {
    e.department = e.department.trim().to_lowercase();
    e.location = e.location.trim().to_string();
    e.reason = e.reason.trim().to_string();
    e.doctor = e.doctor.trim().to_string();
    e.doctor_external_id = e.doctor_external_id.trim().to_string();
    e.name.clear();
    e.create_time = None;
}

/// Checks an exception (not its doctor's existence); the rule when it is right.
pub fn validate_exception(e: &ScheduleException, prefix: &str, v: &mut Violations) -> Option<ExceptionRule> {
    let before = v.len();
    let f = |name: &str| format!("{prefix}.{name}");
    check_doctor_ref(v, prefix, &e.doctor, &e.doctor_external_id, &e.source_system);
    check_optional_external(v, prefix, &e.source_system, &e.external_id);
    let day = check_date(v, &f("date"), e.date.as_ref(), true);
    v.enum_value::<ScheduleExceptionKind>(&f("kind"), e.kind, true);
    v.enum_value::<DaySession>(&f("session"), e.session, false);
    v.text(&f("reason"), &e.reason, false, 256);
    let extra = e.kind == ScheduleExceptionKind::Extra as i32;
    let mut times = None;
    if extra {
        if e.session == 0 {
            v.add(f("session"), "is required for an extra session");
        }
        check_code(v, &f("department"), &e.department, true);
        times = check_times(v, prefix, &e.start_time, &e.end_time);
        v.enum_value::<ClinicKind>(&f("clinic_kind"), e.clinic_kind, true);
        v.text(&f("location"), &e.location, false, 128);
        if !(0..=10_000).contains(&e.quota) {
            v.add(f("quota"), "must be between 0 and 10000");
        }
    } else {
        if e.kind == ScheduleExceptionKind::Leave as i32 && !e.department.is_empty() {
            v.add(
                f("department"),
                "must be empty for leave (leave covers every department)",
            );
        } else {
            check_code(v, &f("department"), &e.department, false);
        }
        for (name, set) in [
            ("start_time", !e.start_time.is_empty()),
            ("end_time", !e.end_time.is_empty()),
            ("clinic_kind", e.clinic_kind != 0),
            ("location", !e.location.is_empty()),
            ("quota", e.quota != 0),
        ] {
            if set {
                v.add(f(name), "is only for extra sessions");
            }
        }
    }
    if v.len() > before {
        return None;
    }
    let (start, end) = times.unwrap_or((0, 0));
    Some(ExceptionRule {
        id: String::new(),
        doctor_id: String::new(),
        day: day?,
        session: e.session,
        kind: e.kind,
        department: e.department.clone(),
        start,
        end,
        clinic_kind: if extra { e.clinic_kind } else { 0 },
        location: e.location.clone(),
        quota: e.quota,
    })
}

/// A concrete session before the doctor's and department's details are added.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub doctor_id: String,
    pub department: String,
    pub day: i64,
    pub session: i32,
    pub start: i32,
    pub end: i32,
    pub kind: i32,
    pub location: String,
    pub quota: i32,
    /// `clinicPatterns/{id}` or `scheduleExceptions/{id}`.
    pub source: String,
}

fn removes(e: &ExceptionRule, slot: &Slot) -> bool {
    let kind = ScheduleExceptionKind::try_from(e.kind).unwrap_or(ScheduleExceptionKind::Unspecified);
    let removing = matches!(kind, ScheduleExceptionKind::Leave | ScheduleExceptionKind::Cancelled);
    removing
        && e.doctor_id == slot.doctor_id
        && e.day == slot.day
        && (e.session == 0 || e.session == slot.session)
        && (e.department.is_empty() || e.department == slot.department)
}

/// The sessions held on local day `day`: patterns of that weekday valid on it, less those that
/// leave or cancellations remove, plus extra sessions. By start time, then doctor and source.
pub fn sessions_on(day: i64, patterns: &[PatternRule], exceptions: &[ExceptionRule]) -> Vec<Slot> {
    let weekday = weekday_of(day);
    let todays: Vec<&ExceptionRule> = exceptions.iter().filter(|e| e.day == day).collect();
    let mut out: Vec<Slot> = patterns
        .iter()
        .filter(|p| p.weekday == weekday && p.valid_from <= day && day <= p.valid_until)
        .map(|p| Slot {
            doctor_id: p.doctor_id.clone(),
            department: p.department.clone(),
            day,
            session: p.session,
            start: p.start,
            end: p.end,
            kind: p.kind,
            location: p.location.clone(),
            quota: p.quota,
            source: format!("clinicPatterns/{}", p.id),
        })
        .filter(|slot| !todays.iter().any(|e| removes(e, slot)))
        .collect();
    out.extend(
        todays
            .iter()
            .filter(|e| e.kind == ScheduleExceptionKind::Extra as i32)
            .map(|e| Slot {
                doctor_id: e.doctor_id.clone(),
                department: e.department.clone(),
                day,
                session: e.session,
                start: e.start,
                end: e.end,
                kind: e.clinic_kind,
                location: e.location.clone(),
                quota: e.quota,
                source: format!("scheduleExceptions/{}", e.id),
            }),
    );
    out.sort_by(|a, b| (a.start, &a.doctor_id, &a.source).cmp(&(b.start, &b.doctor_id, &b.source)));
    out
}

/// The next `limit` sessions of the given patterns and exceptions that end after local
/// (`day`, `minute`), looking at most `horizon` days ahead.
pub fn next_sessions(
    day: i64,
    minute: i32,
    patterns: &[PatternRule],
    exceptions: &[ExceptionRule],
    limit: usize,
    horizon: i64,
) -> Vec<Slot> {
    let mut out = Vec::new();
    for d in day..=day + horizon {
        for slot in sessions_on(d, patterns, exceptions) {
            if d == day && slot.end <= minute {
                continue;
            }
            out.push(slot);
            if out.len() == limit {
                return out;
            }
        }
    }
    out
}

/// The first day on or after `today` that falls on ISO `weekday`.
pub fn next_weekday(today: i64, weekday: i32) -> i64 {
    today + i64::from((weekday - weekday_of(today)).rem_euclid(7))
}

fn has_cjk(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}'))
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// How well `query` matches a department: the score (see `DepartmentMatch.score`) and the
/// names and terms that matched; `None` when nothing does. Chinese queries match Chinese names
/// and terms as substrings either way; other queries match English names and terms (and the
/// code) by whole words, case-insensitively.
pub fn match_department(query: &str, d: &Department) -> Option<(i32, Vec<String>)> {
    let q = fold(query);
    if q.is_empty() {
        return None;
    }
    let mut best = 0;
    let mut matched = Vec::new();
    let mut note = |score: i32, what: &str, best: &mut i32| {
        if score > 0 {
            *best = (*best).max(score);
            if !matched.iter().any(|m: &String| m == what) {
                matched.push(what.to_string());
            }
        }
    };
    if has_cjk(&q) {
        let name = fold(&d.display_name);
        let score = if name == q {
            100
        } else if name.contains(&q) {
            80
        } else if name.chars().count() >= 2 && q.contains(&name) {
            20
        } else {
            0
        };
        note(score, &d.display_name, &mut best);
        for t in &d.treats {
            let term = fold(t);
            let score = if term == q {
                60
            } else if term.contains(&q) {
                40
            } else if term.chars().count() >= 2 && q.contains(&term) {
                20
            } else {
                0
            };
            note(score, t, &mut best);
        }
    } else {
        let qw = words(&q);
        if qw.is_empty() {
            return None;
        }
        let all_in = |hay: &[String]| qw.iter().all(|w| hay.contains(w));
        let name_words = words(&d.english_name);
        let score = if q == d.code || fold(&d.english_name) == q {
            100
        } else if all_in(&name_words) {
            80
        } else {
            0
        };
        let what = if d.english_name.is_empty() {
            &d.code
        } else {
            &d.english_name
        };
        note(score, what, &mut best);
        for t in &d.treats_en {
            let tw = words(t);
            let score = if tw == qw {
                60
            } else if all_in(&tw) {
                40
            } else if !tw.is_empty() && tw.iter().all(|w| qw.contains(w)) {
                20
            } else {
                0
            };
            note(score, t, &mut best);
        }
    }
    (best > 0).then_some((best, matched))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> i64 {
        day_number(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    fn pattern(id: &str, weekday: i32, session: i32, start: i32, end: i32) -> PatternRule {
        PatternRule {
            id: id.into(),
            doctor_id: "d1".into(),
            department: "cardiology".into(),
            weekday,
            session,
            start,
            end,
            kind: ClinicKind::Expert as i32,
            location: "305".into(),
            quota: 20,
            valid_from: OPEN_FROM,
            valid_until: OPEN_UNTIL,
        }
    }

    fn exception(kind: ScheduleExceptionKind, day: i64, session: i32) -> ExceptionRule {
        ExceptionRule {
            id: "e".into(),
            doctor_id: "d1".into(),
            day,
            session,
            kind: kind as i32,
            department: String::new(),
            start: 0,
            end: 0,
            clinic_kind: 0,
            location: String::new(),
            quota: 0,
        }
    }

    #[test]
    fn dates_weekdays_and_local_time() {
        // 2026-11-26 is a Thursday.
        let thu = day(2026, 11, 26);
        assert_eq!(weekday_of(thu), 4);
        assert_eq!(
            to_date(thu),
            Date {
                year: 2026,
                month: 11,
                day: 26
            }
        );
        assert_eq!(next_weekday(thu, 4), thu);
        assert_eq!(next_weekday(thu, 3), thu + 6);
        assert_eq!(next_weekday(thu, 1), thu + 4);
        // 2026-11-25T16:30Z is Thursday 00:30 in China.
        let at = instant(thu - 1, 16 * 60 + 30, 0);
        assert_eq!(local_day_minute(at, 480), (thu, 30));
        assert_eq!(instant(thu, 30, 480), at);
        assert_eq!(local_day_minute(at, 0), (thu - 1, 16 * 60 + 30));
        assert_eq!(hhmm(8 * 60 + 5), "08:05");
    }

    #[test]
    fn leave_removes_extra_adds_and_validity_bounds() {
        let thu = day(2026, 11, 26);
        let mut morning = pattern("p1", 4, 1, 8 * 60, 12 * 60);
        let afternoon = pattern("p2", 4, 2, 14 * 60, 17 * 60);
        morning.valid_until = thu + 7;
        let patterns = vec![morning, afternoon];
        assert_eq!(sessions_on(thu, &patterns, &[]).len(), 2);
        assert!(sessions_on(thu + 1, &patterns, &[]).is_empty());
        // After valid_until only the afternoon remains.
        let later = sessions_on(thu + 14, &patterns, &[]);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].source, "clinicPatterns/p2");
        // Morning leave removes only the morning; whole-day leave both.
        let leave = exception(ScheduleExceptionKind::Leave, thu, 1);
        let held = sessions_on(thu, &patterns, &[leave]);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].session, 2);
        let all_day = exception(ScheduleExceptionKind::Leave, thu, 0);
        assert!(sessions_on(thu, &patterns, std::slice::from_ref(&all_day)).is_empty());
        // A cancellation for another department leaves cardiology alone.
        let mut cancelled = exception(ScheduleExceptionKind::Cancelled, thu, 0);
        cancelled.department = "neurology".into();
        assert_eq!(sessions_on(thu, &patterns, &[cancelled]).len(), 2);
        // An extra session survives the leave and is ordered by time.
        let mut extra = exception(ScheduleExceptionKind::Extra, thu, 3);
        extra.id = "x".into();
        extra.start = 18 * 60;
        extra.end = 20 * 60;
        extra.clinic_kind = ClinicKind::Special as i32;
        let held = sessions_on(thu, &patterns, &[all_day, extra]);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].source, "scheduleExceptions/x");
        assert_eq!(held[0].kind, ClinicKind::Special as i32);
    }

    #[test]
    fn next_sessions_skip_what_has_ended() {
        let thu = day(2026, 11, 26);
        let patterns = vec![
            pattern("p1", 4, 1, 8 * 60, 12 * 60),
            pattern("p2", 1, 2, 14 * 60, 17 * 60),
        ];
        let next = next_sessions(thu, 12 * 60, &patterns, &[], 3, 366);
        assert_eq!(
            next.iter().map(|s| s.day).collect::<Vec<_>>(),
            vec![thu + 4, thu + 7, thu + 11]
        );
        // Still running at 11:00: included.
        let next = next_sessions(thu, 11 * 60, &patterns, &[], 1, 366);
        assert_eq!(next[0].day, thu);
        assert!(next_sessions(thu, 0, &[], &[], 5, 366).is_empty());
    }

    #[test]
    fn patterns_are_checked_field_by_field() {
        let mut v = Violations::new();
        let p = ClinicPattern {
            doctor: "doctors/x".into(),
            department: "cardiology".into(),
            weekday: 9,
            session: 1,
            start_time: "11:00".into(),
            end_time: "10:00".into(),
            kind: 1,
            valid_from: Some(Date {
                year: 2026,
                month: 12,
                day: 1,
            }),
            valid_until: Some(Date {
                year: 2026,
                month: 11,
                day: 1,
            }),
            ..Default::default()
        };
        assert!(validate_pattern(&p, "pattern", true, &mut v).is_none());
        let fields: Vec<String> = match v.finish() {
            Err(hcrm_kit::ApiError::InvalidArgument(list)) => list.into_iter().map(|f| f.field).collect(),
            _ => panic!("expected violations"),
        };
        assert_eq!(
            fields,
            vec!["pattern.weekday", "pattern.end_time", "pattern.valid_until"]
        );
        let mut v = Violations::new();
        let ok = ClinicPattern {
            weekday: 4,
            start_time: "08:00".into(),
            end_time: "12:00".into(),
            valid_from: None,
            valid_until: None,
            ..p
        };
        let rule = validate_pattern(&ok, "pattern", true, &mut v).unwrap();
        assert_eq!((rule.start, rule.end, rule.valid_from), (480, 720, OPEN_FROM));
        let mut v = Violations::new();
        let bad_time = ClinicPattern {
            start_time: "8:00".into(),
            ..ok
        };
        assert!(validate_pattern(&bad_time, "p", true, &mut v).is_none());
    }

    #[test]
    fn exceptions_need_what_their_kind_needs() {
        let mut v = Violations::new();
        let e = ScheduleException {
            doctor: "doctors/x".into(),
            date: Some(Date {
                year: 2026,
                month: 11,
                day: 26,
            }),
            kind: ScheduleExceptionKind::Leave as i32,
            department: "cardiology".into(),
            start_time: "08:00".into(),
            ..Default::default()
        };
        assert!(validate_exception(&e, "exception", &mut v).is_none());
        assert_eq!(v.len(), 2);
        let mut v = Violations::new();
        let extra = ScheduleException {
            kind: ScheduleExceptionKind::Extra as i32,
            department: String::new(),
            start_time: String::new(),
            ..e.clone()
        };
        assert!(validate_exception(&extra, "exception", &mut v).is_none());
        // session, department, start_time, end_time, clinic_kind
        assert_eq!(v.len(), 5);
        let mut v = Violations::new();
        let leave = ScheduleException {
            department: String::new(),
            start_time: String::new(),
            ..e
        };
        let rule = validate_exception(&leave, "exception", &mut v).unwrap();
        assert_eq!(rule.day, day(2026, 11, 26));
    }

    #[test]
    fn departments_match_chinese_substrings_and_english_words() {
        let cardio = Department {
            code: "cardiology".into(),
            display_name: "心血管内科".into(),
            english_name: "Cardiology".into(),
            treats: vec!["胸痛".into(), "高血压".into(), "冠心病".into()],
            treats_en: vec!["chest pain".into(), "hypertension".into()],
            ..Default::default()
        };
        assert_eq!(match_department("心血管内科", &cardio).unwrap().0, 100);
        assert_eq!(match_department("心血管", &cardio).unwrap().0, 80);
        assert_eq!(
            match_department("胸痛", &cardio).unwrap(),
            (60, vec!["胸痛".to_string()])
        );
        assert_eq!(match_department("血压", &cardio).unwrap().0, 40);
        assert_eq!(match_department("突发胸痛三天", &cardio).unwrap().0, 20);
        assert!(match_department("骨折", &cardio).is_none());
        assert_eq!(match_department("CARDIOLOGY", &cardio).unwrap().0, 100);
        assert_eq!(match_department("Chest Pain", &cardio).unwrap().0, 60);
        assert_eq!(match_department("pain", &cardio).unwrap().0, 40);
        assert_eq!(match_department("sudden chest pain", &cardio).unwrap().0, 20);
        // Whole words only: "hyper" is not "hypertension".
        assert!(match_department("hyper", &cardio).is_none());
    }
}
