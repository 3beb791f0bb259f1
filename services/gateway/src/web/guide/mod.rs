//! The guide desk (导医台): the directory questions the desk answers all day (which department
//! treats a complaint, when a doctor sees patients next, which experts of a department or
//! specialty hold clinics on a weekday), the consultation log with its statistics, and the
//! convenience-service worklist (便民服务) with its deadlines. The patients service decides
//! what is allowed and checks every field; these pages only parse what a form cannot carry as
//! typed (times, numbers, choices).

mod consultations;
mod directory;
mod requests;

use super::page::{Authed, Console};
use crate::api::error::HttpError;
use crate::state::Gateway;
use axum::Router;
use axum::routing::{get, post};
use hcrm_proto::patients::consultation_service_client::ConsultationServiceClient;
use hcrm_proto::patients::directory_service_client::DirectoryServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::service_request_service_client::ServiceRequestServiceClient;
use hcrm_proto::patients::{
    ClinicKind, ConsultationCategory, ConsultationChannel, DaySession, DoctorTitle, GetPatientRequest, InvoiceDelivery,
    ListDepartmentsRequest, ListDoctorsRequest, PatientMatch, ResultDeliveryMethod, SearchPatientsRequest,
    ServiceRequestSlaState, ServiceRequestState, ServiceRequestType, Weekday,
};
use maud::{Markup, html};
use std::sync::Arc;

/// The routes of this area, merged into the console by `web::router`.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/console/guide", get(directory::show))
        .route(
            "/console/guide/consultations",
            get(consultations::show).post(consultations::submit),
        )
        .route("/console/guide/requests", get(requests::show).post(requests::create))
        .route("/console/guide/requests/{id}/act", post(requests::act))
}

