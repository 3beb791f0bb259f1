//! Statistics over many follow-ups stay fast by rolling closed days up: a job aggregates each
//! past day once (and again when a late record changes it), and a query reads those rollups
//! plus the live rows of today and of days not yet redone. Writers only mark a day dirty.

use super::Store;
use super::stats::{Rate, StatsQuery, SuccessTables, mean, rate};
use crate::domain::template::channel_name;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_proto::followup::Mean;
use std::collections::BTreeMap;

/// Days rolled up per job round at most (a backlog after an upgrade drains over rounds).
const DAYS_PER_ROUND: i64 = 30;

#[derive(Default)]
struct Tally {
    follow_ups: i64,
    channel: BTreeMap<i64, (i64, i64)>,
    hour: BTreeMap<i64, (i64, i64)>,
    department: BTreeMap<String, (i64, i64)>,
    staff: BTreeMap<String, (i64, i64)>,
}

fn add<K: Ord>(map: &mut BTreeMap<K, (i64, i64)>, key: K, n: i64, hits: i64) {
    let e = map.entry(key).or_default();
    e.0 += n;
    e.1 += hits;
}

fn rates<K>(map: BTreeMap<K, (i64, i64)>, key: impl Fn(K) -> String, min_group: i64) -> Vec<Rate> {
    map.into_iter()
        .map(|(k, (n, hits))| rate(key(k), n, hits, min_group))
        .collect()
}

fn dimension_name(value: i64) -> String {
    let d = hcrm_proto::followup::Dimension::try_from(value as i32).unwrap_or_default();
    d.as_str_name().trim_start_matches("DIMENSION_").to_ascii_lowercase()
}

impl Store {
    /// Restricts `sql` to the query's department and the caller's scope.
    fn departments(sql: &mut Sql, q: &StatsQuery, scope: &Scope) {
        if !q.department.is_empty() {
            sql.push(" AND department = ").bind(Value::Text(q.department.clone()));
        }
        if let Scope::Department(d) = scope {
            sql.push(" AND department = ").bind(Value::Text(d.clone()));
        }
    }

    /// Days of the range read from the raw rows: today and days marked dirty.
    async fn live_days(&self, q: &StatsQuery) -> Result<Vec<i64>, ApiError> {
        let today = self.today();
        let rows = sqlx::query("SELECT DISTINCT day FROM stats_dirty WHERE day >= $1 AND day <= $2 AND day < $3")
            .bind(q.start_day as i64)
            .bind(q.end_day as i64)
            .bind(today as i64)
            .fetch_all(&self.db.pool)
            .await?;
        let mut days: Vec<i64> = rows.iter().map(|r| col(r, "day")).collect::<Result<_, _>>()?;
        if (q.start_day..=q.end_day).contains(&today) {
            days.push(today as i64);
        }
        Ok(days)
    }

