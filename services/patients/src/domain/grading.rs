//! Computed grades: the rules are data (`GradingRules`, versioned), evaluation turns a patient's
//! timeline facts into a class, intent grade, value tier and RFV score, each with reason codes
//! and readable text. No I/O.

use hcrm_kit::validate::Violations;
use hcrm_proto::patients::{CustomerClass, GradeReason, GradingRules, IntentGrade, IntentRule, ScoreScale, ValueTier};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The rules shipped as version 1.
pub fn default_rules() -> GradingRules {
    let rule = |grade: IntentGrade, label: &str| IntentRule {
        grade: grade as i32,
        label: label.into(),
        ..Default::default()
    };
    GradingRules {
        version: 1,
        potential_after_days: 183,
        recency: Some(ScoreScale {
            steps: vec![365, 183, 90, 30],
        }),
        frequency: Some(ScoreScale {
            steps: vec![1, 3, 6, 12],
        }),
        value: Some(ScoreScale {
            steps: vec![500, 2_000, 10_000, 50_000],
        }),
        recency_weight: 40,
        frequency_weight: 30,
        value_weight: 30,
        high_min_score: 75,
        middle_min_score: 50,
        ordinary_min_score: 25,
        vip_is_high: true,
        intent_rules: vec![
            IntentRule {
                min_unanswered_follow_ups: Some(3),
                ..rule(IntentGrade::E, "unreachable")
            },
            IntentRule {
                max_days_since_visit: Some(30),
                min_visits: Some(2),
                ..rule(IntentGrade::A, "recent repeat visitor")
            },
            IntentRule {
                max_days_since_visit: Some(90),
                ..rule(IntentGrade::B, "visited this quarter")
            },
            IntentRule {
                max_days_since_visit: Some(183),
                ..rule(IntentGrade::C, "visited this half-year")
            },
        ],
        default_intent_grade: IntentGrade::D as i32,
        note: "shipped defaults".into(),
        publisher: String::new(),
        publish_time: None,
    }
}

/// Checks a rules document field by field (`{prefix}.high_min_score`).
pub fn validate_rules(r: &GradingRules, prefix: &str, v: &mut Violations) {
    let f = |name: &str| format!("{prefix}.{name}");
    if r.version < 1 {
        v.add(f("version"), "must be at least 1");
    }
    if !(1..=3650).contains(&r.potential_after_days) {
        v.add(f("potential_after_days"), "must be 1–3650 days");
    }
    for (name, scale) in [
        ("recency", &r.recency),
        ("frequency", &r.frequency),
        ("value", &r.value),
    ] {
        match scale {
            None => v.add(f(name), "is required"),
            Some(s) => check_scale(s, &f(&format!("{name}.steps")), name == "recency", v),
        }
    }
    for (name, w) in [
        ("recency_weight", r.recency_weight),
        ("frequency_weight", r.frequency_weight),
        ("value_weight", r.value_weight),
    ] {
        if !(0..=100).contains(&w) {
            v.add(f(name), "must be 0–100");
        }
    }
    if r.recency_weight + r.frequency_weight + r.value_weight != 100 {
        v.add(
            f("value_weight"),
            "recency, frequency and value weights must sum to 100",
        );
    }
    for (name, s) in [
        ("high_min_score", r.high_min_score),
        ("middle_min_score", r.middle_min_score),
        ("ordinary_min_score", r.ordinary_min_score),
    ] {
        if !(0..=100).contains(&s) {
            v.add(f(name), "must be 0–100");
        }
    }
    if r.middle_min_score >= r.high_min_score {
        v.add(f("middle_min_score"), "must be below high_min_score");
    }
    if r.ordinary_min_score >= r.middle_min_score {
        v.add(f("ordinary_min_score"), "must be below middle_min_score");
    }
    if r.intent_rules.is_empty() || r.intent_rules.len() > 20 {
        v.add(f("intent_rules"), "must hold 1–20 rules");
    }
    for (n, rule) in r.intent_rules.iter().enumerate() {
        let rf = |name: &str| format!("{prefix}.intent_rules[{n}].{name}");
        v.enum_value::<IntentGrade>(&rf("grade"), rule.grade, true);
        for (name, value, max) in [
            ("max_days_since_visit", rule.max_days_since_visit, 36_500),
            ("min_visits", rule.min_visits, 100_000),
            ("min_unanswered_follow_ups", rule.min_unanswered_follow_ups, 1_000),
            ("min_score", rule.min_score, 100),
        ] {
            if let Some(value) = value
                && !(0..=max).contains(&value)
            {
                v.add(rf(name), format!("must be 0–{max}"));
            }
        }
        v.text(&rf("label"), &rule.label, false, 100);
    }
    v.enum_value::<IntentGrade>(&f("default_intent_grade"), r.default_intent_grade, true);
    v.text(&f("note"), &r.note, false, 500);
}

