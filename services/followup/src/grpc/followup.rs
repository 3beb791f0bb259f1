//! FollowupService.

use super::deliveries;
use super::{Api, request_key};
use crate::domain::appointment;
use crate::domain::calendar::from_date;
use crate::domain::chronic;
use crate::domain::template::{check_channel, is_code};
use crate::permissions::Perm;
use crate::store::parse_name;
use crate::store::plans::{NewPlan, Step};
use crate::store::stats::StatsQuery;
use crate::store::tasks::{TaskChange, TaskQuery};
use futures::StreamExt;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::feed::{Ledger, ServerStream};
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_kit::validate::Violations;
use hcrm_proto::followup::followup_service_server::FollowupService;
use hcrm_proto::followup::*;
use hcrm_proto::types::{Date, Event};
use tonic::{Request, Response, Status, Streaming};

/// Checks a free-text reason: at most 256 characters, required when `required`.
pub fn check_reason(field: &str, reason: &str, required: bool) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.text(field, reason, required, 256);
    v.finish()
}

fn day_field(v: &mut Violations, field: &str, date: Option<&Date>, required: bool) -> Option<i32> {
    match date {
        Some(d) => {
            let day = from_date(d);
            if day.is_none() {
                v.add(field, "must be a real date between 1900 and 2200");
            }
            day
        }
        None => {
            if required {
                v.add(field, "is required");
            }
            None
        }
    }
}

/// A scoped caller may only act within their department.
fn within(scope: &Scope, department: &str) -> Result<(), ApiError> {
    if scope.covers(department) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(format!(
            "department {department} is outside your scope"
        )))
    }
}

const MAX_STREAM_REJECTIONS: usize = 1000;

