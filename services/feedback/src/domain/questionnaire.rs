//! Questionnaires: what a well-formed one is, and checking a patient's answers against the
//! version they answered (required questions, ranges, choices, skip logic).

use hcrm_kit::ApiError;
use hcrm_kit::validate::Violations;
use hcrm_proto::feedback::{Answer, Dimension, LocalizedText, Question, QuestionKind, Questionnaire};
use std::collections::{HashMap, HashSet};

pub const MAX_QUESTIONS: usize = 100;
pub const MAX_TEXT_ANSWER: usize = 2000;

fn localized(v: &mut Violations, field: &str, t: Option<&LocalizedText>, required: bool) {
    let (zh, en) = t.map(|t| (t.zh.as_str(), t.en.as_str())).unwrap_or_default();
    if required && zh.trim().is_empty() && en.trim().is_empty() {
        v.add(field, "needs Chinese or English text");
    }
    v.text(&format!("{field}.zh"), zh, false, 500);
    v.text(&format!("{field}.en"), en, false, 500);
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Every question with its field path, in order.
pub fn questions(q: &Questionnaire) -> impl Iterator<Item = (String, &Question)> {
    q.sections.iter().enumerate().flat_map(|(s, section)| {
        section
            .questions
            .iter()
            .enumerate()
            .map(move |(i, question)| (format!("sections[{s}].questions[{i}]"), question))
    })
}

/// Checks a questionnaire's content (fields under `questionnaire.`).
pub fn check(q: &Questionnaire, v: &mut Violations) {
    localized(v, "questionnaire.title", q.title.as_ref(), true);
    localized(v, "questionnaire.description", q.description.as_ref(), false);
    if !(0..=5).contains(&q.case_threshold) {
        v.add("questionnaire.case_threshold", "must be 0 (the default) or 1–5");
    }
    let count = questions(q).count();
    if count == 0 {
        v.add("questionnaire.sections", "needs at least one question");
    }
    if count > MAX_QUESTIONS {
        v.add("questionnaire.sections", format!("at most {MAX_QUESTIONS} questions"));
    }
    let mut seen: HashMap<&str, &Question> = HashMap::new();
    for (s, section) in q.sections.iter().enumerate() {
        localized(
            v,
            &format!("questionnaire.sections[{s}].title"),
            section.title.as_ref(),
            false,
        );
    }
    for (path, question) in questions(q) {
        let f = |name: &str| format!("questionnaire.{path}.{name}");
        if !valid_id(&question.id) {
            v.add(f("id"), "must be 1–40 letters, digits, `_` or `-`");
        } else if seen.contains_key(question.id.as_str()) {
            v.add(f("id"), format!("{:?} is used twice", question.id));
        }
        let kind = QuestionKind::try_from(question.kind).unwrap_or(QuestionKind::Unspecified);
        if kind == QuestionKind::Unspecified {
            v.add(f("kind"), "is required");
        }
        localized(v, &f("text"), question.text.as_ref(), true);
        let choice = matches!(kind, QuestionKind::SingleChoice | QuestionKind::MultipleChoice);
        if choice {
            if question.options.len() < 2 || question.options.len() > 30 {
                v.add(f("options"), "a choice question needs 2–30 options");
            }
            let mut values = HashSet::new();
            for (i, o) in question.options.iter().enumerate() {
                if !valid_id(&o.value) || !values.insert(o.value.as_str()) {
                    v.add(
                        f(&format!("options[{i}].value")),
                        "must be a unique code of letters, digits, `_` or `-`",
                    );
                }
                localized(v, &f(&format!("options[{i}].text")), o.text.as_ref(), true);
            }
        } else if !question.options.is_empty() {
            v.add(f("options"), "only choice questions have options");
        }
        let dimension = Dimension::try_from(question.dimension).unwrap_or(Dimension::Unspecified);
        if question.dimension != 0 && dimension == Dimension::Unspecified {
            v.add(f("dimension"), "is not a known dimension");
        }
        if dimension != Dimension::Unspecified && kind != QuestionKind::Rating {
            v.add(f("dimension"), "only rating questions count towards a dimension");
        }
        if let Some(show_if) = &question.show_if {
            match seen.get(show_if.question.as_str()) {
                None => v.add(f("show_if.question"), "must name an earlier question"),
                Some(earlier) if earlier.kind == QuestionKind::FreeText as i32 => {
                    v.add(f("show_if.question"), "cannot depend on a free-text answer")
                }
                Some(_) if show_if.values.is_empty() => v.add(f("show_if.values"), "needs at least one value"),
                Some(_) => {}
            }
        }
        if valid_id(&question.id) {
            seen.entry(question.id.as_str()).or_insert(question);
        }
    }
}

/// What a checked set of answers contributes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Scored {
    /// Ratings with their dimension (OVERALL when the question has none).
    pub ratings: Vec<(Dimension, i32)>,
    /// Mean rating on a 0–100 scale, when there are ratings.
    pub score: Option<f64>,
    /// The lowest rating and the question it answered.
    pub lowest: Option<(i32, String)>,
}