fn check_scale(s: &ScoreScale, field: &str, descending_days: bool, v: &mut Violations) {
    if s.steps.is_empty() || s.steps.len() > 10 {
        v.add(field, "must hold 1–10 steps");
        return;
    }
    for (n, step) in s.steps.iter().enumerate() {
        if !(0..=1_000_000_000_000).contains(step) {
            v.add(format!("{field}[{n}]"), "must be 0–10^12");
        }
    }
    // Recency steps are days (fewer is better) and may be given in any order; the others must
    // increase.
    if !descending_days && s.steps.windows(2).any(|w| w[0] >= w[1]) {
        v.add(field, "must be strictly increasing");
    }
}

/// What grading reads about a patient.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub last_visit_at: Option<i64>,
    pub visit_count: i64,
    pub unanswered_follow_ups: i64,
    /// Sum of `details_json.amount` (yuan) in cents.
    pub value_cents: i64,
    pub vip: bool,
}

/// One reason, as stored (JSON) and served (`GradeReason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub applies_to: String,
    pub code: String,
    pub params: BTreeMap<String, String>,
    pub text: String,
}

impl Reason {
    fn new(applies_to: &str, code: &str, params: &[(&str, String)], text: String) -> Self {
        Reason {
            applies_to: applies_to.into(),
            code: code.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            text,
        }
    }

    pub fn to_proto(&self) -> GradeReason {
        GradeReason {
            applies_to: self.applies_to.clone(),
            code: self.code.clone(),
            params: self.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            text: self.text.clone(),
        }
    }
}

/// A computed grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Computed {
    pub customer_class: i32,
    pub intent_grade: i32,
    pub value_tier: i32,
    pub rfv_score: i32,
    pub rule_version: i32,
    pub reasons: Vec<Reason>,
}

impl Computed {
    /// Which graded values differ from `old` (`None`: the first computation, all of them).
    pub fn changed_from(&self, old: Option<&Computed>) -> Vec<&'static str> {
        let mut out = Vec::new();
        let (c, i, t) = old.map_or((0, 0, 0), |o| (o.customer_class, o.intent_grade, o.value_tier));
        if c != self.customer_class {
            out.push("customer_class");
        }
        if i != self.intent_grade {
            out.push("intent_grade");
        }
        if t != self.value_tier {
            out.push("value_tier");
        }
        out
    }

    /// Whether the stored row must be rewritten (anything but the wording of reasons).
    pub fn differs(&self, old: Option<&Computed>) -> bool {
        old.is_none_or(|o| {
            (
                o.customer_class,
                o.intent_grade,
                o.value_tier,
                o.rfv_score,
                o.rule_version,
            ) != (
                self.customer_class,
                self.intent_grade,
                self.value_tier,
                self.rfv_score,
                self.rule_version,
            )
        })
    }
}

/// Whole days since `at` (0 for the future).
pub fn days_since(at: i64, now: i64) -> i64 {
    ((now - at) / DAY_MICROS).max(0)
}

fn scale_score(scale: Option<&ScoreScale>, reached: impl Fn(i64) -> bool) -> i32 {
    let steps = scale.map(|s| s.steps.as_slice()).unwrap_or_default();
    if steps.is_empty() {
        return 0;
    }
    let n = steps.iter().filter(|s| reached(**s)).count();
    (100 * n / steps.len()) as i32
}

/// Short name of a proto enum value (`POTENTIAL` for `CUSTOMER_CLASS_POTENTIAL`).
pub fn class_name(v: i32) -> &'static str {
    CustomerClass::try_from(v)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("CUSTOMER_CLASS_")
}

pub fn grade_name(v: i32) -> &'static str {
    IntentGrade::try_from(v)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("INTENT_GRADE_")
}

pub fn tier_name(v: i32) -> &'static str {
    ValueTier::try_from(v)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("VALUE_TIER_")
}

