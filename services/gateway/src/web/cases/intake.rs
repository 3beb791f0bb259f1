//! Intake at the hotline or the counter: what the case is, who it is from (a patient found by
//! the patients service's search, or an anonymous contact), who owns it. The form carries a
//! request id, so a resubmitted form (a double click, a retry after a timeout) opens one case.

use super::*;
use axum::extract::RawQuery;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::feedback::{Case, CreateCaseRequest};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{GetPatientRequest, PatientMatch, SearchPatientsRequest};
use http::HeaderMap;
use serde::Deserialize;

const MATCHES: i32 = 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IntakeForm {
    kind: String,
    channel: String,
    /// `code` or `code/subcode`.
    category: String,
    severity: String,
    department: String,
    title: String,
    description: String,
    patient_query: String,
    /// `patients/{id}`; empty for an anonymous or unregistered complainant.
    patient: String,
    contact_name: String,
    contact_phone: String,
    owner: String,
    request_id: String,
    /// `search` finds patients and shows the form again; anything else takes the case.
    op: String,
}

impl Default for IntakeForm {
    fn default() -> Self {
        IntakeForm {
            kind: "complaint".into(),
            channel: "hotline".into(),
            category: String::new(),
            severity: "medium".into(),
            department: String::new(),
            title: String::new(),
            description: String::new(),
            patient_query: String::new(),
            patient: String::new(),
            contact_name: String::new(),
            contact_phone: String::new(),
            owner: String::new(),
            request_id: String::new(),
            op: String::new(),
        }
    }
}

/// The empty form; `?q=` starts with a patient search, `?patient=patients/{id}` with that patient.
pub async fn show(c: Console, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    let form = IntakeForm {
        patient_query: one(&query, "q").trim().to_string(),
        patient: one(&query, "patient").trim().to_string(),
        ..Default::default()
    };
    page(&c, form, None).await
}

pub async fn submit(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let form: IntakeForm = match c.form(&headers, &body) {
        Ok(form) => form,
        Err(err) => return c.error(err),
    };
    if form.op == "search" {
        return page(&c, form, None).await;
    }
    let request = match request(&c, &form) {
        Ok(r) => r,
        Err(err) => return page(&c, form, Some(err)).await,
    };
    match client(&c).create_case(request).await {
        Ok(case) => {
            let case = case.into_inner();
            Redirect::to(&format!("/console/cases/{}?done=created", id_of(&case.name))).into_response()
        }
        Err(status) => page(&c, form, Some(HttpError::from(status))).await,
    }
}

fn request(c: &Console, f: &IntakeForm) -> Result<CreateCaseRequest, HttpError> {
    let kind = parse_slug(KINDS, "case.kind", &f.kind)?;
    let channel = parse_slug(CHANNELS, "case.channel", &f.channel)?;
    let severity = parse_slug(SEVERITIES, "case.severity", &f.severity)?;
    let (category, subcategory) = f.category.trim().split_once('/').unwrap_or((f.category.trim(), ""));
    let case = Case {
        kind: kind.map(|k| k as i32).unwrap_or_default(),
        channel: channel.map(|ch| ch as i32).unwrap_or_default(),
        severity: severity.map(|s| s as i32).unwrap_or_default(),
        category: category.to_string(),
        subcategory: subcategory.to_string(),
        department: f.department.trim().to_string(),
        title: f.title.trim().to_string(),
        description: f.description.trim().to_string(),
        patient: f.patient.trim().to_string(),
        contact_name: f.contact_name.trim().to_string(),
        contact_phone: f.contact_phone.trim().to_string(),
        ..Default::default()
    };
    // Without a request id (a hand-made request), this submission is its own retry key.
    let request_id = if f.request_id.is_empty() {
        format!("console-{}-{}", c.who.account.username, hcrm_kit::new_id())
    } else {
        f.request_id.clone()
    };
    Ok(CreateCaseRequest {
        case: Some(case),
        owner: f.owner.trim().to_string(),
        request_id,
    })
}

async fn search(c: &Console, query: &str) -> Result<Vec<PatientMatch>, HttpError> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
        .search_patients(SearchPatientsRequest {
            query: query.to_string(),
            page_size: MATCHES,
        })
        .await
        .map(|r| r.into_inner().matches)
        .map_err(HttpError::from)
}

/// The chosen patient's name (masked view), so the choice shows who it is.
async fn chosen(c: &Console, patient: &str) -> Option<String> {
    if patient.is_empty() {
        return None;
    }
    PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
        .get_patient(GetPatientRequest {
            name: patient.to_string(),
            ..Default::default()
        })
        .await
        .ok()
        .map(|p| p.into_inner().display_name)
}

