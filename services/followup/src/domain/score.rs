//! Recovery scores (康复评分): weighted items, each answer placed in its range, 0–100 in all.

use hcrm_kit::validate::Violations;
use hcrm_proto::followup::{ScoreAnswer, ScoreTemplate};

/// Checks a score template: keys unique and well-formed, ranges non-empty, weights positive and
/// adding up to 100.
pub fn check_template(field: &str, t: &ScoreTemplate, v: &mut Violations) {
    if t.items.len() > 50 {
        v.add(format!("{field}.items"), "at most 50 items");
        return;
    }
    let mut total = 0.0;
    for (i, item) in t.items.iter().enumerate() {
        let f = format!("{field}.items[{i}]");
        if !super::template::is_key(&item.key) {
            v.add(format!("{f}.key"), "must match [a-z0-9_]{1,40}");
        } else if t.items[..i].iter().any(|o| o.key == item.key) {
            v.add(format!("{f}.key"), format!("{:?} is used twice", item.key));
        }
        v.text(&format!("{f}.label"), &item.label, true, 200);
        if !(item.weight.is_finite() && item.weight > 0.0) {
            v.add(format!("{f}.weight"), "must be positive");
        } else {
            total += item.weight;
        }
        if !(item.min.is_finite() && item.max.is_finite() && item.min < item.max) {
            v.add(format!("{f}.max"), "must be greater than min");
        }
    }
    if !t.items.is_empty() && (total - 100.0).abs() > 1e-6 {
        v.add(
            format!("{field}.items"),
            format!("weights must add up to 100, not {total}"),
        );
    }
}

/// The 0–100 score of `answers`; every item must be answered once, within its range.
pub fn score(field: &str, t: &ScoreTemplate, answers: &[ScoreAnswer], v: &mut Violations) -> Option<f64> {
    let before = v.len();
    for (i, a) in answers.iter().enumerate() {
        if !t.items.iter().any(|item| item.key == a.key) {
            v.add(
                format!("{field}[{i}].key"),
                format!("{:?} is not an item of the score template", a.key),
            );
        } else if answers[..i].iter().any(|o| o.key == a.key) {
            v.add(format!("{field}[{i}].key"), format!("{:?} is answered twice", a.key));
        }
    }
    let mut total = 0.0;
    for item in &t.items {
        let Some((i, answer)) = answers.iter().enumerate().find(|(_, a)| a.key == item.key) else {
            v.add(field.to_string(), format!("item {:?} is not answered", item.key));
            continue;
        };
        if !(answer.value.is_finite() && answer.value >= item.min && answer.value <= item.max) {
            v.add(
                format!("{field}[{i}].value"),
                format!("must be between {} and {}", item.min, item.max),
            );
            continue;
        }
        let mut share = (answer.value - item.min) / (item.max - item.min);
        if item.lower_is_better {
            share = 1.0 - share;
        }
        total += share * item.weight;
    }
    (v.len() == before).then(|| (total * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcrm_proto::followup::ScoreItem;

    fn template() -> ScoreTemplate {
        let item = |key: &str, weight: f64, min: f64, max: f64, lower: bool| ScoreItem {
            key: key.into(),
            label: key.into(),
            weight,
            min,
            max,
            lower_is_better: lower,
        };
        ScoreTemplate {
            items: vec![
                item("mobility", 40.0, 0.0, 4.0, false),
                item("pain", 60.0, 0.0, 10.0, true),
            ],
        }
    }

    fn answer(key: &str, value: f64) -> ScoreAnswer {
        ScoreAnswer { key: key.into(), value }
    }

    #[test]
    fn scores_weigh_each_item_in_its_range() {
        let mut v = Violations::new();
        check_template("t", &template(), &mut v);
        assert!(v.is_empty());
        let s = score(
            "a",
            &template(),
            &[answer("mobility", 3.0), answer("pain", 2.0)],
            &mut v,
        );
        // 0.75 * 40 + 0.8 * 60 = 78
        assert_eq!(s, Some(78.0));
        assert!(v.is_empty());
    }

    #[test]
    fn bad_templates_and_answers_name_the_field() {
        let mut bad = template();
        bad.items[1].weight = 50.0;
        bad.items[0].max = -1.0;
        let mut v = Violations::new();
        check_template("template.score", &bad, &mut v);
        let text = format!("{:?}", v);
        assert!(text.contains("template.score.items[0].max"), "{text}");
        assert!(text.contains("add up to 100"), "{text}");

        let mut v = Violations::new();
        let s = score(
            "record.score_answers",
            &template(),
            &[answer("pain", 11.0), answer("x", 1.0)],
            &mut v,
        );
        assert_eq!(s, None);
        let text = format!("{:?}", v);
        assert!(text.contains("record.score_answers[0].value"), "{text}");
        assert!(text.contains("record.score_answers[1].key"), "{text}");
        assert!(text.contains("\\\"mobility\\\" is not answered"), "{text}");
    }
}
