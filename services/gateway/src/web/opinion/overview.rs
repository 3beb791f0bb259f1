//! The overview: the reputation trend of the last 30 days (all mentions or one entity), the
//! share of negatives, the most reached stories, open incidents, the latest alerts, and a box
//! to analyse a pasted text.

use super::{
    Failed, Posted, all_entities, entity_names, error_for, incident_client, invalid, kept, mention_client, page_with,
    reputation_client, resource_link, sentiment_tag, subnav, topic_tags,
};
use crate::web::chart::{self, Series};
use crate::web::dashboard::today;
use crate::web::page::Console;
use axum::extract::Query;
use axum::response::Response;
use bytes::Bytes;
use chrono::{Datelike, Duration, NaiveDate};
use hcrm_proto::opinion::{
    Alert, AlertKind, AnalyzeTextRequest, GetReputationRequest, Incident, IncidentState, ListAlertsRequest,
    ListIncidentsRequest, Reputation, Story, TextAnalysis,
};
use hcrm_proto::types::Date;
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

const DAYS: i64 = 30;

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    entity: String,
}

fn date(d: NaiveDate) -> Option<Date> {
    Some(Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    })
}

pub async fn show(c: Console, Query(q): Query<OverviewQuery>) -> Response {
    render(&c, q.entity.trim(), None, None).await
}

/// Analyses a pasted text (nothing is stored, so the answer is shown right away).
pub async fn analyze(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let analysed = mention_client(&c)
        .analyze_text(AnalyzeTextRequest {
            text: posted.get("text").to_string(),
        })
        .await;
    match analysed {
        Ok(a) => render(&c, "", Some((posted.get("text").to_string(), a.into_inner())), None).await,
        Err(status) => render(&c, "", None, Some(&Failed::new("analyze", status, posted))).await,
    }
}

async fn render(
    c: &Console,
    entity: &str,
    analysis: Option<(String, TextAnalysis)>,
    failed: Option<&Failed>,
) -> Response {
    let today = today(c);
    let trend = {
        let mut client = reputation_client(c);
        let request = GetReputationRequest {
            entity: entity.to_string(),
            start_date: date(today - Duration::days(DAYS - 1)),
            end_date: date(today),
            top: 10,
        };
        async move { client.get_reputation(request).await.map(|r| r.into_inner()) }
    };
    let alerts = {
        let mut client = incident_client(c);
        let request = ListAlertsRequest {
            entity: entity.to_string(),
            page_size: 10,
            ..Default::default()
        };
        async move { client.list_alerts(request).await.map(|r| r.into_inner().alerts) }
    };
    let open = {
        let mut client = incident_client(c);
        let request = ListIncidentsRequest {
            states: vec![
                IncidentState::Open as i32,
                IncidentState::Acknowledged as i32,
                IncidentState::Responding as i32,
            ],
            page_size: 20,
            ..Default::default()
        };
        async move { client.list_incidents(request).await.map(|r| r.into_inner().incidents) }
    };
    let (trend, alerts, open, entities, names) =
        tokio::join!(trend, alerts, open, all_entities(c, false), entity_names(c));
    // The trend is what this page is for: without it (no permission, a wrong entity) the page
    // is the error; the other parts show why they are missing.
    let trend = match trend {
        Ok(t) => t,
        Err(status) => return c.error(status),
    };
    let entities = entities.unwrap_or_default();
    let body = html! {
        (subnav(c, "/console/opinion"))
        form.inline #entity-filter method="get" action="/console/opinion" {
            label { (c.tr("监测对象", "Entity"))
                select name="entity" {
                    option value="" { (c.tr("全部提及", "All mentions")) }
                    @for e in &entities {
                        option value=(e.name) selected[e.name == entity] { (e.display_name) }
                    }
                }
            }
            button.secondary type="submit" { (c.tr("查看", "Show")) }
        }
        (figures(c, &trend))
        div.grid {
            div.card { h2 { (c.tr("近30天提及", "Mentions, last 30 days")) } (mention_chart(c, &trend)) }
            div.card { h2 { (c.tr("近30天声誉指数", "Reputation index, last 30 days")) } (index_chart(c, &trend)) }
        }
        h2 { (c.tr("传播最广的话题", "Stories with the most reach")) }
        (top_stories(c, &trend.top_stories, &names))
        h2 { (c.tr("未结舆情事件", "Open incidents")) }
        @match &open {
            Ok(list) => { (open_incidents(c, list)) }
            Err(status) => { (missing(c, status)) }
        }
        h2 { (c.tr("最新预警", "Latest alerts")) }
        @match &alerts {
            Ok(list) => { (alert_table(c, list, &names)) }
            Err(status) => { (missing(c, status)) }
        }
        h2 #analyze-box { (c.tr("文本情感分析", "Analyse a text")) }
        (analyze_form(c, analysis.as_ref(), failed, &names))
    };
    page_with(c, c.tr("舆情", "Opinion"), body, failed)
}

