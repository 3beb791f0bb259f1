//! Follow-ups: the worklists (mine today, overdue, a department's), the task page where a call
//! is recorded on one form, plans per patient and the follow-up templates.
//!
//! Every form is read as a list of fields ([`Entries`]) so a refused form is shown again with
//! what was typed; the followup service does the checking and its answer names the fields.

mod plans;
mod task;
mod templates;
mod worklist;

use super::page::{Authed, Console, Lang};
use crate::api::error::HttpError;
use crate::state::Gateway;
use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{Datelike, NaiveDate};
use futures::StreamExt;
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::template_service_client::TemplateServiceClient;
use hcrm_proto::followup::{Channel, Outcome, PlanOrigin, PlanState, TaskStatus, TemplateKind, TemplateState};
use hcrm_proto::patients::GetPatientRequest;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::types::Date;
use http::HeaderMap;
use maud::{Markup, html};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The routes of this area, merged into the console by `web::router`.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/console/followups", get(worklist::show))
        .route("/console/followups/tasks/{id}", get(task::show))
        .route("/console/followups/tasks/{id}/record", post(task::record))
        .route("/console/followups/tasks/{id}/reschedule", post(task::reschedule))
        .route("/console/followups/tasks/{id}/reassign", post(task::reassign))
        .route("/console/followups/tasks/{id}/cancel", post(task::cancel))
        .route("/console/followups/plans", get(plans::list).post(plans::create))
        .route("/console/followups/plans/{id}", get(plans::show))
        .route("/console/followups/plans/{id}/cancel", post(plans::cancel))
        .route(
            "/console/followups/templates",
            get(templates::list).post(templates::create),
        )
        .route("/console/followups/templates/new", get(templates::new_form))
        .route("/console/followups/templates/{id}", get(templates::show))
        .route("/console/followups/templates/{id}/revise", post(templates::revise))
        .route("/console/followups/templates/{id}/archive", post(templates::archive))
}

fn followup(c: &Console) -> FollowupServiceClient<Authed> {
    FollowupServiceClient::new(c.authed(&c.gw.upstreams.followup.channel))
}

fn template_client(c: &Console) -> TemplateServiceClient<Authed> {
    TemplateServiceClient::new(c.authed(&c.gw.upstreams.followup.channel))
}

