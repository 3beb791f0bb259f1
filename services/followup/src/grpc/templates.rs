//! TemplateService.

use super::{Api, request_key};
use crate::domain::template;
use crate::permissions::Perm;
use crate::store::parse_name;
use hcrm_kit::ApiError;
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_kit::validate::Violations;
use hcrm_proto::followup::template_service_server::TemplateService;
use hcrm_proto::followup::*;
use tonic::{Request, Response, Status};

fn checked(t: Option<Template>) -> Result<Template, ApiError> {
    let t = t.ok_or_else(|| ApiError::invalid("template", "is required"))?;
    let mut v = Violations::new();
    template::check(&t, &mut v);
    v.finish()?;
    Ok(t)
}

#[tonic::async_trait]
impl TemplateService for Api {
    #[tracing::instrument(skip_all)]
    async fn create_template(&self, request: Request<CreateTemplateRequest>) -> Result<Response<Template>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::TemplateWrite, "CreateTemplate").await?;
        let req = request.into_inner();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        v.finish().map_err(|e| ctx.status(e))?;
        let t = checked(req.template).map_err(|e| ctx.status(e))?;
        let key = request_key("CreateTemplate", &ctx, &req.request_id);
        let t = self
            .store
            .create_template(&ctx, t, key.as_deref())
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(t))
    }

    async fn get_template(&self, request: Request<GetTemplateRequest>) -> Result<Response<Template>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::TemplateRead, "GetTemplate").await?;
        let req = request.into_inner();
        let id = parse_name("name", &req.name, "templates").map_err(|e| ctx.status(e))?;
        if req.version < 0 {
            return Err(ctx.status(ApiError::invalid("version", "must not be negative")));
        }
        let t = self
            .store
            .get_template(id, req.version as i64)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(t))
    }

    async fn list_templates(
        &self,
        request: Request<ListTemplatesRequest>,
    ) -> Result<Response<ListTemplatesResponse>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::TemplateRead, "ListTemplates").await?;
        let req = request.into_inner();
        let run = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("templates:{}", req.show_archived);
            let after: String = super::position(&self.pages, &query, &req.page_token)?.unwrap_or_default();
            let templates = self.store.list_templates(req.show_archived, &after, size + 1).await?;
            Ok::<_, ApiError>(page(
                templates,
                size,
                |t| t.name.trim_start_matches("templates/").to_string(),
                &self.pages,
                &query,
            ))
        };
        let (templates, next_page_token) = run.await.map_err(|e| ctx.status(e))?;
        Ok(Response::new(ListTemplatesResponse {
            templates,
            next_page_token,
        }))
    }

    async fn revise_template(&self, request: Request<ReviseTemplateRequest>) -> Result<Response<Template>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::TemplateWrite, "ReviseTemplate").await?;
        let req = request.into_inner();
        let run = async {
            super::super::grpc::followup::check_reason("reason", &req.reason, false)?;
            let t = checked(req.template)?;
            let id = parse_name("template.name", &t.name, "templates")?.to_string();
            self.store.revise_template(&ctx, &id, t, &req.reason).await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }

    async fn archive_template(&self, request: Request<ArchiveTemplateRequest>) -> Result<Response<Template>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::TemplateWrite, "ArchiveTemplate").await?;
        let req = request.into_inner();
        let run = async {
            super::followup::check_reason("reason", &req.reason, false)?;
            let id = parse_name("name", &req.name, "templates")?;
            self.store.archive_template(&ctx, id, &req.etag, &req.reason).await
        };
        Ok(Response::new(run.await.map_err(|e| ctx.status(e))?))
    }
}
