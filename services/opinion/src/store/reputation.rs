//! The reputation trend from the daily counts.

use super::Store;
use crate::domain::days::{self, date_of};
use hcrm_kit::ApiError;
use hcrm_kit::db::col;
use hcrm_proto::opinion::{DailyReputation, Reputation};
use hcrm_proto::types::Date;

/// 50 × (1 + average score): 0 all negative, 50 neutral or no mentions, 100 all positive.
pub fn index(score_sum: f64, mentions: i64) -> f64 {
    if mentions == 0 {
        50.0
    } else {
        (50.0 * (1.0 + score_sum / mentions as f64)).clamp(0.0, 100.0)
    }
}

impl Store {
    /// Every day of [start, end] (local `yyyymmdd`), zeros where nothing was said.
    pub async fn reputation(&self, entity: &str, start: i64, end: i64) -> Result<Reputation, ApiError> {
        let rows = sqlx::query(
            "SELECT day, mentions, positive, neutral, negative, score_sum FROM daily
             WHERE entity_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        )
        .bind(entity)
        .bind(start)
        .bind(end)
        .fetch_all(&self.db.pool)
        .await?;
        let mut stored = std::collections::BTreeMap::new();
        for r in &rows {
            stored.insert(
                col::<i64>(r, "day")?,
                (
                    col::<i64>(r, "mentions")?,
                    col::<i64>(r, "positive")?,
                    col::<i64>(r, "neutral")?,
                    col::<i64>(r, "negative")?,
                    col::<f64>(r, "score_sum")?,
                ),
            );
        }
        let (Some(mut date), Some(last)) = (date_of(start), date_of(end)) else {
            return Err(ApiError::invalid("start_date", "must be a real date"));
        };
        let mut out = Reputation {
            entity: if entity.is_empty() {
                String::new()
            } else {
                format!("entities/{entity}")
            },
            ..Default::default()
        };
        let (mut total, mut negative, mut score_sum) = (0i64, 0i64, 0f64);
        while date <= last {
            let day = days::ymd(date);
            let (mentions, pos, neu, neg, sum) = stored.get(&day).copied().unwrap_or((0, 0, 0, 0, 0.0));
            total += mentions;
            negative += neg;
            score_sum += sum;
            out.days.push(DailyReputation {
                date: Some(Date {
                    year: (day / 10_000) as i32,
                    month: ((day / 100) % 100) as i32,
                    day: (day % 100) as i32,
                }),
                mentions,
                positive: pos,
                neutral: neu,
                negative: neg,
                negative_share: if mentions == 0 {
                    0.0
                } else {
                    neg as f64 / mentions as f64
                },
                index: index(sum, mentions),
            });
            date = date.succ_opt().expect("a date before the end of time");
        }
        out.mentions = total;
        out.negative_share = if total == 0 {
            0.0
        } else {
            negative as f64 / total as f64
        };
        out.index = index(score_sum, total);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_index_runs_from_all_negative_to_all_positive() {
        assert_eq!(super::index(-3.0, 3), 0.0);
        assert_eq!(super::index(0.0, 0), 50.0);
        assert_eq!(super::index(2.0, 2), 100.0);
        assert_eq!(super::index(0.5, 2), 62.5);
    }
}
