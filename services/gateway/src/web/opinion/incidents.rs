//! Incidents: the list by state, opening one by hand or from an alert, and the incident page
//! with its workflow (the steps the service allows, each sent with the etag read), notes,
//! links to a patient and a case, escalation into a complaint case, and the public reply a
//! second person approves.

use super::overview::state_tag;
use super::{
    Failed, Posted, done, done_notice, error_for, id_of, incident_client, invalid, kept, next_page, page_with,
    resource_link, subnav,
};
use crate::web::page::{Authed, Console};
use axum::extract::{Path, Query};
use axum::response::Response;
use bytes::Bytes;
use hcrm_proto::feedback::GetTaxonomyRequest;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
use hcrm_proto::opinion::{
    AddIncidentNoteRequest, ApproveReplyRequest, CreateIncidentRequest, DraftReplyRequest, EscalateIncidentRequest,
    GetIncidentRequest, Incident, IncidentAction, IncidentState, ListIncidentsRequest, ReplyState,
    TransitionIncidentRequest, UpdateIncidentLinksRequest,
};
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;

const BASE: &str = "/console/opinion/incidents";

/// The state filters of the list; `active` (everything not resolved) by default.
const STATE_FILTERS: [(&str, &str, &str); 6] = [
    ("active", "未办结", "Not resolved"),
    ("open", "待确认", "Open"),
    ("acknowledged", "已确认", "Acknowledged"),
    ("responding", "处置中", "Responding"),
    ("resolved", "已办结", "Resolved"),
    ("all", "全部", "All"),
];

fn states_of(filter: &str) -> Vec<i32> {
    let states = match filter {
        "open" => vec![IncidentState::Open],
        "acknowledged" => vec![IncidentState::Acknowledged],
        "responding" => vec![IncidentState::Responding],
        "resolved" => vec![IncidentState::Resolved],
        "all" => vec![],
        _ => vec![
            IncidentState::Open,
            IncidentState::Acknowledged,
            IncidentState::Responding,
        ],
    };
    states.into_iter().map(|s| s as i32).collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    mine: String,
    #[serde(default)]
    page_token: String,
}

pub async fn list(c: Console, Query(q): Query<ListQuery>) -> Response {
    render_list(&c, &q, None).await
}

async fn render_list(c: &Console, q: &ListQuery, failed: Option<&Failed>) -> Response {
    let state = if q.state.is_empty() { "active" } else { q.state.as_str() };
    let mine = q.mine == "1";
    let listed = incident_client(c)
        .list_incidents(ListIncidentsRequest {
            states: states_of(state),
            owner: if mine {
                c.who.account.username.clone()
            } else {
                String::new()
            },
            page_size: 50,
            page_token: q.page_token.clone(),
        })
        .await;
    let page = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return c.error(status),
    };
    let keep = [("state", state), ("mine", if mine { "1" } else { "" })];
    let body = html! {
        (subnav(c, BASE))
        form.inline #incident-filters method="get" action=(BASE) {
            label { (c.tr("状态", "State"))
                select name="state" {
                    @for (code, zh, en) in STATE_FILTERS {
                        option value=(code) selected[code == state] { (c.tr(zh, en)) }
                    }
                }
            }
            label { input type="checkbox" name="mine" value="1" checked[mine]; " " (c.tr("只看我负责的", "Only mine")) }
            button type="submit" { (c.tr("筛选", "Filter")) }
        }
        (incident_table(c, &page.incidents))
        (next_page(c, BASE, &keep, &page.next_page_token))
        @if super::can_work(c) { (new_form(c, failed)) }
    };
    page_with(c, c.tr("舆情事件", "Incidents"), body, failed)
}

