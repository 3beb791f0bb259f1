//! The task page: the task, who the patient is and how they may be contacted, their earlier
//! follow-ups, and the call recorded on one form (outcome, the template's questions and
//! recovery-score items, guidance, satisfaction, a revisit to book, a complaint); moving, giving away or
//! cancelling the task with the etag it was read at.

use super::{
    Entries, OUTCOMES, channel_label, channel_of, channel_select, date_text, etag_of, followup, id_of, is_open,
    local_micros, missing, outcome_key, outcome_label, parse_date, patient_client, read_form, request_id, status_tag,
    subnav, template_client, to_date, with_status,
};
use crate::api::error::HttpError;
use crate::web::page::{Console, url_encode};
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::followup::{
    AppointmentKind, AppointmentWish, CancelTaskRequest, Dimension, FollowUpRecord, GetPlanRequest, GetTaskRequest,
    GetTemplateRequest, ListFollowUpsRequest, Outcome, Plan, PlanOrigin, ReassignTaskRequest, RecordFollowUpRequest,
    RescheduleTaskRequest, Satisfaction, ScoreAnswer, Task, Template,
};
use hcrm_proto::patients::{GetPatientRequest, Patient};
use hcrm_proto::types::ContactChannel;
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;

/// The forms of the page, to show a refused one again with its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Record,
    Reschedule,
    Reassign,
    Cancel,
}

struct Refused {
    action: Action,
    entries: Entries,
    error: HttpError,
}

#[derive(Debug, Default, Deserialize)]
pub struct TaskQuery {
    /// What was just done (after a redirect), for the notice.
    #[serde(default)]
    done: String,
}

const DIMENSIONS: [(Dimension, &str); 6] = [
    (Dimension::Attitude, "attitude"),
    (Dimension::ProfessionalSkill, "professional_skill"),
    (Dimension::Communication, "communication"),
    (Dimension::Responsiveness, "responsiveness"),
    (Dimension::ProblemSolving, "problem_solving"),
    (Dimension::Environment, "environment"),
];

fn dimension_label(c: &Console, d: Dimension) -> &'static str {
    match d {
        Dimension::Unspecified => "",
        Dimension::Attitude => c.tr("服务态度", "attitude"),
        Dimension::ProfessionalSkill => c.tr("专业技术", "professional skill"),
        Dimension::Communication => c.tr("沟通", "communication"),
        Dimension::Responsiveness => c.tr("响应速度", "responsiveness"),
        Dimension::ProblemSolving => c.tr("问题解决", "problem solving"),
        Dimension::Environment => c.tr("就医环境", "environment"),
    }
}

fn notice(c: &Console, done: &str) -> Option<&'static str> {
    Some(match done {
        "recorded" => c.tr("随访已记录。", "The follow-up was recorded."),
        "not_reached" => c.tr(
            "已记录未接通；在尝试次数用完前，任务顺延至次日。",
            "Recorded as not reached; while attempts remain, the task moves to tomorrow.",
        ),
        "rescheduled" => c.tr("任务已改期。", "The task was moved."),
        "reassigned" => c.tr("任务已转交。", "The task was reassigned."),
        "cancelled" => c.tr("任务已取消。", "The task was cancelled."),
        _ => return None,
    })
}

pub async fn show(c: Console, Path(id): Path<String>, Query(q): Query<TaskQuery>) -> Response {
    render(&c, &id, notice(&c, &q.done), None).await
}

/// The plan of a task and the template version it was made from, if any.
async fn plan_and_template(c: &Console, plan: &str) -> Result<(Plan, Option<Template>), tonic::Status> {
    let plan = followup(c)
        .get_plan(GetPlanRequest { name: plan.to_string() })
        .await?
        .into_inner();
    if plan.template.is_empty() {
        return Ok((plan, None));
    }
    let template = template_client(c)
        .get_template(GetTemplateRequest {
            name: plan.template.clone(),
            version: plan.template_version,
        })
        .await?
        .into_inner();
    Ok((plan, Some(template)))
}

