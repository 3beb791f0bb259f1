//! Convenience service requests (便民服务): what a valid one is, the per-type SLA and where a
//! request stands against it, the state machine, and what its timeline entry says.

use super::consultation::is_name;
use super::patient::is_code;
use hcrm_kit::ApiError;
use hcrm_kit::time::from_timestamp;
use hcrm_kit::validate::{Violations, normalize_phone};
use hcrm_proto::patients::service_request::Details;
use hcrm_proto::patients::{
    InvoiceDelivery, ResultDeliveryMethod, ServiceRequest, ServiceRequestSlaState, ServiceRequestState,
    ServiceRequestType,
};
use hcrm_proto::types::Address;
use serde::{Deserialize, Serialize};

const MINUTE: i64 = 60 * 1_000_000;
const DAY_MICROS: i64 = 24 * 60 * MINUTE;

/// Minutes from the starting point to the due time, per type (`patients.service_request_sla`).
/// Result delivery counts from the result time, every other type from creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SlaTable {
    /// Exam results mailed, phoned or e-mailed: one hour after the result (seed 000).
    pub result_delivery_minutes: u32,
    pub exam_escort_minutes: u32,
    pub admission_help_minutes: u32,
    pub proxy_discharge_minutes: u32,
    pub home_care_minutes: u32,
    pub other_minutes: u32,
    /// An open request is DUE_SOON when less than this share of its time is left.
    pub due_soon_percent: u32,
}

impl Default for SlaTable {
    fn default() -> Self {
        Self {
            result_delivery_minutes: 60,
            exam_escort_minutes: 2 * 60,
            admission_help_minutes: 2 * 60,
            proxy_discharge_minutes: 2 * 24 * 60,
            home_care_minutes: 24 * 60,
            other_minutes: 24 * 60,
            due_soon_percent: 25,
        }
    }
}

impl SlaTable {
    pub fn minutes(&self, t: ServiceRequestType) -> u32 {
        match t {
            ServiceRequestType::ResultDelivery => self.result_delivery_minutes,
            ServiceRequestType::ExamEscort => self.exam_escort_minutes,
            ServiceRequestType::AdmissionHelp => self.admission_help_minutes,
            ServiceRequestType::ProxyDischarge => self.proxy_discharge_minutes,
            ServiceRequestType::HomeCare => self.home_care_minutes,
            ServiceRequestType::Other | ServiceRequestType::Unspecified => self.other_minutes,
        }
    }

    /// Every SLA between 1 minute and 90 days; the warning share 0–100.
    pub fn check(&self) -> Result<(), String> {
        for (name, minutes) in [
            ("result_delivery_minutes", self.result_delivery_minutes),
            ("exam_escort_minutes", self.exam_escort_minutes),
            ("admission_help_minutes", self.admission_help_minutes),
            ("proxy_discharge_minutes", self.proxy_discharge_minutes),
            ("home_care_minutes", self.home_care_minutes),
            ("other_minutes", self.other_minutes),
        ] {
            if !(1..=90 * 24 * 60).contains(&minutes) {
                return Err(format!("service_request_sla.{name} must be between 1 and 129600"));
            }
        }
        if self.due_soon_percent > 100 {
            return Err("service_request_sla.due_soon_percent must be at most 100".into());
        }
        Ok(())
    }