/// Evaluates `rules` on a patient's facts at `now`.
pub fn evaluate(rules: &GradingRules, f: &Facts, now: i64) -> Computed {
    let mut reasons = Vec::new();
    let days = f.last_visit_at.map(|t| days_since(t, now));

    // Class: M (potential) or C (active).
    let customer_class = match days {
        None => {
            reasons.push(Reason::new(
                "customer_class",
                "never_visited",
                &[],
                "never visited (a lead who never came)".into(),
            ));
            CustomerClass::Potential
        }
        Some(d) if d > i64::from(rules.potential_after_days) => {
            reasons.push(Reason::new(
                "customer_class",
                "no_visit_days",
                &[
                    ("days", d.to_string()),
                    ("limit", rules.potential_after_days.to_string()),
                ],
                format!("no visit for {d} days"),
            ));
            CustomerClass::Potential
        }
        Some(d) => {
            reasons.push(Reason::new(
                "customer_class",
                "visited_days_ago",
                &[
                    ("days", d.to_string()),
                    ("limit", rules.potential_after_days.to_string()),
                ],
                format!("last visit {d} days ago"),
            ));
            CustomerClass::Active
        }
    };

    // Recency-frequency-value score.
    let yuan = f.value_cents / 100;
    let r = days.map_or(0, |d| scale_score(rules.recency.as_ref(), |step| d <= step));
    let fr = scale_score(rules.frequency.as_ref(), |step| f.visit_count >= step);
    let v = scale_score(rules.value.as_ref(), |step| yuan >= step);
    let weighted = rules.recency_weight * r + rules.frequency_weight * fr + rules.value_weight * v;
    let rfv_score = (weighted + 50) / 100;
    reasons.push(Reason::new(
        "rfv_score",
        "score",
        &[
            ("recency", r.to_string()),
            ("frequency", fr.to_string()),
            ("value", v.to_string()),
            ("visits", f.visit_count.to_string()),
            ("yuan", yuan.to_string()),
        ],
        format!(
            "score {rfv_score}: recency {r} × {}% + frequency {fr} ({} visits) × {}% + value {v} ({yuan} yuan) × {}%",
            rules.recency_weight, f.visit_count, rules.frequency_weight, rules.value_weight
        ),
    ));

    // Value tier.
    let value_tier = if f.vip && rules.vip_is_high {
        reasons.push(Reason::new("value_tier", "vip", &[], "VIP".into()));
        ValueTier::High
    } else {
        let (tier, min) = if rfv_score >= rules.high_min_score {
            (ValueTier::High, rules.high_min_score)
        } else if rfv_score >= rules.middle_min_score {
            (ValueTier::Middle, rules.middle_min_score)
        } else if rfv_score >= rules.ordinary_min_score {
            (ValueTier::Ordinary, rules.ordinary_min_score)
        } else {
            (ValueTier::Low, 0)
        };
        reasons.push(Reason::new(
            "value_tier",
            "tier_threshold",
            &[("score", rfv_score.to_string()), ("min", min.to_string())],
            format!("score {rfv_score} ≥ {min}"),
        ));
        tier
    };

    // Intent grade: the first rule whose conditions all hold.
    let mut intent_grade = None;
    for (n, rule) in rules.intent_rules.iter().enumerate() {
        let mut why = Vec::new();
        let mut holds = true;
        if let Some(max) = rule.max_days_since_visit {
            match days {
                Some(d) if d <= i64::from(max) => why.push(Reason::new(
                    "intent_grade",
                    "visited_days_ago",
                    &[("days", d.to_string()), ("max", max.to_string())],
                    format!("last visit {d} days ago (≤ {max})"),
                )),
                _ => holds = false,
            }
        }
        if let Some(min) = rule.min_visits {
            if f.visit_count >= i64::from(min) {
                why.push(Reason::new(
                    "intent_grade",
                    "visits",
                    &[("visits", f.visit_count.to_string()), ("min", min.to_string())],
                    format!("{} visits (≥ {min})", f.visit_count),
                ));
            } else {
                holds = false;
            }
        }
        if let Some(min) = rule.min_unanswered_follow_ups {
            if f.unanswered_follow_ups >= i64::from(min) {
                why.push(Reason::new(
                    "intent_grade",
                    "unanswered_follow_ups",
                    &[("count", f.unanswered_follow_ups.to_string()), ("min", min.to_string())],
                    format!("{} unanswered follow-ups", f.unanswered_follow_ups),
                ));
            } else {
                holds = false;
            }
        }
        if let Some(min) = rule.min_score {
            if rfv_score >= min {
                why.push(Reason::new(
                    "intent_grade",
                    "score",
                    &[("score", rfv_score.to_string()), ("min", min.to_string())],
                    format!("score {rfv_score} (≥ {min})"),
                ));
            } else {
                holds = false;
            }
        }
        if holds {
            let grade = IntentGrade::try_from(rule.grade).unwrap_or_default();
            reasons.push(Reason::new(
                "intent_grade",
                "intent_rule",
                &[("rule", (n + 1).to_string()), ("label", rule.label.clone())],
                format!("rule {} ({}) gives {}", n + 1, rule.label, grade_name(rule.grade)),
            ));
            reasons.extend(why);
            intent_grade = Some(grade);
            break;
        }
    }
    let intent_grade = intent_grade.unwrap_or_else(|| {
        reasons.push(Reason::new(
            "intent_grade",
            "default_intent",
            &[],
            format!(
                "no intent rule holds: default {}",
                grade_name(rules.default_intent_grade)
            ),
        ));
        IntentGrade::try_from(rules.default_intent_grade).unwrap_or_default()
    });

    Computed {
        customer_class: customer_class as i32,
        intent_grade: intent_grade as i32,
        value_tier: value_tier as i32,
        rfv_score,
        rule_version: rules.version,
        reasons,
    }
}

