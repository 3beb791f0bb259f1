//! The statistics queries: aggregates in SQL, intervals and suppression in the domain.

use super::Store;
use crate::domain::stats::{mean_interval, proportions_differ, quantile, wilson};
use crate::domain::template::channel_name;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value, col};
pub use hcrm_proto::followup::Rate;
use hcrm_proto::followup::{EffectComparison, ExamNoticeSla, Mean};

/// A statistics query after edge validation: local days `[start_day, end_day]`.
pub struct StatsQuery {
    pub start_day: i32,
    pub end_day: i32,
    pub department: String,
    pub diagnosis_prefix: String,
    pub min_group: i64,
}

const READMISSION_WINDOW: i64 = 30 * 86_400 * 1_000_000;

/// Success rates by each grouping, and the total.
#[derive(Debug, Default)]
pub struct SuccessTables {
    pub follow_ups: i64,
    pub by_channel: Vec<Rate>,
    pub by_hour: Vec<Rate>,
    pub by_department: Vec<Rate>,
    pub by_staff: Vec<Rate>,
}

/// One discharge in the effect comparison, over the plans it made.
#[derive(Default)]
struct Discharge {
    /// Reached calls.
    reached: i64,
    readmitted: bool,
    /// The last recovery score and when it was taken.
    last_score: Option<(i64, f64)>,
}

pub fn rate(key: String, n: i64, hits: i64, min_group: i64) -> Rate {
    let figures = (n >= min_group).then(|| wilson(n, hits)).flatten();
    Rate {
        key,
        n,
        hits,
        rate: figures.map(|f| f.0),
        ci_low: figures.map(|f| f.1),
        ci_high: figures.map(|f| f.2),
    }
}

pub fn mean(key: String, n: i64, sum: f64, sum_sq: f64, min_group: i64) -> Mean {
    let figures = (n >= min_group).then(|| mean_interval(n, sum, sum_sq)).flatten();
    Mean {
        key,
        n,
        mean: figures.map(|f| f.0),
        ci_low: figures.map(|f| f.1),
        ci_high: figures.map(|f| f.2),
    }
}

impl Store {
    fn range(&self, q: &StatsQuery) -> (i64, i64) {
        (self.cal.start_of(q.start_day), self.cal.start_of(q.end_day + 1))
    }

    fn scoped(&self, sql: &mut Sql, q: &StatsQuery, scope: &Scope, column: &str) {
        if !q.department.is_empty() {
            sql.push(&format!(" AND {column} = "))
                .bind(Value::Text(q.department.clone()));
        }
        if let Scope::Department(d) = scope {
            sql.push(&format!(" AND {column} = ")).bind(Value::Text(d.clone()));
        }
    }

