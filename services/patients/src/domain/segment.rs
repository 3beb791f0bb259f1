//! Saved segments: what a valid filter is, its canonical form, and the birth-date bounds of an
//! age band. No I/O (the store compiles a filter into SQL).

use chrono::{Datelike, NaiveDate};
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::{CustomerClass, IncomeBand, IntentGrade, Segment, SegmentFilter, Sex, ValueTier};

/// Paths an update mask may name.
pub const UPDATABLE_PATHS: &[&str] = &["display_name", "description", "filter"];

const MAX_LIST: usize = 50;

/// Trims texts, upper-cases diagnosis prefixes, sorts and de-duplicates lists.
pub fn normalize_filter(f: &mut SegmentFilter) {
    fn tidy(list: &mut Vec<String>, upper: bool) {
        for s in list.iter_mut() {
            *s = s.trim().to_string();
            if upper {
                *s = s.to_uppercase();
            }
        }
        list.sort();
        list.dedup();
    }
    tidy(&mut f.departments_seen, false);
    tidy(&mut f.diagnosis_prefixes, true);
    tidy(&mut f.provinces, false);
    tidy(&mut f.cities, false);
    tidy(&mut f.occupations, false);
    tidy(&mut f.tags_any, false);
    tidy(&mut f.tags_all, false);
    tidy(&mut f.departments, false);
    for list in [
        &mut f.income_bands,
        &mut f.sexes,
        &mut f.classes,
        &mut f.intent_grades,
        &mut f.value_tiers,
    ] {
        list.sort();
        list.dedup();
    }
}

fn texts(
    v: &mut Violations,
    field: &str,
    list: &[String],
    max_len: usize,
    check: impl Fn(&str) -> Option<&'static str>,
) {
    if list.len() > MAX_LIST {
        v.add(field, format!("at most {MAX_LIST} values"));
    }
    for (n, s) in list.iter().enumerate() {
        if s.is_empty() || s.chars().count() > max_len {
            v.add(format!("{field}[{n}]"), format!("must be 1–{max_len} characters"));
        } else if let Some(problem) = check(s) {
            v.add(format!("{field}[{n}]"), problem);
        }
    }
}

fn enums<E: TryFrom<i32>>(v: &mut Violations, field: &str, list: &[i32]) {
    for (n, value) in list.iter().enumerate() {
        v.enum_value::<E>(&format!("{field}[{n}]"), *value, true);
    }
}

fn range(
    v: &mut Violations,
    prefix: &str,
    (lo_name, lo): (&str, Option<i32>),
    (hi_name, hi): (&str, Option<i32>),
    max: i32,
) {
    for (name, value) in [(lo_name, lo), (hi_name, hi)] {
        if let Some(value) = value
            && !(0..=max).contains(&value)
        {
            v.add(format!("{prefix}.{name}"), format!("must be 0–{max}"));
        }
    }
    if let (Some(lo), Some(hi)) = (lo, hi)
        && lo > hi
    {
        v.add(format!("{prefix}.{hi_name}"), format!("must not be below {lo_name}"));
    }
}

