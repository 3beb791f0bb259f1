//! Reports. Satisfaction is counted from `ratings` (one row per rated question or counter
//! rating) with an index that covers the grouping; complaint figures from the case columns.
//! Aggregation happens in the database; quantiles and intervals in Rust.

use super::Store;
use crate::domain::report::{change, durations, round1, wilson};
use crate::domain::workdays::{format_month, previous_month};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value, col};
use hcrm_proto::feedback::{
    CaseKind, CaseState, CategoryFigures, CommentFigures, ComplaintCount, ComplaintReport, DepartmentFigures,
    MonthlyReport, SatisfactionCell, TopicCount,
};
use std::collections::BTreeMap;

/// Counts of one group of ratings.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    /// Ratings.
    n: i64,
    satisfied: i64,
    total: i64,
    /// Answers (survey responses, counter ratings) the ratings come from.
    respondents: i64,
}

impl Tally {
    fn add_ratings(&mut self, other: Tally) {
        self.n += other.n;
        self.satisfied += other.satisfied;
        self.total += other.total;
    }
}

/// (month, department, dimension) → tally; "" and UNSPECIFIED are the totals.
type Tallies = BTreeMap<(i32, String, i32), Tally>;

/// The durations and deadlines of a set of cases.
struct CaseTimes {
    first_response: Vec<i64>,
    close: Vec<i64>,
    missed: i64,
}

impl Store {
    async fn tallies(&self, from: i32, to: i32, department: Option<&str>) -> Result<Tallies, ApiError> {
        let mut sql = Sql::new(
            "SELECT month, department, dimension, COUNT(*) AS n, CAST(SUM(per_dimension) AS BIGINT) AS respondents, \
             CAST(SUM(per_answer) AS BIGINT) AS answers, \
             CAST(SUM(CASE WHEN score >= 4 THEN 1 ELSE 0 END) AS BIGINT) AS satisfied, CAST(SUM(score) AS BIGINT) AS total \
             FROM ratings WHERE month >= ",
        );
        sql.bind(Value::Int(from as i64))
            .push(" AND month <= ")
            .bind(Value::Int(to as i64));
        if let Some(d) = department {
            sql.push(" AND department = ").bind(Value::Text(d.into()));
        }
        sql.push(" GROUP BY month, department, dimension");
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut out = Tallies::new();
        for r in &rows {
            let month = col::<i64>(r, "month")? as i32;
            let dept: String = col(r, "department")?;
            let dim = col::<i64>(r, "dimension")? as i32;
            let t = Tally {
                n: col(r, "n")?,
                satisfied: col(r, "satisfied")?,
                total: col(r, "total")?,
                respondents: col(r, "respondents")?,
            };
            // Each answer has one per_answer row (in some dimension) and one per_dimension row
            // per dimension it rates: both sum exactly over departments and dimensions.
            let answers: i64 = col(r, "answers")?;
            out.insert((month, dept.clone(), dim), t);
            for key in [(month, dept.clone(), 0), (month, String::new(), 0)] {
                let all = out.entry(key).or_default();
                all.add_ratings(t);
                all.respondents += answers;
            }
            let dimension = out.entry((month, String::new(), dim)).or_default();
            dimension.add_ratings(t);
            dimension.respondents += t.respondents;
        }
        Ok(out)
    }

    fn cell(&self, month: i32, department: &str, dimension: i32, t: Tally) -> SatisfactionCell {
        let min = self.rules.min_group_size;
        if t.respondents < min || t.n == 0 {
            return SatisfactionCell {
                month: format_month(month),
                department: department.into(),
                dimension,
                responses: t.respondents,
                suppressed: true,
                ..Default::default()
            };
        }
        let (ci_low, ci_high) = wilson(t.n, t.satisfied);
        SatisfactionCell {
            month: format_month(month),
            department: department.into(),
            dimension,
            responses: t.respondents,
            satisfied_percent: round1(t.satisfied as f64 * 100.0 / t.n as f64),
            ci_low,
            ci_high,
            mean: (t.total as f64 / t.n as f64 * 100.0).round() / 100.0,
            suppressed: false,
        }
    }

    pub async fn satisfaction_report(
        &self,
        from: i32,
        to: i32,
        department: Option<&str>,
    ) -> Result<Vec<SatisfactionCell>, ApiError> {
        let tallies = self.tallies(from, to, department).await?;
        Ok(tallies
            .into_iter()
            .filter(|((_, dept, _), _)| department.is_none() || !dept.is_empty())
            .map(|((month, dept, dim), t)| self.cell(month, &dept, dim, t))
            .collect())
    }

