//! Patients: search by name, pinyin, initials, phone or code; the patient page (the file with
//! protected fields masked until revealed with a reason, which the patients service audits;
//! family; grade and tags; the computed grade with its reasons and last change; referrals;
//! consent; the timeline); creating a patient.

use super::page::{Console, date_text, parse_day, proto_date};
use crate::api::error::HttpError;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::feedback::ListCasesRequest;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::patients::grading_service_client::GradingServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::referral_service_client::ReferralServiceClient;
use hcrm_proto::patients::{
    CreatePatientRequest, GetGradeHistoryRequest, GetGradeRequest, GetPatientRequest, Grade, GradeChange, GradeReason,
    IdentityType, InteractionKind, ListInteractionsRequest, ListReferralsRequest, ListRelatedPersonsRequest, Patient,
    PatientView, SearchPatientsRequest, Sex,
};
use hcrm_proto::types::Address;
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;

fn client(c: &Console) -> PatientServiceClient<super::page::Authed> {
    PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn search_form(c: &Console, q: &str) -> Markup {
    html! {
        form.inline method="get" action="/console/patients" role="search" {
            label { (c.tr("姓名、拼音、电话或档案号", "Name, pinyin, phone or code"))
                input name="q" value=(q) autofocus required maxlength="64";
            }
            button type="submit" { (c.tr("搜索", "Search")) }
            a href="/console/patients/new" { (c.tr("新建患者", "New patient")) }
        }
    }
}

pub async fn search(c: Console, Query(query): Query<SearchQuery>) -> Response {
    let q = query.q.trim().to_string();
    let title = c.tr("患者", "Patients");
    if q.is_empty() {
        return c.page(title, search_form(&c, ""));
    }
    let found = client(&c)
        .search_patients(SearchPatientsRequest {
            query: q.clone(),
            page_size: 50,
        })
        .await;
    let results = match found {
        Ok(r) => r.into_inner().matches,
        Err(status) => {
            let err = HttpError::from(status);
            return c.page(title, html! { (search_form(&c, &q)) (c.error_box(&err)) });
        }
    };
    let body = html! {
        (search_form(&c, &q))
        @if results.is_empty() {
            p { (c.tr("没有找到匹配的患者。", "No patient matches.")) }
        } @else {
            table #results {
                thead { tr {
                    th { (c.tr("姓名", "Name")) } th { (c.tr("档案号", "Code")) } th { (c.tr("性别", "Sex")) }
                    th { (c.tr("出生日期", "Born")) } th { (c.tr("电话", "Phone")) } th { (c.tr("匹配", "Matched on")) }
                } }
                tbody {
                    @for m in &results {
                        @if let Some(p) = &m.patient {
                            tr {
                                td { a href={ "/console/" (p.name) } { (p.display_name) } }
                                td { (p.code) }
                                td { (sex(&c, p.sex)) }
                                td { (date_text(&p.birth_date)) }
                                td { (p.phones.first().map(String::as_str).unwrap_or("")) }
                                td.small { (m.matched_on) }
                            }
                        }
                    }
                }
            }
        }
    };
    c.page(title, body)
}

fn sex(c: &Console, value: i32) -> &'static str {
    match Sex::try_from(value).unwrap_or(Sex::Unspecified) {
        Sex::Male => c.tr("男", "male"),
        Sex::Female => c.tr("女", "female"),
        Sex::Other => c.tr("其他", "other"),
        Sex::Unspecified => "",
    }
}

fn kind(c: &Console, value: i32) -> &'static str {
    use InteractionKind::*;
    match InteractionKind::try_from(value).unwrap_or(Unspecified) {
        Appointment => c.tr("预约", "appointment"),
        OutpatientVisit => c.tr("门诊", "outpatient visit"),
        Admission => c.tr("入院", "admission"),
        Discharge => c.tr("出院", "discharge"),
        ExamReport => c.tr("检查报告", "exam report"),
        Order => c.tr("医嘱", "order"),
        Prescription => c.tr("处方", "prescription"),
        Consultation => c.tr("咨询", "consultation"),
        InformationRequest => c.tr("信息查询", "information request"),
        Complaint => c.tr("投诉", "complaint"),
        FollowUp => c.tr("随访", "follow-up"),
        SurveyAnswer => c.tr("问卷", "survey answer"),
        Other | Unspecified => c.tr("其他", "other"),
    }
}

