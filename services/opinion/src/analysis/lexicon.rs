//! The hand-written sentiment lexicon. It carries the hospital vocabulary that the review corpus
//! the classifier learns from never uses (推诿, 误诊, 妙手回春 …), it handles negation and degree
//! words explicitly, and it is what `Analysis::reasons` is made of: staff want to see why a post
//! was flagged.

use super::classifier::FeatureMap;
use super::tokenize::{Kind, Tok, token_hash};

const POSITIVE: &str = include_str!("../../data/sentiment/positive.txt");
const NEGATIVE: &str = include_str!("../../data/sentiment/negative.txt");
const NEGATION: &str = include_str!("../../data/sentiment/negation.txt");
const DEGREE: &str = include_str!("../../data/sentiment/degree.txt");
const CONTRAST: &str = include_str!("../../data/sentiment/contrast.txt");

/// How many words before a sentiment word a negation or degree word may stand ("不 是 很 满意").
const WINDOW: usize = 3;
/// A negated negative word is a weak positive: "不差" is faint praise, "不好" is a complaint.
const NEGATED_NEGATIVE: f32 = 0.5;
/// "不太好" / "not very good": a negation before a degree word softens instead of flipping fully.
const SOFTENED: f32 = 0.5;
/// What follows 但是 / but is the verdict.
const AFTER_CONTRAST: f32 = 1.5;
const BEFORE_CONTRAST: f32 = 0.6;
/// Squashing constant: a raw score of ±2.5 (one strong word, or two ordinary ones) maps to ±0.71.
const SQUASH: f32 = 6.0;
/// Chinese negation characters that jieba glues onto the following word (不满意, 没用, 无效).
const NEGATION_PREFIXES: [&str; 5] = ["不", "没", "无", "未", "非"];

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LexScore {
    /// Signed sum of the weighted cue values.
    pub raw: f32,
    /// Sum of positive contributions.
    pub pos: f32,
    /// Sum of negative contributions, as a positive number.
    pub neg: f32,
    pub hits: u32,
}

impl LexScore {
    /// `raw` squashed into -1..1.
    pub(crate) fn normalized(&self) -> f32 {
        self.raw / (self.raw * self.raw + SQUASH).sqrt()
    }

    /// Dense features for the classifier: the lexicon's verdict and how much evidence each side
    /// has, each bounded so that long texts do not dominate.
    pub(crate) fn features(&self) -> [f32; 3] {
        [self.normalized(), self.pos / (self.pos + 2.0), self.neg / (self.neg + 2.0)]
    }
}

pub(crate) struct Lexicon {
    // Keyed by the token hashes the tokenizer already computed: no string hashing per lookup.
    sentiment: FeatureMap<f32>,
    negation: FeatureMap<()>,
    degree: FeatureMap<f32>,
    contrast: FeatureMap<()>,
}

impl Lexicon {
    pub(crate) fn new() -> Lexicon {
        let mut sentiment = FeatureMap::default();
        for (w, v) in entries(POSITIVE) {
            sentiment.insert(token_hash(w), v.unwrap_or(1.0));
        }
        for (w, v) in entries(NEGATIVE) {
            sentiment.insert(token_hash(w), -v.unwrap_or(1.0).abs());
        }
        let degree = entries(DEGREE).map(|(w, v)| (token_hash(w), v.unwrap_or(1.0))).collect();
        let negation = entries(NEGATION).map(|(w, _)| (token_hash(w), ())).collect();
        let contrast = entries(CONTRAST).map(|(w, _)| (token_hash(w), ())).collect();
        Lexicon {
            sentiment,
            negation,
            degree,
            contrast,
        }
    }

