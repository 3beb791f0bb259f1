//! The watch list (entities with their names, aliases and terms), the sources polled (with the
//! outcome of their last fetch) and the alert rules. Managing them is the opinion group's and
//! the administrators'; the service refuses everyone else.

use super::{
    Failed, Posted, all_entities, done, done_notice, error_for, external, id_of, invalid, kept, kept_check, page_with,
    parse_number, subnav, watch_client,
};
use crate::api::error::HttpError;
use crate::web::page::Console;
use axum::extract::{Path, Query};
use axum::response::Response;
use bytes::Bytes;
use hcrm_proto::opinion::{
    AlertKind, AlertRule, ArchiveEntityRequest, CreateAlertRuleRequest, CreateEntityRequest, CreateSourceRequest,
    DeleteAlertRuleRequest, DeleteSourceRequest, Entity, EntityKind, FetchStatus, ListAlertRulesRequest,
    ListSourcesRequest, PollSourceRequest, Source, SourceKind, UpdateAlertRuleRequest, UpdateEntityRequest,
    UpdateSourceRequest,
};
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Default, Deserialize)]
pub struct WatchQuery {
    #[serde(default)]
    archived: String,
    #[serde(default)]
    done: String,
}

/// A write's outcome on a watch page: back to the list with what was done, or the list again
/// with the form's error and entries.
fn failed_or_done<T>(
    result: Result<T, tonic::Status>,
    path: &str,
    what: &str,
    form: String,
    posted: Posted,
) -> Result<Response, Failed> {
    match result {
        Ok(_) => Ok(done(path, what)),
        Err(status) => Err(Failed::new(form, status, posted)),
    }
}

/// Errors of the forms inside table rows, shown above the table (the row's form stays open).
fn row_error(c: &Console, failed: Option<&Failed>, new_form: &str) -> Markup {
    html! {
        @if let Some(f) = failed.filter(|f| f.form != new_form) { (c.error_box(&f.error)) }
    }
}

// ---------------------------------------------------------------------------------------------
// Entities

const ENTITY_KINDS: [(&str, EntityKind, &str, &str); 4] = [
    ("hospital", EntityKind::Hospital, "医院", "hospital"),
    ("department", EntityKind::Department, "科室", "department"),
    ("doctor", EntityKind::Doctor, "医生", "doctor"),
    ("term", EntityKind::Term, "关键词", "key term"),
];

fn entity_kind_code(kind: i32) -> &'static str {
    ENTITY_KINDS
        .iter()
        .find(|(_, k, _, _)| *k as i32 == kind)
        .map(|(code, _, _, _)| *code)
        .unwrap_or("")
}

fn entity_kind_of(code: &str) -> EntityKind {
    ENTITY_KINDS
        .iter()
        .find(|(c, _, _, _)| *c == code)
        .map(|(_, k, _, _)| *k)
        .unwrap_or(EntityKind::Unspecified)
}

fn entity_kind_name(c: &Console, kind: i32) -> &'static str {
    ENTITY_KINDS
        .iter()
        .find(|(_, k, _, _)| *k as i32 == kind)
        .map(|(_, _, zh, en)| c.tr(zh, en))
        .unwrap_or("—")
}

pub async fn entities(c: Console, Query(q): Query<WatchQuery>) -> Response {
    render_entities(&c, &q, None).await
}

async fn render_entities(c: &Console, q: &WatchQuery, failed: Option<&Failed>) -> Response {
    let archived = q.archived == "1";
    let list = match all_entities(c, archived).await {
        Ok(list) => list,
        Err(status) => return c.error(status),
    };
    let work = super::can_work(c);
    let body = html! {
        (subnav(c, "/console/opinion/entities"))
        (done_notice(c, &q.done))
        p {
            @if archived { a href="/console/opinion/entities" { (c.tr("隐藏已归档", "Hide archived")) } }
            @else { a href="/console/opinion/entities?archived=1" { (c.tr("显示已归档", "Show archived")) } }
        }
        (row_error(c, failed, "new-entity"))
        @if list.is_empty() { p.small { (c.tr("监测列表为空。", "The watch list is empty.")) } }
        @else {
            table #entities {
                thead { tr {
                    th { (c.tr("类型", "Kind")) } th { (c.tr("名称", "Name")) } th { (c.tr("别名与关键词", "Names and terms")) }
                    th { (c.tr("科室", "Department")) } th { (c.tr("状态", "State")) } th { (c.tr("更新时间", "Updated")) } th {}
                } }
                tbody { @for e in &list { (entity_row(c, e, failed, work)) } }
            }
        }
        @if work {
            h2 { (c.tr("新增监测对象", "Add to the watch list")) }
            (error_for(c, failed, "new-entity"))
            form.card #new-entity method="post" action="/console/opinion/entities" {
                (c.csrf_field())
                (entity_fields(c, None, failed, "new-entity"))
                button type="submit" { (c.tr("添加", "Add")) }
            }
        }
    };
    page_with(c, c.tr("监测对象", "Watch list"), body, failed)
}

