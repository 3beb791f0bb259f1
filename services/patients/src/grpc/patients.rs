//! `hcrm.patients.v1.PatientService`.

use super::{Api, check_reason, mask_paths, request_key};
use crate::domain::{interaction, patient, related};
use crate::permissions::Perm;
use crate::query;
use crate::store::import::{InteractionRow, PatientRow, failed};
use crate::store::interactions::TimelineQuery;
use crate::store::patients::View;
use crate::store::{Update, parse_name};
use futures::StreamExt;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::db::{Sql, Value};
use hcrm_kit::feed::{Ledger, ServerStream, async_stream};
use hcrm_kit::paging::PageSize;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::patient_service_server::PatientService;
use hcrm_proto::patients::*;
use hcrm_proto::types::Event;
use tonic::{Request, Response, Status, Streaming};

/// Rows accepted in one import message, and committed per transaction.
const IMPORT_MAX_ROWS_PER_MESSAGE: usize = 1_000;
const IMPORT_BATCH: usize = 500;

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn patient_id(field: &str, name: &str) -> Result<String, ApiError> {
    parse_name(field, name, "patients").map(str::to_string)
}

/// `patients/{p}/{collection}/{id}` → (p, id).
fn child_ids(field: &str, name: &str, collection: &str) -> Result<(String, String), ApiError> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["patients", p, c, id]
            if *c == collection && !p.is_empty() && !id.is_empty() && p.len() <= 64 && id.len() <= 64 =>
        {
            Ok((p.to_string(), id.to_string()))
        }
        _ if name.is_empty() => Err(ApiError::invalid(field, "is required")),
        _ => Err(ApiError::invalid(
            field,
            format!("must look like patients/{{patient}}/{collection}/{{id}}"),
        )),
    }
}

impl Api {
    fn list_query_key(req: &ListPatientsRequest, scope: &Scope) -> String {
        format!(
            "patients\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{scope:?}",
            req.filter, req.order_by, req.show_deleted
        )
    }
}

