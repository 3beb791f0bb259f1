//! WatchService: the watch list, sources and alert rules.

use super::{Api, actor, optional_id, position, request_key, v_request_id};
use crate::permissions::Perm;
use crate::store::parse_name;
use hcrm_kit::ApiError;
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_kit::validate::Violations;
use hcrm_proto::opinion::watch_service_server::WatchService;
use hcrm_proto::opinion::*;
use tonic::{Request, Response, Status};

const MAX_TERMS: usize = 50;
const DEFAULT_INTERVAL: i32 = 900;

fn check_entity(e: &Entity, v: &mut Violations) {
    v.enum_value::<EntityKind>("entity.kind", e.kind, true);
    v.text("entity.display_name", &e.display_name, true, 100);
    v.text("entity.department", &e.department, false, 40);
    if e.terms.is_empty() || e.terms.len() > MAX_TERMS {
        v.add("entity.terms", format!("needs 1–{MAX_TERMS} terms"));
    }
    for (i, t) in e.terms.iter().enumerate() {
        let n = t.trim().chars().count();
        if !(2..=100).contains(&n) || t.chars().any(char::is_control) {
            v.add(
                format!("entity.terms[{i}]"),
                "must be 2–100 characters without control characters",
            );
        }
    }
}

/// Terms trimmed and without repeats; the display name is always a term.
fn normalized_entity(mut e: Entity) -> Entity {
    let mut terms: Vec<String> = Vec::new();
    for t in std::iter::once(&e.display_name).chain(e.terms.iter()) {
        let t = t.trim().to_string();
        if t.chars().count() >= 2 && !terms.iter().any(|x| x.to_lowercase() == t.to_lowercase()) {
            terms.push(t);
        }
    }
    e.terms = terms;
    e.display_name = e.display_name.trim().to_string();
    e
}

fn check_source(api: &Api, s: &Source, v: &mut Violations) {
    v.enum_value::<SourceKind>("source.kind", s.kind, true);
    v.text("source.title", &s.title, false, 200);
    if s.url.is_empty() {
        v.add("source.url", "is required");
    } else if s.url.len() > 2000 {
        v.add("source.url", "must be at most 2000 characters");
    } else if let Err(err) = crate::fetch::check_url(&s.url, &api.allow_hosts) {
        v.add("source.url", err.to_string());
    }
    if s.interval_seconds != 0 && !(60..=86_400).contains(&s.interval_seconds) {
        v.add("source.interval_seconds", "must be 60–86400 (0: the default 900)");
    }
}

fn check_rule(r: &AlertRule, v: &mut Violations) {
    v.enum_value::<AlertKind>("rule.kind", r.kind, true);
    if r.threshold < 1 {
        v.add("rule.threshold", "must be at least 1");
    }
    if !(5..=10_080).contains(&r.window_minutes) {
        v.add("rule.window_minutes", "must be 5–10080 (a week)");
    }
    if r.kind == AlertKind::Burst as i32 {
        if !(1.0..=100.0).contains(&r.burst_factor) {
            v.add("rule.burst_factor", "must be 1–100 for a burst rule");
        }
        if !(1..=100).contains(&r.baseline_windows) {
            v.add("rule.baseline_windows", "must be 1–100 for a burst rule");
        }
    }
    if r.notify.len() > 20 {
        v.add("rule.notify", "at most 20 recipients");
    }
    for (i, n) in r.notify.iter().enumerate() {
        v.text(&format!("rule.notify[{i}]"), n, true, 100);
    }
}