    async fn case_times(&self, from: i32, to: i32, department: Option<&str>) -> Result<CaseTimes, ApiError> {
        let now = self.now();
        let mut sql = Sql::new(
            "SELECT created_at, first_response_at, closed_at, response_due, resolution_due FROM cases WHERE month >= ",
        );
        sql.bind(Value::Int(from as i64))
            .push(" AND month <= ")
            .bind(Value::Int(to as i64));
        sql.push(" AND kind = ").bind(Value::Int(CaseKind::Complaint as i64));
        sql.push(" AND state <> ").bind(Value::Int(CaseState::Linked as i64));
        if let Some(d) = department {
            sql.push(" AND department = ").bind(Value::Text(d.into()));
        }
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut out = CaseTimes {
            first_response: Vec::new(),
            close: Vec::new(),
            missed: 0,
        };
        for r in &rows {
            let created: i64 = col(r, "created_at")?;
            let first: Option<i64> = col(r, "first_response_at")?;
            let closed: Option<i64> = col(r, "closed_at")?;
            let (response_due, resolution_due): (i64, i64) = (col(r, "response_due")?, col(r, "resolution_due")?);
            if let Some(t) = first {
                out.first_response.push(t - created);
            }
            if let Some(t) = closed {
                out.close.push(t - created);
            }
            let late = |done: Option<i64>, due: i64| done.map_or(now > due, |t| t > due);
            if late(first, response_due) || late(closed, resolution_due) {
                out.missed += 1;
            }
        }
        Ok(out)
    }

    async fn overdue_now(&self, department: Option<&str>) -> Result<i64, ApiError> {
        let mut sql = Sql::new(
            "SELECT COUNT(*) AS n FROM cases WHERE is_open = 1 \
             AND (CASE WHEN first_response_at IS NULL THEN response_due ELSE resolution_due END) <= ",
        );
        sql.bind(Value::Int(self.now()));
        sql.push(" AND kind = ").bind(Value::Int(CaseKind::Complaint as i64));
        if let Some(d) = department {
            sql.push(" AND department = ").bind(Value::Text(d.into()));
        }
        let row = sql.query().fetch_one(&self.db.pool).await?;
        Ok(col(&row, "n")?)
    }