    /// Reached / attempts grouped by `column` of follow_ups.
    pub async fn success_by(&self, q: &StatsQuery, scope: &Scope, column: &str) -> Result<Vec<Rate>, ApiError> {
        let (from, to) = self.range(q);
        let mut sql = Sql::new(format!(
            "SELECT {column} AS k, COUNT(*) AS n, SUM(CASE WHEN outcome = 1 THEN 1 ELSE 0 END) AS hits \
             FROM follow_ups WHERE occur_at >= "
        ));
        sql.bind(Value::Int(from)).push(" AND occur_at < ").bind(Value::Int(to));
        self.scoped(&mut sql, q, scope, "department");
        sql.push(&format!(" GROUP BY {column} ORDER BY {column}"));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                let key = match column {
                    "channel" => channel_name(col::<i64>(r, "k")? as i32).to_string(),
                    "local_hour" => format!("{:02}", col::<i64>(r, "k")?),
                    _ => col::<String>(r, "k")?,
                };
                Ok(rate(
                    key,
                    col(r, "n")?,
                    col::<Option<i64>>(r, "hits")?.unwrap_or(0),
                    q.min_group,
                ))
            })
            .collect()
    }

    /// Exam results and how fast their notices went out.
    pub async fn exam_notice_sla(&self, q: &StatsQuery, scope: &Scope) -> Result<ExamNoticeSla, ApiError> {
        let (from, to) = self.range(q);
        let mut sql = Sql::new(
            "SELECT source_at, delivered_at, state FROM deliveries WHERE kind = 'followup.exam_notice' AND source_at >= ",
        );
        sql.bind(Value::Int(from))
            .push(" AND source_at < ")
            .bind(Value::Int(to));
        self.scoped(&mut sql, q, scope, "department");
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let now = self.now();
        let hour = 3_600_000_000i64;
        let mut sla = ExamNoticeSla::default();
        let mut minutes = Vec::new();
        for r in &rows {
            let source: i64 = col::<Option<i64>>(r, "source_at")?.unwrap_or(0);
            let state: String = col(r, "state")?;
            sla.results += 1;
            match col::<Option<i64>>(r, "delivered_at")? {
                Some(at) => {
                    minutes.push((at - source) as f64 / 60e6);
                    if at - source <= hour {
                        sla.notified_within_hour += 1;
                    } else {
                        sla.late += 1;
                    }
                }
                None if state == "skipped" || state == "dead" => sla.not_sent += 1,
                None if now - source > hour => sla.late += 1,
                None => sla.pending += 1,
            }
        }
        minutes.sort_by(f64::total_cmp);
        sla.p90_minutes = quantile(&minutes, 0.9);
        Ok(sla)
    }

    /// Followed-up vs not-followed-up patients discharged with a diagnosis: one unit per
    /// discharge (however many plans it made), counting only discharges whose 30-day
    /// readmission window has closed.
    pub async fn effect(&self, q: &StatsQuery, scope: &Scope) -> Result<EffectComparison, ApiError> {
        let (from, to) = self.range(q);
        let matured = self.now() - READMISSION_WINDOW;
        let mut sql = Sql::new(
            "SELECT p.patient_id, p.source, \
             (SELECT COUNT(*) FROM follow_ups f WHERE f.plan_id = p.id AND f.outcome = 1) AS reached, \
             (SELECT f.recovery_score FROM follow_ups f WHERE f.plan_id = p.id AND f.outcome = 1 AND f.recovery_score IS NOT NULL \
              ORDER BY f.occur_at DESC LIMIT 1) AS last_score, \
             (SELECT MAX(f.occur_at) FROM follow_ups f WHERE f.plan_id = p.id AND f.outcome = 1 AND f.recovery_score IS NOT NULL) \
              AS last_score_at, \
             (SELECT COUNT(*) FROM admissions a WHERE a.patient_id = p.patient_id AND a.at > p.anchor_at AND a.at <= p.anchor_at + ",
        );
        sql.bind(Value::Int(READMISSION_WINDOW));
        sql.push(") AS readmissions FROM plans p WHERE p.origin = 'discharge' AND p.anchor_at >= ")
            .bind(Value::Int(from))
            .push(" AND p.anchor_at < ")
            .bind(Value::Int(to))
            .push(" AND p.anchor_at <= ")
            .bind(Value::Int(matured))
            .push(" AND p.diagnoses LIKE ")
            .bind(Value::Text(format!("%,{}%", q.diagnosis_prefix)));
        self.scoped(&mut sql, q, scope, "p.department");
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut discharges: std::collections::HashMap<(String, String), Discharge> = std::collections::HashMap::new();
        for r in &rows {
            let key = (col::<String>(r, "patient_id")?, col::<String>(r, "source")?);
            let entry = discharges.entry(key).or_default();
            entry.reached += col::<i64>(r, "reached")?;
            entry.readmitted |= col::<i64>(r, "readmissions")? > 0;
            if let (Some(score), Some(at)) = (
                col::<Option<f64>>(r, "last_score")?,
                col::<Option<i64>>(r, "last_score_at")?,
            ) && entry.last_score.is_none_or(|(t, _)| at > t)
            {
                entry.last_score = Some((at, score));
            }
        }
        let (mut followed, mut followed_readmitted, mut not, mut not_readmitted) = (0i64, 0i64, 0i64, 0i64);
        let (mut multi, mut once) = ((0i64, 0.0f64, 0.0f64), (0i64, 0.0f64, 0.0f64));
        for Discharge {
            reached,
            readmitted,
            last_score: score,
        } in discharges.into_values()
        {
            if reached > 0 {
                followed += 1;
                followed_readmitted += i64::from(readmitted);
            } else {
                not += 1;
                not_readmitted += i64::from(readmitted);
            }
            if let Some((_, s)) = score {
                let group = if reached > 1 { &mut multi } else { &mut once };
                group.0 += 1;
                group.1 += s;
                group.2 += s * s;
            }
        }
        let big_enough = followed >= q.min_group && not >= q.min_group;
        Ok(EffectComparison {
            diagnosis_prefix: q.diagnosis_prefix.clone(),
            followed_up_patients: followed,
            not_followed_up_patients: not,
            readmission_followed_up: Some(rate("followed_up".into(), followed, followed_readmitted, q.min_group)),
            readmission_not_followed_up: Some(rate("not_followed_up".into(), not, not_readmitted, q.min_group)),
            recovery_followed_up: Some(mean("followed_up".into(), multi.0, multi.1, multi.2, q.min_group)),
            recovery_checked_once: Some(mean("checked_once".into(), once.0, once.1, once.2, q.min_group)),
            significant: big_enough
                .then(|| proportions_differ(followed, followed_readmitted, not, not_readmitted))
                .flatten(),
        })
    }
}
