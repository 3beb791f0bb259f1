//! Cases: complaints, suggestions and praise as the service centre works them. The inbox
//! (filters by state, SLA, kind, department and owner), the case page (deadlines, the
//! complainant, the PDCA steps the service allows now, hand-over, duplicates, the history) and
//! the hotline/counter intake form. The feedback service decides what is allowed and checks
//! every field; these pages only parse what a form cannot carry as typed (dates, choices).

mod case;
mod inbox;
mod intake;

use super::page::{Authed, Console, Lang};
use crate::api::error::HttpError;
use crate::state::Gateway;
use axum::Router;
use axum::routing::{get, post};
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::{
    CaseAction, CaseKind, CaseState, Category, GetTaxonomyRequest, IntakeChannel, Severity, SlaState,
};
use hcrm_proto::types::ContactChannel;
use maud::{Markup, html};
use std::sync::Arc;

/// The routes of this area, merged into the console by `web::router`.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/console/cases", get(inbox::show))
        .route("/console/cases/new", get(intake::show).post(intake::submit))
        .route("/console/cases/{id}", get(case::show))
        .route("/console/cases/{id}/reveal", post(case::reveal))
        .route("/console/cases/{id}/act", post(case::act))
        .route("/console/cases/{id}/handover", post(case::hand_over))
        .route("/console/cases/{id}/link", post(case::link))
}

fn client(c: &Console) -> CaseServiceClient<Authed> {
    CaseServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel))
}

/// An enum value with the slug used in URLs and forms and its two names.
pub(crate) struct Label<E> {
    pub value: E,
    pub slug: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
}

const fn l<E>(value: E, slug: &'static str, zh: &'static str, en: &'static str) -> Label<E> {
    Label { value, slug, zh, en }
}

