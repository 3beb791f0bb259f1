//! `hcrm.patients.v1.AppointmentService`.

use super::{Api, request_key};
use crate::domain::patient::{date_of, is_code};
use crate::permissions::{PERMISSIONS, Perm};
use crate::store::appointments::Answer;
use crate::store::parse_name;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::paging::PageSize;
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::from_timestamp;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::appointment_service_server::AppointmentService;
use hcrm_proto::patients::*;
use tonic::{Request, Response, Status};

/// Preferred days a request may list.
const MAX_PREFERRED_DATES: usize = 7;

fn appointment_id(field: &str, name: &str) -> Result<String, ApiError> {
    parse_name(field, name, "appointment_requests").map(str::to_string)
}

/// Checks a request after output-only fields were cleared; `today` is the local date.
fn validate_request(a: &AppointmentRequest, today: chrono::NaiveDate, now: i64, v: &mut Violations) {
    let f = |name: &str| format!("appointment_request.{name}");
    if a.patient.is_empty() {
        v.add(f("patient"), "is required");
    } else if parse_name(&f("patient"), &a.patient, "patients").is_err() {
        v.add(f("patient"), "must look like patients/{id}");
    }
    v.enum_value::<AppointmentKind>(&f("kind"), a.kind, true);
    if a.department.is_empty() {
        v.add(f("department"), "is required");
    } else if !is_code(&a.department, 64) {
        v.add(
            f("department"),
            "must be a department code: 1–64 lower-case letters, digits, - or _",
        );
    }
    if !a.doctor.is_empty() && parse_name(&f("doctor"), &a.doctor, "doctors").is_err() {
        v.add(f("doctor"), "must look like doctors/{id}");
    }
    if a.preferred_dates.len() > MAX_PREFERRED_DATES {
        v.add(f("preferred_dates"), format!("at most {MAX_PREFERRED_DATES} days"));
    }
    for (i, d) in a.preferred_dates.iter().enumerate() {
        match date_of(d) {
            None => v.add(format!("{}[{i}]", f("preferred_dates")), "is not a real calendar date"),
            Some(d) if d < today => v.add(format!("{}[{i}]", f("preferred_dates")), "is in the past"),
            Some(_) => {}
        }
    }
    let start = a
        .window_start_time
        .as_ref()
        .map(|t| (from_timestamp(t), "window_start_time"));
    let end = a
        .window_end_time
        .as_ref()
        .map(|t| (from_timestamp(t), "window_end_time"));
    for (micros, field) in [start, end].into_iter().flatten() {
        match micros {
            None => v.add(f(field), "is out of range"),
            Some(m) if m < now - 60_000_000 => v.add(f(field), "is in the past"),
            Some(_) => {}
        }
    }
    if let (Some((Some(s), _)), Some((Some(e), _))) = (start, end)
        && e <= s
    {
        v.add(f("window_end_time"), "must be after window_start_time");
    }
    if a.preferred_dates.is_empty() && a.window_start_time.is_none() && a.window_end_time.is_none() {
        v.add(
            f("preferred_dates"),
            "give preferred dates or a window (window_start_time, window_end_time)",
        );
    }
    v.text(&f("reason"), &a.reason, false, 500);
    v.text(&f("source"), &a.source, false, 200);
}

/// Clears what callers may not set.
fn clear_output_only(a: &mut AppointmentRequest) {
    a.name.clear();
    a.requested_by.clear();
    a.state = 0;
    a.booked_time = None;
    a.booking_reference.clear();
    a.rejection_reason.clear();
    a.failure_reason.clear();
    a.interaction.clear();
    a.etag.clear();
    a.create_time = None;
    a.update_time = None;
    a.send_time = None;
    a.answer_time = None;
}

impl Api {
    /// Readers of appointment requests: those who request them, and the booking platform that
    /// answers them.
    async fn authorize_read<T>(&self, request: &Request<T>, method: &str) -> Result<(RequestContext, Scope), Status> {
        let ctx = RequestContext::of(request)?;
        let perm = if ctx.principal.authorize(&PERMISSIONS, Perm::AppointmentRequest).is_err()
            && ctx.principal.authorize(&PERMISSIONS, Perm::AppointmentConfirm).is_ok()
        {
            Perm::AppointmentConfirm
        } else {
            Perm::AppointmentRequest
        };
        let scope = self.check(&ctx, perm, method).await?;
        Ok((ctx, scope))
    }
}