async fn render(c: &Console, id: &str, notice: Option<&str>, refused: Option<Refused>) -> Response {
    let task = match followup(c)
        .get_task(GetTaskRequest {
            name: format!("tasks/{id}"),
        })
        .await
    {
        Ok(t) => t.into_inner(),
        Err(status) => return c.error(status),
    };
    let patient = async {
        patient_client(c)
            .get_patient(GetPatientRequest {
                name: task.patient.clone(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner())
    };
    let history = async {
        followup(c)
            .list_follow_ups(ListFollowUpsRequest {
                patient: task.patient.clone(),
                page_size: 20,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().follow_ups)
    };
    let (patient, plan, history) = tokio::join!(patient, plan_and_template(c, &task.plan), history);
    let error = refused.as_ref().map(|r| &r.error);
    let entries_for = |action: Action| {
        refused
            .as_ref()
            .filter(|r| r.action == action)
            .map(|r| r.entries.clone())
            .unwrap_or_default()
    };
    let open_action = refused.as_ref().map(|r| r.action);
    let body = html! {
        (subnav(c))
        @if let Some(text) = notice { div.notice role="status" { (text) } }
        @if let Some(err) = error { (c.error_box(err)) }
        div.grid {
            (patient_card(c, &task, &patient))
            (task_card(c, &task, &plan))
        }
        @if is_open(task.status) {
            (record_form(c, &task, &plan, entries_for(Action::Record)))
            (other_actions(c, &task, open_action, &entries_for))
        }
        h2 { (c.tr("既往随访记录", "Earlier follow-ups")) }
        @match &history {
            Ok(list) => { (history_table(c, list)) }
            Err(status) => { (missing(c, status)) }
        }
    };
    let title = format!("{} · {}", c.tr("随访任务", "Follow-up task"), date_text(&task.due_date));
    with_status(c.page(&title, body), error)
}

fn contact_label(c: &Console, value: i32) -> &'static str {
    match ContactChannel::try_from(value).unwrap_or(ContactChannel::Unspecified) {
        ContactChannel::Unspecified => "",
        ContactChannel::Phone => c.tr("电话", "phone"),
        ContactChannel::Sms => c.tr("短信", "SMS"),
        ContactChannel::Wechat => c.tr("微信", "WeChat"),
        ContactChannel::Email => c.tr("电子邮件", "e-mail"),
        ContactChannel::App => "App",
        ContactChannel::Mail => c.tr("信件", "mail"),
        ContactChannel::HomeVisit => c.tr("家访", "home visit"),
    }
}

/// Whether the local time now falls within quiet hours `start`–`end` ("HH:MM"; may wrap
/// past midnight).
fn in_quiet_hours(c: &Console, start: &str, end: &str) -> bool {
    let (Some(start), Some(end)) = (hcrm_kit::time::parse_hhmm(start), hcrm_kit::time::parse_hhmm(end)) else {
        return false;
    };
    let local = c.gw.store.now() / 60_000_000 + i64::from(c.gw.cfg.utc_offset_minutes);
    let now = local.rem_euclid(24 * 60) as i32;
    if start <= end {
        (start..end).contains(&now)
    } else {
        now >= start || now < end
    }
}

fn patient_card(c: &Console, task: &Task, patient: &Result<Patient, tonic::Status>) -> Markup {
    let p = match patient {
        Ok(p) => p,
        Err(status) => {
            return html! {
                section.card #patient {
                    h2 { a href={ "/console/" (task.patient) } { (id_of(&task.patient)) } }
                    (missing(c, status))
                }
            };
        }
    };
    let prefs = p.contact_preferences.clone().unwrap_or_default();
    let quiet = !prefs.quiet_hours_start.is_empty();
    html! {
        section.card #patient data-patient=(id_of(&p.name)) {
            h2 { a href={ "/console/" (p.name) } { (p.display_name) } " " span.small { (p.code) } }
            @if p.deceased {
                div.error #deceased { strong { (c.tr("患者已故，请勿联系。", "The patient has died; do not call.")) } }
            }
            @if prefs.do_not_contact {
                div.error #do-not-contact { strong { (c.tr("患者要求不再联系，请勿致电或发送消息。", "The patient asked not to be contacted: do not call or message.")) } }
            }
            @if quiet {
                p #quiet-hours {
                    span.tag.warn { (c.tr("免打扰时段", "Quiet hours")) " " (prefs.quiet_hours_start) "–" (prefs.quiet_hours_end) }
                    @if in_quiet_hours(c, &prefs.quiet_hours_start, &prefs.quiet_hours_end) {
                        " " strong { (c.tr("现在处于免打扰时段。", "It is quiet hours now.")) }
                    }
                }
            }
            dl.fields {
                dt { (c.tr("电话", "Phones")) }
                dd #phones { @for (i, phone) in p.phones.iter().enumerate() { @if i > 0 { ", " } a href={ "tel:" (phone) } { (phone) } } }
                dt { (c.tr("同意的联系方式", "Consented channels")) }
                dd {
                    @if prefs.allowed_channels.is_empty() { span.tag.warn { (c.tr("未记录同意", "no consent recorded")) } }
                    @for ch in &prefs.allowed_channels { span.tag { (contact_label(c, *ch)) } }
                }
                dt { (c.tr("科室", "Department")) } dd { (p.department) }
                dt { (c.tr("最近就诊", "Last visit")) } dd { (c.ts(&p.last_visit_time)) }
            }
        }
    }
}

