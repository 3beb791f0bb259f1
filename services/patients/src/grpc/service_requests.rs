//! `hcrm.patients.v1.ServiceRequestService`.

use super::consultations::time_range;
use super::{Api, check_reason, mask_paths, request_key};
use crate::domain::service_request::{self as rules, SlaTable, check_owner};
use crate::permissions::Perm;
use crate::store::parse_name;
use crate::store::service_requests::{Change, TypeFigures, WorklistQuery};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::clock::Clock;
use hcrm_kit::paging::PageSize;
use hcrm_kit::request::RequestContext;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::service_request_service_server::ServiceRequestService;
use hcrm_proto::patients::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The service request API: the shared state plus the SLA table and the clock.
#[derive(Clone)]
pub struct ServiceRequests {
    pub api: Api,
    pub sla: Arc<SlaTable>,
    pub clock: Clock,
}

fn request_id(field: &str, name: &str) -> Result<String, ApiError> {
    parse_name(field, name, "service_requests").map(str::to_string)
}

fn require_etag(etag: &str) -> Result<(), ApiError> {
    if etag.is_empty() {
        return Err(ApiError::invalid("etag", "is required"));
    }
    Ok(())
}

impl ServiceRequests {
    async fn change(
        &self,
        ctx: &RequestContext,
        scope: &Scope,
        id: &str,
        etag: &str,
        change: Change,
    ) -> Result<ServiceRequest, ApiError> {
        self.api
            .store
            .change_service_request(ctx, id, scope, etag, change, &self.sla, self.clock.now())
            .await
    }
}

#[tonic::async_trait]
impl ServiceRequestService for ServiceRequests {
    #[tracing::instrument(skip_all)]
    async fn create_service_request(
        &self,
        request: Request<CreateServiceRequestRequest>,
    ) -> Result<Response<ServiceRequest>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestWrite, "CreateServiceRequest")
            .await?;
        let req = request.into_inner();
        let result = async {
            let now = self.clock.now();
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut r = req.service_request.unwrap_or_default();
            rules::normalize(&mut r);
            rules::validate(&r, "service_request", now, &mut v);
            v.finish()?;
            let key = request_key("CreateServiceRequest", &ctx, &req.request_id);
            self.api
                .store
                .create_service_request(&ctx, r, &scope, key, &self.sla, now)
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_service_request(
        &self,
        request: Request<GetServiceRequestRequest>,
    ) -> Result<Response<ServiceRequest>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestRead, "GetServiceRequest")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = request_id("name", &req.name)?;
            self.api
                .store
                .get_service_request(&id, &scope, &self.sla, self.clock.now())
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_service_requests(
        &self,
        request: Request<ListServiceRequestsRequest>,
    ) -> Result<Response<ListServiceRequestsResponse>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestRead, "ListServiceRequests")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let q = worklist_query(&req)?;
            let key = format!(
                "service_requests\u{1f}{q:?}\u{1f}{}",
                match &scope {
                    Scope::All => "",
                    Scope::Department(d) => d.as_str(),
                }
            );
            let after: Option<(i64, String)> = self.api.pages.read("page_token", &key, &req.page_token)?;
            let rows = self
                .api
                .store
                .list_service_requests(&q, &scope, after, size, &self.sla, self.clock.now())
                .await?;
            let next_page_token = match rows.last() {
                Some((_, at, id)) if rows.len() == size => self.api.pages.issue(&key, &(*at, id.clone())),
                _ => String::new(),
            };
            Ok(ListServiceRequestsResponse {
                service_requests: rows.into_iter().map(|(r, _, _)| r).collect(),
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn update_service_request(
        &self,
        request: Request<UpdateServiceRequestRequest>,
    ) -> Result<Response<ServiceRequest>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestWrite, "UpdateServiceRequest")
            .await?;
        let req = request.into_inner();
        let result = async {
            let changes = req
                .service_request
                .ok_or_else(|| ApiError::invalid("service_request", "is required"))?;
            let id = request_id("service_request.name", &changes.name)?;
            let paths = mask_paths(req.update_mask.as_ref(), rules::UPDATABLE_PATHS)?;
            require_etag(&req.etag)?;
            self.change(
                &ctx,
                &scope,
                &id,
                &req.etag,
                Change::Update {
                    changes: Box::new(changes),
                    paths,
                },
            )
            .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn start_service_request(
        &self,
        request: Request<StartServiceRequestRequest>,
    ) -> Result<Response<ServiceRequest>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestWrite, "StartServiceRequest")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = request_id("name", &req.name)?;
            let mut v = Violations::new();
            check_owner("owner", &req.owner, &mut v);
            v.finish()?;
            require_etag(&req.etag)?;
            let owner = if req.owner.is_empty() {
                ctx.principal.subject.clone()
            } else {
                req.owner.clone()
            };
            self.change(&ctx, &scope, &id, &req.etag, Change::Start { owner }).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn assign_service_request(
        &self,
        request: Request<AssignServiceRequestRequest>,
    ) -> Result<Response<ServiceRequest>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestWrite, "AssignServiceRequest")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = request_id("name", &req.name)?;
            let mut v = Violations::new();
            check_owner("owner", &req.owner, &mut v);
            v.finish()?;
            require_etag(&req.etag)?;
            self.change(&ctx, &scope, &id, &req.etag, Change::Assign { owner: req.owner })
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_service_request(
        &self,
        request: Request<CompleteServiceRequestRequest>,
    ) -> Result<Response<ServiceRequest>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestWrite, "CompleteServiceRequest")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = request_id("name", &req.name)?;
            let mut v = Violations::new();
            v.text("outcome", &req.outcome, true, 1000);
            v.finish()?;
            require_etag(&req.etag)?;
            let outcome = req.outcome.trim().to_string();
            self.change(&ctx, &scope, &id, &req.etag, Change::Complete { outcome })
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_service_request(
        &self,
        request: Request<CancelServiceRequestRequest>,
    ) -> Result<Response<ServiceRequest>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestWrite, "CancelServiceRequest")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = request_id("name", &req.name)?;
            check_reason("reason", &req.reason, true)?;
            require_etag(&req.etag)?;
            let reason = req.reason.trim().to_string();
            self.change(&ctx, &scope, &id, &req.etag, Change::Cancel { reason })
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_service_request_statistics(
        &self,
        request: Request<GetServiceRequestStatisticsRequest>,
    ) -> Result<Response<ServiceRequestStatistics>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ServiceRequestRead, "GetServiceRequestStatistics")
            .await?;
        let req = request.into_inner();
        let result = async {
            let (start, end) = time_range(req.start_time.as_ref(), req.end_time.as_ref())?;
            let figures = self
                .api
                .store
                .service_request_figures(start, end, &scope, self.clock.now())
                .await?;
            Ok(statistics(&figures))
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}