/// The grade letters and classes as short tags.
fn grade_tags(c: &Console, p: &Patient) -> Markup {
    let class = match p.customer_class {
        1 => Some(c.tr("潜在客户 (M)", "potential (M)")),
        2 => Some(c.tr("活跃客户 (C)", "active (C)")),
        _ => None,
    };
    let grade = ["", "A", "B", "C", "D", "E"]
        .get(p.intent_grade as usize)
        .copied()
        .unwrap_or("");
    let tier = match p.value_tier {
        1 => c.tr("高价值", "high value"),
        2 => c.tr("中价值", "middle value"),
        3 => c.tr("普通", "ordinary"),
        4 => c.tr("低价值", "low value"),
        _ => "",
    };
    html! {
        @if let Some(class) = class { span.tag { (class) } }
        @if !grade.is_empty() { span.tag { (c.tr("意向", "intent")) " " (grade) } }
        @if !tier.is_empty() { span.tag { (tier) } }
        @if p.vip { span.tag.warn { "VIP" } }
        @for tag in &p.tags { span.tag { (tag) } }
    }
}

/// A computed grade's letters: class, intent grade, tier and score.
fn grade_letters(c: &Console, g: &Grade) -> String {
    let class = match g.customer_class {
        1 => "M",
        2 => "C",
        _ => "–",
    };
    let intent = ["–", "A", "B", "C", "D", "E"]
        .get(g.intent_grade as usize)
        .copied()
        .unwrap_or("–");
    let tier = match g.value_tier {
        1 => c.tr("高价值", "high value"),
        2 => c.tr("中价值", "middle value"),
        3 => c.tr("普通", "ordinary"),
        4 => c.tr("低价值", "low value"),
        _ => "–",
    };
    format!("{class} · {intent} · {tier} · RFV {}", g.rfv_score)
}

