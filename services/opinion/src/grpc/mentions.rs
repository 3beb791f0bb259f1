//! MentionService: pushed posts in, mentions and stories out, and the analyser.

use super::{Api, micros, optional_id, position, time_position};
use crate::permissions::Perm;
use crate::store::ingest::{Incoming, Ingested, label_code};
use crate::store::mentions::{MentionQuery, StoryQuery};
use crate::store::parse_name;
use futures::StreamExt;
use hcrm_kit::ApiError;
use hcrm_kit::feed::{Ledger, ServerStream};
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_kit::validate::Violations;
use hcrm_proto::opinion::mention_service_server::MentionService;
use hcrm_proto::opinion::*;
use hcrm_proto::types::Event;
use tonic::{Request, Response, Status, Streaming};

/// Posts per request message.
const MAX_PER_MESSAGE: usize = 1000;
/// Posts analysed and stored together.
const BATCH: usize = 500;
pub const MAX_TEXT: usize = 20_000;
/// Rejections listed in the response.
const MAX_LISTED: usize = 100;

/// The first thing wrong with a pushed post, as (field, description).
fn check_pushed(m: &PushedMention) -> Option<(&'static str, String)> {
    if m.text.trim().is_empty() {
        return Some(("text", "is required".into()));
    }
    if m.text.chars().count() > MAX_TEXT {
        return Some(("text", format!("must be at most {MAX_TEXT} characters")));
    }
    if !m.url.is_empty() {
        let ok = m.url.len() <= 2000
            && url::Url::parse(&m.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !ok {
            return Some(("url", "must be an http(s) URL of at most 2000 characters".into()));
        }
    }
    for (field, value, max) in [
        ("title", &m.title, 500),
        ("author", &m.author, 200),
        ("site", &m.site, 200),
    ] {
        if value.chars().count() > max {
            return Some((field, format!("must be at most {max} characters")));
        }
    }
    if m.reach < 0 {
        return Some(("reach", "must not be negative".into()));
    }
    if let Some(ts) = &m.publish_time
        && hcrm_kit::time::from_timestamp(ts).is_none()
    {
        return Some(("publish_time", "must be a valid time".into()));
    }
    None
}

fn incoming(m: PushedMention, source: &str) -> Incoming {
    let site = if m.site.is_empty() {
        url::Url::parse(&m.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default()
    } else {
        m.site
    };
    Incoming {
        url: m.url.trim().to_string(),
        source: source.to_string(),
        site,
        author: m.author,
        title: m.title,
        text: m.text,
        published_at: m.publish_time.as_ref().and_then(hcrm_kit::time::from_timestamp),
        reach: m.reach.max(1),
    }
}

fn label_filter(field: &str, value: i32) -> Result<Option<i64>, ApiError> {
    let mut v = Violations::new();
    v.enum_value::<SentimentLabel>(field, value, false);
    v.finish()?;
    Ok((value != 0).then_some(i64::from(value)))
}

#[tonic::async_trait]
impl MentionService for Api {
    async fn ingest_mentions(
        &self,
        request: Request<Streaming<IngestMentionsRequest>>,
    ) -> Result<Response<IngestMentionsResponse>, Status> {
        let ctx = self.authorize(&request, Perm::Ingest, "IngestMentions").await?;
        let source = format!("push/{}", ctx.principal.subject);
        let mut stream = request.into_inner();
        let run = async {
            let mut response = IngestMentionsResponse::default();
            let mut total = Ingested::default();
            let mut pending: Vec<Incoming> = Vec::with_capacity(BATCH);
            let mut index: i64 = 0;
            while let Some(message) = stream.next().await {
                let message = message.map_err(|s| ApiError::invalid("stream", format!("broken: {}", s.message())))?;
                if message.mentions.len() > MAX_PER_MESSAGE {
                    // What came before is acknowledged as stored, so store it first.
                    self.store.ingest(std::mem::take(&mut pending)).await?;
                    return Err(ApiError::invalid(
                        "mentions",
                        format!("at most {MAX_PER_MESSAGE} per message; the earlier messages were stored"),
                    ));
                }
                for m in message.mentions {
                    response.received += 1;
                    if let Some((field, description)) = check_pushed(&m) {
                        response.rejected += 1;
                        if response.rejections.len() < MAX_LISTED {
                            response.rejections.push(RejectedMention {
                                index,
                                field: field.into(),
                                description,
                            });
                        }
                    } else {
                        pending.push(incoming(m, &source));
                    }
                    index += 1;
                    if pending.len() >= BATCH {
                        total.add(&self.store.ingest(std::mem::take(&mut pending)).await?);
                    }
                }
            }
            total.add(&self.store.ingest(pending).await?);
            response.accepted = total.accepted;
            response.duplicates = total.duplicates;
            response.unmatched = total.unmatched;
            response.stories_created = total.stories_created;
            response.grouped = total.grouped;
            Ok(response)
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_mention(&self, request: Request<GetMentionRequest>) -> Result<Response<Mention>, Status> {
        let ctx = self.authorize(&request, Perm::MentionRead, "GetMention").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "mentions")?;
            self.store.get_mention(id).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_mentions(
        &self,
        request: Request<ListMentionsRequest>,
    ) -> Result<Response<ListMentionsResponse>, Status> {
        let ctx = self.authorize(&request, Perm::MentionRead, "ListMentions").await?;
        let req = request.into_inner();
        let run = async {
            let q = MentionQuery {
                entity: optional_id("entity", &req.entity, "entities")?,
                story: optional_id("story", &req.story, "stories")?,
                label: label_filter("sentiment", req.sentiment)?,
                source: (!req.source.is_empty()).then(|| req.source.clone()),
                start: micros("start_time", &req.start_time)?,
                end: micros("end_time", &req.end_time)?,
            };
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("mentions:{q:?}");
            let after: Option<(i64, String)> = position(&self.pages, &query, &req.page_token)?;
            let items = self.store.list_mentions(&q, after, size + 1).await?;
            let (items, next_page_token) = page(
                items,
                size,
                |(at, m)| (*at, m.name.trim_start_matches("mentions/").to_string()),
                &self.pages,
                &query,
            );
            Ok(ListMentionsResponse {
                mentions: items.into_iter().map(|(_, m)| m).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_story(&self, request: Request<GetStoryRequest>) -> Result<Response<Story>, Status> {
        let ctx = self.authorize(&request, Perm::MentionRead, "GetStory").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "stories")?;
            self.store.get_story(id).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_stories(
        &self,
        request: Request<ListStoriesRequest>,
    ) -> Result<Response<ListStoriesResponse>, Status> {
        let ctx = self.authorize(&request, Perm::MentionRead, "ListStories").await?;
        let req = request.into_inner();
        let run = async {
            let q = StoryQuery {
                entity: optional_id("entity", &req.entity, "entities")?,
                label: label_filter("sentiment", req.sentiment)?,
                active_since: micros("active_since", &req.active_since)?,
                ..Default::default()
            };
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("stories:{q:?}");
            let after: Option<(i64, String)> = position(&self.pages, &query, &req.page_token)?;
            let items = self.store.list_stories(&q, after, size + 1).await?;
            let (stories, next_page_token) = page(
                items,
                size,
                |s| time_position(&s.last_seen_time, &s.name),
                &self.pages,
                &query,
            );
            Ok(ListStoriesResponse {
                stories,
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn analyze_text(&self, request: Request<AnalyzeTextRequest>) -> Result<Response<TextAnalysis>, Status> {
        let ctx = self.authorize(&request, Perm::Analyze, "AnalyzeText").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            v.text("text", &req.text, true, MAX_TEXT);
            v.finish()?;
            let watch = self.store.watch().await?;
            let analyzer = self.store.analyzer.clone();
            let text = req.text;
            let (a, entities) =
                tokio::task::spawn_blocking(move || (analyzer.analyze(&text), watch.entities_in(&text)))
                    .await
                    .map_err(ApiError::internal)?;
            Ok(TextAnalysis {
                language: a.language.code().to_string(),
                sentiment: Some(Sentiment {
                    label: label_code(a.label) as i32,
                    score: a.score,
                    confidence: a.confidence,
                    reasons: a.reasons,
                }),
                topics: a.topics.iter().map(|t| t.code().to_string()).collect(),
                entities: entities.into_iter().map(|e| format!("entities/{e}")).collect(),
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    type WatchEventsStream = ServerStream<Event>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let ctx = self.authorize(&request, Perm::EventsWatch, "WatchEvents").await?;
        let req = request.into_inner();
        Ledger::check_watch(req.after_sequence, &req.types).map_err(|e| ctx.status(e))?;
        let stream = self
            .store
            .ledger
            .watch(ctx, req.after_sequence, req.types, self.stopping.clone());
        Ok(Response::new(stream))
    }
}
