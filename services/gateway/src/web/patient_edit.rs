//! Editing a patient's file: the everyday fields, grade and tags, consent and contact
//! preferences. Protected fields (identity, bank card, insurance, medical history) are not on
//! this form: changing them needs the clear values, which only the API's FULL view gives.

use super::page::Console;
use crate::api::error::HttpError;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{ContactPreferences, GetPatientRequest, Patient, Sex, UpdatePatientRequest};
use hcrm_proto::types::{Address, ContactChannel};
use http::HeaderMap;
use maud::html;

/// The paths this form owns; the update mask names all of them, so a cleared field is cleared.
const PATHS: &[&str] = &[
    "display_name",
    "sex",
    "birth_date",
    "phones",
    "email",
    "address",
    "occupation",
    "tags",
    "department",
    "intent_grade",
    "value_tier",
    "vip",
    "contact_preferences",
    "notes",
];

const CHANNELS: [(ContactChannel, &str, &str, &str); 7] = [
    (ContactChannel::Phone, "phone", "电话", "phone"),
    (ContactChannel::Sms, "sms", "短信", "SMS"),
    (ContactChannel::Wechat, "wechat", "微信", "WeChat"),
    (ContactChannel::Email, "email", "电子邮件", "e-mail"),
    (ContactChannel::App, "app", "App", "app"),
    (ContactChannel::Mail, "mail", "信件", "letter"),
    (ContactChannel::HomeVisit, "home_visit", "上门", "home visit"),
];

/// The form as typed: every field a string, channels repeated.
#[derive(Debug, Default, Clone)]
struct Entries(Vec<(String, String)>);

impl Entries {
    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn of(p: &Patient) -> Entries {
        let mut e = Vec::new();
        let mut put = |k: &str, v: String| e.push((k.to_string(), v));
        put("etag", p.etag.clone());
        put("display_name", p.display_name.clone());
        put(
            "sex",
            match Sex::try_from(p.sex).unwrap_or_default() {
                Sex::Male => "male",
                Sex::Female => "female",
                Sex::Other => "other",
                Sex::Unspecified => "",
            }
            .into(),
        );
        put("birth_date", super::page::date_text(&p.birth_date));
        put("phones", p.phones.join("\n"));
        put("email", p.email.clone());
        let a = p.address.clone().unwrap_or_default();
        put("province", a.province);
        put("city", a.city);
        put("district", a.district);
        put("street", a.street);
        put("occupation", p.occupation.clone());
        put("tags", p.tags.join(", "));
        put("department", p.department.clone());
        put("intent_grade", p.intent_grade.to_string());
        put("value_tier", p.value_tier.to_string());
        if p.vip {
            put("vip", "true".into());
        }
        let prefs = p.contact_preferences.clone().unwrap_or_default();
        if prefs.do_not_contact {
            put("do_not_contact", "true".into());
        }
        for ch in &prefs.allowed_channels {
            if let Some((_, key, _, _)) = CHANNELS.iter().find(|(c, ..)| *c as i32 == *ch) {
                put("channel", (*key).into());
            }
        }
        put("quiet_start", prefs.quiet_hours_start);
        put("quiet_end", prefs.quiet_hours_end);
        put("notes", p.notes.clone());
        Entries(e)
    }
}