fn task_card(c: &Console, task: &Task, plan: &Result<(Plan, Option<Template>), tonic::Status>) -> Markup {
    html! {
        section.card #task data-task=(id_of(&task.name)) data-etag=(task.etag) {
            h2 { (c.tr("任务", "Task")) " " (status_tag(c, task.status)) }
            dl.fields {
                dt { (c.tr("应随访日期", "Due")) } dd data-field="due_date" { (date_text(&task.due_date)) }
                dt { (c.tr("截止日期", "Window ends")) } dd data-field="window_end_date" { (date_text(&task.window_end_date)) }
                dt { (c.tr("目的", "Purpose")) } dd { (task.purpose) }
                dt { (c.tr("方式", "Channel")) } dd { (channel_label(c, task.channel)) }
                dt { (c.tr("已尝试", "Attempts")) } dd data-field="attempts" { (task.attempts) }
                dt { (c.tr("科室", "Department")) } dd { (task.department) }
                dt { (c.tr("负责人", "Assignee")) } dd data-field="assignee" { (task.assignee) }
                dt { (c.tr("提前通知患者", "Patient notified")) } dd { (if task.notify_patient { c.tr("是", "yes") } else { c.tr("否", "no") }) }
                dt { (c.tr("随访计划", "Plan")) }
                dd {
                    a href={ "/console/followups/" (task.plan) } { (c.tr("查看计划", "Open the plan")) }
                    @if let Ok((_, Some(t))) = plan {
                        " · " a href={ "/console/followups/" (t.name) "?version=" (t.version) } { (t.display_name) " v" (t.version) }
                    }
                }
                @if !task.cancel_reason.is_empty() {
                    dt { (c.tr("取消原因", "Cancelled because")) } dd { (task.cancel_reason) }
                }
            }
        }
    }
}

