//! The alert pass: each enabled rule measured over its window, an alert raised when it trips,
//! and a notice queued for each person the rule names. A count or burst rule fires at most once
//! per window and a reach rule once per story, also when replicas evaluate at once
//! (`alerts.dedup_key` is unique).

use super::{Store, json_list};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::ledger::NewEvent;
use hcrm_kit::outbox::NewDelivery;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::opinion::{Alert, AlertKind, AlertRule};
use serde_json::json;
use sqlx::any::AnyRow;

/// An alert about to be raised.
struct Trip {
    rule_id: String,
    entity_id: String,
    kind: AlertKind,
    dedup_key: String,
    story_id: String,
    window: (i64, i64),
    observed: i64,
    baseline: f64,
    message: String,
    notify: Vec<String>,
    /// Count and burst rules: no alert if the rule fired after this (checked under the rule's
    /// lock, so replicas evaluating at once raise one).
    quiet_since: Option<i64>,
}

fn alert_of(row: &AnyRow) -> Result<Alert, ApiError> {
    let prefixed = |collection: &str, id: String| {
        if id.is_empty() {
            String::new()
        } else {
            format!("{collection}/{id}")
        }
    };
    Ok(Alert {
        name: format!("alerts/{}", col::<String>(row, "id")?),
        rule: prefixed("alert-rules", col(row, "rule_id")?),
        entity: prefixed("entities", col(row, "entity_id")?),
        kind: col::<i64>(row, "kind")? as i32,
        story: prefixed("stories", col(row, "story_id")?),
        window_start_time: Some(to_timestamp(col(row, "window_start")?)),
        window_end_time: Some(to_timestamp(col(row, "window_end")?)),
        observed: col(row, "observed")?,
        baseline: col(row, "baseline")?,
        message: col(row, "message")?,
        incident: prefixed("incidents", col(row, "incident_id")?),
        create_time: Some(to_timestamp(col(row, "created_at")?)),
    })
}

impl Store {
    /// Evaluates every enabled rule once; the number of alerts raised.
    pub async fn evaluate_alerts(&self) -> Result<usize, ApiError> {
        let now = self.now();
        let mut raised = 0;
        for (rule_id, entity_id, rule) in self.enabled_rules().await? {
            for trip in self.measure(now, &rule_id, &entity_id, &rule).await? {
                if self.raise(now, trip).await? {
                    raised += 1;
                }
            }
        }
        Ok(raised)
    }

    async fn count(&self, entity: &str, start: i64, end: i64, negative_only: bool) -> Result<i64, ApiError> {
        let sql = if negative_only {
            "SELECT COUNT(*) AS n FROM mention_entities WHERE entity_id = $1 AND seen_at > $2 AND seen_at <= $3 AND label = 1"
        } else {
            "SELECT COUNT(*) AS n FROM mention_entities WHERE entity_id = $1 AND seen_at > $2 AND seen_at <= $3"
        };
        Ok(sqlx::query(sql)
            .bind(entity)
            .bind(start)
            .bind(end)
            .fetch_one(&self.db.pool)
            .await
            .map(|r| col::<i64>(&r, "n"))??)
    }

    /// The story with the most reach among the entity's mentions in the window.
    async fn leading_story(
        &self,
        entity: &str,
        start: i64,
        end: i64,
        negative_only: bool,
    ) -> Result<(String, String), ApiError> {
        let mut sql = Sql::new(
            "SELECT me.story_id, CAST(SUM(me.reach) AS BIGINT) AS r FROM mention_entities me WHERE me.entity_id = ",
        );
        sql.bind(Value::Text(entity.to_string()));
        sql.push(" AND me.seen_at > ").bind(Value::Int(start));
        sql.push(" AND me.seen_at <= ").bind(Value::Int(end));
        if negative_only {
            sql.push(" AND me.label = 1");
        }
        sql.push(" GROUP BY me.story_id ORDER BY r DESC, me.story_id LIMIT 1");
        let Some(row) = sql.query().fetch_optional(&self.db.pool).await? else {
            return Ok((String::new(), String::new()));
        };
        let story: String = col(&row, "story_id")?;
        let title = self.get_story(&story).await.map(|s| s.title).unwrap_or_default();
        Ok((story, title))
    }

