//! Consultations: the form the desk logs a hotline or counter consultation with (a patient found
//! by name, phone or code, or the caller's phone and name; the referral given; whether someone
//! must call back), the recent ones filtered by category, channel and text, and what people
//! asked over the last 30 days (by category, and the busy hours as a bar chart).

use super::*;
use axum::extract::RawQuery;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::patients::{
    Consultation, ConsultationStatistics, CreateConsultationRequest, GetConsultationStatisticsRequest,
    ListConsultationsRequest,
};
use http::HeaderMap;
use serde::Deserialize;

const PAGE_SIZE: i32 = 50;
const DAY: i64 = 24 * 60 * 60 * 1_000_000;

/// The consultation form as typed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsultationForm {
    patient_query: String,
    /// `patients/{id}`; empty for a caller who is not a registered patient.
    patient: String,
    caller_phone: String,
    caller_name: String,
    channel: String,
    category: String,
    question: String,
    answer: String,
    referral_department: String,
    referral_doctor: String,
    referral_phone: String,
    follow_up_needed: String,
    follow_up_note: String,
    /// Minutes, decimals allowed.
    duration_minutes: String,
    request_id: String,
    /// `search` finds patients and shows the form again; anything else logs the consultation.
    op: String,
}

impl Default for ConsultationForm {
    fn default() -> Self {
        ConsultationForm {
            patient_query: String::new(),
            patient: String::new(),
            caller_phone: String::new(),
            caller_name: String::new(),
            channel: "hotline".into(),
            category: String::new(),
            question: String::new(),
            answer: String::new(),
            referral_department: String::new(),
            referral_doctor: String::new(),
            referral_phone: String::new(),
            follow_up_needed: String::new(),
            follow_up_note: String::new(),
            duration_minutes: String::new(),
            request_id: String::new(),
            op: String::new(),
        }
    }
}

/// The list's filters as they came in the query.
#[derive(Debug, Default)]
struct Filters {
    category: String,
    channel: String,
    text: String,
    phone: String,
    page_token: String,
}

impl Filters {
    fn of(query: &[(String, String)]) -> Filters {
        Filters {
            category: one(query, "category").trim().to_string(),
            channel: one(query, "channel").trim().to_string(),
            text: one(query, "text").trim().to_string(),
            phone: one(query, "phone").trim().to_string(),
            page_token: one(query, "page_token").to_string(),
        }
    }

    fn request(&self) -> Result<ListConsultationsRequest, HttpError> {
        let category = parse_slug(CATEGORIES, "category", &self.category)?;
        let channel = parse_slug(CHANNELS, "channel", &self.channel)?;
        Ok(ListConsultationsRequest {
            page_size: PAGE_SIZE,
            page_token: self.page_token.clone(),
            phone: self.phone.clone(),
            category: category.map(|x| x as i32).unwrap_or_default(),
            channel: channel.map(|x| x as i32).unwrap_or_default(),
            query: self.text.clone(),
            ..Default::default()
        })
    }

    fn query(&self) -> String {
        let parts: Vec<(&str, &str)> = [
            ("category", &self.category),
            ("channel", &self.channel),
            ("text", &self.text),
            ("phone", &self.phone),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.as_str()))
        .collect();
        serde_urlencoded::to_string(&parts).unwrap_or_default()
    }
}

/// The log with its filters; `?patient=patients/{id}` starts the form with that patient.
pub async fn show(c: Console, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    // The desk's answers link here with the referral filled in.
    let referral_department = one(&query, "referral_department").trim().to_string();
    let referral_doctor = one(&query, "referral_doctor").trim().to_string();
    let guidance = !(referral_department.is_empty() && referral_doctor.is_empty());
    let form = ConsultationForm {
        patient: one(&query, "patient").trim().to_string(),
        category: if guidance {
            "department_guidance".into()
        } else {
            String::new()
        },
        referral_department,
        referral_doctor,
        ..Default::default()
    };
    let notice = (one(&query, "done") == "logged").then(|| c.tr("咨询已记录。", "The consultation was logged."));
    page(&c, form, Filters::of(&query), None, notice).await
}