/// The fields of an entity form, filled from the entity or from what was typed.
fn entity_fields(c: &Console, e: Option<&Entity>, failed: Option<&Failed>, form: &str) -> Markup {
    let kind = kept(failed, form, "kind", e.map(|e| entity_kind_code(e.kind)).unwrap_or(""));
    let terms = e.map(|e| e.terms.join("\n")).unwrap_or_default();
    html! {
        label { (c.tr("类型", "Kind"))
            select name="kind" required aria-invalid=[invalid(failed, form, "entity.kind")] {
                option value="" { "—" }
                @for (code, _, zh, en) in ENTITY_KINDS { option value=(code) selected[code == kind] { (c.tr(zh, en)) } }
            }
        }
        label { (c.tr("名称", "Name"))
            input name="display_name" required maxlength="100" value=(kept(failed, form, "display_name", e.map(|e| e.display_name.as_str()).unwrap_or("")))
                aria-invalid=[invalid(failed, form, "entity.display_name")];
        }
        label { (c.tr("别名与关键词（每行一个，中英文均可）", "Aliases and terms (one per line, Chinese or English)"))
            textarea name="terms" rows="4" aria-invalid=[invalid(failed, form, "entity.terms")] { (kept(failed, form, "terms", &terms)) }
        }
        label { (c.tr("科室编码（科室、医生）", "Department code (departments and doctors)"))
            input name="department" maxlength="40" value=(kept(failed, form, "department", e.map(|e| e.department.as_str()).unwrap_or("")))
                aria-invalid=[invalid(failed, form, "entity.department")];
        }
    }
}

fn entity_row(c: &Console, e: &Entity, failed: Option<&Failed>, work: bool) -> Markup {
    let id = id_of(&e.name);
    let form = format!("entity-{id}");
    let open = failed.is_some_and(|f| f.form == form);
    html! {
        tr data-entity=(e.name) data-kind=(entity_kind_code(e.kind)) {
            td { (entity_kind_name(c, e.kind)) }
            td { (e.display_name) }
            td { @for t in &e.terms { span.tag { (t) } } }
            td { (e.department) }
            td { @if e.archived { span.tag.bad { (c.tr("已归档", "archived")) } } @else { span.tag.good { (c.tr("监测中", "watched")) } } }
            td { (c.ts(&e.update_time)) }
            td {
                @if work && !e.archived {
                    details open[open] {
                        summary { (c.tr("修改", "Change")) }
                        form id=(form) method="post" action={ "/console/opinion/entities/" (id) } {
                            (c.csrf_field())
                            input type="hidden" name="etag" value=(e.etag);
                            (entity_fields(c, Some(e), failed, &form))
                            button type="submit" { (c.tr("保存", "Save")) }
                        }
                        form method="post" action={ "/console/opinion/entities/" (id) "/archive" } {
                            (c.csrf_field())
                            input type="hidden" name="etag" value=(e.etag);
                            button.secondary type="submit" { (c.tr("归档（不再匹配新提及）", "Archive (no new mentions match)")) }
                        }
                    }
                }
            }
        }
    }
}

fn entity_of(posted: &Posted, name: String) -> Entity {
    Entity {
        name,
        kind: entity_kind_of(posted.get("kind")) as i32,
        display_name: posted.trimmed("display_name"),
        terms: posted.lines("terms"),
        department: posted.trimmed("department"),
        etag: posted.trimmed("etag"),
        ..Default::default()
    }
}

const ENTITIES: &str = "/console/opinion/entities";

pub async fn create_entity(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = watch_client(&c)
        .create_entity(CreateEntityRequest {
            entity: Some(entity_of(&posted, String::new())),
        })
        .await;
    match failed_or_done(result, ENTITIES, "created", "new-entity".into(), posted) {
        Ok(r) => r,
        Err(f) => render_entities(&c, &WatchQuery::default(), Some(&f)).await,
    }
}

