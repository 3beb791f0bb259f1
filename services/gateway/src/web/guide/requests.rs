//! Convenience services (便民服务): the worklist by due time (filtered by state, type and
//! overdue; the overdue ones highlighted), taking in a request for a patient with the details
//! its type needs, and starting, completing (with what was done) or cancelling (with why) a
//! request with the etag it was shown with, so two people at the desk cannot both act on it.

use super::*;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::patients::service_request::Details;
use hcrm_proto::patients::{
    AdmissionHelpDetails, CancelServiceRequestRequest, CompleteServiceRequestRequest, CreateServiceRequestRequest,
    ExamEscortDetails, GetServiceRequestStatisticsRequest, HomeCareDetails, ListServiceRequestsRequest,
    ProxyDischargeDetails, ResultDeliveryDetails, ServiceRequest, ServiceRequestStatistics, StartServiceRequestRequest,
};
use hcrm_proto::types::Address;
use http::HeaderMap;
use serde::Deserialize;

const PAGE_SIZE: i32 = 100;
const DAY: i64 = 24 * 60 * 60 * 1_000_000;

/// The create form as typed; the details of every type are on the form, only the chosen
/// type's are sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RequestForm {
    patient_query: String,
    patient: String,
    r#type: String,
    department: String,
    description: String,
    rd_method: String,
    rd_result_time: String,
    rd_exam: String,
    rd_phone: String,
    rd_email: String,
    rd_street: String,
    ee_exams: String,
    ee_time: String,
    ee_meeting: String,
    ah_ward: String,
    ah_department: String,
    ah_time: String,
    pd_authorization: String,
    pd_deposit_slip: String,
    pd_invoice: String,
    pd_street: String,
    pd_ward: String,
    hc_service: String,
    hc_time: String,
    hc_street: String,
    request_id: String,
    op: String,
}

impl Default for RequestForm {
    fn default() -> Self {
        RequestForm {
            patient_query: String::new(),
            patient: String::new(),
            r#type: "result_delivery".into(),
            department: String::new(),
            description: String::new(),
            rd_method: "phone".into(),
            rd_result_time: String::new(),
            rd_exam: String::new(),
            rd_phone: String::new(),
            rd_email: String::new(),
            rd_street: String::new(),
            ee_exams: String::new(),
            ee_time: String::new(),
            ee_meeting: String::new(),
            ah_ward: String::new(),
            ah_department: String::new(),
            ah_time: String::new(),
            pd_authorization: String::new(),
            pd_deposit_slip: String::new(),
            pd_invoice: "pick_up".into(),
            pd_street: String::new(),
            pd_ward: String::new(),
            hc_service: String::new(),
            hc_time: String::new(),
            hc_street: String::new(),
            request_id: String::new(),
            op: String::new(),
        }
    }
}

/// The worklist's filters as they came in the query.
#[derive(Debug, Default)]
struct Filters {
    state: String,
    r#type: String,
    overdue: bool,
}

impl Filters {
    fn of(query: &[(String, String)]) -> Filters {
        Filters {
            state: one(query, "state").trim().to_string(),
            r#type: one(query, "type").trim().to_string(),
            overdue: one(query, "overdue") == "1",
        }
    }

    /// No state chosen: the open and in-progress ones.
    fn request(&self) -> Result<ListServiceRequestsRequest, HttpError> {
        let state = parse_slug(REQUEST_STATES, "state", &self.state)?;
        let kind = parse_slug(REQUEST_TYPES, "type", &self.r#type)?;
        Ok(ListServiceRequestsRequest {
            page_size: PAGE_SIZE,
            states: match state {
                Some(s) => vec![s as i32],
                None => vec![ServiceRequestState::Open as i32, ServiceRequestState::InProgress as i32],
            },
            r#type: kind.map(|k| k as i32).unwrap_or_default(),
            overdue_only: self.overdue,
            ..Default::default()
        })
    }
}

/// What an action form left, shown again when the service refused it.
struct Refused<'a> {
    id: &'a str,
    fields: &'a [(String, String)],
}

