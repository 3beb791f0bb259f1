//! A patient's rules: what a valid record is, how update masks apply, how the import merges
//! a row into an existing record, what the customer class is, and how protected fields are
//! masked.

use super::identity;
use hcrm_kit::validate::{Violations, normalize_phone};
use hcrm_proto::patients::{
    ContactPreferences, CustomerClass, Education, IdentityType, IncomeBand, IntentGrade, MaritalStatus, MedicalHistory,
    Patient, Sex, ValueTier,
};
use hcrm_proto::types::{Address, ContactChannel, Date};
use serde::{Deserialize, Serialize};

/// Six months, in microseconds: no visit for longer makes a customer "potential" (M class).
pub const ACTIVE_WINDOW_MICROS: i64 = 183 * 24 * 3600 * 1_000_000;

const MAX_PHONES: usize = 5;
const MAX_TAGS: usize = 32;
const MAX_HISTORY: usize = 50;
const MAX_EXTERNAL_IDS: usize = 16;

/// Paths an update mask may name.
pub const UPDATABLE_PATHS: &[&str] = &[
    "code",
    "display_name",
    "sex",
    "birth_date",
    "phones",
    "email",
    "wechat_id",
    "address",
    "address.province",
    "address.city",
    "address.district",
    "address.street",
    "address.postal_code",
    "occupation",
    "industry",
    "education",
    "marital_status",
    "income_band",
    "identity_type",
    "identity_number",
    "bank_card",
    "insurance_number",
    "medical_history",
    "donation_record",
    "tags",
    "department",
    "intent_grade",
    "value_tier",
    "vip",
    "contact_preferences",
    "notes",
    "deceased",
    "death_date",
];

/// Paths that touch protected data: changing them needs the protected values in clear.
pub const PROTECTED_PATHS: &[&str] = &["identity_number", "bank_card", "insurance_number", "medical_history"];

/// The protected part of a patient, sealed as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Protected {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_number: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bank_card: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub insurance_number: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allergies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub genetic_diseases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heart_diseases: Vec<String>,
}