fn patient_client(c: &Console) -> PatientServiceClient<Authed> {
    PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

/// The fields of a submitted form, in order (repeated names allowed); also what a form shows
/// again after it was refused.
#[derive(Debug, Clone, Default)]
pub struct Entries(Vec<(String, String)>);

impl Entries {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The first value of `name`, trimmed.
    pub fn text(&self, name: &str) -> String {
        self.get(name).trim().to_string()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Sets `name` unless the form already has it: defaults for a fresh form.
    pub fn or(mut self, name: &str, value: impl Into<String>) -> Self {
        if !self.has(name) {
            self.0.push((name.to_string(), value.into()));
        }
        self
    }
}

/// Reads a console form (CSRF token and origin checked) as its list of fields.
fn read_form(c: &Console, headers: &HeaderMap, body: &[u8]) -> Result<Entries, HttpError> {
    c.form::<serde::de::IgnoredAny>(headers, body)?;
    serde_urlencoded::from_bytes(body)
        .map(Entries)
        .map_err(|e| HttpError::invalid("form", e.to_string()))
}

/// A page answered with the status of the error it shows, if any.
fn with_status(mut response: Response, error: Option<&HttpError>) -> Response {
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

/// The etag a change form carried; a form without one would overwrite blindly.
fn etag_of(c: &Console, entries: &Entries) -> Result<String, HttpError> {
    let etag = entries.text("etag");
    if etag.is_empty() {
        return Err(HttpError::invalid(
            "etag",
            c.tr(
                "缺少版本标记，请刷新页面后重试",
                "missing; reload the page and try again",
            ),
        ));
    }
    Ok(etag)
}

/// A request id for a create form: the one it carried (a resubmission is the same request),
/// else a new one.
fn request_id(entries: &Entries) -> String {
    let id = entries.text("request_id");
    if id.is_empty() { hcrm_kit::new_id() } else { id }
}

/// The last segment of a resource name: `tasks/abc` → `abc`.
fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn to_date(d: NaiveDate) -> Date {
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

pub(super) use crate::web::page::date_text;

/// Parses a `YYYY-MM-DD` form field; empty is `None`.
fn parse_date(c: &Console, field: &str, text: &str) -> Result<Option<NaiveDate>, HttpError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| HttpError::invalid(field, c.tr("日期格式应为 YYYY-MM-DD", "must be a date YYYY-MM-DD")))
}

/// Today in the hospital's time zone.
fn today(c: &Console) -> NaiveDate {
    let micros = c.gw.store.now() + i64::from(c.gw.cfg.utc_offset_minutes) * 60_000_000;
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Microseconds of a local date and time in the hospital's zone.
fn local_micros(c: &Console, at: chrono::NaiveDateTime) -> i64 {
    at.and_utc().timestamp_micros() - i64::from(c.gw.cfg.utc_offset_minutes) * 60_000_000
}

/// Why a figure or list is missing, in a line.
fn missing(c: &Console, status: &tonic::Status) -> Markup {
    let why = match status.code() {
        tonic::Code::PermissionDenied => c.tr("您的角色无权查看", "not available to your role"),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => c.tr("服务暂不可用", "service unavailable"),
        tonic::Code::NotFound => c.tr("没有找到", "not found"),
        _ => c.tr("暂无数据", "not available"),
    };
    html! { p.small data-missing=(crate::api::error::code_str(status.code())) { (why) } }
}

/// Channels as form values, in the order they are offered.
const CHANNELS: [Channel; 8] = [
    Channel::Phone,
    Channel::Wechat,
    Channel::Qq,
    Channel::HomeVisit,
    Channel::Sms,
    Channel::App,
    Channel::Email,
    Channel::Website,
];

fn channel_key(ch: Channel) -> &'static str {
    match ch {
        Channel::Unspecified => "",
        Channel::Phone => "phone",
        Channel::Wechat => "wechat",
        Channel::Qq => "qq",
        Channel::HomeVisit => "home_visit",
        Channel::Website => "website",
        Channel::App => "app",
        Channel::Sms => "sms",
        Channel::Email => "email",
    }
}

/// A channel from its form value; "" is unspecified, anything unknown is `None`.
fn channel_of(key: &str) -> Option<Channel> {
    let key = key.trim().to_ascii_lowercase();
    if key.is_empty() {
        return Some(Channel::Unspecified);
    }
    CHANNELS.into_iter().find(|ch| channel_key(*ch) == key)
}

fn channel_label(c: &Console, value: i32) -> &'static str {
    channel_label_in(c.lang, value)
}

fn channel_label_in(lang: Lang, value: i32) -> &'static str {
    match Channel::try_from(value).unwrap_or(Channel::Unspecified) {
        Channel::Unspecified => "",
        Channel::Phone => lang.tr("电话", "phone"),
        Channel::Wechat => lang.tr("微信", "WeChat"),
        Channel::Qq => "QQ",
        Channel::HomeVisit => lang.tr("家访", "home visit"),
        Channel::Website => lang.tr("网站", "website"),
        Channel::App => "App",
        Channel::Sms => lang.tr("短信", "SMS"),
        Channel::Email => lang.tr("电子邮件", "e-mail"),
    }
}

/// A channel as staff type it: its form value or its name in either language.
fn channel_typed(text: &str) -> Option<Channel> {
    let text = text.trim().to_lowercase();
    if let Some(ch) = channel_of(&text) {
        return Some(ch);
    }
    CHANNELS.into_iter().find(|ch| {
        [Lang::Zh, Lang::En]
            .into_iter()
            .any(|lang| channel_label_in(lang, *ch as i32).to_lowercase() == text)
    })
}