fn record_form(
    c: &Console,
    task: &Task,
    plan: &Result<(Plan, Option<Template>), tonic::Status>,
    entries: Entries,
) -> Markup {
    let task_channel = super::channel_key(hcrm_proto::followup::Channel::try_from(task.channel).unwrap_or_default());
    let e = entries.or("channel", task_channel).or("request_id", hcrm_kit::new_id());
    let (template, confirms_case) = match plan {
        Ok((p, t)) => (t.as_ref(), p.origin == PlanOrigin::Complaint as i32),
        Err(_) => (None, false),
    };
    let score_items = template
        .and_then(|t| t.score.as_ref())
        .map(|s| s.items.as_slice())
        .unwrap_or(&[]);
    let questions = template.map(|t| t.questions.as_slice()).unwrap_or(&[]);
    html! {
        form.card #record method="post" action={ "/console/followups/" (task.name) "/record" } {
            h2 { (c.tr("记录本次随访", "Record this follow-up")) }
            (c.csrf_field())
            input type="hidden" name="request_id" value=(e.get("request_id"));
            @if let Err(status) = plan {
                p.small { (c.tr("无法读取随访模板：", "The template could not be read: ")) } (missing(c, status))
            }
            div.grid {
                label { (c.tr("方式", "Channel")) (channel_select(c, "channel", e.get("channel"), false)) }
                label { (c.tr("结果", "Outcome"))
                    select name="outcome" required {
                        option value="" { "—" }
                        @for o in OUTCOMES {
                            option value=(outcome_key(o)) selected[outcome_key(o) == e.get("outcome")] { (outcome_label(c, o as i32)) }
                        }
                    }
                }
                label { (c.tr("随访时间（默认现在）", "When (default now)"))
                    input type="datetime-local" name="occur_time" value=(e.get("occur_time"));
                }
            }
            @if !questions.is_empty() {
                fieldset #questions {
                    legend { (c.tr("随访问题（回答写入随访内容）", "Questions (the answers go into the notes)")) }
                    @for q in questions {
                        @let field = format!("q_{}", q.key);
                        input type="hidden" name={ "qtext_" (q.key) } value=(q.text);
                        label { (q.text) input name=(field) value=(e.get(&field)) maxlength="500"; }
                    }
                }
            }
            @if !score_items.is_empty() {
                fieldset #score {
                    legend { (c.tr("康复评分（联系上患者时必填）", "Recovery score (required when reached)")) }
                    @for item in score_items {
                        @let field = format!("score_{}", item.key);
                        label data-item=(item.key) {
                            (item.label) " "
                            span.small { "(" (item.min) "–" (item.max)
                                @if item.lower_is_better { ", " (c.tr("越低越好", "lower is better")) }
                                ", " (c.tr("权重", "weight")) " " (item.weight) ")" }
                            input type="number" step="any" min=(item.min) max=(item.max) name=(field) value=(e.get(&field));
                        }
                    }
                }
            }
            label { (c.tr("随访内容", "What was said")) textarea name="content" rows="4" maxlength="4000" { (e.get("content")) } }
            label { (c.tr("健康指导", "Health guidance given")) textarea name="health_guidance" rows="3" maxlength="2000" { (e.get("health_guidance")) } }
            fieldset #satisfaction {
                legend { (c.tr("满意度（1 很不满意 – 5 很满意，可不填）", "Satisfaction (1 very poor – 5 very good; optional)")) }
                div.grid {
                    @for (d, key) in DIMENSIONS {
                        @let field = format!("sat_{key}");
                        label { (dimension_label(c, d))
                            select name=(field) {
                                option value="" { "—" }
                                @for n in 1..=5 {
                                    @let v = n.to_string();
                                    option value=(v) selected[e.get(&field) == v] { (v) }
                                }
                            }
                        }
                    }
                }
            }
            @if confirms_case {
                label { (c.tr("投诉整改是否有效？（联系上时必填）", "Did the fix work? (required when reached)"))
                    select name="fix_effective" {
                        option value="" { "—" }
                        option value="yes" selected[e.get("fix_effective") == "yes"] { (c.tr("有效", "yes")) }
                        option value="no" selected[e.get("fix_effective") == "no"] { (c.tr("无效", "no")) }
                    }
                }
            }
            (appointment_fieldset(c, task, &e))
            label { input type="checkbox" name="complaint_raised" value="true" checked[e.get("complaint_raised") == "true"];
                " " (c.tr("患者提出投诉（将转为投诉案件）", "The patient raised a complaint (it becomes a case)")) }
            label { (c.tr("投诉摘要", "Complaint summary")) textarea name="complaint_summary" rows="2" maxlength="1000" { (e.get("complaint_summary")) } }
            button type="submit" { (c.tr("保存随访记录", "Save the follow-up")) }
        }
    }
}

/// The kinds of booking a call may ask for, with their form keys.
const APPOINTMENT_KINDS: [(AppointmentKind, &str); 2] = [
    (AppointmentKind::Revisit, "revisit"),
    (AppointmentKind::Expert, "expert"),
];

fn appointment_kind_label(c: &Console, kind: i32) -> &'static str {
    match AppointmentKind::try_from(kind).unwrap_or_default() {
        AppointmentKind::Unspecified => "",
        AppointmentKind::Revisit => c.tr("复诊", "revisit"),
        AppointmentKind::Expert => c.tr("专家门诊", "expert clinic"),
    }
}

