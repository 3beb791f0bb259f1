//! The mention stream with its filters, a mention with the cues that decided its sentiment,
//! stories (near-duplicates grouped) and opening an incident from a story.

use super::overview::story_table;
use super::{
    Failed, Posted, day_start, done, entity_names, entity_tags, error_for, external, id_of, incident_client, invalid,
    kept, mention_client, next_page, page_with, parse_date, resource_link, sentiment_tag, subnav, topic_tags,
};
use crate::api::error::HttpError;
use crate::web::page::{Console, url_encode};
use axum::extract::{Path, Query};
use axum::response::Response;
use bytes::Bytes;
use chrono::Duration;
use hcrm_proto::opinion::{
    CreateIncidentRequest, Entity, GetMentionRequest, GetStoryRequest, Incident, ListMentionsRequest,
    ListStoriesRequest, Mention, SentimentLabel, Story,
};
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

/// The filters of the mention stream, as the query string carries them.
#[derive(Debug, Default, Deserialize)]
pub struct MentionFilters {
    #[serde(default)]
    sentiment: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page_token: String,
}

fn label_of(code: &str) -> SentimentLabel {
    match code {
        "negative" => SentimentLabel::Negative,
        "neutral" => SentimentLabel::Neutral,
        "positive" => SentimentLabel::Positive,
        _ => SentimentLabel::Unspecified,
    }
}

fn sentiment_select(c: &Console, current: &str) -> Markup {
    html! {
        label { (c.tr("情感", "Sentiment"))
            select name="sentiment" {
                option value="" { (c.tr("全部", "All")) }
                option value="negative" selected[current == "negative"] { (c.tr("负面", "negative")) }
                option value="neutral" selected[current == "neutral"] { (c.tr("中性", "neutral")) }
                option value="positive" selected[current == "positive"] { (c.tr("正面", "positive")) }
            }
        }
    }
}

fn entity_select(c: &Console, entities: &[Entity], current: &str) -> Markup {
    html! {
        label { (c.tr("监测对象", "Entity"))
            select name="entity" {
                option value="" { (c.tr("全部", "All")) }
                @for e in entities {
                    option value=(e.name) selected[e.name == current] {
                        (e.display_name) @if e.archived { " (" (c.tr("已归档", "archived")) ")" }
                    }
                }
            }
        }
    }
}

/// The time window of the filters: from the start of `from` to the end of `to`, local days.
fn window(c: &Console, f: &MentionFilters) -> Result<(Option<i64>, Option<i64>), HttpError> {
    let from = parse_date("from", &f.from)?;
    let to = parse_date("to", &f.to)?;
    if let (Some(a), Some(b)) = (from, to)
        && b < a
    {
        return Err(HttpError::invalid("to", "must not be before the start date"));
    }
    let start = from.map(|d| day_start(c, d));
    let end = to.map(|d| day_start(c, d + Duration::days(1)) - 1);
    Ok((start, end))
}

