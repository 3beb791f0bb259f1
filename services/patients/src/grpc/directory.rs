//! `hcrm.patients.v1.DirectoryService`: departments, doctors, clinic schedules, the HIS import
//! and the guide desk's queries.

use super::{Api, mask_paths, request_key};
use crate::domain::directory as rules;
use crate::domain::patient::{check_external_id, date_of, is_code};
use crate::permissions::Perm;
use crate::store::directory::{DoctorFilter, ImportRow, RowIn, SessionQuery};
use crate::store::import::failed;
use crate::store::parse_name;
use futures::StreamExt;
use hcrm_kit::ApiError;
use hcrm_kit::clock::Clock;
use hcrm_kit::feed::{ServerStream, async_stream};
use hcrm_kit::paging::PageSize;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::directory_row::Row;
use hcrm_proto::patients::directory_service_server::DirectoryService;
use hcrm_proto::patients::*;
use tonic::{Request, Response, Status, Streaming};

/// Rows accepted in one import message, and committed per transaction.
const IMPORT_MAX_ROWS_PER_MESSAGE: usize = 1_000;
const IMPORT_BATCH: usize = 500;
/// Rows written by one import stream after which the directory's statistics are refreshed.
const ANALYZE_AFTER_ROWS: usize = 1_000;

/// The directory's servers: the shared API plus the hospital's time zone and the clock "now"
/// is read from.
#[derive(Clone)]
pub struct Directory {
    pub api: Api,
    pub utc_offset_minutes: i32,
    pub clock: Clock,
}

impl Directory {
    pub fn new(api: Api, utc_offset_minutes: i32, clock: Clock) -> Self {
        Self {
            api,
            utc_offset_minutes,
            clock,
        }
    }
}

fn id_of(field: &str, name: &str, collection: &str) -> Result<String, ApiError> {
    parse_name(field, name, collection).map(str::to_string)
}

fn check_code(v: &mut Violations, field: &str, code: &str) {
    if !code.is_empty() && !is_code(code, 64) {
        v.add(
            field,
            "must be a department code: 1–64 lower-case letters, digits, - or _",
        );
    }
}

fn limit_of(field: &str, requested: i32, default: usize, max: usize) -> Result<usize, ApiError> {
    match requested {
        0 => Ok(default),
        n if n < 0 || n as usize > max => Err(ApiError::invalid(field, format!("must be between 1 and {max}"))),
        n => Ok(n as usize),
    }
}

/// A department for create or import: normalised, output-only fields cleared (but `archived`
/// kept), checked.
fn department_in(mut d: Department, prefix: &str, v: &mut Violations) -> Department {
    let archived = d.archived;
    rules::clear_department_output(&mut d);
    rules::normalize_department(&mut d);
    rules::validate_department(&d, prefix, v);
    d.archived = archived;
    d
}

fn doctor_in(mut d: Doctor, prefix: &str, v: &mut Violations) -> Doctor {
    let archived = d.archived;
    rules::clear_doctor_output(&mut d);
    d.source_system = d.source_system.trim().to_string();
    d.external_id = d.external_id.trim().to_string();
    rules::normalize_doctor(&mut d);
    rules::validate_doctor(&d, prefix, v);
    d.archived = archived;
    d
}