    /// Every multi-character word of the lexicon, to teach the segmenter.
    pub(crate) fn words() -> impl Iterator<Item = &'static str> {
        [POSITIVE, NEGATIVE, NEGATION, DEGREE, CONTRAST]
            .into_iter()
            .flat_map(entries)
            .map(|(w, _)| w)
    }

    /// Scores the tokens; when `reasons` is given, one readable cue per hit is appended to it.
    pub(crate) fn score(&self, toks: &[Tok<'_>], mut reasons: Option<&mut Vec<String>>) -> LexScore {
        let mut out = LexScore::default();
        let mut contrast_seen = false;
        for (i, tok) in toks.iter().enumerate() {
            if tok.kind != Kind::Word {
                continue;
            }
            if self.contrast.contains_key(&tok.hash) {
                if !contrast_seen {
                    out.raw *= BEFORE_CONTRAST;
                    out.pos *= BEFORE_CONTRAST;
                    out.neg *= BEFORE_CONTRAST;
                    contrast_seen = true;
                }
                continue;
            }
            let (weight, prefix) = match self.sentiment.get(&tok.hash) {
                Some(&w) => (w, None),
                None => match self.negated_by_prefix(tok.text) {
                    Some((w, p)) => (w, Some(p)),
                    None => continue,
                },
            };
            // 好 is also a degree word: in "好贵" it intensifies 贵 rather than praising.
            if prefix.is_none() && self.degree.contains_key(&tok.hash) && self.next_is_sentiment(&toks[i + 1..]) {
                continue;
            }

            let mut negations = usize::from(prefix.is_some());
            let mut degree = 1.0f32;
            let mut degree_seen = false;
            let mut negation_outside_degree = false;
            let mut first_modifier = i;
            let mut words_back = 0;
            for j in (0..i).rev() {
                let t = &toks[j];
                if t.kind == Kind::Boundary || words_back == WINDOW {
                    break;
                }
                words_back += 1;
                if self.negation.contains_key(&t.hash) {
                    negations += 1;
                    negation_outside_degree |= degree_seen;
                    first_modifier = j;
                } else if let Some(&d) = self.degree.get(&t.hash) {
                    degree *= d;
                    degree_seen = true;
                    first_modifier = j;
                } else if self.sentiment.contains_key(&t.hash) {
                    break;
                }
            }

            let negated = negations % 2 == 1;
            let mut value = if !negated {
                weight * degree
            } else if negation_outside_degree {
                -weight * SOFTENED
            } else if weight > 0.0 {
                -weight * degree
            } else {
                -weight * degree * NEGATED_NEGATIVE
            };
            if contrast_seen {
                value *= AFTER_CONTRAST;
            }
            out.raw += value;
            if value > 0.0 {
                out.pos += value;
            } else {
                out.neg -= value;
            }
            out.hits += 1;

            if let Some(reasons) = reasons.as_deref_mut() {
                reasons.push(describe(&toks[first_modifier..i], tok.text, prefix, negated));
            }
        }
        out
    }

    /// 不满意 → (weight of 满意, "不") when jieba kept the negation glued to the word.
    fn negated_by_prefix(&self, word: &str) -> Option<(f32, &'static str)> {
        for p in NEGATION_PREFIXES {
            if let Some(rest) = word.strip_prefix(p)
                && !rest.is_empty()
                && let Some(&w) = self.sentiment.get(&token_hash(rest))
            {
                return Some((w, p));
            }
        }
        None
    }

    fn next_is_sentiment(&self, rest: &[Tok<'_>]) -> bool {
        match rest.first() {
            Some(t) if t.kind == Kind::Word => {
                self.sentiment.contains_key(&t.hash) || self.negated_by_prefix(t.text).is_some()
            }
            _ => false,
        }
    }
}

/// "不 满意 (negated)", "非常 耐心", "very good".
fn describe(modifiers: &[Tok<'_>], word: &str, prefix: Option<&str>, negated: bool) -> String {
    let mut s = String::new();
    for m in modifiers {
        s.push_str(m.text);
        s.push(' ');
    }
    match prefix {
        Some(p) => {
            s.push_str(p);
            s.push(' ');
            s.push_str(&word[p.len()..]);
        }
        None => s.push_str(word),
    }
    if negated {
        s.push_str(" (negated)");
    }
    s
}

/// `word` or `word<TAB>number` lines; `#` starts a comment line.
fn entries(text: &'static str) -> impl Iterator<Item = (&'static str, Option<f32>)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut parts = line.split('\t');
        let word = parts.next()?.trim();
        let value = parts.next().and_then(|v| v.trim().parse::<f32>().ok());
        Some((word, value))
    })
}