fn incident_table(c: &Console, list: &[Incident]) -> Markup {
    if list.is_empty() {
        return html! { p.small #no-incidents { (c.tr("没有符合条件的事件。", "No incident matches.")) } };
    }
    html! {
        table #incidents {
            thead { tr {
                th { (c.tr("事件", "Incident")) } th { (c.tr("状态", "State")) } th { (c.tr("负责人", "Owner")) }
                th { (c.tr("话题", "Story")) } th { (c.tr("患者", "Patient")) } th { (c.tr("投诉", "Case")) }
                th { (c.tr("创建时间", "Opened")) } th { (c.tr("更新时间", "Updated")) }
            } }
            tbody {
                @for i in list {
                    tr data-incident=(i.name) data-state=(state_code(i.state)) {
                        td { (resource_link(&i.name, if i.title.is_empty() { "—" } else { &i.title })) }
                        td { (state_tag(c, i.state)) }
                        td { (i.owner) }
                        td { @if !i.story.is_empty() { (resource_link(&i.story, c.tr("查看", "open"))) } }
                        td { @if !i.patient.is_empty() { (resource_link(&i.patient, id_of(&i.patient))) } }
                        td { @if !i.case.is_empty() { (resource_link(&i.case, id_of(&i.case))) } }
                        td { (c.ts(&i.create_time)) }
                        td { (c.ts(&i.update_time)) }
                    }
                }
            }
        }
    }
}

fn state_code(state: i32) -> &'static str {
    match IncidentState::try_from(state).unwrap_or(IncidentState::Unspecified) {
        IncidentState::Open => "open",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Responding => "responding",
        IncidentState::Resolved => "resolved",
        IncidentState::Unspecified => "unspecified",
    }
}

fn new_form(c: &Console, failed: Option<&Failed>) -> Markup {
    const FORM: &str = "new-incident";
    let request_id = kept(failed, FORM, "request_id", "");
    let request_id = if request_id.is_empty() {
        hcrm_kit::new_id()
    } else {
        request_id
    };
    html! {
        h2 { (c.tr("手工立案", "Open an incident by hand")) }
        (error_for(c, failed, FORM))
        form.card #new-incident method="post" action=(BASE) {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(request_id);
            input type="hidden" name="alert" value=(kept(failed, FORM, "alert", ""));
            label { (c.tr("标题", "Title"))
                input name="title" maxlength="200" value=(kept(failed, FORM, "title", "")) aria-invalid=[invalid(failed, FORM, "incident.title")];
            }
            label { (c.tr("说明", "Description"))
                textarea name="description" rows="3" maxlength="4000" aria-invalid=[invalid(failed, FORM, "incident.description")] {
                    (kept(failed, FORM, "description", ""))
                }
            }
            button type="submit" { (c.tr("创建事件", "Open incident")) }
        }
    }
}

