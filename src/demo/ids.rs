//! Identity numbers and phone numbers for synthetic people.
//!
//! Resident identity numbers have the GB 11643 layout and a valid ISO 7064 MOD 11-2 check
//! character (the patients service checks it), but their region codes start with a province
//! code that GB/T 2260 never assigned (38, 39): a random number with a real region code would
//! most likely be some living person's, these cannot be anyone's.

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

/// Mobile prefixes of the three carriers, so numbers look like the ones patients give.
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156", "157",
    "158", "159", "166", "173", "176", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "191",
    "198", "199",
];

/// The ISO 7064 MOD 11-2 check character of the first 17 digits.
pub fn check_character(first17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// An 18-character resident identity number for someone born on `birth` in `region` (four
/// digits); the sequence's last digit is odd for men and even for women, as on real cards.
pub fn resident_id(rng: &mut StdRng, region: &str, birth: NaiveDate, female: bool) -> String {
    let district = rng.random_range(1..=9);
    let order = rng.random_range(0..100);
    let sex_digit = rng.random_range(0..5) * 2 + u32::from(!female);
    let first17 = format!(
        "{region}{district:02}{:04}{:02}{:02}{order:02}{sex_digit}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    let check = check_character(&first17);
    format!("{first17}{check}")
}

/// A mainland mobile number (11 digits).
pub fn mobile(rng: &mut StdRng) -> String {
    let prefix = MOBILE_PREFIXES.choose(rng).copied().unwrap_or("138");
    format!("{prefix}{:08}", rng.random_range(0..100_000_000u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn check_characters_match_published_examples() {
        assert_eq!(check_character("11010519491231002"), 'X');
        assert_eq!(check_character("11010119900307451"), '4');
    }

    #[test]
    fn generated_numbers_carry_birth_sex_and_a_valid_check() {
        let mut rng = StdRng::seed_from_u64(1);
        let birth = NaiveDate::from_ymd_opt(1968, 2, 29).unwrap();
        for female in [true, false] {
            let id = resident_id(&mut rng, "3801", birth, female);
            assert_eq!(id.len(), 18);
            assert!(id.starts_with("3801"));
            assert_eq!(&id[6..14], "19680229");
            let sex = id[16..17].parse::<u32>().unwrap();
            assert_eq!(sex % 2 == 0, female);
            assert_eq!(id.chars().last(), Some(check_character(&id[..17])));
        }
    }

    #[test]
    fn mobiles_have_eleven_digits() {
        let mut rng = StdRng::seed_from_u64(2);
        let phone = mobile(&mut rng);
        assert_eq!(phone.len(), 11);
        assert!(phone.starts_with('1'));
        assert!(phone.chars().all(|c| c.is_ascii_digit()));
    }
}
