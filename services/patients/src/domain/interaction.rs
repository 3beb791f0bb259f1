//! Timeline entries: what counts as a visit, and what a valid entry is.

use hcrm_kit::validate::Violations;
use hcrm_proto::patients::{Interaction, InteractionKind};

const MAX_DETAILS_BYTES: usize = 16 * 1024;

/// Kinds that count as a visit for the customer class.
pub fn is_visit(kind: InteractionKind) -> bool {
    matches!(
        kind,
        InteractionKind::OutpatientVisit | InteractionKind::Admission | InteractionKind::Discharge
    )
}

/// Short name of a kind, as used in event payloads (`DISCHARGE`).
pub fn kind_name(kind: InteractionKind) -> &'static str {
    kind.as_str_name().trim_start_matches("INTERACTION_KIND_")
}

/// Upper-cases diagnosis codes and drops duplicates.
pub fn normalize(i: &mut Interaction) {
    let mut codes: Vec<String> = i.diagnosis_codes.iter().map(|c| c.trim().to_uppercase()).collect();
    codes.dedup();
    i.diagnosis_codes = codes;
}

pub fn validate(i: &Interaction, prefix: &str, now_micros: i64, v: &mut Violations) {
    v.enum_value::<InteractionKind>(&format!("{prefix}.kind"), i.kind, true);
    if !i.department.is_empty() && !super::patient::is_code(&i.department, 64) {
        v.add(
            format!("{prefix}.department"),
            "must be a department code: lower-case letters, digits, - or _",
        );
    }
    match i.occur_time.as_ref().map(hcrm_kit::time::from_timestamp) {
        None => v.add(format!("{prefix}.occur_time"), "is required"),
        Some(None) => v.add(format!("{prefix}.occur_time"), "is out of range"),
        Some(Some(t)) if t > now_micros + 24 * 3600 * 1_000_000 => v.add(
            format!("{prefix}.occur_time"),
            "must not be more than a day in the future",
        ),
        Some(Some(_)) => {}
    }
    v.text(&format!("{prefix}.summary"), &i.summary, false, 500);
    if i.source_system.is_empty() != i.external_id.is_empty() {
        v.add(
            format!("{prefix}.external_id"),
            "source_system and external_id go together",
        );
    } else if !i.source_system.is_empty() {
        super::patient::check_external_id(&i.source_system, &i.external_id, prefix, v);
    }
    if i.diagnosis_codes.len() > 20 {
        v.add(format!("{prefix}.diagnosis_codes"), "at most 20 codes");
    }
    for (n, code) in i.diagnosis_codes.iter().enumerate() {
        let ok = (3..=16).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
        if !ok {
            v.add(
                format!("{prefix}.diagnosis_codes[{n}]"),
                "must be an ICD-10 code such as I10 or E11.9",
            );
        }
    }
    if !i.details_json.is_empty() {
        if i.details_json.len() > MAX_DETAILS_BYTES {
            v.add(format!("{prefix}.details_json"), "must be at most 16 KiB");
        } else if !matches!(
            serde_json::from_str::<serde_json::Value>(&i.details_json),
            Ok(serde_json::Value::Object(_))
        ) {
            v.add(format!("{prefix}.details_json"), "must be a JSON object");
        }
    }
}