fn missing(c: &Console, status: &tonic::Status) -> Markup {
    let why = match status.code() {
        tonic::Code::PermissionDenied => c.tr("您的角色无权查看。", "Not available to your role."),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            c.tr("服务暂不可用。", "The service is unavailable.")
        }
        _ => c.tr("暂无数据。", "No data."),
    };
    html! { p.small { (why) } }
}

fn figures(c: &Console, r: &Reputation) -> Markup {
    let negatives: i64 = r.days.iter().map(|d| d.negative).sum();
    html! {
        div.grid #reputation-figures {
            div.card { div.small { (c.tr("提及总数", "Mentions")) } div.figure data-figure="mentions" { (r.mentions) } }
            div.card { div.small { (c.tr("负面提及", "Negative mentions")) } div.figure.bad data-figure="negative" { (negatives) } }
            div.card { div.small { (c.tr("负面占比", "Negative share")) } div.figure.warn data-figure="negative-share" { (format!("{:.1}%", r.negative_share * 100.0)) } }
            div.card { div.small { (c.tr("声誉指数（0–100）", "Reputation index (0–100)")) } div.figure data-figure="index" { (format!("{:.1}", r.index)) } }
        }
    }
}

fn labels(r: &Reputation) -> Vec<String> {
    r.days
        .iter()
        .map(|d| {
            d.date
                .as_ref()
                .map(|d| format!("{:02}-{:02}", d.month, d.day))
                .unwrap_or_default()
        })
        .collect()
}

fn mention_chart(c: &Console, r: &Reputation) -> Markup {
    chart::lines(
        c.tr("每日提及", "Mentions per day"),
        &labels(r),
        &[
            Series {
                name: c.tr("全部", "all"),
                values: r.days.iter().map(|d| d.mentions as f64).collect(),
            },
            Series {
                name: c.tr("负面", "negative"),
                values: r.days.iter().map(|d| d.negative as f64).collect(),
            },
        ],
    )
}

fn index_chart(c: &Console, r: &Reputation) -> Markup {
    chart::lines(
        c.tr("每日声誉指数", "Reputation index per day"),
        &labels(r),
        &[Series {
            name: c.tr("指数", "index"),
            values: r.days.iter().map(|d| d.index).collect(),
        }],
    )
}

/// Stories as a table: title, mentions, reach, sentiment, topics, last seen, incident.
pub(super) fn story_table(c: &Console, id: &str, stories: &[Story], names: &HashMap<String, String>) -> Markup {
    if stories.is_empty() {
        return html! { p.small { (c.tr("暂无。", "None.")) } };
    }
    html! {
        table id=(id) {
            thead { tr {
                th { (c.tr("话题", "Story")) } th { (c.tr("提及数", "Mentions")) } th { (c.tr("传播量", "Reach")) }
                th { (c.tr("情感", "Sentiment")) } th { (c.tr("负面数", "Negatives")) } th { (c.tr("主题", "Topics")) }
                th { (c.tr("对象", "Entities")) } th { (c.tr("最近出现", "Last seen")) } th { (c.tr("事件", "Incident")) }
            } }
            tbody {
                @for s in stories {
                    tr data-story=(s.name) {
                        td { (resource_link(&s.name, if s.title.is_empty() { "—" } else { &s.title })) }
                        td data-mention-count=(s.mention_count) { (s.mention_count) }
                        td data-reach=(s.reach) { (s.reach) }
                        td { (sentiment_tag(c, &s.sentiment)) }
                        td { (s.negative_count) }
                        td { (topic_tags(c, &s.topics)) }
                        td { (super::entity_tags(names, &s.entities)) }
                        td { (c.ts(&s.last_seen_time)) }
                        td { @if !s.incident.is_empty() { (resource_link(&s.incident, c.tr("查看", "open"))) } }
                    }
                }
            }
        }
    }
}

fn top_stories(c: &Console, stories: &[Story], names: &HashMap<String, String>) -> Markup {
    story_table(c, "top-stories", stories, names)
}

pub(super) fn state_tag(c: &Console, state: i32) -> Markup {
    let (text, tone, code) = match IncidentState::try_from(state).unwrap_or(IncidentState::Unspecified) {
        IncidentState::Open => (c.tr("待确认", "open"), "bad", "open"),
        IncidentState::Acknowledged => (c.tr("已确认", "acknowledged"), "warn", "acknowledged"),
        IncidentState::Responding => (c.tr("处置中", "responding"), "warn", "responding"),
        IncidentState::Resolved => (c.tr("已办结", "resolved"), "good", "resolved"),
        IncidentState::Unspecified => ("—", "", "unspecified"),
    };
    html! { span class={ "tag " (tone) } data-state=(code) { (text) } }
}