/// The canonical name of a status code, e.g. `INVALID_ARGUMENT`.
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[tonic::async_trait]
impl FollowupService for Api {
    #[tracing::instrument(skip_all)]
    async fn create_plan(&self, request: Request<CreatePlanRequest>) -> Result<Response<Plan>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PlanWrite, "CreatePlan").await?;
        let req = request.into_inner();
        let run = async {
            let plan = req.plan.unwrap_or_default();
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let patient_id = match parse_name("plan.patient", &plan.patient, "patients") {
                Ok(id) => id.to_string(),
                Err(_) => {
                    v.add("plan.patient", "is required: patients/{id}");
                    String::new()
                }
            };
            if !is_code(&plan.department) {
                v.add("plan.department", "is required: a department code");
            }
            v.text("plan.responsible", &plan.responsible, true, 64);
            let anchor_at = match &plan.anchor_time {
                Some(ts) => hcrm_kit::time::from_timestamp(ts).unwrap_or_else(|| {
                    v.add("plan.anchor_time", "is not a valid time");
                    0
                }),
                None => self.store.now(),
            };
            let has_template = !plan.template.is_empty();
            if has_template != req.steps.is_empty() {
                v.add("plan.template", "give a template or steps, not both and not neither");
            }
            if plan.diagnosis_codes.len() > 20 {
                v.add("plan.diagnosis_codes", "at most 20 codes");
            }
            for (i, code) in plan.diagnosis_codes.iter().enumerate() {
                if !crate::domain::template::is_icd_prefix(code) {
                    v.add(
                        format!("plan.diagnosis_codes[{i}]"),
                        "must be an ICD-10 code such as I10",
                    );
                }
            }
            if req.steps.len() > 50 {
                v.add("steps", "at most 50 steps");
            }
            let mut steps = Vec::new();
            for (i, s) in req.steps.iter().enumerate() {
                let f = format!("steps[{i}]");
                let due = day_field(&mut v, &format!("{f}.due_date"), s.due_date.as_ref(), true);
                if !(0..=90).contains(&s.window_days) {
                    v.add(format!("{f}.window_days"), "must be 0–90 days");
                }
                check_channel(&format!("{f}.channel"), s.channel, false, &mut v);
                v.text(&format!("{f}.purpose"), &s.purpose, false, 200);
                if let Some(due_day) = due {
                    steps.push(Step {
                        due_day,
                        window_days: s.window_days,
                        channel: s.channel,
                        purpose: s.purpose.clone(),
                        notify_patient: s.notify_patient,
                    });
                }
            }
            v.finish()?;
            within(&scope, &plan.department)?;
            let template = if has_template {
                let id = parse_name("plan.template", &plan.template, "templates")?;
                let t = self.store.get_template(id, 0).await?;
                if t.state == TemplateState::Archived as i32 {
                    return Err(ApiError::FailedPrecondition(format!("{} is archived", t.name)));
                }
                Some(t)
            } else {
                None
            };
            let contact = self
                .patients
                .contact(&patient_id)
                .await?
                .ok_or_else(|| ApiError::not_found(&plan.patient))?;
            if contact.deceased {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} is deceased; no follow-up plan",
                    plan.patient
                )));
            }
            if contact.do_not_contact {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} asked not to be contacted",
                    plan.patient
                )));
            }
            let new = NewPlan {
                patient_id,
                template,
                department: plan.department,
                responsible: plan.responsible,
                origin: PlanOrigin::Manual,
                anchor_at,
                source: String::new(),
                diagnoses: plan.diagnosis_codes,
                steps,
            };
            let key = request_key("CreatePlan", &ctx, &req.request_id);
            self.store.create_plan(&ctx, new, key.as_deref()).await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn get_plan(&self, request: Request<GetPlanRequest>) -> Result<Response<Plan>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PlanRead, "GetPlan").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "plans")?;
            self.store.get_plan(id, &scope).await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn list_plans(&self, request: Request<ListPlansRequest>) -> Result<Response<ListPlansResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PlanRead, "ListPlans").await?;
        let req = request.into_inner();
        let run = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let patient_id = if req.patient.is_empty() {
                ""
            } else {
                parse_name("patient", &req.patient, "patients")?
            };
            let state =
                PlanState::try_from(req.state).map_err(|_| ApiError::invalid("state", "is not a plan state"))?;
            let query = format!("plans:{patient_id}:{}:{}:{scope:?}", req.department, req.state);
            let before: String = super::position(&self.pages, &query, &req.page_token)?.unwrap_or_default();
            let plans = self
                .store
                .list_plans(&scope, patient_id, &req.department, state, &before, size + 1)
                .await?;
            Ok::<_, ApiError>(page(
                plans,
                size,
                |p| p.name.trim_start_matches("plans/").to_string(),
                &self.pages,
                &query,
            ))
        };
        let (plans, next_page_token) = run.await.map_err(|e| ctx.status(e))?;
        Ok(Response::new(ListPlansResponse { plans, next_page_token }))
    }

    async fn cancel_plan(&self, request: Request<CancelPlanRequest>) -> Result<Response<Plan>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PlanWrite, "CancelPlan").await?;
        let req = request.into_inner();
        let run = async {
            check_reason("reason", &req.reason, true)?;
            let id = parse_name("name", &req.name, "plans")?;
            self.store.cancel_plan(&ctx, id, &scope, &req.reason).await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn list_tasks(&self, request: Request<ListTasksRequest>) -> Result<Response<ListTasksResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::TaskRead, "ListTasks").await?;
        let req = request.into_inner();
        let run = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let view = TaskView::try_from(req.view).map_err(|_| ApiError::invalid("view", "is not a task view"))?;
            let mut v = Violations::new();
            match view {
                TaskView::Unspecified => v.add("view", "is required: MINE_TODAY, OVERDUE, DEPARTMENT or ALL"),
                TaskView::Department if req.department.is_empty() => {
                    v.add("department", "is required for the DEPARTMENT view")
                }
                TaskView::All if req.patient.is_empty() && req.plan.is_empty() => {
                    v.add("patient", "the ALL view needs a patient or a plan")
                }
                _ => {}
            }
            v.finish()?;
            let q = TaskQuery {
                view: req.view,
                department: req.department.clone(),
                patient_id: if req.patient.is_empty() {
                    String::new()
                } else {
                    parse_name("patient", &req.patient, "patients")?.to_string()
                },
                plan_id: if req.plan.is_empty() {
                    String::new()
                } else {
                    parse_name("plan", &req.plan, "plans")?.to_string()
                },
                subject: ctx.principal.subject.clone(),
            };
            let query = format!("tasks:{q:?}:{scope:?}");
            let after: Option<(i64, String)> = super::position(&self.pages, &query, &req.page_token)?;
            let tasks = self.store.list_tasks(&q, &scope, after, size + 1).await?;
            let position = |t: &Task| {
                let day = t.due_date.as_ref().and_then(from_date).unwrap_or_default() as i64;
                (day, t.name.trim_start_matches("tasks/").to_string())
            };
            Ok::<_, ApiError>(page(tasks, size, position, &self.pages, &query))
        };
        let (tasks, next_page_token) = run.await.map_err(|e| ctx.status(e))?;
        Ok(Response::new(ListTasksResponse { tasks, next_page_token }))
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Result<Response<Task>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::TaskRead, "GetTask").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "tasks")?;
            self.store.get_task(id, &scope).await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn reschedule_task(&self, request: Request<RescheduleTaskRequest>) -> Result<Response<Task>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::TaskWrite, "RescheduleTask").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            let day = day_field(&mut v, "due_date", req.due_date.as_ref(), true);
            v.text("reason", &req.reason, false, 256);
            if let Some(d) = day
                && d < self.store.today()
            {
                v.add("due_date", "must not be in the past");
            }
            v.finish()?;
            let id = parse_name("name", &req.name, "tasks")?;
            let change = TaskChange::Reschedule(day.unwrap_or_default());
            self.store
                .change_task(&ctx, id, &scope, &req.etag, change, &req.reason)
                .await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn reassign_task(&self, request: Request<ReassignTaskRequest>) -> Result<Response<Task>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::TaskWrite, "ReassignTask").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            v.text("assignee", &req.assignee, true, 64);
            v.text("reason", &req.reason, false, 256);
            v.finish()?;
            let id = parse_name("name", &req.name, "tasks")?;
            self.store
                .change_task(
                    &ctx,
                    id,
                    &scope,
                    &req.etag,
                    TaskChange::Reassign(req.assignee.clone()),
                    &req.reason,
                )
                .await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn cancel_task(&self, request: Request<CancelTaskRequest>) -> Result<Response<Task>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::TaskWrite, "CancelTask").await?;
        let req = request.into_inner();
        let run = async {
            check_reason("reason", &req.reason, true)?;
            let id = parse_name("name", &req.name, "tasks")?;
            self.store
                .change_task(&ctx, id, &scope, &req.etag, TaskChange::Cancel, &req.reason)
                .await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    #[tracing::instrument(skip_all)]
    async fn record_follow_up(
        &self,
        request: Request<RecordFollowUpRequest>,
    ) -> Result<Response<FollowUpRecord>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::Record, "RecordFollowUp").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut record = req.record.unwrap_or_default();
            check_channel("record.channel", record.channel, true, &mut v);
            match Outcome::try_from(record.outcome) {
                Ok(Outcome::Unspecified) => v.add("record.outcome", "is required"),
                Ok(_) => {}
                Err(_) => v.add("record.outcome", format!("{} is not an outcome", record.outcome)),
            }
            v.text("record.content", &record.content, false, 4000);
            v.text("record.health_guidance", &record.health_guidance, false, 2000);
            if record.satisfaction.len() > 6 {
                v.add("record.satisfaction", "at most one rating per dimension");
            }
            for (i, s) in record.satisfaction.iter().enumerate() {
                let f = format!("record.satisfaction[{i}]");
                match Dimension::try_from(s.dimension) {
                    Ok(Dimension::Unspecified) | Err(_) => {
                        v.add(format!("{f}.dimension"), "is required: a known dimension")
                    }
                    Ok(_) if record.satisfaction[..i].iter().any(|o| o.dimension == s.dimension) => {
                        v.add(format!("{f}.dimension"), "is rated twice")
                    }
                    Ok(_) => {}
                }
                if !(1..=5).contains(&s.rating) {
                    v.add(format!("{f}.rating"), "must be 1–5");
                }
            }
            if record.complaint_raised {
                v.text("record.complaint_summary", &record.complaint_summary, true, 1000);
            } else if !record.complaint_summary.is_empty() {
                v.add("record.complaint_summary", "only with complaint_raised");
            }
            if record.outcome != Outcome::Reached as i32 && !record.satisfaction.is_empty() {
                v.add("record.satisfaction", "only a reached patient rates satisfaction");
            }
            if let Some(ts) = &record.occur_time {
                match hcrm_kit::time::from_timestamp(ts) {
                    Some(at) if at > self.store.now() + 300_000_000 => {
                        v.add("record.occur_time", "must not be in the future")
                    }
                    Some(_) => {}
                    None => v.add("record.occur_time", "is not a valid time"),
                }
            }
            if let Some(wish) = record.appointment.as_mut() {
                appointment::normalize(wish);
                appointment::check("record.appointment", wish, self.store.today(), &mut v);
                if record.outcome != Outcome::Reached as i32 {
                    v.add("record.appointment", "only a reached patient asks for a booking");
                }
            }
            v.finish()?;
            let task_id = parse_name("task", &req.task, "tasks")?;
            let key = request_key("RecordFollowUp", &ctx, &req.request_id);
            self.store
                .record_follow_up(&ctx, task_id, &scope, record, key.as_deref(), self.max_attempts)
                .await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn list_follow_ups(
        &self,
        request: Request<ListFollowUpsRequest>,
    ) -> Result<Response<ListFollowUpsResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PlanRead, "ListFollowUps").await?;
        let req = request.into_inner();
        let run = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let id = |field: &str, name: &str, collection: &str| -> Result<String, ApiError> {
                Ok(if name.is_empty() {
                    String::new()
                } else {
                    parse_name(field, name, collection)?.to_string()
                })
            };
            let (patient, plan, task) = (
                id("patient", &req.patient, "patients")?,
                id("plan", &req.plan, "plans")?,
                id("task", &req.task, "tasks")?,
            );
            if patient.is_empty() && plan.is_empty() && task.is_empty() {
                return Err(ApiError::invalid("patient", "give a patient, a plan or a task"));
            }
            let query = format!("followups:{patient}:{plan}:{task}:{scope:?}");
            let after: Option<(i64, String)> = super::position(&self.pages, &query, &req.page_token)?;
            let rows = self
                .store
                .list_follow_ups(&scope, &patient, &plan, &task, after, size + 1)
                .await?;
            let (rows, token) = page(
                rows,
                size,
                |(r, at)| (*at, r.name.trim_start_matches("followUps/").to_string()),
                &self.pages,
                &query,
            );
            Ok((rows.into_iter().map(|(r, _)| r).collect(), token))
        };
        let (follow_ups, next_page_token) = run.await.map_err(|e| ctx.status(e))?;
        Ok(Response::new(ListFollowUpsResponse {
            follow_ups,
            next_page_token,
        }))
    }

    async fn record_readings(
        &self,
        request: Request<Streaming<RecordReadingsRequest>>,
    ) -> Result<Response<RecordReadingsResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::ReadingsWrite, "RecordReadings").await?;
        let mut stream = request.into_inner();
        let mut out = RecordReadingsResponse::default();
        let mut index = 0i64;
        while let Some(message) = stream.next().await {
            let message = message?;
            if message.readings.is_empty() || message.readings.len() > 500 {
                return Err(ctx.status(ApiError::invalid("readings", "1–500 readings per message")));
            }
            for input in message.readings {
                let result = async {
                    let reading = input
                        .reading
                        .ok_or_else(|| ApiError::invalid("reading", "is required"))?;
                    let mut v = Violations::new();
                    chronic::check_reading("reading", &reading, &mut v);
                    v.finish()?;
                    let plan_id = parse_name("plan", &input.plan, "plans")?;
                    self.store
                        .record_reading(&ctx.principal.subject, plan_id, &scope, &reading)
                        .await
                }
                .await;
                match result {
                    Ok(applied) if applied.duplicate => out.duplicates += 1,
                    Ok(_) => out.accepted += 1,
                    Err(ApiError::Internal(err)) => return Err(ctx.status(ApiError::Internal(err))),
                    Err(err) => {
                        out.rejected += 1;
                        if out.rejections.len() < MAX_STREAM_REJECTIONS {
                            out.rejections.push(ReadingResult {
                                index,
                                code: code_name(err.code()),
                                message: err.to_string(),
                            });
                        }
                    }
                }
                index += 1;
            }
        }
        Ok(Response::new(out))
    }

    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::DeliveriesRead, "ListDeliveries").await?;
        let req = request.into_inner();
        let run = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let state = DeliveryState::try_from(req.state)
                .map_err(|_| ApiError::invalid("state", "is not a delivery state"))?;
            let state = deliveries::state_filter(state);
            let query = format!(
                "deliveries:{}:{}",
                state.map_or("", hcrm_kit::outbox::State::as_str),
                req.kind
            );
            let before: Option<(i64, String)> = super::position(&self.pages, &query, &req.page_token)?;
            let rows = self.store.outbox.list(state, &req.kind, before, size + 1).await?;
            let (rows, token) = page(rows, size, |d| (d.created_at, d.id.clone()), &self.pages, &query);
            Ok::<_, ApiError>((rows.into_iter().map(deliveries::to_proto).collect(), token))
        };
        let (deliveries, next_page_token) = run.await.map_err(|e| ctx.status(e))?;
        Ok(Response::new(ListDeliveriesResponse {
            deliveries,
            next_page_token,
        }))
    }

    async fn get_statistics(&self, request: Request<GetStatisticsRequest>) -> Result<Response<Statistics>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::StatsRead, "GetStatistics").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            let today = self.store.today();
            let end = day_field(&mut v, "end_date", req.end_date.as_ref(), false).unwrap_or(today);
            let start = day_field(&mut v, "start_date", req.start_date.as_ref(), false).unwrap_or(end - 29);
            if start > end {
                v.add("start_date", "must not be after end_date");
            } else if end - start > 366 * 3 {
                v.add("start_date", "the range is at most three years");
            }
            if !req.department.is_empty() && !is_code(&req.department) {
                v.add("department", "must be a department code");
            }
            if !req.diagnosis_prefix.is_empty() && !crate::domain::template::is_icd_prefix(&req.diagnosis_prefix) {
                v.add("diagnosis_prefix", "must be an ICD-10 code prefix such as I10");
            }
            v.finish()?;
            let q = StatsQuery {
                start_day: start,
                end_day: end,
                department: req.department.clone(),
                diagnosis_prefix: req.diagnosis_prefix.clone(),
                min_group: self.min_group_size,
            };
            let s = &self.store;
            // Independent queries, run side by side on the pool.
            let effect = async {
                match q.diagnosis_prefix.is_empty() {
                    true => Ok(None),
                    false => s.effect(&q, &scope).await.map(Some),
                }
            };
            let (success, satisfaction, effect, exam_notices, overdue_tasks) = tokio::try_join!(
                s.success_tables(&q, &scope),
                s.satisfaction(&q, &scope),
                effect,
                s.exam_notice_sla(&q, &scope),
                s.overdue_count(&scope, &q.department),
            )?;
            Ok::<_, ApiError>(Statistics {
                start_date: Some(crate::domain::calendar::to_date(start)),
                end_date: Some(crate::domain::calendar::to_date(end)),
                follow_ups: success.follow_ups,
                success_by_channel: success.by_channel,
                success_by_hour: success.by_hour,
                success_by_department: success.by_department,
                success_by_staff: success.by_staff,
                satisfaction,
                effect,
                exam_notices: Some(exam_notices),
                min_group_size: q.min_group,
                overdue_tasks,
            })
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    type WatchEventsStream = ServerStream<Event>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::EventsWatch, "WatchEvents").await?;
        let req = request.into_inner();
        Ledger::check_watch(req.after_sequence, &req.types).map_err(|e| ctx.status(e))?;
        let stream = self
            .store
            .ledger
            .watch(ctx, req.after_sequence, req.types, self.stopping.clone());
        Ok(Response::new(stream))
    }
}
