//! FHIR R4 mapping of patients and related persons, both ways. Pure: JSON in, records out, and
//! the reverse; no I/O. What cannot be mapped is reported with its FHIR path, never dropped.
//!
//! Decisions (see also docs in `proto/hcrm/patients/v1/fhir.proto`):
//! - Identifiers: the member code under [`FhirConfig::member_code_system`]; external ids under
//!   `urn:hcrm:source:{system}` (or the URI configured per source system); the identity number
//!   under the Chinese resident ID OID [`RESIDENT_ID_SYSTEM`] (other document types under
//!   `urn:hcrm:identity:{type}`), only in the FULL view.
//! - Names: the Chinese name is an `official` HumanName with `text`, `family` (compound surnames
//!   such as 欧阳 and 司马 recognised from a list) and `given`, marked ideographic with the
//!   `iso21090-EN-representation` extension (`IDE`); the pinyin is a second HumanName with use
//!   `usual` marked alphabetic (`ABC`). On import the pinyin name is recomputed from the Chinese
//!   name; a pinyin that differs from ours is reported as unmapped.
//! - Telecom: phones (`mobile` for mainland mobile numbers, `home` otherwise; the first has
//!   rank 1), e-mail, and the WeChat id as system `other` with the [`CONTACT_APP_EXTENSION`]
//!   extension valued `wechat`.
//! - Address: `line` = street, `city`, `district`, `state` = province, `postalCode`,
//!   `country` = `CN`.
//! - Gender male/female/other/unknown; birthDate; deceasedBoolean or deceasedDateTime (date
//!   of death); maritalStatus as v3-MaritalStatus S/M/D/W.
//! - `meta`, `text` (narrative), `language`, `implicitRules` and `active: true` are read and
//!   need no mapping; everything else without a place here is listed as unmapped.

use super::names::name_keys;
use super::patient::is_code;
use hcrm_kit::ApiError;
use hcrm_proto::patients::{ExternalId, FhirIssue, IdentityType, MaritalStatus, Patient, RelatedPerson, Sex};
use hcrm_proto::types::{Address, Date};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// The identifier system of the mainland resident identity card number (GB 11643), as used in
/// Chinese health information sharing documents.
pub const RESIDENT_ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.3";
pub const V3_MARITAL_STATUS: &str = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
pub const V3_ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
pub const V2_CONTACT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/v2-0131";
pub const EN_REPRESENTATION: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
/// Extension on a `ContactPoint` of system `other` naming the app (`wechat`).
pub const CONTACT_APP_EXTENSION: &str = "urn:hcrm:fhir:StructureDefinition/contact-app";
/// Prefix of external-id identifier systems without a configured URI.
pub const SOURCE_SYSTEM_PREFIX: &str = "urn:hcrm:source:";
/// Largest resource accepted by ImportFhir.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// Surnames of two characters; any other Chinese name's surname is its first character.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "令狐", "夏侯",
    "轩辕", "端木", "独孤", "南宫", "西门", "万俟", "闻人", "澹台", "公冶", "宗政", "濮阳", "太叔", "申屠", "钟离",
    "呼延", "赫连", "百里", "东郭", "司空", "仲孙", "淳于", "单于", "左丘", "拓跋",
];

/// Identity document systems other than the resident ID.
const IDENTITY_SYSTEMS: &[(IdentityType, &str)] = &[
    (IdentityType::ResidentId, RESIDENT_ID_SYSTEM),
    (IdentityType::Passport, "urn:hcrm:identity:passport"),
    (IdentityType::HkMacaoPermit, "urn:hcrm:identity:hk-macao-permit"),
    (IdentityType::TaiwanPermit, "urn:hcrm:identity:taiwan-permit"),
    (
        IdentityType::ForeignPermanentResident,
        "urn:hcrm:identity:foreign-permanent-resident",
    ),
    (IdentityType::Other, "urn:hcrm:identity:other"),
];

/// Relationship words of related persons and their v3-RoleCode codes.
const RELATIONSHIPS: &[(&str, &str)] = &[
    ("spouse", "SPS"),
    ("child", "CHILD"),
    ("parent", "PRN"),
    ("guardian", "GUARD"),
    ("friend", "FRND"),
    ("sibling", "SIB"),
    ("grandparent", "GRPRN"),
    ("grandchild", "GRNDCHILD"),
    ("mother", "MTH"),
    ("father", "FTH"),
    ("daughter", "DAU"),
    ("son", "SON"),
    ("husband", "HUSB"),
    ("wife", "WIFE"),
    ("neighbor", "NBOR"),
];

const MARITAL: &[(MaritalStatus, &str, &str)] = &[
    (MaritalStatus::Single, "S", "Never Married"),
    (MaritalStatus::Married, "M", "Married"),
    (MaritalStatus::Divorced, "D", "Divorced"),
    (MaritalStatus::Widowed, "W", "Widowed"),
];

/// FHIR settings (`[patients.fhir]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FhirConfig {
    /// Identifier system of the hospital's member codes, e.g. `urn:oid:…` of the hospital.
    pub member_code_system: String,
    /// Identifier system per source system of external ids; unlisted ones use
    /// `urn:hcrm:source:{system}`.
    pub source_systems: BTreeMap<String, String>,
}

impl Default for FhirConfig {
    fn default() -> Self {
        Self {
            member_code_system: "urn:hcrm:member-code".into(),
            source_systems: BTreeMap::new(),
        }
    }
}

fn is_uri(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.contains(':') && !s.chars().any(char::is_whitespace)
}