pub async fn submit(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let form: ConsultationForm = match c.form(&headers, &body) {
        Ok(form) => form,
        Err(err) => return c.error(err),
    };
    if form.op == "search" {
        return page(&c, form, Filters::default(), None, None).await;
    }
    let request = match request(&form) {
        Ok(r) => r,
        Err(err) => return page(&c, form, Filters::default(), Some(err), None).await,
    };
    match consultation_client(&c).create_consultation(request).await {
        Ok(_) => Redirect::to("/console/guide/consultations?done=logged").into_response(),
        Err(status) => page(&c, form, Filters::default(), Some(HttpError::from(status)), None).await,
    }
}

fn request(f: &ConsultationForm) -> Result<CreateConsultationRequest, HttpError> {
    let channel = parse_slug(CHANNELS, "consultation.channel", &f.channel)?;
    let category = parse_slug(CATEGORIES, "consultation.category", &f.category)?;
    let duration_seconds = match f.duration_minutes.trim() {
        "" => 0,
        t => t
            .parse::<f64>()
            .ok()
            .filter(|m| m.is_finite() && (0.0..=1440.0).contains(m))
            .map(|m| (m * 60.0).round() as i32)
            .ok_or_else(|| HttpError::invalid("duration_minutes", "must be a number of minutes, 0–1440"))?,
    };
    let follow_up_needed = f.follow_up_needed == "true";
    let consultation = Consultation {
        patient: f.patient.trim().to_string(),
        caller_phone: f.caller_phone.trim().to_string(),
        caller_name: f.caller_name.trim().to_string(),
        channel: channel.map(|x| x as i32).unwrap_or_default(),
        category: category.map(|x| x as i32).unwrap_or_default(),
        question: f.question.trim().to_string(),
        answer: f.answer.trim().to_string(),
        referral_department: f.referral_department.trim().to_string(),
        referral_doctor: f.referral_doctor.trim().to_string(),
        referral_phone: f.referral_phone.trim().to_string(),
        follow_up_needed,
        follow_up_note: f.follow_up_note.trim().to_string(),
        duration_seconds,
        ..Default::default()
    };
    // Without a request id (a hand-made request), this submission is its own retry key.
    let request_id = if f.request_id.is_empty() {
        format!("console-{}", hcrm_kit::new_id())
    } else {
        f.request_id.clone()
    };
    Ok(CreateConsultationRequest {
        consultation: Some(consultation),
        request_id,
    })
}