fn answer_values(kind: QuestionKind, a: &Answer) -> Vec<String> {
    match kind {
        QuestionKind::Rating | QuestionKind::Nps => a.score.map(|s| s.to_string()).into_iter().collect(),
        _ => a.choices.clone(),
    }
}

/// Checks answers against a published version; returns what they score.
pub fn check_answers(q: &Questionnaire, answers: &[Answer]) -> Result<Scored, ApiError> {
    let mut v = Violations::new();
    let by_id: HashMap<&str, &Question> = questions(q)
        .map(|(_, question)| (question.id.as_str(), question))
        .collect();
    let mut given: HashMap<&str, &Answer> = HashMap::new();
    for (i, a) in answers.iter().enumerate() {
        if !by_id.contains_key(a.question.as_str()) {
            v.add(
                format!("answers[{i}].question"),
                format!("{:?} is not a question of this questionnaire", a.question),
            );
        } else if given.insert(a.question.as_str(), a).is_some() {
            v.add(format!("answers[{i}].question"), "is answered twice");
        }
    }
    let mut scored = Scored::default();
    for (i, a) in answers.iter().enumerate() {
        let Some(question) = by_id.get(a.question.as_str()) else {
            continue;
        };
        let kind = QuestionKind::try_from(question.kind).unwrap_or(QuestionKind::Unspecified);
        let field = |name: &str| format!("answers[{i}].{name}");
        // Skip logic: an answer to a question that is not shown is refused, not stored.
        if let Some(show_if) = &question.show_if {
            let shown = given.get(show_if.question.as_str()).is_some_and(|earlier| {
                let kind = QuestionKind::try_from(by_id[show_if.question.as_str()].kind).unwrap_or_default();
                answer_values(kind, earlier).iter().any(|x| show_if.values.contains(x))
            });
            if !shown {
                v.add(field("question"), "is not shown for the earlier answers");
                continue;
            }
        }
        let has_extra = |score: bool, choices: bool, text: bool| {
            (a.score.is_some() && !score) || (!a.choices.is_empty() && !choices) || (!a.text.is_empty() && !text)
        };
        match kind {
            QuestionKind::Rating | QuestionKind::Nps => {
                let range = if kind == QuestionKind::Rating { 1..=5 } else { 0..=10 };
                match a.score {
                    Some(s) if range.contains(&s) => {
                        if kind == QuestionKind::Rating {
                            let dimension = Dimension::try_from(question.dimension).unwrap_or_default();
                            let dimension = if dimension == Dimension::Unspecified {
                                Dimension::Overall
                            } else {
                                dimension
                            };
                            scored.ratings.push((dimension, s));
                            if scored.lowest.as_ref().is_none_or(|(low, _)| s < *low) {
                                scored.lowest = Some((s, question.id.clone()));
                            }
                        }
                    }
                    Some(_) => v.add(field("score"), format!("must be {}–{}", range.start(), range.end())),
                    None => v.add(field("score"), "is required for this question"),
                }
                if has_extra(true, false, false) {
                    v.add(field("choices"), "a rating takes only a score");
                }
            }
            QuestionKind::SingleChoice | QuestionKind::MultipleChoice => {
                let values: HashSet<&str> = question.options.iter().map(|o| o.value.as_str()).collect();
                if a.choices.is_empty() {
                    v.add(field("choices"), "choose at least one option");
                } else if kind == QuestionKind::SingleChoice && a.choices.len() > 1 {
                    v.add(field("choices"), "choose one option");
                }
                let mut seen = HashSet::new();
                for c in &a.choices {
                    if !values.contains(c.as_str()) || !seen.insert(c) {
                        v.add(field("choices"), format!("{c:?} is not an option (or is chosen twice)"));
                    }
                }
                if has_extra(false, true, false) {
                    v.add(field("score"), "a choice question takes only choices");
                }
            }
            QuestionKind::FreeText => {
                if a.text.trim().is_empty() {
                    v.add(field("text"), "is empty");
                }
                v.text(&field("text"), &a.text, false, MAX_TEXT_ANSWER);
                if has_extra(false, false, true) {
                    v.add(field("score"), "a free-text question takes only text");
                }
            }
            QuestionKind::Unspecified => {}
        }
    }
    // Required questions that are shown must be answered.
    for (_, question) in questions(q) {
        if !question.required || given.contains_key(question.id.as_str()) {
            continue;
        }
        let shown = match &question.show_if {
            None => true,
            Some(show_if) => given.get(show_if.question.as_str()).is_some_and(|earlier| {
                let kind = QuestionKind::try_from(by_id[show_if.question.as_str()].kind).unwrap_or_default();
                answer_values(kind, earlier).iter().any(|x| show_if.values.contains(x))
            }),
        };
        if shown {
            v.add("answers", format!("question {:?} is required", question.id));
        }
    }
    v.finish()?;
    if !scored.ratings.is_empty() {
        let sum: i32 = scored.ratings.iter().map(|(_, s)| s - 1).sum();
        scored.score = Some(sum as f64 * 25.0 / scored.ratings.len() as f64);
    }
    Ok(scored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcrm_proto::feedback::{Choice, Section, ShowIf};

    fn text(s: &str) -> Option<LocalizedText> {
        Some(LocalizedText {
            zh: s.into(),
            en: s.into(),
        })
    }

    fn question(id: &str, kind: QuestionKind, required: bool) -> Question {
        Question {
            id: id.into(),
            kind: kind as i32,
            text: text(id),
            required,
            ..Default::default()
        }
    }

    pub fn sample() -> Questionnaire {
        let mut attitude = question("attitude", QuestionKind::Rating, true);
        attitude.dimension = Dimension::Attitude as i32;
        let mut again = question("again", QuestionKind::SingleChoice, true);
        again.options = vec![
            Choice {
                value: "yes".into(),
                text: text("yes"),
            },
            Choice {
                value: "no".into(),
                text: text("no"),
            },
        ];
        let mut why = question("why", QuestionKind::FreeText, true);
        why.show_if = Some(ShowIf {
            question: "again".into(),
            values: vec!["no".into()],
        });
        Questionnaire {
            title: text("出院满意度"),
            sections: vec![Section {
                title: text("s"),
                questions: vec![attitude, again, why, question("nps", QuestionKind::Nps, false)],
            }],
            ..Default::default()
        }
    }

    fn rating(q: &str, s: i32) -> Answer {
        Answer {
            question: q.into(),
            score: Some(s),
            ..Default::default()
        }
    }

    fn choice(q: &str, c: &str) -> Answer {
        Answer {
            question: q.into(),
            choices: vec![c.into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_questionnaire_passes_and_a_bad_one_names_each_field() {
        let mut v = Violations::new();
        check(&sample(), &mut v);
        assert!(v.is_empty(), "{v:?}");
        let mut bad = sample();
        bad.sections[0].questions[1].options.truncate(1);
        bad.sections[0].questions[2].show_if.as_mut().unwrap().question = "later".into();
        bad.sections[0].questions[3].id = "attitude".into();
        let mut v = Violations::new();
        check(&bad, &mut v);
        let text = format!("{:?}", v.finish().unwrap_err());
        for field in [
            "sections[0].questions[1].options",
            "sections[0].questions[2].show_if.question",
            "sections[0].questions[3].id",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
    }

    #[test]
    fn answers_follow_the_skip_logic_and_ranges() {
        let q = sample();
        let ok = check_answers(&q, &[rating("attitude", 2), choice("again", "yes")]).unwrap();
        assert_eq!(ok.ratings, vec![(Dimension::Attitude, 2)]);
        assert_eq!(ok.score, Some(25.0));
        assert_eq!(ok.lowest, Some((2, "attitude".into())));
        // "no" shows the required follow-up question.
        let err = check_answers(&q, &[rating("attitude", 4), choice("again", "no")]).unwrap_err();
        assert!(err.to_string().contains("\"why\" is required"), "{err}");
        // "yes" hides it: answering it anyway is refused.
        let why = Answer {
            question: "why".into(),
            text: "too slow".into(),
            ..Default::default()
        };
        let err = check_answers(&q, &[rating("attitude", 4), choice("again", "yes"), why]).unwrap_err();
        assert!(err.to_string().contains("answers[2].question"), "{err}");
        let err = check_answers(
            &q,
            &[rating("attitude", 6), choice("again", "maybe"), rating("nps", 11)],
        )
        .unwrap_err();
        let text = err.to_string();
        for field in ["answers[0].score", "answers[1].choices", "answers[2].score"] {
            assert!(text.contains(field), "{field} in {text}");
        }
        let err = check_answers(&q, &[rating("attitude", 3), rating("attitude", 3), rating("nope", 1)]).unwrap_err();
        assert!(err.to_string().contains("answered twice"), "{err}");
        assert!(err.to_string().contains("answers[2].question"), "{err}");
    }
}