impl Protected {
    /// Moves the protected fields out of `patient`, leaving them empty there.
    pub fn take_from(patient: &mut Patient) -> Protected {
        let history = patient.medical_history.take().unwrap_or_default();
        Protected {
            identity_number: std::mem::take(&mut patient.identity_number),
            bank_card: std::mem::take(&mut patient.bank_card),
            insurance_number: std::mem::take(&mut patient.insurance_number),
            allergies: history.allergies,
            genetic_diseases: history.genetic_diseases,
            heart_diseases: history.heart_diseases,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Protected::default()
    }

    /// Puts the values back into `patient`, in clear.
    pub fn put_into(self, patient: &mut Patient) {
        patient.identity_number = self.identity_number;
        patient.bank_card = self.bank_card;
        patient.insurance_number = self.insurance_number;
        let history = MedicalHistory {
            allergies: self.allergies,
            genetic_diseases: self.genetic_diseases,
            heart_diseases: self.heart_diseases,
        };
        patient.medical_history = (history != MedicalHistory::default()).then_some(history);
    }

    /// Puts masked values into `patient`: ends of numbers kept, history entries starred.
    pub fn put_masked_into(&self, patient: &mut Patient) {
        patient.identity_number = identity::mask(&self.identity_number, 3, 4);
        patient.bank_card = identity::mask(&self.bank_card, 0, 4);
        patient.insurance_number = identity::mask(&self.insurance_number, 0, 4);
        let star = |v: &Vec<String>| v.iter().map(|_| "***".to_string()).collect::<Vec<_>>();
        let history = MedicalHistory {
            allergies: star(&self.allergies),
            genetic_diseases: star(&self.genetic_diseases),
            heart_diseases: star(&self.heart_diseases),
        };
        patient.medical_history = (history != MedicalHistory::default()).then_some(history);
        patient.masked = true;
    }
}

/// The customer class for a last visit at `last_visit` (microseconds), seen at `now`.
pub fn customer_class(last_visit: Option<i64>, now: i64) -> CustomerClass {
    match last_visit {
        Some(t) if now - t <= ACTIVE_WINDOW_MICROS => CustomerClass::Active,
        _ => CustomerClass::Potential,
    }
}

/// Clears what callers may not set (output-only fields); AIP-203 says to ignore them.
pub fn clear_output_only(p: &mut Patient) {
    p.name.clear();
    p.name_pinyin.clear();
    p.name_initials.clear();
    p.customer_class = 0;
    p.last_visit_time = None;
    p.etag.clear();
    p.create_time = None;
    p.update_time = None;
    p.delete_time = None;
    p.merged_into.clear();
    p.masked = false;
}

/// Normalises values that have one canonical form (phones, identity number, tags, department).
pub fn normalize(p: &mut Patient) {
    p.display_name = p.display_name.trim().to_string();
    p.code = p.code.trim().to_uppercase();
    for phone in &mut p.phones {
        if let Some(n) = normalize_phone(phone) {
            *phone = n;
        }
    }
    p.email = p.email.trim().to_lowercase();
    p.identity_number = identity::normalize(&p.identity_number);
    p.bank_card = p
        .bank_card
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    p.insurance_number = p.insurance_number.trim().to_uppercase();
    p.department = p.department.trim().to_lowercase();
    let mut tags: Vec<String> = p.tags.iter().map(|t| t.trim().to_string()).collect();
    tags.sort();
    tags.dedup();
    p.tags = tags;
}

/// Checks a whole patient record after normalisation; `prefix` is the request field holding it.
pub fn validate(p: &Patient, prefix: &str, today: chrono::NaiveDate, v: &mut Violations) {
    let f = |name: &str| format!("{prefix}.{name}");
    v.text(&f("display_name"), &p.display_name, true, 64);
    if !p.code.is_empty() && (p.code.len() > 32 || !p.code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
        v.add(f("code"), "must be 1–32 letters, digits or dashes");
    }
    v.enum_value::<Sex>(&f("sex"), p.sex, false);
    if let Some(date) = &p.birth_date {
        match date_of(date) {
            Some(d) if d > today => v.add(f("birth_date"), "must not be in the future"),
            Some(d) if d < chrono::NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid") => {
                v.add(f("birth_date"), "must be on or after 1900-01-01")
            }
            Some(_) => {}
            None => v.add(f("birth_date"), "is not a real calendar date"),
        }
    }
    if p.phones.len() > MAX_PHONES {
        v.add(f("phones"), format!("at most {MAX_PHONES} phone numbers"));
    }
    for (i, phone) in p.phones.iter().enumerate() {
        v.phone(&format!("{prefix}.phones[{i}]"), phone);
    }
    v.email(&f("email"), &p.email);
    v.text(&f("wechat_id"), &p.wechat_id, false, 64);
    if let Some(address) = &p.address {
        validate_address(address, &f("address"), v);
    }
    v.text(&f("occupation"), &p.occupation, false, 64);
    v.text(&f("industry"), &p.industry, false, 64);
    v.enum_value::<Education>(&f("education"), p.education, false);
    v.enum_value::<MaritalStatus>(&f("marital_status"), p.marital_status, false);
    v.enum_value::<IncomeBand>(&f("income_band"), p.income_band, false);
    v.enum_value::<IdentityType>(&f("identity_type"), p.identity_type, false);
    if !p.identity_number.is_empty() {
        match IdentityType::try_from(p.identity_type) {
            Ok(IdentityType::Unspecified) => v.add(f("identity_type"), "is required with an identity number"),
            Ok(IdentityType::ResidentId) => {
                if let Err(why) = identity::check_resident_id(&p.identity_number) {
                    v.add(f("identity_number"), format!("is not a valid resident ID: {why}"));
                }
            }
            Ok(_) => {
                if !(5..=32).contains(&p.identity_number.len())
                    || !p.identity_number.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    v.add(f("identity_number"), "must be 5–32 letters, digits or dashes");
                }
            }
            Err(_) => {}
        }
    }
    if !p.bank_card.is_empty()
        && let Err(why) = identity::check_bank_card(&p.bank_card)
    {
        v.add(f("bank_card"), format!("is not a valid bank card number: {why}"));
    }
    if !p.insurance_number.is_empty()
        && (p.insurance_number.len() > 32
            || !p
                .insurance_number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        v.add(f("insurance_number"), "must be 1–32 letters, digits or dashes");
    }
    if let Some(history) = &p.medical_history {
        for (name, list) in [
            ("allergies", &history.allergies),
            ("genetic_diseases", &history.genetic_diseases),
            ("heart_diseases", &history.heart_diseases),
        ] {
            if list.len() > MAX_HISTORY {
                v.add(
                    format!("{prefix}.medical_history.{name}"),
                    format!("at most {MAX_HISTORY} entries"),
                );
            }
            for (i, entry) in list.iter().enumerate() {
                v.text(&format!("{prefix}.medical_history.{name}[{i}]"), entry, true, 100);
            }
        }
    }
    v.text(&f("donation_record"), &p.donation_record, false, 500);
    if p.tags.len() > MAX_TAGS {
        v.add(f("tags"), format!("at most {MAX_TAGS} tags"));
    }
    for (i, tag) in p.tags.iter().enumerate() {
        let field = format!("{prefix}.tags[{i}]");
        v.text(&field, tag, true, 32);
        if tag.contains('|') {
            v.add(field, "must not contain |");
        }
    }
    if !p.department.is_empty() && !is_code(&p.department, 64) {
        v.add(
            f("department"),
            "must be a department code: 1–64 lower-case letters, digits, - or _",
        );
    }
    v.enum_value::<IntentGrade>(&f("intent_grade"), p.intent_grade, false);
    v.enum_value::<ValueTier>(&f("value_tier"), p.value_tier, false);
    if let Some(prefs) = &p.contact_preferences {
        validate_preferences(prefs, &f("contact_preferences"), v);
    }
    v.text(&f("notes"), &p.notes, false, 2000);
    if let Some(date) = &p.death_date {
        match date_of(date) {
            None => v.add(f("death_date"), "is not a real calendar date"),
            Some(d) if d > today => v.add(f("death_date"), "must not be in the future"),
            Some(d) if p.birth_date.as_ref().and_then(date_of).is_some_and(|b| d < b) => {
                v.add(f("death_date"), "must not be before the birth date")
            }
            Some(_) if !p.deceased => v.add(f("deceased"), "must be true when a death date is set"),
            Some(_) => {}
        }
    }
    if p.external_ids.len() > MAX_EXTERNAL_IDS {
        v.add(f("external_ids"), format!("at most {MAX_EXTERNAL_IDS} external ids"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, ext) in p.external_ids.iter().enumerate() {
        let field = format!("{prefix}.external_ids[{i}]");
        check_external_id(&ext.source_system, &ext.external_id, &field, v);
        if !seen.insert((ext.source_system.as_str(), ext.external_id.as_str())) {
            v.add(field, "appears twice");
        }
    }
}

/// Checks a (source system, external id) pair.
pub fn check_external_id(source: &str, id: &str, field: &str, v: &mut Violations) {
    if !is_code(source, 32) {
        v.add(
            format!("{field}.source_system"),
            "must be 1–32 lower-case letters, digits, - or _",
        );
    }
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
        v.add(
            format!("{field}.external_id"),
            "must be 1–64 printable ASCII characters",
        );
    }
}

