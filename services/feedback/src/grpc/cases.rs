//! CaseService.

use super::{Api, actor, position, request_key, scoped_department};
use crate::domain::taxonomy;
use crate::permissions::Perm;
use crate::store::cases::{CaseQuery, Transition};
use crate::store::parse_name;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::feed::{Ledger, ServerStream};
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_kit::validate::Violations;
use hcrm_proto::feedback::case_service_server::CaseService;
use hcrm_proto::feedback::*;
use hcrm_proto::types::{ContactChannel, Event};
use tonic::{Request, Response, Status};

const MAX_ATTACHMENTS: usize = 20;

/// A department code: what staff type, kept short.
fn department(v: &mut Violations, field: &str, value: &str, required: bool) {
    v.text(field, value, required, 40);
}

fn subject(v: &mut Violations, field: &str, value: &str, required: bool) {
    v.text(field, value, required, 100);
}

fn check_case(api: &Api, c: &Case, v: &mut Violations) {
    v.enum_value::<CaseKind>("case.kind", c.kind, true);
    v.enum_value::<IntakeChannel>("case.channel", c.channel, true);
    v.enum_value::<Severity>("case.severity", c.severity, false);
    department(v, "case.department", &c.department, true);
    if let Err((field, msg)) = taxonomy::validate(&api.store.rules.categories, &c.category, &c.subcategory) {
        v.add(field, msg);
    }
    v.text("case.title", &c.title, true, 200);
    v.text("case.description", &c.description, true, 5000);
    v.text("case.contact_name", &c.contact_name, false, 100);
    if !c.contact_phone.is_empty() {
        v.phone("case.contact_phone", &c.contact_phone);
    }
    v.text("case.source", &c.source, false, 500);
    if c.attachments.len() > MAX_ATTACHMENTS {
        v.add("case.attachments", format!("at most {MAX_ATTACHMENTS}"));
    }
    for (i, a) in c.attachments.iter().enumerate() {
        if a.len() > 500 || !a.contains("://") {
            v.add(
                format!("case.attachments[{i}]"),
                "must be a URI of at most 500 characters",
            );
        }
    }
    if !c.patient.is_empty() && parse_name("case.patient", &c.patient, "patients").is_err() {
        v.add("case.patient", "must look like patients/{id}");
    }
}

fn req_view(req: &GetCaseRequest) -> CaseView {
    CaseView::try_from(req.view).unwrap_or_default()
}

/// NOT_FOUND for a case outside a scoped caller's department: it does not exist for them
/// (answered with what they asked for, not the case's name).
fn visible(scope: &Scope, c: Case, asked: &str) -> Result<Case, ApiError> {
    if scope.covers(&c.department) {
        Ok(c)
    } else {
        Err(ApiError::not_found(asked))
    }
}