/// "Book a revisit": what the patient asked to have booked, sent with the record; the
/// followup service hands it to the booking platform through the patients service.
fn appointment_fieldset(c: &Console, task: &Task, e: &Entries) -> Markup {
    html! {
        fieldset #appointment {
            legend { (c.tr("预约复诊（患者要求时填写，联系上患者时）", "Book a revisit (when the reached patient asks for one)")) }
            div.grid {
                label { (c.tr("预约类型", "Kind"))
                    select name="appt_kind" {
                        option value="" { (c.tr("不预约", "no booking")) }
                        @for (kind, key) in APPOINTMENT_KINDS {
                            option value=(key) selected[e.get("appt_kind") == key] { (appointment_kind_label(c, kind as i32)) }
                        }
                    }
                }
                label { (c.tr("科室代码（默认任务科室）", "Department code (default the task's)"))
                    input name="appt_department" maxlength="64" placeholder=(task.department) value=(e.get("appt_department"));
                }
                label { (c.tr("医生（可不填）", "Doctor (optional)"))
                    input name="appt_doctor" maxlength="100" placeholder="doctors/…" value=(e.get("appt_doctor"));
                }
                label { (c.tr("最早日期", "Earliest day")) input type="date" name="appt_earliest" value=(e.get("appt_earliest")); }
                label { (c.tr("最晚日期", "Latest day")) input type="date" name="appt_latest" value=(e.get("appt_latest")); }
            }
            label { (c.tr("预约原因", "Reason")) input name="appt_reason" maxlength="500" value=(e.get("appt_reason")); }
        }
    }
}

/// The booking the form asks for: none without a kind (then its other fields must be empty,
/// so nothing typed is dropped silently).
fn appointment_of(c: &Console, e: &Entries) -> Result<Option<AppointmentWish>, HttpError> {
    let key = e.text("appt_kind");
    if key.is_empty() {
        let typed = [
            "appt_department",
            "appt_doctor",
            "appt_earliest",
            "appt_latest",
            "appt_reason",
        ]
        .into_iter()
        .any(|f| !e.text(f).is_empty());
        if typed {
            return Err(HttpError::invalid(
                "appt_kind",
                c.tr(
                    "请选择预约类型，或清空预约栏",
                    "choose what to book, or clear the booking fields",
                ),
            ));
        }
        return Ok(None);
    }
    let (kind, _) = APPOINTMENT_KINDS
        .into_iter()
        .find(|(_, k)| *k == key)
        .ok_or_else(|| HttpError::invalid("appt_kind", c.tr("不是可选的预约类型", "is not a kind of booking")))?;
    Ok(Some(AppointmentWish {
        kind: kind as i32,
        department: e.text("appt_department"),
        doctor: e.text("appt_doctor"),
        earliest_date: parse_date(c, "appt_earliest", e.get("appt_earliest"))?.map(to_date),
        latest_date: parse_date(c, "appt_latest", e.get("appt_latest"))?.map(to_date),
        reason: e.text("appt_reason"),
    }))
}

fn other_actions(c: &Console, task: &Task, open: Option<Action>, entries_for: &dyn Fn(Action) -> Entries) -> Markup {
    let reschedule = entries_for(Action::Reschedule);
    let reassign = entries_for(Action::Reassign);
    let cancel = entries_for(Action::Cancel);
    html! {
        details.card #reschedule open[open == Some(Action::Reschedule)] {
            summary { (c.tr("改期", "Move to another date")) }
            form method="post" action={ "/console/followups/" (task.name) "/reschedule" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(task.etag);
                label { (c.tr("新的随访日期", "New due date")) input type="date" name="due_date" value=(reschedule.get("due_date")) required; }
                label { (c.tr("原因", "Reason")) input name="reason" maxlength="256" value=(reschedule.get("reason")); }
                button type="submit" { (c.tr("改期", "Move")) }
            }
        }
        details.card #reassign open[open == Some(Action::Reassign)] {
            summary { (c.tr("转交他人", "Give to someone else")) }
            form method="post" action={ "/console/followups/" (task.name) "/reassign" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(task.etag);
                label { (c.tr("接手人（用户名）", "New assignee (username)")) input name="assignee" maxlength="64" value=(reassign.get("assignee")) required; }
                label { (c.tr("原因", "Reason")) input name="reason" maxlength="256" value=(reassign.get("reason")); }
                button type="submit" { (c.tr("转交", "Reassign")) }
            }
        }
        details.card #cancel open[open == Some(Action::Cancel)] {
            summary { (c.tr("取消任务", "Cancel the task")) }
            form method="post" action={ "/console/followups/" (task.name) "/cancel" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(task.etag);
                label { (c.tr("取消原因（必填）", "Reason (required)")) input name="reason" maxlength="256" value=(cancel.get("reason")) required; }
                button.secondary type="submit" { (c.tr("取消任务", "Cancel the task")) }
            }
        }
    }
}

