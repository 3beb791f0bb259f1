//! Pinyin of a name for search: the full spelling without tones or spaces and the initials.

use pinyin::ToPinyin;

/// Search forms of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKeys {
    /// Lower-case pinyin with spaces between syllables, e.g. `zhang san`.
    pub spaced: String,
    /// Lower-case pinyin without spaces, e.g. `zhangsan`.
    pub compact: String,
    /// Initials, e.g. `zs`.
    pub initials: String,
}

/// Computes the pinyin of Chinese characters and lower-cases Latin letters; other characters
/// separate words.
pub fn name_keys(name: &str) -> NameKeys {
    let mut words: Vec<String> = Vec::new();
    let mut latin = String::new();
    for (c, py) in name.chars().zip(name.to_pinyin()) {
        match py {
            Some(p) => {
                if !latin.is_empty() {
                    words.push(std::mem::take(&mut latin));
                }
                words.push(p.plain().to_string());
            }
            None if c.is_ascii_alphanumeric() => latin.push(c.to_ascii_lowercase()),
            None => {
                if !latin.is_empty() {
                    words.push(std::mem::take(&mut latin));
                }
            }
        }
    }
    if !latin.is_empty() {
        words.push(latin);
    }
    NameKeys {
        spaced: words.join(" "),
        compact: words.concat(),
        initials: words.iter().filter_map(|w| w.chars().next()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_and_latin_names() {
        let keys = name_keys("张三丰");
        assert_eq!(keys.spaced, "zhang san feng");
        assert_eq!(keys.compact, "zhangsanfeng");
        assert_eq!(keys.initials, "zsf");
        let keys = name_keys("John Smith");
        assert_eq!(keys.compact, "johnsmith");
        assert_eq!(keys.initials, "js");
    }
}