    /// The point the SLA counts from and the due time of a request created at `created`.
    pub fn window(&self, r: &ServiceRequest, created: i64) -> (i64, i64) {
        let t = ServiceRequestType::try_from(r.r#type).unwrap_or(ServiceRequestType::Other);
        let start = match (&r.details, t) {
            (Some(Details::ResultDelivery(d)), ServiceRequestType::ResultDelivery) => {
                d.result_time.as_ref().and_then(from_timestamp).unwrap_or(created)
            }
            _ => created,
        };
        (start, start + i64::from(self.minutes(t)) * MINUTE)
    }

    /// Where a request stands against its due time at `now`.
    pub fn state(
        &self,
        state: ServiceRequestState,
        window: (i64, i64),
        done_at: Option<i64>,
        now: i64,
    ) -> ServiceRequestSlaState {
        let (start, due) = window;
        match state {
            ServiceRequestState::Done => match done_at {
                Some(at) if at <= due => ServiceRequestSlaState::Met,
                _ => ServiceRequestSlaState::Missed,
            },
            ServiceRequestState::Cancelled | ServiceRequestState::Unspecified => ServiceRequestSlaState::Unspecified,
            ServiceRequestState::Open | ServiceRequestState::InProgress => {
                if now > due {
                    ServiceRequestSlaState::Overdue
                } else if (due - now) * 100 < (due - start).max(0) * i64::from(self.due_soon_percent) {
                    ServiceRequestSlaState::DueSoon
                } else {
                    ServiceRequestSlaState::OnTrack
                }
            }
        }
    }
}

/// What a caller asks of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Assign,
    Update,
    Complete,
    Cancel,
}

impl Action {
    /// The word in the history and the audit action.
    pub fn word(self) -> &'static str {
        match self {
            Action::Start => "started",
            Action::Assign => "assigned",
            Action::Update => "updated",
            Action::Complete => "completed",
            Action::Cancel => "cancelled",
        }
    }
}

/// The state after `action` on a request in `from`; FAILED_PRECONDITION naming the states it is
/// allowed in otherwise.
pub fn transition(from: ServiceRequestState, action: Action) -> Result<ServiceRequestState, ApiError> {
    use ServiceRequestState::*;
    let (allowed, to): (&[ServiceRequestState], Option<ServiceRequestState>) = match action {
        Action::Start => (&[Open], Some(InProgress)),
        Action::Assign | Action::Update => (&[Open, InProgress], None),
        Action::Complete => (&[InProgress], Some(Done)),
        Action::Cancel => (&[Open, InProgress], Some(Cancelled)),
    };
    if allowed.contains(&from) {
        Ok(to.unwrap_or(from))
    } else {
        let names: Vec<&str> = allowed.iter().map(|s| state_name(*s)).collect();
        Err(ApiError::FailedPrecondition(format!(
            "a request in state {} cannot be {}; allowed in {}",
            state_name(from),
            action.word(),
            names.join(" or ")
        )))
    }
}

/// Short name of a state (`IN_PROGRESS`).
pub fn state_name(s: ServiceRequestState) -> &'static str {
    s.as_str_name().trim_start_matches("SERVICE_REQUEST_STATE_")
}

/// Short name of a type (`RESULT_DELIVERY`).
pub fn type_name(t: i32) -> &'static str {
    ServiceRequestType::try_from(t)
        .unwrap_or(ServiceRequestType::Other)
        .as_str_name()
        .trim_start_matches("SERVICE_REQUEST_TYPE_")
}

/// What must hold before a request may be DONE: a proxy discharge needs the signed
/// authorisation and the deposit slip.
pub fn check_completable(r: &ServiceRequest) -> Result<(), ApiError> {
    if let Some(Details::ProxyDischarge(d)) = &r.details {
        let mut missing = Vec::new();
        if !d.authorization_signed {
            missing.push("proxy_discharge.authorization_signed");
        }
        if !d.deposit_slip_received {
            missing.push("proxy_discharge.deposit_slip_received");
        }
        if !missing.is_empty() {
            return Err(ApiError::FailedPrecondition(format!(
                "a proxy discharge cannot be done before {} are true",
                missing.join(" and ")
            )));
        }
    }
    Ok(())
}

/// Trims free text and puts phone numbers in their canonical form.
pub fn normalize(r: &mut ServiceRequest) {
    r.department = r.department.trim().to_string();
    r.description = r.description.trim().to_string();
    if let Some(Details::ResultDelivery(d)) = &mut r.details
        && let Some(n) = normalize_phone(&d.phone)
    {
        d.phone = n;
    }
}

