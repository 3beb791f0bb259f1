//! The learned half of the sentiment score: logistic regression over token unigrams and bigrams
//! plus the lexicon's verdict as dense features. Logistic regression rather than Naive Bayes
//! because its probabilities are calibrated enough to serve as a confidence, and because it learns
//! how far to trust the lexicon instead of a hand-set blend. The model is trained offline
//! (`examples/train_sentiment.rs`) and embedded as text, so it can be diffed and reviewed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::language::Language;
use super::language::is_han;
use super::simhash::mix64;
use super::tokenize::{Tok, bigram_hash, token_hash};

pub(crate) const DENSE: usize = 3;

/// Feature keys are already well-mixed 64-bit hashes; hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type FeatureMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
pub(crate) struct LangModel {
    pub bias: f32,
    pub dense: [f32; DENSE],
    pub weights: FeatureMap<f32>,
}

impl LangModel {
    /// `feats` must be sorted and free of duplicates (see [`features`]): presence, not counts,
    /// and scaled by 1/sqrt(n) so a long review is not automatically more extreme than a short one.
    pub(crate) fn logit(&self, feats: &[u64], dense: [f32; DENSE]) -> f32 {
        let mut sparse = 0.0f32;
        for f in feats {
            if let Some(w) = self.weights.get(f) {
                sparse += w;
            }
        }
        let scale = if feats.is_empty() {
            0.0
        } else {
            1.0 / (feats.len() as f32).sqrt()
        };
        let mut z = self.bias + sparse * scale;
        for (w, x) in self.dense.iter().zip(dense) {
            z += w * x;
        }
        z
    }
}

#[derive(Default)]
pub(crate) struct Model {
    pub zh: LangModel,
    pub en: LangModel,
}

impl Model {
    pub(crate) fn for_language(&self, language: Language) -> &LangModel {
        match language {
            Language::Zh => &self.zh,
            Language::En | Language::Other => &self.en,
        }
    }

    /// Parses the embedded model. Malformed lines are skipped rather than failing, so a damaged
    /// file degrades to the lexicon instead of taking the service down; a test checks that the
    /// shipped file parses completely.
    pub(crate) fn parse(text: &str) -> (Model, usize) {
        let mut model = Model::default();
        let mut bad = 0usize;
        let mut current: Option<&mut LangModel> = None;
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(header) = line.strip_prefix('@') {
                let mut parts = header.split_whitespace();
                let lang = parts.next();
                let nums: Vec<f32> = parts.filter_map(|p| p.parse().ok()).collect();
                let target = match lang {
                    Some("zh") => &mut model.zh,
                    Some("en") => &mut model.en,
                    _ => {
                        bad += 1;
                        current = None;
                        continue;
                    }
                };
                if nums.len() == 1 + DENSE {
                    target.bias = nums[0];
                    target.dense.copy_from_slice(&nums[1..]);
                } else {
                    bad += 1;
                }
                current = Some(target);
                continue;
            }
            let (Some(m), Some((name, w))) = (current.as_deref_mut(), line.split_once('\t')) else {
                bad += 1;
                continue;
            };
            let Ok(w) = w.parse::<f32>() else {
                bad += 1;
                continue;
            };
            m.weights.insert(feature_key(name), w);
        }
        (model, bad)
    }
}

/// A feature as written in the model file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Name<'a> {
    /// A token.
    Token(&'a str),
    /// A token within reach of a negation word, written after a `!`.
    Negated(&'a str),
    /// Two adjacent tokens, written joined by one space.
    Pair(&'a str, &'a str),
    /// Two adjacent Han characters, written after a `^`. They catch what segmentation gets wrong
    /// or splits differently from one review to the next (好用 / 好 用).
    Chars(&'a str),
    /// A character pair ending in a token within reach of a negation word, written after `!^`.
    NegatedChars(&'a str),
}

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Token(t) => f.write_str(t),
            Name::Negated(t) => write!(f, "!{t}"),
            Name::Pair(a, b) => write!(f, "{a} {b}"),
            Name::Chars(c) => write!(f, "^{c}"),
            Name::NegatedChars(c) => write!(f, "!^{c}"),
        }
    }
}

fn chars_key(s: &str) -> u64 {
    mix64(token_hash(s) ^ 0x5851_f42d_4c95_7f2d)
}

fn negated_key(token_hash: u64) -> u64 {
    mix64(token_hash ^ 0x2127_599b_f432_5c37)
}

/// Key of a feature as written in the model file (see [`Name`]).
pub(crate) fn feature_key(name: &str) -> u64 {
    if let Some(c) = name.strip_prefix('^')
        && !c.is_empty()
    {
        return chars_key(c);
    }
    if let Some(t) = name.strip_prefix('!')
        && !t.is_empty()
    {
        return negated_key(feature_key(t));
    }
    match name.split_once(' ') {
        Some((a, b)) => bigram_hash(token_hash(a), token_hash(b)),
        None => token_hash(name),
    }
}

/// Calls `f(key, name)` for every feature of `toks`, which must be slices of `text`, in order.
pub(crate) fn for_each_feature<'a>(text: &'a str, toks: &[Tok<'a>], mut f: impl FnMut(u64, Name<'a>)) {
    for (i, t) in toks.iter().enumerate() {
        if t.negated {
            f(negated_key(t.hash), Name::Negated(t.text));
        } else {
            f(t.hash, Name::Token(t.text));
        }
        if let Some(n) = toks.get(i + 1) {
            f(bigram_hash(t.hash, n.hash), Name::Pair(t.text, n.text));
        }
    }
    // Character pairs, also across adjacent tokens; whitespace or any non-Han character breaks a run.
    let base = text.as_ptr() as usize;
    let mut prev: Option<usize> = None;
    let mut prev_end = usize::MAX;
    for t in toks {
        let offset = t.text.as_ptr() as usize - base;
        if offset != prev_end {
            prev = None;
        }
        for (i, c) in t.text.char_indices() {
            let at = offset + i;
            if !is_han(c) {
                prev = None;
                continue;
            }
            if let Some(p) = prev {
                let pair = &text[p..at + c.len_utf8()];
                if t.negated {
                    f(negated_key(chars_key(pair)), Name::NegatedChars(pair));
                } else {
                    f(chars_key(pair), Name::Chars(pair));
                }
            }
            prev = Some(at);
        }
        prev_end = offset + t.text.len();
    }
}

/// Sorted, de-duplicated feature keys, written into `out`.
pub(crate) fn features(text: &str, toks: &[Tok<'_>], out: &mut Vec<u64>) {
    out.clear();
    for_each_feature(text, toks, |k, _| out.push(k));
    out.sort_unstable();
    out.dedup();
}