/// Opens an incident by hand, or from an alert (the overview's button).
pub async fn create(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let created = incident_client(&c)
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: posted.trimmed("title"),
                description: posted.trimmed("description"),
                alert: posted.trimmed("alert"),
                ..Default::default()
            }),
            owner: String::new(),
            request_id: posted.trimmed("request_id"),
        })
        .await;
    match created {
        Ok(i) => done(&format!("{BASE}/{}", id_of(&i.into_inner().name)), "incident"),
        Err(status) => {
            let failed = Failed::new("new-incident", status, posted);
            render_list(&c, &ListQuery::default(), Some(&failed)).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

pub async fn show(c: Console, Path(id): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    render(&c, &id, &q.done, None).await
}

fn client(c: &Console) -> IncidentServiceClient<Authed> {
    incident_client(c)
}

/// The top-level complaint categories of feedback, as (code, name); empty when unavailable (the
/// form then takes the code as text).
async fn categories(c: &Console) -> Vec<(String, String)> {
    let mut cases = CaseServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel));
    match cases.get_taxonomy(GetTaxonomyRequest {}).await {
        Ok(t) => t
            .into_inner()
            .categories
            .into_iter()
            .map(|cat| {
                let name = match c.lang {
                    crate::web::page::Lang::Zh => cat.name_zh,
                    crate::web::page::Lang::En => cat.name_en,
                };
                (cat.code, name)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn render(c: &Console, id: &str, done_code: &str, failed: Option<&Failed>) -> Response {
    let got = client(c)
        .get_incident(GetIncidentRequest {
            name: format!("incidents/{id}"),
        })
        .await;
    let inc = match got {
        Ok(i) => i.into_inner(),
        Err(status) => return c.error(status),
    };
    let work = super::can_work(c);
    let categories = if work && inc.case_request_time.is_none() {
        categories(c).await
    } else {
        Vec::new()
    };
    let body = html! {
        (subnav(c, ""))
        (done_notice(c, done_code))
        (facts(c, &inc))
        @if work {
            h2 { (c.tr("处置流程", "Workflow")) }
            (workflow(c, &inc, failed))
        }
        h2 { (c.tr("对外回复", "Public reply")) }
        (reply(c, &inc, failed, work))
        h2 { (c.tr("处置记录", "Notes")) }
        (notes(c, &inc, failed, work))
        @if work {
            h2 { (c.tr("关联", "Links")) }
            (links_form(c, &inc, failed))
            h2 { (c.tr("转投诉", "Escalate to a complaint")) }
            (escalation(c, &inc, failed, &categories))
        }
    };
    let title = if inc.title.is_empty() {
        inc.name.clone()
    } else {
        inc.title.clone()
    };
    page_with(c, &title, body, failed)
}

fn facts(c: &Console, inc: &Incident) -> Markup {
    html! {
        div.card #incident data-incident=(inc.name) data-state=(state_code(inc.state)) data-etag=(inc.etag) {
            dl.fields {
                dt { (c.tr("状态", "State")) } dd { (state_tag(c, inc.state)) }
                dt { (c.tr("负责人", "Owner")) } dd #owner { (inc.owner) }
                dt { (c.tr("说明", "Description")) } dd { (inc.description) }
                dt { (c.tr("来源话题", "Story")) } dd { @if !inc.story.is_empty() { (resource_link(&inc.story, c.tr("查看话题", "open the story"))) } @else { "—" } }
                dt { (c.tr("来源预警", "Alert")) } dd { @if inc.alert.is_empty() { "—" } @else { (inc.alert) } }
                dt { (c.tr("关联患者", "Patient")) } dd #patient-link { @if inc.patient.is_empty() { "—" } @else { (resource_link(&inc.patient, id_of(&inc.patient))) } }
                dt { (c.tr("关联投诉", "Case")) }
                dd #case-link {
                    @if !inc.case.is_empty() { (resource_link(&inc.case, id_of(&inc.case))) }
                    @else if inc.case_request_time.is_some() {
                        span.tag.warn { (c.tr("已申请转投诉，等待受理", "escalation asked for; waiting for the case")) } " " (c.ts(&inc.case_request_time))
                    } @else { "—" }
                }
                @if !inc.resolution.is_empty() { dt { (c.tr("处理结果", "Resolution")) } dd #resolution { (inc.resolution) } }
                dt { (c.tr("创建时间", "Opened")) } dd { (c.ts(&inc.create_time)) }
                dt { (c.tr("更新时间", "Updated")) } dd { (c.ts(&inc.update_time)) }
            }
        }
    }
}

fn action_code(action: IncidentAction) -> &'static str {
    match action {
        IncidentAction::Acknowledge => "acknowledge",
        IncidentAction::Respond => "respond",
        IncidentAction::Resolve => "resolve",
        IncidentAction::Reopen => "reopen",
        IncidentAction::Unspecified => "",
    }
}

fn action_of(code: &str) -> Option<IncidentAction> {
    match code {
        "acknowledge" => Some(IncidentAction::Acknowledge),
        "respond" => Some(IncidentAction::Respond),
        "resolve" => Some(IncidentAction::Resolve),
        "reopen" => Some(IncidentAction::Reopen),
        _ => None,
    }
}

fn action_label(c: &Console, action: IncidentAction) -> &'static str {
    match action {
        IncidentAction::Acknowledge => c.tr("确认", "Acknowledge"),
        IncidentAction::Respond => c.tr("开始处置", "Respond"),
        IncidentAction::Resolve => c.tr("办结", "Resolve"),
        IncidentAction::Reopen => c.tr("重新打开", "Reopen"),
        IncidentAction::Unspecified => "",
    }
}

/// One form per step the service allows now.
fn workflow(c: &Console, inc: &Incident, failed: Option<&Failed>) -> Markup {
    let allowed: Vec<IncidentAction> = inc
        .allowed_actions
        .iter()
        .filter_map(|a| IncidentAction::try_from(*a).ok())
        .filter(|a| *a != IncidentAction::Unspecified)
        .collect();
    html! {
        @if allowed.is_empty() { p.small { (c.tr("当前没有可执行的步骤。", "No step is possible now.")) } }
        @for action in allowed {
            @let code = action_code(action);
            @let form = format!("transition-{code}");
            @let needs_reason = matches!(action, IncidentAction::Resolve | IncidentAction::Reopen);
            (error_for(c, failed, &form))
            form.inline.card id=(form) method="post" action={ (BASE) "/" (id_of(&inc.name)) "/transition" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(inc.etag);
                input type="hidden" name="action" value=(code);
                @if needs_reason {
                    label {
                        @if action == IncidentAction::Resolve { (c.tr("处理结果", "Resolution")) } @else { (c.tr("重新打开的原因", "Why reopen")) }
                        input name="reason" required maxlength="2000" value=(kept(failed, &form, "reason", "")) aria-invalid=[invalid(failed, &form, "reason")];
                    }
                }
                button type="submit" data-action=(code) { (action_label(c, action)) }
            }
        }
    }
}

fn reply(c: &Console, inc: &Incident, failed: Option<&Failed>, work: bool) -> Markup {
    let r = inc.reply.clone().unwrap_or_default();
    let state = ReplyState::try_from(r.state).unwrap_or(ReplyState::Unspecified);
    let name = id_of(&inc.name);
    html! {
        @if state != ReplyState::Unspecified {
            div.card #reply data-reply-state=(if state == ReplyState::Approved { "approved" } else { "draft" }) {
                p { (r.text) }
                p.small {
                    @if state == ReplyState::Approved { span.tag.good { (c.tr("已审核", "approved")) } } @else { span.tag.warn { (c.tr("草稿，待审核", "draft, awaiting approval")) } }
                    " " (c.tr("起草", "Drafted by")) " " span data-drafted-by=(r.drafted_by) { (r.drafted_by) } " " (c.ts(&r.draft_time))
                    @if !r.approved_by.is_empty() { " · " (c.tr("审核", "approved by")) " " span data-approved-by=(r.approved_by) { (r.approved_by) } " " (c.ts(&r.approve_time)) }
                }
            }
        } @else {
            p.small { (c.tr("尚无回复草稿。", "No reply drafted yet.")) }
        }
        @if work && state == ReplyState::Draft {
            (error_for(c, failed, "approve-reply"))
            form.inline #approve-reply method="post" action={ (BASE) "/" (name) "/approve" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(inc.etag);
                span.small { (c.tr("审核须由起草人以外的人进行。", "A person other than the author approves.")) }
                button type="submit" { (c.tr("审核通过", "Approve reply")) }
            }
        }
        @if work {
            (error_for(c, failed, "draft-reply"))
            form.card #draft-reply method="post" action={ (BASE) "/" (name) "/reply" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(inc.etag);
                label { (c.tr("回复内容（不得包含电话、证件号、邮箱、患者姓名等个人信息）", "Reply (no phone numbers, identity numbers, e-mail addresses or patient names)"))
                    textarea name="text" rows="4" maxlength="2000" required aria-invalid=[invalid(failed, "draft-reply", "text")] {
                        (kept(failed, "draft-reply", "text", &r.text))
                    }
                }
                button type="submit" { @if state == ReplyState::Unspecified { (c.tr("保存草稿", "Save draft")) } @else { (c.tr("重新起草", "Redraft")) } }
            }
        }
    }
}

