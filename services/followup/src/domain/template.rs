//! Templates: what makes one valid, and which patients it applies to.

use hcrm_kit::validate::Violations;
use hcrm_proto::followup::{Applicability, Channel, Template, TemplateKind};
use hcrm_proto::types::ContactChannel;

/// Stable keys of questions and score items: `[a-z0-9_]{1,40}`.
pub fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 40
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Department codes: `[A-Za-z0-9_-]{1,32}`.
pub fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a template's content as a whole (not its name, version or state).
pub fn check(t: &Template, v: &mut Violations) {
    v.text("template.display_name", &t.display_name, true, 100);
    v.text("template.description", &t.description, false, 2000);
    let kind = TemplateKind::try_from(t.kind).unwrap_or(TemplateKind::Unspecified);
    if kind == TemplateKind::Unspecified {
        v.add("template.kind", "is required: SCHEDULED or CHRONIC");
    }
    check_channel("template.default_channel", t.default_channel, false, v);
    if let Some(a) = &t.applies_to {
        check_applicability(a, v);
    }
    match kind {
        TemplateKind::Scheduled => {
            if t.schedule.is_empty() {
                v.add("template.schedule", "is required: at least one step");
            }
            if t.schedule.len() > 20 {
                v.add("template.schedule", "at most 20 steps");
            }
            for (i, step) in t.schedule.iter().enumerate() {
                let f = format!("template.schedule[{i}]");
                if !(0..=3650).contains(&step.offset_days) {
                    v.add(format!("{f}.offset_days"), "must be 0–3650 days after the anchor");
                } else if t.schedule[..i].iter().any(|s| s.offset_days == step.offset_days) {
                    v.add(format!("{f}.offset_days"), "is used by an earlier step");
                }
                if !(0..=90).contains(&step.window_days) {
                    v.add(format!("{f}.window_days"), "must be 0–90 days");
                }
                check_channel(&format!("{f}.channel"), step.channel, false, v);
                v.text(&format!("{f}.purpose"), &step.purpose, false, 200);
            }
            if t.chronic.is_some() {
                v.add("template.chronic", "only CHRONIC templates carry chronic rules");
            }
        }
        TemplateKind::Chronic => {
            match &t.chronic {
                Some(rules) => super::chronic::check_rules("template.chronic", rules, v),
                None => v.add("template.chronic", "is required for a CHRONIC template"),
            }
            if !t.schedule.is_empty() {
                v.add(
                    "template.schedule",
                    "a CHRONIC template is scheduled by its rules, not steps",
                );
            }
        }
        TemplateKind::Unspecified => {}
    }
    if t.questions.len() > 50 {
        v.add("template.questions", "at most 50 questions");
    }
    for (i, q) in t.questions.iter().enumerate() {
        let f = format!("template.questions[{i}]");
        if !is_key(&q.key) {
            v.add(format!("{f}.key"), "must match [a-z0-9_]{1,40}");
        } else if t.questions[..i].iter().any(|o| o.key == q.key) {
            v.add(format!("{f}.key"), format!("{:?} is used twice", q.key));
        }
        v.text(&format!("{f}.text"), &q.text, true, 500);
    }
    if let Some(score) = &t.score {
        super::score::check_template("template.score", score, v);
    }
}

fn check_applicability(a: &Applicability, v: &mut Violations) {
    if a.departments.len() > 100 {
        v.add("template.applies_to.departments", "at most 100");
    }
    for (i, d) in a.departments.iter().enumerate() {
        if !is_code(d) {
            v.add(
                format!("template.applies_to.departments[{i}]"),
                "must be a department code",
            );
        }
    }
    if a.diagnosis_prefixes.len() > 100 {
        v.add("template.applies_to.diagnosis_prefixes", "at most 100");
    }
    for (i, p) in a.diagnosis_prefixes.iter().enumerate() {
        if !is_icd_prefix(p) {
            v.add(
                format!("template.applies_to.diagnosis_prefixes[{i}]"),
                "must be an ICD-10 code prefix such as I10 or I2",
            );
        }
    }
}

/// An ICD-10 code or prefix: a letter, then digits, optionally a dot and more.
pub fn is_icd_prefix(p: &str) -> bool {
    let mut chars = p.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && p.len() <= 10
        && chars.all(|c| c.is_ascii_digit() || c == '.' || c.is_ascii_uppercase())
}