/// A select of channels; `blank` offers "—" (the template's default).
fn channel_select(c: &Console, name: &str, selected: &str, blank: bool) -> Markup {
    html! {
        select name=(name) {
            @if blank { option value="" { "—" } }
            @for ch in CHANNELS {
                option value=(channel_key(ch)) selected[channel_key(ch) == selected] { (channel_label(c, ch as i32)) }
            }
        }
    }
}

const OUTCOMES: [Outcome; 4] = [
    Outcome::Reached,
    Outcome::NotReached,
    Outcome::Refused,
    Outcome::WrongNumber,
];

fn outcome_key(o: Outcome) -> &'static str {
    match o {
        Outcome::Unspecified => "",
        Outcome::Reached => "reached",
        Outcome::NotReached => "not_reached",
        Outcome::Refused => "refused",
        Outcome::WrongNumber => "wrong_number",
    }
}

fn outcome_label(c: &Console, value: i32) -> &'static str {
    match Outcome::try_from(value).unwrap_or(Outcome::Unspecified) {
        Outcome::Unspecified => "",
        Outcome::Reached => c.tr("已联系上", "reached"),
        Outcome::NotReached => c.tr("未接通", "not reached"),
        Outcome::Refused => c.tr("拒绝随访", "refused"),
        Outcome::WrongNumber => c.tr("号码错误", "wrong number"),
    }
}

fn status_key(value: i32) -> &'static str {
    match TaskStatus::try_from(value).unwrap_or(TaskStatus::Unspecified) {
        TaskStatus::Unspecified => "",
        TaskStatus::Pending => "pending",
        TaskStatus::Due => "due",
        TaskStatus::Done => "done",
        TaskStatus::Missed => "missed",
        TaskStatus::Cancelled => "cancelled",
    }
}

/// A task's status as a coloured tag.
fn status_tag(c: &Console, value: i32) -> Markup {
    let (text, tone) = match TaskStatus::try_from(value).unwrap_or(TaskStatus::Unspecified) {
        TaskStatus::Unspecified => ("", ""),
        TaskStatus::Pending => (c.tr("未到期", "pending"), ""),
        TaskStatus::Due => (c.tr("待随访", "due"), "warn"),
        TaskStatus::Done => (c.tr("已完成", "done"), "good"),
        TaskStatus::Missed => (c.tr("已逾期", "missed"), "bad"),
        TaskStatus::Cancelled => (c.tr("已取消", "cancelled"), ""),
    };
    html! { span class={ "tag " (tone) } data-status=(status_key(value)) { (text) } }
}

/// Whether a task can still be worked (recorded, moved, given away, cancelled).
fn is_open(value: i32) -> bool {
    matches!(
        TaskStatus::try_from(value).unwrap_or(TaskStatus::Unspecified),
        TaskStatus::Pending | TaskStatus::Due | TaskStatus::Missed
    )
}

fn plan_state_tag(c: &Console, value: i32) -> Markup {
    let (key, text, tone) = match PlanState::try_from(value).unwrap_or(PlanState::Unspecified) {
        PlanState::Unspecified => ("", "", ""),
        PlanState::Active => ("active", c.tr("进行中", "active"), "good"),
        PlanState::Completed => ("completed", c.tr("已完成", "completed"), ""),
        PlanState::Cancelled => ("cancelled", c.tr("已取消", "cancelled"), "bad"),
    };
    html! { span class={ "tag " (tone) } data-state=(key) { (text) } }
}

fn origin_label(c: &Console, value: i32) -> &'static str {
    match PlanOrigin::try_from(value).unwrap_or(PlanOrigin::Unspecified) {
        PlanOrigin::Unspecified => "",
        PlanOrigin::Manual => c.tr("手工建立", "by hand"),
        PlanOrigin::Discharge => c.tr("出院自动生成", "from a discharge"),
        PlanOrigin::Complaint => c.tr("投诉回访", "complaint confirmation"),
    }
}

