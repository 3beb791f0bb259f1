//! Text analysis for mentions: language, sentiment, topics, near-duplicate fingerprints and
//! watch-list matching. Everything runs in-process with embedded data, because the service must
//! keep ingesting (thousands of mentions a second) when no outside NLP service is reachable.

mod classifier;
mod language;
mod lexicon;
mod matcher;
pub mod minhash;
mod simhash;
mod tokenize;
mod topics;
#[doc(hidden)]
pub mod train;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use language::Language;
pub use matcher::Matcher;
pub use simhash::{content_hash, hamming, normalize, simhash};
pub use topics::Topic;

use classifier::Model;
use lexicon::Lexicon;
use tokenize::Tokenizer;
use topics::TopicDetector;

/// Written by `cargo run --release -p hcrm-opinion --example train_sentiment`.
const MODEL: &str = include_str!("../../data/sentiment/model.tsv");

/// Logit added per unit of the lexicon's squashed (-1..1) score, on top of the classifier (which already sees the
/// lexicon as a feature). The classifier learnt from product and hotel reviews, so hospital
/// wording it never saw is carried by the lexicon; where the classifier is sure, it still wins.
/// Chosen on `hospital_dev.tsv` and a validation slice of the training rows.
const LEXICON_BOOST: f32 = 2.0;
/// The classifier's logit is scaled by this when the text has no lexicon cue at all: notices and
/// questions ("请问周末有门诊吗") would otherwise get a lean from a model that only ever saw opinions.
const NO_CUE_DAMPING: f32 = 0.3;
/// |score| below this is Neutral. Chosen on `hospital_dev.tsv`.
const NEUTRAL_BAND: f32 = 0.3;
/// Reasons beyond this many add nothing for a reader.
const MAX_REASONS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Label {
    Positive,
    Neutral,
    Negative,
}

impl Label {
    pub fn code(&self) -> &'static str {
        match self {
            Label::Positive => "positive",
            Label::Neutral => "neutral",
            Label::Negative => "negative",
        }
    }

    pub fn from_code(code: &str) -> Option<Label> {
        match code {
            "positive" => Some(Label::Positive),
            "neutral" => Some(Label::Neutral),
            "negative" => Some(Label::Negative),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub language: Language,
    pub label: Label,
    /// -1.0 (negative) ..= 1.0 (positive).
    pub score: f32,
    /// 0..1: how sure the label is.
    pub confidence: f32,
    pub topics: Vec<Topic>,
    /// Lexicon cues that moved the score, in text order ("态度差", "不 满意 (negated)").
    pub reasons: Vec<String>,
}

/// Everything loaded once: segmenter dictionary, lexicon, model and topic cues. Build one and
/// share it (`Arc<Analyzer>`); construction takes a noticeable fraction of a second.
pub struct Analyzer {
    tokenizer: Tokenizer,
    lexicon: Lexicon,
    model: Model,
    topics: TopicDetector,
    tuning: Tuning,
}

/// How the classifier and the lexicon are combined into a label; see the constants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub lexicon_boost: f32,
    pub no_cue_damping: f32,
    pub neutral_band: f32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            lexicon_boost: LEXICON_BOOST,
            no_cue_damping: NO_CUE_DAMPING,
            neutral_band: NEUTRAL_BAND,
        }
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

impl Analyzer {
    pub fn new() -> Analyzer {
        Analyzer::with_model(Model::parse(MODEL).0)
    }

    fn with_model(model: Model) -> Analyzer {
        Analyzer {
            tokenizer: Tokenizer::new(Lexicon::words()),
            lexicon: Lexicon::new(),
            model,
            topics: TopicDetector::new(),
            tuning: Tuning::default(),
        }
    }

    pub fn analyze(&self, text: &str) -> Analysis {
        let language = language::detect(text);
        let topics = self.topics.detect(text);
        if language == Language::Other {
            // No model or lexicon for it: say nothing rather than guess.
            return Analysis {
                language,
                label: Label::Neutral,
                score: 0.0,
                confidence: 0.0,
                topics,
                reasons: Vec::new(),
            };
        }
        let lowered = tokenize::lower(text);
        let mut toks = self.tokenizer.tokens(&lowered, language);
        let mut reasons = Vec::new();
        let lex = self.lexicon.score(&toks, Some(&mut reasons));
        self.lexicon.mark_negated(&mut toks);
        let mut feats = Vec::with_capacity(toks.len() * 2);
        classifier::features(&lowered, &toks, &mut feats);
        let z = self.model.for_language(language).logit(&feats, lex.features());
        let score = self.tuning.blend(z, lex.normalized(), lex.hits);
        let (label, confidence) = self.tuning.label_of(score);
        reasons.dedup();
        reasons.truncate(MAX_REASONS);
        Analysis {
            language,
            label,
            score,
            confidence,
            topics,
            reasons,
        }
    }
}

impl Tuning {
    /// Final score in -1..1 from the classifier's logit and the lexicon's squashed score.
    fn blend(&self, logit: f32, lexicon: f32, lexicon_hits: u32) -> f32 {
        let damping = if lexicon_hits == 0 { self.no_cue_damping } else { 1.0 };
        let z = logit * damping + self.lexicon_boost * lexicon;
        (z / 2.0).tanh()
    }

    /// Confidence is 0.5 at the edge of the neutral band and grows towards 1 at either end.
    fn label_of(&self, score: f32) -> (Label, f32) {
        let a = score.abs();
        let band = self.neutral_band;
        if a < band {
            (Label::Neutral, 1.0 - 0.5 * a / band)
        } else {
            let label = if score > 0.0 { Label::Positive } else { Label::Negative };
            (label, 0.5 + 0.5 * (a - band) / (1.0 - band))
        }
    }
}
