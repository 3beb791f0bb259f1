//! Timeline facts, grading rules, computed grades and their history, and the recomputation
//! passes (dirty patients, the nightly pass over everyone) under a lease held by one replica.

use super::{Store, decode};
use crate::domain::grading::{self, Computed, Facts, Reason};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Tx, Value, col};
use hcrm_kit::error::is_unique_violation;
use hcrm_kit::ledger::{self, AuditEntry, NewEvent};
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::patients::{Grade, GradeChange, GradingRules, Interaction, InteractionKind};
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;

/// Rows per multi-row statement of a pass (a few hundred bound values each).
const WRITE_CHUNK: usize = 50;

/// How the facts of a patient absorb more of the same (a new entry, or a merged record's).
const FACTS_UPSERT: &str = " ON CONFLICT (patient_id) DO UPDATE SET \
    visit_count = patient_facts.visit_count + excluded.visit_count, \
    first_visit_at = CASE WHEN excluded.first_visit_at IS NOT NULL AND (patient_facts.first_visit_at IS NULL \
        OR excluded.first_visit_at < patient_facts.first_visit_at) THEN excluded.first_visit_at ELSE patient_facts.first_visit_at END, \
    last_visit_at = CASE WHEN excluded.last_visit_at IS NOT NULL AND (patient_facts.last_visit_at IS NULL \
        OR excluded.last_visit_at > patient_facts.last_visit_at) THEN excluded.last_visit_at ELSE patient_facts.last_visit_at END, \
    last_event_at = CASE WHEN patient_facts.last_event_at IS NULL OR excluded.last_event_at > patient_facts.last_event_at \
        THEN excluded.last_event_at ELSE patient_facts.last_event_at END, \
    unanswered_follow_ups = CASE \
        WHEN excluded.last_visit_at IS NOT NULL AND (patient_facts.last_visit_at IS NULL OR excluded.last_visit_at > patient_facts.last_visit_at) THEN 0 \
        WHEN excluded.unanswered_follow_ups > 0 AND (patient_facts.last_visit_at IS NULL OR excluded.last_event_at > patient_facts.last_visit_at) \
            THEN patient_facts.unanswered_follow_ups + excluded.unanswered_follow_ups \
        ELSE patient_facts.unanswered_follow_ups END, \
    complaints = patient_facts.complaints + excluded.complaints, \
    value_cents = patient_facts.value_cents + excluded.value_cents, \
    dirty = excluded.dirty";

/// A grade as kept in `patient_grades` and in history rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    #[serde(flatten)]
    pub computed: Computed,
    pub computed_at: i64,
}

impl Stored {
    pub fn to_grade(&self, patient_id: &str) -> Grade {
        let c = &self.computed;
        Grade {
            patient: super::patients::name_of(patient_id),
            customer_class: c.customer_class,
            intent_grade: c.intent_grade,
            value_tier: c.value_tier,
            rfv_score: c.rfv_score,
            rule_version: c.rule_version,
            reasons: c.reasons.iter().map(Reason::to_proto).collect(),
            compute_time: Some(to_timestamp(self.computed_at)),
        }
    }
}

/// Counts of a recomputation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassCounts {
    pub evaluated: i64,
    pub updated: i64,
    pub changed: i64,
}

impl std::ops::AddAssign for PassCounts {
    fn add_assign(&mut self, o: Self) {
        self.evaluated += o.evaluated;
        self.updated += o.updated;
        self.changed += o.changed;
    }
}

/// The state of the nightly pass.
#[derive(Debug, Clone)]
pub struct PassState {
    pub pass_day: String,
    pub last_id: Option<String>,
    pub finished: bool,
}

struct Candidate {
    id: String,
    facts: Facts,
    old: Option<Stored>,
}

