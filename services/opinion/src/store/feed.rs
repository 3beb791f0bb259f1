//! The feedback feed as this service consumes it: the case feedback opened for an escalated
//! incident (`source` = `opinion/incidents/{id}`) is linked back to it. The cursor moves
//! in the same transaction.

use super::Store;
use hcrm_kit::ApiError;
use hcrm_kit::db::col;
use hcrm_proto::types::Event;

pub const FEEDBACK_FEED: &str = "feedback";

/// (incident id, case name) of a `feedback.case_opened` event for an incident.
pub fn escalated_case(event: &Event) -> Option<(String, String)> {
    if event.r#type != "feedback.case_opened" {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&event.payload_json).ok()?;
    let incident = v
        .get("source")?
        .as_str()?
        .strip_prefix("opinion/incidents/")?
        .to_string();
    let case = v.get("case")?.as_str()?.to_string();
    Some((incident, case))
}

impl Store {
    pub async fn cursor(&self, feed: &str) -> Result<i64, ApiError> {
        hcrm_kit::peers::feed::position(&self.db, feed).await
    }

    /// Applies a feedback event unless the cursor is already past it.
    pub async fn apply_feedback_event(&self, event: &Event) -> Result<bool, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT position FROM consumer_cursors WHERE feed = $1{}",
            self.for_update()
        );
        let position: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(FEEDBACK_FEED)
            .fetch_one(&mut *tx)
            .await
            .map(|r| col(&r, "position"))??;
        if position >= event.sequence {
            return Ok(false);
        }
        if let Some((incident, case)) = escalated_case(event) {
            self.link_case(&mut tx, &incident, &case).await?;
        }
        sqlx::query("UPDATE consumer_cursors SET position = $1 WHERE feed = $2")
            .bind(event.sequence)
            .bind(FEEDBACK_FEED)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.committed(false);
        Ok(true)
    }
}