    /// Complaints per (month, department, category).
    async fn complaint_counts(
        &self,
        from: i32,
        to: i32,
        department: Option<&str>,
    ) -> Result<Vec<ComplaintCount>, ApiError> {
        let mut sql = Sql::new("SELECT month, department, category, COUNT(*) AS n FROM cases WHERE month >= ");
        sql.bind(Value::Int(from as i64))
            .push(" AND month <= ")
            .bind(Value::Int(to as i64));
        sql.push(" AND kind = ").bind(Value::Int(CaseKind::Complaint as i64));
        sql.push(" AND state <> ").bind(Value::Int(CaseState::Linked as i64));
        if let Some(d) = department {
            sql.push(" AND department = ").bind(Value::Text(d.into()));
        }
        sql.push(" GROUP BY month, department, category ORDER BY month, department, category");
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ComplaintCount {
                    month: format_month(col::<i64>(r, "month")? as i32),
                    department: col(r, "department")?,
                    category: col(r, "category")?,
                    count: col(r, "n")?,
                })
            })
            .collect()
    }

    pub async fn complaint_report(
        &self,
        from: i32,
        to: i32,
        department: Option<&str>,
    ) -> Result<ComplaintReport, ApiError> {
        let times = self.case_times(from, to, department).await?;
        Ok(ComplaintReport {
            counts: self.complaint_counts(from, to, department).await?,
            time_to_first_response: Some(durations(times.first_response)),
            time_to_close: Some(durations(times.close)),
            missed_deadlines: times.missed,
            overdue_now: self.overdue_now(department).await?,
        })
    }

    /// The month's free-text answers by sentiment, and the topics of the negative ones.
    async fn comment_figures(&self, month: i32) -> Result<CommentFigures, ApiError> {
        let mut figures = CommentFigures::default();
        let rows = sqlx::query("SELECT label, COUNT(*) AS n FROM comments WHERE month = $1 GROUP BY label")
            .bind(month as i64)
            .fetch_all(&self.db.pool)
            .await?;
        for r in rows {
            let n: i64 = col(&r, "n")?;
            figures.total += n;
            match col::<i64>(&r, "label")? {
                1 => figures.negative += n,
                2 => figures.neutral += n,
                3 => figures.positive += n,
                _ => {}
            }
        }
        figures.analyzed = figures.negative + figures.neutral + figures.positive;
        let mut topics: BTreeMap<String, i64> = BTreeMap::new();
        for r in sqlx::query("SELECT topics FROM comments WHERE month = $1 AND label = 1")
            .bind(month as i64)
            .fetch_all(&self.db.pool)
            .await?
        {
            for t in col::<String>(&r, "topics")?.split(',').filter(|t| !t.is_empty()) {
                *topics.entry(t.to_string()).or_default() += 1;
            }
        }
        let mut topics: Vec<TopicCount> = topics
            .into_iter()
            .map(|(topic, count)| TopicCount { topic, count })
            .collect();
        topics.sort_by(|a, b| b.count.cmp(&a.count).then(a.topic.cmp(&b.topic)));
        figures.negative_topics = topics;
        Ok(figures)
    }

    /// The monthly analysis report of `month` against the month before.
    pub async fn monthly_report(&self, month: i32) -> Result<MonthlyReport, ApiError> {
        let prev = previous_month(month);
        let tallies = self.tallies(prev, month, None).await?;
        let total = |m: i32| tallies.get(&(m, String::new(), 0)).copied().unwrap_or_default();
        let satisfied = |t: Tally| {
            if t.respondents >= self.rules.min_group_size && t.n > 0 {
                round1(t.satisfied as f64 * 100.0 / t.n as f64)
            } else {
                0.0
            }
        };
        // Cases by month and kind, and complaints by department and category.
        let mut sql = Sql::new("SELECT month, kind, COUNT(*) AS n FROM cases WHERE month >= ");
        sql.bind(Value::Int(prev as i64))
            .push(" AND month <= ")
            .bind(Value::Int(month as i64));
        sql.push(" AND state <> ").bind(Value::Int(CaseState::Linked as i64));
        sql.push(" GROUP BY month, kind");
        let mut kinds: BTreeMap<(i32, i32), i64> = BTreeMap::new();
        for r in sql.query().fetch_all(&self.db.pool).await? {
            kinds.insert(
                (col::<i64>(&r, "month")? as i32, col::<i64>(&r, "kind")? as i32),
                col(&r, "n")?,
            );
        }
        let kind_change = |k: CaseKind| {
            let of = |m: i32| kinds.get(&(m, k as i32)).copied().unwrap_or_default() as f64;
            change(of(month), of(prev))
        };
        let counts = self.complaint_counts(prev, month, None).await?;
        let (this_label, prev_label) = (format_month(month), format_month(prev));
        let mut by_category: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut by_department: BTreeMap<String, i64> = BTreeMap::new();
        for c in &counts {
            let entry = by_category.entry(c.category.clone()).or_default();
            if c.month == this_label {
                entry.0 += c.count;
                *by_department.entry(c.department.clone()).or_default() += c.count;
            } else if c.month == prev_label {
                entry.1 += c.count;
            }
        }
        let mut top_categories: Vec<CategoryFigures> = by_category
            .into_iter()
            .filter(|(_, (now, _))| *now > 0)
            .map(|(category, (count, previous))| CategoryFigures {
                category,
                count,
                previous,
            })
            .collect();
        top_categories.sort_by(|a, b| b.count.cmp(&a.count).then(a.category.cmp(&b.category)));
        top_categories.truncate(5);
        let mut worst_departments: Vec<DepartmentFigures> = tallies
            .iter()
            .filter(|((m, dept, dim), t)| {
                *m == month && !dept.is_empty() && *dim == 0 && t.respondents >= self.rules.min_group_size
            })
            .map(|((_, dept, _), t)| DepartmentFigures {
                department: dept.clone(),
                responses: t.respondents,
                satisfied_percent: satisfied(*t),
                complaints: by_department.get(dept).copied().unwrap_or_default(),
            })
            .collect();
        worst_departments.sort_by(|a, b| {
            a.satisfied_percent
                .total_cmp(&b.satisfied_percent)
                .then(b.complaints.cmp(&a.complaints))
        });
        worst_departments.truncate(5);
        let dimensions = tallies
            .iter()
            .filter(|((m, dept, dim), _)| *m == month && dept.is_empty() && *dim != 0)
            .map(|((_, _, dim), t)| self.cell(month, "", *dim, *t))
            .collect();
        let times = self.case_times(month, month, None).await?;
        let mut report = MonthlyReport {
            month: this_label,
            satisfaction: Some(change(satisfied(total(month)), satisfied(total(prev)))),
            responses: Some(change(total(month).respondents as f64, total(prev).respondents as f64)),
            complaints: Some(kind_change(CaseKind::Complaint)),
            suggestions: Some(kind_change(CaseKind::Suggestion)),
            praise: Some(kind_change(CaseKind::Praise)),
            time_to_first_response: Some(durations(times.first_response)),
            time_to_close: Some(durations(times.close)),
            missed_deadlines: times.missed,
            worst_departments,
            top_categories,
            dimensions,
            markdown: String::new(),
            comments: Some(self.comment_figures(month).await?),
        };
        report.markdown = crate::domain::report::markdown(&report, self.rules.min_group_size);
        Ok(report)
    }
}
