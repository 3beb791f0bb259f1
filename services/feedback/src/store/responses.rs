//! Survey answers and counter ratings. An answer is checked against the version its invitation
//! was for, stored with one `ratings` row per rated question, and — when a rating is at or
//! below the threshold — opens a case for the department, all in one transaction with the
//! token marked used.

use super::Store;
use super::cases::Actor;
use super::invitations::token_hash;
use crate::domain::questionnaire::{Scored, check_answers};
use hcrm_kit::ApiError;
use hcrm_kit::db::{Tx, col};
use hcrm_kit::ledger::NewEvent;
use hcrm_kit::outbox::NewDelivery;
use hcrm_kit::time::{rfc3339, to_timestamp};
use hcrm_proto::feedback::{
    Answer, Case, CaseKind, CounterRating, Dimension, IntakeChannel, Questionnaire, Severity, SurveyResponse,
};
use prost::Message;
use serde_json::json;

/// The taxonomy category a low rating of a dimension is filed under.
fn category_of(d: Dimension) -> &'static str {
    match d {
        Dimension::Attitude | Dimension::CounterService => "attitude",
        Dimension::ProfessionalSkill => "medical_quality",
        Dimension::Communication => "communication",
        Dimension::Responsiveness => "waiting",
        Dimension::ProblemSolving => "process",
        Dimension::Environment => "environment",
        Dimension::Overall | Dimension::Unspecified => "other",
    }
}

impl Store {
    /// A configured category for a dimension: its usual one when the taxonomy has it, else the
    /// taxonomy's last (by convention "other").
    fn category_for(&self, d: Dimension) -> String {
        let wanted = category_of(d);
        let cats = &self.rules.categories;
        if cats.iter().any(|c| c.code == wanted) {
            wanted.to_string()
        } else {
            cats.last().map(|c| c.code.clone()).unwrap_or_default()
        }
    }