impl FhirConfig {
    /// Checks what deserialisation cannot; messages name the key under `section`.
    pub fn check(&self, section: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            is_uri(&self.member_code_system),
            "{section}.member_code_system must be a URI, e.g. urn:oid:1.2.3"
        );
        let mut seen = std::collections::HashSet::new();
        seen.insert(self.member_code_system.as_str());
        for (source, uri) in &self.source_systems {
            anyhow::ensure!(
                is_code(source, 32),
                "{section}.source_systems: {source:?} is not a source system code"
            );
            anyhow::ensure!(is_uri(uri), "{section}.source_systems.{source} must be a URI");
            anyhow::ensure!(
                seen.insert(uri.as_str()) && uri != RESIDENT_ID_SYSTEM,
                "{section}.source_systems.{source}: {uri} is used twice"
            );
        }
        Ok(())
    }

    /// The identifier system of external ids of `source`.
    pub fn source_uri(&self, source: &str) -> String {
        self.source_systems
            .get(source)
            .cloned()
            .unwrap_or_else(|| format!("{SOURCE_SYSTEM_PREFIX}{source}"))
    }

    /// The source system whose external ids use identifier system `uri`.
    pub fn source_of(&self, uri: &str) -> Option<String> {
        if let Some((source, _)) = self.source_systems.iter().find(|(_, u)| *u == uri) {
            return Some(source.clone());
        }
        uri.strip_prefix(SOURCE_SYSTEM_PREFIX)
            .filter(|s| is_code(s, 32))
            .map(str::to_string)
    }
}

/// Orders FHIR paths naturally: `entry[2]` before `entry[10]`.
pub fn path_order(path: &str) -> Vec<Result<u64, String>> {
    path.split(['[', ']'])
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().map_err(|_| s.to_string()))
        .collect()
}

/// Sorts issues by path, naturally.
pub fn sort_issues(list: &mut [FhirIssue]) {
    list.sort_by_cached_key(|i| path_order(&i.path));
}