fn open_incidents(c: &Console, list: &[Incident]) -> Markup {
    if list.is_empty() {
        return html! { p.small { (c.tr("没有未结事件。", "No open incidents.")) } };
    }
    html! {
        table #open-incidents {
            thead { tr {
                th { (c.tr("事件", "Incident")) } th { (c.tr("状态", "State")) }
                th { (c.tr("负责人", "Owner")) } th { (c.tr("创建时间", "Opened")) }
            } }
            tbody {
                @for i in list {
                    tr data-incident=(i.name) {
                        td { (resource_link(&i.name, &i.title)) }
                        td { (state_tag(c, i.state)) }
                        td { (i.owner) }
                        td { (c.ts(&i.create_time)) }
                    }
                }
            }
        }
    }
}

fn alert_kind(c: &Console, kind: i32) -> &'static str {
    match AlertKind::try_from(kind).unwrap_or(AlertKind::Unspecified) {
        AlertKind::NegativeCount => c.tr("负面数量", "negative count"),
        AlertKind::Burst => c.tr("突增", "burst"),
        AlertKind::HighReach => c.tr("高传播", "high reach"),
        AlertKind::Unspecified => "—",
    }
}

fn alert_table(c: &Console, alerts: &[Alert], names: &HashMap<String, String>) -> Markup {
    if alerts.is_empty() {
        return html! { p.small { (c.tr("暂无预警。", "No alerts.")) } };
    }
    html! {
        table #alerts {
            thead { tr {
                th { (c.tr("时间", "Raised")) } th { (c.tr("类型", "Kind")) } th { (c.tr("对象", "Entity")) }
                th { (c.tr("观测值", "Observed")) } th { (c.tr("基线", "Baseline")) } th { (c.tr("说明", "Message")) }
                th { (c.tr("话题", "Story")) } th { (c.tr("事件", "Incident")) }
            } }
            tbody {
                @for a in alerts {
                    tr data-alert=(a.name) {
                        td { (c.ts(&a.create_time)) }
                        td { span.tag.warn { (alert_kind(c, a.kind)) } }
                        td { (super::entity_tags(names, std::slice::from_ref(&a.entity))) }
                        td { (a.observed) }
                        td { (format!("{:.1}", a.baseline)) }
                        td { (a.message) }
                        td { @if !a.story.is_empty() { (resource_link(&a.story, c.tr("查看", "open"))) } }
                        td {
                            @if !a.incident.is_empty() { (resource_link(&a.incident, c.tr("查看", "open"))) }
                            @else if super::can_work(c) {
                                form.inline method="post" action="/console/opinion/incidents" {
                                    (c.csrf_field())
                                    input type="hidden" name="alert" value=(a.name);
                                    input type="hidden" name="request_id" value=(hcrm_kit::new_id());
                                    button.secondary type="submit" { (c.tr("立案处置", "Open an incident")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn analyze_form(
    c: &Console,
    analysis: Option<&(String, TextAnalysis)>,
    failed: Option<&Failed>,
    names: &HashMap<String, String>,
) -> Markup {
    let typed = analysis.map(|(t, _)| t.as_str()).unwrap_or("");
    html! {
        (error_for(c, failed, "analyze"))
        form.card #analyze method="post" action="/console/opinion/analyze" {
            (c.csrf_field())
            label { (c.tr("粘贴一段文字（中文或英文）", "Paste a text (Chinese or English)"))
                textarea name="text" rows="4" maxlength="20000" aria-invalid=[invalid(failed, "analyze", "text")] {
                    (kept(failed, "analyze", "text", typed))
                }
            }
            button type="submit" { (c.tr("分析", "Analyse")) }
        }
        @if let Some((_, a)) = analysis {
            @let s = a.sentiment.clone().unwrap_or_default();
            dl.fields.card #analysis {
                dt { (c.tr("情感", "Sentiment")) } dd { (sentiment_tag(c, &a.sentiment)) }
                dt { (c.tr("置信度", "Confidence")) } dd data-confidence { (format!("{:.0}%", s.confidence * 100.0)) }
                dt { (c.tr("判断依据", "Cues")) } dd { @for r in &s.reasons { span.tag data-cue=(r) { (r) } } }
                dt { (c.tr("主题", "Topics")) } dd { (topic_tags(c, &a.topics)) }
                dt { (c.tr("涉及对象", "Entities")) } dd { (super::entity_tags(names, &a.entities)) }
                dt { (c.tr("语言", "Language")) } dd { (super::language_name(c, &a.language)) }
            }
        }
    }
}
