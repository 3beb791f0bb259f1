//! Mentions in: matched to the watch list, scored, grouped into stories and counted, a batch
//! at a time. The analysis runs off the async threads; the database work is one transaction per
//! batch with a handful of set-wise statements, so a repost storm costs rows, not round trips.

use super::{Store, Watch, json_list, parse_list};
use crate::analysis::minhash::{self, Signature};
use crate::analysis::{self, Analysis, Analyzer, Label};
use crate::domain::days::day_of;
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Tx, Value, col};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// A post as it arrives, already validated for shape.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub url: String,
    /// `sources/{id}` or `push/{caller}`.
    pub source: String,
    pub site: String,
    pub author: String,
    pub title: String,
    pub text: String,
    pub published_at: Option<i64>,
    pub reach: i64,
}

/// What a batch came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: i64,
    pub duplicates: i64,
    pub unmatched: i64,
    pub stories_created: i64,
    pub grouped: i64,
}

impl Ingested {
    pub fn add(&mut self, other: &Ingested) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.unmatched += other.unmatched;
        self.stories_created += other.stories_created;
        self.grouped += other.grouped;
    }
}

/// A post analysed and ready to store.
struct Prepared {
    id: String,
    incoming: Incoming,
    key_hash: String,
    entities: Vec<String>,
    analysis: Analysis,
    signature: Signature,
    seen_at: i64,
}

pub fn label_code(label: Label) -> i64 {
    match label {
        Label::Negative => 1,
        Label::Neutral => 2,
        Label::Positive => 3,
    }
}

/// The label a story's average score stands for.
pub fn label_of_average(average: f64) -> i64 {
    if average <= -0.2 {
        1
    } else if average >= 0.2 {
        3
    } else {
        2
    }
}

/// The idempotency key: the URL when there is one (a repost elsewhere is a new mention of the
/// same story), else the normalised text.
pub fn key_hash(url: &str, title: &str, text: &str) -> String {
    let url = url.trim();
    if url.is_empty() {
        format!("t:{}", analysis::content_hash(&format!("{title}\n{text}")))
    } else {
        format!("u:{}", hex::encode(Sha256::digest(url.as_bytes())))
    }
}

/// Analyses the batch (CPU only); drops posts about nothing watched and repeats within it.
fn prepare(batch: Vec<Incoming>, watch: &Watch, analyzer: &Analyzer, now: i64) -> (Vec<Prepared>, Ingested) {
    let mut out = Ingested::default();
    let mut seen = HashSet::new();
    let mut prepared = Vec::with_capacity(batch.len());
    for incoming in batch {
        let key_hash = key_hash(&incoming.url, &incoming.title, &incoming.text);
        if !seen.insert(key_hash.clone()) {
            out.duplicates += 1;
            continue;
        }
        let whole = if incoming.title.is_empty() {
            incoming.text.clone()
        } else {
            format!("{}\n{}", incoming.title, incoming.text)
        };
        let entities = watch.entities_in(&whole);
        if entities.is_empty() {
            out.unmatched += 1;
            continue;
        }
        let analysis = analyzer.analyze(&whole);
        let signature = minhash::signature(&whole);
        let seen_at = incoming.published_at.map_or(now, |p| p.min(now));
        prepared.push(Prepared {
            id: hcrm_kit::new_id(),
            incoming,
            key_hash,
            entities,
            analysis,
            signature,
            seen_at,
        });
    }
    (prepared, out)
}

/// A story as the batch leaves it.
struct StoryState {
    id: String,
    signature: Signature,
    created: bool,
    title: String,
    first_mention: String,
    first_seen: i64,
    last_seen: i64,
    entities: BTreeSet<String>,
    topics: BTreeSet<String>,
    added: i64,
    reach: i64,
    score_sum: f64,
    negative: i64,
    positive: i64,
    /// The score sum before the batch (existing stories).
    prior_score_sum: f64,
}

impl Store {
    /// Rows of `columns` values per multi-row statement: sqlx's SQLite driver resolves each
    /// `$n` by name, quadratic in their number, so SQLite statements stay near 400 values;
    /// PostgreSQL takes thousands (its limit is 65,535).
    fn rows_per_statement(&self, columns: usize) -> usize {
        let budget = match self.db.backend {
            hcrm_kit::db::Backend::Sqlite => 400,
            hcrm_kit::db::Backend::Postgres => 8_000,
        };
        (budget / columns.max(1)).max(1)
    }