fn history_table(c: &Console, records: &[FollowUpRecord]) -> Markup {
    if records.is_empty() {
        return html! { p.small #no-follow-ups { (c.tr("暂无随访记录。", "No follow-ups yet.")) } };
    }
    html! {
        table #follow-ups {
            thead { tr {
                th { (c.tr("时间", "When")) }
                th { (c.tr("结果", "Outcome")) }
                th { (c.tr("方式", "Channel")) }
                th { (c.tr("第几次", "Attempt")) }
                th { (c.tr("康复评分", "Recovery score")) }
                th { (c.tr("内容与指导", "Notes and guidance")) }
                th { (c.tr("满意度", "Satisfaction")) }
                th { (c.tr("记录人", "By")) }
            } }
            tbody {
                @for r in records {
                    tr data-follow-up=(id_of(&r.name)) data-task=(id_of(&r.task)) data-outcome=(outcome_key(Outcome::try_from(r.outcome).unwrap_or_default())) {
                        td { (c.ts(&r.occur_time)) }
                        td { (outcome_label(c, r.outcome))
                            @if r.complaint_raised { " " span.tag.bad { (c.tr("投诉", "complaint")) } } }
                        td { (channel_label(c, r.channel)) }
                        td { (r.attempt) }
                        td data-field="recovery_score" { (r.recovery_score.map(|s| format!("{s:.1}")).unwrap_or_default()) }
                        td {
                            @for line in r.content.lines() { (line) br; }
                            @if !r.health_guidance.is_empty() { span.small { (c.tr("指导：", "Guidance: ")) (r.health_guidance) } }
                            @if !r.complaint_summary.is_empty() { br; span.small { (c.tr("投诉：", "Complaint: ")) (r.complaint_summary) } }
                            @if let Some(w) = &r.appointment {
                                br; span.small data-field="appointment" data-request=(r.appointment_request) {
                                    (c.tr("预约：", "Booking: ")) (appointment_kind_label(c, w.kind)) " · " (w.department)
                                    @if w.earliest_date.is_some() || w.latest_date.is_some() {
                                        " · " (date_text(&w.earliest_date)) "–" (date_text(&w.latest_date))
                                    }
                                    " · "
                                    @if r.appointment_request.is_empty() { (c.tr("等待预约平台受理", "waiting for the booking platform")) }
                                    @else { (c.tr("已提交预约平台", "handed to the booking platform")) }
                                }
                            }
                        }
                        td { @for s in &r.satisfaction {
                            span.tag { (dimension_label(c, Dimension::try_from(s.dimension).unwrap_or_default())) " " (s.rating) }
                        } }
                        td { (r.recorded_by) }
                    }
                }
            }
        }
    }
}

/// A number typed by staff; a decimal comma is accepted.
fn parse_number(c: &Console, field: &str, text: &str) -> Result<f64, HttpError> {
    text.trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| HttpError::invalid(field, c.tr("应为数字", "must be a number")))
}