fn issue(path: impl Into<String>, reason: impl Into<String>) -> FhirIssue {
    FhirIssue {
        path: path.into(),
        reason: reason.into(),
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Splits a name into (family, given): Chinese names by surname (compound surnames from a
/// list), Latin names at the last space. `None` when there is nothing sensible to split (one
/// character, or names with a middle dot such as 阿依古丽·买买提).
pub fn split_name(name: &str) -> Option<(String, Vec<String>)> {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() >= 2 && chars.iter().all(|c| is_cjk(*c)) {
        let n = match COMPOUND_SURNAMES.iter().find(|s| name.starts_with(*s)) {
            Some(_) if chars.len() > 2 => 2,
            _ => 1,
        };
        let family: String = chars[..n].iter().collect();
        let given: String = chars[n..].iter().collect();
        return Some((family, vec![given]));
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.len() >= 2
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\''))
    {
        let (family, given) = words.split_last().expect("two words");
        return Some((family.to_string(), given.iter().map(|s| s.to_string()).collect()));
    }
    None
}

fn date_string(d: &Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// A mainland mobile number (11 digits starting with 1, optionally with +86).
fn is_mobile(phone: &str) -> bool {
    let digits = phone.strip_prefix("+86").unwrap_or(phone);
    digits.len() == 11 && digits.starts_with('1') && digits.chars().all(|c| c.is_ascii_digit())
}

fn address_json(a: &Address) -> Value {
    let mut m = Map::new();
    m.insert("use".into(), json!("home"));
    let text: String = [&a.province, &a.city, &a.district, &a.street]
        .iter()
        .map(|s| s.as_str())
        .collect();
    if !text.is_empty() {
        m.insert("text".into(), json!(text));
    }
    if !a.street.is_empty() {
        m.insert("line".into(), json!([a.street]));
    }
    for (key, value) in [
        ("city", &a.city),
        ("district", &a.district),
        ("state", &a.province),
        ("postalCode", &a.postal_code),
    ] {
        if !value.is_empty() {
            m.insert(key.into(), json!(value));
        }
    }
    m.insert("country".into(), json!("CN"));
    Value::Object(m)
}

fn telecom_json(phones: &[String], email: &str, wechat: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        let mut t = json!({
            "system": "phone",
            "value": phone,
            "use": if is_mobile(phone) { "mobile" } else { "home" },
        });
        if i == 0 {
            t["rank"] = json!(1);
        }
        out.push(t);
    }
    if !email.is_empty() {
        out.push(json!({ "system": "email", "value": email }));
    }
    if !wechat.is_empty() {
        out.push(json!({
            "system": "other",
            "value": wechat,
            "extension": [{ "url": CONTACT_APP_EXTENSION, "valueCode": "wechat" }],
        }));
    }
    out
}

fn human_names(display: &str, pinyin: &str) -> Vec<Value> {
    let mut official = json!({ "use": "official", "text": display });
    let split = split_name(display);
    if let Some((family, given)) = &split {
        official["family"] = json!(family);
        official["given"] = json!(given);
    }
    let ideographic = display.chars().any(is_cjk);
    if ideographic {
        official["extension"] = json!([{ "url": EN_REPRESENTATION, "valueCode": "IDE" }]);
    }
    let mut names = vec![official];
    if ideographic && !pinyin.is_empty() {
        let mut alpha = json!({
            "use": "usual",
            "text": pinyin,
            "extension": [{ "url": EN_REPRESENTATION, "valueCode": "ABC" }],
        });
        // Split the pinyin like the characters when every character has one syllable.
        let syllables: Vec<&str> = pinyin.split(' ').collect();
        if let Some((family, _)) = &split
            && syllables.len() == display.chars().count()
        {
            let n = family.chars().count();
            alpha["family"] = json!(syllables[..n].join(" "));
            alpha["given"] = json!([syllables[n..].join(" ")]);
        }
        names.push(alpha);
    }
    names
}

/// The FHIR R4 `Patient` of a record; the identity number only when `include_protected`.
pub fn patient_resource(cfg: &FhirConfig, p: &Patient, include_protected: bool) -> Value {
    let id = p.name.trim_start_matches("patients/");
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("Patient"));
    r.insert("id".into(), json!(id));
    if let Some(t) = &p.update_time {
        r.insert(
            "meta".into(),
            json!({ "lastUpdated": hcrm_kit::time::rfc3339(t.seconds * 1_000_000 + i64::from(t.nanos / 1_000)) }),
        );
    }
    let mut identifiers = Vec::new();
    if !p.code.is_empty() {
        identifiers.push(json!({ "use": "usual", "system": cfg.member_code_system, "value": p.code }));
    }
    for ext in &p.external_ids {
        identifiers.push(
            json!({ "use": "secondary", "system": cfg.source_uri(&ext.source_system), "value": ext.external_id }),
        );
    }
    if include_protected && !p.masked && !p.identity_number.is_empty() {
        let kind = IdentityType::try_from(p.identity_type).unwrap_or(IdentityType::Other);
        if let Some((_, system)) = IDENTITY_SYSTEMS.iter().find(|(t, _)| *t == kind) {
            identifiers.push(json!({ "use": "official", "system": system, "value": p.identity_number }));
        }
    }
    if !identifiers.is_empty() {
        r.insert("identifier".into(), Value::Array(identifiers));
    }
    r.insert(
        "active".into(),
        json!(p.delete_time.is_none() && p.merged_into.is_empty()),
    );
    r.insert(
        "name".into(),
        Value::Array(human_names(&p.display_name, &p.name_pinyin)),
    );
    let telecom = telecom_json(&p.phones, &p.email, &p.wechat_id);
    if !telecom.is_empty() {
        r.insert("telecom".into(), Value::Array(telecom));
    }
    let gender = match Sex::try_from(p.sex).unwrap_or(Sex::Unspecified) {
        Sex::Male => "male",
        Sex::Female => "female",
        Sex::Other => "other",
        Sex::Unspecified => "unknown",
    };
    r.insert("gender".into(), json!(gender));
    if let Some(d) = &p.birth_date {
        r.insert("birthDate".into(), json!(date_string(d)));
    }
    if let Some(d) = &p.death_date {
        r.insert("deceasedDateTime".into(), json!(date_string(d)));
    } else if p.deceased {
        r.insert("deceasedBoolean".into(), json!(true));
    }
    if let Some(a) = &p.address
        && *a != Address::default()
    {
        r.insert("address".into(), json!([address_json(a)]));
    }
    if let Some((_, code, display)) = MARITAL.iter().find(|(m, _, _)| *m as i32 == p.marital_status) {
        r.insert(
            "maritalStatus".into(),
            json!({ "coding": [{ "system": V3_MARITAL_STATUS, "code": code, "display": display }] }),
        );
    }
    Value::Object(r)
}

/// The FHIR R4 `RelatedPerson` of a related person of patient `patient_id`.
pub fn related_resource(r: &RelatedPerson, patient_id: &str) -> Value {
    let id = r.name.rsplit('/').next().unwrap_or_default();
    let mut out = Map::new();
    out.insert("resourceType".into(), json!("RelatedPerson"));
    out.insert("id".into(), json!(id));
    out.insert(
        "patient".into(),
        json!({ "reference": format!("Patient/{patient_id}") }),
    );
    let mut relationship = Vec::new();
    let mut rel = json!({ "text": r.relationship });
    if let Some((_, code)) = RELATIONSHIPS.iter().find(|(w, _)| *w == r.relationship) {
        rel["coding"] = json!([{ "system": V3_ROLE_CODE, "code": code }]);
    }
    relationship.push(rel);
    if r.emergency_contact {
        relationship
            .push(json!({ "coding": [{ "system": V2_CONTACT_ROLE, "code": "C", "display": "Emergency Contact" }] }));
    }
    out.insert("relationship".into(), Value::Array(relationship));
    let mut name = json!({ "text": r.display_name });
    if let Some((family, given)) = split_name(&r.display_name) {
        name["family"] = json!(family);
        name["given"] = json!(given);
    }
    out.insert("name".into(), json!([name]));
    let telecom = telecom_json(&r.phones, &r.email, "");
    if !telecom.is_empty() {
        out.insert("telecom".into(), Value::Array(telecom));
    }
    if let Some(a) = &r.address
        && *a != Address::default()
    {
        out.insert("address".into(), json!([address_json(a)]));
    }
    Value::Object(out)
}

/// A Bundle of type `collection` with the patient and its related persons.
pub fn export_bundle(cfg: &FhirConfig, p: &Patient, related: &[RelatedPerson], include_protected: bool) -> Value {
    let id = p.name.trim_start_matches("patients/");
    let mut entries =
        vec![json!({ "fullUrl": format!("urn:uuid:{id}"), "resource": patient_resource(cfg, p, include_protected) })];
    for r in related {
        let rid = r.name.rsplit('/').next().unwrap_or_default();
        entries.push(json!({ "fullUrl": format!("urn:uuid:{rid}"), "resource": related_resource(r, id) }));
    }
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}

/// One Patient of an import, mapped.
#[derive(Debug, Clone, Default)]
pub struct MappedPatient {
    /// Index of the entry in the Bundle (0 for a single resource).
    pub index: i32,
    /// `Patient.id` in the source (or the identifier used as the key).
    pub fhir_id: String,
    /// The upsert key: (source system, Patient.id).
    pub key: ExternalId,
    pub patient: Patient,
    /// Further external ids from identifiers of known source systems.
    pub external_ids: Vec<ExternalId>,
    pub related: Vec<MappedRelated>,
    pub errors: Vec<FhirIssue>,
    pub unmapped: Vec<FhirIssue>,
    /// Record field path (`patient.phones[1]`) → FHIR path, to report validation by FHIR path.
    pub paths: HashMap<String, String>,
}

/// A related person of an import, mapped; `path` is its FHIR resource path.
#[derive(Debug, Clone, Default)]
pub struct MappedRelated {
    pub path: String,
    pub fhir_id: String,
    pub related: RelatedPerson,
}

/// What an import resource holds.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub patients: Vec<MappedPatient>,
    /// Entries that belong to no Patient.
    pub unmapped: Vec<FhirIssue>,
}