fn valid_row(index: i64, row: DirectoryRow) -> Result<ImportRow, ApiError> {
    let prefix = format!("rows[{index}]");
    let mut v = Violations::new();
    let row = match row.row {
        None => {
            v.add(
                prefix.clone(),
                "one of department, doctor, pattern, exception or doctor_patterns is required",
            );
            None
        }
        Some(Row::Department(d)) => Some(RowIn::Department(department_in(
            d,
            &format!("{prefix}.department"),
            &mut v,
        ))),
        Some(Row::Doctor(d)) => {
            let f = format!("{prefix}.doctor");
            let d = doctor_in(d, &f, &mut v);
            if d.source_system.is_empty() && d.external_id.is_empty() {
                check_external_id(&d.source_system, &d.external_id, &f, &mut v);
            }
            Some(RowIn::Doctor(d))
        }
        Some(Row::Pattern(mut p)) => {
            let f = format!("{prefix}.pattern");
            rules::normalize_pattern(&mut p);
            let rule = rules::validate_pattern(&p, &f, true, &mut v);
            if p.source_system.is_empty() && p.external_id.is_empty() {
                check_external_id(&p.source_system, &p.external_id, &f, &mut v);
            }
            rule.map(|r| RowIn::Pattern(p, r))
        }
        Some(Row::Exception(mut e)) => {
            let f = format!("{prefix}.exception");
            rules::normalize_exception(&mut e);
            let rule = rules::validate_exception(&e, &f, &mut v);
            if e.source_system.is_empty() && e.external_id.is_empty() {
                check_external_id(&e.source_system, &e.external_id, &f, &mut v);
            }
            rule.map(|r| RowIn::Exception(e, r))
        }
        Some(Row::DoctorPatterns(set)) => {
            let f = format!("{prefix}.doctor_patterns");
            if !is_code(&set.source_system, 32) {
                v.add(
                    format!("{f}.source_system"),
                    "must be 1–32 lower-case letters, digits, - or _",
                );
            }
            if set.doctor.is_empty() && set.doctor_external_id.is_empty() {
                v.add(format!("{f}.doctor"), "is required (or doctor_external_id)");
            }
            if set.patterns.len() > 100 {
                v.add(format!("{f}.patterns"), "at most 100 patterns");
            }
            let mut seen = std::collections::HashSet::new();
            let mut patterns = Vec::new();
            for (i, mut p) in set.patterns.into_iter().enumerate() {
                let pf = format!("{f}.patterns[{i}]");
                rules::normalize_pattern(&mut p);
                p.source_system = set.source_system.clone();
                p.external_id = p.external_id.trim().to_string();
                let id = &p.external_id;
                if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
                    v.add(format!("{pf}.external_id"), "must be 1–64 printable ASCII characters");
                } else if !seen.insert(id.clone()) {
                    v.add(format!("{pf}.external_id"), "is repeated in the set");
                }
                if let Some(rule) = rules::validate_pattern(&p, &pf, false, &mut v) {
                    patterns.push((p, rule));
                }
            }
            Some(RowIn::DoctorPatterns {
                doctor: set.doctor.trim().to_string(),
                doctor_external_id: set.doctor_external_id.trim().to_string(),
                source_system: set.source_system,
                patterns,
            })
        }
    };
    v.finish()?;
    let row = row.ok_or_else(|| ApiError::invalid(prefix, "is not a valid row"))?;
    Ok(ImportRow { index, row })
}

