//! Plans: a patient's (or a department's) follow-up plans, a plan with its tasks and history,
//! making a plan for a patient from a template, cancelling one.

use super::{
    Entries, Names, date_text, followup, id_of, local_micros, missing, origin_label, parse_date, plan_state_tag,
    read_form, request_id, status_tag, subnav, template_client, today, with_status,
};
use crate::api::error::HttpError;
use crate::web::page::{Console, url_encode};
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::followup::{
    CancelPlanRequest, ChronicPhase, CreatePlanRequest, GetPlanRequest, ListPlansRequest, ListTasksRequest,
    ListTemplatesRequest, Plan, PlanState, TaskView, Template,
};
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct PlansQuery {
    #[serde(default)]
    patient: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: String,
}

/// `patients/{id}` from what staff paste: the resource name, a console link or the bare id.
fn patient_name(text: &str) -> String {
    let text = text.trim().trim_end_matches('/');
    if text.is_empty() {
        return String::new();
    }
    let id = text.rsplit_once("patients/").map(|(_, id)| id).unwrap_or(text);
    format!("patients/{id}")
}

fn state_of(key: &str) -> PlanState {
    match key {
        "active" => PlanState::Active,
        "completed" => PlanState::Completed,
        "cancelled" => PlanState::Cancelled,
        _ => PlanState::Unspecified,
    }
}

/// Active templates, for the new-plan form and to name the templates of listed plans.
async fn active_templates(c: &Console) -> Result<Vec<Template>, tonic::Status> {
    template_client(c)
        .list_templates(ListTemplatesRequest {
            page_size: 200,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().templates)
}

pub async fn list(c: Console, Query(q): Query<PlansQuery>) -> Response {
    let entries = Entries::default().or("patient", q.patient.trim());
    page(&c, &q, entries, None).await
}

async fn page(c: &Console, q: &PlansQuery, entries: Entries, error: Option<&HttpError>) -> Response {
    let request = ListPlansRequest {
        patient: patient_name(&q.patient),
        department: q.department.trim().to_string(),
        state: state_of(&q.state) as i32,
        page_size: 50,
        page_token: q.page.clone(),
    };
    let (plans, templates) = tokio::join!(
        async { followup(c).list_plans(request).await.map(|r| r.into_inner()) },
        active_templates(c)
    );
    let names = match &plans {
        Ok(list) => Names::fetch(c, list.plans.iter().map(|p| p.patient.as_str())).await,
        Err(_) => Names::default(),
    };
    let template_list: &[Template] = templates.as_deref().unwrap_or(&[]);
    let body = html! {
        (subnav(c))
        (filter_form(c, q))
        @match &plans {
            Err(status) => { (c.error_box(&HttpError::from(status.clone()))) }
            Ok(list) if list.plans.is_empty() => { p.small #no-plans { (c.tr("没有随访计划。", "No plans.")) } }
            Ok(list) => {
                (plan_table(c, &list.plans, &names, template_list))
                @if !list.next_page_token.is_empty() {
                    p { a rel="next" href={ "/console/followups/plans?patient=" (url_encode(&q.patient)) "&department=" (url_encode(&q.department)) "&state=" (url_encode(&q.state)) "&page=" (url_encode(&list.next_page_token)) } {
                        (c.tr("下一页", "Next page"))
                    } }
                }
            }
        }
        h2 { (c.tr("为患者建立随访计划", "Make a plan for a patient")) }
        @if let Some(err) = error { (c.error_box(err)) }
        (new_plan_form(c, &entries, &templates))
    };
    with_status(c.page(c.tr("随访计划", "Follow-up plans"), body), error)
}

fn filter_form(c: &Console, q: &PlansQuery) -> Markup {
    html! {
        form.inline #plan-filter method="get" action="/console/followups/plans" {
            label { (c.tr("患者编号", "Patient id")) input name="patient" value=(q.patient) maxlength="80"; }
            label { (c.tr("科室代码", "Department code")) input name="department" value=(q.department) maxlength="32"; }
            label { (c.tr("状态", "State"))
                select name="state" {
                    option value="" { (c.tr("全部", "all")) }
                    option value="active" selected[q.state == "active"] { (c.tr("进行中", "active")) }
                    option value="completed" selected[q.state == "completed"] { (c.tr("已完成", "completed")) }
                    option value="cancelled" selected[q.state == "cancelled"] { (c.tr("已取消", "cancelled")) }
                }
            }
            button type="submit" { (c.tr("筛选", "Filter")) }
        }
    }
}

fn template_link(templates: &[Template], name: &str, version: i32) -> Markup {
    if name.is_empty() {
        return html! {};
    }
    let display = templates
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.display_name.clone())
        .unwrap_or_else(|| id_of(name).to_string());
    html! { a href={ "/console/followups/" (name) "?version=" (version) } { (display) " v" (version) } }
}

