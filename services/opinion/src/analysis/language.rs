//! Which pipeline a text goes through. Chinese posts routinely carry Latin brand names, URLs and
//! hashtags, so the decision weighs a Han character against an English word rather than counting
//! characters one for one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    Zh,
    En,
    Other,
}

impl Language {
    pub fn code(&self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
            Language::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        match code {
            "zh" => Some(Language::Zh),
            "en" => Some(Language::En),
            "other" => Some(Language::Other),
            _ => None,
        }
    }
}

pub fn detect(text: &str) -> Language {
    let (mut han, mut kana, mut hangul, mut latin, mut latin_words, mut other) = (0usize, 0, 0, 0, 0, 0);
    let mut in_word = false;
    for c in text.chars() {
        let letter = c.is_ascii_alphabetic();
        if letter {
            latin += 1;
            latin_words += usize::from(!in_word);
        } else if is_han(c) {
            han += 1;
        } else if ('\u{3040}'..='\u{30FF}').contains(&c) {
            kana += 1;
        } else if ('\u{AC00}'..='\u{D7AF}').contains(&c) || ('\u{1100}'..='\u{11FF}').contains(&c) {
            hangul += 1;
        } else if c.is_alphabetic() {
            other += 1;
        }
        in_word = letter;
    }
    // Japanese mixes kanji with plenty of kana and Korean may carry hanja: neither is Chinese. A
    // stray kana (の is fashionable in Chinese posts) does not make a text Japanese. A Han
    // character is weighed against an English word, not a letter: "昨天在 Peking Union Medical
    // College Hospital 看病" is Chinese, "Dr. 王 was very kind to my mother" is English.
    if han > 0 && kana * 5 < han && hangul * 2 < han && han >= latin_words {
        return Language::Zh;
    }
    if latin > 0 && latin >= other + kana + hangul + han {
        return Language::En;
    }
    Language::Other
}

/// CJK Unified Ideographs and the extensions used in practice.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}')
}