fn read_stored(row: &AnyRow) -> Result<Option<Stored>, ApiError> {
    let class: Option<i64> = col(row, "customer_class")?;
    let Some(class) = class else { return Ok(None) };
    let reasons: String = col(row, "reasons")?;
    Ok(Some(Stored {
        computed: Computed {
            customer_class: class as i32,
            intent_grade: col::<i64>(row, "intent_grade")? as i32,
            value_tier: col::<i64>(row, "value_tier")? as i32,
            rfv_score: col::<i64>(row, "rfv_score")? as i32,
            rule_version: col::<i64>(row, "rule_version")? as i32,
            reasons: serde_json::from_str(&reasons).map_err(ApiError::internal)?,
        },
        computed_at: col(row, "computed_at")?,
    }))
}

/// The batch's patients (`patients` filtered by `batch`, which ends the WHERE clause) with
/// their facts and current grade. The joins look up only the batch's rows: the batch is a
/// subquery with a literal LIMIT, so even a cached generic plan on PostgreSQL does not join
/// whole tables for every batch.
fn candidates_sql(batch: &Sql, limit: usize) -> Sql {
    let mut sql = Sql::new(
        "SELECT b.id AS id, b.last_visit_at AS last_visit_at, b.vip AS vip, \
         f.visit_count AS visit_count, f.unanswered_follow_ups AS unanswered_follow_ups, f.value_cents AS value_cents, \
         g.customer_class AS customer_class, g.intent_grade AS intent_grade, g.value_tier AS value_tier, \
         g.rfv_score AS rfv_score, g.rule_version AS rule_version, g.reasons AS reasons, g.computed_at AS computed_at \
         FROM (SELECT id, last_visit_at, vip FROM patients WHERE deleted_at IS NULL AND merged_into IS NULL",
    );
    sql.append_renumbered(batch);
    sql.push(&format!(" ORDER BY id LIMIT {limit}) b"));
    sql.push(
        " LEFT JOIN patient_facts f ON f.patient_id = b.id LEFT JOIN patient_grades g ON g.patient_id = b.id \
         ORDER BY b.id",
    );
    sql
}

fn read_candidate(row: &AnyRow) -> Result<Candidate, ApiError> {
    Ok(Candidate {
        id: col(row, "id")?,
        facts: Facts {
            last_visit_at: col(row, "last_visit_at")?,
            visit_count: col::<Option<i64>>(row, "visit_count")?.unwrap_or(0),
            unanswered_follow_ups: col::<Option<i64>>(row, "unanswered_follow_ups")?.unwrap_or(0),
            value_cents: col::<Option<i64>>(row, "value_cents")?.unwrap_or(0),
            vip: col::<i64>(row, "vip")? != 0,
        },
        old: read_stored(row)?,
    })
}