fn plan_table(c: &Console, plans: &[Plan], names: &Names, templates: &[Template]) -> Markup {
    html! {
        table #plans {
            thead { tr {
                th { (c.tr("患者", "Patient")) }
                th { (c.tr("模板", "Template")) }
                th { (c.tr("科室", "Department")) }
                th { (c.tr("负责人", "Responsible")) }
                th { (c.tr("状态", "State")) }
                th { (c.tr("来源", "Origin")) }
                th { (c.tr("建立时间", "Created")) }
                th {}
            } }
            tbody {
                @for p in plans {
                    tr data-plan=(id_of(&p.name)) data-patient=(id_of(&p.patient)) {
                        td { (names.link(&p.patient)) }
                        td { (template_link(templates, &p.template, p.template_version)) }
                        td { (p.department) }
                        td { (p.responsible) }
                        td { (plan_state_tag(c, p.state)) }
                        td { (origin_label(c, p.origin)) }
                        td { (c.ts(&p.create_time)) }
                        td { a href={ "/console/followups/" (p.name) } { (c.tr("查看", "Open")) } }
                    }
                }
            }
        }
    }
}

fn new_plan_form(c: &Console, entries: &Entries, templates: &Result<Vec<Template>, tonic::Status>) -> Markup {
    let e = entries
        .clone()
        .or("responsible", c.who.account.username.clone())
        .or("department", c.who.account.department.clone().unwrap_or_default())
        .or("anchor_date", today(c).format("%Y-%m-%d").to_string())
        .or("request_id", hcrm_kit::new_id());
    html! {
        form.card #new-plan method="post" action="/console/followups/plans" {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(e.get("request_id"));
            label { (c.tr("患者编号（患者页面地址中的编号）", "Patient id (from the patient page's address)"))
                input name="patient" value=(e.get("patient")) required maxlength="80"; }
            label { (c.tr("随访模板", "Template"))
                @match templates {
                    Ok(list) => {
                        select name="template" required {
                            option value="" { "—" }
                            @for t in list {
                                option value=(t.name) selected[t.name == e.get("template")] { (t.display_name) " (" (super::kind_label(c, t.kind)) ")" }
                            }
                        }
                    }
                    Err(status) => { (missing(c, status)) input name="template" value=(e.get("template")); }
                }
            }
            label { (c.tr("负责科室代码", "Responsible department code")) input name="department" value=(e.get("department")) required maxlength="32"; }
            label { (c.tr("负责人（用户名，任务派给此人）", "Responsible (username; tasks go to them)")) input name="responsible" value=(e.get("responsible")) required maxlength="64"; }
            label { (c.tr("起算日期（如出院日期；随访日期按模板从此日起算）", "Anchor date (e.g. discharge; due dates count from it)"))
                input type="date" name="anchor_date" value=(e.get("anchor_date")); }
            label { (c.tr("诊断编码（ICD-10，逗号分隔，可不填）", "Diagnosis codes (ICD-10, comma-separated; optional)"))
                input name="diagnosis_codes" value=(e.get("diagnosis_codes")) maxlength="200"; }
            button type="submit" { (c.tr("建立计划", "Make the plan")) }
        }
    }
}