/// Parses and maps an import: a `Patient` or a `Bundle` of them. Malformed JSON, a resource
/// that is neither, or a Bundle of another type is INVALID_ARGUMENT naming `resource_json…`.
pub fn map_import(cfg: &FhirConfig, text: &str, source_system: &str) -> Result<Mapped, ApiError> {
    let field = "resource_json";
    if text.trim().is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    if text.len() > MAX_JSON_BYTES {
        return Err(ApiError::invalid(
            field,
            format!("is larger than {MAX_JSON_BYTES} bytes"),
        ));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| ApiError::invalid(field, format!("is not valid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(ApiError::invalid(field, "must be a JSON object (a FHIR resource)"));
    };
    let kind = obj.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "Patient" => {
            let mapped = map_patient(cfg, obj, "", 0, source_system);
            Ok(Mapped {
                patients: vec![mapped],
                unmapped: Vec::new(),
            })
        }
        "Bundle" => map_bundle(cfg, obj, source_system),
        "" => Err(ApiError::invalid(
            format!("{field}.resourceType"),
            "is required: Patient or Bundle",
        )),
        other => Err(ApiError::invalid(
            format!("{field}.resourceType"),
            format!("{other} is not imported: send a Patient or a Bundle of Patients"),
        )),
    }
}

fn map_bundle(cfg: &FhirConfig, obj: &Map<String, Value>, source_system: &str) -> Result<Mapped, ApiError> {
    let bundle_type = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    if !matches!(bundle_type, "collection" | "transaction" | "batch" | "searchset") {
        return Err(ApiError::invalid(
            "resource_json.type",
            format!("Bundle type {bundle_type:?} is not imported: use collection, transaction or batch"),
        ));
    }
    let empty = Vec::new();
    let entries = match obj.get("entry") {
        None => &empty,
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::invalid("resource_json.entry", "must be an array")),
    };
    let mut out = Mapped::default();
    // Where each Patient is, by the references that may point to it.
    let mut by_ref: HashMap<String, usize> = HashMap::new();
    let mut related = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("entry[{i}]");
        let Some(resource) = entry.get("resource").and_then(Value::as_object) else {
            out.unmapped.push(issue(&path, "entry without a resource"));
            continue;
        };
        let kind = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "Patient" => {
                let mapped = map_patient(cfg, resource, &format!("{path}.resource."), i as i32, source_system);
                let n = out.patients.len();
                if let Some(full) = entry.get("fullUrl").and_then(Value::as_str) {
                    by_ref.insert(full.to_string(), n);
                }
                if let Some(id) = resource.get("id").and_then(Value::as_str) {
                    by_ref.insert(format!("Patient/{id}"), n);
                }
                out.patients.push(mapped);
            }
            "RelatedPerson" => related.push((i, resource)),
            other => out.unmapped.push(issue(
                format!("{path}.resource"),
                format!("{other} resources are not imported"),
            )),
        }
    }
    for (i, resource) in related {
        let path = format!("entry[{i}].resource");
        let reference = resource
            .get("patient")
            .and_then(|p| p.get("reference"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match by_ref.get(reference) {
            Some(&n) => {
                let target = &mut out.patients[n];
                let (mapped, unmapped) = map_related(resource, &path);
                target.unmapped.extend(unmapped);
                target.related.push(mapped);
            }
            None => out.unmapped.push(issue(
                format!("{path}.patient"),
                format!("the patient {reference:?} is not in the Bundle"),
            )),
        }
    }
    sort_issues(&mut out.unmapped);
    Ok(out)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn array_of<'a>(v: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn has_representation(name: &Value, code: &str) -> bool {
    name.get("extension").and_then(Value::as_array).is_some_and(|exts| {
        exts.iter()
            .any(|e| str_of(e, "url") == EN_REPRESENTATION && str_of(e, "valueCode") == code)
    })
}

/// The display name of a HumanName: its text, or family and given put together.
fn name_text(name: &Value) -> String {
    let text = str_of(name, "text").trim();
    if !text.is_empty() {
        return text.to_string();
    }
    let family = str_of(name, "family").trim();
    let given: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).map(str::trim).collect())
        .unwrap_or_default();
    if family.chars().any(is_cjk) || given.iter().any(|g| g.chars().any(is_cjk)) {
        format!("{family}{}", given.concat())
    } else {
        let mut parts = given;
        if !family.is_empty() {
            parts.push(family);
        }
        parts.join(" ")
    }
}