pub async fn update_entity(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = watch_client(&c)
        .update_entity(UpdateEntityRequest {
            entity: Some(entity_of(&posted, format!("entities/{id}"))),
        })
        .await;
    match failed_or_done(result, ENTITIES, "saved", format!("entity-{id}"), posted) {
        Ok(r) => r,
        Err(f) => render_entities(&c, &WatchQuery::default(), Some(&f)).await,
    }
}

pub async fn archive_entity(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = watch_client(&c)
        .archive_entity(ArchiveEntityRequest {
            name: format!("entities/{id}"),
            etag: posted.trimmed("etag"),
        })
        .await;
    match failed_or_done(result, ENTITIES, "archived", format!("archive-{id}"), posted) {
        Ok(r) => r,
        Err(f) => render_entities(&c, &WatchQuery::default(), Some(&f)).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Sources

const SOURCES: &str = "/console/opinion/sources";

pub async fn sources(c: Console, Query(q): Query<WatchQuery>) -> Response {
    render_sources(&c, &q.done, None).await
}

async fn all_sources(c: &Console) -> Result<Vec<Source>, tonic::Status> {
    let mut client = watch_client(c);
    let mut out = Vec::new();
    let mut page_token = String::new();
    for _ in 0..10 {
        let page = client
            .list_sources(ListSourcesRequest {
                page_size: 500,
                page_token,
            })
            .await?
            .into_inner();
        out.extend(page.sources);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(out)
}

async fn render_sources(c: &Console, done_code: &str, failed: Option<&Failed>) -> Response {
    let list = match all_sources(c).await {
        Ok(list) => list,
        Err(status) => return c.error(status),
    };
    let work = super::can_work(c);
    const FORM: &str = "new-source";
    let kind = kept(failed, FORM, "kind", "feed");
    let body = html! {
        (subnav(c, SOURCES))
        (done_notice(c, done_code))
        (row_error(c, failed, FORM))
        @if list.is_empty() { p.small { (c.tr("尚未配置信息源。", "No source yet.")) } }
        @else {
            table #sources {
                thead { tr {
                    th { (c.tr("信息源", "Source")) } th { (c.tr("类型", "Kind")) } th { (c.tr("间隔", "Every")) }
                    th { (c.tr("上次抓取", "Last fetch")) } th { (c.tr("结果", "Outcome")) } th { (c.tr("编码", "Encoding")) }
                    th { (c.tr("条目/收录", "Items/kept")) } th { (c.tr("连续失败", "Failures in a row")) }
                    th { (c.tr("下次抓取", "Next fetch")) } th {}
                } }
                tbody { @for s in &list { (source_row(c, s, failed, work)) } }
            }
        }
        @if work {
            h2 { (c.tr("新增信息源", "Add a source")) }
            (error_for(c, failed, FORM))
            form.card #new-source method="post" action=(SOURCES) {
                (c.csrf_field())
                label { (c.tr("类型", "Kind"))
                    select name="kind" aria-invalid=[invalid(failed, FORM, "source.kind")] {
                        option value="feed" selected[kind == "feed"] { (c.tr("RSS/Atom 订阅", "RSS/Atom feed")) }
                        option value="page" selected[kind == "page"] { (c.tr("网页", "web page")) }
                    }
                }
                label { (c.tr("地址（http 或 https）", "Address (http or https)"))
                    input name="url" type="url" required maxlength="2000" value=(kept(failed, FORM, "url", "")) aria-invalid=[invalid(failed, FORM, "source.url")];
                }
                label { (c.tr("标题", "Title"))
                    input name="title" maxlength="200" value=(kept(failed, FORM, "title", "")) aria-invalid=[invalid(failed, FORM, "source.title")];
                }
                label { (c.tr("抓取间隔（秒，至少60，默认900）", "Seconds between fetches (60 or more; 900 by default)"))
                    input name="interval_seconds" inputmode="numeric" value=(kept(failed, FORM, "interval_seconds", "900")) aria-invalid=[invalid(failed, FORM, "source.interval_seconds")];
                }
                button type="submit" { (c.tr("添加", "Add")) }
            }
        }
    };
    page_with(c, c.tr("信息源", "Sources"), body, failed)
}

fn fetch_status(c: &Console, status: i32) -> Markup {
    let (text, tone, code) = match FetchStatus::try_from(status).unwrap_or(FetchStatus::Unspecified) {
        FetchStatus::Ok => (c.tr("成功", "ok"), "good", "ok"),
        FetchStatus::NotModified => (c.tr("无变化", "not modified"), "", "not_modified"),
        FetchStatus::Error => (c.tr("失败", "error"), "bad", "error"),
        FetchStatus::Unspecified => (c.tr("未抓取", "not fetched yet"), "", "none"),
    };
    html! { span class={ "tag " (tone) } data-fetch-status=(code) { (text) } }
}

fn source_row(c: &Console, s: &Source, failed: Option<&Failed>, work: bool) -> Markup {
    let id = id_of(&s.name);
    let form = format!("source-{id}");
    let open = failed.is_some_and(|f| f.form == form);
    let kind = if s.kind == SourceKind::Page as i32 {
        c.tr("网页", "page")
    } else {
        c.tr("订阅", "feed")
    };
    html! {
        tr id={ "source-" (id) } data-source=(s.name) data-enabled=(s.enabled) {
            td {
                (if s.title.is_empty() { "—" } else { &s.title })
                div.small { (external(&s.url, &s.url)) }
            }
            td { (kind) @if !s.enabled { " " span.tag.warn { (c.tr("已停用", "disabled")) } } }
            td { (s.interval_seconds) (c.tr(" 秒", " s")) }
            td { (c.ts(&s.last_fetch_time)) }
            td {
                (fetch_status(c, s.last_status))
                @if !s.last_error.is_empty() { div.small data-last-error { (s.last_error) } }
            }
            td { (s.last_encoding) }
            td { (s.last_item_count) " / " (s.last_kept_count) }
            td data-failures=(s.consecutive_failures) { (s.consecutive_failures) }
            td { (c.ts(&s.next_fetch_time)) }
            td {
                @if work {
                    form method="post" action={ (SOURCES) "/" (id) "/poll" } {
                        (c.csrf_field())
                        button.secondary type="submit" { (c.tr("立即抓取", "Fetch now")) }
                    }
                    details open[open] {
                        summary { (c.tr("修改", "Change")) }
                        form id=(form) method="post" action={ (SOURCES) "/" (id) } {
                            (c.csrf_field())
                            input type="hidden" name="etag" value=(s.etag);
                            label { (c.tr("标题", "Title"))
                                input name="title" maxlength="200" value=(kept(failed, &form, "title", &s.title)) aria-invalid=[invalid(failed, &form, "source.title")];
                            }
                            label { (c.tr("抓取间隔（秒）", "Seconds between fetches"))
                                input name="interval_seconds" inputmode="numeric" value=(kept(failed, &form, "interval_seconds", &s.interval_seconds.to_string()))
                                    aria-invalid=[invalid(failed, &form, "source.interval_seconds")];
                            }
                            label { input type="checkbox" name="enabled" value="true" checked[kept_check(failed, &form, "enabled", s.enabled)]; " " (c.tr("启用", "Enabled")) }
                            button type="submit" { (c.tr("保存", "Save")) }
                        }
                        form method="post" action={ (SOURCES) "/" (id) "/delete" } {
                            (c.csrf_field())
                            input type="hidden" name="etag" value=(s.etag);
                            button.secondary type="submit" { (c.tr("删除（已收录的提及保留）", "Delete (its mentions stay)")) }
                        }
                    }
                }
            }
        }
    }
}

fn interval(posted: &Posted) -> Result<i32, HttpError> {
    parse_number("source.interval_seconds", posted.get("interval_seconds"), 0)
}

pub async fn create_source(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    const FORM: &str = "new-source";
    let interval_seconds = match interval(&posted) {
        Ok(n) => n,
        Err(err) => return render_sources(&c, "", Some(&Failed::new(FORM, err, posted))).await,
    };
    let kind = match posted.get("kind") {
        "page" => SourceKind::Page,
        "feed" => SourceKind::Feed,
        _ => SourceKind::Unspecified,
    };
    let result = watch_client(&c)
        .create_source(CreateSourceRequest {
            source: Some(Source {
                kind: kind as i32,
                url: posted.trimmed("url"),
                title: posted.trimmed("title"),
                interval_seconds,
                enabled: true,
                ..Default::default()
            }),
        })
        .await;
    match failed_or_done(result, SOURCES, "created", FORM.into(), posted) {
        Ok(r) => r,
        Err(f) => render_sources(&c, "", Some(&f)).await,
    }
}

pub async fn update_source(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let form = format!("source-{id}");
    let interval_seconds = match interval(&posted) {
        Ok(n) => n,
        Err(err) => return render_sources(&c, "", Some(&Failed::new(form, err, posted))).await,
    };
    let result = watch_client(&c)
        .update_source(UpdateSourceRequest {
            source: Some(Source {
                name: format!("sources/{id}"),
                title: posted.trimmed("title"),
                interval_seconds,
                enabled: posted.has("enabled"),
                etag: posted.trimmed("etag"),
                ..Default::default()
            }),
        })
        .await;
    match failed_or_done(result, SOURCES, "saved", form, posted) {
        Ok(r) => r,
        Err(f) => render_sources(&c, "", Some(&f)).await,
    }
}

pub async fn delete_source(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = watch_client(&c)
        .delete_source(DeleteSourceRequest {
            name: format!("sources/{id}"),
            etag: posted.trimmed("etag"),
        })
        .await;
    match failed_or_done(result, SOURCES, "deleted", format!("delete-{id}"), posted) {
        Ok(r) => r,
        Err(f) => render_sources(&c, "", Some(&f)).await,
    }
}

/// Fetches now; the outcome is in the source's row (status, error, counts).
pub async fn poll_source(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = watch_client(&c)
        .poll_source(PollSourceRequest {
            name: format!("sources/{id}"),
        })
        .await;
    let back = format!("{SOURCES}#source-{id}");
    match failed_or_done(result, &back, "polled", format!("poll-{id}"), posted) {
        Ok(r) => r,
        Err(f) => render_sources(&c, "", Some(&f)).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Alert rules

const RULES: &str = "/console/opinion/rules";

const RULE_KINDS: [(&str, AlertKind, &str, &str); 3] = [
    (
        "negative_count",
        AlertKind::NegativeCount,
        "负面数量：窗口内负面提及达到阈值",
        "Negative count: negatives in the window reach the threshold",
    ),
    (
        "burst",
        AlertKind::Burst,
        "突增：窗口内提及达到此前平均的倍数且不低于阈值",
        "Burst: mentions in the window reach the factor × the baseline, and the threshold",
    ),
    (
        "high_reach",
        AlertKind::HighReach,
        "高传播：单个话题传播量达到阈值",
        "High reach: one story's reach reaches the threshold",
    ),
];

fn rule_kind_code(kind: i32) -> &'static str {
    RULE_KINDS
        .iter()
        .find(|(_, k, _, _)| *k as i32 == kind)
        .map(|(code, _, _, _)| *code)
        .unwrap_or("")
}

fn rule_kind_name(c: &Console, kind: i32) -> &'static str {
    match AlertKind::try_from(kind).unwrap_or(AlertKind::Unspecified) {
        AlertKind::NegativeCount => c.tr("负面数量", "negative count"),
        AlertKind::Burst => c.tr("突增", "burst"),
        AlertKind::HighReach => c.tr("高传播", "high reach"),
        AlertKind::Unspecified => "—",
    }
}

pub async fn rules(c: Console, Query(q): Query<WatchQuery>) -> Response {
    render_rules(&c, &q.done, None).await
}

async fn all_rules(c: &Console) -> Result<Vec<AlertRule>, tonic::Status> {
    let mut client = watch_client(c);
    let mut out = Vec::new();
    let mut page_token = String::new();
    for _ in 0..10 {
        let page = client
            .list_alert_rules(ListAlertRulesRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.extend(page.rules);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(out)
}

async fn render_rules(c: &Console, done_code: &str, failed: Option<&Failed>) -> Response {
    let (list, entities) = tokio::join!(all_rules(c), all_entities(c, true));
    let list = match list {
        Ok(list) => list,
        Err(status) => return c.error(status),
    };
    let entities = entities.unwrap_or_default();
    let names: HashMap<String, String> = entities
        .iter()
        .map(|e| (e.name.clone(), e.display_name.clone()))
        .collect();
    let work = super::can_work(c);
    const FORM: &str = "new-rule";
    let entity = kept(failed, FORM, "entity", "");
    let body = html! {
        (subnav(c, RULES))
        (done_notice(c, done_code))
        (row_error(c, failed, FORM))
        @if list.is_empty() { p.small { (c.tr("尚未设置预警规则。", "No alert rule yet.")) } }
        @else {
            table #rules {
                thead { tr {
                    th { (c.tr("监测对象", "Entity")) } th { (c.tr("类型", "Kind")) } th { (c.tr("阈值", "Threshold")) }
                    th { (c.tr("窗口（分钟）", "Window (minutes)")) } th { (c.tr("倍数/基线窗口", "Factor / baseline windows")) }
                    th { (c.tr("通知", "Notify")) } th { (c.tr("状态", "State")) } th {}
                } }
                tbody { @for r in &list { (rule_row(c, r, &names, failed, work)) } }
            }
        }
        @if work {
            h2 { (c.tr("新增预警规则", "Add an alert rule")) }
            (error_for(c, failed, FORM))
            form.card #new-rule method="post" action=(RULES) {
                (c.csrf_field())
                input type="hidden" name="request_id" value=({
                    let id = kept(failed, FORM, "request_id", "");
                    if id.is_empty() { hcrm_kit::new_id() } else { id }
                });
                label { (c.tr("监测对象", "Entity"))
                    select name="entity" required aria-invalid=[invalid(failed, FORM, "rule.entity")] {
                        option value="" { "—" }
                        @for e in entities.iter().filter(|e| !e.archived) { option value=(e.name) selected[e.name == entity] { (e.display_name) } }
                    }
                }
                (rule_fields(c, None, failed, FORM))
                button type="submit" { (c.tr("添加", "Add")) }
            }
        }
    };
    page_with(c, c.tr("预警规则", "Alert rules"), body, failed)
}

/// The fields of a rule form, filled from the rule or from what was typed.
fn rule_fields(c: &Console, r: Option<&AlertRule>, failed: Option<&Failed>, form: &str) -> Markup {
    let kind = kept(
        failed,
        form,
        "kind",
        r.map(|r| rule_kind_code(r.kind)).unwrap_or("negative_count"),
    );
    let number = |name: &str, stored: String| kept(failed, form, name, &stored);
    html! {
        label { (c.tr("类型", "Kind"))
            select name="kind" aria-invalid=[invalid(failed, form, "rule.kind")] {
                @for (code, _, zh, en) in RULE_KINDS { option value=(code) selected[code == kind] { (c.tr(zh, en)) } }
            }
        }
        label { (c.tr("阈值（条数或传播量）", "Threshold (mentions or reach)"))
            input name="threshold" inputmode="numeric" required value=(number("threshold", r.map(|r| r.threshold.to_string()).unwrap_or_else(|| "5".into())))
                aria-invalid=[invalid(failed, form, "rule.threshold")];
        }
        label { (c.tr("窗口（分钟，5–10080）", "Window in minutes (5–10080)"))
            input name="window_minutes" inputmode="numeric" required value=(number("window_minutes", r.map(|r| r.window_minutes.to_string()).unwrap_or_else(|| "60".into())))
                aria-invalid=[invalid(failed, form, "rule.window_minutes")];
        }
        label { (c.tr("突增倍数（仅突增）", "Burst factor (burst only)"))
            input name="burst_factor" inputmode="decimal" value=(number("burst_factor", r.filter(|r| r.burst_factor > 0.0).map(|r| r.burst_factor.to_string()).unwrap_or_default()))
                aria-invalid=[invalid(failed, form, "rule.burst_factor")];
        }
        label { (c.tr("基线窗口数（仅突增）", "Baseline windows (burst only)"))
            input name="baseline_windows" inputmode="numeric" value=(number("baseline_windows", r.filter(|r| r.baseline_windows > 0).map(|r| r.baseline_windows.to_string()).unwrap_or_default()))
                aria-invalid=[invalid(failed, form, "rule.baseline_windows")];
        }
        label { (c.tr("通知对象（每行一个用户名或 group:opinion；留空为舆情组）", "Notify (one username or group:opinion per line; empty: the opinion group)"))
            textarea name="notify" rows="2" aria-invalid=[invalid(failed, form, "rule.notify")] {
                (kept(failed, form, "notify", &r.map(|r| r.notify.join("\n")).unwrap_or_default()))
            }
        }
        label { input type="checkbox" name="enabled" value="true" checked[kept_check(failed, form, "enabled", r.is_none_or(|r| r.enabled))]; " " (c.tr("启用", "Enabled")) }
    }
}

fn rule_row(
    c: &Console,
    r: &AlertRule,
    names: &HashMap<String, String>,
    failed: Option<&Failed>,
    work: bool,
) -> Markup {
    let id = id_of(&r.name);
    let form = format!("rule-{id}");
    let open = failed.is_some_and(|f| f.form == form);
    html! {
        tr data-rule=(r.name) data-kind=(rule_kind_code(r.kind)) {
            td { (super::entity_tags(names, std::slice::from_ref(&r.entity))) }
            td { (rule_kind_name(c, r.kind)) }
            td { (r.threshold) }
            td { (r.window_minutes) }
            td { @if r.kind == AlertKind::Burst as i32 { (format!("{:.1}× / {}", r.burst_factor, r.baseline_windows)) } }
            td { @for n in &r.notify { span.tag { (n) } } }
            td { @if r.enabled { span.tag.good { (c.tr("启用", "enabled")) } } @else { span.tag.warn { (c.tr("停用", "disabled")) } } }
            td {
                @if work {
                    details open[open] {
                        summary { (c.tr("修改", "Change")) }
                        form id=(form) method="post" action={ (RULES) "/" (id) } {
                            (c.csrf_field())
                            input type="hidden" name="etag" value=(r.etag);
                            (rule_fields(c, Some(r), failed, &form))
                            button type="submit" { (c.tr("保存", "Save")) }
                        }
                        form method="post" action={ (RULES) "/" (id) "/delete" } {
                            (c.csrf_field())
                            input type="hidden" name="etag" value=(r.etag);
                            button.secondary type="submit" { (c.tr("删除（已产生的预警保留）", "Delete (its alerts stay)")) }
                        }
                    }
                }
            }
        }
    }
}

/// A rule from its form; a number that is not one names its field.
fn rule_of(posted: &Posted, name: String) -> Result<AlertRule, HttpError> {
    let kind = RULE_KINDS
        .iter()
        .find(|(code, _, _, _)| *code == posted.get("kind"))
        .map(|(_, k, _, _)| *k)
        .unwrap_or(AlertKind::Unspecified);
    Ok(AlertRule {
        name,
        entity: posted.trimmed("entity"),
        kind: kind as i32,
        threshold: parse_number("rule.threshold", posted.get("threshold"), 0)?,
        window_minutes: parse_number("rule.window_minutes", posted.get("window_minutes"), 0)?,
        burst_factor: parse_number("rule.burst_factor", posted.get("burst_factor"), 0.0)?,
        baseline_windows: parse_number("rule.baseline_windows", posted.get("baseline_windows"), 0)?,
        notify: posted.lines("notify"),
        enabled: posted.has("enabled"),
        etag: posted.trimmed("etag"),
        ..Default::default()
    })
}

pub async fn create_rule(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    const FORM: &str = "new-rule";
    let rule = match rule_of(&posted, String::new()) {
        Ok(r) => r,
        Err(err) => return render_rules(&c, "", Some(&Failed::new(FORM, err, posted))).await,
    };
    let result = watch_client(&c)
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(rule),
            request_id: posted.trimmed("request_id"),
        })
        .await;
    match failed_or_done(result, RULES, "created", FORM.into(), posted) {
        Ok(r) => r,
        Err(f) => render_rules(&c, "", Some(&f)).await,
    }
}

pub async fn update_rule(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let form = format!("rule-{id}");
    let rule = match rule_of(&posted, format!("alert-rules/{id}")) {
        Ok(r) => r,
        Err(err) => return render_rules(&c, "", Some(&Failed::new(form, err, posted))).await,
    };
    let result = watch_client(&c)
        .update_alert_rule(UpdateAlertRuleRequest { rule: Some(rule) })
        .await;
    match failed_or_done(result, RULES, "saved", form, posted) {
        Ok(r) => r,
        Err(f) => render_rules(&c, "", Some(&f)).await,
    }
}

pub async fn delete_rule(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = watch_client(&c)
        .delete_alert_rule(DeleteAlertRuleRequest {
            name: format!("alert-rules/{id}"),
            etag: posted.trimmed("etag"),
        })
        .await;
    match failed_or_done(result, RULES, "deleted", format!("delete-{id}"), posted) {
        Ok(r) => r,
        Err(f) => render_rules(&c, "", Some(&f)).await,
    }
}