pub fn check_channel(field: &str, value: i32, required: bool, v: &mut Violations) {
    match Channel::try_from(value) {
        Ok(Channel::Unspecified) if required => v.add(field, "is required"),
        Ok(_) => {}
        Err(_) => v.add(field, format!("{value} is not a channel")),
    }
}

/// Whether a template applies to a discharge from `department` with `diagnoses`.
pub fn applies(a: &Applicability, department: &str, diagnoses: &[String]) -> bool {
    let department_ok = a.departments.is_empty() || a.departments.iter().any(|d| d == department);
    let diagnosis_ok = a.diagnosis_prefixes.is_empty()
        || a.diagnosis_prefixes
            .iter()
            .any(|p| diagnoses.iter().any(|d| d.starts_with(p.as_str())));
    department_ok && diagnosis_ok
}

/// The patient contact channel a follow-up channel uses, for consent checks; `None` for
/// channels that are not "contacting" in the consent sense (the website).
pub fn contact_channel(channel: Channel) -> Option<ContactChannel> {
    Some(match channel {
        Channel::Phone => ContactChannel::Phone,
        Channel::Wechat | Channel::Qq => ContactChannel::Wechat,
        Channel::HomeVisit => ContactChannel::HomeVisit,
        Channel::App => ContactChannel::App,
        Channel::Sms => ContactChannel::Sms,
        Channel::Email => ContactChannel::Email,
        Channel::Website | Channel::Unspecified => return None,
    })
}

pub fn channel_name(value: i32) -> &'static str {
    match Channel::try_from(value).unwrap_or(Channel::Unspecified) {
        Channel::Unspecified => "unspecified",
        Channel::Phone => "phone",
        Channel::Wechat => "wechat",
        Channel::Qq => "qq",
        Channel::HomeVisit => "home_visit",
        Channel::Website => "website",
        Channel::App => "app",
        Channel::Sms => "sms",
        Channel::Email => "email",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcrm_proto::followup::{ScheduleStep, ScoreItem, ScoreTemplate};

    fn scheduled() -> Template {
        let step = |offset_days| ScheduleStep {
            offset_days,
            window_days: 2,
            ..Default::default()
        };
        Template {
            display_name: "出院随访".into(),
            kind: TemplateKind::Scheduled as i32,
            schedule: vec![step(1), step(7), step(30)],
            ..Default::default()
        }
    }

    #[test]
    fn bad_schedules_are_named_field_by_field() {
        let mut v = Violations::new();
        check(&scheduled(), &mut v);
        assert!(v.is_empty(), "{v:?}");
        let mut t = scheduled();
        t.schedule[1].offset_days = -7;
        t.schedule[2].offset_days = 1;
        t.score = Some(ScoreTemplate {
            items: vec![ScoreItem {
                key: "pain".into(),
                label: "疼痛".into(),
                weight: 90.0,
                min: 0.0,
                max: 10.0,
                lower_is_better: true,
            }],
        });
        let mut v = Violations::new();
        check(&t, &mut v);
        let text = format!("{v:?}");
        assert!(text.contains("template.schedule[1].offset_days"), "{text}");
        assert!(text.contains("template.schedule[2].offset_days"), "{text}");
        assert!(text.contains("add up to 100"), "{text}");
        let mut empty = scheduled();
        empty.schedule.clear();
        let mut v = Violations::new();
        check(&empty, &mut v);
        assert!(format!("{v:?}").contains("\"template.schedule\""));
    }

    #[test]
    fn applicability_matches_departments_and_diagnosis_prefixes() {
        let a = Applicability {
            departments: vec!["CARD".into()],
            diagnosis_prefixes: vec!["I2".into()],
            on_discharge: true,
        };
        assert!(applies(&a, "CARD", &["I21.9".into()]));
        assert!(!applies(&a, "CARD", &["J18".into()]));
        assert!(!applies(&a, "ORTH", &["I21.9".into()]));
        assert!(applies(&Applicability::default(), "ANY", &[]));
        assert!(is_icd_prefix("I10") && !is_icd_prefix("i10") && !is_icd_prefix(""));
    }
}