/// A FHIR `date` as a full calendar date; `Ok(None)` for a partial date (year or year-month).
fn parse_date(text: &str) -> Result<Option<Date>, &'static str> {
    let date_part = text.get(..10).unwrap_or(text);
    let parts: Vec<&str> = date_part.split('-').collect();
    let num = |s: &str, len: usize| {
        (s.len() == len && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<i32>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [y] | [y, _] if num(y, 4).is_some() && text.len() <= 7 => Ok(None),
        [y, m, d] => match (num(y, 4), num(m, 2), num(d, 2)) {
            (Some(year), Some(month), Some(day)) => Ok(Some(Date { year, month, day })),
            _ => Err("is not a FHIR date (YYYY-MM-DD)"),
        },
        _ => Err("is not a FHIR date (YYYY-MM-DD)"),
    }
}

fn map_address(a: &Value, path: &str, unmapped: &mut Vec<FhirIssue>) -> Address {
    let mut out = Address {
        province: str_of(a, "state").trim().to_string(),
        city: str_of(a, "city").trim().to_string(),
        district: str_of(a, "district").trim().to_string(),
        postal_code: str_of(a, "postalCode").trim().to_string(),
        street: String::new(),
    };
    let lines: Vec<&str> = a
        .get("line")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).map(str::trim).collect())
        .unwrap_or_default();
    out.street = lines.join(" ");
    if out.street.is_empty() && out.province.is_empty() && out.city.is_empty() && out.district.is_empty() {
        // Only free text: keep it as the street rather than lose it.
        out.street = str_of(a, "text").trim().to_string();
    }
    let country = str_of(a, "country").trim();
    if !matches!(country, "" | "CN" | "CHN" | "China" | "中国" | "中华人民共和国") {
        unmapped.push(issue(
            format!("{path}.country"),
            format!("only addresses in China are kept; {country} was dropped"),
        ));
    }
    if let Some(obj) = a.as_object() {
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "use" | "type" | "text" | "line" | "city" | "district" | "state" | "postalCode" | "country"
            ) {
                unmapped.push(issue(format!("{path}.{key}"), "address element not kept"));
            }
        }
    }
    out
}

/// Telecom of a person: phones, the first e-mail, the WeChat id; the rest unmapped. Records
/// where each phone came from in `paths` under `{prefix}phones[i]` / `{prefix}email`.
struct Telecom {
    phones: Vec<String>,
    email: String,
    wechat: String,
}

fn map_telecom(
    list: &[Value],
    base: &str,
    record_prefix: &str,
    unmapped: &mut Vec<FhirIssue>,
    paths: &mut HashMap<String, String>,
) -> Telecom {
    let mut out = Telecom {
        phones: Vec::new(),
        email: String::new(),
        wechat: String::new(),
    };
    // Rank 1 first, then unranked in order.
    let mut ordered: Vec<(usize, &Value)> = list.iter().enumerate().collect();
    ordered.sort_by_key(|(i, t)| (t.get("rank").and_then(Value::as_u64).unwrap_or(u64::MAX), *i));
    for (i, t) in ordered {
        let path = format!("{base}telecom[{i}]");
        let value = str_of(t, "value").trim();
        if value.is_empty() {
            unmapped.push(issue(&path, "contact point without a value"));
            continue;
        }
        if str_of(t, "use") == "old" {
            unmapped.push(issue(&path, "contact points no longer in use are not kept"));
            continue;
        }
        let app = t
            .get("extension")
            .and_then(Value::as_array)
            .and_then(|exts| exts.iter().find(|e| str_of(e, "url") == CONTACT_APP_EXTENSION))
            .map(|e| str_of(e, "valueCode"));
        match str_of(t, "system") {
            "phone" | "sms" => {
                paths.insert(format!("{record_prefix}phones[{}]", out.phones.len()), path.clone());
                out.phones.push(value.to_string());
            }
            "email" if out.email.is_empty() => {
                paths.insert(format!("{record_prefix}email"), path.clone());
                out.email = value.to_string();
            }
            "email" => unmapped.push(issue(&path, "only one e-mail address is kept")),
            "other" if app == Some("wechat") && out.wechat.is_empty() => {
                paths.insert(format!("{record_prefix}wechat_id"), path.clone());
                out.wechat = value.to_string();
            }
            system => unmapped.push(issue(&path, format!("contact system {system:?} is not kept"))),
        }
    }
    out
}