pub async fn list(c: Console, Query(f): Query<MentionFilters>) -> Response {
    let entities = super::all_entities(&c, true).await.unwrap_or_default();
    let names: HashMap<String, String> = entities
        .iter()
        .map(|e| (e.name.clone(), e.display_name.clone()))
        .collect();
    let title = c.tr("提及", "Mentions");
    let filters = html! {
        (subnav(&c, "/console/opinion/mentions"))
        form.inline #mention-filters method="get" action="/console/opinion/mentions" {
            (sentiment_select(&c, &f.sentiment))
            (entity_select(&c, &entities, &f.entity))
            label { (c.tr("来源", "Source")) input name="source" value=(f.source) placeholder="sources/… push/…"; }
            label { (c.tr("起始日期", "From")) input name="from" type="date" value=(f.from); }
            label { (c.tr("截止日期", "To")) input name="to" type="date" value=(f.to); }
            button type="submit" { (c.tr("筛选", "Filter")) }
        }
    };
    let (start, end) = match window(&c, &f) {
        Ok(w) => w,
        Err(err) => return bad_filter(&c, title, filters, err),
    };
    let listed = mention_client(&c)
        .list_mentions(ListMentionsRequest {
            entity: f.entity.trim().to_string(),
            sentiment: label_of(&f.sentiment) as i32,
            source: f.source.trim().to_string(),
            start_time: start.map(hcrm_kit::time::to_timestamp),
            end_time: end.map(hcrm_kit::time::to_timestamp),
            page_size: 50,
            page_token: f.page_token.clone(),
            ..Default::default()
        })
        .await;
    let page = match listed {
        Ok(r) => r.into_inner(),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            return bad_filter(&c, title, filters, HttpError::from(status));
        }
        Err(status) => return c.error(status),
    };
    let keep = [
        ("sentiment", f.sentiment.as_str()),
        ("entity", f.entity.as_str()),
        ("source", f.source.as_str()),
        ("from", f.from.as_str()),
        ("to", f.to.as_str()),
    ];
    let body = html! {
        (filters)
        (mention_table(&c, &page.mentions, &names))
        (next_page(&c, "/console/opinion/mentions", &keep, &page.next_page_token))
    };
    c.page(title, body)
}

/// The filter form again with what is wrong in it, answered 400.
fn bad_filter(c: &Console, title: &str, filters: Markup, err: HttpError) -> Response {
    let failed = Failed::new("filters", err, Posted::default());
    page_with(
        c,
        title,
        html! { (c.error_box(&failed.error)) (filters) },
        Some(&failed),
    )
}

/// Mentions as a table: time, source, title (out to the post), sentiment, topics, entities.
fn mention_table(c: &Console, mentions: &[Mention], names: &HashMap<String, String>) -> Markup {
    if mentions.is_empty() {
        return html! { p.small #no-mentions { (c.tr("没有符合条件的提及。", "No mention matches.")) } };
    }
    html! {
        table #mentions {
            thead { tr {
                th { (c.tr("发布时间", "Published")) } th { (c.tr("来源", "Source")) } th { (c.tr("标题", "Title")) }
                th { (c.tr("情感", "Sentiment")) } th { (c.tr("主题", "Topics")) } th { (c.tr("对象", "Entities")) }
                th { (c.tr("传播量", "Reach")) } th {}
            } }
            tbody {
                @for m in mentions {
                    @let shown = if m.title.is_empty() { excerpt(&m.text) } else { m.title.clone() };
                    tr data-mention=(m.name) data-story=(m.story) {
                        td { (c.ts(if m.publish_time.is_some() { &m.publish_time } else { &m.ingest_time })) }
                        td {
                            (m.site)
                            div.small { a href={ "/console/opinion/mentions?source=" (url_encode(&m.source)) } data-source=(m.source) { (m.source) } }
                        }
                        td { (external(&m.url, &shown)) }
                        td { (sentiment_tag(c, &m.sentiment)) }
                        td { (topic_tags(c, &m.topics)) }
                        td { (entity_tags(names, &m.entities)) }
                        td { (m.reach) }
                        td {
                            (resource_link(&m.name, c.tr("详情", "details")))
                            @if !m.story.is_empty() { " · " (resource_link(&m.story, c.tr("话题", "story"))) }
                        }
                    }
                }
            }
        }
    }
}

/// The first words of a post without a title.
fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

