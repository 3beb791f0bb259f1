//! The opinion area of the console: the reputation overview, the mention stream and stories,
//! incidents with their workflow and four-eyes public reply, and the watch list, sources and
//! alert rules. The opinion service decides who may do what; these pages show its answers.

mod incidents;
mod mentions;
mod overview;
mod watch;

use super::page::{Authed, Console, url_encode};
use crate::api::error::HttpError;
use crate::state::Gateway;
use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use hcrm_kit::auth::Role;
use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::opinion::reputation_service_client::ReputationServiceClient;
use hcrm_proto::opinion::watch_service_client::WatchServiceClient;
use hcrm_proto::opinion::{Entity, ListEntitiesRequest, Sentiment, SentimentLabel};
use http::HeaderMap;
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

/// The routes of this area, merged into the console by `web::router`.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/console/opinion", get(overview::show))
        .route("/console/opinion/analyze", post(overview::analyze))
        .route("/console/opinion/mentions", get(mentions::list))
        .route("/console/opinion/mentions/{id}", get(mentions::mention))
        .route("/console/opinion/stories", get(mentions::stories))
        .route("/console/opinion/stories/{id}", get(mentions::story))
        .route("/console/opinion/stories/{id}/incident", post(mentions::open_incident))
        .route(
            "/console/opinion/incidents",
            get(incidents::list).post(incidents::create),
        )
        .route("/console/opinion/incidents/{id}", get(incidents::show))
        .route(
            "/console/opinion/incidents/{id}/transition",
            post(incidents::transition),
        )
        .route("/console/opinion/incidents/{id}/notes", post(incidents::note))
        .route("/console/opinion/incidents/{id}/links", post(incidents::links))
        .route("/console/opinion/incidents/{id}/escalate", post(incidents::escalate))
        .route("/console/opinion/incidents/{id}/reply", post(incidents::draft))
        .route("/console/opinion/incidents/{id}/approve", post(incidents::approve))
        .route(
            "/console/opinion/entities",
            get(watch::entities).post(watch::create_entity),
        )
        .route("/console/opinion/entities/{id}", post(watch::update_entity))
        .route("/console/opinion/entities/{id}/archive", post(watch::archive_entity))
        .route(
            "/console/opinion/sources",
            get(watch::sources).post(watch::create_source),
        )
        .route("/console/opinion/sources/{id}", post(watch::update_source))
        .route("/console/opinion/sources/{id}/delete", post(watch::delete_source))
        .route("/console/opinion/sources/{id}/poll", post(watch::poll_source))
        .route("/console/opinion/rules", get(watch::rules).post(watch::create_rule))
        .route("/console/opinion/rules/{id}", post(watch::update_rule))
        .route("/console/opinion/rules/{id}/delete", post(watch::delete_rule))
}

fn watch_client(c: &Console) -> WatchServiceClient<Authed> {
    WatchServiceClient::new(c.authed(&c.gw.upstreams.opinion.channel))
}

fn mention_client(c: &Console) -> MentionServiceClient<Authed> {
    MentionServiceClient::new(c.authed(&c.gw.upstreams.opinion.channel))
}

fn incident_client(c: &Console) -> IncidentServiceClient<Authed> {
    IncidentServiceClient::new(c.authed(&c.gw.upstreams.opinion.channel))
}

fn reputation_client(c: &Console) -> ReputationServiceClient<Authed> {
    ReputationServiceClient::new(c.authed(&c.gw.upstreams.opinion.channel))
}

/// Whether write forms are worth showing. Display only: the opinion service checks every call,
/// so a member shown a form they may not use gets its PERMISSION_DENIED.
fn can_work(c: &Console) -> bool {
    c.who
        .account
        .roles
        .iter()
        .any(|r| matches!(r, Role::Admin | Role::OpinionAnalyst))
}

/// A posted console form, CSRF-checked, with its fields in order (kept to fill the form again
/// when the service refuses it).
#[derive(Debug, Default, Clone)]
struct Posted(Vec<(String, String)>);

