//! Identity documents: the mainland resident ID check digit (ISO 7064 MOD 11-2) and the
//! normalised form that the blind index hashes.

use chrono::NaiveDate;

/// Upper-cases and strips spaces, so `110101 19900307 451x` and `11010119900307451X` agree.
pub fn normalize(number: &str) -> String {
    number
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Checks an 18-character resident ID: 17 digits, a check character, and a real birth date.
pub fn check_resident_id(number: &str) -> Result<NaiveDate, &'static str> {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() != 18 {
        return Err("must be 18 characters");
    }
    if !chars[..17].iter().all(char::is_ascii_digit) {
        return Err("first 17 characters must be digits");
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = chars[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    if CHECK[(sum % 11) as usize] != chars[17] {
        return Err("check digit does not match");
    }
    let birth: String = chars[6..14].iter().collect();
    NaiveDate::parse_from_str(&birth, "%Y%m%d").map_err(|_| "contains an impossible birth date")
}

/// Checks a bank card number: 12–19 digits with a valid Luhn check digit.
pub fn check_bank_card(number: &str) -> Result<(), &'static str> {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != number.chars().count() || !(12..=19).contains(&digits.len()) {
        return Err("must be 12–19 digits");
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err("check digit does not match (Luhn)");
    }
    Ok(())
}

pub use hcrm_kit::crypto::mask;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_ids_are_checked() {
        assert!(check_resident_id("11010519491231002X").is_ok());
        assert!(check_resident_id("110101199003074514").is_ok());
        assert_eq!(
            check_resident_id("110101199003074515"),
            Err("check digit does not match")
        );
        assert_eq!(check_resident_id("11010119900307451"), Err("must be 18 characters"));
        assert!(check_resident_id("110101199002304510").is_err());
    }

    #[test]
    fn bank_cards_use_luhn() {
        assert!(check_bank_card("4111111111111111").is_ok());
        assert!(check_bank_card("4111111111111112").is_err());
        assert!(check_bank_card("4111-1111").is_err());
    }

    #[test]
    fn masking_keeps_ends() {
        assert_eq!(mask("110101199003074514", 3, 4), "110***********4514");
        assert_eq!(mask("abc", 3, 4), "***");
    }
}