pub async fn mention(c: Console, Path(id): Path<String>) -> Response {
    let got = mention_client(&c)
        .get_mention(GetMentionRequest {
            name: format!("mentions/{id}"),
        })
        .await;
    let m = match got {
        Ok(m) => m.into_inner(),
        Err(status) => return c.error(status),
    };
    let names = entity_names(&c).await;
    let s = m.sentiment.clone().unwrap_or_default();
    let title = if m.title.is_empty() {
        excerpt(&m.text)
    } else {
        m.title.clone()
    };
    let body = html! {
        (subnav(&c, ""))
        div.card #mention data-mention=(m.name) {
            dl.fields {
                dt { (c.tr("原文链接", "Post")) } dd { (external(&m.url, if m.url.is_empty() { "—" } else { &m.url })) }
                dt { (c.tr("网站", "Site")) } dd { (m.site) }
                dt { (c.tr("作者", "Author")) } dd { (m.author) }
                dt { (c.tr("来源", "Source")) } dd { (m.source) }
                dt { (c.tr("发布时间", "Published")) } dd { (c.ts(&m.publish_time)) }
                dt { (c.tr("收录时间", "Collected")) } dd { (c.ts(&m.ingest_time)) }
                dt { (c.tr("传播量", "Reach")) } dd { (m.reach) }
                dt { (c.tr("语言", "Language")) } dd { (super::language_name(&c, &m.language)) }
                dt { (c.tr("情感", "Sentiment")) } dd { (sentiment_tag(&c, &m.sentiment)) }
                dt { (c.tr("置信度", "Confidence")) } dd { (format!("{:.0}%", s.confidence * 100.0)) }
                dt { (c.tr("判断依据", "Cues")) } dd #cues { @for r in &s.reasons { span.tag data-cue=(r) { (r) } } }
                dt { (c.tr("主题", "Topics")) } dd { (topic_tags(&c, &m.topics)) }
                dt { (c.tr("涉及对象", "Entities")) } dd { (entity_tags(&names, &m.entities)) }
                dt { (c.tr("所属话题", "Story")) } dd { @if !m.story.is_empty() { (resource_link(&m.story, id_of(&m.story))) } }
            }
        }
        h2 { (c.tr("正文", "Text")) }
        blockquote.card #mention-text { (m.text) }
    };
    c.page(&title, body)
}

/// The filters of the story list.
#[derive(Debug, Default, Deserialize)]
pub struct StoryFilters {
    #[serde(default)]
    sentiment: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    page_token: String,
}

pub async fn stories(c: Console, Query(f): Query<StoryFilters>) -> Response {
    let entities = super::all_entities(&c, true).await.unwrap_or_default();
    let names: HashMap<String, String> = entities
        .iter()
        .map(|e| (e.name.clone(), e.display_name.clone()))
        .collect();
    let title = c.tr("话题", "Stories");
    let filters = html! {
        (subnav(&c, "/console/opinion/stories"))
        form.inline #story-filters method="get" action="/console/opinion/stories" {
            (sentiment_select(&c, &f.sentiment))
            (entity_select(&c, &entities, &f.entity))
            label { (c.tr("活跃起始日期", "Active since")) input name="since" type="date" value=(f.since); }
            button type="submit" { (c.tr("筛选", "Filter")) }
        }
    };
    let since = match parse_date("since", &f.since) {
        Ok(d) => d.map(|d| hcrm_kit::time::to_timestamp(day_start(&c, d))),
        Err(err) => return bad_filter(&c, title, filters, err),
    };
    let listed = mention_client(&c)
        .list_stories(ListStoriesRequest {
            entity: f.entity.trim().to_string(),
            sentiment: label_of(&f.sentiment) as i32,
            active_since: since,
            page_size: 50,
            page_token: f.page_token.clone(),
        })
        .await;
    let page = match listed {
        Ok(r) => r.into_inner(),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            return bad_filter(&c, title, filters, HttpError::from(status));
        }
        Err(status) => return c.error(status),
    };
    let keep = [
        ("sentiment", f.sentiment.as_str()),
        ("entity", f.entity.as_str()),
        ("since", f.since.as_str()),
    ];
    let body = html! {
        (filters)
        (story_table(&c, "stories", &page.stories, &names))
        (next_page(&c, "/console/opinion/stories", &keep, &page.next_page_token))
    };
    c.page(title, body)
}

pub async fn story(c: Console, Path(id): Path<String>) -> Response {
    render_story(&c, &id, None).await
}