fn kind_label(c: &Console, value: i32) -> &'static str {
    match TemplateKind::try_from(value).unwrap_or(TemplateKind::Unspecified) {
        TemplateKind::Unspecified => "",
        TemplateKind::Scheduled => c.tr("定期随访", "scheduled"),
        TemplateKind::Chronic => c.tr("慢病管理", "chronic"),
    }
}

fn template_state_tag(c: &Console, value: i32) -> Markup {
    let (key, text, tone) = match TemplateState::try_from(value).unwrap_or(TemplateState::Unspecified) {
        TemplateState::Unspecified => ("", "", ""),
        TemplateState::Active => ("active", c.tr("启用", "active"), "good"),
        TemplateState::Archived => ("archived", c.tr("已归档", "archived"), ""),
    };
    html! { span class={ "tag " (tone) } data-state=(key) { (text) } }
}

/// Patients' display names, read once per request.
#[derive(Debug, Default)]
pub(crate) struct Names(HashMap<String, String>);

impl Names {
    /// Reads the names of `patients` (resource names), a few at a time; one that cannot be
    /// read shows as its id.
    pub(crate) async fn fetch<'a>(c: &Console, patients: impl IntoIterator<Item = &'a str>) -> Names {
        let wanted: BTreeSet<String> = patients
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let client = patient_client(c);
        let found: Vec<(String, Option<String>)> = futures::stream::iter(wanted)
            .map(|name| {
                let mut client = client.clone();
                async move {
                    let request = GetPatientRequest {
                        name: name.clone(),
                        ..Default::default()
                    };
                    let display = client
                        .get_patient(request)
                        .await
                        .ok()
                        .map(|p| p.into_inner().display_name);
                    (name, display)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        Names(
            found
                .into_iter()
                .filter_map(|(name, display)| display.map(|d| (name, d)))
                .collect(),
        )
    }

    /// A link to the patient's page, by name when known.
    pub(crate) fn link(&self, patient: &str) -> Markup {
        let text = self
            .0
            .get(patient)
            .cloned()
            .unwrap_or_else(|| id_of(patient).to_string());
        html! { a href={ "/console/" (patient) } data-patient=(id_of(patient)) { (text) } }
    }
}

/// The links between the follow-up pages.
fn subnav(c: &Console) -> Markup {
    html! {
        p.subnav {
            a href="/console/followups" { (c.tr("我的今日随访", "My tasks today")) } " · "
            a href="/console/followups?view=overdue" { (c.tr("逾期", "Overdue")) } " · "
            a href="/console/followups?view=department" { (c.tr("科室任务", "Department")) } " · "
            a href="/console/followups/plans" { (c.tr("随访计划", "Plans")) } " · "
            a href="/console/followups/templates" { (c.tr("随访模板", "Templates")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_name_channels_both_ways() {
        for ch in CHANNELS {
            assert_eq!(channel_of(channel_key(ch)), Some(ch));
        }
        assert_eq!(channel_of(""), Some(Channel::Unspecified));
        assert_eq!(channel_of(" Phone "), Some(Channel::Phone));
        assert_eq!(channel_of("pigeon"), None);
        assert_eq!(channel_typed("微信"), Some(Channel::Wechat));
        assert_eq!(channel_typed("Home visit"), Some(Channel::HomeVisit));
        assert_eq!(channel_typed("信鸽"), None);
        assert_eq!(id_of("tasks/abc"), "abc");
    }

    #[test]
    fn entries_keep_what_was_typed_and_take_defaults() {
        let e = Entries(vec![("a".into(), " x ".into()), ("a".into(), "y".into())])
            .or("a", "z")
            .or("b", "w");
        assert_eq!(e.get("a"), " x ");
        assert_eq!(e.text("a"), "x");
        assert_eq!(e.get("b"), "w");
        assert_eq!(e.get("c"), "");
    }
}