#[tonic::async_trait]
impl WatchService for Api {
    async fn create_entity(&self, request: Request<CreateEntityRequest>) -> Result<Response<Entity>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "CreateEntity").await?;
        let req = request.into_inner();
        let run = async {
            let e = req.entity.ok_or_else(|| ApiError::invalid("entity", "is required"))?;
            let mut v = Violations::new();
            check_entity(&e, &mut v);
            v.finish()?;
            self.store.create_entity(&actor(&ctx), normalized_entity(e)).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_entity(&self, request: Request<GetEntityRequest>) -> Result<Response<Entity>, Status> {
        let ctx = self.authorize(&request, Perm::WatchRead, "GetEntity").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "entities")?;
            self.store.get_entity(id).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_entities(
        &self,
        request: Request<ListEntitiesRequest>,
    ) -> Result<Response<ListEntitiesResponse>, Status> {
        let ctx = self.authorize(&request, Perm::WatchRead, "ListEntities").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            v.enum_value::<EntityKind>("kind", req.kind, false);
            v.finish()?;
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("entities:{}:{}", req.kind, req.include_archived);
            let after: String = position(&self.pages, &query, &req.page_token)?.unwrap_or_default();
            let items = self
                .store
                .list_entities(req.kind, req.include_archived, &after, size + 1)
                .await?;
            let (entities, next_page_token) = page(
                items,
                size,
                |e| e.name.trim_start_matches("entities/").to_string(),
                &self.pages,
                &query,
            );
            Ok(ListEntitiesResponse {
                entities,
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn update_entity(&self, request: Request<UpdateEntityRequest>) -> Result<Response<Entity>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "UpdateEntity").await?;
        let req = request.into_inner();
        let run = async {
            let e = req.entity.ok_or_else(|| ApiError::invalid("entity", "is required"))?;
            let id = parse_name("entity.name", &e.name, "entities")?.to_string();
            let mut v = Violations::new();
            check_entity(&e, &mut v);
            v.finish()?;
            self.store.update_entity(&actor(&ctx), &id, normalized_entity(e)).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn archive_entity(&self, request: Request<ArchiveEntityRequest>) -> Result<Response<Entity>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "ArchiveEntity").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "entities")?;
            self.store.archive_entity(&actor(&ctx), id, &req.etag).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn create_source(&self, request: Request<CreateSourceRequest>) -> Result<Response<Source>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "CreateSource").await?;
        let req = request.into_inner();
        let run = async {
            let mut s = req.source.ok_or_else(|| ApiError::invalid("source", "is required"))?;
            let mut v = Violations::new();
            check_source(self, &s, &mut v);
            v.finish()?;
            if s.interval_seconds == 0 {
                s.interval_seconds = DEFAULT_INTERVAL;
            }
            self.store.create_source(&actor(&ctx), s).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_source(&self, request: Request<GetSourceRequest>) -> Result<Response<Source>, Status> {
        let ctx = self.authorize(&request, Perm::WatchRead, "GetSource").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "sources")?;
            self.store.get_source(id).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_sources(
        &self,
        request: Request<ListSourcesRequest>,
    ) -> Result<Response<ListSourcesResponse>, Status> {
        let ctx = self.authorize(&request, Perm::WatchRead, "ListSources").await?;
        let req = request.into_inner();
        let run = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = "sources";
            let after: String = position(&self.pages, query, &req.page_token)?.unwrap_or_default();
            let items = self.store.list_sources(&after, size + 1).await?;
            let (sources, next_page_token) = page(
                items,
                size,
                |s| s.name.trim_start_matches("sources/").to_string(),
                &self.pages,
                query,
            );
            Ok(ListSourcesResponse {
                sources,
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn update_source(&self, request: Request<UpdateSourceRequest>) -> Result<Response<Source>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "UpdateSource").await?;
        let req = request.into_inner();
        let run = async {
            let mut s = req.source.ok_or_else(|| ApiError::invalid("source", "is required"))?;
            let id = parse_name("source.name", &s.name, "sources")?.to_string();
            let mut v = Violations::new();
            v.text("source.title", &s.title, false, 200);
            if s.interval_seconds != 0 && !(60..=86_400).contains(&s.interval_seconds) {
                v.add("source.interval_seconds", "must be 60–86400 (0: the default 900)");
            }
            v.finish()?;
            if s.interval_seconds == 0 {
                s.interval_seconds = DEFAULT_INTERVAL;
            }
            self.store.update_source(&actor(&ctx), &id, s).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn delete_source(
        &self,
        request: Request<DeleteSourceRequest>,
    ) -> Result<Response<DeleteSourceResponse>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "DeleteSource").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "sources")?;
            self.store.delete_source(&actor(&ctx), id, &req.etag).await?;
            Ok(DeleteSourceResponse {})
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn poll_source(&self, request: Request<PollSourceRequest>) -> Result<Response<Source>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "PollSource").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "sources")?;
            self.store.get_source(id).await?;
            if !crate::jobs::poll::poll_now(&self.store, &self.fetcher, id).await? {
                return Err(ApiError::FailedPrecondition(format!(
                    "sources/{id} is being fetched right now; read it again in a moment"
                )));
            }
            self.store.get_source(id).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn create_alert_rule(&self, request: Request<CreateAlertRuleRequest>) -> Result<Response<AlertRule>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "CreateAlertRule").await?;
        let req = request.into_inner();
        let run = async {
            let r = req.rule.ok_or_else(|| ApiError::invalid("rule", "is required"))?;
            let entity = parse_name("rule.entity", &r.entity, "entities")?.to_string();
            let mut v = Violations::new();
            check_rule(&r, &mut v);
            v.finish()?;
            v_request_id(&req.request_id)?;
            let key = request_key("CreateAlertRule", &ctx, &req.request_id);
            self.store.create_rule(&actor(&ctx), &entity, r, key.as_deref()).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_alert_rules(
        &self,
        request: Request<ListAlertRulesRequest>,
    ) -> Result<Response<ListAlertRulesResponse>, Status> {
        let ctx = self.authorize(&request, Perm::WatchRead, "ListAlertRules").await?;
        let req = request.into_inner();
        let run = async {
            let entity = optional_id("entity", &req.entity, "entities")?.unwrap_or_default();
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("rules:{entity}");
            let after: String = position(&self.pages, &query, &req.page_token)?.unwrap_or_default();
            let items = self.store.list_rules(&entity, &after, size + 1).await?;
            let (rules, next_page_token) = page(
                items,
                size,
                |r| r.name.trim_start_matches("alert-rules/").to_string(),
                &self.pages,
                &query,
            );
            Ok(ListAlertRulesResponse { rules, next_page_token })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn update_alert_rule(&self, request: Request<UpdateAlertRuleRequest>) -> Result<Response<AlertRule>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "UpdateAlertRule").await?;
        let req = request.into_inner();
        let run = async {
            let r = req.rule.ok_or_else(|| ApiError::invalid("rule", "is required"))?;
            let id = parse_name("rule.name", &r.name, "alert-rules")?.to_string();
            let mut v = Violations::new();
            check_rule(&r, &mut v);
            v.finish()?;
            self.store.update_rule(&actor(&ctx), &id, r).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn delete_alert_rule(
        &self,
        request: Request<DeleteAlertRuleRequest>,
    ) -> Result<Response<DeleteAlertRuleResponse>, Status> {
        let ctx = self.authorize(&request, Perm::WatchManage, "DeleteAlertRule").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "alert-rules")?;
            self.store.delete_rule(&actor(&ctx), id, &req.etag).await?;
            Ok(DeleteAlertRuleResponse {})
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }
}
