//! Related persons: family members, emergency contacts, guardians.

use super::patient::validate_address;
use hcrm_kit::validate::{Violations, normalize_phone};
use hcrm_proto::patients::RelatedPerson;

/// Paths an update mask of a related person may name.
pub const UPDATABLE_PATHS: &[&str] = &[
    "display_name",
    "relationship",
    "phones",
    "email",
    "address",
    "emergency_contact",
    "notes",
];

pub fn normalize(r: &mut RelatedPerson) {
    r.display_name = r.display_name.trim().to_string();
    r.relationship = r.relationship.trim().to_lowercase();
    for phone in &mut r.phones {
        if let Some(n) = normalize_phone(phone) {
            *phone = n;
        }
    }
    r.email = r.email.trim().to_lowercase();
}

pub fn validate(r: &RelatedPerson, prefix: &str, v: &mut Violations) {
    v.text(&format!("{prefix}.display_name"), &r.display_name, true, 64);
    v.text(&format!("{prefix}.relationship"), &r.relationship, true, 32);
    if r.phones.len() > 5 {
        v.add(format!("{prefix}.phones"), "at most 5 phone numbers");
    }
    for (i, phone) in r.phones.iter().enumerate() {
        v.phone(&format!("{prefix}.phones[{i}]"), phone);
    }
    v.email(&format!("{prefix}.email"), &r.email);
    if let Some(a) = &r.address {
        validate_address(a, &format!("{prefix}.address"), v);
    }
    v.text(&format!("{prefix}.notes"), &r.notes, false, 500);
}

pub fn apply_mask(dst: &mut RelatedPerson, src: &RelatedPerson, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "display_name" => dst.display_name = src.display_name.clone(),
            "relationship" => dst.relationship = src.relationship.clone(),
            "phones" => dst.phones = src.phones.clone(),
            "email" => dst.email = src.email.clone(),
            "address" => dst.address = src.address.clone(),
            "emergency_contact" => dst.emergency_contact = src.emergency_contact,
            "notes" => dst.notes = src.notes.clone(),
            _ => {}
        }
    }
}
