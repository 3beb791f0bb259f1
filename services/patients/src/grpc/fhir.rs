//! `hcrm.patients.v1.FhirService`.

use super::{Api, check_reason};
use crate::domain::fhir::{self, MappedPatient, fhir_path};
use crate::domain::{patient, related};
use crate::permissions::Perm;
use crate::store::fhir::Link;
use crate::store::import::PatientRow;
use crate::store::parse_name;
use crate::store::patients::View;
use hcrm_kit::ApiError;
use hcrm_kit::request::RequestContext;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::fhir_service_server::FhirService;
use hcrm_proto::patients::*;
use std::collections::HashSet;
use tonic::{Request, Response, Status};

/// Related persons a patient may have (the store refuses more).
const MAX_RELATED: usize = 50;

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn issue(path: impl Into<String>, reason: impl Into<String>) -> FhirIssue {
    FhirIssue {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Validates a mapped patient like an imported row; violations become errors by FHIR path.
/// Invalid related persons are left out and reported as unmapped.
fn validate(m: &mut MappedPatient) {
    let mut p = std::mem::take(&mut m.patient);
    patient::clear_output_only(&mut p);
    p.external_ids.clear();
    patient::normalize(&mut p);
    let mut v = Violations::new();
    patient::validate(&p, "patient", today(), &mut v);
    if !m.key.external_id.is_empty() {
        patient::check_external_id(&m.key.source_system, &m.key.external_id, "rows", &mut v);
    }
    for (i, ext) in m.external_ids.iter().enumerate() {
        patient::check_external_id(
            &ext.source_system,
            &ext.external_id,
            &format!("patient.external_ids[{i}]"),
            &mut v,
        );
    }
    if let Err(ApiError::InvalidArgument(list)) = v.finish() {
        for f in list {
            m.errors.push(issue(fhir_path(&m.paths, &f.field), f.description));
        }
    }
    m.patient = p;
    let mut kept = Vec::new();
    for mut r in std::mem::take(&mut m.related) {
        related::normalize(&mut r.related);
        let mut v = Violations::new();
        related::validate(&r.related, "related_person", &mut v);
        match v.finish() {
            Ok(()) => kept.push(r),
            Err(ApiError::InvalidArgument(list)) => {
                let why: Vec<String> = list.iter().map(|f| format!("{}: {}", f.field, f.description)).collect();
                m.unmapped
                    .push(issue(&r.path, format!("not imported: {}", why.join("; "))));
            }
            Err(other) => m.unmapped.push(issue(&r.path, format!("not imported: {other}"))),
        }
    }
    if kept.len() > MAX_RELATED {
        for r in kept.split_off(MAX_RELATED) {
            m.unmapped.push(issue(
                &r.path,
                format!("a patient has at most {MAX_RELATED} related persons"),
            ));
        }
    }
    m.related = kept;
}

fn result_of(m: &MappedPatient, outcome: FhirImportOutcome, patient: String) -> FhirEntryResult {
    FhirEntryResult {
        index: m.index,
        fhir_id: m.fhir_id.clone(),
        outcome: outcome as i32,
        patient,
        errors: m.errors.clone(),
        unmapped: m.unmapped.clone(),
        related_persons: Vec::new(),
    }
}

impl Api {
    /// Writes the mapped patients through the import path, then their further external ids and
    /// related persons; one result per patient.
    async fn import_mapped(
        &self,
        ctx: &RequestContext,
        mapped: Vec<MappedPatient>,
        dry_run: bool,
    ) -> Result<Vec<FhirEntryResult>, ApiError> {
        let mut results = Vec::with_capacity(mapped.len());
        let mut rows = Vec::new();
        let mut valid = Vec::new();
        for m in mapped {
            if !m.errors.is_empty() {
                results.push(result_of(&m, FhirImportOutcome::Failed, String::new()));
                continue;
            }
            if dry_run {
                let existing = self.store.patient_by_external_id(&m.key).await?;
                let (outcome, name) = match existing {
                    Some(id) => (FhirImportOutcome::Updated, crate::store::patients::name_of(&id)),
                    None => (FhirImportOutcome::Created, String::new()),
                };
                results.push(result_of(&m, outcome, name));
                continue;
            }
            rows.push(PatientRow {
                index: i64::from(m.index),
                external: m.key.clone(),
                patient: m.patient.clone(),
            });
            valid.push(m);
        }
        if rows.is_empty() {
            return Ok(results);
        }
        let written = self
            .store
            .import_patients(&ctx.principal, &ctx.request_id, &rows)
            .await?;
        let mut written: std::collections::HashMap<i64, RowResult> =
            written.into_iter().map(|r| (r.index, r)).collect();
        for m in valid {
            let Some(row) = written.remove(&i64::from(m.index)) else {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "the import answered no result for a row"
                )));
            };
            if row.code != 0 {
                let mut m = m;
                let path = if row.message.contains("identity") {
                    fhir_path(&m.paths, "patient.identity_number")
                } else if row.message.contains("code") {
                    fhir_path(&m.paths, "patient.code")
                } else {
                    fhir_path(&m.paths, "patient")
                };
                m.errors.push(issue(path, row.message));
                results.push(result_of(&m, FhirImportOutcome::Failed, String::new()));
                continue;
            }
            let outcome = if row.created {
                FhirImportOutcome::Created
            } else {
                FhirImportOutcome::Updated
            };
            let pid = row.name.trim_start_matches("patients/").to_string();
            let mut result = result_of(&m, outcome, row.name.clone());
            let links = self.store.link_more_external_ids(ctx, &pid, &m.external_ids).await?;
            for (i, link) in links.into_iter().enumerate() {
                if let Link::HeldBy(holder) = link {
                    let path = fhir_path(&m.paths, &format!("patient.external_ids[{i}]"));
                    result
                        .unmapped
                        .push(issue(path, format!("this external id belongs to {holder}")));
                }
            }
            let mut have: HashSet<(String, String)> = self.store.related_keys(&pid).await?.into_iter().collect();
            for r in m.related {
                let key = (r.related.display_name.clone(), r.related.relationship.clone());
                if !have.insert(key) {
                    continue;
                }
                match self
                    .store
                    .create_related(ctx, &pid, &hcrm_kit::auth::Scope::All, r.related, None)
                    .await
                {
                    Ok(created) => result.related_persons.push(created.name),
                    Err(e @ (ApiError::FailedPrecondition(_) | ApiError::InvalidArgument(_))) => {
                        result.unmapped.push(issue(&r.path, format!("not imported: {e}")))
                    }
                    Err(e) => return Err(e),
                }
            }
            fhir::sort_issues(&mut result.unmapped);
            results.push(result);
        }
        results.sort_by_key(|r| r.index);
        Ok(results)
    }
}