impl Posted {
    /// Checks the CSRF token and origin, then reads the fields.
    fn read(c: &Console, headers: &HeaderMap, body: &[u8]) -> Result<Posted, HttpError> {
        c.form::<serde::de::IgnoredAny>(headers, body)?;
        serde_urlencoded::from_bytes(body)
            .map(Posted)
            .map_err(|e| HttpError::invalid("form", e.to_string()))
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn trimmed(&self, name: &str) -> String {
        self.get(name).trim().to_string()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// A text area read one entry per line, blank lines dropped.
    fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// A form the service (or the form's own parsing) refused: which form, why, and what was typed.
struct Failed {
    form: String,
    error: HttpError,
    posted: Posted,
}

impl Failed {
    fn new(form: impl Into<String>, error: impl Into<HttpError>, posted: Posted) -> Failed {
        Failed {
            form: form.into(),
            error: error.into(),
            posted,
        }
    }
}

/// What a form shows: what was typed when this form just failed, else the stored value.
fn kept(failed: Option<&Failed>, form: &str, name: &str, stored: &str) -> String {
    match failed {
        Some(f) if f.form == form => f.posted.get(name).to_string(),
        _ => stored.to_string(),
    }
}

/// A checkbox's state, kept the same way.
fn kept_check(failed: Option<&Failed>, form: &str, name: &str, stored: bool) -> bool {
    match failed {
        Some(f) if f.form == form => f.posted.has(name),
        _ => stored,
    }
}

/// The error box of a form, when that form just failed.
fn error_for(c: &Console, failed: Option<&Failed>, form: &str) -> Markup {
    html! {
        @if let Some(f) = failed.filter(|f| f.form == form) { (c.error_box(&f.error)) }
    }
}

/// Whether the failed form's error names `field` (or a part of it, `entity.terms[2]`).
fn names_field(failed: Option<&Failed>, form: &str, field: &str) -> bool {
    failed.filter(|f| f.form == form).is_some_and(|f| {
        f.error.field_violations.iter().any(|v| {
            v.field == field || v.field.starts_with(&format!("{field}[")) || v.field.starts_with(&format!("{field}."))
        })
    })
}

/// `aria-invalid` for an input the error names.
fn invalid(failed: Option<&Failed>, form: &str, field: &str) -> Option<&'static str> {
    names_field(failed, form, field).then_some("true")
}

/// A page answered with the failed form's status (200 otherwise).
fn page_with(c: &Console, title: &str, body: Markup, failed: Option<&Failed>) -> Response {
    let mut response = c.page(title, body);
    if let Some(f) = failed {
        *response.status_mut() = http::StatusCode::from_u16(f.error.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

/// Post/redirect/get: back to `path` with what was done, shown by [`done_notice`].
fn done(path: &str, what: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (path, anchor) = match path.split_once('#') {
        Some((p, a)) => (p, format!("#{a}")),
        None => (path, String::new()),
    };
    Redirect::to(&format!("{path}{sep}done={what}{anchor}")).into_response()
}

/// The notice of a redirect after a successful change; an unknown code shows nothing.
fn done_notice(c: &Console, code: &str) -> Markup {
    let text = match code {
        "created" => c.tr("已创建。", "Created."),
        "saved" => c.tr("已保存。", "Saved."),
        "archived" => c.tr("已归档。", "Archived."),
        "deleted" => c.tr("已删除。", "Deleted."),
        "polled" => c.tr("已抓取，结果见下表。", "Fetched; the outcome is in the table."),
        "incident" => c.tr("已创建舆情事件。", "Incident opened."),
        "acknowledged" => c.tr("已确认。", "Acknowledged."),
        "responding" => c.tr("已开始处置。", "Now responding."),
        "resolved" => c.tr("已办结。", "Resolved."),
        "reopened" => c.tr("已重新打开。", "Reopened."),
        "noted" => c.tr("已添加备注。", "Note added."),
        "linked" => c.tr("已更新关联。", "Links updated."),
        "escalated" => c.tr(
            "已提交转投诉，投诉受理后将在此显示。",
            "Escalation asked for; the case appears here once feedback opens it.",
        ),
        "drafted" => c.tr(
            "回复草稿已保存，待他人审核。",
            "Reply drafted; a second person approves it.",
        ),
        "approved" => c.tr("回复已审核通过。", "Reply approved."),
        _ => return html! {},
    };
    html! { div.notice role="status" data-done=(code) { (text) } }
}

/// The area's own navigation, on every page of it.
fn subnav(c: &Console, current: &str) -> Markup {
    let items: [(&str, &str, &str); 7] = [
        ("/console/opinion", "概览", "Overview"),
        ("/console/opinion/mentions", "提及", "Mentions"),
        ("/console/opinion/stories", "话题", "Stories"),
        ("/console/opinion/incidents", "舆情事件", "Incidents"),
        ("/console/opinion/entities", "监测对象", "Watch list"),
        ("/console/opinion/sources", "信息源", "Sources"),
        ("/console/opinion/rules", "预警规则", "Alert rules"),
    ];
    html! {
        p.subnav {
            @for (href, zh, en) in items {
                @if href == current { span.tag { (c.tr(zh, en)) } } @else { a.tag href=(href) { (c.tr(zh, en)) } }
                " "
            }
        }
    }
}

/// The console page of a resource name, for the resources the console shows.
fn console_path(name: &str) -> Option<String> {
    let (collection, id) = name.split_once('/')?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    let base = match collection {
        "patients" => "/console/patients",
        "cases" => "/console/cases",
        "mentions" => "/console/opinion/mentions",
        "stories" => "/console/opinion/stories",
        "incidents" => "/console/opinion/incidents",
        _ => return None,
    };
    Some(format!("{base}/{id}"))
}

/// A resource name as a link to its page (plain text when it has none).
fn resource_link(name: &str, text: &str) -> Markup {
    html! {
        @if let Some(href) = console_path(name) { a href=(href) data-resource=(name) { (text) } }
        @else { (text) }
    }
}

/// Whether an address taken from a post may be offered as a link: http(s) only, so no
/// `javascript:` or `data:` reaches an `href`.
use crate::web::page::is_web_url;

/// An outside address as a link that tells the other site nothing, or as text.
fn external(url: &str, text: &str) -> Markup {
    html! {
        @if is_web_url(url) { a.external href=(url.trim()) rel="noopener noreferrer" target="_blank" { (text) } }
        @else { (text) }
    }
}

fn sentiment_label(c: &Console, label: i32) -> (&'static str, &'static str) {
    match SentimentLabel::try_from(label).unwrap_or(SentimentLabel::Unspecified) {
        SentimentLabel::Negative => (c.tr("负面", "negative"), "bad"),
        SentimentLabel::Neutral => (c.tr("中性", "neutral"), ""),
        SentimentLabel::Positive => (c.tr("正面", "positive"), "good"),
        SentimentLabel::Unspecified => ("—", ""),
    }
}

/// The sentiment as a tag with its score.
fn sentiment_tag(c: &Console, s: &Option<Sentiment>) -> Markup {
    let s = s.clone().unwrap_or_default();
    let (text, tone) = sentiment_label(c, s.label);
    let code = SentimentLabel::try_from(s.label)
        .unwrap_or(SentimentLabel::Unspecified)
        .as_str_name()
        .trim_start_matches("SENTIMENT_LABEL_")
        .to_ascii_lowercase();
    html! {
        span class={ "tag " (tone) } data-sentiment=(code) { (text) " " (format!("{:+.2}", s.score)) }
    }
}

fn topic_name(c: &Console, code: &str) -> String {
    let name = match code {
        "service_attitude" => c.tr("服务态度", "service attitude"),
        "waiting_time" => c.tr("等候时间", "waiting time"),
        "charges" => c.tr("收费", "charges"),
        "care_quality" => c.tr("医疗质量", "care quality"),
        "medical_dispute" => c.tr("医疗纠纷", "medical dispute"),
        "environment" => c.tr("就医环境", "environment"),
        "good_deeds" => c.tr("好人好事", "good deeds"),
        "new_technique" => c.tr("新技术", "new technique"),
        "honour" => c.tr("荣誉", "honour"),
        other => return other.to_string(),
    };
    name.to_string()
}

/// The language code of a post, named.
fn language_name(c: &Console, code: &str) -> String {
    match code {
        "zh" => c.tr("中文", "Chinese").to_string(),
        "en" => c.tr("英文", "English").to_string(),
        "und" | "" => c.tr("未识别", "undetermined").to_string(),
        other => other.to_string(),
    }
}

fn topic_tags(c: &Console, topics: &[String]) -> Markup {
    html! { @for t in topics { span.tag data-topic=(t) { (topic_name(c, t)) } } }
}

/// The watch list's display names by entity name, archived ones included; empty when the
/// member may not read the watch list (names then show as they are).
async fn entity_names(c: &Console) -> HashMap<String, String> {
    all_entities(c, true)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.display_name))
        .collect()
}

/// Every entity of the watch list (a few hundred at most, so one or two pages).
async fn all_entities(c: &Console, include_archived: bool) -> Result<Vec<Entity>, tonic::Status> {
    let mut client = watch_client(c);
    let mut out = Vec::new();
    let mut page_token = String::new();
    for _ in 0..10 {
        let page = client
            .list_entities(ListEntitiesRequest {
                include_archived,
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.extend(page.entities);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(out)
}

fn entity_tags(names: &HashMap<String, String>, entities: &[String]) -> Markup {
    html! {
        @for e in entities {
            span.tag data-entity=(e) { (names.get(e).map(String::as_str).unwrap_or(e.trim_start_matches("entities/"))) }
        }
    }
}

/// A `YYYY-MM-DD` field; empty is none.
use crate::web::page::parse_day as parse_date;

/// The start of a local day in the hospital's zone, as microseconds since the epoch.
fn day_start(c: &Console, day: NaiveDate) -> i64 {
    let midnight = day
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_micros();
    midnight - i64::from(c.gw.cfg.utc_offset_minutes) * 60_000_000
}

/// A whole number field; empty is `empty`.
fn parse_number<T: std::str::FromStr>(field: &str, text: &str, empty: T) -> Result<T, HttpError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(empty);
    }
    text.parse().map_err(|_| HttpError::invalid(field, "must be a number"))
}

/// A query string of the non-empty pairs.
fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The link to the next page of a list, keeping its filters.
fn next_page(c: &Console, path: &str, filters: &[(&str, &str)], token: &str) -> Markup {
    if token.is_empty() {
        return html! {};
    }
    let mut pairs = filters.to_vec();
    pairs.push(("page_token", token));
    html! {
        p { a.next href={ (path) "?" (query_string(&pairs)) } rel="next" { (c.tr("下一页 →", "Next page →")) } }
    }
}

/// The id part of a resource name.
fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_addresses_become_links() {
        assert!(is_web_url("https://weibo.com/p/1"));
        assert!(is_web_url("HTTP://example.com"));
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "https://",
            "ftp://x",
        ] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }

    #[test]
    fn resource_names_link_to_their_pages() {
        assert_eq!(console_path("patients/p1").as_deref(), Some("/console/patients/p1"));
        assert_eq!(console_path("cases/c1").as_deref(), Some("/console/cases/c1"));
        assert_eq!(
            console_path("stories/s1").as_deref(),
            Some("/console/opinion/stories/s1")
        );
        assert_eq!(console_path("push/crawler"), None);
        assert_eq!(console_path("patients/"), None);
        assert_eq!(console_path("patients/a/b"), None);
    }

    #[test]
    fn forms_parse_dates_and_numbers_with_the_field_named() {
        assert_eq!(parse_date("from", "").unwrap(), None);
        assert!(parse_date("from", "2026-06-01").unwrap().is_some());
        let err = parse_date("from", "2026-02-30").unwrap_err();
        assert_eq!(err.field_violations[0].field, "from");
        assert_eq!(parse_number::<i64>("rule.threshold", " 5 ", 0).unwrap(), 5);
        assert!(parse_number::<i64>("rule.threshold", "five", 0).is_err());
        assert_eq!(query_string(&[("a", "x y"), ("b", "")]), "a=x%20y");
    }
}