#[tonic::async_trait]
impl PatientService for Api {
    #[tracing::instrument(skip_all)]
    async fn create_patient(&self, request: Request<CreatePatientRequest>) -> Result<Response<Patient>, Status> {
        let (ctx, _scope) = self.authorize(&request, Perm::PatientCreate, "CreatePatient").await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            v.text("reason", &req.reason, false, 256);
            let p = match req.patient {
                Some(p) => {
                    let mut p = p;
                    patient::clear_output_only(&mut p);
                    patient::normalize(&mut p);
                    patient::validate(&p, "patient", today(), &mut v);
                    Some(p)
                }
                None => {
                    v.add("patient", "is required");
                    None
                }
            };
            v.finish()?;
            let p = p.expect("checked above");
            let key = request_key("CreatePatient", &ctx, &req.request_id);
            self.store.create_patient(&ctx, p, key, &req.reason).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_patient(&self, request: Request<GetPatientRequest>) -> Result<Response<Patient>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PatientRead, "GetPatient").await?;
        let req = request.into_inner();
        let view = PatientView::try_from(req.view)
            .map_err(|_| ctx.status(ApiError::invalid("view", format!("unknown view {}", req.view))))?;
        if view == PatientView::Full {
            let full_scope = self.check(&ctx, Perm::PatientReadProtected, "GetPatient(FULL)").await?;
            let result = async {
                let id = patient_id("name", &req.name)?;
                check_reason("access_reason", &req.access_reason, true)?;
                self.store
                    .get_patient_audited(&ctx, &id, &full_scope, &req.access_reason)
                    .await
            }
            .await;
            return result.map(Response::new).map_err(|e| ctx.status(e));
        }
        let result = async {
            let id = patient_id("name", &req.name)?;
            self.store.get_patient(&id, &scope, View::Masked).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn update_patient(&self, request: Request<UpdatePatientRequest>) -> Result<Response<Patient>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PatientUpdate, "UpdatePatient").await?;
        let req = request.into_inner();
        let touches_protected = req
            .update_mask
            .as_ref()
            .is_some_and(|m| m.paths.iter().any(|p| patient::PROTECTED_PATHS.contains(&p.as_str())));
        if touches_protected {
            // Changing protected data is reading it too: the caller must be allowed to see it.
            self.check(&ctx, Perm::PatientReadProtected, "UpdatePatient(protected)")
                .await?;
        }
        let result = async {
            let changes = req.patient.ok_or_else(|| ApiError::invalid("patient", "is required"))?;
            let id = patient_id("patient.name", &changes.name)?;
            let paths = mask_paths(req.update_mask.as_ref(), patient::UPDATABLE_PATHS)?;
            if req.etag.is_empty() {
                return Err(ApiError::invalid(
                    "etag",
                    "is required: send the etag of the patient as last read",
                ));
            }
            check_reason("reason", &req.reason, false)?;
            let update = Update {
                changes,
                paths,
                etag: req.etag,
                reason: req.reason,
            };
            self.store.update_patient(&ctx, &id, &scope, update, today()).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_patient(&self, request: Request<DeletePatientRequest>) -> Result<Response<Patient>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PatientDelete, "DeletePatient").await?;
        let req = request.into_inner();
        let result = async {
            let id = patient_id("name", &req.name)?;
            check_reason("reason", &req.reason, false)?;
            self.store
                .set_deleted(&ctx, &id, &scope, true, &req.etag, &req.reason)
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn undelete_patient(&self, request: Request<UndeletePatientRequest>) -> Result<Response<Patient>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PatientDelete, "UndeletePatient").await?;
        let req = request.into_inner();
        let result = async {
            let id = patient_id("name", &req.name)?;
            check_reason("reason", &req.reason, false)?;
            self.store.set_deleted(&ctx, &id, &scope, false, "", &req.reason).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_patients(
        &self,
        request: Request<ListPatientsRequest>,
    ) -> Result<Response<ListPatientsResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PatientRead, "ListPatients").await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let expr = hcrm_kit::filter::parse(&req.filter)?;
            let order = query::patient_order(&req.order_by)?;
            let key = Api::list_query_key(&req, &scope);
            let offset: usize = self.pages.read("page_token", &key, &req.page_token)?.unwrap_or(0);
            let mut sql = Sql::new(if req.show_deleted {
                "merged_into IS NULL"
            } else {
                "deleted_at IS NULL"
            });
            if let Scope::Department(dept) = &scope {
                sql.push(" AND department = ").bind(Value::Text(dept.clone()));
            }
            if let Some(expr) = &expr {
                sql.push(" AND ");
                hcrm_kit::filter::compile(expr, query::PATIENT_FIELDS, &mut sql)?;
            }
            let (patients, total) = self.store.list_patients(&sql, &order, size, offset).await?;
            let next = offset + patients.len();
            let next_page_token = if patients.len() == size && (next as i64) < total {
                self.pages.issue(&key, &next)
            } else {
                String::new()
            };
            Ok(ListPatientsResponse {
                patients,
                next_page_token,
                total_size: total,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn search_patients(
        &self,
        request: Request<SearchPatientsRequest>,
    ) -> Result<Response<SearchPatientsResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PatientRead, "SearchPatients").await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize { default: 20, max: 100 }.resolve("page_size", req.page_size)?;
            let mut v = Violations::new();
            v.text("query", &req.query, true, 64);
            v.finish()?;
            let normalized_id = crate::domain::identity::normalize(&req.query);
            let identity_hash = (normalized_id.len() >= 5
                && normalized_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .then(|| self.store.index.hash("identity", &normalized_id));
            let department = match &scope {
                Scope::Department(d) => Some(d.as_str()),
                Scope::All => None,
            };
            let probes: Vec<_> = query::search_probes(&req.query, identity_hash, department, size)
                .into_iter()
                .map(|p| (p.sql, p.score, p.matched_on))
                .collect();
            let candidates = self.store.search_candidates(&probes).await?;
            let mut best: Vec<(String, i32, &'static str)> = Vec::new();
            for (id, score, matched) in candidates {
                match best.iter_mut().find(|(b, _, _)| *b == id) {
                    Some(entry) if entry.1 < score => *entry = (id, score, matched),
                    Some(_) => {}
                    None => best.push((id, score, matched)),
                }
            }
            best.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            best.truncate(size);
            let ids: Vec<String> = best.iter().map(|(id, _, _)| id.clone()).collect();
            let patients = self.store.patients_by_ids(&ids).await?;
            let matches = patients
                .into_iter()
                .zip(best)
                .map(|(patient, (_, score, matched_on))| PatientMatch {
                    patient: Some(patient),
                    score,
                    matched_on: matched_on.to_string(),
                })
                .collect();
            Ok(SearchPatientsResponse { matches })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn merge_patients(
        &self,
        request: Request<MergePatientsRequest>,
    ) -> Result<Response<MergePatientsResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::PatientMerge, "MergePatients").await?;
        let req = request.into_inner();
        let result = async {
            let survivor = patient_id("survivor", &req.survivor)?;
            let merged = patient_id("merged", &req.merged)?;
            if survivor == merged {
                return Err(ApiError::invalid("merged", "must differ from survivor"));
            }
            check_reason("reason", &req.reason, false)?;
            let (p, rp, it, ids) = self
                .store
                .merge_patients(&ctx, &survivor, &merged, &scope, &req.reason)
                .await?;
            Ok(MergePatientsResponse {
                survivor: Some(p),
                moved_related_persons: rp as i32,
                moved_interactions: it as i32,
                moved_external_ids: ids as i32,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    type ImportPatientsStream = ServerStream<ImportPatientsResponse>;

    #[tracing::instrument(skip_all)]
    async fn import_patients(
        &self,
        request: Request<Streaming<ImportPatientsRequest>>,
    ) -> Result<Response<Self::ImportPatientsStream>, Status> {
        let (ctx, _scope) = self.authorize(&request, Perm::Import, "ImportPatients").await?;
        let store = self.store.clone();
        let principal = ctx.principal.clone();
        let request_id = ctx.request_id.clone();
        let output = import_stream(
            ctx,
            request.into_inner(),
            |m: ImportPatientsRequest| m.rows,
            |i, row, _now| valid_import_row(i, row),
            move |batch: Vec<PatientRow>| {
                let (store, principal, request_id) = (store.clone(), principal.clone(), request_id.clone());
                async move { store.import_patients(&principal, &request_id, &batch).await }
            },
            |results| ImportPatientsResponse { results },
        );
        Ok(Response::new(output))
    }

    #[tracing::instrument(skip_all)]
    async fn create_related_person(
        &self,
        request: Request<CreateRelatedPersonRequest>,
    ) -> Result<Response<RelatedPerson>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::RelatedWrite, "CreateRelatedPerson")
            .await?;
        let req = request.into_inner();
        let result = async {
            let pid = patient_id("parent", &req.parent)?;
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut r = req.related_person.unwrap_or_default();
            related::normalize(&mut r);
            related::validate(&r, "related_person", &mut v);
            v.finish()?;
            let key = request_key("CreateRelatedPerson", &ctx, &req.request_id);
            self.store.create_related(&ctx, &pid, &scope, r, key).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_related_person(
        &self,
        request: Request<GetRelatedPersonRequest>,
    ) -> Result<Response<RelatedPerson>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::RelatedRead, "GetRelatedPerson").await?;
        let req = request.into_inner();
        let result = async {
            let (pid, id) = child_ids("name", &req.name, "relatedPersons")?;
            self.store.get_related(&pid, &id, &scope).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn update_related_person(
        &self,
        request: Request<UpdateRelatedPersonRequest>,
    ) -> Result<Response<RelatedPerson>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::RelatedWrite, "UpdateRelatedPerson")
            .await?;
        let req = request.into_inner();
        let result = async {
            let changes = req
                .related_person
                .ok_or_else(|| ApiError::invalid("related_person", "is required"))?;
            let (pid, id) = child_ids("related_person.name", &changes.name, "relatedPersons")?;
            let paths = mask_paths(req.update_mask.as_ref(), related::UPDATABLE_PATHS)?;
            if req.etag.is_empty() {
                return Err(ApiError::invalid("etag", "is required"));
            }
            let update = Update {
                changes,
                paths,
                etag: req.etag,
                reason: String::new(),
            };
            self.store.update_related(&ctx, &pid, &id, &scope, update).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_related_person(
        &self,
        request: Request<DeleteRelatedPersonRequest>,
    ) -> Result<Response<DeleteRelatedPersonResponse>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::RelatedWrite, "DeleteRelatedPerson")
            .await?;
        let req = request.into_inner();
        let result = async {
            let (pid, id) = child_ids("name", &req.name, "relatedPersons")?;
            self.store.delete_related(&ctx, &pid, &id, &scope).await
        }
        .await;
        result
            .map(|()| Response::new(DeleteRelatedPersonResponse {}))
            .map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_related_persons(
        &self,
        request: Request<ListRelatedPersonsRequest>,
    ) -> Result<Response<ListRelatedPersonsResponse>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::RelatedRead, "ListRelatedPersons")
            .await?;
        let req = request.into_inner();
        let result = async {
            let pid = patient_id("parent", &req.parent)?;
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let key = format!("related\u{1f}{pid}");
            let after: Option<String> = self.pages.read("page_token", &key, &req.page_token)?;
            let related_persons = self.store.list_related(&pid, &scope, after.as_deref(), size).await?;
            let next_page_token = if related_persons.len() == size {
                let last = related_persons
                    .last()
                    .map(|r| r.name.rsplit('/').next().unwrap_or_default().to_string());
                self.pages.issue(&key, &last)
            } else {
                String::new()
            };
            Ok(ListRelatedPersonsResponse {
                related_persons,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn record_interaction(
        &self,
        request: Request<RecordInteractionRequest>,
    ) -> Result<Response<Interaction>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::InteractionRecord, "RecordInteraction")
            .await?;
        let req = request.into_inner();
        let result = async {
            let pid = patient_id("parent", &req.parent)?;
            let mut i = req
                .interaction
                .ok_or_else(|| ApiError::invalid("interaction", "is required"))?;
            interaction::normalize(&mut i);
            let mut v = Violations::new();
            interaction::validate(&i, "interaction", hcrm_kit::time::now_micros(), &mut v);
            v.finish()?;
            self.store
                .record_interaction(&ctx.principal, &ctx.request_id, &pid, &scope, i)
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_interactions(
        &self,
        request: Request<ListInteractionsRequest>,
    ) -> Result<Response<ListInteractionsResponse>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::InteractionRead, "ListInteractions")
            .await?;
        let req = request.into_inner();
        let result = async {
            let pid = patient_id("parent", &req.parent)?;
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let mut v = Violations::new();
            for (i, kind) in req.kinds.iter().enumerate() {
                v.enum_value::<InteractionKind>(&format!("kinds[{i}]"), *kind, true);
            }
            if !req.department.is_empty() && !patient::is_code(&req.department, 64) {
                v.add("department", "must be a department code");
            }
            let start = time_field(&mut v, "start_time", req.start_time.as_ref());
            let end = time_field(&mut v, "end_time", req.end_time.as_ref());
            v.finish()?;
            let key = format!(
                "timeline\u{1f}{pid}\u{1f}{:?}\u{1f}{}\u{1f}{start:?}\u{1f}{end:?}",
                req.kinds, req.department
            );
            let after: Option<(i64, String)> = self.pages.read("page_token", &key, &req.page_token)?;
            let q = TimelineQuery {
                kinds: req.kinds,
                department: req.department,
                start,
                end,
            };
            let rows = self.store.list_interactions(&pid, &scope, &q, after, size).await?;
            let next_page_token = match rows.last() {
                Some((_, at, id)) if rows.len() == size => self.pages.issue(&key, &(at, id)),
                _ => String::new(),
            };
            Ok(ListInteractionsResponse {
                interactions: rows.into_iter().map(|(i, _, _)| i).collect(),
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    type ImportInteractionsStream = ServerStream<ImportInteractionsResponse>;

    #[tracing::instrument(skip_all)]
    async fn import_interactions(
        &self,
        request: Request<Streaming<ImportInteractionsRequest>>,
    ) -> Result<Response<Self::ImportInteractionsStream>, Status> {
        let (ctx, _scope) = self.authorize(&request, Perm::Import, "ImportInteractions").await?;
        let store = self.store.clone();
        let principal = ctx.principal.clone();
        let request_id = ctx.request_id.clone();
        let output = import_stream(
            ctx,
            request.into_inner(),
            |m: ImportInteractionsRequest| m.rows,
            valid_interaction_row,
            move |batch: Vec<InteractionRow>| {
                let (store, principal, request_id) = (store.clone(), principal.clone(), request_id.clone());
                async move { store.import_interactions(&principal, &request_id, &batch).await }
            },
            |results| ImportInteractionsResponse { results },
        );
        Ok(Response::new(output))
    }

    type WatchEventsStream = ServerStream<Event>;

    #[tracing::instrument(skip_all)]
    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let (ctx, _scope) = self.authorize(&request, Perm::EventsWatch, "WatchEvents").await?;
        let req = request.into_inner();
        Ledger::check_watch(req.after_sequence, &req.types).map_err(|e| ctx.status(e))?;
        let stream = self
            .store
            .ledger
            .watch(ctx, req.after_sequence, req.types, self.stopping.clone());
        Ok(Response::new(stream))
    }
}

fn time_field(v: &mut Violations, field: &str, ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    let ts = ts?;
    let micros = hcrm_kit::time::from_timestamp(ts);
    if micros.is_none() {
        v.add(field, "is out of range");
    }
    micros
}

fn valid_import_row(index: i64, row: ImportPatientRow) -> Result<PatientRow, ApiError> {
    let prefix = format!("rows[{index}]");
    let mut v = Violations::new();
    patient::check_external_id(&row.source_system, &row.external_id, &prefix, &mut v);
    let p = match row.patient {
        Some(p) => {
            let mut p = p;
            patient::clear_output_only(&mut p);
            p.external_ids.clear();
            patient::normalize(&mut p);
            patient::validate(&p, &format!("{prefix}.patient"), today(), &mut v);
            p
        }
        None => {
            v.add(format!("{prefix}.patient"), "is required");
            Patient::default()
        }
    };
    v.finish()?;
    Ok(PatientRow {
        index,
        external: ExternalId {
            source_system: row.source_system,
            external_id: row.external_id,
        },
        patient: p,
    })
}

fn valid_interaction_row(index: i64, row: ImportInteractionRow, now: i64) -> Result<InteractionRow, ApiError> {
    let prefix = format!("rows[{index}]");
    let mut v = Violations::new();
    let mut i = row.interaction.unwrap_or_default();
    interaction::normalize(&mut i);
    interaction::validate(&i, &format!("{prefix}.interaction"), now, &mut v);
    if i.source_system.is_empty() {
        v.add(
            format!("{prefix}.interaction.source_system"),
            "is required for imported interactions",
        );
    }
    let patient_id = if !row.patient.is_empty() {
        match patient_id(&format!("{prefix}.patient"), &row.patient) {
            Ok(id) => Some(id),
            Err(ApiError::InvalidArgument(mut list)) => {
                let f = list.remove(0);
                v.add(f.field, f.description);
                None
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let patient_external = (!row.patient_external_id.is_empty()).then(|| ExternalId {
        source_system: i.source_system.clone(),
        external_id: row.patient_external_id.clone(),
    });
    if patient_id.is_none() && patient_external.is_none() && row.patient.is_empty() {
        v.add(
            format!("{prefix}.patient"),
            "name the patient or give patient_external_id",
        );
    }
    v.finish()?;
    Ok(InteractionRow {
        index,
        patient_id,
        patient_external,
        interaction: i,
    })
}

/// Runs a bulk-intake stream: each message's rows are validated (a wrong row fails alone), the
/// valid ones committed in batches, and one response carries a result per row of the message.
/// A broken input stream or a failing database ends the stream with that status.
fn import_stream<M, R, V, Out, Fut>(
    ctx: hcrm_kit::request::RequestContext,
    mut input: Streaming<M>,
    rows_of: fn(M) -> Vec<R>,
    validate: fn(i64, R, i64) -> Result<V, ApiError>,
    commit: impl Fn(Vec<V>) -> Fut + Send + 'static,
    respond: fn(Vec<RowResult>) -> Out,
) -> ServerStream<Out>
where
    M: Send + 'static,
    R: Send + 'static,
    V: Send + 'static,
    Out: Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<RowResult>, ApiError>> + Send,
{
    async_stream(move |tx| async move {
        let mut index: i64 = 0;
        while let Some(message) = input.next().await {
            let rows = match message {
                Ok(m) => rows_of(m),
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            if rows.len() > IMPORT_MAX_ROWS_PER_MESSAGE {
                let err = ApiError::invalid(
                    "rows",
                    format!("at most {IMPORT_MAX_ROWS_PER_MESSAGE} rows per message"),
                );
                let _ = tx.send(Err(ctx.status(err))).await;
                return;
            }
            let now = hcrm_kit::time::now_micros();
            let mut results = Vec::with_capacity(rows.len());
            let mut valid = Vec::with_capacity(rows.len());
            for row in rows {
                match validate(index, row, now) {
                    Ok(row) => valid.push(row),
                    Err(e) => results.push(failed(index, &e)),
                }
                index += 1;
            }
            while !valid.is_empty() {
                let rest = valid.split_off(valid.len().min(IMPORT_BATCH));
                let batch = std::mem::replace(&mut valid, rest);
                let (rows, started) = (batch.len(), std::time::Instant::now());
                match commit(batch).await {
                    Ok(mut r) => results.append(&mut r),
                    Err(e) => {
                        let _ = tx.send(Err(ctx.status(e))).await;
                        return;
                    }
                }
                tracing::debug!(rows, elapsed_ms = started.elapsed().as_millis() as u64, "import batch");
            }
            results.sort_by_key(|r| r.index);
            if tx.send(Ok(respond(results))).await.is_err() {
                return;
            }
        }
    })
}