    /// Stores a batch of posts; retried when a concurrent batch stored one of them first.
    pub async fn ingest(&self, batch: Vec<Incoming>) -> Result<Ingested, ApiError> {
        if batch.is_empty() {
            return Ok(Ingested::default());
        }
        let watch = self.watch().await?;
        let analyzer: Arc<Analyzer> = self.analyzer.clone();
        let now = self.now();
        let (prepared, mut out) = tokio::task::spawn_blocking(move || prepare(batch, &watch, &analyzer, now))
            .await
            .map_err(ApiError::internal)?;
        if prepared.is_empty() {
            return Ok(out);
        }
        let mut attempt = 0;
        loop {
            match self.store_batch(&prepared, now).await {
                Ok(stored) => {
                    out.add(&stored);
                    return Ok(out);
                }
                Err(ApiError::Aborted(_)) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn store_batch(&self, prepared: &[Prepared], now: i64) -> Result<Ingested, ApiError> {
        let mut out = Ingested::default();
        let mut tx = self.db.begin_write().await?;
        let existing = self.existing_keys(&mut tx, prepared).await?;
        let fresh: Vec<&Prepared> = prepared.iter().filter(|p| !existing.contains(&p.key_hash)).collect();
        out.duplicates = (prepared.len() - fresh.len()) as i64;
        if fresh.is_empty() {
            return Ok(out);
        }
        let mut stories = self.candidate_stories(&mut tx, &fresh, now).await?;
        let mut story_of = Vec::with_capacity(fresh.len());
        for p in &fresh {
            let near = stories
                .iter()
                .enumerate()
                .map(|(i, s)| (s.signature.similarity(&p.signature), i))
                .filter(|(similarity, _)| *similarity >= self.rules.near_duplicate_similarity)
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
            let i = match near {
                Some((_, i)) => {
                    if !stories[i].created || stories[i].added > 0 {
                        out.grouped += 1;
                    }
                    i
                }
                None => {
                    out.stories_created += 1;
                    stories.push(StoryState {
                        id: hcrm_kit::new_id(),
                        signature: p.signature.clone(),
                        created: true,
                        title: story_title(&p.incoming),
                        first_mention: p.id.clone(),
                        first_seen: p.seen_at,
                        last_seen: p.seen_at,
                        entities: BTreeSet::new(),
                        topics: BTreeSet::new(),
                        added: 0,
                        reach: 0,
                        score_sum: 0.0,
                        negative: 0,
                        positive: 0,
                        prior_score_sum: 0.0,
                    });
                    stories.len() - 1
                }
            };
            let s = &mut stories[i];
            s.added += 1;
            s.reach += p.incoming.reach.max(1);
            s.score_sum += f64::from(p.analysis.score);
            match p.analysis.label {
                Label::Negative => s.negative += 1,
                Label::Positive => s.positive += 1,
                Label::Neutral => {}
            }
            s.first_seen = s.first_seen.min(p.seen_at);
            s.last_seen = s.last_seen.max(p.seen_at);
            s.entities.extend(p.entities.iter().cloned());
            s.topics.extend(p.analysis.topics.iter().map(|t| t.code().to_string()));
            story_of.push(s.id.clone());
        }
        self.write_stories(&mut tx, &stories).await?;
        self.insert_mentions(&mut tx, &fresh, &story_of, now).await?;
        self.count_days(&mut tx, &fresh).await?;
        out.accepted = fresh.len() as i64;
        tx.commit().await.map_err(raced)?;
        Ok(out)
    }

    async fn existing_keys(&self, tx: &mut Tx, prepared: &[Prepared]) -> Result<HashSet<String>, ApiError> {
        let mut found = HashSet::new();
        for chunk in prepared.chunks(self.rows_per_statement(1)) {
            let mut sql = Sql::new("SELECT key_hash FROM mentions WHERE key_hash IN (");
            for (i, p) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Text(p.key_hash.clone()));
            }
            sql.push(")");
            for row in sql.query().fetch_all(&mut **tx).await.map_err(raced)? {
                found.insert(col::<String>(&row, "key_hash")?);
            }
        }
        Ok(found)
    }

    /// Recent stories sharing a MinHash band with any post of the batch.
    async fn candidate_stories(&self, tx: &mut Tx, fresh: &[&Prepared], now: i64) -> Result<Vec<StoryState>, ApiError> {
        let mut found: Vec<StoryState> = Vec::new();
        for chunk in fresh.chunks(self.rows_per_statement(minhash::BANDS)) {
            for story in self.candidates_of(tx, chunk, now).await? {
                if !found.iter().any(|s| s.id == story.id) {
                    found.push(story);
                }
            }
        }
        Ok(found)
    }

    async fn candidates_of(&self, tx: &mut Tx, fresh: &[&Prepared], now: i64) -> Result<Vec<StoryState>, ApiError> {
        let mut per_band: [BTreeSet<i64>; minhash::BANDS] = Default::default();
        for p in fresh {
            for (i, b) in p.signature.bands().into_iter().enumerate() {
                per_band[i].insert(b);
            }
        }
        let mut sql = Sql::new(
            "SELECT id, signature, title, first_mention, first_seen, last_seen, entities, topics, score_sum
             FROM stories WHERE last_seen >= ",
        );
        sql.bind(Value::Int(now - self.rules.story_window_micros));
        sql.push(" AND (");
        for (i, values) in per_band.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            sql.push(&format!("band{i} IN ("));
            for (j, v) in values.iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Int(*v));
            }
            sql.push(")");
        }
        // Locked (PostgreSQL) in id order: a concurrent batch growing the same story waits, so
        // topics, entities and times are never written from a stale read.
        sql.push(") ORDER BY id");
        sql.push(self.for_update());
        let rows = sql.query().fetch_all(&mut **tx).await.map_err(raced)?;
        rows.iter()
            .map(|r| {
                Ok(StoryState {
                    id: col(r, "id")?,
                    signature: Signature::from_bytes(&col::<Vec<u8>>(r, "signature")?)
                        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a story signature is damaged")))?,
                    created: false,
                    title: col(r, "title")?,
                    first_mention: col(r, "first_mention")?,
                    first_seen: col(r, "first_seen")?,
                    last_seen: col(r, "last_seen")?,
                    entities: parse_list(&col::<String>(r, "entities")?).into_iter().collect(),
                    topics: parse_list(&col::<String>(r, "topics")?).into_iter().collect(),
                    added: 0,
                    reach: 0,
                    score_sum: 0.0,
                    negative: 0,
                    positive: 0,
                    prior_score_sum: col(r, "score_sum")?,
                })
            })
            .collect()
    }

    async fn write_stories(&self, tx: &mut Tx, stories: &[StoryState]) -> Result<(), ApiError> {
        let touched = stories.iter().filter(|s| s.added > 0);
        let (created, grown): (Vec<&StoryState>, Vec<&StoryState>) = touched.partition(|s| s.created);
        for chunk in created.chunks(self.rows_per_statement(27)) {
            let mut sql = Sql::new(
                "INSERT INTO stories (id, signature, band0, band1, band2, band3, band4, band5, band6, band7, title, first_mention, mention_count,
                 reach, score_sum, negative_count, positive_count, topics, entities, publicity, incident_id,
                 first_seen, last_seen) VALUES ",
            );
            for (i, s) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(");
                let mut values = vec![Value::Text(s.id.clone()), Value::Bytes(s.signature.to_bytes())];
                values.extend(s.signature.bands().map(Value::Int));
                for (j, v) in values
                    .into_iter()
                    .chain([
                        Value::Text(s.title.clone()),
                        Value::Text(s.first_mention.clone()),
                        Value::Int(s.added),
                        Value::Int(s.reach),
                        Value::Real(s.score_sum),
                        Value::Int(s.negative),
                        Value::Int(s.positive),
                        Value::Text(json_list(&s.topics.iter().cloned().collect::<Vec<_>>())),
                        Value::Text(json_list(&s.entities.iter().cloned().collect::<Vec<_>>())),
                        Value::Int(i64::from(publicity(&s.topics, s.score_sum))),
                        Value::Text(String::new()),
                        Value::Int(s.first_seen),
                        Value::Int(s.last_seen),
                    ])
                    .enumerate()
                {
                    if j > 0 {
                        sql.push(", ");
                    }
                    sql.bind(v);
                }
                sql.push(")");
            }
            sql.query().execute(&mut **tx).await?;
        }
        // One statement per few dozen stories (a repost storm grows hundreds at once), joined to
        // a VALUES list, whose columns are `column1…` on both backends.
        for chunk in grown.chunks(self.rows_per_statement(11)) {
            let mut sql = Sql::new(
                "UPDATE stories SET mention_count = stories.mention_count + v.column2, reach = stories.reach + v.column3,
                 score_sum = stories.score_sum + v.column4, negative_count = stories.negative_count + v.column5,
                 positive_count = stories.positive_count + v.column6, topics = v.column7, entities = v.column8,
                 publicity = v.column9, first_seen = v.column10, last_seen = v.column11 FROM (VALUES ",
            );
            for (i, s) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                let score_sum = s.prior_score_sum + s.score_sum;
                sql.push("(");
                for (j, v) in [
                    Value::Text(s.id.clone()),
                    Value::Int(s.added),
                    Value::Int(s.reach),
                    Value::Real(s.score_sum),
                    Value::Int(s.negative),
                    Value::Int(s.positive),
                    Value::Text(json_list(&s.topics.iter().cloned().collect::<Vec<_>>())),
                    Value::Text(json_list(&s.entities.iter().cloned().collect::<Vec<_>>())),
                    Value::Int(i64::from(publicity(&s.topics, score_sum))),
                    Value::Int(s.first_seen),
                    Value::Int(s.last_seen),
                ]
                .into_iter()
                .enumerate()
                {
                    if j > 0 {
                        sql.push(", ");
                    }
                    sql.bind(v);
                }
                sql.push(")");
            }
            sql.push(") AS v WHERE stories.id = v.column1");
            sql.query().execute(&mut **tx).await.map_err(raced)?;
        }
        Ok(())
    }

    async fn insert_mentions(
        &self,
        tx: &mut Tx,
        fresh: &[&Prepared],
        story_of: &[String],
        now: i64,
    ) -> Result<(), ApiError> {
        // In key order, so two batches inserting some of the same keys wait on each other in the
        // same order instead of deadlocking.
        let mut rows: Vec<(&&Prepared, &String)> = fresh.iter().zip(story_of).collect();
        rows.sort_by(|a, b| a.0.key_hash.cmp(&b.0.key_hash));
        for chunk in rows.chunks(self.rows_per_statement(20)) {
            let mut sql = Sql::new(
                "INSERT INTO mentions (id, key_hash, url, source, site, author, title, text, language, published_at,
                 seen_at, ingested_at, label, score, confidence, reasons, topics, entities, reach, story_id) VALUES ",
            );
            for (i, (p, story)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                let a = &p.analysis;
                let topics: Vec<String> = a.topics.iter().map(|t| t.code().to_string()).collect();
                sql.push("(");
                for (j, v) in [
                    Value::Text(p.id.clone()),
                    Value::Text(p.key_hash.clone()),
                    Value::Text(p.incoming.url.clone()),
                    Value::Text(p.incoming.source.clone()),
                    Value::Text(p.incoming.site.clone()),
                    Value::Text(p.incoming.author.clone()),
                    Value::Text(p.incoming.title.clone()),
                    Value::Text(p.incoming.text.clone()),
                    Value::Text(a.language.code().to_string()),
                    p.incoming.published_at.map_or(Value::NullInt, Value::Int),
                    Value::Int(p.seen_at),
                    Value::Int(now),
                    Value::Int(label_code(a.label)),
                    Value::Real(f64::from(a.score)),
                    Value::Real(f64::from(a.confidence)),
                    Value::Text(json_list(&a.reasons)),
                    Value::Text(json_list(&topics)),
                    Value::Text(json_list(&p.entities)),
                    Value::Int(p.incoming.reach.max(1)),
                    Value::Text((*story).clone()),
                ]
                .into_iter()
                .enumerate()
                {
                    if j > 0 {
                        sql.push(", ");
                    }
                    sql.bind(v);
                }
                sql.push(")");
            }
            sql.query().execute(&mut **tx).await.map_err(raced)?;
        }
        let links: Vec<(&Prepared, &String, &String)> = fresh
            .iter()
            .zip(story_of)
            .flat_map(|(p, s)| p.entities.iter().map(move |e| (*p, s, e)))
            .collect();
        for chunk in links.chunks(self.rows_per_statement(6)) {
            let mut sql = Sql::new(
                "INSERT INTO mention_entities (entity_id, seen_at, mention_id, story_id, label, reach) VALUES ",
            );
            for (i, (p, story, entity)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(");
                sql.bind(Value::Text((*entity).clone()));
                sql.push(", ");
                sql.bind(Value::Int(p.seen_at));
                sql.push(", ");
                sql.bind(Value::Text(p.id.clone()));
                sql.push(", ");
                sql.bind(Value::Text((*story).clone()));
                sql.push(", ");
                sql.bind(Value::Int(label_code(p.analysis.label)));
                sql.push(", ");
                sql.bind(Value::Int(p.incoming.reach.max(1)));
                sql.push(")");
            }
            sql.query().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Adds the batch to the daily counts of each entity and of all mentions ('').
    async fn count_days(&self, tx: &mut Tx, fresh: &[&Prepared]) -> Result<(), ApiError> {
        #[derive(Default)]
        struct Day {
            mentions: i64,
            positive: i64,
            neutral: i64,
            negative: i64,
            score_sum: f64,
        }
        let mut days: BTreeMap<(String, i64), Day> = BTreeMap::new();
        for p in fresh {
            let day = day_of(p.seen_at, self.rules.utc_offset_minutes);
            for entity in p.entities.iter().map(String::as_str).chain([""]) {
                let d = days.entry((entity.to_string(), day)).or_default();
                d.mentions += 1;
                d.score_sum += f64::from(p.analysis.score);
                match p.analysis.label {
                    Label::Negative => d.negative += 1,
                    Label::Neutral => d.neutral += 1,
                    Label::Positive => d.positive += 1,
                }
            }
        }
        for ((entity, day), d) in days {
            sqlx::query(
                "INSERT INTO daily (entity_id, day, mentions, positive, neutral, negative, score_sum)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (entity_id, day) DO UPDATE SET mentions = daily.mentions + excluded.mentions,
                 positive = daily.positive + excluded.positive, neutral = daily.neutral + excluded.neutral,
                 negative = daily.negative + excluded.negative, score_sum = daily.score_sum + excluded.score_sum",
            )
            .bind(entity)
            .bind(day)
            .bind(d.mentions)
            .bind(d.positive)
            .bind(d.neutral)
            .bind(d.negative)
            .bind(d.score_sum)
            .execute(&mut **tx)
            .await
            .map_err(raced)?;
        }
        Ok(())
    }
}

/// A mention of the batch stored by a concurrent batch first, or PostgreSQL breaking a deadlock
/// or a serialization conflict: ABORTED, which `ingest` retries.
fn raced(err: sqlx::Error) -> ApiError {
    let conflict = hcrm_kit::error::is_unique_violation(&err)
        || matches!(&err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")));
    if conflict {
        tracing::info!(error = %err, "a concurrent batch got there first; retrying the batch");
        ApiError::Aborted("a concurrent push stored some of these posts first; push them again".into())
    } else {
        err.into()
    }
}

fn story_title(incoming: &Incoming) -> String {
    let source = if incoming.title.trim().is_empty() {
        &incoming.text
    } else {
        &incoming.title
    };
    source
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(120)
        .collect()
}

/// Positive publicity: a story about good deeds, new techniques or honours that is not negative.
fn publicity(topics: &BTreeSet<String>, score_sum: f64) -> bool {
    score_sum >= 0.0
        && topics
            .iter()
            .any(|t| analysis::Topic::from_code(t).is_some_and(|t| t.is_publicity()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_prefer_the_url_and_labels_follow_the_average() {
        assert_ne!(key_hash("https://a/1", "t", "x"), key_hash("https://a/2", "t", "x"));
        assert_eq!(key_hash("", "t", "同一段文字"), key_hash("", "t", "同一段文字"));
        assert!(key_hash("https://a/1", "", "").starts_with("u:"));
        assert_eq!(label_of_average(-0.5), 1);
        assert_eq!(label_of_average(0.0), 2);
        assert_eq!(label_of_average(0.6), 3);
    }
}