/// Checks a filter; fields are named under `prefix` (`filter`, `segment.filter`).
pub fn validate_filter(f: &SegmentFilter, prefix: &str, v: &mut Violations) {
    let p = |name: &str| format!("{prefix}.{name}");
    for (name, ts) in [
        ("last_visit_before", &f.last_visit_before),
        ("last_visit_after", &f.last_visit_after),
        ("visits_since", &f.visits_since),
    ] {
        if let Some(ts) = ts
            && hcrm_kit::time::from_timestamp(ts).is_none()
        {
            v.add(p(name), "is out of range");
        }
    }
    if let (Some(a), Some(b)) = (&f.last_visit_after, &f.last_visit_before)
        && (a.seconds, a.nanos) >= (b.seconds, b.nanos)
    {
        v.add(p("last_visit_before"), "must be after last_visit_after");
    }
    range(
        v,
        prefix,
        ("min_visits", f.min_visits),
        ("max_visits", f.max_visits),
        100_000,
    );
    if f.visits_since.is_some() && f.min_visits.is_none() && f.max_visits.is_none() {
        v.add(p("visits_since"), "needs min_visits or max_visits");
    }
    range(v, prefix, ("min_age", f.min_age), ("max_age", f.max_age), 150);
    let code = |s: &str| (!super::patient::is_code(s, 64)).then_some("must be a department code");
    texts(v, &p("departments_seen"), &f.departments_seen, 64, code);
    texts(v, &p("departments"), &f.departments, 64, code);
    texts(v, &p("diagnosis_prefixes"), &f.diagnosis_prefixes, 8, |s| {
        (!s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
            .then_some("must be an ICD-10 prefix: letters, digits and dots, e.g. I1 or E11")
    });
    texts(v, &p("provinces"), &f.provinces, 64, |_| None);
    texts(v, &p("cities"), &f.cities, 64, |_| None);
    texts(v, &p("occupations"), &f.occupations, 64, |_| None);
    texts(v, &p("tags_any"), &f.tags_any, 32, |_| None);
    texts(v, &p("tags_all"), &f.tags_all, 32, |_| None);
    enums::<IncomeBand>(v, &p("income_bands"), &f.income_bands);
    enums::<Sex>(v, &p("sexes"), &f.sexes);
    enums::<CustomerClass>(v, &p("classes"), &f.classes);
    enums::<IntentGrade>(v, &p("intent_grades"), &f.intent_grades);
    enums::<ValueTier>(v, &p("value_tiers"), &f.value_tiers);
}

/// Checks a segment to save; fields under `prefix` (`segment`).
pub fn validate(s: &Segment, prefix: &str, v: &mut Violations) {
    v.text(&format!("{prefix}.display_name"), &s.display_name, true, 100);
    v.text(&format!("{prefix}.description"), &s.description, false, 1_000);
    match &s.filter {
        Some(f) => validate_filter(f, &format!("{prefix}.filter"), v),
        None => v.add(format!("{prefix}.filter"), "is required"),
    }
}

/// Normalises what a caller sent: trims the texts, tidies the filter, clears output fields.
pub fn normalize(s: &mut Segment) {
    s.display_name = s.display_name.trim().to_string();
    s.description = s.description.trim().to_string();
    if let Some(f) = s.filter.as_mut() {
        normalize_filter(f);
    }
    s.name.clear();
    s.owner.clear();
    s.etag.clear();
    s.create_time = None;
    s.update_time = None;
}

/// Copies the masked fields of `src` into `dst`.
pub fn apply_mask(dst: &mut Segment, src: &Segment, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "display_name" => dst.display_name = src.display_name.clone(),
            "description" => dst.description = src.description.clone(),
            "filter" => dst.filter = src.filter.clone(),
            _ => {}
        }
    }
}

/// The same day `years` earlier (29 February becomes 28 February).
fn years_before(today: NaiveDate, years: i32) -> NaiveDate {
    let year = today.year() - years;
    NaiveDate::from_ymd_opt(year, today.month(), today.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, today.month(), 28))
        .unwrap_or(today)
}

/// Birth-date bounds (as stored, `YYYY-MM-DD`) of an age band on `today`: born on or before
/// the first (age ≥ min), and strictly after the second (age ≤ max).
pub fn birth_bounds(today: NaiveDate, min_age: Option<i32>, max_age: Option<i32>) -> (Option<String>, Option<String>) {
    let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    (
        min_age.map(|a| fmt(years_before(today, a))),
        max_age.map(|a| fmt(years_before(today, a + 1))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_bands_become_birth_date_bounds() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let (born_by, born_after) = birth_bounds(today, Some(30), Some(39));
        // 30 today: born on or before 1996-11-24; at most 39: born after 1986-11-24.
        assert_eq!(born_by.as_deref(), Some("1996-11-24"));
        assert_eq!(born_after.as_deref(), Some("1986-11-24"));
        let leap = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(birth_bounds(leap, Some(1), None).0.as_deref(), Some("2023-02-28"));
    }

    #[test]
    fn wrong_filters_are_named_by_field() {
        let f = SegmentFilter {
            min_age: Some(50),
            max_age: Some(20),
            min_visits: Some(-1),
            diagnosis_prefixes: vec!["I1%".into()],
            departments_seen: vec!["Cardio Logy".into()],
            sexes: vec![9],
            visits_since: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
            ..Default::default()
        };
        let mut v = Violations::new();
        validate_filter(&f, "filter", &mut v);
        let err = format!("{:?}", v.finish().unwrap_err());
        for field in [
            "filter.max_age",
            "filter.min_visits",
            "filter.diagnosis_prefixes[0]",
            "filter.departments_seen[0]",
            "filter.sexes[0]",
        ] {
            assert!(err.contains(field), "{field} missing in {err}");
        }
        let mut ok = Violations::new();
        validate_filter(&SegmentFilter::default(), "filter", &mut ok);
        assert!(ok.is_empty());
    }

    #[test]
    fn normalising_tidies_lists() {
        let mut f = SegmentFilter {
            diagnosis_prefixes: vec![" i1 ".into(), "I1".into(), "e11".into()],
            sexes: vec![2, 1, 2],
            ..Default::default()
        };
        normalize_filter(&mut f);
        assert_eq!(f.diagnosis_prefixes, vec!["E11", "I1"]);
        assert_eq!(f.sexes, vec![1, 2]);
    }
}