/// The store's filters from a worklist request; INVALID_ARGUMENT naming the wrong fields.
fn worklist_query(req: &ListServiceRequestsRequest) -> Result<WorklistQuery, ApiError> {
    let mut v = Violations::new();
    let mut q = WorklistQuery::default();
    for (i, s) in req.states.iter().enumerate() {
        v.enum_value::<ServiceRequestState>(&format!("states[{i}]"), *s, true);
    }
    let mut states = req.states.clone();
    states.sort_unstable();
    states.dedup();
    q.states = states;
    v.enum_value::<ServiceRequestType>("type", req.r#type, false);
    q.r#type = req.r#type;
    check_owner("owner", &req.owner, &mut v);
    if !req.owner.is_empty() {
        if req.unassigned_only {
            v.add("unassigned_only", "cannot be combined with owner");
        }
        q.owner = Some(req.owner.clone());
    }
    q.unassigned_only = req.unassigned_only;
    if !req.department.is_empty() {
        if crate::domain::patient::is_code(&req.department, 64) {
            q.department = Some(req.department.clone());
        } else {
            v.add(
                "department",
                "must be a department code: 1–64 lower-case letters, digits, - or _",
            );
        }
    }
    q.overdue_only = req.overdue_only;
    if !req.patient.is_empty() {
        match parse_name("patient", &req.patient, "patients") {
            Ok(id) => q.patient_id = Some(id.to_string()),
            Err(_) => v.add("patient", "must look like patients/{id}"),
        }
    }
    v.finish()?;
    Ok(q)
}

fn type_statistics(t: i32, f: &TypeFigures) -> ServiceRequestTypeStatistics {
    ServiceRequestTypeStatistics {
        r#type: t,
        created: f.created,
        done: f.done,
        done_on_time: f.done_on_time,
        done_on_time_percent: if f.done > 0 {
            f.done_on_time as f64 * 100.0 / f.done as f64
        } else {
            0.0
        },
        cancelled: f.cancelled,
        open_overdue_now: f.open_overdue_now,
        mean_seconds_to_done: if f.done > 0 {
            f.micros_to_done as f64 / 1e6 / f.done as f64
        } else {
            0.0
        },
    }
}

/// Per-type rows (every type, in enum order) and their sums.
pub fn statistics(figures: &[TypeFigures]) -> ServiceRequestStatistics {
    let mut total = TypeFigures::default();
    let mut by_type = Vec::new();
    for (t, f) in figures.iter().enumerate().skip(1) {
        total.created += f.created;
        total.done += f.done;
        total.done_on_time += f.done_on_time;
        total.cancelled += f.cancelled;
        total.open_overdue_now += f.open_overdue_now;
        total.micros_to_done += f.micros_to_done;
        by_type.push(type_statistics(t as i32, f));
    }
    ServiceRequestStatistics {
        by_type,
        total: Some(type_statistics(0, &total)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_means_are_per_type_and_total() {
        let mut figures = vec![TypeFigures::default(); 7];
        figures[1] = TypeFigures {
            created: 4,
            done: 2,
            done_on_time: 1,
            cancelled: 1,
            open_overdue_now: 1,
            micros_to_done: 3_600_000_000,
        };
        figures[5] = TypeFigures {
            created: 1,
            done: 2,
            done_on_time: 2,
            micros_to_done: 600_000_000,
            ..Default::default()
        };
        let s = statistics(&figures);
        assert_eq!(s.by_type.len(), 6);
        assert_eq!(s.by_type[0].r#type, ServiceRequestType::ResultDelivery as i32);
        assert_eq!(s.by_type[0].done_on_time_percent, 50.0);
        assert_eq!(s.by_type[0].mean_seconds_to_done, 1800.0);
        assert_eq!(s.by_type[1].done_on_time_percent, 0.0);
        let total = s.total.unwrap();
        assert_eq!((total.created, total.done, total.done_on_time), (5, 4, 3));
        assert_eq!(total.done_on_time_percent, 75.0);
        assert_eq!(total.mean_seconds_to_done, 1050.0);
    }
}