fn directory_client(c: &Console) -> DirectoryServiceClient<Authed> {
    DirectoryServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

fn consultation_client(c: &Console) -> ConsultationServiceClient<Authed> {
    ConsultationServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

fn request_client(c: &Console) -> ServiceRequestServiceClient<Authed> {
    ServiceRequestServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

fn patient_client(c: &Console) -> PatientServiceClient<Authed> {
    PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

/// The links between the desk's three pages.
fn subnav(c: &Console, current: &str) -> Markup {
    let links = [
        ("/console/guide", "咨询台", "Desk"),
        ("/console/guide/consultations", "咨询记录", "Consultations"),
        ("/console/guide/requests", "便民服务", "Service requests"),
    ];
    html! {
        p.subnav #guide-nav {
            @for (href, zh, en) in links {
                a href=(href) class=[(href == current).then_some("current")] { (c.tr(zh, en)) }
            }
        }
    }
}

/// An enum value with the slug used in URLs and forms and its two names.
struct Label<E> {
    value: E,
    slug: &'static str,
    zh: &'static str,
    en: &'static str,
}

const fn l<E>(value: E, slug: &'static str, zh: &'static str, en: &'static str) -> Label<E> {
    Label { value, slug, zh, en }
}

fn by_value<E: Copy + Into<i32>>(table: &'static [Label<E>], value: i32) -> Option<&'static Label<E>> {
    table.iter().find(|l| l.value.into() == value)
}

/// The slug of a value; empty when unknown.
fn slug_of<E: Copy + Into<i32>>(table: &'static [Label<E>], value: i32) -> &'static str {
    by_value(table, value).map(|l| l.slug).unwrap_or("")
}

/// The member's name of a value; `—` when unknown.
fn name_of<E: Copy + Into<i32>>(c: &Console, table: &'static [Label<E>], value: i32) -> &'static str {
    by_value(table, value).map(|l| c.tr(l.zh, l.en)).unwrap_or("—")
}

/// A slug from a form or query: empty is none, anything not in the table names the field.
fn parse_slug<E: Copy>(table: &'static [Label<E>], field: &str, slug: &str) -> Result<Option<E>, HttpError> {
    let slug = slug.trim();
    if slug.is_empty() {
        return Ok(None);
    }
    match table.iter().find(|l| l.slug == slug) {
        Some(l) => Ok(Some(l.value)),
        None => {
            let known: Vec<&str> = table.iter().map(|l| l.slug).collect();
            Err(HttpError::invalid(
                field,
                format!("must be one of {}", known.join(", ")),
            ))
        }
    }
}

/// A `<select>` over a table, with an optional empty choice first.
fn select<E>(c: &Console, name: &str, table: &'static [Label<E>], chosen: &str, empty: Option<&str>) -> Markup {
    html! {
        select name=(name) {
            @if let Some(text) = empty { option value="" { (text) } }
            @for l in table {
                option value=(l.slug) selected[l.slug == chosen] { (c.tr(l.zh, l.en)) }
            }
        }
    }
}

static WEEKDAYS: &[Label<Weekday>] = &[
    l(Weekday::Monday, "monday", "星期一", "Monday"),
    l(Weekday::Tuesday, "tuesday", "星期二", "Tuesday"),
    l(Weekday::Wednesday, "wednesday", "星期三", "Wednesday"),
    l(Weekday::Thursday, "thursday", "星期四", "Thursday"),
    l(Weekday::Friday, "friday", "星期五", "Friday"),
    l(Weekday::Saturday, "saturday", "星期六", "Saturday"),
    l(Weekday::Sunday, "sunday", "星期日", "Sunday"),
];

static TITLES: &[Label<DoctorTitle>] = &[
    l(DoctorTitle::ChiefPhysician, "chief", "主任医师", "chief physician"),
    l(
        DoctorTitle::AssociateChiefPhysician,
        "associate_chief",
        "副主任医师",
        "associate chief physician",
    ),
    l(
        DoctorTitle::AttendingPhysician,
        "attending",
        "主治医师",
        "attending physician",
    ),
    l(
        DoctorTitle::ResidentPhysician,
        "resident",
        "住院医师",
        "resident physician",
    ),
    l(DoctorTitle::Other, "other", "其他", "other"),
];

static DAY_SESSIONS: &[Label<DaySession>] = &[
    l(DaySession::Morning, "morning", "上午", "morning"),
    l(DaySession::Afternoon, "afternoon", "下午", "afternoon"),
    l(DaySession::Evening, "evening", "夜间", "evening"),
];

static CLINIC_KINDS: &[Label<ClinicKind>] = &[
    l(ClinicKind::Regular, "regular", "普通门诊", "regular clinic"),
    l(ClinicKind::Expert, "expert", "专家门诊", "expert clinic"),
    l(ClinicKind::Special, "special", "特需门诊", "special clinic"),
];

static CHANNELS: &[Label<ConsultationChannel>] = &[
    l(ConsultationChannel::Hotline, "hotline", "咨询热线", "hotline"),
    l(ConsultationChannel::Counter, "counter", "服务台", "counter"),
    l(ConsultationChannel::Online, "online", "网站或App", "website or app"),
    l(ConsultationChannel::Wechat, "wechat", "微信公众号", "WeChat"),
    l(ConsultationChannel::Other, "other", "其他", "other"),
];

static CATEGORIES: &[Label<ConsultationCategory>] = &[
    l(
        ConsultationCategory::Registration,
        "registration",
        "挂号、预约",
        "registration and appointments",
    ),
    l(
        ConsultationCategory::DepartmentGuidance,
        "department_guidance",
        "科室、专家指引",
        "which department or doctor",
    ),
    l(
        ConsultationCategory::ExamResults,
        "exam_results",
        "检查检验结果",
        "exam and test results",
    ),
    l(
        ConsultationCategory::FeesInsurance,
        "fees_insurance",
        "费用、医保",
        "fees and insurance",
    ),
    l(
        ConsultationCategory::AdmissionDischarge,
        "admission_discharge",
        "入院、出院",
        "admission and discharge",
    ),
    l(ConsultationCategory::Medication, "medication", "用药", "medication"),
    l(
        ConsultationCategory::Directions,
        "directions",
        "路线、时间",
        "directions and hours",
    ),
    l(ConsultationCategory::Complaint, "complaint", "投诉相关", "complaint"),
    l(ConsultationCategory::Other, "other", "其他", "other"),
];

static REQUEST_TYPES: &[Label<ServiceRequestType>] = &[
    l(
        ServiceRequestType::ResultDelivery,
        "result_delivery",
        "报告寄送",
        "result delivery",
    ),
    l(ServiceRequestType::ExamEscort, "exam_escort", "陪检", "exam escort"),
    l(
        ServiceRequestType::AdmissionHelp,
        "admission_help",
        "入院协助",
        "admission help",
    ),
    l(
        ServiceRequestType::ProxyDischarge,
        "proxy_discharge",
        "代办出院",
        "proxy discharge",
    ),
    l(ServiceRequestType::HomeCare, "home_care", "上门护理", "home care"),
    l(ServiceRequestType::Other, "other", "其他", "other"),
];

static REQUEST_STATES: &[Label<ServiceRequestState>] = &[
    l(ServiceRequestState::Open, "open", "待处理", "open"),
    l(ServiceRequestState::InProgress, "in_progress", "处理中", "in progress"),
    l(ServiceRequestState::Done, "done", "已完成", "done"),
    l(ServiceRequestState::Cancelled, "cancelled", "已取消", "cancelled"),
];

static REQUEST_SLAS: &[Label<ServiceRequestSlaState>] = &[
    l(ServiceRequestSlaState::OnTrack, "on_track", "按期", "on track"),
    l(ServiceRequestSlaState::DueSoon, "due_soon", "即将到期", "due soon"),
    l(ServiceRequestSlaState::Overdue, "overdue", "已超时", "overdue"),
    l(ServiceRequestSlaState::Met, "met", "按时完成", "met"),
    l(ServiceRequestSlaState::Missed, "missed", "超时完成", "missed"),
];

static DELIVERY_METHODS: &[Label<ResultDeliveryMethod>] = &[
    l(ResultDeliveryMethod::Mail, "mail", "邮寄", "by post"),
    l(ResultDeliveryMethod::Phone, "phone", "电话告知", "by phone"),
    l(ResultDeliveryMethod::Email, "email", "电子邮件", "by e-mail"),
];

static INVOICE_DELIVERIES: &[Label<InvoiceDelivery>] = &[
    l(InvoiceDelivery::Mail, "mail", "邮寄", "by post"),
    l(
        InvoiceDelivery::PickUp,
        "pick_up",
        "服务中心自取",
        "picked up at the centre",
    ),
];

/// The status of a page showing `error`, OK without one.
fn with_status(mut response: axum::response::Response, error: Option<&HttpError>) -> axum::response::Response {
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

/// Form or query fields as pairs (repeated fields kept in order).
fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(bytes).unwrap_or_default()
}

fn one<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// `service_requests/{id}` → `{id}`.
fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// A local `YYYY-MM-DDTHH:MM` (a `datetime-local` field, or with a space) as an instant, the
/// hospital's zone `offset_minutes` east of UTC; empty is `None`, anything else names `field`.
fn parse_local(field: &str, text: &str, offset_minutes: i32) -> Result<Option<prost_types::Timestamp>, HttpError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| HttpError::invalid(field, "must be a local time YYYY-MM-DD HH:MM"))?;
    let micros = parsed.and_utc().timestamp_micros() - i64::from(offset_minutes) * 60_000_000;
    Ok(Some(hcrm_kit::time::to_timestamp(micros)))
}

/// Patients matching a search of the form (name, pinyin, phone or code).
async fn search_patients(c: &Console, query: &str) -> Result<Vec<PatientMatch>, HttpError> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    patient_client(c)
        .search_patients(SearchPatientsRequest {
            query: query.to_string(),
            page_size: 10,
        })
        .await
        .map(|r| r.into_inner().matches)
        .map_err(HttpError::from)
}

/// The chosen patient's name (masked view), so the choice shows who it is.
async fn chosen_name(c: &Console, patient: &str) -> Option<String> {
    if patient.is_empty() {
        return None;
    }
    patient_client(c)
        .get_patient(GetPatientRequest {
            name: patient.to_string(),
            ..Default::default()
        })
        .await
        .ok()
        .map(|p| p.into_inner().display_name)
}

/// The patient part of a form: a search (name, phone or code) and the matches to choose from,
/// `none` naming the choice of no registered patient (`None`: a patient is required).
struct Picker<'a> {
    query: &'a str,
    chosen: &'a str,
    none: Option<&'static str>,
}

async fn patient_picker(c: &Console, p: Picker<'_>) -> Markup {
    let query = p.query.trim();
    let (found, name) = tokio::join!(search_patients(c, query), chosen_name(c, p.chosen));
    let (matches, search_error) = match found {
        Ok(m) => (m, None),
        Err(err) => (Vec::new(), Some(err)),
    };
    html! {
        label { (c.tr("查找患者（姓名、电话或档案号）", "Find the patient (name, phone or code)"))
            input name="patient_query" value=(p.query) maxlength="64";
        }
        button.secondary type="submit" name="op" value="search" formnovalidate { (c.tr("查找", "Search")) }
        @if let Some(err) = &search_error { (c.error_box(err)) }
        @if !query.is_empty() && matches.is_empty() && search_error.is_none() {
            p.small #no-patients { (c.tr("没有找到匹配的患者。", "No patient matches.")) }
        }
        div #patients {
            @if let Some(none) = p.none {
                label.choice { input type="radio" name="patient" value="" checked[p.chosen.is_empty()]; (none) }
            }
            @if !p.chosen.is_empty() && !matches.iter().any(|m| m.patient.as_ref().is_some_and(|x| x.name == p.chosen)) {
                label.choice data-patient=(p.chosen) { input type="radio" name="patient" value=(p.chosen) checked; (name.as_deref().unwrap_or(p.chosen)) }
            }
            @for m in &matches {
                @if let Some(x) = &m.patient {
                    label.choice data-patient=(x.name) {
                        input type="radio" name="patient" value=(x.name) checked[x.name == p.chosen];
                        (x.display_name) " · " (x.code) " · " (x.phones.first().map(String::as_str).unwrap_or(""))
                    }
                }
            }
        }
    }
}

/// `<datalist id="departments">` and `<datalist id="doctors">` of the directory, so code and
/// doctor fields suggest values; empty when the directory cannot be read (the fields still take
/// any text and the service checks them).
async fn directory_lists(c: &Console) -> Markup {
    let mut dir = directory_client(c);
    let mut dir2 = dir.clone();
    let (departments, doctors) = tokio::join!(
        dir.list_departments(ListDepartmentsRequest {
            page_size: 500,
            ..Default::default()
        }),
        dir2.list_doctors(ListDoctorsRequest {
            page_size: 500,
            ..Default::default()
        })
    );
    let departments = departments.map(|r| r.into_inner().departments).unwrap_or_default();
    let doctors = doctors.map(|r| r.into_inner().doctors).unwrap_or_default();
    html! {
        datalist id="departments" {
            @for d in &departments { option value=(d.code) { (c.pick(&d.display_name, &d.english_name)) } }
        }
        datalist id="doctors" {
            @for d in &doctors { option value=(d.name) { (d.display_name) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_read_in_the_hospitals_zone() {
        let t = parse_local("t", "2026-06-01T10:00", 480).unwrap().unwrap();
        assert_eq!(hcrm_kit::time::from_timestamp(&t), Some(1_780_279_200_000_000));
        assert_eq!(parse_local("t", " ", 480).unwrap(), None);
        let err = parse_local("result_time", "tomorrow", 480).unwrap_err();
        assert_eq!(err.field_violations[0].field, "result_time");
    }

    #[test]
    fn slugs_name_their_field_when_wrong() {
        assert_eq!(
            parse_slug(WEEKDAYS, "weekday", "thursday").unwrap(),
            Some(Weekday::Thursday)
        );
        assert_eq!(parse_slug(WEEKDAYS, "weekday", "").unwrap(), None);
        let err = parse_slug(CATEGORIES, "consultation.category", "gossip").unwrap_err();
        assert_eq!(err.field_violations[0].field, "consultation.category");
        assert_eq!(slug_of(REQUEST_SLAS, ServiceRequestSlaState::Overdue as i32), "overdue");
    }
}