    async fn fired_within(&self, rule_id: &str, since: i64) -> Result<bool, ApiError> {
        Ok(
            sqlx::query("SELECT id FROM alerts WHERE rule_id = $1 AND created_at > $2 LIMIT 1")
                .bind(rule_id)
                .bind(since)
                .fetch_optional(&self.db.pool)
                .await?
                .is_some(),
        )
    }

    async fn measure(&self, now: i64, rule_id: &str, entity_id: &str, rule: &AlertRule) -> Result<Vec<Trip>, ApiError> {
        let window = i64::from(rule.window_minutes.max(1)) * 60_000_000;
        let start = now - window;
        let kind = AlertKind::try_from(rule.kind).unwrap_or_default();
        let entity = self.entity_name(entity_id).await?;
        let notify = if rule.notify.is_empty() {
            self.rules.default_notify.clone()
        } else {
            rule.notify.clone()
        };
        let minutes = rule.window_minutes;
        let trip = |dedup_key: String, story_id: String, observed: i64, baseline: f64, message: String| Trip {
            rule_id: rule_id.to_string(),
            entity_id: entity_id.to_string(),
            kind,
            dedup_key,
            story_id,
            window: (start, now),
            observed,
            baseline,
            message,
            notify: notify.clone(),
            quiet_since: (kind != AlertKind::HighReach).then_some(start),
        };
        let bucket = now.div_euclid(window);
        match kind {
            AlertKind::NegativeCount => {
                let observed = self.count(entity_id, start, now, true).await?;
                if observed < rule.threshold || self.fired_within(rule_id, start).await? {
                    return Ok(vec![]);
                }
                let (story, title) = self.leading_story(entity_id, start, now, true).await?;
                Ok(vec![trip(
                    format!("{rule_id}:w:{bucket}"),
                    story,
                    observed,
                    rule.threshold as f64,
                    format!(
                        "【舆情预警】{entity} {minutes} 分钟内负面提及 {observed} 条（阈值 {}）：{title}\n\
                         {entity}: {observed} negative mentions in {minutes} minutes (threshold {}).",
                        rule.threshold, rule.threshold
                    ),
                )])
            }
            AlertKind::Burst => {
                let observed = self.count(entity_id, start, now, false).await?;
                let windows = i64::from(rule.baseline_windows.max(1));
                let before = self.count(entity_id, start - window * windows, start, false).await?;
                let baseline = before as f64 / windows as f64;
                if observed < rule.threshold
                    || (observed as f64) < rule.burst_factor * baseline
                    || self.fired_within(rule_id, start).await?
                {
                    return Ok(vec![]);
                }
                let (story, title) = self.leading_story(entity_id, start, now, false).await?;
                Ok(vec![trip(
                    format!("{rule_id}:w:{bucket}"),
                    story,
                    observed,
                    baseline,
                    format!(
                        "【舆情预警】{entity} 提及量突增：{minutes} 分钟内 {observed} 条，此前平均 {baseline:.1} 条：{title}\n\
                         {entity}: a burst of {observed} mentions in {minutes} minutes against a baseline of {baseline:.1}."
                    ),
                )])
            }
            AlertKind::HighReach => {
                // Stories not alerted on by this rule yet, so the next ones are not starved by
                // the ones already told.
                let rows = sqlx::query(
                    "SELECT id, title, reach FROM stories WHERE last_seen > $1 AND reach >= $2
                     AND id IN (SELECT story_id FROM mention_entities WHERE entity_id = $3)
                     AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.rule_id = $4 AND a.story_id = stories.id)
                     ORDER BY reach DESC LIMIT 20",
                )
                .bind(start)
                .bind(rule.threshold)
                .bind(entity_id)
                .bind(rule_id)
                .fetch_all(&self.db.pool)
                .await?;
                let mut trips = Vec::new();
                for row in rows {
                    let story: String = col(&row, "id")?;
                    let title: String = col(&row, "title")?;
                    let reach: i64 = col(&row, "reach")?;
                    trips.push(trip(
                        format!("{rule_id}:s:{story}"),
                        story,
                        reach,
                        rule.threshold as f64,
                        format!(
                            "【舆情预警】{entity} 相关内容传播量 {reach}（阈值 {}）：{title}\n\
                             {entity}: a story reached {reach} (threshold {}).",
                            rule.threshold, rule.threshold
                        ),
                    ));
                }
                Ok(trips)
            }
            AlertKind::Unspecified => Ok(vec![]),
        }
    }

    /// Stores the alert, its event and its notices; false when it was raised already.
    async fn raise(&self, now: i64, t: Trip) -> Result<bool, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT id FROM alert_rules WHERE id = $1{}", self.for_update());
        if sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&t.rule_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Ok(false); // deleted meanwhile
        }
        let taken = sqlx::query("SELECT id FROM alerts WHERE dedup_key = $1")
            .bind(&t.dedup_key)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Ok(false);
        }
        if let Some(since) = t.quiet_since
            && sqlx::query("SELECT id FROM alerts WHERE rule_id = $1 AND created_at > $2 LIMIT 1")
                .bind(&t.rule_id)
                .bind(since)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
        {
            return Ok(false);
        }
        let id = hcrm_kit::new_id();
        let name = format!("alerts/{id}");
        let inserted = sqlx::query(
            "INSERT INTO alerts (id, rule_id, entity_id, kind, dedup_key, story_id, window_start, window_end, observed,
             baseline, message, incident_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', $12)",
        )
        .bind(&id)
        .bind(&t.rule_id)
        .bind(&t.entity_id)
        .bind(t.kind as i64)
        .bind(&t.dedup_key)
        .bind(&t.story_id)
        .bind(t.window.0)
        .bind(t.window.1)
        .bind(t.observed)
        .bind(t.baseline)
        .bind(&t.message)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if hcrm_kit::error::is_unique_violation(&err) => return Ok(false),
            Err(err) => return Err(err.into()),
        }
        let payload = json!({
            "alert": name, "rule": format!("alert-rules/{}", t.rule_id), "entity": format!("entities/{}", t.entity_id),
            "kind": t.kind.as_str_name(), "story": if t.story_id.is_empty() { String::new() } else { format!("stories/{}", t.story_id) },
            "observed": t.observed, "baseline": t.baseline, "message": t.message,
        });
        for recipient in &t.notify {
            self.outbox
                .enqueue(
                    &mut tx,
                    NewDelivery {
                        id: format!("alert-{id}-{recipient}"),
                        kind: "opinion.alert",
                        recipient: recipient.clone(),
                        department: String::new(),
                        reference: name.clone(),
                        message: payload.clone(),
                        not_before: now,
                        source_at: Some(now),
                    },
                )
                .await?;
        }
        let event = NewEvent {
            kind: "opinion.alert_raised",
            resource: name.clone(),
            payload: payload.clone(),
        };
        hcrm_kit::ledger::append(&mut tx, now, &[], &[event]).await?;
        tx.commit().await?;
        self.committed(true);
        tracing::info!(alert = %name, notify = %json_list(&t.notify), "alert raised");
        Ok(true)
    }

    pub async fn get_alert(&self, id: &str) -> Result<Alert, ApiError> {
        let row = sqlx::query("SELECT * FROM alerts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("alerts/{id}")))?;
        alert_of(&row)
    }

    /// Newest first; `after` is the (created_at, id) of the previous page's last.
    pub async fn list_alerts(
        &self,
        entity: Option<&str>,
        open_only: bool,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Alert>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM alerts WHERE 1 = 1");
        if let Some(entity) = entity {
            sql.push(" AND entity_id = ").bind(Value::Text(entity.to_string()));
        }
        if open_only {
            sql.push(" AND incident_id = ''");
        }
        if let Some((at, id)) = after {
            sql.push(" AND (created_at < ").bind(Value::Int(at));
            sql.push(" OR (created_at = ").bind(Value::Int(at));
            sql.push(" AND id < ").bind(Value::Text(id));
            sql.push("))");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(alert_of).collect()
    }
}