    /// `AND {column} IN (…)` for `days`; false when there are none (nothing to read).
    fn in_days(sql: &mut Sql, column: &str, days: &[i64]) -> bool {
        if days.is_empty() {
            return false;
        }
        sql.push(&format!(" AND {column} IN ("));
        for (i, d) in days.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Value::Int(*d));
        }
        sql.push(")");
        true
    }

    /// Follow-ups in the range and their success by channel, local hour, department and staff.
    pub async fn success_tables(&self, q: &StatsQuery, scope: &Scope) -> Result<SuccessTables, ApiError> {
        let live = self.live_days(q).await?;
        let mut t = Tally::default();
        // Closed days: the rollups.
        let mut sql = Sql::new(
            "SELECT dimension, key, department, CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(hits) AS BIGINT) AS hits \
             FROM stats_daily WHERE day >= ",
        );
        sql.bind(Value::Int(q.start_day as i64))
            .push(" AND day <= ")
            .bind(Value::Int(q.end_day as i64))
            .push(" AND day NOT IN (SELECT day FROM stats_dirty) AND day < ")
            .bind(Value::Int(self.today() as i64));
        Self::departments(&mut sql, q, scope);
        sql.push(" GROUP BY dimension, key, department");
        for r in sql.query().fetch_all(&self.db.pool).await? {
            let (dimension, key): (String, String) = (col(&r, "dimension")?, col(&r, "key")?);
            let (n, hits): (i64, i64) = (col(&r, "n")?, col(&r, "hits")?);
            match dimension.as_str() {
                "channel" => add(&mut t.channel, key.parse().unwrap_or_default(), n, hits),
                "hour" => add(&mut t.hour, key.parse().unwrap_or_default(), n, hits),
                "staff" => add(&mut t.staff, key, n, hits),
                _ => {
                    t.follow_ups += n;
                    add(&mut t.department, col(&r, "department")?, n, hits);
                }
            }
        }
        // Live days: the raw rows, at the finest grain, rolled up here.
        let mut sql = Sql::new(
            "SELECT department, recorded_by, channel, local_hour, COUNT(*) AS n, \
             SUM(CASE WHEN outcome = 1 THEN 1 ELSE 0 END) AS hits FROM follow_ups WHERE 1 = 1",
        );
        if Self::in_days(&mut sql, "local_day", &live) {
            Self::departments(&mut sql, q, scope);
            sql.push(" GROUP BY department, recorded_by, channel, local_hour");
            for r in sql.query().fetch_all(&self.db.pool).await? {
                let (n, hits): (i64, i64) = (col(&r, "n")?, col::<Option<i64>>(&r, "hits")?.unwrap_or(0));
                t.follow_ups += n;
                add(&mut t.channel, col(&r, "channel")?, n, hits);
                add(&mut t.hour, col(&r, "local_hour")?, n, hits);
                add(&mut t.department, col(&r, "department")?, n, hits);
                add(&mut t.staff, col(&r, "recorded_by")?, n, hits);
            }
        }
        let min = q.min_group;
        Ok(SuccessTables {
            follow_ups: t.follow_ups,
            by_channel: rates(t.channel, |c| channel_name(c as i32).to_string(), min),
            by_hour: rates(t.hour, |h| format!("{h:02}"), min),
            by_department: rates(t.department, |d| d, min),
            by_staff: rates(t.staff, |s| s, min),
        })
    }

    /// Satisfaction 1–5 by department and dimension.
    pub async fn satisfaction(&self, q: &StatsQuery, scope: &Scope) -> Result<Vec<Mean>, ApiError> {
        let live = self.live_days(q).await?;
        let mut sums: BTreeMap<(String, i64), (i64, i64, i64)> = BTreeMap::new();
        let mut sql = Sql::new(
            "SELECT department, dimension, CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(total) AS BIGINT) AS s, \
             CAST(SUM(squares) AS BIGINT) AS sq FROM satisfaction_daily WHERE day >= ",
        );
        sql.bind(Value::Int(q.start_day as i64))
            .push(" AND day <= ")
            .bind(Value::Int(q.end_day as i64))
            .push(" AND day NOT IN (SELECT day FROM stats_dirty) AND day < ")
            .bind(Value::Int(self.today() as i64));
        Self::departments(&mut sql, q, scope);
        sql.push(" GROUP BY department, dimension");
        let mut rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut sql = Sql::new(
            "SELECT department, dimension, COUNT(*) AS n, CAST(SUM(rating) AS BIGINT) AS s, \
             CAST(SUM(rating * rating) AS BIGINT) AS sq FROM satisfaction WHERE 1 = 1",
        );
        if Self::in_days(&mut sql, "local_day", &live) {
            Self::departments(&mut sql, q, scope);
            sql.push(" GROUP BY department, dimension");
            rows.extend(sql.query().fetch_all(&self.db.pool).await?);
        }
        for r in &rows {
            let e = sums.entry((col(r, "department")?, col(r, "dimension")?)).or_default();
            e.0 += col::<i64>(r, "n")?;
            e.1 += col::<i64>(r, "s")?;
            e.2 += col::<i64>(r, "sq")?;
        }
        Ok(sums
            .into_iter()
            .map(|((department, dimension), (n, s, sq))| {
                mean(
                    format!("{department}/{}", dimension_name(dimension)),
                    n,
                    s as f64,
                    sq as f64,
                    q.min_group,
                )
            })
            .collect())
    }

    /// Rolls up dirty days before today; returns how many were redone. Each day is unmarked and
    /// recomputed in one transaction, so readers see either the old rollup marked dirty (and
    /// read that day live) or the new one; safe on every replica.
    pub async fn roll_up_dirty(&self) -> Result<usize, ApiError> {
        let rows = sqlx::query("SELECT DISTINCT day FROM stats_dirty WHERE day < $1 ORDER BY day LIMIT $2")
            .bind(self.today() as i64)
            .bind(DAYS_PER_ROUND)
            .fetch_all(&self.db.pool)
            .await?;
        for r in &rows {
            self.roll_up(col(r, "day")?).await?;
        }
        Ok(rows.len())
    }

    /// Recomputes one day's rollups from its raw rows.
    async fn roll_up(&self, day: i64) -> Result<(), ApiError> {
        let mut tx = self.db.begin_write().await?;
        for table in ["stats_dirty", "stats_daily", "satisfaction_daily"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE day = $1")))
                .bind(day)
                .execute(&mut *tx)
                .await?;
        }
        // (dimension, key expression, its GROUP BY term: PostgreSQL refuses a constant there).
        for (dimension, key, group) in [
            ("channel", "CAST(channel AS TEXT)", ", channel"),
            ("hour", "CAST(local_hour AS TEXT)", ", local_hour"),
            ("staff", "recorded_by", ", recorded_by"),
            ("total", "''", ""),
        ] {
            let sql = format!(
                "INSERT INTO stats_daily (day, department, dimension, key, n, hits) \
                 SELECT local_day, department, '{dimension}', {key}, COUNT(*), SUM(CASE WHEN outcome = 1 THEN 1 ELSE 0 END) \
                 FROM follow_ups WHERE local_day = $1 GROUP BY local_day, department{group}"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(day)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO satisfaction_daily (day, department, dimension, n, total, squares) \
             SELECT local_day, department, dimension, COUNT(*), SUM(rating), SUM(rating * rating) \
             FROM satisfaction WHERE local_day = $1 GROUP BY local_day, department, dimension",
        )
        .bind(day)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
