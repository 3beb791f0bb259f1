//! What a mention is about. Routing depends on it (a charges complaint goes to the finance office,
//! a dispute to the legal team) and publicity topics are counted apart from complaints, so the cue
//! lists are kept as data that staff can read and extend.

use serde::{Deserialize, Serialize};

use super::matcher::Matcher;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Topic {
    ServiceAttitude,
    WaitingTime,
    Charges,
    CareQuality,
    MedicalDispute,
    Environment,
    GoodDeeds,
    NewTechnique,
    Honour,
}

impl Topic {
    pub const ALL: [Topic; 9] = [
        Topic::ServiceAttitude,
        Topic::WaitingTime,
        Topic::Charges,
        Topic::CareQuality,
        Topic::MedicalDispute,
        Topic::Environment,
        Topic::GoodDeeds,
        Topic::NewTechnique,
        Topic::Honour,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Topic::ServiceAttitude => "service_attitude",
            Topic::WaitingTime => "waiting_time",
            Topic::Charges => "charges",
            Topic::CareQuality => "care_quality",
            Topic::MedicalDispute => "medical_dispute",
            Topic::Environment => "environment",
            Topic::GoodDeeds => "good_deeds",
            Topic::NewTechnique => "new_technique",
            Topic::Honour => "honour",
        }
    }

    pub fn from_code(code: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Topics the hospital's publicity office reports on (as opposed to complaint handling).
    pub fn is_publicity(&self) -> bool {
        matches!(self, Topic::GoodDeeds | Topic::NewTechnique | Topic::Honour)
    }
}

const TOPICS_TSV: &str = include_str!("../../data/sentiment/topics.tsv");

pub(crate) struct TopicDetector {
    matcher: Matcher,
}

impl TopicDetector {
    pub(crate) fn new() -> TopicDetector {
        let mut entities: Vec<(i64, Vec<String>)> = Vec::new();
        for line in TOPICS_TSV.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((code, terms)) = line.split_once('\t') else {
                continue;
            };
            // The file ships inside the binary and is checked by a test, so an unknown code can
            // only come from a bad edit; skipping it keeps `Analyzer::new` infallible.
            let Some(topic) = Topic::from_code(code.trim()) else {
                continue;
            };
            let terms = terms.split('|').map(str::to_owned).collect();
            entities.push((topic_index(topic), terms));
        }
        TopicDetector {
            matcher: Matcher::new(&entities),
        }
    }

    /// Topics in their declaration order (stable output for storage and tests).
    pub(crate) fn detect(&self, text: &str) -> Vec<Topic> {
        let mut seen = [false; Topic::ALL.len()];
        self.matcher.for_each_match(text, |_, pattern| {
            for id in self.matcher.owners(pattern) {
                if let Some(slot) = seen.get_mut(id as usize) {
                    *slot = true;
                }
            }
        });
        Topic::ALL
            .into_iter()
            .zip(seen)
            .filter_map(|(t, s)| s.then_some(t))
            .collect()
    }
}

fn topic_index(topic: Topic) -> i64 {
    Topic::ALL.iter().position(|&t| t == topic).unwrap_or(0) as i64
}
