//! `hcrm.patients.v1.AuditService`.

use super::Api;
use crate::permissions::Perm;
use crate::query;
use hcrm_kit::db::Sql;
use hcrm_kit::paging::PageSize;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::patients::audit_service_server::AuditService;
use hcrm_proto::patients::*;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl AuditService for Api {
    #[tracing::instrument(skip_all)]
    async fn list_audit_events(
        &self,
        request: Request<ListAuditEventsRequest>,
    ) -> Result<Response<ListAuditEventsResponse>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::AuditRead, "ListAuditEvents").await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let key = format!("audit\u{1f}{}", req.filter);
            let before: Option<i64> = self.pages.read("page_token", &key, &req.page_token)?;
            let mut sql = Sql::new("1 = 1");
            if let Some(expr) = hcrm_kit::filter::parse(&req.filter)? {
                sql.push(" AND ");
                hcrm_kit::filter::compile(&expr, query::AUDIT_FIELDS, &mut sql)?;
            }
            self.store.seal().await?;
            let records = hcrm_kit::ledger::list_audit(&self.store.db, &sql, before, size).await?;
            let next_page_token = match records.last() {
                Some(last) if records.len() == size => self.pages.issue(&key, &last.sequence),
                _ => String::new(),
            };
            let audit_events = records
                .into_iter()
                .map(|r| AuditEvent {
                    sequence: r.sequence,
                    time: Some(to_timestamp(r.at)),
                    actor: r.actor,
                    actor_roles: r.roles,
                    action: r.action,
                    resource: r.resource,
                    reason: r.reason,
                    request_id: r.request_id,
                    detail_json: r.detail,
                    hash: r.hash,
                })
                .collect();
            Ok(ListAuditEventsResponse {
                audit_events,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_audit_log(
        &self,
        request: Request<VerifyAuditLogRequest>,
    ) -> Result<Response<VerifyAuditLogResponse>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::AuditRead, "VerifyAuditLog").await?;
        let result = hcrm_kit::ledger::verify(&self.store.db)
            .await
            .map_err(hcrm_kit::ApiError::from);
        result
            .map(|v| {
                let (first, problem) = v.first_broken.unwrap_or((0, String::new()));
                Response::new(VerifyAuditLogResponse {
                    intact: first == 0,
                    checked: v.checked,
                    first_broken_sequence: first,
                    problem,
                })
            })
            .map_err(|e| ctx.status(e))
    }
}