/// A reason in the member's language: the service words it in English; the common codes are
/// said in Chinese from their parameters.
fn reason_text(c: &Console, r: &GradeReason) -> String {
    if c.tr("zh", "en") == "en" {
        return r.text.clone();
    }
    let p = |k: &str| r.params.get(k).cloned().unwrap_or_default();
    match r.code.as_str() {
        "no_visit_days" => format!("{} 天未就诊", p("days")),
        "visited_days_ago" => format!("{} 天前就诊", p("days")),
        "never_visited" => "登记后从未就诊".into(),
        "unanswered_follow_ups" => format!("{} 次随访未接通", p("count")),
        "visits" => format!("就诊 {} 次", p("visits")),
        "vip" => "VIP 客户".into(),
        _ => r.text.clone(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RevealForm {
    #[serde(default)]
    reason: String,
}

pub async fn show(c: Console, Path(id): Path<String>) -> Response {
    render(c, id, None, None).await
}

/// Shows the file in clear for a stated reason (the patients service checks the permission and
/// audits the read).
pub async fn reveal(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    match c.form::<RevealForm>(&headers, &body) {
        Ok(form) => render(c, id, Some(form.reason), None).await,
        Err(err) => c.error(err),
    }
}

async fn render(c: Console, id: String, reason: Option<String>, notice: Option<&str>) -> Response {
    let name = format!("patients/{id}");
    let mut patients = client(&c);
    let full = reason.is_some();
    let got = patients
        .get_patient(GetPatientRequest {
            name: name.clone(),
            view: if full { PatientView::Full } else { PatientView::Masked } as i32,
            access_reason: reason.clone().unwrap_or_default(),
        })
        .await;
    let (patient, reveal_error) = match got {
        Ok(p) => (p.into_inner(), None),
        Err(status) if full => {
            // Show the masked file with the reason the reveal was refused.
            match patients
                .get_patient(GetPatientRequest {
                    name: name.clone(),
                    ..Default::default()
                })
                .await
            {
                Ok(p) => (p.into_inner(), Some(HttpError::from(status))),
                Err(status) => return c.error(status),
            }
        }
        Err(status) => return c.error(status),
    };
    let cases = {
        let mut client = CaseServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel));
        let patient = name.clone();
        async move {
            client
                .list_cases(ListCasesRequest {
                    patient,
                    page_size: 20,
                    ..Default::default()
                })
                .await
        }
    };
    let grade = {
        let mut client = GradingServiceClient::new(c.authed(&c.gw.upstreams.patients.channel));
        let patient = name.clone();
        async move {
            let grade = client
                .get_grade(GetGradeRequest {
                    patient: patient.clone(),
                })
                .await?
                .into_inner();
            let last = client
                .get_grade_history(GetGradeHistoryRequest {
                    patient,
                    page_size: 1,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .changes
                .into_iter()
                .next();
            Ok::<(Grade, Option<GradeChange>), tonic::Status>((grade, last))
        }
    };
    let referrals = {
        let client = ReferralServiceClient::new(c.authed(&c.gw.upstreams.patients.channel));
        let patient = name.clone();
        async move {
            let (mut by, mut to) = (client.clone(), client);
            let (introduced, introduced_by) = tokio::join!(
                by.list_referrals(ListReferralsRequest {
                    introducer: patient.clone(),
                    page_size: 100,
                    ..Default::default()
                }),
                to.list_referrals(ListReferralsRequest {
                    referred: patient,
                    page_size: 1,
                    ..Default::default()
                }),
            );
            Ok::<_, tonic::Status>((
                introduced?.into_inner().referrals,
                introduced_by?.into_inner().referrals.into_iter().next(),
            ))
        }
    };
    let (related, timeline, cases, grade, referrals) = tokio::join!(
        {
            let mut client = patients.clone();
            let parent = name.clone();
            async move {
                client
                    .list_related_persons(ListRelatedPersonsRequest {
                        parent,
                        page_size: 50,
                        ..Default::default()
                    })
                    .await
            }
        },
        {
            let mut client = patients.clone();
            let parent = name.clone();
            async move {
                client
                    .list_interactions(ListInteractionsRequest {
                        parent,
                        page_size: 50,
                        ..Default::default()
                    })
                    .await
            }
        },
        cases,
        grade,
        referrals
    );
    let address = patient
        .address
        .as_ref()
        .map(|a| format!("{}{}{}{}", a.province, a.city, a.district, a.street))
        .unwrap_or_default();
    let prefs = patient.contact_preferences.clone().unwrap_or_default();
    let body = html! {
        @if let Some(text) = notice { div.notice { (text) } }
        @if let Some(err) = &reveal_error { (c.error_box(err)) }
        div.card {
            p { (grade_tags(&c, &patient))
                " " a #edit href={ "/console/" (patient.name) "/edit" } { (c.tr("编辑", "Edit")) } }
            dl.fields #file {
                dt { (c.tr("档案号", "Code")) } dd { (patient.code) }
                dt { (c.tr("性别", "Sex")) } dd { (sex(&c, patient.sex)) }
                dt { (c.tr("出生日期", "Born")) } dd { (date_text(&patient.birth_date)) }
                dt { (c.tr("电话", "Phones")) } dd { (patient.phones.join(", ")) }
                dt { (c.tr("地址", "Address")) } dd { (address) }
                dt { (c.tr("职业", "Occupation")) } dd { (patient.occupation) }
                dt { (c.tr("证件号", "Identity number")) } dd data-field="identity_number" { (patient.identity_number) }
                dt { (c.tr("医保号", "Insurance number")) } dd data-field="insurance_number" { (patient.insurance_number) }
                dt { (c.tr("既往史", "Medical history")) }
                dd data-field="medical_history" {
                    @if let Some(h) = &patient.medical_history {
                        (h.allergies.iter().chain(&h.genetic_diseases).chain(&h.heart_diseases).cloned().collect::<Vec<_>>().join("、"))
                    }
                }
                dt { (c.tr("最近就诊", "Last visit")) } dd { (c.ts(&patient.last_visit_time)) }
                dt { (c.tr("联系偏好", "Contact")) }
                dd {
                    @if prefs.do_not_contact { span.tag.bad { (c.tr("拒绝联系", "do not contact")) } }
                    @else if prefs.allowed_channels.is_empty() { span.tag.warn { (c.tr("未记录同意", "no consent recorded")) } }
                    @else { (format!("{} {}", prefs.allowed_channels.len(), c.tr("个渠道已同意", "channels consented"))) }
                    @if !prefs.quiet_hours_start.is_empty() { " · " (c.tr("免打扰", "quiet")) " " (prefs.quiet_hours_start) "–" (prefs.quiet_hours_end) }
                }
                dt { (c.tr("备注", "Notes")) } dd { (patient.notes) }
            }
            @if patient.masked {
                form.inline method="post" action={ "/console/" (patient.name) "/reveal" } {
                    (c.csrf_field())
                    label { (c.tr("查看完整信息的理由（将被审计）", "Reason to see protected fields (audited)"))
                        input name="reason" required maxlength="256";
                    }
                    button.secondary type="submit" { (c.tr("显示", "Reveal")) }
                }
            }
        }
        h2 { (c.tr("客户分级", "Computed grade")) }
        @match &grade {
            Ok((g, last)) => {
                div.card #grade data-class=(g.customer_class) data-intent=(g.intent_grade) {
                    p { strong { (grade_letters(&c, g)) } " "
                        span.small { (c.tr("规则版本", "rules v")) (g.rule_version) " · " (c.ts(&g.compute_time)) } }
                    ul #grade-reasons {
                        @for r in &g.reasons { li data-reason=(r.code) { (reason_text(&c, r)) } }
                    }
                    @if let Some(change) = last {
                        p.small #grade-change { (c.tr("最近变化", "Last change")) " " (c.ts(&change.change_time)) ": " (change.summary) }
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::NotFound => { p.small #grade { (c.tr("尚未分级。", "Not graded yet.")) } }
            Err(status) if status.code() == tonic::Code::PermissionDenied => {}
            Err(status) => { (c.error_box(&HttpError::from(status.clone()))) }
        }
        @if let Ok((introduced, introduced_by)) = &referrals {
            @if introduced_by.is_some() || !introduced.is_empty() {
                p #referrals {
                    @if let Some(r) = introduced_by {
                        (c.tr("介绍人：", "Introduced by: ")) a href={ "/console/" (r.introducer) } { (r.introducer) } " "
                    }
                    @if !introduced.is_empty() {
                        (c.tr("介绍了 ", "Introduced ")) span data-introduced=(introduced.len()) { (introduced.len()) } (c.tr(" 位患者", " patients"))
                    }
                }
            }
        }
        h2 { (c.tr("家属与联系人", "Family and contacts")) }
        @match related {
            Ok(r) => {
                @let people = r.into_inner().related_persons;
                @if people.is_empty() { p.small { (c.tr("暂无。", "None recorded.")) } }
                @else {
                    table { tbody {
                        @for p in &people {
                            tr {
                                td { (p.display_name) }
                                td { (p.relationship) }
                                td { (p.phones.join(", ")) }
                                td { @if p.emergency_contact { span.tag.warn { (c.tr("紧急联系人", "emergency contact")) } } }
                            }
                        }
                    } }
                }
            }
            Err(status) => { (c.error_box(&HttpError::from(status))) }
        }
        h2 { (c.tr("随访", "Follow-ups")) }
        p { a #plans href={ "/console/followups/plans?patient=" (patient.name) } { (c.tr("随访计划与记录", "Follow-up plans and calls")) } }
        h2 { (c.tr("投诉与建议", "Complaints and suggestions")) }
        p { a #new-case href={ "/console/cases/new?patient=" (patient.name) } { (c.tr("为该患者登记投诉或建议", "Take a complaint or suggestion for this patient")) } }
        @match cases {
            Ok(r) => {
                @let list = r.into_inner().cases;
                @if list.is_empty() { p.small { (c.tr("暂无。", "None.")) } }
                @else {
                    table #patient-cases { tbody {
                        @for case in &list {
                            tr data-case=(case.name) {
                                td { a href={ "/console/" (case.name) } { (case.number) } }
                                td { (case.title) }
                                td { (case.department) }
                                td { (c.ts(&case.create_time)) }
                            }
                        }
                    } }
                }
            }
            // A role that reads no cases simply sees none here.
            Err(status) if status.code() == tonic::Code::PermissionDenied => {}
            Err(status) => { (c.error_box(&HttpError::from(status))) }
        }
        h2 { (c.tr("服务时间线", "Timeline")) }
        @match timeline {
            Ok(r) => {
                @let items = r.into_inner().interactions;
                @if items.is_empty() { p.small { (c.tr("暂无记录。", "Nothing yet.")) } }
                @else {
                    table #timeline { tbody {
                        @for i in &items {
                            tr {
                                td { (c.ts(&i.occur_time)) }
                                td { span.tag { (kind(&c, i.kind)) } }
                                td { (i.department) }
                                td { (i.summary) }
                            }
                        }
                    } }
                }
            }
            Err(status) => { (c.error_box(&HttpError::from(status))) }
        }
    };
    c.page(&patient.display_name, body)
}

#[derive(Debug, Default, Deserialize)]
pub struct NewPatientForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    identity_number: String,
    #[serde(default)]
    province: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    street: String,
    #[serde(default)]
    occupation: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    request_id: String,
}

fn new_patient_page(c: &Console, form: &NewPatientForm, error: Option<&HttpError>) -> Response {
    let request_id = if form.request_id.is_empty() {
        hcrm_kit::new_id()
    } else {
        form.request_id.clone()
    };
    let body = html! {
        @if let Some(err) = error { (c.error_box(err)) }
        form.card #new-patient method="post" action="/console/patients/new" {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(request_id);
            label { (c.tr("姓名", "Name")) input name="display_name" required maxlength="100" value=(form.display_name); }
            label { (c.tr("性别", "Sex"))
                select name="sex" {
                    option value="" { "—" }
                    option value="male" selected[form.sex == "male"] { (c.tr("男", "male")) }
                    option value="female" selected[form.sex == "female"] { (c.tr("女", "female")) }
                }
            }
            label { (c.tr("出生日期", "Date of birth")) input name="birth_date" type="date" value=(form.birth_date); }
            label { (c.tr("手机号", "Mobile phone")) input name="phone" inputmode="tel" value=(form.phone); }
            label { (c.tr("身份证号", "Resident identity number")) input name="identity_number" maxlength="18" value=(form.identity_number); }
            label { (c.tr("省", "Province")) input name="province" value=(form.province); }
            label { (c.tr("市", "City")) input name="city" value=(form.city); }
            label { (c.tr("详细地址", "Street address")) input name="street" value=(form.street); }
            label { (c.tr("职业", "Occupation")) input name="occupation" value=(form.occupation); }
            label { (c.tr("备注", "Notes")) textarea name="notes" rows="3" { (form.notes) } }
            button type="submit" { (c.tr("保存", "Save")) }
        }
    };
    let mut response = c.page(c.tr("新建患者", "New patient"), body);
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

pub async fn new_form(c: Console) -> Response {
    new_patient_page(&c, &NewPatientForm::default(), None)
}

pub async fn create(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let form: NewPatientForm = match c.form(&headers, &body) {
        Ok(form) => form,
        Err(err) => return c.error(err),
    };
    let birth_date = match parse_day("birth_date", &form.birth_date) {
        Ok(d) => d.map(proto_date),
        Err(err) => return new_patient_page(&c, &form, Some(&err)),
    };
    let has_address = !(form.province.is_empty() && form.city.is_empty() && form.street.is_empty());
    let patient = Patient {
        display_name: form.display_name.trim().to_string(),
        sex: match form.sex.as_str() {
            "male" => Sex::Male,
            "female" => Sex::Female,
            _ => Sex::Unspecified,
        } as i32,
        birth_date,
        phones: Some(form.phone.trim().to_string())
            .filter(|p| !p.is_empty())
            .into_iter()
            .collect(),
        identity_type: if form.identity_number.trim().is_empty() {
            IdentityType::Unspecified
        } else {
            IdentityType::ResidentId
        } as i32,
        identity_number: form.identity_number.trim().to_string(),
        address: has_address.then(|| Address {
            province: form.province.trim().to_string(),
            city: form.city.trim().to_string(),
            street: form.street.trim().to_string(),
            ..Default::default()
        }),
        occupation: form.occupation.trim().to_string(),
        notes: form.notes.trim().to_string(),
        ..Default::default()
    };
    let created = client(&c)
        .create_patient(CreatePatientRequest {
            patient: Some(patient),
            request_id: form.request_id.clone(),
            reason: String::new(),
        })
        .await;
    match created {
        Ok(p) => Redirect::to(&format!("/console/{}", p.into_inner().name)).into_response(),
        Err(status) => new_patient_page(&c, &form, Some(&HttpError::from(status))),
    }
}