fn notes(c: &Console, inc: &Incident, failed: Option<&Failed>, work: bool) -> Markup {
    html! {
        @if inc.notes.is_empty() { p.small { (c.tr("暂无记录。", "No notes yet.")) } }
        @else {
            table #notes {
                tbody {
                    @for n in &inc.notes {
                        tr { td { (c.ts(&n.create_time)) } td { (n.author) } td { (n.text) } }
                    }
                }
            }
        }
        @if work {
            (error_for(c, failed, "add-note"))
            form.card #add-note method="post" action={ (BASE) "/" (id_of(&inc.name)) "/notes" } {
                (c.csrf_field())
                label { (c.tr("添加记录", "Add a note"))
                    textarea name="text" rows="2" maxlength="4000" required aria-invalid=[invalid(failed, "add-note", "text")] {
                        (kept(failed, "add-note", "text", ""))
                    }
                }
                button type="submit" { (c.tr("添加", "Add")) }
            }
        }
    }
}

fn links_form(c: &Console, inc: &Incident, failed: Option<&Failed>) -> Markup {
    const FORM: &str = "links";
    html! {
        (error_for(c, failed, FORM))
        form.card #links method="post" action={ (BASE) "/" (id_of(&inc.name)) "/links" } {
            (c.csrf_field())
            input type="hidden" name="etag" value=(inc.etag);
            p.small { (c.tr("留空的项保持不变。", "Fields left empty stay as they are.")) }
            label { (c.tr("负责人（用户名）", "Owner (username)"))
                input name="owner" maxlength="100" value=(kept(failed, FORM, "owner", "")) placeholder=(inc.owner) aria-invalid=[invalid(failed, FORM, "owner")];
            }
            label { (c.tr("患者（档案编号或 patients/…）", "Patient (id or patients/…)"))
                input name="patient" value=(kept(failed, FORM, "patient", "")) placeholder=(inc.patient) aria-invalid=[invalid(failed, FORM, "patient")];
            }
            label { (c.tr("投诉（编号或 cases/…）", "Case (id or cases/…)"))
                input name="case" value=(kept(failed, FORM, "case", "")) placeholder=(inc.case) aria-invalid=[invalid(failed, FORM, "case")];
            }
            button type="submit" { (c.tr("保存关联", "Save links")) }
        }
    }
}