fn map_related(r: &Map<String, Value>, path: &str) -> (MappedRelated, Vec<FhirIssue>) {
    let mut unmapped = Vec::new();
    let mut paths = HashMap::new();
    let mut out = RelatedPerson::default();
    let base = format!("{path}.");
    let names = array_of(r, "name");
    if let Some(first) = names.first() {
        out.display_name = name_text(first);
    }
    for i in 1..names.len() {
        unmapped.push(issue(
            format!("{base}name[{i}]"),
            "only one name of a related person is kept",
        ));
    }
    let mut emergency = false;
    let mut relationship = String::new();
    for (i, rel) in array_of(r, "relationship").iter().enumerate() {
        let codings = rel.get("coding").and_then(Value::as_array).cloned().unwrap_or_default();
        if codings
            .iter()
            .any(|c| str_of(c, "system") == V2_CONTACT_ROLE && str_of(c, "code") == "C")
        {
            emergency = true;
            continue;
        }
        let word = codings
            .iter()
            .filter(|c| str_of(c, "system") == V3_ROLE_CODE)
            .find_map(|c| RELATIONSHIPS.iter().find(|(_, code)| *code == str_of(c, "code")))
            .map(|(w, _)| w.to_string())
            .or_else(|| Some(str_of(rel, "text").trim().to_lowercase()).filter(|t| !t.is_empty()));
        match word {
            Some(w) if relationship.is_empty() => relationship = w,
            _ => unmapped.push(issue(
                format!("{base}relationship[{i}]"),
                "only one relationship is kept",
            )),
        }
    }
    out.relationship = if relationship.is_empty() {
        "other".into()
    } else {
        relationship
    };
    out.emergency_contact = emergency;
    let telecom = map_telecom(array_of(r, "telecom"), &base, "", &mut unmapped, &mut paths);
    out.phones = telecom.phones;
    out.email = telecom.email;
    if !telecom.wechat.is_empty() {
        unmapped.push(issue(
            format!("{base}telecom"),
            "a related person's WeChat id is not kept",
        ));
    }
    let addresses = array_of(r, "address");
    if let Some(a) = addresses.first() {
        out.address = Some(map_address(a, &format!("{base}address[0]"), &mut unmapped));
    }
    for i in 1..addresses.len() {
        unmapped.push(issue(format!("{base}address[{i}]"), "only one address is kept"));
    }
    for key in r.keys() {
        if !matches!(
            key.as_str(),
            "resourceType"
                | "id"
                | "meta"
                | "text"
                | "language"
                | "patient"
                | "relationship"
                | "name"
                | "telecom"
                | "address"
                | "active"
        ) {
            unmapped.push(issue(format!("{base}{key}"), "not kept for related persons"));
        }
    }
    let fhir_id = r.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    (
        MappedRelated {
            path: path.to_string(),
            fhir_id,
            related: out,
        },
        unmapped,
    )
}