async fn page(c: &Console, mut form: IntakeForm, error: Option<HttpError>) -> Response {
    if form.request_id.is_empty() {
        form.request_id = hcrm_kit::new_id();
    }
    let query = form.patient_query.trim().to_string();
    let (tax, found, chosen_name, staff) =
        tokio::join!(taxonomy(c), search(c, &query), chosen(c, &form.patient), staff_list(c));
    let (tax, tax_error) = match tax {
        Ok(t) => (t, None),
        Err(status) => (Vec::new(), Some(HttpError::from(status))),
    };
    let (matches, search_error) = match found {
        Ok(m) => (m, None),
        Err(err) => (Vec::new(), Some(err)),
    };
    let body = html! {
        @if let Some(err) = &error { (c.error_box(err)) }
        @if let Some(err) = &tax_error { (c.error_box(err)) }
        form.card #new-case method="post" action="/console/cases/new" {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(form.request_id);
            fieldset #complainant {
                legend { (c.tr("投诉人", "Complainant")) }
                label { (c.tr("查找患者（姓名、拼音、电话或档案号）", "Find the patient (name, pinyin, phone or code)"))
                    input name="patient_query" value=(form.patient_query) maxlength="64";
                }
                button.secondary type="submit" name="op" value="search" formnovalidate { (c.tr("查找", "Search")) }
                @if let Some(err) = &search_error { (c.error_box(err)) }
                @if !query.is_empty() && matches.is_empty() && search_error.is_none() {
                    p.small #no-patients { (c.tr("没有找到匹配的患者，可登记为匿名或未建档来电人。", "No patient matches; take it as an anonymous or unregistered caller.")) }
                }
                div #patients {
                    label { input type="radio" name="patient" value="" checked[form.patient.is_empty()]; " " (c.tr("匿名或未建档", "Anonymous or not registered")) }
                    @if !form.patient.is_empty() && !matches.iter().any(|m| m.patient.as_ref().is_some_and(|p| p.name == form.patient)) {
                        label data-patient=(form.patient) { input type="radio" name="patient" value=(form.patient) checked; " " (chosen_name.as_deref().unwrap_or(&form.patient)) }
                    }
                    @for m in &matches {
                        @if let Some(p) = &m.patient {
                            label data-patient=(p.name) {
                                input type="radio" name="patient" value=(p.name) checked[p.name == form.patient];
                                " " (p.display_name) " · " (p.code) " · " (p.phones.first().map(String::as_str).unwrap_or(""))
                                " " span.small { (m.matched_on) }
                            }
                        }
                    }
                }
                label { (c.tr("联系人姓名（匿名或未建档时）", "Contact name (anonymous or unregistered)"))
                    input name="contact_name" value=(form.contact_name) maxlength="100"; }
                label { (c.tr("联系电话", "Contact phone"))
                    input name="contact_phone" value=(form.contact_phone) inputmode="tel" maxlength="20"; }
            }
            label { (c.tr("类型", "Kind")) (select(c, "kind", KINDS, &form.kind, None)) }
            label { (c.tr("来源渠道", "Channel")) (select(c, "channel", CHANNELS, &form.channel, None)) }
            label { (c.tr("类别", "Category")) (category_select(c, &tax, &form.category)) }
            label { (c.tr("严重程度", "Severity")) (select(c, "severity", SEVERITIES, &form.severity, None)) }
            label { (c.tr("涉及科室（代码）", "Department concerned (code)"))
                input name="department" value=(form.department) required maxlength="40"; }
            label { (c.tr("标题", "Title")) input name="title" value=(form.title) required maxlength="200"; }
            label { (c.tr("详细经过", "What happened"))
                textarea name="description" rows="5" required maxlength="5000" { (form.description) } }
            label { (c.tr("负责人（账号，空则为本人）", "Owner (username; empty: you)"))
                input name="owner" list="staff" value=(form.owner) maxlength="100"; }
            button type="submit" name="op" value="create" { (c.tr("登记", "Take the case")) }
        }
        (staff)
    };
    with_status(c.page(c.tr("登记新案件", "Take a new case"), body), error.as_ref())
}

/// One select over the two-level taxonomy: a category, or one of its subcategories.
fn category_select(c: &Console, tax: &[Category], chosen: &str) -> Markup {
    let name = |cat: &Category| match c.lang {
        Lang::Zh => cat.name_zh.clone(),
        Lang::En => cat.name_en.clone(),
    };
    html! {
        select name="category" required {
            option value="" { "—" }
            @for top in tax {
                optgroup label=(name(top)) {
                    option value=(top.code) selected[top.code == chosen] { (name(top)) }
                    @for sub in &top.children {
                        @let value = format!("{}/{}", top.code, sub.code);
                        option value=(value) selected[value == chosen] { (name(top)) " / " (name(sub)) }
                    }
                }
            }
        }
    }
}