fn escalation(c: &Console, inc: &Incident, failed: Option<&Failed>, categories: &[(String, String)]) -> Markup {
    const FORM: &str = "escalate";
    if inc.case_request_time.is_some() {
        return html! { p.small #escalated { (c.tr("已申请转投诉。", "Escalation has been asked for.")) } };
    }
    let severity = kept(failed, FORM, "severity", "MEDIUM");
    let category = kept(failed, FORM, "category", "");
    let severities = [
        ("LOW", c.tr("低", "low")),
        ("MEDIUM", c.tr("中", "medium")),
        ("HIGH", c.tr("高", "high")),
        ("CRITICAL", c.tr("严重", "critical")),
    ];
    html! {
        (error_for(c, failed, FORM))
        form.card #escalate method="post" action={ (BASE) "/" (id_of(&inc.name)) "/escalate" } {
            (c.csrf_field())
            input type="hidden" name="etag" value=(inc.etag);
            label { (c.tr("责任科室（科室编码）", "Department (code)"))
                input name="department" required maxlength="40" value=(kept(failed, FORM, "department", "")) aria-invalid=[invalid(failed, FORM, "department")];
            }
            label { (c.tr("投诉类别", "Category"))
                @if categories.is_empty() {
                    input name="category" maxlength="40" value=(category) aria-invalid=[invalid(failed, FORM, "category")];
                } @else {
                    select name="category" aria-invalid=[invalid(failed, FORM, "category")] {
                        option value="" { "—" }
                        @for (code, name) in categories { option value=(code) selected[*code == category] { (name) } }
                    }
                }
            }
            label { (c.tr("严重程度", "Severity"))
                select name="severity" aria-invalid=[invalid(failed, FORM, "severity")] {
                    @for (code, name) in severities { option value=(code) selected[code == severity] { (name) } }
                }
            }
            label { (c.tr("情况摘要", "Summary"))
                textarea name="description" rows="3" maxlength="4000" aria-invalid=[invalid(failed, FORM, "description")] {
                    (kept(failed, FORM, "description", ""))
                }
            }
            button type="submit" { (c.tr("转为投诉", "Escalate")) }
        }
    }
}

/// The result of a write from the incident page: back to it with what was done, or the page
/// again with the form's error and entries.
async fn settle(
    c: &Console,
    id: &str,
    form: &str,
    posted: Posted,
    result: Result<tonic::Response<Incident>, tonic::Status>,
    what: &str,
) -> Response {
    match result {
        Ok(_) => done(&format!("{BASE}/{id}"), what),
        Err(status) => render(c, id, "", Some(&Failed::new(form, status, posted))).await,
    }
}

