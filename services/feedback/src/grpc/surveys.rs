//! SurveyService.

use super::{Api, actor, position, request_key};
use crate::domain::questionnaire;
use crate::permissions::Perm;
use crate::store::invitations::{MAX_TOKEN_LEN, NewInvitations};
use crate::store::{decode, parse_name};
use hcrm_kit::ApiError;
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_kit::validate::Violations;
use hcrm_proto::feedback::survey_service_server::SurveyService;
use hcrm_proto::feedback::*;
use tonic::{Request, Response, Status};

const MAX_INVITATIONS: usize = 1000;

fn checked(q: Option<Questionnaire>) -> Result<Questionnaire, ApiError> {
    let q = q.ok_or_else(|| ApiError::invalid("questionnaire", "is required"))?;
    let mut v = Violations::new();
    questionnaire::check(&q, &mut v);
    v.finish()?;
    Ok(q)
}

/// A token as it may arrive from a link: anything else cannot be one of ours.
fn check_token(token: &str) -> Result<(), ApiError> {
    if token.is_empty() {
        return Err(ApiError::invalid("token", "is required"));
    }
    if token.len() > MAX_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ApiError::not_found("invitation"));
    }
    Ok(())
}

#[tonic::async_trait]
impl SurveyService for Api {
    async fn create_questionnaire(
        &self,
        request: Request<CreateQuestionnaireRequest>,
    ) -> Result<Response<Questionnaire>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::SurveyDesign, "CreateQuestionnaire")
            .await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            v.finish()?;
            let q = checked(req.questionnaire)?;
            let key = request_key("CreateQuestionnaire", &ctx, &req.request_id);
            self.store.create_questionnaire(&actor(&ctx), q, key.as_deref()).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_questionnaire(
        &self,
        request: Request<GetQuestionnaireRequest>,
    ) -> Result<Response<Questionnaire>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::SurveyRead, "GetQuestionnaire").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "questionnaires")?;
            if req.version < 0 {
                return Err(ApiError::invalid("version", "must not be negative"));
            }
            self.store.get_questionnaire(id, req.version as i64).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_questionnaires(
        &self,
        request: Request<ListQuestionnairesRequest>,
    ) -> Result<Response<ListQuestionnairesResponse>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::SurveyRead, "ListQuestionnaires").await?;
        let req = request.into_inner();
        let run = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = "questionnaires";
            let after: String = position(&self.pages, query, &req.page_token)?.unwrap_or_default();
            let items = self.store.list_questionnaires(&after, size + 1).await?;
            let (questionnaires, next_page_token) = page(
                items,
                size,
                |q| q.name.trim_start_matches("questionnaires/").to_string(),
                &self.pages,
                query,
            );
            Ok(ListQuestionnairesResponse {
                questionnaires,
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn update_questionnaire(
        &self,
        request: Request<UpdateQuestionnaireRequest>,
    ) -> Result<Response<Questionnaire>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::SurveyDesign, "UpdateQuestionnaire")
            .await?;
        let req = request.into_inner();
        let run = async {
            let name = req.questionnaire.as_ref().map(|q| q.name.clone()).unwrap_or_default();
            let id = parse_name("questionnaire.name", &name, "questionnaires")?.to_string();
            let q = checked(req.questionnaire)?;
            self.store.update_questionnaire(&actor(&ctx), &id, q, &req.etag).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn publish_questionnaire(
        &self,
        request: Request<PublishQuestionnaireRequest>,
    ) -> Result<Response<Questionnaire>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::SurveyDesign, "PublishQuestionnaire")
            .await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "questionnaires")?;
            self.store.publish_questionnaire(&actor(&ctx), id, &req.etag).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn create_invitations(
        &self,
        request: Request<CreateInvitationsRequest>,
    ) -> Result<Response<CreateInvitationsResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::Invite, "CreateInvitations").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            let questionnaire = parse_name("questionnaire", &req.questionnaire, "questionnaires");
            if let Err(ApiError::InvalidArgument(errs)) = &questionnaire {
                for e in errs {
                    v.add(e.field.clone(), e.description.clone());
                }
            }
            if req.patients.is_empty() || req.patients.len() > MAX_INVITATIONS {
                v.add("patients", format!("needs 1–{MAX_INVITATIONS} patients"));
            }
            let mut ids = Vec::with_capacity(req.patients.len());
            let mut seen = std::collections::HashSet::new();
            for (i, p) in req.patients.iter().enumerate() {
                match parse_name(&format!("patients[{i}]"), p, "patients") {
                    Ok(id) if seen.insert(id) => ids.push(id.to_string()),
                    Ok(_) => v.add(format!("patients[{i}]"), "is listed twice"),
                    Err(_) => v.add(format!("patients[{i}]"), "must look like patients/{id}"),
                }
            }
            v.text("department", &req.department, true, 40);
            if !(0..=365).contains(&req.expire_days) {
                v.add("expire_days", "must be 0 (the default) or 1–365");
            }
            v.request_id("request_id", &req.request_id);
            v.finish()?;
            if !scope.covers(&req.department) {
                return Err(ApiError::PermissionDenied(format!(
                    "department {} is outside your scope",
                    req.department
                )));
            }
            let invitations = self
                .store
                .create_invitations(
                    &actor(&ctx),
                    NewInvitations {
                        questionnaire_id: questionnaire?.to_string(),
                        patient_ids: ids,
                        department: req.department.clone(),
                        expire_days: req.expire_days,
                        send: req.send,
                        key: request_key("CreateInvitations", &ctx, &req.request_id),
                    },
                )
                .await?;
            Ok(CreateInvitationsResponse { invitations })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_invitations(
        &self,
        request: Request<ListInvitationsRequest>,
    ) -> Result<Response<ListInvitationsResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::SurveyRead, "ListInvitations").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("questionnaire", &req.questionnaire, "questionnaires")?;
            let mut v = Violations::new();
            v.enum_value::<InvitationState>("state", req.state, false);
            v.finish()?;
            let state = InvitationState::try_from(req.state).unwrap_or_default();
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("invitations:{id}:{}", req.state);
            let before: Option<(i64, String)> = position(&self.pages, &query, &req.page_token)?;
            // A scoped reader sees only their department's invitations.
            let department = super::scoped_department(&scope);
            let rows = self
                .store
                .list_invitations(id, state, department.as_deref(), before, size + 1)
                .await?;
            let (rows, next_page_token) = page(
                rows,
                size,
                |(i, at)| (*at, i.name.trim_start_matches("invitations/").to_string()),
                &self.pages,
                &query,
            );
            Ok(ListInvitationsResponse {
                invitations: rows.into_iter().map(|(i, _)| i).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn open_invitation(
        &self,
        request: Request<OpenInvitationRequest>,
    ) -> Result<Response<InvitationView>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::Answer, "OpenInvitation").await?;
        let req = request.into_inner();
        let run = async {
            check_token(&req.token)?;
            let (inv, body) = self.store.open_invitation(&req.token).await?;
            let mut q: Questionnaire = decode(&body)?;
            q.name = inv.questionnaire.clone();
            q.version = inv.version;
            q.state = QuestionnaireState::Published as i32;
            Ok(InvitationView {
                questionnaire: Some(q),
                department: inv.department,
                expire_time: inv.expire_time,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn submit_survey_response(
        &self,
        request: Request<SubmitSurveyResponseRequest>,
    ) -> Result<Response<SurveyResponse>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::Answer, "SubmitSurveyResponse").await?;
        let req = request.into_inner();
        let run = async {
            check_token(&req.token)?;
            if req.answers.len() > questionnaire::MAX_QUESTIONS {
                return Err(ApiError::invalid(
                    "answers",
                    format!("at most {} answers", questionnaire::MAX_QUESTIONS),
                ));
            }
            self.store.submit_response(&req.token, req.answers).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn record_counter_rating(
        &self,
        request: Request<RecordCounterRatingRequest>,
    ) -> Result<Response<CounterRating>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::CounterRate, "RecordCounterRating")
            .await?;
        let req = request.into_inner();
        let run = async {
            let r = req.rating.ok_or_else(|| ApiError::invalid("rating", "is required"))?;
            let mut v = Violations::new();
            v.text("rating.service_point", &r.service_point, true, 100);
            v.text("rating.department", &r.department, true, 40);
            v.text("rating.staff", &r.staff, false, 100);
            v.text("rating.comment", &r.comment, false, 1000);
            if !(1..=5).contains(&r.rating) {
                v.add("rating.rating", "must be 1–5");
            }
            v.request_id("request_id", &req.request_id);
            v.finish()?;
            if !scope.covers(&r.department) {
                return Err(ApiError::PermissionDenied(format!(
                    "department {} is outside your scope",
                    r.department
                )));
            }
            let key = request_key("RecordCounterRating", &ctx, &req.request_id);
            self.store.record_counter_rating(&actor(&ctx), r, key.as_deref()).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }
}
