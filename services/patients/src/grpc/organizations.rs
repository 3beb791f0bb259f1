//! `hcrm.patients.v1.OrganizationService`.

use super::{Api, mask_paths, request_key};
use crate::domain::organization;
use crate::permissions::Perm;
use crate::query;
use crate::store::parse_name;
use hcrm_kit::ApiError;
use hcrm_kit::db::Sql;
use hcrm_kit::paging::PageSize;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::organization_service_server::OrganizationService;
use hcrm_proto::patients::*;
use tonic::{Request, Response, Status};

fn org_id(field: &str, name: &str) -> Result<String, ApiError> {
    parse_name(field, name, "organizations").map(str::to_string)
}

#[tonic::async_trait]
impl OrganizationService for Api {
    #[tracing::instrument(skip_all)]
    async fn create_organization(
        &self,
        request: Request<CreateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::OrganizationWrite, "CreateOrganization")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut o = req.organization.unwrap_or_default();
            organization::normalize(&mut o);
            organization::validate(&o, "organization", &mut v);
            v.finish()?;
            let key = request_key("CreateOrganization", &ctx, &req.request_id);
            self.store.create_org(&ctx, o, key).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_organization(
        &self,
        request: Request<GetOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::OrganizationRead, "GetOrganization")
            .await?;
        let req = request.into_inner();
        let result = async { self.store.get_org(&org_id("name", &req.name)?).await }.await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn update_organization(
        &self,
        request: Request<UpdateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::OrganizationWrite, "UpdateOrganization")
            .await?;
        let req = request.into_inner();
        let result = async {
            let changes = req
                .organization
                .ok_or_else(|| ApiError::invalid("organization", "is required"))?;
            let id = org_id("organization.name", &changes.name)?;
            let paths = mask_paths(req.update_mask.as_ref(), organization::UPDATABLE_PATHS)?;
            if req.etag.is_empty() {
                return Err(ApiError::invalid("etag", "is required"));
            }
            self.store.update_org(&ctx, &id, changes, &paths, &req.etag).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_organization(
        &self,
        request: Request<DeleteOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::OrganizationWrite, "DeleteOrganization")
            .await?;
        let req = request.into_inner();
        let result = async { self.store.delete_org(&ctx, &org_id("name", &req.name)?).await }.await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_organizations(
        &self,
        request: Request<ListOrganizationsRequest>,
    ) -> Result<Response<ListOrganizationsResponse>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::OrganizationRead, "ListOrganizations")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let key = format!("organizations\u{1f}{}", req.filter);
            let offset: usize = self.pages.read("page_token", &key, &req.page_token)?.unwrap_or(0);
            let mut sql = Sql::new("1 = 1");
            if let Some(expr) = hcrm_kit::filter::parse(&req.filter)? {
                sql.push(" AND ");
                hcrm_kit::filter::compile(&expr, query::ORGANIZATION_FIELDS, &mut sql)?;
            }
            let organizations = self.store.list_orgs(&sql, size, offset).await?;
            let next_page_token = if organizations.len() == size {
                self.pages.issue(&key, &(offset + size))
            } else {
                String::new()
            };
            Ok(ListOrganizationsResponse {
                organizations,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}