/// The record the form describes; the service checks what it means (required answers,
/// ranges, what a not-reached call may carry).
fn record_of(c: &Console, e: &Entries) -> Result<FollowUpRecord, HttpError> {
    let channel = channel_of(e.get("channel"))
        .ok_or_else(|| HttpError::invalid("channel", c.tr("不是可选的方式", "is not a channel")))?;
    let outcome = match e.text("outcome").as_str() {
        "" => Outcome::Unspecified,
        key => OUTCOMES
            .into_iter()
            .find(|o| outcome_key(*o) == key)
            .ok_or_else(|| HttpError::invalid("outcome", c.tr("不是可选的结果", "is not an outcome")))?,
    };
    let occur_time = match e.text("occur_time").as_str() {
        "" => None,
        text => {
            // Browsers send `datetime-local` without seconds unless a step asks for them.
            let at = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
                .map_err(|_| {
                    HttpError::invalid(
                        "occur_time",
                        c.tr("时间格式应为 YYYY-MM-DD HH:MM", "must be a time YYYY-MM-DD HH:MM"),
                    )
                })?;
            Some(hcrm_kit::time::to_timestamp(local_micros(c, at)))
        }
    };
    let mut score_answers = Vec::new();
    let mut answers = Vec::new();
    let mut satisfaction = Vec::new();
    for (key, value) in &e.0 {
        if value.trim().is_empty() {
            continue;
        }
        if let Some(item) = key.strip_prefix("score_") {
            score_answers.push(ScoreAnswer {
                key: item.to_string(),
                value: parse_number(c, key, value)?,
            });
        } else if let Some(question) = key.strip_prefix("q_") {
            let text = e.text(&format!("qtext_{question}"));
            answers.push(format!(
                "{}: {}",
                if text.is_empty() { question } else { &text },
                value.trim()
            ));
        } else if let Some(dimension) = key.strip_prefix("sat_") {
            let (d, _) = DIMENSIONS
                .into_iter()
                .find(|(_, k)| *k == dimension)
                .ok_or_else(|| HttpError::invalid(key, c.tr("不是满意度维度", "is not a dimension")))?;
            let rating = value
                .trim()
                .parse::<i32>()
                .map_err(|_| HttpError::invalid(key, c.tr("应为 1–5 的整数", "must be a whole number 1–5")))?;
            satisfaction.push(Satisfaction {
                dimension: d as i32,
                rating,
            });
        }
    }
    let notes = e.text("content");
    let content = answers
        .into_iter()
        .chain((!notes.is_empty()).then_some(notes))
        .collect::<Vec<_>>()
        .join("\n");
    let fix_effective = match e.text("fix_effective").as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    Ok(FollowUpRecord {
        channel: channel as i32,
        outcome: outcome as i32,
        content,
        score_answers,
        health_guidance: e.text("health_guidance"),
        satisfaction,
        complaint_raised: e.get("complaint_raised") == "true",
        complaint_summary: e.text("complaint_summary"),
        occur_time,
        fix_effective,
        appointment: appointment_of(c, e)?,
        ..Default::default()
    })
}

/// Shows the page again with the refused form, its entries and the error.
async fn refuse(c: &Console, id: &str, action: Action, entries: Entries, error: HttpError) -> Response {
    render(c, id, None, Some(Refused { action, entries, error })).await
}

fn done(id: &str, what: &str) -> Response {
    Redirect::to(&format!("/console/followups/tasks/{}?done={what}", url_encode(id))).into_response()
}

pub async fn record(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let record = match record_of(&c, &entries) {
        Ok(r) => r,
        Err(err) => return refuse(&c, &id, Action::Record, entries, err).await,
    };
    let not_reached = record.outcome == Outcome::NotReached as i32;
    let request = RecordFollowUpRequest {
        task: format!("tasks/{id}"),
        record: Some(record),
        request_id: request_id(&entries),
    };
    match followup(&c).record_follow_up(request).await {
        Ok(_) if not_reached => done(&id, "not_reached"),
        Ok(_) => done(&id, "recorded"),
        Err(status) => refuse(&c, &id, Action::Record, entries, HttpError::from(status)).await,
    }
}

pub async fn reschedule(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let request = etag_of(&c, &entries).and_then(|etag| {
        Ok(RescheduleTaskRequest {
            name: format!("tasks/{id}"),
            due_date: parse_date(&c, "due_date", entries.get("due_date"))?.map(to_date),
            etag,
            reason: entries.text("reason"),
        })
    });
    let result = match request {
        Ok(request) => followup(&c).reschedule_task(request).await.map_err(HttpError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(_) => done(&id, "rescheduled"),
        Err(err) => refuse(&c, &id, Action::Reschedule, entries, err).await,
    }
}

pub async fn reassign(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let result = match etag_of(&c, &entries) {
        Ok(etag) => followup(&c)
            .reassign_task(ReassignTaskRequest {
                name: format!("tasks/{id}"),
                assignee: entries.text("assignee"),
                etag,
                reason: entries.text("reason"),
            })
            .await
            .map_err(HttpError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(_) => done(&id, "reassigned"),
        Err(err) => refuse(&c, &id, Action::Reassign, entries, err).await,
    }
}

pub async fn cancel(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let result = match etag_of(&c, &entries) {
        Ok(etag) => followup(&c)
            .cancel_task(CancelTaskRequest {
                name: format!("tasks/{id}"),
                etag,
                reason: entries.text("reason"),
            })
            .await
            .map_err(HttpError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(_) => done(&id, "cancelled"),
        Err(err) => refuse(&c, &id, Action::Cancel, entries, err).await,
    }
}