/// A lower-case code: letters, digits, `-`, `_`.
pub fn is_code(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub fn validate_address(a: &Address, field: &str, v: &mut Violations) {
    v.text(&format!("{field}.province"), &a.province, false, 32);
    v.text(&format!("{field}.city"), &a.city, false, 32);
    v.text(&format!("{field}.district"), &a.district, false, 32);
    v.text(&format!("{field}.street"), &a.street, false, 200);
    if !a.postal_code.is_empty() && (a.postal_code.len() != 6 || !a.postal_code.chars().all(|c| c.is_ascii_digit())) {
        v.add(format!("{field}.postal_code"), "must be 6 digits");
    }
}

fn validate_preferences(p: &ContactPreferences, field: &str, v: &mut Violations) {
    for (i, channel) in p.allowed_channels.iter().enumerate() {
        v.enum_value::<ContactChannel>(&format!("{field}.allowed_channels[{i}]"), *channel, true);
    }
    for (name, value) in [
        ("quiet_hours_start", &p.quiet_hours_start),
        ("quiet_hours_end", &p.quiet_hours_end),
    ] {
        if !value.is_empty() && chrono::NaiveTime::parse_from_str(value, "%H:%M").is_err() {
            v.add(format!("{field}.{name}"), "must be a time HH:MM");
        }
    }
    if p.quiet_hours_start.is_empty() != p.quiet_hours_end.is_empty() {
        v.add(
            format!("{field}.quiet_hours_end"),
            "quiet hours need both a start and an end",
        );
    }
}

/// The calendar date of a proto date, if it is one.
pub fn date_of(d: &Date) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)
}