pub async fn show(c: Console, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    let form = RequestForm {
        patient: one(&query, "patient").trim().to_string(),
        ..Default::default()
    };
    let notice = match one(&query, "done") {
        "created" => Some(c.tr("服务申请已登记。", "The request was taken in.")),
        "start" => Some(c.tr("已开始处理。", "The request was started.")),
        "complete" => Some(c.tr("已完成。", "The request was completed.")),
        "cancel" => Some(c.tr("已取消。", "The request was cancelled.")),
        _ => None,
    };
    page(&c, form, Filters::of(&query), None, notice, None).await
}

pub async fn create(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let form: RequestForm = match c.form(&headers, &body) {
        Ok(form) => form,
        Err(err) => return c.error(err),
    };
    if form.op == "search" {
        return page(&c, form, Filters::default(), None, None, None).await;
    }
    let request = match request(&c, &form) {
        Ok(r) => r,
        Err(err) => return page(&c, form, Filters::default(), Some(err), None, None).await,
    };
    match request_client(&c).create_service_request(request).await {
        Ok(_) => Redirect::to("/console/guide/requests?done=created").into_response(),
        Err(status) => page(&c, form, Filters::default(), Some(HttpError::from(status)), None, None).await,
    }
}

pub async fn act(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let fields = pairs(&body);
    let name = format!("service_requests/{id}");
    let etag = one(&fields, "etag").to_string();
    let action = one(&fields, "action").to_string();
    let mut client = request_client(&c);
    let done = match action.as_str() {
        "start" => client
            .start_service_request(StartServiceRequestRequest {
                name,
                etag,
                owner: String::new(),
            })
            .await
            .map(|_| ()),
        "complete" => client
            .complete_service_request(CompleteServiceRequestRequest {
                name,
                etag,
                outcome: one(&fields, "outcome").trim().to_string(),
            })
            .await
            .map(|_| ()),
        "cancel" => client
            .cancel_service_request(CancelServiceRequestRequest {
                name,
                etag,
                reason: one(&fields, "reason").trim().to_string(),
            })
            .await
            .map(|_| ()),
        _ => {
            let err = HttpError::invalid("action", "must be one of start, complete, cancel");
            let refused = Refused {
                id: &id,
                fields: &fields,
            };
            return page(
                &c,
                RequestForm::default(),
                Filters::default(),
                Some(err),
                None,
                Some(refused),
            )
            .await;
        }
    };
    match done {
        Ok(()) => Redirect::to(&format!("/console/guide/requests?done={action}")).into_response(),
        Err(status) => {
            let refused = Refused {
                id: &id,
                fields: &fields,
            };
            let err = HttpError::from(status);
            page(
                &c,
                RequestForm::default(),
                Filters::default(),
                Some(err),
                None,
                Some(refused),
            )
            .await
        }
    }
}

/// A one-line address (the street; the rest of an address is not asked at the desk).
fn street(text: &str) -> Option<Address> {
    let text = text.trim();
    (!text.is_empty()).then(|| Address {
        street: text.to_string(),
        ..Default::default()
    })
}