/// Clears what the server sets.
pub fn clear_output_only(r: &mut ServiceRequest) {
    r.name.clear();
    r.state = 0;
    r.due_time = None;
    r.sla_state = 0;
    r.outcome.clear();
    r.cancel_reason.clear();
    r.history.clear();
    r.created_by.clear();
    r.etag.clear();
    r.create_time = None;
    r.update_time = None;
    r.close_time = None;
    r.interaction.clear();
}

/// Checks a staff subject used as an owner: 1–128 printable characters without spaces.
pub fn check_owner(field: &str, owner: &str, v: &mut Violations) {
    if !owner.is_empty()
        && (owner.chars().count() > 128 || !owner.chars().all(|c| !c.is_whitespace() && !c.is_control()))
    {
        v.add(field, "must be a staff subject: 1–128 characters without spaces");
    }
}

fn check_address(field: String, a: Option<&Address>, v: &mut Violations) {
    match a {
        Some(a) if !a.street.trim().is_empty() => {
            for (name, value, max) in [
                ("province", &a.province, 64),
                ("city", &a.city, 64),
                ("district", &a.district, 64),
                ("street", &a.street, 200),
            ] {
                v.text(&format!("{field}.{name}"), value, false, max);
            }
            let six_digits = a.postal_code.len() == 6 && a.postal_code.chars().all(|c| c.is_ascii_digit());
            if !a.postal_code.is_empty() && !six_digits {
                v.add(format!("{field}.postal_code"), "must be six digits");
            }
        }
        _ => v.add(format!("{field}.street"), "is required"),
    }
}

fn check_time(field: String, t: Option<&prost_types::Timestamp>, v: &mut Violations) {
    if let Some(t) = t
        && from_timestamp(t).is_none()
    {
        v.add(field, "is out of range");
    }
}