fn by_value<E: Copy + Into<i32>>(table: &'static [Label<E>], value: i32) -> Option<&'static Label<E>> {
    table.iter().find(|l| l.value.into() == value)
}

fn by_slug<E>(table: &'static [Label<E>], slug: &str) -> Option<&'static Label<E>> {
    table.iter().find(|l| l.slug == slug)
}

/// The slug of a value; empty when unknown.
fn slug_of<E: Copy + Into<i32>>(table: &'static [Label<E>], value: i32) -> &'static str {
    by_value(table, value).map(|l| l.slug).unwrap_or("")
}

/// The member's name of a value; `—` when unknown.
fn name_of<E: Copy + Into<i32>>(c: &Console, table: &'static [Label<E>], value: i32) -> &'static str {
    by_value(table, value).map(|l| c.tr(l.zh, l.en)).unwrap_or("—")
}

/// A slug from a form or query: empty is none, anything not in the table names the field.
fn parse_slug<E: Copy>(table: &'static [Label<E>], field: &str, slug: &str) -> Result<Option<E>, HttpError> {
    let slug = slug.trim();
    if slug.is_empty() {
        return Ok(None);
    }
    match by_slug(table, slug) {
        Some(l) => Ok(Some(l.value)),
        None => {
            let known: Vec<&str> = table.iter().map(|l| l.slug).collect();
            Err(HttpError::invalid(
                field,
                format!("must be one of {}", known.join(", ")),
            ))
        }
    }
}

/// A `<select>` over a table, with an optional empty choice first.
fn select<E: Copy + Into<i32>>(
    c: &Console,
    name: &str,
    table: &'static [Label<E>],
    chosen: &str,
    empty: Option<&str>,
) -> Markup {
    html! {
        select name=(name) {
            @if let Some(text) = empty { option value="" { (text) } }
            @for l in table {
                option value=(l.slug) selected[l.slug == chosen] { (c.tr(l.zh, l.en)) }
            }
        }
    }
}

pub(crate) static STATES: &[Label<CaseState>] = &[
    l(CaseState::Received, "received", "已受理", "received"),
    l(CaseState::Assigned, "assigned", "已指派", "assigned"),
    l(CaseState::Investigating, "investigating", "调查中", "investigating"),
    l(
        CaseState::ActionPlanned,
        "action_planned",
        "已制定整改",
        "action planned",
    ),
    l(CaseState::Replied, "replied", "已答复", "replied"),
    l(CaseState::Confirmed, "confirmed", "已确认有效", "confirmed"),
    l(CaseState::Closed, "closed", "已结案", "closed"),
    l(CaseState::Withdrawn, "withdrawn", "已撤回", "withdrawn"),
    l(CaseState::Rejected, "rejected", "不予受理", "rejected"),
    l(CaseState::Linked, "linked", "已合并", "linked as duplicate"),
];

pub(crate) static SLAS: &[Label<SlaState>] = &[
    l(SlaState::OnTrack, "on_track", "按期", "on track"),
    l(SlaState::DueSoon, "due_soon", "即将到期", "due soon"),
    l(SlaState::Overdue, "overdue", "已超期", "overdue"),
    l(SlaState::Met, "met", "按期完成", "met"),
    l(SlaState::Missed, "missed", "曾超期", "missed"),
];

pub(crate) static KINDS: &[Label<CaseKind>] = &[
    l(CaseKind::Complaint, "complaint", "投诉", "complaint"),
    l(CaseKind::Suggestion, "suggestion", "建议", "suggestion"),
    l(CaseKind::Praise, "praise", "表扬", "praise"),
];

pub(crate) static CHANNELS: &[Label<IntakeChannel>] = &[
    l(IntakeChannel::Hotline, "hotline", "服务热线", "hotline"),
    l(IntakeChannel::Counter, "counter", "服务台", "counter"),
    l(IntakeChannel::Web, "web", "网站", "web"),
    l(IntakeChannel::App, "app", "App", "app"),
    l(IntakeChannel::Survey, "survey", "满意度调查", "survey"),
    l(IntakeChannel::FollowUp, "follow_up", "随访", "follow-up call"),
    l(IntakeChannel::OnlinePost, "online_post", "网络舆情", "online post"),
    l(IntakeChannel::Mailbox, "mailbox", "意见箱", "mailbox"),
];

pub(crate) static SEVERITIES: &[Label<Severity>] = &[
    l(Severity::Low, "low", "低", "low"),
    l(Severity::Medium, "medium", "中", "medium"),
    l(Severity::High, "high", "高", "high"),
    l(Severity::Critical, "critical", "紧急", "critical"),
];

pub(crate) static ACTIONS: &[Label<CaseAction>] = &[
    l(CaseAction::Assign, "assign", "指派", "Assign"),
    l(
        CaseAction::StartInvestigation,
        "start_investigation",
        "开始调查",
        "Start investigation",
    ),
    l(
        CaseAction::PlanActions,
        "plan_actions",
        "原因与整改措施",
        "Plan corrective actions",
    ),
    l(CaseAction::Reply, "reply", "答复投诉人", "Reply"),
    l(CaseAction::Confirm, "confirm", "记录回访确认", "Record confirmation"),
    l(CaseAction::Close, "close", "结案", "Close"),
    l(CaseAction::Withdraw, "withdraw", "撤回", "Withdraw"),
    l(CaseAction::Reject, "reject", "不予受理", "Reject"),
];

pub(crate) static REPLY_CHANNELS: &[Label<ContactChannel>] = &[
    l(ContactChannel::Phone, "phone", "电话", "phone"),
    l(ContactChannel::Sms, "sms", "短信", "SMS"),
    l(ContactChannel::Wechat, "wechat", "微信", "WeChat"),
    l(ContactChannel::Email, "email", "电子邮件", "e-mail"),
    l(ContactChannel::App, "app", "App", "app"),
    l(ContactChannel::Mail, "mail", "信函", "letter"),
    l(ContactChannel::HomeVisit, "home_visit", "上门", "home visit"),
];

/// The colour of an SLA state's tag.
fn sla_tone(value: i32) -> &'static str {
    match SlaState::try_from(value).unwrap_or_default() {
        SlaState::OnTrack | SlaState::Met => "tag good",
        SlaState::DueSoon => "tag warn",
        SlaState::Overdue | SlaState::Missed => "tag bad",
        SlaState::Unspecified => "tag",
    }
}

fn sla_tag(c: &Console, value: i32) -> Markup {
    html! { span class=(sla_tone(value)) data-sla=(slug_of(SLAS, value)) { (name_of(c, SLAS, value)) } }
}

/// `cases/{id}` → `/console/cases/{id}`.
fn href(name: &str) -> String {
    format!("/console/{name}")
}

fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The configured taxonomy; empty when it cannot be read (codes are shown as they are).
async fn taxonomy(c: &Console) -> Result<Vec<Category>, tonic::Status> {
    client(c)
        .get_taxonomy(GetTaxonomyRequest::default())
        .await
        .map(|t| t.into_inner().categories)
}

/// A category (and subcategory) in the member's language.
fn category_name(c: &Console, tax: &[Category], code: &str, sub: &str) -> String {
    let pick = |cat: &Category| match c.lang {
        Lang::Zh => cat.name_zh.clone(),
        Lang::En => cat.name_en.clone(),
    };
    let Some(top) = tax.iter().find(|t| t.code == code) else {
        return [code, sub]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" / ");
    };
    match top.children.iter().find(|s| s.code == sub) {
        Some(child) => format!("{} / {}", pick(top), pick(child)),
        None if sub.is_empty() => pick(top),
        None => format!("{} / {sub}", pick(top)),
    }
}

/// A `<datalist id="staff">` of the active accounts, so owner and assignee fields suggest
/// usernames; empty when the accounts cannot be read (the fields still take any text).
async fn staff_list(c: &Console) -> Markup {
    let accounts = c.gw.store.list_accounts().await.unwrap_or_default();
    html! {
        datalist id="staff" {
            @for a in accounts.iter().filter(|a| !a.disabled) {
                option value=(a.username) { (a.display_name) }
            }
        }
    }
}

/// The status of a page showing `error`, OK without one.
fn with_status(mut response: axum::response::Response, error: Option<&HttpError>) -> axum::response::Response {
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

/// Form or query fields as pairs (repeated fields kept in order).
fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(bytes).unwrap_or_default()
}

fn one<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn all<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}