#[tonic::async_trait]
impl DirectoryService for Directory {
    #[tracing::instrument(skip_all)]
    async fn create_department(
        &self,
        request: Request<CreateDepartmentRequest>,
    ) -> Result<Response<Department>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "CreateDepartment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let d = match req.department {
                Some(d) => department_in(d, "department", &mut v),
                None => {
                    v.add("department", "is required");
                    Department::default()
                }
            };
            v.finish()?;
            self.api.store.create_department(&ctx, d).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_department(&self, request: Request<GetDepartmentRequest>) -> Result<Response<Department>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "GetDepartment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let code = id_of("name", &req.name, "departments")?;
            self.api.store.get_department(&code).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn update_department(
        &self,
        request: Request<UpdateDepartmentRequest>,
    ) -> Result<Response<Department>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "UpdateDepartment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let changes = req
                .department
                .ok_or_else(|| ApiError::invalid("department", "is required"))?;
            let code = id_of("department.name", &changes.name, "departments")?;
            let paths = mask_paths(req.update_mask.as_ref(), rules::DEPARTMENT_PATHS)?;
            if req.etag.is_empty() {
                return Err(ApiError::invalid("etag", "is required"));
            }
            self.api
                .store
                .update_department(&ctx, &code, changes, &paths, &req.etag)
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_departments(
        &self,
        request: Request<ListDepartmentsRequest>,
    ) -> Result<Response<ListDepartmentsResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "ListDepartments")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let key = format!("departments\u{1f}{}", req.show_archived);
            let offset: usize = self.api.pages.read("page_token", &key, &req.page_token)?.unwrap_or(0);
            let departments = self.api.store.list_departments(req.show_archived, size, offset).await?;
            let next_page_token = if departments.len() == size {
                self.api.pages.issue(&key, &(offset + size))
            } else {
                String::new()
            };
            Ok(ListDepartmentsResponse {
                departments,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn archive_department(
        &self,
        request: Request<ArchiveDepartmentRequest>,
    ) -> Result<Response<Department>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "ArchiveDepartment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let code = id_of("name", &req.name, "departments")?;
            self.api.store.archive_department(&ctx, &code).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn create_doctor(&self, request: Request<CreateDoctorRequest>) -> Result<Response<Doctor>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "CreateDoctor")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let d = match req.doctor {
                Some(d) => doctor_in(d, "doctor", &mut v),
                None => {
                    v.add("doctor", "is required");
                    Doctor::default()
                }
            };
            v.finish()?;
            let key = request_key("CreateDoctor", &ctx, &req.request_id);
            self.api.store.create_doctor(&ctx, d, key).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_doctor(&self, request: Request<GetDoctorRequest>) -> Result<Response<Doctor>, Status> {
        let (ctx, _) = self.api.authorize(&request, Perm::DirectoryRead, "GetDoctor").await?;
        let req = request.into_inner();
        let result = async {
            let id = id_of("name", &req.name, "doctors")?;
            self.api.store.get_doctor(&id).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn update_doctor(&self, request: Request<UpdateDoctorRequest>) -> Result<Response<Doctor>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "UpdateDoctor")
            .await?;
        let req = request.into_inner();
        let result = async {
            let changes = req.doctor.ok_or_else(|| ApiError::invalid("doctor", "is required"))?;
            let id = id_of("doctor.name", &changes.name, "doctors")?;
            let paths = mask_paths(req.update_mask.as_ref(), rules::DOCTOR_PATHS)?;
            if req.etag.is_empty() {
                return Err(ApiError::invalid("etag", "is required"));
            }
            self.api
                .store
                .update_doctor(&ctx, &id, changes, &paths, &req.etag)
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_doctors(
        &self,
        request: Request<ListDoctorsRequest>,
    ) -> Result<Response<ListDoctorsResponse>, Status> {
        let (ctx, _) = self.api.authorize(&request, Perm::DirectoryRead, "ListDoctors").await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let size = PageSize::STANDARD.resolve("page_size", req.page_size);
            if let Err(ApiError::InvalidArgument(list)) = &size {
                for f in list {
                    v.add(f.field.clone(), f.description.clone());
                }
            }
            check_code(&mut v, "department", &req.department);
            v.text("specialty", &req.specialty, false, 64);
            v.text("query", &req.query, false, 64);
            v.finish()?;
            let size = size?;
            let key = format!(
                "doctors\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
                req.department, req.specialty, req.experts_only, req.query, req.show_archived
            );
            let offset: usize = self.api.pages.read("page_token", &key, &req.page_token)?.unwrap_or(0);
            let filter = DoctorFilter {
                department: req.department,
                specialty: req.specialty,
                experts_only: req.experts_only,
                query: req.query,
                show_archived: req.show_archived,
            };
            let doctors = self.api.store.list_doctors(&filter, size, offset).await?;
            let next_page_token = if doctors.len() == size {
                self.api.pages.issue(&key, &(offset + size))
            } else {
                String::new()
            };
            Ok(ListDoctorsResponse {
                doctors,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn archive_doctor(&self, request: Request<ArchiveDoctorRequest>) -> Result<Response<Doctor>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "ArchiveDoctor")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = id_of("name", &req.name, "doctors")?;
            self.api.store.archive_doctor(&ctx, &id).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn create_clinic_pattern(
        &self,
        request: Request<CreateClinicPatternRequest>,
    ) -> Result<Response<ClinicPattern>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "CreateClinicPattern")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut p = req.pattern.unwrap_or_default();
            rules::normalize_pattern(&mut p);
            let rule = rules::validate_pattern(&p, "pattern", true, &mut v);
            v.finish()?;
            let rule = rule.ok_or_else(|| ApiError::invalid("pattern", "is not valid"))?;
            let key = request_key("CreateClinicPattern", &ctx, &req.request_id);
            self.api.store.create_pattern(&ctx, p, rule, key).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_clinic_pattern(
        &self,
        request: Request<GetClinicPatternRequest>,
    ) -> Result<Response<ClinicPattern>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "GetClinicPattern")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = id_of("name", &req.name, "clinicPatterns")?;
            self.api.store.get_pattern(&id).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_clinic_patterns(
        &self,
        request: Request<ListClinicPatternsRequest>,
    ) -> Result<Response<ListClinicPatternsResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "ListClinicPatterns")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let doctor = if req.doctor.is_empty() {
                None
            } else {
                Some(id_of("doctor", &req.doctor, "doctors")?)
            };
            let mut v = Violations::new();
            check_code(&mut v, "department", &req.department);
            v.finish()?;
            let key = format!("clinicPatterns\u{1f}{}\u{1f}{}", req.doctor, req.department);
            let offset: usize = self.api.pages.read("page_token", &key, &req.page_token)?.unwrap_or(0);
            let patterns = self
                .api
                .store
                .list_patterns(doctor.as_deref(), &req.department, size, offset)
                .await?;
            let next_page_token = if patterns.len() == size {
                self.api.pages.issue(&key, &(offset + size))
            } else {
                String::new()
            };
            Ok(ListClinicPatternsResponse {
                patterns,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_clinic_pattern(
        &self,
        request: Request<DeleteClinicPatternRequest>,
    ) -> Result<Response<ClinicPattern>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "DeleteClinicPattern")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = id_of("name", &req.name, "clinicPatterns")?;
            self.api.store.delete_pattern(&ctx, &id).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn create_schedule_exception(
        &self,
        request: Request<CreateScheduleExceptionRequest>,
    ) -> Result<Response<ScheduleException>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "CreateScheduleException")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut e = req.exception.unwrap_or_default();
            rules::normalize_exception(&mut e);
            let rule = rules::validate_exception(&e, "exception", &mut v);
            v.finish()?;
            let rule = rule.ok_or_else(|| ApiError::invalid("exception", "is not valid"))?;
            let key = request_key("CreateScheduleException", &ctx, &req.request_id);
            self.api.store.create_exception(&ctx, e, rule, key).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_schedule_exception(
        &self,
        request: Request<GetScheduleExceptionRequest>,
    ) -> Result<Response<ScheduleException>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "GetScheduleException")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = id_of("name", &req.name, "scheduleExceptions")?;
            self.api.store.get_exception(&id).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_schedule_exceptions(
        &self,
        request: Request<ListScheduleExceptionsRequest>,
    ) -> Result<Response<ListScheduleExceptionsResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "ListScheduleExceptions")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let doctor = if req.doctor.is_empty() {
                None
            } else {
                Some(id_of("doctor", &req.doctor, "doctors")?)
            };
            let mut v = Violations::new();
            let mut day = |field: &str, d: Option<&hcrm_proto::types::Date>| {
                d.and_then(|d| match date_of(d) {
                    Some(nd) => Some(rules::day_number(nd)),
                    None => {
                        v.add(field, "must be a real date");
                        None
                    }
                })
            };
            let from = day("from_date", req.from_date.as_ref());
            let to = day("to_date", req.to_date.as_ref());
            v.finish()?;
            let key = format!("scheduleExceptions\u{1f}{}\u{1f}{from:?}\u{1f}{to:?}", req.doctor);
            let offset: usize = self.api.pages.read("page_token", &key, &req.page_token)?.unwrap_or(0);
            let exceptions = self
                .api
                .store
                .list_exceptions(doctor.as_deref(), from, to, size, offset)
                .await?;
            let next_page_token = if exceptions.len() == size {
                self.api.pages.issue(&key, &(offset + size))
            } else {
                String::new()
            };
            Ok(ListScheduleExceptionsResponse {
                exceptions,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_schedule_exception(
        &self,
        request: Request<DeleteScheduleExceptionRequest>,
    ) -> Result<Response<ScheduleException>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "DeleteScheduleException")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = id_of("name", &req.name, "scheduleExceptions")?;
            self.api.store.delete_exception(&ctx, &id).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    type ImportDirectoryStream = ServerStream<ImportDirectoryResponse>;

    #[tracing::instrument(skip_all)]
    async fn import_directory(
        &self,
        request: Request<Streaming<ImportDirectoryRequest>>,
    ) -> Result<Response<Self::ImportDirectoryStream>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryWrite, "ImportDirectory")
            .await?;
        let store = self.api.store.clone();
        let mut input = request.into_inner();
        let output = async_stream(move |tx| async move {
            let mut index: i64 = 0;
            let mut written = 0;
            while let Some(message) = input.next().await {
                let rows = match message {
                    Ok(m) => m.rows,
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
                let mut results = Vec::with_capacity(rows.len());
                let mut valid = Vec::with_capacity(rows.len());
                for row in rows {
                    match valid_row(index, row) {
                        Ok(row) => valid.push(row),
                        Err(e) => results.push(failed(index, &e)),
                    }
                    index += 1;
                }
                while !valid.is_empty() {
                    let rest = valid.split_off(valid.len().min(IMPORT_BATCH));
                    let batch = std::mem::replace(&mut valid, rest);
                    match store.import_directory(&ctx.principal, &ctx.request_id, &batch).await {
                        Ok(mut r) => results.append(&mut r),
                        Err(e) => {
                            let _ = tx.send(Err(ctx.status(e))).await;
                            return;
                        }
                    }
                }
                results.sort_by_key(|r| r.index);
                written += results.iter().filter(|r| r.code == 0).count();
                if tx.send(Ok(ImportDirectoryResponse { results })).await.is_err() {
                    return;
                }
            }
            if written >= ANALYZE_AFTER_ROWS
                && let Err(e) = store.analyze_directory().await
            {
                let _ = tx.send(Err(ctx.status(e))).await;
            }
        });
        Ok(Response::new(output))
    }

    #[tracing::instrument(skip_all)]
    async fn find_departments(
        &self,
        request: Request<FindDepartmentsRequest>,
    ) -> Result<Response<FindDepartmentsResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "FindDepartments")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.text("query", &req.query, true, 64);
            let limit = limit_of("limit", req.limit, 10, 50);
            if let Err(ApiError::InvalidArgument(list)) = &limit {
                for f in list {
                    v.add(f.field.clone(), f.description.clone());
                }
            }
            v.finish()?;
            let matches = self.api.store.find_departments(&req.query, limit?).await?;
            Ok(FindDepartmentsResponse { matches })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn next_clinic_sessions(
        &self,
        request: Request<NextClinicSessionsRequest>,
    ) -> Result<Response<NextClinicSessionsResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "NextClinicSessions")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = id_of("doctor", &req.doctor, "doctors")?;
            let mut v = Violations::new();
            let from = match &req.from_time {
                None => Some(self.clock.now()),
                Some(ts) => {
                    let micros = hcrm_kit::time::from_timestamp(ts);
                    if micros.is_none() {
                        v.add("from_time", "is out of range");
                    }
                    micros
                }
            };
            let limit = limit_of("limit", req.limit, 5, 50);
            if let Err(ApiError::InvalidArgument(list)) = &limit {
                for f in list {
                    v.add(f.field.clone(), f.description.clone());
                }
            }
            v.finish()?;
            let (from, limit) = (from.unwrap_or_default(), limit?);
            let sessions = self
                .api
                .store
                .next_sessions(&id, from, limit, self.utc_offset_minutes)
                .await?;
            Ok(NextClinicSessionsResponse { sessions })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn find_clinic_sessions(
        &self,
        request: Request<FindClinicSessionsRequest>,
    ) -> Result<Response<FindClinicSessionsResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::DirectoryRead, "FindClinicSessions")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let department = req.department.trim().to_lowercase();
            check_code(&mut v, "department", &department);
            v.text("specialty", &req.specialty, false, 64);
            if department.is_empty() && req.specialty.trim().is_empty() {
                v.add("department", "department or specialty is required");
            }
            v.enum_value::<Weekday>("weekday", req.weekday, false);
            v.enum_value::<ClinicKind>("kind", req.kind, false);
            let mut day = None;
            match (&req.date, req.weekday) {
                (Some(_), w) if w != 0 => v.add("weekday", "give a date or a weekday, not both"),
                (None, 0) => v.add("date", "a date or a weekday is required"),
                (Some(d), _) => match date_of(d) {
                    Some(nd) => day = Some(rules::day_number(nd)),
                    None => v.add("date", "must be a real date"),
                },
                (None, w) => {
                    let (today, _) = rules::local_day_minute(self.clock.now(), self.utc_offset_minutes);
                    if (1..=7).contains(&w) {
                        day = Some(rules::next_weekday(today, w));
                    }
                }
            }
            v.finish()?;
            let day = day.ok_or_else(|| ApiError::invalid("date", "is required"))?;
            let query = SessionQuery {
                department,
                specialty: req.specialty,
                day,
                experts_only: req.experts_only,
                kind: req.kind,
            };
            let sessions = self.api.store.find_sessions(&query, self.utc_offset_minutes).await?;
            Ok(FindClinicSessionsResponse {
                date: Some(rules::to_date(day)),
                sessions,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}
