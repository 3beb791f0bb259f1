//! Mentions and stories read back.

use super::ingest::label_of_average;
use super::{Store, parse_list};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::time::to_timestamp;
use hcrm_proto::opinion::{Mention, Sentiment, Story};
use sqlx::any::AnyRow;

/// Filters of a mention list.
#[derive(Debug, Clone, Default)]
pub struct MentionQuery {
    pub entity: Option<String>,
    pub story: Option<String>,
    pub label: Option<i64>,
    pub source: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Filters of a story list.
#[derive(Debug, Clone, Default)]
pub struct StoryQuery {
    pub entity: Option<String>,
    pub label: Option<i64>,
    pub active_since: Option<i64>,
    pub publicity: bool,
    /// First seen within [start, end).
    pub first_seen: Option<(i64, i64)>,
}

fn names(collection: &str, ids: Vec<String>) -> Vec<String> {
    ids.into_iter().map(|id| format!("{collection}/{id}")).collect()
}

pub fn mention_of(row: &AnyRow) -> Result<Mention, ApiError> {
    Ok(Mention {
        name: format!("mentions/{}", col::<String>(row, "id")?),
        url: col(row, "url")?,
        source: col(row, "source")?,
        site: col(row, "site")?,
        author: col(row, "author")?,
        title: col(row, "title")?,
        text: col(row, "text")?,
        language: col(row, "language")?,
        publish_time: col::<Option<i64>>(row, "published_at")?.map(to_timestamp),
        reach: col(row, "reach")?,
        entities: names("entities", parse_list(&col::<String>(row, "entities")?)),
        sentiment: Some(Sentiment {
            label: col::<i64>(row, "label")? as i32,
            score: col::<f64>(row, "score")? as f32,
            confidence: col::<f64>(row, "confidence")? as f32,
            reasons: parse_list(&col::<String>(row, "reasons")?),
        }),
        topics: parse_list(&col::<String>(row, "topics")?),
        story: format!("stories/{}", col::<String>(row, "story_id")?),
        ingest_time: Some(to_timestamp(col(row, "ingested_at")?)),
    })
}

pub fn story_of(row: &AnyRow) -> Result<Story, ApiError> {
    let count: i64 = col(row, "mention_count")?;
    let score_sum: f64 = col(row, "score_sum")?;
    let average = if count > 0 { score_sum / count as f64 } else { 0.0 };
    let incident: String = col(row, "incident_id")?;
    Ok(Story {
        name: format!("stories/{}", col::<String>(row, "id")?),
        title: col(row, "title")?,
        first_mention: format!("mentions/{}", col::<String>(row, "first_mention")?),
        mention_count: count,
        reach: col(row, "reach")?,
        entities: names("entities", parse_list(&col::<String>(row, "entities")?)),
        sentiment: Some(Sentiment {
            label: label_of_average(average) as i32,
            score: average as f32,
            confidence: 0.0,
            reasons: vec![],
        }),
        negative_count: col(row, "negative_count")?,
        topics: parse_list(&col::<String>(row, "topics")?),
        first_seen_time: Some(to_timestamp(col(row, "first_seen")?)),
        last_seen_time: Some(to_timestamp(col(row, "last_seen")?)),
        incident: if incident.is_empty() {
            String::new()
        } else {
            format!("incidents/{incident}")
        },
    })
}

impl Store {
    pub async fn get_mention(&self, id: &str) -> Result<Mention, ApiError> {
        let row = sqlx::query("SELECT * FROM mentions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("mentions/{id}")))?;
        mention_of(&row)
    }

    /// Newest first, with when each was seen; `after` is the (seen_at, id) of the last mention
    /// of the previous page.
    pub async fn list_mentions(
        &self,
        q: &MentionQuery,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(i64, Mention)>, ApiError> {
        let mut sql = Sql::new("SELECT m.* FROM mentions m");
        // With an entity, the entity's index rows give the order (its primary key).
        let (at, key) = match &q.entity {
            Some(entity) => {
                sql.push(
                    " JOIN mention_entities me ON me.mention_id = m.id AND me.seen_at = m.seen_at AND me.entity_id = ",
                );
                sql.bind(Value::Text(entity.clone()));
                ("me.seen_at", "me.mention_id")
            }
            None => ("m.seen_at", "m.id"),
        };
        sql.push(" WHERE 1 = 1");
        if let Some(story) = &q.story {
            sql.push(" AND m.story_id = ").bind(Value::Text(story.clone()));
        }
        if let Some(label) = q.label {
            sql.push(" AND m.label = ").bind(Value::Int(label));
        }
        if let Some(source) = &q.source {
            sql.push(" AND m.source = ").bind(Value::Text(source.clone()));
        }
        if let Some(start) = q.start {
            sql.push(&format!(" AND {at} >= ")).bind(Value::Int(start));
        }
        if let Some(end) = q.end {
            sql.push(&format!(" AND {at} < ")).bind(Value::Int(end));
        }
        if let Some((after_at, id)) = after {
            sql.push(&format!(" AND ({at} < ")).bind(Value::Int(after_at));
            sql.push(&format!(" OR ({at} = ")).bind(Value::Int(after_at));
            sql.push(&format!(" AND {key} < ")).bind(Value::Text(id));
            sql.push("))");
        }
        sql.push(&format!(" ORDER BY {at} DESC, {key} DESC LIMIT "))
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| Ok((col::<i64>(r, "seen_at")?, mention_of(r)?)))
            .collect()
    }

    pub async fn get_story(&self, id: &str) -> Result<Story, ApiError> {
        let row = sqlx::query("SELECT * FROM stories WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("stories/{id}")))?;
        story_of(&row)
    }

    /// By last activity, newest first; `after` is the (last_seen, id) of the previous page's last.
    pub async fn list_stories(
        &self,
        q: &StoryQuery,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Story>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM stories WHERE 1 = 1");
        if let Some(entity) = &q.entity {
            sql.push(" AND id IN (SELECT story_id FROM mention_entities WHERE entity_id = ")
                .bind(Value::Text(entity.clone()));
            sql.push(")");
        }
        if q.publicity {
            sql.push(" AND publicity = 1");
        }
        if let Some((start, end)) = q.first_seen {
            sql.push(" AND first_seen >= ").bind(Value::Int(start));
            sql.push(" AND first_seen < ").bind(Value::Int(end));
        }
        if let Some(since) = q.active_since {
            sql.push(" AND last_seen >= ").bind(Value::Int(since));
        }
        if let Some(label) = q.label {
            // The same thresholds as `label_of_average`, on the sums.
            sql.push(match label {
                1 => " AND score_sum <= -0.2 * mention_count",
                3 => " AND score_sum >= 0.2 * mention_count",
                _ => " AND score_sum > -0.2 * mention_count AND score_sum < 0.2 * mention_count",
            });
        }
        if let Some((at, id)) = after {
            sql.push(" AND (last_seen < ").bind(Value::Int(at));
            sql.push(" OR (last_seen = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id));
            sql.push("))");
        }
        sql.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(story_of).collect()
    }

    /// The stories first seen in [start, end) with the most reach.
    pub async fn top_stories(
        &self,
        entity: Option<&str>,
        start: i64,
        end: i64,
        top: usize,
    ) -> Result<Vec<Story>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM stories WHERE last_seen >= ");
        sql.bind(Value::Int(start));
        sql.push(" AND first_seen < ").bind(Value::Int(end));
        if let Some(entity) = entity {
            sql.push(" AND id IN (SELECT story_id FROM mention_entities WHERE entity_id = ")
                .bind(Value::Text(entity.to_string()));
            sql.push(")");
        }
        sql.push(" ORDER BY reach DESC, mention_count DESC, id LIMIT ")
            .bind(Value::Int(top as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(story_of).collect()
    }
}
