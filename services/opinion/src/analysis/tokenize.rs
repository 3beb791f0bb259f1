//! Tokens shared by the lexicon and the classifier. Both must see exactly the same tokens at
//! training and at serving time, so there is one tokenizer and the training code goes through it.

use jieba_rs::Jieba;

use super::language::{Language, is_han};
use super::simhash::mix64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Word,
    /// Punctuation: ends the window in which a negation or degree word can reach a sentiment word.
    Boundary,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok<'a> {
    pub text: &'a str,
    pub hash: u64,
    pub kind: Kind,
    /// Within reach of a negation word (set by `Lexicon::mark_negated`).
    pub negated: bool,
}

pub(crate) struct Tokenizer {
    jieba: Jieba,
}

impl Tokenizer {
    /// `extra_words` are lexicon phrases (态度差, 乱收费, 妙手回春 …): jieba's general dictionary
    /// would split most of them, and a split phrase loses its meaning ("态度" + "差").
    pub(crate) fn new<'w>(extra_words: impl IntoIterator<Item = &'w str>) -> Tokenizer {
        let mut jieba = Jieba::new();
        for w in extra_words {
            if w.chars().count() >= 2 && w.chars().all(is_han) && !jieba.has_word(w) {
                jieba.add_word(w, None, None);
            }
        }
        Tokenizer { jieba }
    }

    /// Tokens of `lowered` (the output of [`lower`]); whitespace is dropped.
    pub(crate) fn tokens<'a>(&self, lowered: &'a str, language: Language) -> Vec<Tok<'a>> {
        match language {
            Language::Zh => self
                .jieba
                .cut(lowered, true)
                .into_iter()
                .filter_map(|t| classify(t.word))
                .collect(),
            Language::En | Language::Other => english_tokens(lowered),
        }
    }
}

/// ASCII-lowercased copy with full-width Latin folded and typographic apostrophes straightened, so
/// "ＧＯＯＤ" and "Good", "don’t" and "don't" are one token each.
pub(crate) fn lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' | '\u{FF10}'..='\u{FF19}' => {
                char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
            }
            '\u{2019}' => '\'',
            _ => c,
        };
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn classify(word: &str) -> Option<Tok<'_>> {
    if word.chars().all(char::is_whitespace) {
        return None;
    }
    // Han first: `char::is_alphanumeric` takes a slow table path for CJK characters.
    let kind = if word
        .chars()
        .any(|c| c.is_ascii_alphanumeric() || is_han(c) || (!c.is_ascii() && c.is_alphanumeric()))
    {
        Kind::Word
    } else {
        Kind::Boundary
    };
    Some(Tok {
        text: word,
        hash: token_hash(word),
        kind,
        negated: false,
    })
}

/// Words are runs of letters, digits, apostrophes and inner hyphens ("don't", "well-organised");
/// every other visible character is its own boundary token.
fn english_tokens(text: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    let mut start: Option<usize> = None;
    let is_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '-';
    for (i, c) in text.char_indices() {
        if is_word(c) {
            if start.is_none() {
                start = Some(i);
            }
            continue;
        }
        if let Some(s) = start.take() {
            push_word(&mut out, &text[s..i]);
        }
        if !c.is_whitespace()
            && let Some(t) = classify(&text[i..i + c.len_utf8()])
        {
            out.push(t);
        }
    }
    if let Some(s) = start {
        push_word(&mut out, &text[s..]);
    }
    out
}

fn push_word<'a>(out: &mut Vec<Tok<'a>>, w: &'a str) {
    let w = w.trim_matches(|c| c == '\'' || c == '-');
    if let Some(t) = classify(w) {
        out.push(t);
    }
}

/// Feature and lexicon key of a token.
pub(crate) fn token_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// Key of the bigram (a, b); order matters.
pub(crate) fn bigram_hash(a: u64, b: u64) -> u64 {
    mix64(a.rotate_left(23) ^ b ^ 0x9e37_79b9_7f4a_7c15)
}
