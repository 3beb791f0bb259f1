//! `hcrm.patients.v1.GradingService`.

use super::segments::Customers;
use crate::domain::grading;
use crate::permissions::Perm;
use crate::store::parse_name;
use crate::store::patients::View;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::paging::PageSize;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::grading_service_server::GradingService;
use hcrm_proto::patients::*;
use tonic::{Request, Response, Status};

impl Customers {
    /// The id of a patient the caller may see (NOT_FOUND otherwise).
    async fn visible_patient(&self, field: &str, name: &str, scope: &Scope) -> Result<String, ApiError> {
        let id = parse_name(field, name, "patients")?.to_string();
        self.api.store.get_patient(&id, scope, View::Masked).await?;
        Ok(id)
    }
}

#[tonic::async_trait]
impl GradingService for Customers {
    #[tracing::instrument(skip_all)]
    async fn get_grade(&self, request: Request<GetGradeRequest>) -> Result<Response<Grade>, Status> {
        let (ctx, scope) = self.api.authorize(&request, Perm::GradeRead, "GetGrade").await?;
        let req = request.into_inner();
        let result = async {
            let id = self.visible_patient("patient", &req.patient, &scope).await?;
            let stored = self
                .api
                .store
                .grade_of(&id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("grade of {}", req.patient)))?;
            Ok(stored.to_grade(&id))
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_grade_history(
        &self,
        request: Request<GetGradeHistoryRequest>,
    ) -> Result<Response<GetGradeHistoryResponse>, Status> {
        let (ctx, scope) = self.api.authorize(&request, Perm::GradeRead, "GetGradeHistory").await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize { default: 20, max: 100 }.resolve("page_size", req.page_size)?;
            let id = self.visible_patient("patient", &req.patient, &scope).await?;
            let key = format!("grade-history\u{1f}{id}");
            let after: Option<(i64, String)> = self.api.pages.read("page_token", &key, &req.page_token)?;
            let rows = self.api.store.grade_history(&id, None, after, size).await?;
            let next_page_token = match rows.last() {
                Some((_, at, hid)) if rows.len() == size => self.api.pages.issue(&key, &(*at, hid.clone())),
                _ => String::new(),
            };
            Ok(GetGradeHistoryResponse {
                changes: rows.into_iter().map(|(c, _, _)| c).collect(),
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn explain_grade_change(
        &self,
        request: Request<ExplainGradeChangeRequest>,
    ) -> Result<Response<GradeChange>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::GradeRead, "ExplainGradeChange")
            .await?;
        let req = request.into_inner();
        let result = async {
            let at = match &req.at {
                Some(ts) => {
                    Some(hcrm_kit::time::from_timestamp(ts).ok_or_else(|| ApiError::invalid("at", "is out of range"))?)
                }
                None => None,
            };
            let id = self.visible_patient("patient", &req.patient, &scope).await?;
            let mut rows = self.api.store.grade_history(&id, at, None, 1).await?;
            if rows.is_empty() {
                return Err(ApiError::not_found(format!("a grade change of {}", req.patient)));
            }
            Ok(rows.remove(0).0)
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_grading_rules(
        &self,
        request: Request<GetGradingRulesRequest>,
    ) -> Result<Response<GradingRules>, Status> {
        let (ctx, _) = self.api.authorize(&request, Perm::GradeRead, "GetGradingRules").await?;
        let req = request.into_inner();
        let result = async {
            if req.version < 0 {
                return Err(ApiError::invalid("version", "must not be negative"));
            }
            self.api.store.grading_rules(req.version).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn publish_grading_rules(
        &self,
        request: Request<PublishGradingRulesRequest>,
    ) -> Result<Response<GradingRules>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::GradeRulesWrite, "PublishGradingRules")
            .await?;
        let req = request.into_inner();
        let result = async {
            let rules = req.rules.ok_or_else(|| ApiError::invalid("rules", "is required"))?;
            let mut v = Violations::new();
            grading::validate_rules(&rules, "rules", &mut v);
            v.finish()?;
            self.api.store.publish_rules(&ctx, rules, self.now()).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn recompute_grades(
        &self,
        request: Request<RecomputeGradesRequest>,
    ) -> Result<Response<RecomputeGradesResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::GradeRulesWrite, "RecomputeGrades")
            .await?;
        let result = async {
            // Its own task: a caller that gives up (deadline) does not stop the pass halfway.
            let grader = self.grader.clone();
            let (counts, rule_version) = tokio::spawn(async move { grader.recompute_all().await })
                .await
                .map_err(ApiError::internal)??;
            let detail = serde_json::json!({
                "evaluated": counts.evaluated, "updated": counts.updated,
                "changed": counts.changed, "rule_version": rule_version,
            });
            let entry = hcrm_kit::ledger::AuditEntry::new(&ctx, "grades.recompute", "grades", "", detail);
            self.api.store.audit_alone(entry).await?;
            Ok(RecomputeGradesResponse {
                evaluated: counts.evaluated,
                updated: counts.updated,
                changed: counts.changed,
                rule_version,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}
