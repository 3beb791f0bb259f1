//! Reading the event feed.

use super::Store;
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_kit::time::to_timestamp;
use hcrm_proto::types::Event;

impl Store {
    /// Events after `after`, oldest first, at most `limit`, optionally of the given types.
    pub async fn events_after(&self, after: i64, types: &[String], limit: usize) -> Result<Vec<Event>, ApiError> {
        let mut sql = Sql::new("SELECT sequence, type, resource, payload, created_at FROM events WHERE sequence > ");
        sql.bind(Value::Int(after));
        if !types.is_empty() {
            sql.push(" AND type IN (");
            for (i, t) in types.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(Value::Text(t.clone()));
            }
            sql.push(")");
        }
        sql.push(" ORDER BY sequence LIMIT ").bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    sequence: col(r, "sequence")?,
                    r#type: col(r, "type")?,
                    resource: col(r, "resource")?,
                    occur_time: Some(to_timestamp(col(r, "created_at")?)),
                    payload_json: col(r, "payload")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ApiError::from)
    }
}