pub async fn transition(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let code = posted.trimmed("action");
    let form = format!("transition-{code}");
    let Some(action) = action_of(&code) else {
        let err = crate::api::error::HttpError::invalid("action", "must be acknowledge, respond, resolve or reopen");
        return render(&c, &id, "", Some(&Failed::new(form, err, posted))).await;
    };
    let result = client(&c)
        .transition_incident(TransitionIncidentRequest {
            name: format!("incidents/{id}"),
            action: action as i32,
            reason: posted.trimmed("reason"),
            etag: posted.trimmed("etag"),
        })
        .await;
    let what = match action {
        IncidentAction::Acknowledge => "acknowledged",
        IncidentAction::Respond => "responding",
        IncidentAction::Resolve => "resolved",
        _ => "reopened",
    };
    settle(&c, &id, &form, posted, result, what).await
}

pub async fn note(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = client(&c)
        .add_incident_note(AddIncidentNoteRequest {
            name: format!("incidents/{id}"),
            text: posted.trimmed("text"),
        })
        .await;
    settle(&c, &id, "add-note", posted, result, "noted").await
}

/// A resource typed as its id, its name or its console address, as the resource name.
fn resource_name(collection: &str, typed: &str) -> String {
    let typed = typed.trim();
    if typed.is_empty() {
        return String::new();
    }
    let tail = typed
        .split_once("/console/")
        .map(|(_, rest)| rest)
        .unwrap_or(typed)
        .trim_matches('/');
    if tail.contains('/') {
        tail.to_string()
    } else {
        format!("{collection}/{tail}")
    }
}

pub async fn links(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = client(&c)
        .update_incident_links(UpdateIncidentLinksRequest {
            name: format!("incidents/{id}"),
            owner: posted.trimmed("owner"),
            patient: resource_name("patients", posted.get("patient")),
            case: resource_name("cases", posted.get("case")),
            etag: posted.trimmed("etag"),
        })
        .await;
    settle(&c, &id, "links", posted, result, "linked").await
}

pub async fn escalate(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = client(&c)
        .escalate_incident(EscalateIncidentRequest {
            name: format!("incidents/{id}"),
            department: posted.trimmed("department"),
            category: posted.trimmed("category"),
            severity: posted.trimmed("severity"),
            description: posted.trimmed("description"),
            etag: posted.trimmed("etag"),
        })
        .await;
    settle(&c, &id, "escalate", posted, result, "escalated").await
}

pub async fn draft(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = client(&c)
        .draft_reply(DraftReplyRequest {
            name: format!("incidents/{id}"),
            text: posted.trimmed("text"),
            etag: posted.trimmed("etag"),
        })
        .await;
    settle(&c, &id, "draft-reply", posted, result, "drafted").await
}

pub async fn approve(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match Posted::read(&c, &headers, &body) {
        Ok(p) => p,
        Err(err) => return c.error(err),
    };
    let result = client(&c)
        .approve_reply(ApproveReplyRequest {
            name: format!("incidents/{id}"),
            etag: posted.trimmed("etag"),
        })
        .await;
    settle(&c, &id, "approve-reply", posted, result, "approved").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_take_an_id_a_name_or_a_console_address() {
        assert_eq!(resource_name("patients", " p1 "), "patients/p1");
        assert_eq!(resource_name("patients", "patients/p1"), "patients/p1");
        assert_eq!(
            resource_name("patients", "http://host/console/patients/p1"),
            "patients/p1"
        );
        assert_eq!(resource_name("cases", "/console/cases/c9/"), "cases/c9");
        assert_eq!(resource_name("cases", ""), "");
    }

    #[test]
    fn every_action_round_trips_through_its_form_code() {
        for a in [
            IncidentAction::Acknowledge,
            IncidentAction::Respond,
            IncidentAction::Resolve,
            IncidentAction::Reopen,
        ] {
            assert_eq!(action_of(action_code(a)), Some(a));
        }
        assert_eq!(action_of("delete"), None);
        assert_eq!(states_of("").len(), 3);
        assert!(states_of("all").is_empty());
    }
}