fn check_transition(req: &TransitionCaseRequest) -> Result<Transition, ApiError> {
    let mut v = Violations::new();
    let action = CaseAction::try_from(req.action).unwrap_or_default();
    if action == CaseAction::Unspecified {
        v.add("action", "is required");
    }
    let needs_reason = matches!(action, CaseAction::Withdraw | CaseAction::Reject);
    v.text("reason", &req.reason, needs_reason, 500);
    match action {
        CaseAction::Assign => subject(&mut v, "assignee", &req.assignee, true),
        CaseAction::PlanActions => {
            v.text("root_cause", &req.root_cause, true, 2000);
            if req.corrective_actions.is_empty() || req.corrective_actions.len() > 20 {
                v.add("corrective_actions", "needs 1–20 actions");
            }
            for (i, a) in req.corrective_actions.iter().enumerate() {
                v.text(
                    &format!("corrective_actions[{i}].description"),
                    &a.description,
                    true,
                    1000,
                );
                subject(&mut v, &format!("corrective_actions[{i}].owner"), &a.owner, true);
                let real = a.due_date.as_ref().and_then(|d| {
                    chrono::NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)
                });
                if real.is_none() {
                    v.add(format!("corrective_actions[{i}].due_date"), "must be a real date");
                }
            }
        }
        CaseAction::Reply => match &req.reply {
            Some(r) => {
                v.text("reply.text", &r.text, true, 5000);
                if ContactChannel::try_from(r.channel).unwrap_or_default() == ContactChannel::Unspecified {
                    v.add("reply.channel", "is required");
                }
            }
            None => v.add("reply", "is required"),
        },
        CaseAction::Confirm => match &req.confirmation {
            Some(c) => {
                v.text("confirmation.note", &c.note, false, 2000);
                v.enum_value::<ConfirmationSource>("confirmation.source", c.source, false);
            }
            None => v.add("confirmation", "is required"),
        },
        _ => {}
    }
    v.finish()?;
    Ok(Transition {
        action,
        reason: req.reason.clone(),
        assignee: req.assignee.clone(),
        root_cause: req.root_cause.clone(),
        corrective_actions: req.corrective_actions.clone(),
        reply: req.reply.clone(),
        confirmation: req.confirmation.clone(),
        etag: req.etag.clone(),
    })
}