fn request(c: &Console, f: &RequestForm) -> Result<CreateServiceRequestRequest, HttpError> {
    let offset = c.gw.cfg.utc_offset_minutes;
    let kind = parse_slug(REQUEST_TYPES, "service_request.type", &f.r#type)?;
    let details = match kind {
        Some(ServiceRequestType::ResultDelivery) => {
            let method = parse_slug(DELIVERY_METHODS, "service_request.result_delivery.method", &f.rd_method)?;
            Some(Details::ResultDelivery(ResultDeliveryDetails {
                method: method.map(|m| m as i32).unwrap_or_default(),
                result_time: parse_local("service_request.result_delivery.result_time", &f.rd_result_time, offset)?,
                exam: f.rd_exam.trim().to_string(),
                address: street(&f.rd_street),
                phone: f.rd_phone.trim().to_string(),
                email: f.rd_email.trim().to_string(),
            }))
        }
        Some(ServiceRequestType::ExamEscort) => Some(Details::ExamEscort(ExamEscortDetails {
            exams: f
                .ee_exams
                .split(['\n', ',', '，', '、'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            appointment_time: parse_local("service_request.exam_escort.appointment_time", &f.ee_time, offset)?,
            meeting_point: f.ee_meeting.trim().to_string(),
        })),
        Some(ServiceRequestType::AdmissionHelp) => Some(Details::AdmissionHelp(AdmissionHelpDetails {
            ward: f.ah_ward.trim().to_string(),
            notifying_department: f.ah_department.trim().to_string(),
            admission_time: parse_local("service_request.admission_help.admission_time", &f.ah_time, offset)?,
            ..Default::default()
        })),
        Some(ServiceRequestType::ProxyDischarge) => {
            let invoice = parse_slug(
                INVOICE_DELIVERIES,
                "service_request.proxy_discharge.invoice_delivery",
                &f.pd_invoice,
            )?;
            Some(Details::ProxyDischarge(ProxyDischargeDetails {
                authorization_signed: f.pd_authorization == "true",
                deposit_slip_received: f.pd_deposit_slip == "true",
                invoice_delivery: invoice.map(|i| i as i32).unwrap_or_default(),
                invoice_address: street(&f.pd_street),
                ward: f.pd_ward.trim().to_string(),
            }))
        }
        Some(ServiceRequestType::HomeCare) => Some(Details::HomeCare(HomeCareDetails {
            service: f.hc_service.trim().to_string(),
            preferred_time: parse_local("service_request.home_care.preferred_time", &f.hc_time, offset)?,
            address: street(&f.hc_street),
        })),
        _ => None,
    };
    let request = ServiceRequest {
        patient: f.patient.trim().to_string(),
        r#type: kind.map(|k| k as i32).unwrap_or_default(),
        details,
        department: f.department.trim().to_string(),
        description: f.description.trim().to_string(),
        ..Default::default()
    };
    let request_id = if f.request_id.is_empty() {
        format!("console-{}", hcrm_kit::new_id())
    } else {
        f.request_id.clone()
    };
    Ok(CreateServiceRequestRequest {
        service_request: Some(request),
        request_id,
    })
}

async fn page(
    c: &Console,
    mut form: RequestForm,
    filters: Filters,
    error: Option<HttpError>,
    notice: Option<&str>,
    refused: Option<Refused<'_>>,
) -> Response {
    if form.request_id.is_empty() {
        form.request_id = hcrm_kit::new_id();
    }
    let mut client = request_client(c);
    let mut stats_client = client.clone();
    let listed = async {
        match filters.request() {
            Ok(r) => client
                .list_service_requests(r)
                .await
                .map(|r| r.into_inner())
                .map_err(HttpError::from),
            Err(err) => Err(err),
        }
    };
    let picker = patient_picker(
        c,
        Picker {
            query: &form.patient_query,
            chosen: &form.patient,
            none: None,
        },
    );
    let now = c.gw.store.now();
    let counted = stats_client.get_service_request_statistics(GetServiceRequestStatisticsRequest {
        start_time: Some(hcrm_kit::time::to_timestamp(now - 30 * DAY)),
        end_time: Some(hcrm_kit::time::to_timestamp(now + DAY)),
    });
    let (listed, picker, lists, counted) = tokio::join!(listed, picker, directory_lists(c), counted);
    let body = html! {
        (subnav(c, "/console/guide/requests"))
        @if let Some(text) = notice { div.notice #done { (text) } }
        @if let Some(err) = &error { (c.error_box(err)) }
        (filter_form(c, &filters))
        @match &listed {
            Ok(r) => {
                @if r.service_requests.is_empty() {
                    p #no-requests { (c.tr("没有符合条件的服务申请。", "No request matches.")) }
                } @else {
                    (worklist(c, &r.service_requests, refused.as_ref()))
                }
            }
            Err(err) => { (c.error_box(err)) }
        }
        @if let Ok(s) = counted {
            (statistics(c, &s.into_inner()))
        }
        div.card {
            h2 { (c.tr("登记服务申请", "Take in a request")) }
            (request_form(c, &form, picker))
        }
        (lists)
    };
    with_status(c.page(c.tr("便民服务", "Service requests"), body), error.as_ref())
}

fn filter_form(c: &Console, f: &Filters) -> Markup {
    html! {
        form.inline #request-filters method="get" action="/console/guide/requests" role="search" {
            label { (c.tr("状态", "State")) (select(c, "state", REQUEST_STATES, &f.state, Some(c.tr("待处理与处理中", "open and in progress")))) }
            label { (c.tr("类型", "Type")) (select(c, "type", REQUEST_TYPES, &f.r#type, Some(c.tr("全部", "any")))) }
            label.choice { input type="checkbox" name="overdue" value="1" checked[f.overdue]; (c.tr("只看已超时", "Overdue only")) }
            button type="submit" { (c.tr("筛选", "Filter")) }
        }
    }
}

/// The type's key details in a line.
fn details_text(c: &Console, r: &ServiceRequest) -> String {
    match &r.details {
        Some(Details::ResultDelivery(d)) => {
            format!(
                "{} · {} {}",
                name_of(c, DELIVERY_METHODS, d.method),
                c.tr("报告时间", "result at"),
                c.ts(&d.result_time)
            ) + &if d.exam.is_empty() {
                String::new()
            } else {
                format!(" · {}", d.exam)
            }
        }
        Some(Details::ExamEscort(d)) => d.exams.join("、"),
        Some(Details::AdmissionHelp(d)) => format!("{} ← {}", d.ward, d.notifying_department),
        Some(Details::ProxyDischarge(d)) => format!(
            "{} {} · {} {} · {}",
            c.tr("授权书", "authorisation"),
            if d.authorization_signed { "✓" } else { "✗" },
            c.tr("押金条", "deposit slip"),
            if d.deposit_slip_received { "✓" } else { "✗" },
            name_of(c, INVOICE_DELIVERIES, d.invoice_delivery)
        ),
        Some(Details::HomeCare(d)) => d.service.clone(),
        None => String::new(),
    }
}

fn worklist(c: &Console, list: &[ServiceRequest], refused: Option<&Refused<'_>>) -> Markup {
    html! {
        table #requests {
            thead { tr {
                th { (c.tr("到期时间", "Due")) } th { (c.tr("时限", "Deadline")) } th { (c.tr("类型", "Type")) }
                th { (c.tr("患者", "Patient")) } th { (c.tr("科室", "Department")) } th { (c.tr("内容", "Details")) }
                th { (c.tr("状态", "State")) } th { (c.tr("负责人", "Owner")) } th { (c.tr("操作", "Actions")) }
            } }
            tbody {
                @for r in list {
                    @let id = id_of(&r.name);
                    @let overdue = r.sla_state == ServiceRequestSlaState::Overdue as i32;
                    @let kept = |field: &str| refused.filter(|x| x.id == id).map(|x| one(x.fields, field).to_string()).unwrap_or_default();
                    tr data-request=(id) data-etag=(r.etag) data-state=(slug_of(REQUEST_STATES, r.state)) data-sla=(slug_of(REQUEST_SLAS, r.sla_state)) class=[overdue.then_some("overdue")] {
                        td { (c.ts(&r.due_time)) }
                        td { span class=(sla_tone(r.sla_state)) { (name_of(c, REQUEST_SLAS, r.sla_state)) } }
                        td { (name_of(c, REQUEST_TYPES, r.r#type)) }
                        td { a href={ "/console/" (r.patient) } { (c.tr("患者档案", "patient file")) } }
                        td { (r.department) }
                        td { (details_text(c, r)) @if !r.description.is_empty() { br; span.small { (r.description) } } }
                        td { span.tag { (name_of(c, REQUEST_STATES, r.state)) } }
                        td { (r.owner) }
                        td {
                            @let action = format!("/console/guide/requests/{id}/act");
                            @if r.state == ServiceRequestState::Open as i32 {
                                form.inline method="post" action=(action) data-action="start" {
                                    (c.csrf_field())
                                    input type="hidden" name="etag" value=(r.etag);
                                    button.secondary type="submit" name="action" value="start" { (c.tr("开始处理", "Start")) }
                                }
                            }
                            @if r.state == ServiceRequestState::InProgress as i32 {
                                form.inline method="post" action=(action) data-action="complete" {
                                    (c.csrf_field())
                                    input type="hidden" name="etag" value=(r.etag);
                                    label { (c.tr("处理结果", "Outcome")) input name="outcome" value=(kept("outcome")) maxlength="1000" size="16"; }
                                    button type="submit" name="action" value="complete" { (c.tr("完成", "Complete")) }
                                }
                            }
                            @if r.state == ServiceRequestState::Open as i32 || r.state == ServiceRequestState::InProgress as i32 {
                                details.action {
                                    summary { (c.tr("取消", "Cancel")) }
                                    form.inline method="post" action=(action) data-action="cancel" {
                                        (c.csrf_field())
                                        input type="hidden" name="etag" value=(r.etag);
                                        label { (c.tr("取消原因", "Reason")) input name="reason" value=(kept("reason")) maxlength="256" size="16"; }
                                        button.secondary type="submit" name="action" value="cancel" { (c.tr("取消申请", "Cancel request")) }
                                    }
                                }
                            }
                            @if !r.outcome.is_empty() { span.small { (r.outcome) } }
                            @if !r.cancel_reason.is_empty() { span.small { (r.cancel_reason) } }
                        }
                    }
                }
            }
        }
    }
}

/// The colour of an SLA state's tag.
fn sla_tone(value: i32) -> &'static str {
    match ServiceRequestSlaState::try_from(value).unwrap_or_default() {
        ServiceRequestSlaState::OnTrack | ServiceRequestSlaState::Met => "tag good",
        ServiceRequestSlaState::DueSoon => "tag warn",
        ServiceRequestSlaState::Overdue | ServiceRequestSlaState::Missed => "tag bad",
        ServiceRequestSlaState::Unspecified => "tag",
    }
}

fn request_form(c: &Console, f: &RequestForm, picker: Markup) -> Markup {
    html! {
        form #new-request method="post" action="/console/guide/requests" {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(f.request_id);
            fieldset #request-patient {
                legend { (c.tr("患者", "Patient")) }
                (picker)
            }
            div.row {
                label { (c.tr("服务类型", "Type")) (select(c, "type", REQUEST_TYPES, &f.r#type, None)) }
                label { (c.tr("科室代码（空则为患者所属科室）", "Department code (empty: the patient's)"))
                    input name="department" value=(f.department) list="departments" maxlength="64"; }
            }
            label { (c.tr("说明（“其他”类型必填）", "Description (required for “other”)"))
                textarea name="description" rows="2" maxlength="2000" { (f.description) } }
            p.small { (c.tr("只填写所选类型的信息：", "Fill in the details of the chosen type only:")) }
            fieldset #result-delivery {
                legend { (c.tr("报告寄送", "Result delivery")) }
                div.row {
                    label { (c.tr("方式", "Method")) (select(c, "rd_method", DELIVERY_METHODS, &f.rd_method, None)) }
                    label { (c.tr("出报告时间", "Result available at"))
                        input type="datetime-local" name="rd_result_time" value=(f.rd_result_time); }
                    label { (c.tr("检查项目", "Exam")) input name="rd_exam" value=(f.rd_exam) maxlength="200"; }
                }
                div.row {
                    label { (c.tr("电话（电话告知）", "Phone (by phone)")) input name="rd_phone" value=(f.rd_phone) inputmode="tel" maxlength="20"; }
                    label { (c.tr("电子邮件", "E-mail")) input name="rd_email" type="email" value=(f.rd_email) maxlength="200"; }
                    label { (c.tr("邮寄地址", "Postal address")) input name="rd_street" value=(f.rd_street) maxlength="200"; }
                }
            }
            fieldset #exam-escort {
                legend { (c.tr("陪检", "Exam escort")) }
                div.row {
                    label { (c.tr("检查项目（逗号分隔）", "Exams (comma-separated)")) input name="ee_exams" value=(f.ee_exams) maxlength="500"; }
                    label { (c.tr("预约时间", "Appointment")) input type="datetime-local" name="ee_time" value=(f.ee_time); }
                    label { (c.tr("会合地点", "Meeting point")) input name="ee_meeting" value=(f.ee_meeting) maxlength="200"; }
                }
            }
            fieldset #admission-help {
                legend { (c.tr("入院协助", "Admission help")) }
                div.row {
                    label { (c.tr("病区", "Ward")) input name="ah_ward" value=(f.ah_ward) maxlength="100"; }
                    label { (c.tr("通知科室（代码）", "Notifying department (code)")) input name="ah_department" value=(f.ah_department) list="departments" maxlength="64"; }
                    label { (c.tr("预计入院时间", "Expected at")) input type="datetime-local" name="ah_time" value=(f.ah_time); }
                }
            }
            fieldset #proxy-discharge {
                legend { (c.tr("代办出院", "Proxy discharge")) }
                label.choice { input type="checkbox" name="pd_authorization" value="true" checked[f.pd_authorization == "true"];
                    (c.tr("已收到患者签字的授权书", "Signed authorisation received")) }
                label.choice { input type="checkbox" name="pd_deposit_slip" value="true" checked[f.pd_deposit_slip == "true"];
                    (c.tr("已收到押金条", "Deposit slip received")) }
                div.row {
                    label { (c.tr("发票送达", "Invoice")) (select(c, "pd_invoice", INVOICE_DELIVERIES, &f.pd_invoice, None)) }
                    label { (c.tr("发票邮寄地址", "Invoice postal address")) input name="pd_street" value=(f.pd_street) maxlength="200"; }
                    label { (c.tr("病区", "Ward")) input name="pd_ward" value=(f.pd_ward) maxlength="100"; }
                }
            }
            fieldset #home-care {
                legend { (c.tr("上门护理", "Home care")) }
                div.row {
                    label { (c.tr("服务项目", "Service")) input name="hc_service" value=(f.hc_service) maxlength="100"; }
                    label { (c.tr("期望时间", "Preferred time")) input type="datetime-local" name="hc_time" value=(f.hc_time); }
                    label { (c.tr("地址", "Address")) input name="hc_street" value=(f.hc_street) maxlength="200"; }
                }
            }
            button type="submit" name="op" value="create" { (c.tr("登记", "Take it in")) }
        }
    }
}

/// The last 30 days per type: taken in, done (on time), cancelled, and open past due now. A
/// role that reads no statistics simply sees none.
fn statistics(c: &Console, s: &ServiceRequestStatistics) -> Markup {
    html! {
        details #request-figures {
            summary { (c.tr("近30天统计", "The last 30 days")) }
            table {
                thead { tr {
                    th { (c.tr("类型", "Type")) } th.right { (c.tr("登记", "Taken in")) } th.right { (c.tr("完成", "Done")) }
                    th.right { (c.tr("按时完成率", "On time")) } th.right { (c.tr("取消", "Cancelled")) }
                    th.right { (c.tr("当前超时", "Overdue now")) }
                } }
                tbody {
                    @for t in s.by_type.iter().chain(s.total.as_ref()) {
                        tr data-type=(slug_of(REQUEST_TYPES, t.r#type)) {
                            td { @if t.r#type == 0 { strong { (c.tr("合计", "Total")) } } @else { (name_of(c, REQUEST_TYPES, t.r#type)) } }
                            td.right { (t.created) } td.right { (t.done) }
                            td.right { (format!("{:.0}%", t.done_on_time_percent)) } td.right { (t.cancelled) }
                            td.right data-overdue-now=(t.open_overdue_now) { (t.open_overdue_now) }
                        }
                    }
                }
            }
        }
    }
}
