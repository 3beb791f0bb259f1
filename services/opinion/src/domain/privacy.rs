//! What a public reply must not contain: a patient's personal data. A reply goes out on a
//! public platform, so it is checked for mobile and landline numbers, identity numbers (with a
//! valid check digit), e-mail addresses, bank-card-like digit runs and the linked patient's own
//! name and phone number.

use regex::Regex;
use std::sync::LazyLock;

static MOBILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|\D)(1[3-9]\d[\s-]?\d{4}[\s-]?\d{4})(?:\D|$)").expect("regex"));
static LANDLINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:^|\D)0\d{2,3}-\d{7,8}(?:\D|$)").expect("regex"));
static ID_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\d{17}[\dx]").expect("regex"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("regex"));
static LONG_DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d{12,19}").expect("regex"));

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
    if ID_NUMBER.find_iter(text).any(|m| valid_id_number(m.as_str())) {
        found.push("an identity number");
    }
    if MOBILE.is_match(text) || LANDLINE.is_match(text) {
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
    if !found.contains(&"an identity number") && LONG_DIGITS.is_match(text) {
        found.push("a card or account number");
    }
    if names
        .iter()
        .any(|n| n.chars().count() >= 2 && text.contains(n.as_str()))
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
        // Hotline numbers of the hospital are short and fine; dates are fine.
        assert!(personal_data("服务热线 12320，2026年6月1日", none, none).is_empty());
    }
}