impl Store {
    /// Adds one new timeline entry to its patient's facts and marks the patient dirty, in the
    /// recording transaction.
    pub async fn note_interaction_in_tx(
        &self,
        tx: &mut Tx,
        patient_id: &str,
        i: &Interaction,
        occurred: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let kind = InteractionKind::try_from(i.kind).unwrap_or(InteractionKind::Other);
        let d = grading::fact_delta(kind, &i.details_json);
        let visit_at = d.visit.then_some(occurred);
        let sql = format!(
            "INSERT INTO patient_facts (patient_id, visit_count, first_visit_at, last_visit_at, last_event_at, \
             unanswered_follow_ups, complaints, value_cents, dirty) VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8){FACTS_UPSERT}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(patient_id)
            .bind(i64::from(d.visit))
            .bind(visit_at)
            .bind(occurred)
            .bind(i64::from(d.unanswered_follow_up))
            .bind(i64::from(d.complaint))
            .bind(d.amount_cents)
            .bind(now.max(1))
            .execute(&mut **tx)
            .await?;
        if d.visit && !i.department.is_empty() {
            sqlx::query(
                "INSERT INTO patient_departments (patient_id, department, visits) VALUES ($1, $2, 1) \
                 ON CONFLICT (patient_id, department) DO UPDATE SET visits = patient_departments.visits + 1",
            )
            .bind(patient_id)
            .bind(&i.department)
            .execute(&mut **tx)
            .await?;
        }
        for code in &i.diagnosis_codes {
            sqlx::query(
                "INSERT INTO patient_diagnoses (patient_id, code) VALUES ($1, $2) ON CONFLICT (patient_id, code) DO NOTHING",
            )
            .bind(patient_id)
            .bind(code.trim().to_uppercase())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Moves the facts of `merged` onto `survivor` (whose timeline it joined) and marks the
    /// survivor dirty, in the merging transaction.
    pub async fn merge_facts_in_tx(
        &self,
        tx: &mut Tx,
        survivor: &str,
        merged: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO patient_facts (patient_id, dirty) VALUES ($1, $2) ON CONFLICT (patient_id) DO UPDATE SET dirty = excluded.dirty",
        )
        .bind(survivor)
        .bind(now.max(1))
        .execute(&mut **tx)
        .await?;
        let sql = format!(
            "INSERT INTO patient_facts (patient_id, visit_count, first_visit_at, last_visit_at, last_event_at, \
             unanswered_follow_ups, complaints, value_cents, dirty) \
             SELECT CAST($1 AS TEXT), visit_count, first_visit_at, last_visit_at, last_event_at, unanswered_follow_ups, \
             complaints, value_cents, CAST($2 AS BIGINT) FROM patient_facts WHERE patient_id = $3{FACTS_UPSERT}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(survivor)
            .bind(now.max(1))
            .bind(merged)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO patient_departments (patient_id, department, visits) \
             SELECT CAST($1 AS TEXT), department, visits FROM patient_departments WHERE patient_id = $2 \
             ON CONFLICT (patient_id, department) DO UPDATE SET visits = patient_departments.visits + excluded.visits",
        )
        .bind(survivor)
        .bind(merged)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO patient_diagnoses (patient_id, code) SELECT CAST($1 AS TEXT), code FROM patient_diagnoses \
             WHERE patient_id = $2 ON CONFLICT (patient_id, code) DO NOTHING",
        )
        .bind(survivor)
        .bind(merged)
        .execute(&mut **tx)
        .await?;
        // Referrals follow the person: those the merged record introduced count for the survivor;
        // its own introducer moves over unless the survivor already has one; a referral between
        // the two records names one person twice and goes. The merged record's grade goes too
        // (the survivor is regraded from the merged facts).
        for sql in [
            "UPDATE referrals SET introducer = $1 WHERE introducer = $2",
            "UPDATE referrals SET referred = $1 WHERE referred = $2 \
             AND NOT EXISTS (SELECT 1 FROM referrals r WHERE r.referred = $1)",
            "DELETE FROM referrals WHERE referred = $2 OR (introducer = $1 AND referred = $1)",
            "DELETE FROM patient_grades WHERE patient_id = $2 AND $1 <> ''",
        ] {
            sqlx::query(sql).bind(survivor).bind(merged).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The rules of `version`, or the latest when 0. Version 1 is built in.
    pub async fn grading_rules(&self, version: i32) -> Result<GradingRules, ApiError> {
        let row = if version == 0 {
            sqlx::query("SELECT * FROM grading_rules ORDER BY version DESC LIMIT 1")
                .fetch_optional(&self.db.pool)
                .await?
        } else {
            sqlx::query("SELECT * FROM grading_rules WHERE version = $1")
                .bind(i64::from(version))
                .fetch_optional(&self.db.pool)
                .await?
        };
        match row {
            Some(row) => {
                let doc: Vec<u8> = col(&row, "doc")?;
                let mut rules: GradingRules = decode(&doc)?;
                rules.version = col::<i64>(&row, "version")? as i32;
                rules.publisher = col(&row, "publisher")?;
                rules.publish_time = Some(to_timestamp(col(&row, "published_at")?));
                Ok(rules)
            }
            None if version <= 1 => Ok(grading::default_rules()),
            None => Err(ApiError::not_found(format!("gradingRules/{version}"))),
        }
    }

    /// Publishes `rules` (validated by the caller) as the next version.
    pub async fn publish_rules(
        &self,
        ctx: &RequestContext,
        mut rules: GradingRules,
        now: i64,
    ) -> Result<GradingRules, ApiError> {
        let current = self.grading_rules(0).await?.version;
        if rules.version != current + 1 {
            return Err(ApiError::FailedPrecondition(format!(
                "rules.version must be {} (the current version is {current})",
                current + 1
            )));
        }
        rules.publisher = ctx.principal.subject.clone();
        rules.publish_time = None;
        let mut tx = self.db.begin_write().await?;
        let inserted =
            sqlx::query("INSERT INTO grading_rules (version, doc, publisher, published_at) VALUES ($1, $2, $3, $4)")
                .bind(i64::from(rules.version))
                .bind(rules.encode_to_vec())
                .bind(&rules.publisher)
                .bind(now)
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(ApiError::FailedPrecondition(format!(
                    "version {} was published concurrently; read the rules again",
                    rules.version
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let name = format!("gradingRules/{}", rules.version);
        let audit = AuditEntry::new(
            ctx,
            "grading_rules.publish",
            &name,
            &rules.note,
            json!({ "version": rules.version }),
        );
        let event = NewEvent {
            kind: "grading_rules.published",
            resource: name,
            payload: json!({ "version": rules.version }),
        };
        ledger::append(&mut tx, now, &[audit], &[event]).await?;
        tx.commit().await?;
        self.changed();
        self.grading_rules(rules.version).await
    }

    /// A patient's stored grade.
    pub async fn grade_of(&self, patient_id: &str) -> Result<Option<Stored>, ApiError> {
        let row = sqlx::query("SELECT * FROM patient_grades WHERE patient_id = $1")
            .bind(patient_id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(read_stored).transpose().map(Option::flatten)
    }

    /// A patient's grade changes, newest first, after the `(changed_at, id)` position; with
    /// `at`, only changes at or before it.
    pub async fn grade_history(
        &self,
        patient_id: &str,
        at: Option<i64>,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<(GradeChange, i64, String)>, ApiError> {
        let mut sql = Sql::new("SELECT * FROM grade_history WHERE patient_id = ");
        sql.bind(Value::Text(patient_id.to_string()));
        if let Some(at) = at {
            sql.push(" AND changed_at <= ").bind(Value::Int(at));
        }
        if let Some((t, id)) = after {
            sql.push(" AND (changed_at < ").bind(Value::Int(t));
            sql.push(" OR (changed_at = ").bind(Value::Int(t));
            sql.push(" AND id < ").bind(Value::Text(id)).push("))");
        }
        sql.push(" ORDER BY changed_at DESC, id DESC LIMIT ")
            .bind(Value::Int(limit as i64));
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let old: Option<Stored> =
                serde_json::from_str(&col::<String>(r, "old_grade")?).map_err(ApiError::internal)?;
            let new: Stored = serde_json::from_str(&col::<String>(r, "new_grade")?).map_err(ApiError::internal)?;
            let changed: Vec<String> =
                serde_json::from_str(&col::<String>(r, "changed")?).map_err(ApiError::internal)?;
            let at: i64 = col(r, "changed_at")?;
            let change = GradeChange {
                patient: super::patients::name_of(patient_id),
                old_grade: old.as_ref().map(|o| o.to_grade(patient_id)),
                new_grade: Some(new.to_grade(patient_id)),
                change_time: Some(to_timestamp(at)),
                changed,
                summary: grading::change_summary(old.as_ref().map(|o| &o.computed), &new.computed),
            };
            out.push((change, at, col(r, "id")?));
        }
        Ok(out)
    }

    async fn candidates(&self, sql: &Sql) -> Result<Vec<Candidate>, ApiError> {
        let rows = sql.query().fetch_all(&self.db.pool).await?;
        rows.iter().map(read_candidate).collect()
    }

    /// Evaluates candidates and writes what changed (grades; history rows for changes of
    /// class, intent grade or tier) in one transaction.
    async fn grade_candidates(
        &self,
        rules: &GradingRules,
        candidates: &[Candidate],
        now: i64,
    ) -> Result<PassCounts, ApiError> {
        let mut counts = PassCounts {
            evaluated: candidates.len() as i64,
            ..Default::default()
        };
        let mut writes: Vec<(&str, Stored)> = Vec::new();
        let mut history: Vec<(String, &str, String, String, String)> = Vec::new();
        for c in candidates {
            let computed = grading::evaluate(rules, &c.facts, now);
            let old = c.old.as_ref().map(|o| &o.computed);
            if !computed.differs(old) {
                continue;
            }
            let changed = computed.changed_from(old);
            let new = Stored {
                computed,
                computed_at: now,
            };
            if !changed.is_empty() {
                history.push((
                    hcrm_kit::new_id(),
                    c.id.as_str(),
                    serde_json::to_string(&c.old).map_err(ApiError::internal)?,
                    serde_json::to_string(&new).map_err(ApiError::internal)?,
                    serde_json::to_string(&changed).map_err(ApiError::internal)?,
                ));
            }
            writes.push((c.id.as_str(), new));
        }
        counts.updated = writes.len() as i64;
        counts.changed = history.len() as i64;
        if writes.is_empty() {
            return Ok(counts);
        }
        let mut tx = self.db.begin_write().await?;
        for chunk in writes.chunks(WRITE_CHUNK) {
            let mut sql = Sql::new(
                "INSERT INTO patient_grades (patient_id, customer_class, intent_grade, value_tier, rfv_score, rule_version, reasons, computed_at) VALUES ",
            );
            for (n, (id, s)) in chunk.iter().enumerate() {
                let c = &s.computed;
                sql.push(if n > 0 { ", (" } else { "(" });
                sql.bind(Value::Text(id.to_string())).push(", ");
                sql.bind(Value::Int(c.customer_class.into())).push(", ");
                sql.bind(Value::Int(c.intent_grade.into())).push(", ");
                sql.bind(Value::Int(c.value_tier.into())).push(", ");
                sql.bind(Value::Int(c.rfv_score.into())).push(", ");
                sql.bind(Value::Int(c.rule_version.into())).push(", ");
                sql.bind(Value::Text(
                    serde_json::to_string(&c.reasons).map_err(ApiError::internal)?,
                ))
                .push(", ");
                sql.bind(Value::Int(s.computed_at)).push(")");
            }
            sql.push(
                " ON CONFLICT (patient_id) DO UPDATE SET customer_class = excluded.customer_class, \
                 intent_grade = excluded.intent_grade, value_tier = excluded.value_tier, rfv_score = excluded.rfv_score, \
                 rule_version = excluded.rule_version, reasons = excluded.reasons, computed_at = excluded.computed_at",
            );
            sql.query().execute(&mut *tx).await?;
        }
        for chunk in history.chunks(WRITE_CHUNK) {
            let mut sql = Sql::new(
                "INSERT INTO grade_history (id, patient_id, changed_at, old_grade, new_grade, changed) VALUES ",
            );
            for (n, (id, patient, old, new, changed)) in chunk.iter().enumerate() {
                sql.push(if n > 0 { ", (" } else { "(" });
                sql.bind(Value::Text(id.clone())).push(", ");
                sql.bind(Value::Text(patient.to_string())).push(", ");
                sql.bind(Value::Int(now)).push(", ");
                sql.bind(Value::Text(old.clone())).push(", ");
                sql.bind(Value::Text(new.clone())).push(", ");
                sql.bind(Value::Text(changed.clone())).push(")");
            }
            sql.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Recomputes up to `batch` dirty patients; their dirty mark is cleared unless the facts
    /// changed again meanwhile. Returns the counts (evaluated 0: nothing was dirty).
    pub async fn grade_dirty(&self, rules: &GradingRules, batch: usize, now: i64) -> Result<PassCounts, ApiError> {
        let marks = sqlx::query("SELECT patient_id, dirty FROM patient_facts WHERE dirty <> 0 ORDER BY dirty LIMIT $1")
            .bind(batch as i64)
            .fetch_all(&self.db.pool)
            .await?;
        if marks.is_empty() {
            return Ok(PassCounts::default());
        }
        let marks: Vec<(String, i64)> = marks
            .iter()
            .map(|r| Ok((col(r, "patient_id")?, col(r, "dirty")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let mut batch_sql = Sql::new(" AND id IN (");
        for (n, (id, _)) in marks.iter().enumerate() {
            if n > 0 {
                batch_sql.push(", ");
            }
            batch_sql.bind(Value::Text(id.clone()));
        }
        batch_sql.push(")");
        let candidates = self.candidates(&candidates_sql(&batch_sql, marks.len())).await?;
        let mut counts = self.grade_candidates(rules, &candidates, now).await?;
        counts.evaluated = counts.evaluated.max(1);
        for chunk in marks.chunks(WRITE_CHUNK) {
            let mut sql = Sql::new("UPDATE patient_facts SET dirty = 0 WHERE ");
            for (n, (id, mark)) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push(" OR ");
                }
                sql.push("(patient_id = ").bind(Value::Text(id.clone()));
                sql.push(" AND dirty = ").bind(Value::Int(*mark)).push(")");
            }
            sql.query().execute(&self.db.pool).await?;
        }
        Ok(counts)
    }

    /// Grades the next `batch` live patients after `after` (id order); returns the counts and
    /// the last id seen (`None`: the pass is complete).
    pub async fn grade_batch(
        &self,
        rules: &GradingRules,
        after: Option<&str>,
        batch: usize,
        now: i64,
    ) -> Result<(PassCounts, Option<String>), ApiError> {
        let mut batch_sql = Sql::default();
        if let Some(after) = after {
            batch_sql.push(" AND id > ").bind(Value::Text(after.to_string()));
        }
        let candidates = self.candidates(&candidates_sql(&batch_sql, batch)).await?;
        let last = (candidates.len() == batch)
            .then(|| candidates.last().map(|c| c.id.clone()))
            .flatten();
        let counts = self.grade_candidates(rules, &candidates, now).await?;
        Ok((counts, last))
    }

    /// Takes (or renews) the grading lease for `owner` until `until`; false when another
    /// replica holds it.
    pub async fn claim_grading_lease(&self, owner: &str, now: i64, until: i64) -> Result<bool, ApiError> {
        let n = sqlx::query(
            "UPDATE grade_pass SET lease_owner = $1, lease_until = $2 WHERE id = 1 AND (lease_until < $3 OR lease_owner = $1)",
        )
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn release_grading_lease(&self, owner: &str) -> Result<(), ApiError> {
        sqlx::query("UPDATE grade_pass SET lease_until = 0 WHERE id = 1 AND lease_owner = $1")
            .bind(owner)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    pub async fn pass_state(&self) -> Result<PassState, ApiError> {
        let row = sqlx::query("SELECT pass_day, last_id, finished FROM grade_pass WHERE id = 1")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(PassState {
            pass_day: col(&row, "pass_day")?,
            last_id: col(&row, "last_id")?,
            finished: col::<i64>(&row, "finished")? != 0,
        })
    }

    /// Records the nightly pass's progress (by the lease holder only).
    pub async fn save_pass(
        &self,
        owner: &str,
        state: &PassState,
        counts: PassCounts,
        fresh: bool,
    ) -> Result<(), ApiError> {
        let sql = if fresh {
            "UPDATE grade_pass SET pass_day = $1, last_id = $2, finished = $3, evaluated = $4, updated = $5, changed = $6 \
             WHERE id = 1 AND lease_owner = $7"
        } else {
            "UPDATE grade_pass SET pass_day = $1, last_id = $2, finished = $3, evaluated = evaluated + $4, \
             updated = updated + $5, changed = changed + $6 WHERE id = 1 AND lease_owner = $7"
        };
        sqlx::query(sql)
            .bind(&state.pass_day)
            .bind(state.last_id.clone())
            .bind(i64::from(state.finished))
            .bind(counts.evaluated)
            .bind(counts.updated)
            .bind(counts.changed)
            .bind(owner)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}