/// Maps one Patient; `base` is its path prefix (`entry[2].resource.` or empty).
fn map_patient(cfg: &FhirConfig, r: &Map<String, Value>, base: &str, index: i32, source_system: &str) -> MappedPatient {
    let mut m = MappedPatient {
        index,
        ..Default::default()
    };
    let p = &mut m.patient;
    let at = |s: &str| format!("{base}{s}");
    let root = base.trim_end_matches('.').to_string();
    let root = if root.is_empty() { "Patient".to_string() } else { root };
    m.paths.insert("patient".into(), root.clone());

    let fhir_id = r
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let key_system = cfg.source_uri(source_system);

    // Identifiers.
    let mut key_from_identifier = None;
    for (i, ident) in array_of(r, "identifier").iter().enumerate() {
        let path = at(&format!("identifier[{i}]"));
        let system = str_of(ident, "system").trim();
        let value = str_of(ident, "value").trim();
        if value.is_empty() {
            m.unmapped.push(issue(&path, "identifier without a value"));
            continue;
        }
        if system == cfg.member_code_system {
            if p.code.is_empty() {
                p.code = value.to_string();
                m.paths.insert("patient.code".into(), format!("{path}.value"));
            } else {
                m.unmapped.push(issue(&path, "a second member code is not kept"));
            }
        } else if let Some((kind, _)) = IDENTITY_SYSTEMS.iter().find(|(_, s)| *s == system) {
            if p.identity_number.is_empty() {
                p.identity_type = *kind as i32;
                p.identity_number = value.to_string();
                m.paths
                    .insert("patient.identity_number".into(), format!("{path}.value"));
                m.paths.insert("patient.identity_type".into(), format!("{path}.system"));
            } else {
                m.unmapped.push(issue(&path, "a second identity document is not kept"));
            }
        } else if system == key_system {
            key_from_identifier.get_or_insert_with(|| value.to_string());
        } else if let Some(source) = cfg.source_of(system) {
            let n = m.external_ids.len();
            m.paths.insert(format!("patient.external_ids[{n}]"), path.clone());
            m.external_ids.push(ExternalId {
                source_system: source,
                external_id: value.to_string(),
            });
        } else if system.is_empty() {
            m.unmapped.push(issue(&path, "identifier without a system"));
        } else {
            m.unmapped
                .push(issue(&path, format!("unsupported identifier system {system}")));
        }
    }
    // The upsert key: Patient.id, or the identifier under the source system's URI.
    let key = if !fhir_id.is_empty() {
        Some(fhir_id.clone())
    } else {
        key_from_identifier
    };
    match key {
        Some(key) => {
            m.fhir_id = key.clone();
            m.key = ExternalId {
                source_system: source_system.to_string(),
                external_id: key,
            };
        }
        None => m.errors.push(issue(
            at("id"),
            format!("is required: with source_system it is the upsert key (or an identifier with system {key_system})"),
        )),
    }
    m.paths.insert("rows.external_id".into(), at("id"));

    // Names.
    let names = array_of(r, "name");
    let main = names
        .iter()
        .position(|n| has_representation(n, "IDE"))
        .or_else(|| names.iter().position(|n| str_of(n, "use") == "official"))
        .or_else(|| {
            names
                .iter()
                .position(|n| !has_representation(n, "ABC") && !has_representation(n, "SYL"))
        })
        .or(if names.is_empty() { None } else { Some(0) });
    if let Some(i) = main {
        p.display_name = name_text(&names[i]);
        m.paths.insert("patient.display_name".into(), at(&format!("name[{i}]")));
    } else {
        m.paths.insert("patient.display_name".into(), at("name"));
    }
    let computed = name_keys(&p.display_name).spaced;
    for (i, n) in names.iter().enumerate() {
        if Some(i) == main {
            continue;
        }
        let path = at(&format!("name[{i}]"));
        if has_representation(n, "ABC") || has_representation(n, "SYL") {
            let theirs = name_text(n).to_lowercase();
            if theirs.split_whitespace().collect::<Vec<_>>() != computed.split_whitespace().collect::<Vec<_>>() {
                m.unmapped.push(issue(
                    path,
                    format!("the pinyin is computed from the name ({computed}); {theirs} was not kept"),
                ));
            }
        } else {
            m.unmapped.push(issue(path, "only one name is kept"));
        }
    }

    // Telecom.
    let mut telecom_unmapped = Vec::new();
    let telecom = map_telecom(
        array_of(r, "telecom"),
        base,
        "patient.",
        &mut telecom_unmapped,
        &mut m.paths,
    );
    m.unmapped.extend(telecom_unmapped);
    p.phones = telecom.phones;
    p.email = telecom.email;
    p.wechat_id = telecom.wechat;

    // Gender, birth, death.
    match r.get("gender").map(|g| g.as_str().unwrap_or("?")) {
        None | Some("unknown") => {}
        Some("male") => p.sex = Sex::Male as i32,
        Some("female") => p.sex = Sex::Female as i32,
        Some("other") => p.sex = Sex::Other as i32,
        Some(other) => m.errors.push(issue(
            at("gender"),
            format!("{other:?} is not male, female, other or unknown"),
        )),
    }
    if let Some(birth) = r.get("birthDate") {
        match parse_date(birth.as_str().unwrap_or_default()) {
            Ok(Some(d)) => {
                p.birth_date = Some(d);
                m.paths.insert("patient.birth_date".into(), at("birthDate"));
            }
            Ok(None) => m.unmapped.push(issue(at("birthDate"), "partial dates are not kept")),
            Err(why) => m.errors.push(issue(at("birthDate"), why)),
        }
    }
    if let Some(dead) = r.get("deceasedBoolean") {
        match dead.as_bool() {
            Some(d) => p.deceased = d,
            None => m.errors.push(issue(at("deceasedBoolean"), "must be true or false")),
        }
    }
    if let Some(when) = r.get("deceasedDateTime") {
        p.deceased = true;
        m.paths.insert("patient.deceased".into(), at("deceasedDateTime"));
        match parse_date(when.as_str().unwrap_or_default()) {
            Ok(Some(d)) => {
                p.death_date = Some(d);
                m.paths.insert("patient.death_date".into(), at("deceasedDateTime"));
            }
            Ok(None) => m.unmapped.push(issue(
                at("deceasedDateTime"),
                "partial dates are not kept; recorded as deceased",
            )),
            Err(why) => m.errors.push(issue(at("deceasedDateTime"), why)),
        }
    }

    // Address.
    let addresses = array_of(r, "address");
    let home = addresses
        .iter()
        .position(|a| str_of(a, "use") == "home")
        .or(if addresses.is_empty() { None } else { Some(0) });
    for (i, a) in addresses.iter().enumerate() {
        let path = at(&format!("address[{i}]"));
        if Some(i) == home {
            p.address = Some(map_address(a, &path, &mut m.unmapped));
            m.paths.insert("patient.address".into(), path);
        } else {
            m.unmapped.push(issue(path, "only one address is kept"));
        }
    }

    // Marital status.
    if let Some(ms) = r.get("maritalStatus") {
        let code = ms
            .get("coding")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| str_of(c, "system") == V3_MARITAL_STATUS))
            .map(|c| str_of(c, "code"));
        match code.and_then(|code| MARITAL.iter().find(|(_, c, _)| *c == code)) {
            Some((status, _, _)) => p.marital_status = *status as i32,
            None => m.unmapped.push(issue(
                at("maritalStatus"),
                "only v3-MaritalStatus S, M, D and W are kept",
            )),
        }
    }

    // Extensions and the rest.
    for (i, e) in array_of(r, "extension").iter().enumerate() {
        m.unmapped.push(issue(
            at(&format!("extension[{i}]")),
            format!("unknown extension {}", str_of(e, "url")),
        ));
    }
    if !array_of(r, "modifierExtension").is_empty() {
        m.errors.push(issue(
            at("modifierExtension"),
            "modifier extensions change the meaning of the resource and are not understood",
        ));
    }
    if r.get("active").and_then(Value::as_bool) == Some(false) {
        m.unmapped
            .push(issue(at("active"), "inactive records are imported as active"));
    }
    for key in r.keys() {
        let reason = match key.as_str() {
            "resourceType" | "id" | "meta" | "text" | "language" | "implicitRules" | "identifier" | "active"
            | "name" | "telecom" | "gender" | "birthDate" | "deceasedBoolean" | "deceasedDateTime" | "address"
            | "maritalStatus" | "extension" | "modifierExtension" => continue,
            "photo" => "photos are not kept",
            "contact" => "contacts are not imported; send them as RelatedPerson resources",
            "generalPractitioner" => "the general practitioner is not kept",
            "managingOrganization" => "the managing organisation is not kept",
            "communication" => "languages are not kept",
            "link" => "links to other patient records are not kept; use MergePatients",
            "multipleBirthBoolean" | "multipleBirthInteger" => "multiple birth is not kept",
            _ => "not a Patient element this service keeps",
        };
        let len = r.get(key).and_then(Value::as_array).map(Vec::len);
        match len {
            Some(n) => {
                for i in 0..n {
                    m.unmapped.push(issue(at(&format!("{key}[{i}]")), reason));
                }
            }
            None => m.unmapped.push(issue(at(key), reason)),
        }
    }
    sort_issues(&mut m.unmapped);
    m
}