    async fn insert_ratings(
        &self,
        tx: &mut Tx,
        source: &str,
        month: i32,
        department: &str,
        ratings: &[(Dimension, i32)],
    ) -> Result<(), ApiError> {
        let mut seen = std::collections::HashSet::new();
        for (i, (dimension, score)) in ratings.iter().enumerate() {
            sqlx::query(
                "INSERT INTO ratings (source, month, department, dimension, score, per_dimension, per_answer) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(source)
            .bind(month as i64)
            .bind(department)
            .bind(*dimension as i64)
            .bind(*score as i64)
            .bind(i64::from(seen.insert(*dimension as i32)))
            .bind(i64::from(i == 0))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Opens the case of a low rating inside `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn low_rating_case(
        &self,
        tx: &mut Tx,
        source: &str,
        patient: &str,
        department: &str,
        dimension: Dimension,
        title: String,
        description: String,
        now: i64,
    ) -> Result<String, ApiError> {
        let case = Case {
            kind: CaseKind::Complaint as i32,
            channel: IntakeChannel::Survey as i32,
            patient: patient.to_string(),
            department: department.to_string(),
            category: self.category_for(dimension),
            severity: Severity::Medium as i32,
            title,
            description,
            source: source.to_string(),
            ..Default::default()
        };
        let id = hcrm_kit::new_id();
        let owner = self.rules.intake_owner.clone();
        let c = self.insert_case(tx, &Actor::service(), &id, case, &owner, now).await?;
        Ok(c.name)
    }

    /// Submits the answers of a token.
    pub async fn submit_response(&self, token: &str, answers: Vec<Answer>) -> Result<SurveyResponse, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT * FROM invitations WHERE token_hash = $1{}", self.for_update());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash(token))
            .fetch_optional(&mut *tx)
            .await?;
        let row = self.usable(row)?;
        let invitation_id: String = col(&row, "id")?;
        let questionnaire_id: String = col(&row, "questionnaire_id")?;
        let version: i64 = col(&row, "version")?;
        let department: String = col(&row, "department")?;
        let patient_id: String = col(&row, "patient_id")?;
        let body: Vec<u8> = {
            let r = sqlx::query("SELECT body FROM questionnaire_versions WHERE questionnaire_id = $1 AND version = $2")
                .bind(&questionnaire_id)
                .bind(version)
                .fetch_one(&mut *tx)
                .await?;
            col(&r, "body")?
        };
        let q: Questionnaire = super::decode(&body)?;
        let Scored { ratings, score, lowest } = check_answers(&q, &answers)?;
        let now = self.now();
        let id = hcrm_kit::new_id();
        let name = format!("responses/{id}");
        let month = self.cal.month_of(now);
        let threshold = if q.case_threshold > 0 {
            q.case_threshold
        } else {
            self.rules.case_threshold
        };
        let patient = format!("patients/{patient_id}");
        let mut case_name = String::new();
        if let Some((low, question_id)) = lowest.filter(|(low, _)| *low <= threshold) {
            let question = crate::domain::questionnaire::questions(&q)
                .find(|(_, x)| x.id == question_id)
                .map(|(_, x)| x.clone())
                .unwrap_or_default();
            let dimension = Dimension::try_from(question.dimension).unwrap_or_default();
            let text = question.text.clone().unwrap_or_default();
            let label = if text.zh.is_empty() { text.en } else { text.zh };
            // Free-text answers tell the case handler what went wrong, in the patient's words.
            let comments: Vec<String> = answers
                .iter()
                .filter(|a| !a.text.is_empty())
                .map(|a| format!("{}: {}", a.question, a.text))
                .collect();
            case_name = self
                .low_rating_case(
                    &mut tx,
                    &name,
                    &patient,
                    &department,
                    dimension,
                    format!("问卷低分 Low survey rating: {label} = {low}"),
                    format!(
                        "Rated {low} (threshold {threshold}) in {name}.\n{}",
                        comments.join("\n")
                    ),
                    now,
                )
                .await?;
        }
        let response = SurveyResponse {
            name: name.clone(),
            questionnaire: format!("questionnaires/{questionnaire_id}"),
            version: version as i32,
            department: department.clone(),
            answers,
            score: score.map(crate::domain::report::round1).unwrap_or_default(),
            case: case_name.clone(),
            submit_time: Some(to_timestamp(now)),
        };
        sqlx::query(
            "INSERT INTO responses (id, invitation_id, questionnaire_id, version, department, month, score, case_id, body, submitted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(&invitation_id)
        .bind(&questionnaire_id)
        .bind(version)
        .bind(&department)
        .bind(month as i64)
        .bind(score)
        .bind(&case_name)
        .bind(response.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.insert_ratings(&mut tx, &name, month, &department, &ratings)
            .await?;
        sqlx::query("UPDATE invitations SET answered = 1 WHERE id = $1")
            .bind(&invitation_id)
            .execute(&mut *tx)
            .await?;
        self.insert_comments(&mut tx, &id, &name, &department, month, &response.answers, now)
            .await?;
        self.outbox
            .enqueue(
                &mut tx,
                NewDelivery {
                    id: format!("timeline-{name}"),
                    kind: "patients.timeline",
                    recipient: patient.clone(),
                    department: department.clone(),
                    reference: name.clone(),
                    message: json!({
                        "kind": "INTERACTION_KIND_SURVEY_ANSWER",
                        "department": department,
                        "occur_time": rfc3339(now),
                        "summary": format!("问卷 survey answered, score {}", response.score),
                        "source_system": "hcrm-feedback",
                        "external_id": name,
                        "details": { "response": name, "questionnaire": response.questionnaire, "version": version, "case": case_name },
                    }),
                    not_before: now,
                    source_at: Some(now),
                },
            )
            .await?;
        let event = NewEvent {
            kind: "feedback.survey_answered",
            resource: name.clone(),
            payload: json!({
                "response": name, "questionnaire": response.questionnaire, "version": version,
                "department": department, "score": score, "case": case_name,
                "free_text": response.answers.iter().filter(|a| !a.text.is_empty()).count(),
            }),
        };
        hcrm_kit::ledger::append(&mut tx, now, &[], &[event]).await?;
        tx.commit().await?;
        self.committed(true);
        Ok(response)
    }

    /// Keeps the response's free-text answers for their sentiment and, when the opinion service
    /// is configured, queues their analysis (the outbox retries while opinion is away).
    #[allow(clippy::too_many_arguments)]
    async fn insert_comments(
        &self,
        tx: &mut hcrm_kit::db::Tx,
        id: &str,
        name: &str,
        department: &str,
        month: i32,
        answers: &[Answer],
        now: i64,
    ) -> Result<(), ApiError> {
        let texts: Vec<&Answer> = answers.iter().filter(|a| !a.text.trim().is_empty()).collect();
        for a in &texts {
            sqlx::query(
                "INSERT INTO comments (response_id, question_id, department, month, label, score, topics, analyzed_at) \
                 VALUES ($1, $2, $3, $4, 0, NULL, '', NULL)",
            )
            .bind(id)
            .bind(&a.question)
            .bind(department)
            .bind(month as i64)
            .execute(&mut **tx)
            .await?;
        }
        if !texts.is_empty() && self.rules.analyze_comments {
            self.outbox
                .enqueue(
                    tx,
                    NewDelivery {
                        id: format!("sentiment-{name}"),
                        kind: "feedback.comment_sentiment",
                        recipient: "service:opinion".into(),
                        department: department.to_string(),
                        reference: name.to_string(),
                        message: json!({ "response": name, "comments": texts.len() }),
                        not_before: now,
                        source_at: Some(now),
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// The response's comments not scored yet: (question id, text).
    pub async fn pending_comments(&self, response_id: &str) -> Result<Vec<(String, String)>, ApiError> {
        let Some(row) = sqlx::query("SELECT body FROM responses WHERE id = $1")
            .bind(response_id)
            .fetch_optional(&self.db.pool)
            .await?
        else {
            return Ok(vec![]);
        };
        let response: SurveyResponse = super::decode(&col::<Vec<u8>>(&row, "body")?)?;
        let pending: Vec<String> = sqlx::query("SELECT question_id FROM comments WHERE response_id = $1 AND label = 0")
            .bind(response_id)
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(|r| col::<String>(r, "question_id"))
            .collect::<Result<_, _>>()?;
        Ok(response
            .answers
            .into_iter()
            .filter(|a| pending.contains(&a.question))
            .map(|a| (a.question, a.text))
            .collect())
    }

    /// Stores a comment's sentiment (label 1 negative, 2 neutral, 3 positive).
    pub async fn record_comment(
        &self,
        response_id: &str,
        question_id: &str,
        label: i32,
        score: f32,
        topics: &[String],
    ) -> Result<(), ApiError> {
        sqlx::query("UPDATE comments SET label = $1, score = $2, topics = $3, analyzed_at = $4 WHERE response_id = $5 AND question_id = $6")
            .bind(i64::from(label))
            .bind(f64::from(score))
            .bind(topics.join(","))
            .bind(self.now())
            .bind(response_id)
            .bind(question_id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Records a counter rating; a low one with a comment opens a case like a low survey answer.
    pub async fn record_counter_rating(
        &self,
        actor: &Actor,
        mut r: CounterRating,
        key: Option<&str>,
    ) -> Result<CounterRating, ApiError> {
        let id = hcrm_kit::new_id();
        let name = format!("counter-ratings/{id}");
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = self.claim_request(&mut tx, key, &name).await? {
            drop(tx);
            return self
                .get_counter_rating(super::parse_name("name", &existing, "counter-ratings")?)
                .await;
        }
        let now = self.now();
        sqlx::query(
            "INSERT INTO counter_ratings (id, service_point, department, staff, rating, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&r.service_point)
        .bind(&r.department)
        .bind(&r.staff)
        .bind(r.rating as i64)
        .bind(&r.comment)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let month = self.cal.month_of(now);
        self.insert_ratings(
            &mut tx,
            &name,
            month,
            &r.department,
            &[(Dimension::CounterService, r.rating)],
        )
        .await?;
        if r.rating <= self.rules.case_threshold && !r.comment.trim().is_empty() {
            self.low_rating_case(
                &mut tx,
                &name,
                "",
                &r.department,
                Dimension::CounterService,
                format!("窗口低分 Low counter rating: {} = {}", r.service_point, r.rating),
                r.comment.clone(),
                now,
            )
            .await?;
        }
        let audit = actor.audit_entry(
            "counter_rating.record",
            &name,
            "",
            json!({ "service_point": r.service_point, "rating": r.rating }),
        );
        hcrm_kit::ledger::append(&mut tx, now, &[audit], &[]).await?;
        tx.commit().await?;
        self.committed(false);
        r.name = name;
        r.create_time = Some(to_timestamp(now));
        Ok(r)
    }

    pub async fn get_counter_rating(&self, id: &str) -> Result<CounterRating, ApiError> {
        let r = sqlx::query("SELECT * FROM counter_ratings WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("counter-ratings/{id}")))?;
        Ok(CounterRating {
            name: format!("counter-ratings/{id}"),
            service_point: col(&r, "service_point")?,
            department: col(&r, "department")?,
            staff: col(&r, "staff")?,
            rating: col::<i64>(&r, "rating")? as i32,
            comment: col(&r, "comment")?,
            create_time: Some(to_timestamp(col(&r, "created_at")?)),
        })
    }
}