#[tonic::async_trait]
impl FhirService for Api {
    #[tracing::instrument(skip_all)]
    async fn export_patient(
        &self,
        request: Request<ExportPatientRequest>,
    ) -> Result<Response<ExportPatientResponse>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::FhirExport, "ExportPatient").await?;
        let req = request.into_inner();
        let view = PatientView::try_from(req.view)
            .map_err(|_| ctx.status(ApiError::invalid("view", format!("unknown view {}", req.view))))?;
        let full_scope = if view == PatientView::Full {
            Some(
                self.check(&ctx, Perm::PatientReadProtected, "ExportPatient(FULL)")
                    .await?,
            )
        } else {
            None
        };
        let result = async {
            let id = parse_name("name", &req.name, "patients")?.to_string();
            let p = match &full_scope {
                Some(full_scope) => {
                    check_reason("access_reason", &req.access_reason, true)?;
                    // Both grants must reach the record.
                    self.store.get_patient(&id, &scope, View::Masked).await?;
                    self.store
                        .get_patient_audited(&ctx, &id, full_scope, &req.access_reason)
                        .await?
                }
                None => self.store.get_patient(&id, &scope, View::Masked).await?,
            };
            if !p.merged_into.is_empty() {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} was merged into {}: export that record",
                    p.name, p.merged_into
                )));
            }
            let related = self
                .store
                .list_related(&id, &hcrm_kit::auth::Scope::All, None, MAX_RELATED)
                .await?;
            let include = full_scope.is_some();
            let bundle = fhir::export_bundle(&self.fhir, &p, &related, include);
            Ok(ExportPatientResponse {
                resource_json: bundle.to_string(),
                masked: !include,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn import_fhir(&self, request: Request<ImportFhirRequest>) -> Result<Response<ImportFhirResponse>, Status> {
        let (ctx, _) = self.authorize(&request, Perm::Import, "ImportFhir").await?;
        let req = request.into_inner();
        let result = async {
            if !patient::is_code(&req.source_system, 32) {
                return Err(ApiError::invalid(
                    "source_system",
                    "must be 1–32 lower-case letters, digits, - or _",
                ));
            }
            let mapped = fhir::map_import(&self.fhir, &req.resource_json, &req.source_system)?;
            let mut patients = mapped.patients;
            let mut seen = HashSet::new();
            for m in &mut patients {
                validate(m);
                if m.errors.is_empty() && !seen.insert(m.key.external_id.clone()) {
                    let path = fhir_path(&m.paths, "rows.external_id");
                    m.errors
                        .push(issue(path, "the same patient appears twice in the Bundle"));
                }
            }
            let results = self.import_mapped(&ctx, patients, req.dry_run).await?;
            Ok(ImportFhirResponse {
                results,
                unmapped: mapped.unmapped,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}