/// The FHIR path of a record field path (`patient.phones[1]` → `telecom[3]`): the longest
/// recorded prefix, else the resource itself.
pub fn fhir_path(paths: &HashMap<String, String>, field: &str) -> String {
    let mut probe = field;
    loop {
        if let Some(p) = paths.get(probe) {
            return p.clone();
        }
        match probe.rfind(['.', '[']) {
            Some(cut) => probe = &probe[..cut],
            None => return paths.get("patient").cloned().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FhirConfig {
        FhirConfig::default()
    }

    #[test]
    fn chinese_names_split_at_the_surname() {
        assert_eq!(split_name("张三"), Some(("张".into(), vec!["三".into()])));
        assert_eq!(split_name("欧阳娜娜"), Some(("欧阳".into(), vec!["娜娜".into()])));
        assert_eq!(split_name("司马光"), Some(("司马".into(), vec!["光".into()])));
        // Two characters starting like a compound surname: 欧 is the surname.
        assert_eq!(split_name("欧阳"), Some(("欧".into(), vec!["阳".into()])));
        assert_eq!(split_name("John Smith"), Some(("Smith".into(), vec!["John".into()])));
        assert_eq!(split_name("阿依古丽·买买提"), None);
        assert_eq!(split_name("李"), None);
    }

    #[test]
    fn names_export_with_pinyin_and_import_back() {
        let p = Patient {
            name: "patients/abc".into(),
            display_name: "欧阳娜娜".into(),
            name_pinyin: "ou yang na na".into(),
            ..Default::default()
        };
        let r = patient_resource(&cfg(), &p, false);
        assert_eq!(r["name"][0]["family"], "欧阳");
        assert_eq!(r["name"][0]["given"], json!(["娜娜"]));
        assert_eq!(r["name"][1]["use"], "usual");
        assert_eq!(r["name"][1]["family"], "ou yang");
        assert_eq!(r["name"][1]["given"], json!(["na na"]));
        let mapped = map_import(&cfg(), &r.to_string(), "his").unwrap();
        assert_eq!(mapped.patients[0].patient.display_name, "欧阳娜娜");
        assert_eq!(mapped.patients[0].unmapped, vec![]);
    }

    #[test]
    fn the_identity_number_is_exported_only_when_asked() {
        let p = Patient {
            name: "patients/abc".into(),
            display_name: "张三".into(),
            identity_type: IdentityType::ResidentId as i32,
            identity_number: "110101199003074514".into(),
            code: "P1".into(),
            ..Default::default()
        };
        let masked = patient_resource(&cfg(), &p, false).to_string();
        assert!(!masked.contains("110101199003074514"));
        assert!(!masked.contains(RESIDENT_ID_SYSTEM));
        let full = patient_resource(&cfg(), &p, true);
        assert_eq!(full["identifier"][1]["system"], RESIDENT_ID_SYSTEM);
        assert_eq!(full["identifier"][1]["value"], "110101199003074514");
    }

    #[test]
    fn dates_full_partial_and_wrong() {
        assert_eq!(
            parse_date("1990-03-07"),
            Ok(Some(Date {
                year: 1990,
                month: 3,
                day: 7
            }))
        );
        assert_eq!(
            parse_date("1990-03-07T10:00:00+08:00"),
            Ok(Some(Date {
                year: 1990,
                month: 3,
                day: 7
            }))
        );
        assert_eq!(parse_date("1990"), Ok(None));
        assert_eq!(parse_date("1990-03"), Ok(None));
        assert!(parse_date("07/03/1990").is_err());
        assert!(parse_date("").is_err());
    }

    #[test]
    fn wrong_resources_name_the_field() {
        let err = map_import(&cfg(), "{not json", "his").unwrap_err();
        assert!(err.to_string().contains("resource_json"), "{err}");
        let err = map_import(&cfg(), r#"{"resourceType":"Observation"}"#, "his").unwrap_err();
        assert!(err.to_string().contains("resource_json.resourceType"), "{err}");
        let err = map_import(&cfg(), r#"{"resourceType":"Bundle","type":"document"}"#, "his").unwrap_err();
        assert!(err.to_string().contains("resource_json.type"), "{err}");
    }

    #[test]
    fn unmapped_elements_are_listed() {
        let text = r#"{"resourceType":"Patient","id":"x1",
            "name":[{"text":"王五"},{"text":"Wang Wu Alias"}],
            "photo":[{"contentType":"image/jpeg"}],
            "telecom":[{"system":"fax","value":"0755-1"},{"system":"phone","value":"13800138000","rank":1}],
            "extension":[{"url":"http://example.org/ethnicity","valueString":"汉族"}],
            "communication":[{"language":{"text":"zh"}}]}"#;
        let m = map_import(&cfg(), text, "his").unwrap();
        let p = &m.patients[0];
        let paths: Vec<&str> = p.unmapped.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["communication[0]", "extension[0]", "name[1]", "photo[0]", "telecom[0]"]
        );
        assert_eq!(p.patient.phones, vec!["13800138000"]);
        assert_eq!(p.paths.get("patient.phones[0]").unwrap(), "telecom[1]");
    }

    #[test]
    fn record_paths_translate_to_fhir_paths() {
        let mut paths = HashMap::new();
        paths.insert("patient".to_string(), "entry[2].resource".to_string());
        paths.insert(
            "patient.address".to_string(),
            "entry[2].resource.address[0]".to_string(),
        );
        assert_eq!(
            fhir_path(&paths, "patient.address.province"),
            "entry[2].resource.address[0]"
        );
        assert_eq!(fhir_path(&paths, "patient.notes"), "entry[2].resource");
    }
}