#[tonic::async_trait]
impl CaseService for Api {
    #[tracing::instrument(skip_all)]
    async fn create_case(&self, request: Request<CreateCaseRequest>) -> Result<Response<Case>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::CaseCreate, "CreateCase").await?;
        let req = request.into_inner();
        let run = async {
            let c = req.case.ok_or_else(|| ApiError::invalid("case", "is required"))?;
            let mut v = Violations::new();
            check_case(self, &c, &mut v);
            subject(&mut v, "owner", &req.owner, false);
            v.request_id("request_id", &req.request_id);
            v.finish()?;
            if !scope.covers(&c.department) {
                return Err(ApiError::PermissionDenied(format!(
                    "department {} is outside your scope",
                    c.department
                )));
            }
            // A wrong patient reference is the caller's mistake, said now rather than lost later.
            if !c.patient.is_empty() {
                let id = parse_name("case.patient", &c.patient, "patients")?;
                if self.patients.contact(id).await?.is_none() {
                    return Err(ApiError::invalid(
                        "case.patient",
                        format!("{} does not exist", c.patient),
                    ));
                }
            }
            let owner = if req.owner.is_empty() {
                ctx.principal.subject.clone()
            } else {
                req.owner.clone()
            };
            let key = request_key("CreateCase", &ctx, &req.request_id);
            self.store.create_case(&actor(&ctx), c, &owner, key.as_deref()).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_case(&self, request: Request<GetCaseRequest>) -> Result<Response<Case>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::CaseRead, "GetCase").await?;
        let full = req_view(request.get_ref()) == CaseView::Full;
        // The complainant's contact in clear is for staff who work cases, where they work them.
        let scope = if full {
            self.authorize(&request, Perm::CaseWork, "GetCase(FULL)").await?.1
        } else {
            scope
        };
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            v.enum_value::<CaseView>("view", req.view, false);
            v.text("access_reason", &req.access_reason, full, 256);
            v.finish()?;
            let c = if req.name.starts_with("cases/") {
                self.store.get_case(parse_name("name", &req.name, "cases")?).await?
            } else if req.name.len() == 9 && req.name.as_bytes()[4] == b'-' {
                self.store.get_case_by_number(&req.name).await?
            } else {
                return Err(ApiError::invalid(
                    "name",
                    "must be cases/{id} or a confirmation number like FK7Q-2M9D",
                ));
            };
            let c = visible(&scope, c, &req.name)?;
            if !full {
                return Ok(c);
            }
            let id = c.name.trim_start_matches("cases/").to_string();
            self.store.get_case_full(&actor(&ctx), &id, &req.access_reason).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_cases(&self, request: Request<ListCasesRequest>) -> Result<Response<ListCasesResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::CaseRead, "ListCases").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            for (i, s) in req.states.iter().enumerate() {
                v.enum_value::<CaseState>(&format!("states[{i}]"), *s, true);
            }
            department(&mut v, "department", &req.department, false);
            subject(&mut v, "owner", &req.owner, false);
            v.enum_value::<CaseKind>("kind", req.kind, false);
            v.enum_value::<SlaState>("sla_state", req.sla_state, false);
            if !req.patient.is_empty() && parse_name("patient", &req.patient, "patients").is_err() {
                v.add("patient", "must look like patients/{id}");
            }
            v.finish()?;
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let department = match scoped_department(&scope) {
                Some(own) if !req.department.is_empty() && req.department != own => {
                    return Err(ApiError::PermissionDenied(format!(
                        "department {} is outside your scope",
                        req.department
                    )));
                }
                Some(own) => Some(own),
                None => (!req.department.is_empty()).then(|| req.department.clone()),
            };
            let q = CaseQuery {
                states: req.states.iter().filter_map(|s| CaseState::try_from(*s).ok()).collect(),
                department,
                owner: req.owner.clone(),
                patient_id: req.patient.trim_start_matches("patients/").to_string(),
                kind: CaseKind::try_from(req.kind).unwrap_or_default(),
                sla_state: SlaState::try_from(req.sla_state).unwrap_or_default(),
                open_only: req.open_only,
            };
            let query = format!("cases:{q:?}");
            let before: Option<(i64, String)> = position(&self.pages, &query, &req.page_token)?;
            let rows = self.store.list_cases(&q, before, size + 1).await?;
            let (rows, next_page_token) = page(
                rows,
                size,
                |(c, at)| (*at, c.name.trim_start_matches("cases/").to_string()),
                &self.pages,
                &query,
            );
            Ok(ListCasesResponse {
                cases: rows.into_iter().map(|(c, _)| c).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn transition_case(&self, request: Request<TransitionCaseRequest>) -> Result<Response<Case>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::CaseWork, "TransitionCase").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "cases")?;
            let t = check_transition(&req)?;
            self.store.transition(&actor(&ctx), id, t, |d| scope.covers(d)).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn hand_over_case(&self, request: Request<HandOverCaseRequest>) -> Result<Response<Case>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::CaseWork, "HandOverCase").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "cases")?;
            let mut v = Violations::new();
            subject(&mut v, "new_owner", &req.new_owner, true);
            v.text("reason", &req.reason, true, 500);
            v.finish()?;
            self.store
                .hand_over(&actor(&ctx), id, &req.new_owner, &req.reason, &req.etag, |d| {
                    scope.covers(d)
                })
                .await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn link_cases(&self, request: Request<LinkCasesRequest>) -> Result<Response<Case>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::CaseWork, "LinkCases").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            let primary = parse_name("name", &req.name, "cases");
            let duplicate = parse_name("duplicate", &req.duplicate, "cases");
            for (field, r) in [("name", &primary), ("duplicate", &duplicate)] {
                if r.is_err() {
                    v.add(field, "must look like cases/{id}");
                }
            }
            v.text("reason", &req.reason, false, 500);
            v.finish()?;
            self.store
                .link(&actor(&ctx), primary?, duplicate?, &req.reason, |d| scope.covers(d))
                .await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_case_history(
        &self,
        request: Request<ListCaseHistoryRequest>,
    ) -> Result<Response<ListCaseHistoryResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::CaseRead, "ListCaseHistory").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "cases")?;
            visible(&scope, self.store.get_case(id).await?, &req.name)?;
            Ok(ListCaseHistoryResponse {
                entries: self.store.case_history(id).await?,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_taxonomy(&self, request: Request<GetTaxonomyRequest>) -> Result<Response<Taxonomy>, Status> {
        self.authorize(&request, Perm::TaxonomyRead, "GetTaxonomy").await?;
        Ok(Response::new(taxonomy::taxonomy(&self.store.rules.categories)))
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
