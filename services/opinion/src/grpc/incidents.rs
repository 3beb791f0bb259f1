//! IncidentService: alerts and the incident workflow.

use super::{Api, actor, optional_id, position, request_key, time_position, v_request_id};
use crate::domain::privacy::personal_data;
use crate::permissions::Perm;
use crate::store::incidents::CaseRequest;
use crate::store::parse_name;
use hcrm_kit::ApiError;
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_kit::validate::Violations;
use hcrm_proto::opinion::incident_service_server::IncidentService;
use hcrm_proto::opinion::*;
use tonic::{Request, Response, Status};

const SEVERITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "CRITICAL"];

impl Api {
    /// INVALID_ARGUMENT when `text` discloses personal data, including the linked patient's
    /// name or phone numbers.
    async fn check_public_text(&self, field: &str, text: &str, patient: &str) -> Result<(), ApiError> {
        let (mut names, mut phones) = (Vec::new(), Vec::new());
        if let Some(id) = patient.strip_prefix("patients/")
            && let Some(contact) = self.patients.contact(id).await?
        {
            names.push(contact.display_name);
            phones = contact.phones;
        }
        reject_personal(field, text, &names, &phones)
    }
}

fn reject_personal(field: &str, text: &str, names: &[String], phones: &[String]) -> Result<(), ApiError> {
    let found = personal_data(text, names, phones);
    if found.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "a public reply must not contain personal data; found {}",
                found.join(", ")
            ),
        ))
    }
}