async fn render_story(c: &Console, id: &str, failed: Option<&Failed>) -> Response {
    let name = format!("stories/{id}");
    let mut client = mention_client(c);
    let got = client.get_story(GetStoryRequest { name: name.clone() }).await;
    let s = match got {
        Ok(s) => s.into_inner(),
        Err(status) => return c.error(status),
    };
    let (listed, names) = tokio::join!(
        client.list_mentions(ListMentionsRequest {
            story: name.clone(),
            page_size: 200,
            ..Default::default()
        }),
        entity_names(c)
    );
    let title = if s.title.is_empty() {
        id.to_string()
    } else {
        s.title.clone()
    };
    let body = html! {
        (subnav(c, ""))
        div.card #story data-story=(s.name) {
            dl.fields {
                dt { (c.tr("提及数", "Mentions")) } dd data-mention-count=(s.mention_count) { (s.mention_count) }
                dt { (c.tr("传播量", "Reach")) } dd data-reach=(s.reach) { (s.reach) }
                dt { (c.tr("情感", "Sentiment")) } dd { (sentiment_tag(c, &s.sentiment)) }
                dt { (c.tr("负面数", "Negatives")) } dd { (s.negative_count) }
                dt { (c.tr("主题", "Topics")) } dd { (topic_tags(c, &s.topics)) }
                dt { (c.tr("涉及对象", "Entities")) } dd { (entity_tags(&names, &s.entities)) }
                dt { (c.tr("首次出现", "First seen")) } dd { (c.ts(&s.first_seen_time)) }
                dt { (c.tr("最近出现", "Last seen")) } dd { (c.ts(&s.last_seen_time)) }
                dt { (c.tr("首条提及", "First mention")) } dd { (resource_link(&s.first_mention, id_of(&s.first_mention))) }
                dt { (c.tr("舆情事件", "Incident")) }
                dd #story-incident { @if !s.incident.is_empty() { (resource_link(&s.incident, c.tr("查看事件", "open the incident"))) } @else { "—" } }
            }
        }
        @if s.incident.is_empty() && super::can_work(c) { (incident_form(c, &s, failed)) }
        @else if let Some(f) = failed { (c.error_box(&f.error)) }
        h2 { (c.tr("该话题的提及", "Mentions of this story")) }
        @match &listed {
            Ok(r) => { (mention_table(c, &r.get_ref().mentions, &names)) }
            Err(status) => { (c.error_box(&HttpError::from(status.clone()))) }
        }
    };
    page_with(c, &title, body, failed)
}

fn incident_form(c: &Console, s: &Story, failed: Option<&Failed>) -> Markup {
    const FORM: &str = "open-incident";
    let request_id = kept(failed, FORM, "request_id", "");
    let request_id = if request_id.is_empty() {
        hcrm_kit::new_id()
    } else {
        request_id
    };
    html! {
        h2 { (c.tr("立案处置", "Open an incident")) }
        (error_for(c, failed, FORM))
        form.card #open-incident method="post" action={ "/console/opinion/stories/" (id_of(&s.name)) "/incident" } {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(request_id);
            label { (c.tr("标题（默认为话题标题）", "Title (the story's by default)"))
                input name="title" maxlength="200" value=(kept(failed, FORM, "title", ""))
                    placeholder=(s.title) aria-invalid=[invalid(failed, FORM, "incident.title")];
            }
            label { (c.tr("说明", "Description"))
                textarea name="description" rows="3" maxlength="4000" aria-invalid=[invalid(failed, FORM, "incident.description")] {
                    (kept(failed, FORM, "description", ""))
                }
            }
            button type="submit" { (c.tr("创建事件", "Open incident")) }
        }
    }
}

/// Opens an incident for the story (retry-safe through the form's request id).
pub async fn open_incident(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let created = incident_client(&c)
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                story: format!("stories/{id}"),
                title: posted.trimmed("title"),
                description: posted.trimmed("description"),
                ..Default::default()
            }),
            owner: String::new(),
            request_id: posted.trimmed("request_id"),
        })
        .await;
    match created {
        Ok(i) => done(
            &format!("/console/opinion/incidents/{}", id_of(&i.into_inner().name)),
            "incident",
        ),
        Err(status) => render_story(&c, &id, Some(&Failed::new("open-incident", status, posted))).await,
    }
}
