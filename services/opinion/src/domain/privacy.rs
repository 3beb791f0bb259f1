//! What a public reply must not contain: a patient's personal data. A reply goes out on a
//! public platform, so it is checked for mobile and landline numbers, identity numbers (with a
//! valid check digit), e-mail addresses, bank-card-like digit runs and the linked patient's own
//! name and phone number.

use regex::Regex;
use std::sync::LazyLock;

static MOBILE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:^|\D)(?:86)?1[3-9]\d{9}(?:\D|$)").expect("regex"));
static LANDLINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:^|\D)0\d{9,11}(?:\D|$)").expect("regex"));
static ID_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\d{17}[\dx]").expect("regex"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("regex"));
static LONG_DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d{12,19}").expect("regex"));

/// Separators people put inside numbers: `138 0013 8000`, `0571-8765 4321`, `(0571)87654321`.
fn separator(c: char) -> bool {
    c.is_whitespace() || "-.()（）—–_/+".contains(c)
}

/// The text with separators between digits removed (an identity number's final X counts as a
/// digit), so a number is found however it is written.
fn collapse_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digitish = |c: char| c.is_ascii_digit() || c == 'x' || c == 'X';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if separator(c) && out.chars().last().is_some_and(|p| p.is_ascii_digit()) {
            let mut j = i;
            while j < chars.len() && separator(chars[j]) {
                j += 1;
            }
            if j < chars.len() && digitish(chars[j]) {
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Whether an 18-character identity number's check digit is right (GB 11643).
pub fn valid_id_number(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

/// The kinds of personal data found in `text` (empty when none). `names` and `phones` are the
/// linked patient's own.
pub fn personal_data(text: &str, names: &[String], phones: &[String]) -> Vec<&'static str> {
    let mut found = Vec::new();
    let collapsed = collapse_numbers(text);
    let id_found = ID_NUMBER.find_iter(&collapsed).any(|m| valid_id_number(m.as_str()));
    if id_found {
        found.push("an identity number");
    }
    if MOBILE.is_match(&collapsed) || LANDLINE.is_match(&collapsed) {
        found.push("a phone number");
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if phones
        .iter()
        .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
        .any(|p| p.len() >= 7 && digits.contains(&p))
        && !found.contains(&"a phone number")
    {
        found.push("a phone number");
    }
    if EMAIL.is_match(text) {
        found.push("an e-mail address");
    }
    if !id_found && found.is_empty() && LONG_DIGITS.is_match(&collapsed) {
        found.push("a card or account number");
    }
    let lower = text.to_lowercase();
    if names
        .iter()
        .map(|n| n.trim().to_lowercase())
        .any(|n| n.chars().count() >= 2 && lower.contains(&n))
    {
        found.push("the patient's name");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_with_personal_data_are_caught() {
        let none: &[String] = &[];
        assert!(personal_data("感谢您的反馈，我院已安排专人联系您。", none, none).is_empty());
        assert_eq!(
            personal_data("请拨打 138 0013 8000 联系", none, none),
            vec!["a phone number"]
        );
        assert_eq!(personal_data("电话0571-87654321", none, none), vec!["a phone number"]);
        // A synthetic identity number with a valid check digit.
        assert!(valid_id_number("11010519491231002X"));
        assert!(!valid_id_number("110105194912310021"));
        assert_eq!(
            personal_data("身份证 11010519491231002X", none, none),
            vec!["an identity number"]
        );
        assert_eq!(
            personal_data("mail me: a.b@example.com", none, none),
            vec!["an e-mail address"]
        );
        let names = vec!["张伟".to_string()];
        assert_eq!(personal_data("张伟先生您好", &names, none), vec!["the patient's name"]);
        // However the numbers are written.
        for text in [
            "身份证 110105 19491231 002x",
            "电话 1380-013-8000",
            "电话 138.0013.8000",
            "+86 138 0013 8000",
            "电话 0571 87654321",
            "电话（0571）87654321",
        ] {
            assert!(!personal_data(text, none, none).is_empty(), "{text}");
        }
        let latin = vec!["Zhang Wei".to_string()];
        assert_eq!(
            personal_data("Dear ZHANG WEI,", &latin, none),
            vec!["the patient's name"]
        );
        // The linked patient's own number, even without a mobile prefix.
        let phones = vec!["87654321".to_string()];
        assert_eq!(personal_data("请联系 8765 4321", none, &phones), vec!["a phone number"]);
        // Hotline numbers of the hospital are short and fine; dates are fine.
        assert!(personal_data("服务热线 12320，2026年6月1日", none, none).is_empty());
    }
}
