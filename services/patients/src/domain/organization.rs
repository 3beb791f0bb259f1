//! Organisations: partner hospitals, community health centres, companies, government bodies.

use super::patient::validate_address;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::{Organization, OrganizationKind};

pub const UPDATABLE_PATHS: &[&str] = &["display_name", "kind", "address", "phone", "contacts", "notes"];

pub fn normalize(o: &mut Organization) {
    o.display_name = o.display_name.trim().to_string();
    if let Some(n) = hcrm_kit::validate::normalize_phone(&o.phone) {
        o.phone = n;
    }
    for c in &mut o.contacts {
        c.display_name = c.display_name.trim().to_string();
        if let Some(n) = hcrm_kit::validate::normalize_phone(&c.phone) {
            c.phone = n;
        }
        c.email = c.email.trim().to_lowercase();
    }
}

pub fn validate(o: &Organization, prefix: &str, v: &mut Violations) {
    v.text(&format!("{prefix}.display_name"), &o.display_name, true, 128);
    v.enum_value::<OrganizationKind>(&format!("{prefix}.kind"), o.kind, true);
    if let Some(a) = &o.address {
        validate_address(a, &format!("{prefix}.address"), v);
    }
    if !o.phone.is_empty() {
        v.phone(&format!("{prefix}.phone"), &o.phone);
    }
    if o.contacts.len() > 50 {
        v.add(format!("{prefix}.contacts"), "at most 50 contacts");
    }
    for (i, c) in o.contacts.iter().enumerate() {
        let f = format!("{prefix}.contacts[{i}]");
        v.text(&format!("{f}.display_name"), &c.display_name, true, 64);
        v.text(&format!("{f}.title"), &c.title, false, 64);
        if !c.phone.is_empty() {
            v.phone(&format!("{f}.phone"), &c.phone);
        }
        v.email(&format!("{f}.email"), &c.email);
    }
    v.text(&format!("{prefix}.notes"), &o.notes, false, 2000);
}

pub fn apply_mask(dst: &mut Organization, src: &Organization, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "display_name" => dst.display_name = src.display_name.clone(),
            "kind" => dst.kind = src.kind,
            "address" => dst.address = src.address.clone(),
            "phone" => dst.phone = src.phone.clone(),
            "contacts" => dst.contacts = src.contacts.clone(),
            "notes" => dst.notes = src.notes.clone(),
            _ => {}
        }
    }
}