#[tonic::async_trait]
impl AppointmentService for Api {
    #[tracing::instrument(skip_all)]
    async fn request_appointment(
        &self,
        request: Request<RequestAppointmentRequest>,
    ) -> Result<Response<AppointmentRequest>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::AppointmentRequest, "RequestAppointment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut a = req.appointment_request.unwrap_or_default();
            clear_output_only(&mut a);
            a.department = a.department.trim().to_lowercase();
            a.reason = a.reason.trim().to_string();
            a.source = a.source.trim().to_string();
            let now = hcrm_kit::time::now_micros();
            // The earliest local date anywhere: a day in the past is refused in every time zone.
            let today = (chrono::Utc::now() - chrono::Duration::hours(14)).date_naive();
            validate_request(&a, today, now, &mut v);
            v.finish()?;
            let patient_id = parse_name("appointment_request.patient", &a.patient, "patients")?.to_string();
            let key = request_key("RequestAppointment", &ctx, &req.request_id);
            self.store
                .request_appointment(&ctx, &self.outbox, &scope, &patient_id, a, key)
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_appointment(
        &self,
        request: Request<ConfirmAppointmentRequest>,
    ) -> Result<Response<AppointmentRequest>, Status> {
        let (ctx, _) = self
            .authorize(&request, Perm::AppointmentConfirm, "ConfirmAppointment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = match appointment_id("name", &req.name) {
                Ok(id) => id,
                Err(ApiError::InvalidArgument(list)) => {
                    for f in list {
                        v.add(f.field, f.description);
                    }
                    String::new()
                }
                Err(e) => return Err(e),
            };
            let answer = match AppointmentState::try_from(req.outcome) {
                Ok(AppointmentState::Confirmed) => {
                    let booked = req.booked_time.as_ref().map(from_timestamp);
                    let booked_at = match booked {
                        None => {
                            v.add("booked_time", "is required when the outcome is CONFIRMED");
                            0
                        }
                        Some(None) => {
                            v.add("booked_time", "is out of range");
                            0
                        }
                        Some(Some(at)) => at,
                    };
                    let reference = req.booking_reference.trim().to_string();
                    if reference.is_empty() {
                        v.add("booking_reference", "is required when the outcome is CONFIRMED");
                    } else if reference.chars().count() > 64 {
                        v.add("booking_reference", "must be at most 64 characters");
                    }
                    if !req.rejection_reason.is_empty() {
                        v.add("rejection_reason", "must be empty when the outcome is CONFIRMED");
                    }
                    Some(Answer::Confirmed { booked_at, reference })
                }
                Ok(AppointmentState::Rejected) => {
                    let reason = req.rejection_reason.trim().to_string();
                    v.text("rejection_reason", &reason, true, 500);
                    if req.booked_time.is_some() {
                        v.add("booked_time", "must be empty when the outcome is REJECTED");
                    }
                    if !req.booking_reference.is_empty() {
                        v.add("booking_reference", "must be empty when the outcome is REJECTED");
                    }
                    Some(Answer::Rejected { reason })
                }
                _ => {
                    v.add("outcome", "must be CONFIRMED or REJECTED");
                    None
                }
            };
            v.finish()?;
            let answer = answer.expect("checked above");
            self.store.confirm_appointment(&ctx, &id, answer).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_appointment_request(
        &self,
        request: Request<GetAppointmentRequestRequest>,
    ) -> Result<Response<AppointmentRequest>, Status> {
        let (ctx, scope) = self.authorize_read(&request, "GetAppointmentRequest").await?;
        let req = request.into_inner();
        let result = async {
            let id = appointment_id("name", &req.name)?;
            self.store.get_appointment(&id, &scope).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_appointment_requests(
        &self,
        request: Request<ListAppointmentRequestsRequest>,
    ) -> Result<Response<ListAppointmentRequestsResponse>, Status> {
        let (ctx, scope) = self.authorize_read(&request, "ListAppointmentRequests").await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let size = match PageSize::STANDARD.resolve("page_size", req.page_size) {
                Ok(size) => size,
                Err(_) => {
                    v.add("page_size", "must be 0–500");
                    0
                }
            };
            let patient_id = if req.patient.is_empty() {
                None
            } else {
                match parse_name("patient", &req.patient, "patients") {
                    Ok(id) => Some(id.to_string()),
                    Err(_) => {
                        v.add("patient", "must look like patients/{id}");
                        None
                    }
                }
            };
            v.enum_value::<AppointmentState>("state", req.state, false);
            v.finish()?;
            let key = format!(
                "appointment_requests\u{1f}{}\u{1f}{}\u{1f}{scope:?}",
                req.patient, req.state
            );
            let after: Option<(i64, String)> = self.pages.read("page_token", &key, &req.page_token)?;
            let rows = self
                .store
                .list_appointments(&scope, patient_id.as_deref(), req.state, after, size)
                .await?;
            let next_page_token = match rows.last() {
                Some((_, at, id)) if rows.len() == size => self.pages.issue(&key, &(at, id)),
                _ => String::new(),
            };
            Ok(ListAppointmentRequestsResponse {
                appointment_requests: rows.into_iter().map(|(a, _, _)| a).collect(),
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}