/// Checks the typed details against the type; `prefix` is the request path of the request
/// (`service_request`).
pub fn validate_details(r: &ServiceRequest, prefix: &str, now: i64, v: &mut Violations) {
    let Ok(t) = ServiceRequestType::try_from(r.r#type) else {
        return;
    };
    let expected = match t {
        ServiceRequestType::ResultDelivery => Some("result_delivery"),
        ServiceRequestType::ExamEscort => Some("exam_escort"),
        ServiceRequestType::AdmissionHelp => Some("admission_help"),
        ServiceRequestType::ProxyDischarge => Some("proxy_discharge"),
        ServiceRequestType::HomeCare => Some("home_care"),
        ServiceRequestType::Other | ServiceRequestType::Unspecified => None,
    };
    let given = r.details.as_ref().map(|d| match d {
        Details::ResultDelivery(_) => "result_delivery",
        Details::ExamEscort(_) => "exam_escort",
        Details::AdmissionHelp(_) => "admission_help",
        Details::ProxyDischarge(_) => "proxy_discharge",
        Details::HomeCare(_) => "home_care",
    });
    match (expected, given) {
        (Some(e), None) => {
            v.add(
                format!("{prefix}.{e}"),
                format!("is required for type {}", type_name(r.r#type)),
            );
            return;
        }
        (e, Some(g)) if e != Some(g) => {
            v.add(
                format!("{prefix}.{g}"),
                format!("does not fit type {}", type_name(r.r#type)),
            );
            return;
        }
        _ => {}
    }
    let f = |field: &str| format!("{prefix}.{}.{field}", given.unwrap_or_default());
    match &r.details {
        Some(Details::ResultDelivery(d)) => {
            v.enum_value::<ResultDeliveryMethod>(&f("method"), d.method, true);
            match d.result_time.as_ref().map(from_timestamp) {
                None => v.add(f("result_time"), "is required"),
                Some(None) => v.add(f("result_time"), "is out of range"),
                Some(Some(at)) if at > now + MINUTE * 5 => v.add(f("result_time"), "must not be in the future"),
                Some(Some(at)) if at < now - 365 * DAY_MICROS => {
                    v.add(f("result_time"), "must be within the last year")
                }
                Some(Some(_)) => {}
            }
            v.text(&f("exam"), &d.exam, false, 200);
            match ResultDeliveryMethod::try_from(d.method) {
                Ok(ResultDeliveryMethod::Mail) => check_address(f("address"), d.address.as_ref(), v),
                Ok(ResultDeliveryMethod::Phone) => {
                    if d.phone.is_empty() {
                        v.add(f("phone"), "is required for PHONE");
                    } else {
                        v.phone(&f("phone"), &d.phone);
                    }
                }
                Ok(ResultDeliveryMethod::Email) => {
                    if d.email.is_empty() {
                        v.add(f("email"), "is required for EMAIL");
                    } else {
                        v.email(&f("email"), &d.email);
                    }
                }
                _ => {}
            }
        }
        Some(Details::ExamEscort(d)) => {
            if d.exams.is_empty() || d.exams.len() > 20 {
                v.add(f("exams"), "must name 1–20 exams");
            }
            for (i, exam) in d.exams.iter().enumerate() {
                v.text(&f(&format!("exams[{i}]")), exam, true, 100);
            }
            check_time(f("appointment_time"), d.appointment_time.as_ref(), v);
            v.text(&f("meeting_point"), &d.meeting_point, false, 200);
        }
        Some(Details::AdmissionHelp(d)) => {
            v.text(&f("ward"), &d.ward, true, 100);
            if !is_code(&d.notifying_department, 64) {
                v.add(
                    f("notifying_department"),
                    "must be a department code: 1–64 lower-case letters, digits, - or _",
                );
            }
            check_time(f("admission_time"), d.admission_time.as_ref(), v);
        }
        Some(Details::ProxyDischarge(d)) => {
            v.enum_value::<InvoiceDelivery>(&f("invoice_delivery"), d.invoice_delivery, true);
            if d.invoice_delivery == InvoiceDelivery::Mail as i32 {
                check_address(f("invoice_address"), d.invoice_address.as_ref(), v);
            }
            v.text(&f("ward"), &d.ward, false, 100);
        }
        Some(Details::HomeCare(d)) => {
            v.text(&f("service"), &d.service, true, 100);
            check_time(f("preferred_time"), d.preferred_time.as_ref(), v);
        }
        None => {}
    }
}

/// Checks a request to be created (normalised first).
pub fn validate(r: &ServiceRequest, prefix: &str, now: i64, v: &mut Violations) {
    let f = |field: &str| format!("{prefix}.{field}");
    if r.patient.is_empty() {
        v.add(f("patient"), "is required");
    } else if !is_name(&r.patient, "patients") {
        v.add(f("patient"), "must look like patients/{id}");
    }
    v.enum_value::<ServiceRequestType>(&f("type"), r.r#type, true);
    validate_mutable(r, prefix, now, v);
    check_owner(&f("owner"), &r.owner, v);
}

/// Checks the fields an update may change.
pub fn validate_mutable(r: &ServiceRequest, prefix: &str, now: i64, v: &mut Violations) {
    let f = |field: &str| format!("{prefix}.{field}");
    if !r.department.is_empty() && !is_code(&r.department, 64) {
        v.add(
            f("department"),
            "must be a department code: 1–64 lower-case letters, digits, - or _",
        );
    }
    let required = r.r#type == ServiceRequestType::Other as i32;
    v.text(&f("description"), &r.description, required, 2000);
    validate_details(r, prefix, now, v);
}

/// Paths an update mask may name.
pub const UPDATABLE_PATHS: &[&str] = &["department", "description", "details"];

/// Copies the fields named by `paths` from `src` into `dst`.
pub fn apply_mask(dst: &mut ServiceRequest, src: &ServiceRequest, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "department" => dst.department = src.department.clone(),
            "description" => dst.description = src.description.clone(),
            "details" => dst.details = src.details.clone(),
            _ => {}
        }
    }
}

/// The one-line summary of the timeline entry written when a request is done.
pub fn timeline_summary(r: &ServiceRequest) -> String {
    let what = match &r.details {
        Some(Details::ResultDelivery(d)) => match ResultDeliveryMethod::try_from(d.method) {
            Ok(ResultDeliveryMethod::Mail) => "exam results mailed".to_string(),
            Ok(ResultDeliveryMethod::Phone) => "exam results given by phone".to_string(),
            _ => "exam results e-mailed".to_string(),
        },
        Some(Details::ExamEscort(d)) => format!("accompanied to exams: {}", d.exams.join(", ")),
        Some(Details::AdmissionHelp(d)) => format!("helped with admission to {}", d.ward),
        Some(Details::ProxyDischarge(_)) => "discharged by proxy".to_string(),
        Some(Details::HomeCare(d)) => format!("home care booked: {}", d.service),
        None => "service done".to_string(),
    };
    let text = if r.outcome.is_empty() {
        what
    } else {
        format!("{what} — {}", r.outcome)
    };
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcrm_proto::patients::{HomeCareDetails, ProxyDischargeDetails, ResultDeliveryDetails};

    const NOW: i64 = 1_780_000_000_000_000;
    const HOUR: i64 = 60 * MINUTE;

    fn result_delivery(result_time: i64) -> ServiceRequest {
        ServiceRequest {
            patient: "patients/p1".into(),
            r#type: ServiceRequestType::ResultDelivery as i32,
            details: Some(Details::ResultDelivery(ResultDeliveryDetails {
                method: ResultDeliveryMethod::Phone as i32,
                result_time: Some(hcrm_kit::time::to_timestamp(result_time)),
                phone: "138 0013 8000".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn fields(r: &ServiceRequest) -> Vec<String> {
        let mut v = Violations::new();
        validate(r, "service_request", NOW, &mut v);
        match v.finish() {
            Ok(()) => vec![],
            Err(ApiError::InvalidArgument(list)) => list.into_iter().map(|f| f.field).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn due_times_follow_the_type() {
        let sla = SlaTable::default();
        let r = result_delivery(NOW - 2 * HOUR);
        assert_eq!(sla.window(&r, NOW), (NOW - 2 * HOUR, NOW - HOUR));
        let home = ServiceRequest {
            r#type: ServiceRequestType::HomeCare as i32,
            ..Default::default()
        };
        assert_eq!(sla.window(&home, NOW), (NOW, NOW + 24 * HOUR));
        let discharge = ServiceRequest {
            r#type: ServiceRequestType::ProxyDischarge as i32,
            ..Default::default()
        };
        assert_eq!(sla.window(&discharge, NOW).1, NOW + 48 * HOUR);
    }

    #[test]
    fn sla_states_are_computed_when_read() {
        let sla = SlaTable::default();
        let w = (NOW, NOW + HOUR);
        let open = ServiceRequestState::Open;
        assert_eq!(sla.state(open, w, None, NOW), ServiceRequestSlaState::OnTrack);
        assert_eq!(
            sla.state(open, w, None, NOW + 44 * MINUTE),
            ServiceRequestSlaState::OnTrack
        );
        assert_eq!(
            sla.state(open, w, None, NOW + 46 * MINUTE),
            ServiceRequestSlaState::DueSoon
        );
        assert_eq!(
            sla.state(ServiceRequestState::InProgress, w, None, NOW + HOUR + 1),
            ServiceRequestSlaState::Overdue
        );
        assert_eq!(
            sla.state(ServiceRequestState::Done, w, Some(NOW + HOUR), NOW * 2),
            ServiceRequestSlaState::Met
        );
        assert_eq!(
            sla.state(ServiceRequestState::Done, w, Some(NOW + HOUR + 1), NOW),
            ServiceRequestSlaState::Missed
        );
        assert_eq!(
            sla.state(ServiceRequestState::Cancelled, w, None, NOW * 2),
            ServiceRequestSlaState::Unspecified
        );
    }

    #[test]
    fn the_state_machine_allows_only_its_transitions() {
        use ServiceRequestState::*;
        assert_eq!(transition(Open, Action::Start).unwrap(), InProgress);
        assert_eq!(transition(InProgress, Action::Complete).unwrap(), Done);
        assert_eq!(transition(Open, Action::Cancel).unwrap(), Cancelled);
        assert_eq!(transition(InProgress, Action::Cancel).unwrap(), Cancelled);
        assert_eq!(transition(InProgress, Action::Assign).unwrap(), InProgress);
        let err = transition(Open, Action::Complete).unwrap_err();
        assert!(
            matches!(&err, ApiError::FailedPrecondition(m) if m.contains("allowed in IN_PROGRESS")),
            "{err}"
        );
        for action in [
            Action::Start,
            Action::Assign,
            Action::Update,
            Action::Complete,
            Action::Cancel,
        ] {
            assert!(transition(Done, action).is_err());
            assert!(transition(Cancelled, action).is_err());
        }
        assert!(transition(InProgress, Action::Start).is_err());
    }

    #[test]
    fn a_proxy_discharge_needs_authorisation_and_deposit_slip() {
        let mut r = ServiceRequest {
            r#type: ServiceRequestType::ProxyDischarge as i32,
            details: Some(Details::ProxyDischarge(ProxyDischargeDetails {
                invoice_delivery: InvoiceDelivery::PickUp as i32,
                deposit_slip_received: true,
                ..Default::default()
            })),
            ..Default::default()
        };
        let err = check_completable(&r).unwrap_err().to_string();
        assert!(
            err.contains("authorization_signed") && !err.contains("deposit_slip_received"),
            "{err}"
        );
        if let Some(Details::ProxyDischarge(d)) = &mut r.details {
            d.authorization_signed = true;
        }
        assert!(check_completable(&r).is_ok());
    }

    #[test]
    fn wrong_fields_are_named() {
        let mut ok = result_delivery(NOW - HOUR);
        normalize(&mut ok);
        assert!(fields(&ok).is_empty());
        let mismatch = ServiceRequest {
            details: Some(Details::HomeCare(HomeCareDetails::default())),
            ..result_delivery(NOW)
        };
        assert_eq!(fields(&mismatch), ["service_request.home_care"]);
        let missing = ServiceRequest {
            details: None,
            ..result_delivery(NOW)
        };
        assert_eq!(fields(&missing), ["service_request.result_delivery"]);
        let future = result_delivery(NOW + HOUR);
        assert_eq!(fields(&future), ["service_request.result_delivery.result_time"]);
        let mut mail = result_delivery(NOW);
        if let Some(Details::ResultDelivery(d)) = &mut mail.details {
            d.method = ResultDeliveryMethod::Mail as i32;
        }
        assert_eq!(fields(&mail), ["service_request.result_delivery.address.street"]);
        let other = ServiceRequest {
            patient: "p1".into(),
            r#type: ServiceRequestType::Other as i32,
            department: "Cardiology".into(),
            owner: "a b".into(),
            ..Default::default()
        };
        assert_eq!(
            fields(&other),
            [
                "service_request.patient",
                "service_request.department",
                "service_request.description",
                "service_request.owner"
            ]
        );
    }

    #[test]
    fn summaries_say_what_was_done() {
        let mut r = result_delivery(NOW);
        if let Some(Details::ResultDelivery(d)) = &mut r.details {
            d.method = ResultDeliveryMethod::Mail as i32;
        }
        assert_eq!(timeline_summary(&r), "exam results mailed");
        r.outcome = "顺丰 SF123".into();
        assert_eq!(timeline_summary(&r), "exam results mailed — 顺丰 SF123");
    }

    #[test]
    fn the_default_table_checks() {
        assert!(SlaTable::default().check().is_ok());
        let bad = SlaTable {
            home_care_minutes: 0,
            ..Default::default()
        };
        assert!(bad.check().unwrap_err().contains("home_care_minutes"));
    }
}