/// `YYYY-MM-DD` of a proto date, or empty.
pub fn date_text(d: Option<&Date>) -> String {
    d.and_then(date_of)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Copies the fields named by `paths` from `src` into `dst`.
pub fn apply_mask(dst: &mut Patient, src: &Patient, paths: &[String]) {
    for path in paths {
        let address = |p: &Patient| p.address.clone().unwrap_or_default();
        match path.as_str() {
            "code" => dst.code = src.code.clone(),
            "display_name" => dst.display_name = src.display_name.clone(),
            "sex" => dst.sex = src.sex,
            "birth_date" => dst.birth_date = src.birth_date,
            "phones" => dst.phones = src.phones.clone(),
            "email" => dst.email = src.email.clone(),
            "wechat_id" => dst.wechat_id = src.wechat_id.clone(),
            "address" => dst.address = src.address.clone(),
            "address.province" | "address.city" | "address.district" | "address.street" | "address.postal_code" => {
                let from = address(src);
                let mut to = address(dst);
                match path.as_str() {
                    "address.province" => to.province = from.province,
                    "address.city" => to.city = from.city,
                    "address.district" => to.district = from.district,
                    "address.street" => to.street = from.street,
                    _ => to.postal_code = from.postal_code,
                }
                dst.address = Some(to);
            }
            "occupation" => dst.occupation = src.occupation.clone(),
            "industry" => dst.industry = src.industry.clone(),
            "education" => dst.education = src.education,
            "marital_status" => dst.marital_status = src.marital_status,
            "income_band" => dst.income_band = src.income_band,
            "identity_type" => dst.identity_type = src.identity_type,
            "identity_number" => dst.identity_number = src.identity_number.clone(),
            "bank_card" => dst.bank_card = src.bank_card.clone(),
            "insurance_number" => dst.insurance_number = src.insurance_number.clone(),
            "medical_history" => dst.medical_history = src.medical_history.clone(),
            "donation_record" => dst.donation_record = src.donation_record.clone(),
            "tags" => dst.tags = src.tags.clone(),
            "department" => dst.department = src.department.clone(),
            "intent_grade" => dst.intent_grade = src.intent_grade,
            "value_tier" => dst.value_tier = src.value_tier,
            "vip" => dst.vip = src.vip,
            "contact_preferences" => dst.contact_preferences = src.contact_preferences.clone(),
            "notes" => dst.notes = src.notes.clone(),
            "deceased" => dst.deceased = src.deceased,
            "death_date" => dst.death_date = src.death_date,
            // grpc::mask_paths ran first; anything else cannot reach here.
            _ => {}
        }
    }
}

/// Merges an imported row into an existing record: what the row carries replaces, what it
/// leaves empty is kept (staff-entered tags, grades and preferences survive a HIS sync).
pub fn merge_import(dst: &mut Patient, row: &Patient) {
    macro_rules! take_text {
        ($($f:ident),*) => { $( if !row.$f.is_empty() { dst.$f = row.$f.clone(); } )* };
    }
    macro_rules! take_enum {
        ($($f:ident),*) => { $( if row.$f != 0 { dst.$f = row.$f; } )* };
    }
    take_text!(
        display_name,
        email,
        wechat_id,
        occupation,
        industry,
        identity_number,
        bank_card,
        insurance_number,
        donation_record,
        department,
        notes,
        code
    );
    take_enum!(
        sex,
        education,
        marital_status,
        income_band,
        identity_type,
        intent_grade,
        value_tier
    );
    if row.birth_date.is_some() {
        dst.birth_date = row.birth_date;
    }
    if !row.phones.is_empty() {
        dst.phones = row.phones.clone();
    }
    if row.address.is_some() {
        dst.address = row.address.clone();
    }
    if row.medical_history.is_some() {
        dst.medical_history = row.medical_history.clone();
    }
    if !row.tags.is_empty() {
        let mut tags = dst.tags.clone();
        tags.extend(row.tags.iter().cloned());
        tags.sort();
        tags.dedup();
        dst.tags = tags;
    }
    if row.vip {
        dst.vip = true;
    }
    if row.deceased {
        dst.deceased = true;
    }
    if row.death_date.is_some() {
        dst.death_date = row.death_date;
    }
    if row.contact_preferences.is_some() {
        dst.contact_preferences = row.contact_preferences.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Patient {
        Patient {
            display_name: "张三".into(),
            phones: vec!["138 0013 8000".into()],
            identity_type: IdentityType::ResidentId as i32,
            identity_number: "110101199003074514".into(),
            ..Default::default()
        }
    }

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn a_valid_patient_passes_and_is_normalised() {
        let mut p = valid();
        normalize(&mut p);
        assert_eq!(p.phones, vec!["13800138000"]);
        let mut v = Violations::new();
        validate(&p, "patient", today(), &mut v);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn wrong_fields_are_all_named() {
        let mut p = valid();
        p.identity_number = "110101199003074515".into();
        p.birth_date = Some(Date {
            year: 2030,
            month: 1,
            day: 1,
        });
        p.tags = vec!["a|b".into()];
        p.sex = 42;
        let mut v = Violations::new();
        validate(&p, "patient", today(), &mut v);
        let Err(hcrm_kit::ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("expected violations")
        };
        let fields: Vec<_> = list.iter().map(|f| f.field.as_str()).collect();
        for expected in [
            "patient.identity_number",
            "patient.birth_date",
            "patient.tags[0]",
            "patient.sex",
        ] {
            assert!(fields.contains(&expected), "{expected} missing from {fields:?}");
        }
    }

    #[test]
    fn customer_class_follows_the_last_visit() {
        let now = 1_000 * ACTIVE_WINDOW_MICROS;
        assert_eq!(customer_class(None, now), CustomerClass::Potential);
        assert_eq!(
            customer_class(Some(now - ACTIVE_WINDOW_MICROS - 1), now),
            CustomerClass::Potential
        );
        assert_eq!(customer_class(Some(now - 1), now), CustomerClass::Active);
    }

    #[test]
    fn masks_and_import_merges() {
        let mut p = valid();
        let protected = Protected::take_from(&mut p);
        assert!(p.identity_number.is_empty());
        protected.put_masked_into(&mut p);
        assert_eq!(p.identity_number, "110***********4514");
        assert!(p.masked);

        let mut existing = Patient {
            tags: vec!["vip-care".into()],
            intent_grade: 1,
            ..valid()
        };
        let row = Patient {
            display_name: "张三".into(),
            phones: vec!["13900000000".into()],
            ..Default::default()
        };
        merge_import(&mut existing, &row);
        assert_eq!(existing.phones, vec!["13900000000"]);
        assert_eq!(existing.tags, vec!["vip-care"]);
        assert_eq!(existing.intent_grade, 1);
    }

    #[test]
    fn masks_are_applied() {
        let mut dst = valid();
        let src = Patient {
            address: Some(Address {
                city: "深圳市".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        apply_mask(&mut dst, &src, &["address.city".into()]);
        assert_eq!(dst.address.unwrap().city, "深圳市");
        assert_eq!(dst.display_name, "张三");
    }
}