/// Splits a list typed with commas (ASCII or Chinese), semicolons or spaces.
pub(super) fn split_list(text: &str) -> Vec<String> {
    text.split([',', '，', ';', '；', '、', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn plan_of(c: &Console, e: &Entries) -> Result<CreatePlanRequest, HttpError> {
    // A plan anchored today counts from now (the service's default); another day from its noon,
    // so the local day is the same whatever the offsets.
    let anchor_time = match parse_date(c, "anchor_date", e.get("anchor_date"))? {
        Some(d) if d != today(c) => {
            let noon = d.and_hms_opt(12, 0, 0).unwrap_or_default();
            Some(hcrm_kit::time::to_timestamp(local_micros(c, noon)))
        }
        _ => None,
    };
    Ok(CreatePlanRequest {
        plan: Some(Plan {
            patient: patient_name(e.get("patient")),
            template: e.text("template"),
            department: e.text("department"),
            responsible: e.text("responsible"),
            anchor_time,
            diagnosis_codes: split_list(e.get("diagnosis_codes")),
            ..Default::default()
        }),
        steps: Vec::new(),
        request_id: request_id(e),
    })
}

pub async fn create(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let result = match plan_of(&c, &entries) {
        Ok(request) => followup(&c).create_plan(request).await.map_err(HttpError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(plan) => {
            Redirect::to(&format!("/console/followups/{}?done=created", plan.into_inner().name)).into_response()
        }
        Err(err) => {
            let q = PlansQuery {
                patient: entries.text("patient"),
                ..Default::default()
            };
            page(&c, &q, entries, Some(&err)).await
        }
    }
}

/// A plan history action in words; an action this console does not know shows as it is.
fn action_label<'a>(c: &Console, action: &'a str) -> &'a str {
    match action {
        "created" => c.tr("建立", "created"),
        "cancelled" => c.tr("取消", "cancelled"),
        "completed" => c.tr("完成", "completed"),
        "recorded" => c.tr("记录随访", "follow-up recorded"),
        "phase_changed" => c.tr("阶段变化", "phase changed"),
        "task.reschedule" => c.tr("任务改期", "task moved"),
        "task.reassign" => c.tr("任务转交", "task reassigned"),
        "task.cancel" => c.tr("任务取消", "task cancelled"),
        other => other,
    }
}

fn phase_label(c: &Console, value: i32) -> &'static str {
    match ChronicPhase::try_from(value).unwrap_or(ChronicPhase::Unspecified) {
        ChronicPhase::Unspecified => "",
        ChronicPhase::Early => c.tr("早期（加密随访）", "early (frequent calls)"),
        ChronicPhase::Stable => c.tr("稳定", "stable"),
        ChronicPhase::Maintenance => c.tr("维持", "maintenance"),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PlanQuery {
    #[serde(default)]
    done: String,
}

pub async fn show(c: Console, Path(id): Path<String>, Query(q): Query<PlanQuery>) -> Response {
    let notice = match q.done.as_str() {
        "created" => Some(c.tr("随访计划已建立。", "The plan was made.")),
        "cancelled" => Some(c.tr("随访计划已取消。", "The plan was cancelled.")),
        _ => None,
    };
    plan_page(&c, &id, notice, Entries::default(), None).await
}

async fn plan_page(
    c: &Console,
    id: &str,
    notice: Option<&str>,
    entries: Entries,
    error: Option<&HttpError>,
) -> Response {
    let name = format!("plans/{id}");
    let plan = match followup(c).get_plan(GetPlanRequest { name: name.clone() }).await {
        Ok(p) => p.into_inner(),
        Err(status) => return c.error(status),
    };
    let tasks_request = ListTasksRequest {
        view: TaskView::All as i32,
        plan: name.clone(),
        page_size: 100,
        ..Default::default()
    };
    let (tasks, templates, names) = tokio::join!(
        async {
            followup(c)
                .list_tasks(tasks_request)
                .await
                .map(|r| r.into_inner().tasks)
        },
        active_templates(c),
        Names::fetch(c, [plan.patient.as_str()])
    );
    let template_list: &[Template] = templates.as_deref().unwrap_or(&[]);
    let body = html! {
        (subnav(c))
        @if let Some(text) = notice { div.notice role="status" { (text) } }
        @if let Some(err) = error { (c.error_box(err)) }
        section.card #plan data-plan=(id) {
            dl.fields {
                dt { (c.tr("患者", "Patient")) } dd { (names.link(&plan.patient)) }
                dt { (c.tr("状态", "State")) } dd { (plan_state_tag(c, plan.state)) }
                dt { (c.tr("模板", "Template")) } dd { (template_link(template_list, &plan.template, plan.template_version)) }
                dt { (c.tr("科室", "Department")) } dd { (plan.department) }
                dt { (c.tr("负责人", "Responsible")) } dd { (plan.responsible) }
                dt { (c.tr("来源", "Origin")) } dd { (origin_label(c, plan.origin)) " " span.small { (plan.source) } }
                dt { (c.tr("起算时间", "Anchor")) } dd { (c.ts(&plan.anchor_time)) }
                dt { (c.tr("诊断", "Diagnoses")) } dd { (plan.diagnosis_codes.join(", ")) }
                @if let Some(chronic) = &plan.chronic {
                    dt { (c.tr("慢病阶段", "Chronic phase")) }
                    dd { (phase_label(c, chronic.phase)) " · " (c.tr("连续达标", "controlled in a row")) " " (chronic.consecutive_controlled)
                        " · " (c.tr("下次", "next")) " " (date_text(&chronic.next_due_date)) }
                }
            }
        }
        h2 { (c.tr("任务", "Tasks")) }
        @match &tasks {
            Err(status) => { (missing(c, status)) }
            Ok(list) => {
                table #plan-tasks {
                    thead { tr {
                        th { (c.tr("应随访日期", "Due")) } th { (c.tr("截止日期", "Window ends")) } th { (c.tr("目的", "Purpose")) }
                        th { (c.tr("方式", "Channel")) } th { (c.tr("负责人", "Assignee")) } th { (c.tr("已尝试", "Attempts")) }
                        th { (c.tr("状态", "Status")) } th {}
                    } }
                    tbody {
                        @for t in list {
                            tr data-task=(id_of(&t.name)) {
                                td { (date_text(&t.due_date)) } td { (date_text(&t.window_end_date)) } td { (t.purpose) }
                                td { (super::channel_label(c, t.channel)) } td { (t.assignee) } td { (t.attempts) }
                                td { (status_tag(c, t.status)) }
                                td { a href={ "/console/followups/" (t.name) } { (c.tr("处理", "Open")) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { (c.tr("计划记录", "History")) }
        table #plan-history {
            tbody {
                @for h in &plan.history {
                    tr { td { (c.ts(&h.time)) } td { (h.actor) } td { span.tag data-action=(h.action) { (action_label(c, &h.action)) } } td { (h.detail) } }
                }
            }
        }
        @if plan.state == PlanState::Active as i32 {
            details.card #cancel-plan open[error.is_some()] {
                summary { (c.tr("取消计划（同时取消未完成的任务）", "Cancel the plan (and its open tasks)")) }
                form method="post" action={ "/console/followups/" (plan.name) "/cancel" } {
                    (c.csrf_field())
                    label { (c.tr("取消原因（必填）", "Reason (required)")) input name="reason" maxlength="256" required value=(entries.get("reason")); }
                    button.secondary type="submit" { (c.tr("取消计划", "Cancel the plan")) }
                }
            }
        }
    };
    with_status(c.page(c.tr("随访计划", "Follow-up plan"), body), error)
}

pub async fn cancel(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let request = CancelPlanRequest {
        name: format!("plans/{id}"),
        reason: entries.text("reason"),
    };
    match followup(&c).cancel_plan(request).await {
        Ok(_) => Redirect::to(&format!("/console/followups/plans/{}?done=cancelled", url_encode(&id))).into_response(),
        Err(status) => plan_page(&c, &id, None, entries, Some(&HttpError::from(status))).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_are_named_however_staff_paste_them() {
        assert_eq!(patient_name("abc"), "patients/abc");
        assert_eq!(patient_name(" patients/abc "), "patients/abc");
        assert_eq!(patient_name("http://x/console/patients/abc/"), "patients/abc");
        assert_eq!(patient_name(""), "");
        assert_eq!(split_list("I10, I25，E11；J45"), vec!["I10", "I25", "E11", "J45"]);
    }
}
