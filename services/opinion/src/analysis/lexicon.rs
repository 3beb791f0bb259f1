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
        [
            self.normalized(),
            self.pos / (self.pos + 2.0),
            self.neg / (self.neg + 2.0),
        ]
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
        let degree = entries(DEGREE)
            .map(|(w, v)| (token_hash(w), v.unwrap_or(1.0)))
            .collect();
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
            let Some(found) = self.lookup(tok) else { continue };
            // 好 is also a degree word: in "好 贵" it intensifies 贵 rather than praising.
            if found.prefixes.is_empty()
                && self.degree.contains_key(&tok.hash)
                && self.next_is_sentiment(&toks[i + 1..])
            {
                continue;
            }

            // Modifiers are applied from the nearest outwards: first those glued to the token
            // (不太好 → 太, then 不), then the words before it.
            let mut mods = Modifiers::default();
            for p in found.prefixes.iter().rev() {
                mods.apply(self, token_hash(p));
            }
            let mut first_modifier = i;
            for (j, t) in toks[..i].iter().enumerate().rev().take(WINDOW) {
                if t.kind == Kind::Boundary {
                    break;
                }
                if mods.apply(self, t.hash) {
                    first_modifier = j;
                } else if self.sentiment.contains_key(&t.hash) {
                    break;
                }
            }

            let mut value = mods.value(found.weight);
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
                reasons.push(describe(&toks[first_modifier..i], &found, mods.negated()));
            }
        }
        out
    }

    /// Marks the words that a negation word reaches (the same window as for scoring), so the
    /// classifier can tell "满意" from "不 满意" instead of counting both as praise.
    pub(crate) fn mark_negated(&self, toks: &mut [Tok<'_>]) {
        let mut reach = 0usize;
        for t in toks.iter_mut() {
            if t.kind == Kind::Boundary {
                reach = 0;
                continue;
            }
            if self.negation.contains_key(&t.hash) {
                reach = WINDOW;
                continue;
            }
            if reach > 0 {
                t.negated = true;
                reach -= 1;
            }
        }
    }

    /// The sentiment word a token is, directly or once up to two negation / degree prefixes that
    /// jieba kept glued to it are taken off (不满意, 不太好, 好贵).
    fn lookup<'a>(&self, tok: &Tok<'a>) -> Option<Found<'a>> {
        if let Some(&weight) = self.sentiment.get(&tok.hash) {
            return Some(Found {
                weight,
                prefixes: Vec::new(),
                word: tok.text,
            });
        }
        if !tok.text.starts_with(|c: char| !c.is_ascii()) {
            return None;
        }
        for (p1, rest1) in self.modifier_prefixes(tok.text) {
            if let Some(&weight) = self.sentiment.get(&token_hash(rest1)) {
                return Some(Found {
                    weight,
                    prefixes: vec![p1],
                    word: rest1,
                });
            }
            for (p2, rest2) in self.modifier_prefixes(rest1) {
                if let Some(&weight) = self.sentiment.get(&token_hash(rest2)) {
                    return Some(Found {
                        weight,
                        prefixes: vec![p1, p2],
                        word: rest2,
                    });
                }
            }
        }
        None
    }

    /// Splits of `word` into a one- or two-character negation or degree word and a non-empty rest.
    fn modifier_prefixes<'s, 'a: 's>(&'s self, word: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 's {
        word.char_indices()
            .skip(1)
            .take(2)
            .map(move |(at, _)| word.split_at(at))
            .filter(|(p, _)| {
                let h = token_hash(p);
                self.negation.contains_key(&h) || self.degree.contains_key(&h)
            })
    }

    fn next_is_sentiment(&self, rest: &[Tok<'_>]) -> bool {
        match rest.first() {
            Some(t) if t.kind == Kind::Word => self.lookup(t).is_some(),
            _ => false,
        }
    }
}

struct Found<'a> {
    weight: f32,
    /// Modifiers glued to the front of the token, in text order.
    prefixes: Vec<&'a str>,
    word: &'a str,
}

/// Negation and degree words seen from a sentiment word outwards.
struct Modifiers {
    negations: usize,
    degree: f32,
    degree_seen: bool,
    /// A negation further out than a degree word: "不 太 好", "not very good".
    negation_outside_degree: bool,
}

impl Default for Modifiers {
    fn default() -> Self {
        Modifiers {
            negations: 0,
            degree: 1.0,
            degree_seen: false,
            negation_outside_degree: false,
        }
    }
}

impl Modifiers {
    /// Applies the word if it is a modifier; false if it is not.
    fn apply(&mut self, lexicon: &Lexicon, hash: u64) -> bool {
        if lexicon.negation.contains_key(&hash) {
            self.negations += 1;
            self.negation_outside_degree |= self.degree_seen;
            true
        } else if let Some(&d) = lexicon.degree.get(&hash) {
            self.degree *= d;
            self.degree_seen = true;
            true
        } else {
            false
        }
    }

    fn negated(&self) -> bool {
        self.negations % 2 == 1
    }

    fn value(&self, weight: f32) -> f32 {
        if !self.negated() {
            weight * self.degree
        } else if self.negation_outside_degree {
            -weight * SOFTENED
        } else if weight > 0.0 {
            -weight * self.degree
        } else {
            -weight * self.degree * NEGATED_NEGATIVE
        }
    }
}

/// "不 满意 (negated)", "非常 耐心", "very good".
fn describe(modifiers: &[Tok<'_>], found: &Found<'_>, negated: bool) -> String {
    let mut s = String::new();
    for m in modifiers {
        s.push_str(m.text);
        s.push(' ');
    }
    for p in &found.prefixes {
        s.push_str(p);
        s.push(' ');
    }
    s.push_str(found.word);
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