/// A readable summary of a change: `customer_class POTENTIAL → ACTIVE (rules v1)`.
pub fn change_summary(old: Option<&Computed>, new: &Computed) -> String {
    let mut parts = Vec::new();
    let (c, i, t) = old.map_or((0, 0, 0), |o| (o.customer_class, o.intent_grade, o.value_tier));
    if c != new.customer_class {
        parts.push(format!(
            "customer_class {} → {}",
            class_name(c),
            class_name(new.customer_class)
        ));
    }
    if i != new.intent_grade {
        parts.push(format!(
            "intent_grade {} → {}",
            grade_name(i),
            grade_name(new.intent_grade)
        ));
    }
    if t != new.value_tier {
        parts.push(format!("value_tier {} → {}", tier_name(t), tier_name(new.value_tier)));
    }
    format!("{} (rules v{})", parts.join(", "), new.rule_version)
}

/// What one timeline entry adds to a patient's facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FactDelta {
    pub visit: bool,
    /// A follow-up whose `details_json.outcome` is `not_reached` (as followup records them).
    pub unanswered_follow_up: bool,
    pub complaint: bool,
    /// `details_json.amount` (yuan, a number or a numeric string) in cents; 0 when absent.
    pub amount_cents: i64,
}

/// Reads what grading counts from one timeline entry.
pub fn fact_delta(kind: hcrm_proto::patients::InteractionKind, details_json: &str) -> FactDelta {
    use hcrm_proto::patients::InteractionKind;
    let details: serde_json::Value = serde_json::from_str(details_json).unwrap_or_default();
    let amount = match details.get("amount") {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|a| a.is_finite() && *a > 0.0 && *a < 1e12)
    .map_or(0, |a| (a * 100.0).round() as i64);
    FactDelta {
        visit: super::interaction::is_visit(kind),
        unanswered_follow_up: kind == InteractionKind::FollowUp
            && details.get("outcome").and_then(|o| o.as_str()) == Some("not_reached"),
        complaint: kind == InteractionKind::Complaint,
        amount_cents: amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn facts(days_ago: Option<i64>, visits: i64) -> Facts {
        Facts {
            last_visit_at: days_ago.map(|d| NOW - d * DAY_MICROS - 1),
            visit_count: visits,
            ..Default::default()
        }
    }

    fn texts(c: &Computed) -> Vec<&str> {
        c.reasons.iter().map(|r| r.text.as_str()).collect()
    }

    #[test]
    fn timeline_entries_become_facts() {
        use hcrm_proto::patients::InteractionKind;
        let d = fact_delta(InteractionKind::FollowUp, r#"{"outcome":"not_reached"}"#);
        assert!(d.unanswered_follow_up && !d.visit);
        assert!(!fact_delta(InteractionKind::FollowUp, r#"{"outcome":"reached"}"#).unanswered_follow_up);
        let v = fact_delta(InteractionKind::OutpatientVisit, r#"{"amount": 123.45}"#);
        assert!(v.visit);
        assert_eq!(v.amount_cents, 12_345);
        assert_eq!(
            fact_delta(InteractionKind::Order, r#"{"amount":"80"}"#).amount_cents,
            8_000
        );
        assert_eq!(fact_delta(InteractionKind::Order, "not json").amount_cents, 0);
        assert!(fact_delta(InteractionKind::Complaint, "").complaint);
    }

    #[test]
    fn the_shipped_rules_are_valid() {
        let mut v = Violations::new();
        validate_rules(&default_rules(), "rules", &mut v);
        assert!(v.is_empty(), "{:?}", v.finish());
    }

    #[test]
    fn a_long_absence_makes_a_potential_customer_and_says_why() {
        let c = evaluate(&default_rules(), &facts(Some(212), 3), NOW);
        assert_eq!(c.customer_class, CustomerClass::Potential as i32);
        assert!(texts(&c).contains(&"no visit for 212 days"), "{:?}", texts(&c));
        assert_eq!(c.intent_grade, IntentGrade::D as i32);
        let never = evaluate(&default_rules(), &facts(None, 0), NOW);
        assert_eq!(never.customer_class, CustomerClass::Potential as i32);
        assert_eq!(never.reasons[0].code, "never_visited");
        assert_eq!(never.rfv_score, 0);
        assert_eq!(never.value_tier, ValueTier::Low as i32);
    }

    #[test]
    fn recent_repeat_visitors_are_active_a_and_scored() {
        let mut f = facts(Some(10), 6);
        f.value_cents = 1_200_000;
        let c = evaluate(&default_rules(), &f, NOW);
        assert_eq!(c.customer_class, CustomerClass::Active as i32);
        assert_eq!(c.intent_grade, IntentGrade::A as i32);
        // recency 100 × 40% + frequency 75 × 30% + value 75 × 30% = 85
        assert_eq!(c.rfv_score, 85);
        assert_eq!(c.value_tier, ValueTier::High as i32);
    }

    #[test]
    fn unanswered_follow_ups_come_first() {
        let mut f = facts(Some(10), 6);
        f.unanswered_follow_ups = 3;
        let c = evaluate(&default_rules(), &f, NOW);
        assert_eq!(c.intent_grade, IntentGrade::E as i32);
        assert!(texts(&c).contains(&"3 unanswered follow-ups"));
    }

    #[test]
    fn vip_is_high_when_the_rules_say_so() {
        let mut f = facts(None, 0);
        f.vip = true;
        assert_eq!(evaluate(&default_rules(), &f, NOW).value_tier, ValueTier::High as i32);
        let rules = GradingRules {
            vip_is_high: false,
            ..default_rules()
        };
        assert_eq!(evaluate(&rules, &f, NOW).value_tier, ValueTier::Low as i32);
    }

    #[test]
    fn changes_name_what_changed() {
        let a = evaluate(&default_rules(), &facts(Some(212), 3), NOW);
        let b = evaluate(&default_rules(), &facts(Some(1), 4), NOW);
        assert_eq!(
            b.changed_from(Some(&a)),
            vec!["customer_class", "intent_grade", "value_tier"]
        );
        assert!(change_summary(Some(&a), &b).starts_with("customer_class POTENTIAL → ACTIVE"));
        assert_eq!(a.changed_from(None).len(), 3);
        assert!(!a.differs(Some(&a)));
    }

    #[test]
    fn bad_rules_are_named_field_by_field() {
        let mut r = default_rules();
        r.potential_after_days = 0;
        r.value_weight = 50;
        r.middle_min_score = 90;
        r.frequency = Some(ScoreScale { steps: vec![3, 1] });
        r.intent_rules[1].grade = 0;
        r.intent_rules[2].min_score = Some(101);
        let mut v = Violations::new();
        validate_rules(&r, "rules", &mut v);
        let err = format!("{:?}", v.finish().unwrap_err());
        for field in [
            "rules.potential_after_days",
            "rules.value_weight",
            "rules.middle_min_score",
            "rules.frequency.steps",
            "rules.intent_rules[1].grade",
            "rules.intent_rules[2].min_score",
        ] {
            assert!(err.contains(field), "{field} missing in {err}");
        }
    }
}