async fn page(
    c: &Console,
    mut form: ConsultationForm,
    filters: Filters,
    error: Option<HttpError>,
    notice: Option<&str>,
) -> Response {
    if form.request_id.is_empty() {
        form.request_id = hcrm_kit::new_id();
    }
    let now = c.gw.store.now();
    let mut list = consultation_client(c);
    let mut stats = list.clone();
    let listed = async {
        match filters.request() {
            Ok(r) => list
                .list_consultations(r)
                .await
                .map(|r| r.into_inner())
                .map_err(HttpError::from),
            Err(err) => Err(err),
        }
    };
    let counted = stats.get_consultation_statistics(GetConsultationStatisticsRequest {
        start_time: Some(hcrm_kit::time::to_timestamp(now - 30 * DAY)),
        end_time: Some(hcrm_kit::time::to_timestamp(now + DAY)),
    });
    let picker = patient_picker(
        c,
        Picker {
            query: &form.patient_query,
            chosen: &form.patient,
            none: Some(c.tr(
                "非登记患者（填写来电号码）",
                "Not a registered patient (give the phone)",
            )),
        },
    );
    let (listed, counted, picker, lists) = tokio::join!(listed, counted, picker, directory_lists(c));
    let body = html! {
        (subnav(c, "/console/guide/consultations"))
        @if let Some(text) = notice { div.notice #done { (text) } }
        @if let Some(err) = &error { (c.error_box(err)) }
        div.card {
            h2 { (c.tr("记录一次咨询", "Log a consultation")) }
            (consultation_form(c, &form, picker))
        }
        h2 { (c.tr("最近的咨询", "Recent consultations")) }
        (filter_form(c, &filters))
        @match &listed {
            Ok(r) => {
                @if r.consultations.is_empty() {
                    p #no-consultations { (c.tr("没有符合条件的咨询。", "No consultation matches.")) }
                } @else {
                    (table(c, &r.consultations))
                }
                @if !r.next_page_token.is_empty() {
                    @let more = filters.query();
                    p { a #next-page rel="next" href={ "/console/guide/consultations?" (more) (if more.is_empty() { "" } else { "&" }) "page_token=" (super::super::page::url_encode(&r.next_page_token)) } {
                        (c.tr("下一页 →", "Next page →"))
                    } }
                }
            }
            Err(err) => { (c.error_box(err)) }
        }
        h2 { (c.tr("近30天统计", "The last 30 days")) }
        @match counted {
            Ok(s) => { (statistics(c, &s.into_inner())) }
            // A role that reads no consultations sees no figures.
            Err(status) => { (c.error_box(&HttpError::from(status))) }
        }
        (lists)
    };
    with_status(c.page(c.tr("咨询记录", "Consultations"), body), error.as_ref())
}

fn consultation_form(c: &Console, f: &ConsultationForm, picker: Markup) -> Markup {
    html! {
        form #new-consultation method="post" action="/console/guide/consultations" {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(f.request_id);
            fieldset #caller {
                legend { (c.tr("来电人", "Caller")) }
                (picker)
                div.row {
                    label { (c.tr("来电号码", "Caller's phone"))
                        input name="caller_phone" value=(f.caller_phone) inputmode="tel" maxlength="20"; }
                    label { (c.tr("来电人姓名", "Caller's name"))
                        input name="caller_name" value=(f.caller_name) maxlength="64"; }
                }
            }
            div.row {
                label { (c.tr("渠道", "Channel")) (select(c, "channel", CHANNELS, &f.channel, None)) }
                label { (c.tr("类别", "Category")) (select(c, "category", CATEGORIES, &f.category, Some("—"))) }
                label { (c.tr("用时（分钟）", "Duration (minutes)"))
                    input name="duration_minutes" value=(f.duration_minutes) inputmode="decimal" maxlength="8"; }
            }
            label { (c.tr("咨询内容", "Question"))
                textarea name="question" rows="3" maxlength="2000" { (f.question) } }
            label { (c.tr("答复", "Answer given"))
                textarea name="answer" rows="3" maxlength="4000" { (f.answer) } }
            fieldset #referral {
                legend { (c.tr("转介", "Referral")) }
                div.row {
                    label { (c.tr("科室代码", "Department code"))
                        input name="referral_department" value=(f.referral_department) list="departments" maxlength="64"; }
                    label { (c.tr("专家（doctors/…）", "Expert (doctors/…)"))
                        input name="referral_doctor" value=(f.referral_doctor) list="doctors" maxlength="80"; }
                    label { (c.tr("告知的电话", "Phone given"))
                        input name="referral_phone" value=(f.referral_phone) inputmode="tel" maxlength="20"; }
                }
            }
            fieldset #follow-up {
                legend { (c.tr("回访", "Follow-up")) }
                label.choice { input type="checkbox" name="follow_up_needed" value="true" checked[f.follow_up_needed == "true"];
                    (c.tr("需要回电", "Someone must call back")) }
                label { (c.tr("回访事项", "What about"))
                    input name="follow_up_note" value=(f.follow_up_note) maxlength="1000"; }
            }
            button type="submit" name="op" value="create" { (c.tr("记录", "Log it")) }
        }
    }
}