fn client(c: &Console) -> PatientServiceClient<super::page::Authed> {
    PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

fn split(text: &str) -> Vec<String> {
    text.split(['\n', ',', '，', ';', '；'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The patient the form describes, or the field that could not be read.
fn patient_of(name: &str, e: &Entries) -> Result<Patient, HttpError> {
    let birth_date = super::page::parse_day("birth_date", e.get("birth_date"))?.map(super::page::proto_date);
    let number = |field: &str, max: i32| -> Result<i32, HttpError> {
        match e.get(field).trim() {
            "" => Ok(0),
            t => t
                .parse::<i32>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| HttpError::invalid(field, "is not one of the choices")),
        }
    };
    let channels = e
        .all("channel")
        .iter()
        .filter_map(|k| CHANNELS.iter().find(|(_, key, ..)| key == k).map(|(c, ..)| *c as i32))
        .collect();
    Ok(Patient {
        name: name.to_string(),
        display_name: e.get("display_name").trim().to_string(),
        sex: match e.get("sex") {
            "male" => Sex::Male,
            "female" => Sex::Female,
            "other" => Sex::Other,
            _ => Sex::Unspecified,
        } as i32,
        birth_date,
        phones: split(e.get("phones")),
        email: e.get("email").trim().to_string(),
        address: Some(Address {
            province: e.get("province").trim().to_string(),
            city: e.get("city").trim().to_string(),
            district: e.get("district").trim().to_string(),
            street: e.get("street").trim().to_string(),
            ..Default::default()
        }),
        occupation: e.get("occupation").trim().to_string(),
        tags: split(e.get("tags")),
        department: e.get("department").trim().to_string(),
        intent_grade: number("intent_grade", 5)?,
        value_tier: number("value_tier", 4)?,
        vip: e.get("vip") == "true",
        contact_preferences: Some(ContactPreferences {
            allowed_channels: channels,
            do_not_contact: e.get("do_not_contact") == "true",
            quiet_hours_start: e.get("quiet_start").trim().to_string(),
            quiet_hours_end: e.get("quiet_end").trim().to_string(),
            consent_time: None,
        }),
        notes: e.get("notes").trim().to_string(),
        ..Default::default()
    })
}

fn form_page(c: &Console, id: &str, title: &str, e: &Entries, error: Option<&HttpError>) -> Response {
    let options = |field: &str, choices: &[(&str, &'static str, &'static str)]| {
        let current = e.get(field).to_string();
        html! {
            select name=(field) {
                @for (value, zh, en) in choices {
                    option value=(value) selected[current == *value] { (c.tr(zh, en)) }
                }
            }
        }
    };
    let chosen = e.all("channel");
    let body = html! {
        @if let Some(err) = error { (c.error_box(err)) }
        form.card #edit-patient method="post" action={ "/console/patients/" (id) "/edit" } {
            (c.csrf_field())
            input type="hidden" name="etag" value=(e.get("etag"));
            div.row {
                div {
                    label { (c.tr("姓名", "Name")) input name="display_name" required maxlength="64" value=(e.get("display_name")); }
                    label { (c.tr("性别", "Sex")) (options("sex", &[("", "—", "—"), ("male", "男", "male"), ("female", "女", "female"), ("other", "其他", "other")])) }
                    label { (c.tr("出生日期", "Date of birth")) input name="birth_date" type="date" value=(e.get("birth_date")); }
                    label { (c.tr("电话（每行一个）", "Phones (one per line)")) textarea name="phones" rows="2" { (e.get("phones")) } }
                    label { (c.tr("电子邮件", "E-mail")) input name="email" type="email" value=(e.get("email")); }
                    label { (c.tr("职业", "Occupation")) input name="occupation" value=(e.get("occupation")); }
                }
                div {
                    label { (c.tr("省", "Province")) input name="province" value=(e.get("province")); }
                    label { (c.tr("市", "City")) input name="city" value=(e.get("city")); }
                    label { (c.tr("区县", "District")) input name="district" value=(e.get("district")); }
                    label { (c.tr("详细地址", "Street address")) input name="street" value=(e.get("street")); }
                    label { (c.tr("主管科室", "Department")) input name="department" value=(e.get("department")); }
                    label { (c.tr("标签（逗号分隔）", "Tags (comma-separated)")) input name="tags" value=(e.get("tags")); }
                }
            }
            fieldset {
                legend { (c.tr("分级", "Grading")) }
                div.row {
                    label { (c.tr("意向等级", "Intent grade")) (options("intent_grade", &[("0", "—", "—"), ("1", "A", "A"), ("2", "B", "B"), ("3", "C", "C"), ("4", "D", "D"), ("5", "E", "E")])) }
                    label { (c.tr("价值层级", "Value tier")) (options("value_tier", &[("0", "—", "—"), ("1", "高价值", "high"), ("2", "中价值", "middle"), ("3", "普通", "ordinary"), ("4", "低价值", "low")])) }
                    label.choice { input type="checkbox" name="vip" value="true" checked[e.get("vip") == "true"]; "VIP" }
                }
            }
            fieldset #consent {
                legend { (c.tr("联系同意与偏好", "Consent and contact preferences")) }
                label.choice { input type="checkbox" name="do_not_contact" value="true" checked[e.get("do_not_contact") == "true"];
                    (c.tr("患者要求不再联系", "The patient asked not to be contacted")) }
                p.small { (c.tr("患者同意的联系方式：", "Channels the patient consented to:")) }
                @for (_, key, zh, en) in CHANNELS {
                    label.choice { input type="checkbox" name="channel" value=(key) checked[chosen.contains(&key)]; (c.tr(zh, en)) }
                }
                div.row {
                    label { (c.tr("免打扰开始（HH:MM）", "Quiet hours from (HH:MM)")) input name="quiet_start" maxlength="5" value=(e.get("quiet_start")); }
                    label { (c.tr("免打扰结束", "Quiet hours until")) input name="quiet_end" maxlength="5" value=(e.get("quiet_end")); }
                }
            }
            label { (c.tr("备注", "Notes")) textarea name="notes" rows="3" { (e.get("notes")) } }
            button type="submit" { (c.tr("保存", "Save")) }
            " " a href={ "/console/patients/" (id) } { (c.tr("取消", "Cancel")) }
        }
    };
    let mut response = c.page(title, body);
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

pub async fn show(c: Console, Path(id): Path<String>) -> Response {
    let got = client(&c)
        .get_patient(GetPatientRequest {
            name: format!("patients/{id}"),
            ..Default::default()
        })
        .await;
    match got {
        Ok(p) => {
            let p = p.into_inner();
            let title = format!("{} · {}", c.tr("编辑", "Edit"), p.display_name);
            form_page(&c, &id, &title, &Entries::of(&p), None)
        }
        Err(status) => c.error(status),
    }
}

pub async fn save(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let entries = Entries(serde_urlencoded::from_bytes(&body).unwrap_or_default());
    let title = c.tr("编辑患者", "Edit patient");
    let name = format!("patients/{id}");
    let patient = match patient_of(&name, &entries) {
        Ok(p) => p,
        Err(err) => return form_page(&c, &id, title, &entries, Some(&err)),
    };
    let request = UpdatePatientRequest {
        patient: Some(patient),
        update_mask: Some(prost_types::FieldMask {
            paths: PATHS.iter().map(|p| p.to_string()).collect(),
        }),
        etag: entries.get("etag").to_string(),
        reason: String::new(),
    };
    match client(&c).update_patient(request).await {
        Ok(_) => Redirect::to(&format!("/console/patients/{id}")).into_response(),
        Err(status) => form_page(&c, &id, title, &entries, Some(&HttpError::from(status))),
    }
}