#[tonic::async_trait]
impl IncidentService for Api {
    async fn list_alerts(&self, request: Request<ListAlertsRequest>) -> Result<Response<ListAlertsResponse>, Status> {
        let ctx = self.authorize(&request, Perm::AlertRead, "ListAlerts").await?;
        let req = request.into_inner();
        let run = async {
            let entity = optional_id("entity", &req.entity, "entities")?;
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("alerts:{entity:?}:{}", req.open_only);
            let after: Option<(i64, String)> = position(&self.pages, &query, &req.page_token)?;
            let items = self
                .store
                .list_alerts(entity.as_deref(), req.open_only, after, size + 1)
                .await?;
            let (alerts, next_page_token) = page(
                items,
                size,
                |a| time_position(&a.create_time, &a.name),
                &self.pages,
                &query,
            );
            Ok(ListAlertsResponse {
                alerts,
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn create_incident(&self, request: Request<CreateIncidentRequest>) -> Result<Response<Incident>, Status> {
        let ctx = self.authorize(&request, Perm::IncidentWork, "CreateIncident").await?;
        let req = request.into_inner();
        let run = async {
            let inc = req
                .incident
                .ok_or_else(|| ApiError::invalid("incident", "is required"))?;
            let mut v = Violations::new();
            v.text("incident.title", &inc.title, false, 200);
            v.text("incident.description", &inc.description, false, 4000);
            v.text("owner", &req.owner, false, 100);
            v.finish()?;
            optional_id("incident.alert", &inc.alert, "alerts")?;
            optional_id("incident.story", &inc.story, "stories")?;
            v_request_id(&req.request_id)?;
            let key = request_key("CreateIncident", &ctx, &req.request_id);
            self.store
                .create_incident(&actor(&ctx), inc, &req.owner, key.as_deref())
                .await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_incident(&self, request: Request<GetIncidentRequest>) -> Result<Response<Incident>, Status> {
        let ctx = self.authorize(&request, Perm::AlertRead, "GetIncident").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "incidents")?;
            self.store.get_incident(id).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_incidents(
        &self,
        request: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        let ctx = self.authorize(&request, Perm::AlertRead, "ListIncidents").await?;
        let req = request.into_inner();
        let run = async {
            let mut v = Violations::new();
            for (i, s) in req.states.iter().enumerate() {
                v.enum_value::<IncidentState>(&format!("states[{i}]"), *s, true);
            }
            v.text("owner", &req.owner, false, 100);
            v.finish()?;
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("incidents:{:?}:{}", req.states, req.owner);
            let after: Option<(i64, String)> = position(&self.pages, &query, &req.page_token)?;
            let owner = (!req.owner.is_empty()).then_some(req.owner.as_str());
            let items = self.store.list_incidents(&req.states, owner, after, size + 1).await?;
            let (incidents, next_page_token) = page(
                items,
                size,
                |i| time_position(&i.create_time, &i.name),
                &self.pages,
                &query,
            );
            Ok(ListIncidentsResponse {
                incidents,
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn transition_incident(
        &self,
        request: Request<TransitionIncidentRequest>,
    ) -> Result<Response<Incident>, Status> {
        let ctx = self
            .authorize(&request, Perm::IncidentWork, "TransitionIncident")
            .await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "incidents")?;
            let mut v = Violations::new();
            v.enum_value::<IncidentAction>("action", req.action, true);
            let action = IncidentAction::try_from(req.action).unwrap_or_default();
            v.text(
                "reason",
                &req.reason,
                crate::domain::workflow::needs_reason(action),
                2000,
            );
            v.finish()?;
            self.store
                .transition_incident(&actor(&ctx), id, action, &req.reason, &req.etag)
                .await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn add_incident_note(&self, request: Request<AddIncidentNoteRequest>) -> Result<Response<Incident>, Status> {
        let ctx = self.authorize(&request, Perm::IncidentWork, "AddIncidentNote").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "incidents")?;
            let mut v = Violations::new();
            v.text("text", &req.text, true, 4000);
            v.finish()?;
            self.store.add_note(&actor(&ctx), id, &req.text).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn update_incident_links(
        &self,
        request: Request<UpdateIncidentLinksRequest>,
    ) -> Result<Response<Incident>, Status> {
        let ctx = self
            .authorize(&request, Perm::IncidentWork, "UpdateIncidentLinks")
            .await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "incidents")?;
            let mut v = Violations::new();
            v.text("owner", &req.owner, false, 100);
            v.finish()?;
            if req.owner.is_empty() && req.patient.is_empty() && req.case.is_empty() {
                return Err(ApiError::invalid("owner", "set at least one of owner, patient, case"));
            }
            if let Some(patient) = optional_id("patient", &req.patient, "patients")?
                && self.patients.contact(&patient).await?.is_none()
            {
                return Err(ApiError::not_found(req.patient.clone()));
            }
            optional_id("case", &req.case, "cases")?;
            self.store
                .update_links(&actor(&ctx), id, &req.owner, &req.patient, &req.case, &req.etag)
                .await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn escalate_incident(&self, request: Request<EscalateIncidentRequest>) -> Result<Response<Incident>, Status> {
        let ctx = self.authorize(&request, Perm::IncidentWork, "EscalateIncident").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "incidents")?;
            let mut v = Violations::new();
            v.text("department", &req.department, true, 40);
            v.text("category", &req.category, false, 40);
            v.text("description", &req.description, false, 4000);
            if !req.severity.is_empty() && !SEVERITIES.contains(&req.severity.as_str()) {
                v.add("severity", format!("must be one of {}", SEVERITIES.join(", ")));
            }
            v.finish()?;
            let request = CaseRequest {
                department: req.department,
                category: req.category,
                severity: if req.severity.is_empty() {
                    "MEDIUM".into()
                } else {
                    req.severity
                },
                description: req.description,
            };
            self.store.escalate(&actor(&ctx), id, request, &req.etag).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn draft_reply(&self, request: Request<DraftReplyRequest>) -> Result<Response<Incident>, Status> {
        let ctx = self.authorize(&request, Perm::IncidentWork, "DraftReply").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "incidents")?;
            let mut v = Violations::new();
            v.text("text", &req.text, true, 2000);
            v.finish()?;
            let inc = self.store.get_incident(id).await?;
            self.check_public_text("text", &req.text, &inc.patient).await?;
            self.store.draft_reply(&actor(&ctx), id, &req.text, &req.etag).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn approve_reply(&self, request: Request<ApproveReplyRequest>) -> Result<Response<Incident>, Status> {
        let ctx = self.authorize(&request, Perm::ReplyApprove, "ApproveReply").await?;
        let req = request.into_inner();
        let run = async {
            let id = parse_name("name", &req.name, "incidents")?;
            // The etag names the draft the approver read: a redraft since then is not approved.
            if req.etag.is_empty() {
                return Err(ApiError::invalid(
                    "etag",
                    "is required: the etag of the incident as read",
                ));
            }
            let inc = self.store.get_incident(id).await?;
            // The patient linked since the draft was written counts too.
            let (mut names, mut phones) = (Vec::new(), Vec::new());
            if let Some(pid) = inc.patient.strip_prefix("patients/")
                && let Some(contact) = self.patients.contact(pid).await?
            {
                names.push(contact.display_name);
                phones = contact.phones;
            }
            self.store
                .approve_reply(&actor(&ctx), id, &req.etag, |text| {
                    reject_personal("reply.text", text, &names, &phones)
                })
                .await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }
}