fn filter_form(c: &Console, f: &Filters) -> Markup {
    html! {
        form.inline #consultation-filters method="get" action="/console/guide/consultations" role="search" {
            label { (c.tr("类别", "Category")) (select(c, "category", CATEGORIES, &f.category, Some(c.tr("全部", "any")))) }
            label { (c.tr("渠道", "Channel")) (select(c, "channel", CHANNELS, &f.channel, Some(c.tr("全部", "any")))) }
            label { (c.tr("内容包含", "Text")) input name="text" value=(f.text) maxlength="100" size="16"; }
            label { (c.tr("电话或后四位", "Phone or last four")) input name="phone" value=(f.phone) maxlength="20" size="12"; }
            button type="submit" { (c.tr("筛选", "Filter")) }
        }
    }
}

fn table(c: &Console, list: &[Consultation]) -> Markup {
    html! {
        table #consultations {
            thead { tr {
                th { (c.tr("时间", "When")) } th { (c.tr("渠道", "Channel")) } th { (c.tr("类别", "Category")) }
                th { (c.tr("来电人", "Caller")) } th { (c.tr("咨询与答复", "Question and answer")) }
                th { (c.tr("转介", "Referral")) } th { (c.tr("经办", "Handled by")) }
            } }
            tbody {
                @for x in list {
                    tr data-consultation=(id_of(&x.name)) data-category=(slug_of(CATEGORIES, x.category)) {
                        td { (c.ts(&x.start_time)) @if x.duration_seconds > 0 { br; span.small { (x.duration_seconds / 60) " " (c.tr("分钟", "min")) } } }
                        td { (name_of(c, CHANNELS, x.channel)) }
                        td { span.tag { (name_of(c, CATEGORIES, x.category)) } }
                        td {
                            @if !x.patient.is_empty() { a href={ "/console/" (x.patient) } { (c.tr("患者档案", "patient file")) } br; }
                            (x.caller_name) " " span.small { (x.caller_phone) }
                        }
                        td {
                            (x.question)
                            @if !x.answer.is_empty() { br; span.small { "→ " (x.answer) } }
                            @if x.follow_up_needed { br; span.tag.warn data-follow-up="1" { (c.tr("需回电", "call back")) } " " span.small { (x.follow_up_note) } }
                        }
                        td { (x.referral_department) " " (x.referral_doctor) " " (x.referral_phone) }
                        td { (x.handled_by) }
                    }
                }
            }
        }
    }
}

fn statistics(c: &Console, s: &ConsultationStatistics) -> Markup {
    let hours: Vec<String> = (0..24).map(|h| h.to_string()).collect();
    let values: Vec<f64> = s.by_hour.iter().map(|n| *n as f64).collect();
    html! {
        div.grid #consultation-figures {
            div.card { p.small { (c.tr("咨询总数", "Consultations")) } p.figure data-figure="total" { (s.total) } }
            div.card { p.small { (c.tr("需回电", "Need a call back")) } p.figure.warn data-figure="follow-up" { (s.follow_up_needed) } }
            div.card { p.small { (c.tr("平均用时（分钟）", "Mean duration (minutes)")) }
                p.figure data-figure="mean-minutes" { (format!("{:.1}", s.mean_duration_seconds / 60.0)) } }
        }
        div.row {
            table #by-category {
                thead { tr { th { (c.tr("类别", "Category")) } th.right { (c.tr("次数", "Count")) } } }
                tbody {
                    @for x in &s.by_category {
                        tr { td { (name_of(c, CATEGORIES, x.category)) } td.right data-category=(slug_of(CATEGORIES, x.category)) { (x.count) } }
                    }
                }
            }
            div #busy-hours {
                (super::super::chart::bars(c.tr("各时段咨询量（当地时间）", "Consultations by local hour"), &hours, &values))
            }
        }
    }
}
