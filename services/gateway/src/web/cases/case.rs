//! The case page: the case with its deadlines, the complainant (a patient link, or the contact
//! masked until revealed with an audited reason), the PDCA record, one form per step the service
//! allows now (each with the etag read), hand-over, linking as a duplicate and the history.
//! A refused form comes back on the page as it is now, with what was typed and why.

use super::*;
use crate::api::error::FieldViolation;
use crate::web::page::date_text;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::feedback::{
    Case, CaseHistoryEntry, CaseView, Confirmation, ConfirmationSource, CorrectiveAction, GetCaseRequest,
    HandOverCaseRequest, LinkCasesRequest, ListCaseHistoryRequest, Reply, Resolution, TransitionCaseRequest,
};
use hcrm_proto::patients::GetPatientRequest;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::types::Date;
use http::HeaderMap;

/// Rows of corrective actions offered beyond those already planned.
const BLANK_ACTION_ROWS: usize = 2;
const MIN_ACTION_ROWS: usize = 3;

static SOURCES: &[Label<ConfirmationSource>] = &[
    l(ConfirmationSource::Staff, "staff", "工作人员记录", "recorded by staff"),
    l(ConfirmationSource::FollowUp, "follow_up", "随访电话", "follow-up call"),
];

static RESOLUTIONS: &[Label<Resolution>] = &[
    l(Resolution::Effective, "effective", "整改有效", "effective"),
    l(Resolution::Noted, "noted", "已知悉", "noted"),
    l(Resolution::Withdrawn, "withdrawn", "已撤回", "withdrawn"),
    l(Resolution::Rejected, "rejected", "不予受理", "rejected"),
    l(Resolution::Linked, "linked", "重复合并", "linked as duplicate"),
];

/// A form the service refused: which one, what was typed, why.
struct Failed {
    form: String,
    fields: Vec<(String, String)>,
    error: HttpError,
}

/// How the page is shown beyond the case itself.
#[derive(Default)]
struct View {
    /// Reveal the complainant's contact for this reason.
    reveal: Option<String>,
    failed: Option<Failed>,
    /// The step just done (post/redirect/get), for the notice.
    done: String,
}

impl View {
    /// What was typed into `form` before it was refused; `None` when another form (or none) was
    /// refused.
    fn kept(&self, form: &str) -> Option<&[(String, String)]> {
        self.failed
            .as_ref()
            .filter(|f| f.form == form)
            .map(|f| f.fields.as_slice())
    }
}

/// What `GetCase` takes for what is in the URL: a confirmation number as it is, else an id.
fn key_of(id: &str) -> String {
    let id = id.trim();
    if id.starts_with("cases/") || (id.len() == 9 && id.as_bytes().get(4) == Some(&b'-')) {
        id.to_string()
    } else {
        format!("cases/{id}")
    }
}

pub async fn show(c: Console, Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    let view = View {
        done: one(&query, "done").to_string(),
        ..Default::default()
    };
    render(c, &id, view).await
}

/// The contact in clear for a stated reason (the service checks the permission and audits it).
pub async fn reveal(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let fields = pairs(&body);
    let view = View {
        reveal: Some(one(&fields, "reason").trim().to_string()),
        ..Default::default()
    };
    render(c, &id, view).await
}

async fn fetch(c: &Console, key: &str, reveal: Option<&str>) -> Result<Case, tonic::Status> {
    let request = GetCaseRequest {
        name: key.to_string(),
        view: if reveal.is_some() {
            CaseView::Full
        } else {
            CaseView::Basic
        } as i32,
        access_reason: reveal.unwrap_or_default().to_string(),
    };
    client(c).get_case(request).await.map(|r| r.into_inner())
}

async fn render(c: Console, id: &str, mut view: View) -> Response {
    let key = key_of(id);
    let case = match fetch(&c, &key, view.reveal.as_deref()).await {
        Ok(case) => case,
        // A refused reveal shows the masked case with the reason it was refused.
        Err(status) if view.reveal.is_some() => match fetch(&c, &key, None).await {
            Ok(case) => {
                view.failed = Some(Failed {
                    form: "reveal".into(),
                    fields: vec![("reason".into(), view.reveal.take().unwrap_or_default())],
                    error: HttpError::from(status),
                });
                case
            }
            Err(status) => return c.error(status),
        },
        Err(status) => return c.error(status),
    };
    let mut cases = client(&c);
    let (history, tax, patient, staff) = tokio::join!(
        cases.list_case_history(ListCaseHistoryRequest {
            name: case.name.clone()
        }),
        taxonomy(&c),
        patient_name(&c, &case.patient),
        staff_list(&c),
    );
    let tax = tax.unwrap_or_default();
    let error = view.failed.as_ref().map(|f| &f.error);
    let body = html! {
        @if !view.done.is_empty() { div.notice role="status" #done data-done=(view.done) { (done_text(&c, &view.done)) } }
        @if let Some(err) = error {
            (c.error_box(err))
            @if err.code == tonic::Code::FailedPrecondition {
                p #allowed-now {
                    (c.tr("现在可以：", "Allowed now: "))
                    @if case.allowed_actions.is_empty() { (c.tr("无（案件已结束）", "nothing (the case has ended)")) }
                    @for a in &case.allowed_actions { span.tag { (name_of(&c, ACTIONS, *a)) } }
                }
            }
            @if err.code == tonic::Code::Aborted {
                p.small #stale { (c.tr(
                    "下方显示的是案件的最新状态，您填写的内容已保留，请核对后重新提交。",
                    "Below is the case as it is now; what you typed is kept: check it and submit again.",
                )) }
            }
        }
        (facts(&c, &tax, &case))
        (complainant(&c, &case, patient.as_deref(), &view))
        (pdca(&c, &case))
        (workflow(&c, &case, &view))
        h2 { (c.tr("处理记录", "History")) }
        @match history {
            Ok(h) => { (timeline(&c, &h.into_inner().entries)) }
            Err(status) => { (c.error_box(&HttpError::from(status))) }
        }
        (staff)
    };
    let title = format!("{} · {}", case.number, case.title);
    with_status(c.page(&title, body), error)
}

fn done_text(c: &Console, done: &str) -> String {
    let what = match done {
        "created" => c.tr(
            "案件已登记，请将受理编号告知投诉人。",
            "Case taken; give the complainant the confirmation number.",
        ),
        "handover" => c.tr("已移交。", "Handed over."),
        "link" => c.tr("已合并为重复案件。", "Linked as a duplicate."),
        slug => {
            let name = by_slug(ACTIONS, slug).map(|l| c.tr(l.zh, l.en)).unwrap_or("");
            return format!("{}{name}", c.tr("已完成：", "Done: "));
        }
    };
    what.to_string()
}

/// The patient's name for the link; `None` when not a patient or not readable.
async fn patient_name(c: &Console, patient: &str) -> Option<String> {
    if patient.is_empty() {
        return None;
    }
    let mut patients = PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel));
    patients
        .get_patient(GetPatientRequest {
            name: patient.to_string(),
            ..Default::default()
        })
        .await
        .ok()
        .map(|p| p.into_inner().display_name)
}

fn facts(c: &Console, tax: &[Category], k: &Case) -> Markup {
    html! {
        div.card #case data-case=(id_of(&k.name)) data-state=(slug_of(STATES, k.state)) data-sla=(slug_of(SLAS, k.sla_state)) data-etag=(k.etag) {
            p {
                span.tag data-field="state" { (name_of(c, STATES, k.state)) }
                (sla_tag(c, k.sla_state))
                @if k.escalation_level > 0 {
                    span.tag.bad data-field="escalation" { (c.tr("已升级督办", "escalated")) " " (k.escalation_level) }
                }
            }
            dl.fields #case-facts {
                dt { (c.tr("受理编号", "Confirmation number")) } dd data-field="number" { code { (k.number) } }
                dt { (c.tr("类型", "Kind")) } dd data-field="kind" { (name_of(c, KINDS, k.kind)) }
                dt { (c.tr("来源渠道", "Channel")) } dd { (name_of(c, CHANNELS, k.channel)) }
                dt { (c.tr("严重程度", "Severity")) } dd data-field="severity" { (name_of(c, SEVERITIES, k.severity)) }
                dt { (c.tr("科室", "Department")) } dd data-field="department" { (k.department) }
                dt { (c.tr("类别", "Category")) } dd { (category_name(c, tax, &k.category, &k.subcategory)) }
                dt { (c.tr("负责人（首问）", "Owner (first responder)")) } dd data-field="owner" { (k.owner) }
                dt { (c.tr("调查人", "Investigator")) } dd data-field="assignee" { (k.assignee) }
                dt { (c.tr("登记时间", "Taken")) } dd { (c.ts(&k.create_time)) }
                dt { (c.tr("响应时限", "Respond by")) } dd data-field="response_due" { (c.ts(&k.response_due_time)) }
                dt { (c.tr("首次响应", "First response")) } dd { (c.ts(&k.first_response_time)) }
                dt { (c.tr("办结时限", "Resolve by")) } dd data-field="resolution_due" { (c.ts(&k.resolution_due_time)) }
                @if k.close_time.is_some() {
                    dt { (c.tr("结束时间", "Ended")) } dd { (c.ts(&k.close_time)) }
                    dt { (c.tr("结果", "Resolution")) } dd data-field="resolution" { (name_of(c, RESOLUTIONS, k.resolution)) }
                }
                @if !k.reason.is_empty() {
                    dt { (c.tr("最近的理由", "Last reason")) } dd data-field="reason" { (k.reason) }
                }
                @if k.reopen_count > 0 {
                    dt { (c.tr("重新调查次数", "Reopened")) } dd { (k.reopen_count) }
                }
                @if !k.source.is_empty() {
                    dt { (c.tr("来源", "Source")) } dd { (k.source) }
                }
                @if !k.linked_to.is_empty() {
                    dt { (c.tr("合并到", "Linked into")) } dd { a #linked-to href=(href(&k.linked_to)) { (k.linked_to) } }
                }
                @if !k.linked_cases.is_empty() {
                    dt { (c.tr("重复案件", "Duplicates")) }
                    dd { @for d in &k.linked_cases { a.linked href=(href(d)) { (d) } " " } }
                }
            }
            h2 { (k.title) }
            p #description { (k.description) }
            @for a in &k.attachments { p.small { @if crate::web::page::is_web_url(a) { a href=(a) rel="noopener noreferrer" { (a) } } @else { (a) } } }
        }
    }
}

fn complainant(c: &Console, k: &Case, patient: Option<&str>, view: &View) -> Markup {
    let has_contact = !k.contact_name.is_empty() || !k.contact_phone.is_empty();
    let revealed = view.reveal.is_some() && view.failed.is_none();
    let kept = view.kept("reveal");
    html! {
        div.card #complainant {
            h2 { (c.tr("投诉人", "Complainant")) }
            @if !k.patient.is_empty() {
                p { (c.tr("患者：", "Patient: "))
                    a #patient-link href=(href(&k.patient)) { (patient.unwrap_or(&k.patient)) }
                }
            }
            @if has_contact {
                dl.fields #contact data-revealed=(revealed) {
                    dt { (c.tr("联系人", "Contact")) } dd data-field="contact_name" { (k.contact_name) }
                    dt { (c.tr("电话", "Phone")) } dd data-field="contact_phone" { (k.contact_phone) }
                }
                @if !revealed {
                    form.inline #reveal method="post" action={ "/console/cases/" (id_of(&k.name)) "/reveal" } {
                        (c.csrf_field())
                        label { (c.tr("查看完整联系方式的理由（将被审计）", "Reason to see the contact in full (audited)"))
                            input name="reason" required maxlength="256" value=(kept.map(|f| one(f, "reason")).unwrap_or(""));
                        }
                        button.secondary type="submit" { (c.tr("显示", "Reveal")) }
                    }
                }
            }
            @if k.patient.is_empty() && !has_contact {
                p.small { (c.tr("匿名，未留联系方式。", "Anonymous, no contact given.")) }
            }
        }
    }
}

/// The record of the PDCA loop: cause, actions, reply, confirmation.
fn pdca(c: &Console, k: &Case) -> Markup {
    let planned = !k.root_cause.is_empty() || !k.corrective_actions.is_empty();
    if !planned && k.reply.is_none() && k.confirmation.is_none() {
        return html! {};
    }
    html! {
        div.card #pdca {
            @if planned {
                h2 { (c.tr("原因分析与整改措施", "Root cause and corrective actions")) }
                p #root-cause { (k.root_cause) }
                table #corrective-actions {
                    thead { tr { th { (c.tr("措施", "Action")) } th { (c.tr("责任人", "Owner")) } th { (c.tr("完成期限", "Due")) } } }
                    tbody {
                        @for a in &k.corrective_actions {
                            tr { td { (a.description) } td { (a.owner) } td { (date_text(&a.due_date)) } }
                        }
                    }
                }
            }
            @if let Some(r) = &k.reply {
                h2 { (c.tr("答复", "Reply")) }
                p #reply { (r.text) }
                p.small { (name_of(c, REPLY_CHANNELS, r.channel)) " · " (c.ts(&r.reply_time)) }
            }
            @if let Some(conf) = &k.confirmation {
                h2 { (c.tr("回访确认", "Confirmation")) }
                p #confirmation data-effective=(conf.effective) {
                    @if conf.effective { span.tag.good { (c.tr("整改有效", "the fix worked")) } }
                    @else { span.tag.bad { (c.tr("整改无效", "the fix did not work")) } }
                    " " (conf.note)
                }
                p.small { (name_of(c, SOURCES, conf.source)) " · " (conf.confirmed_by) " · " (c.ts(&conf.confirm_time)) }
            }
        }
    }
}

/// One form per step allowed now, then hand-over and linking while the case is open.
fn workflow(c: &Console, k: &Case, view: &View) -> Markup {
    let open = !k.allowed_actions.is_empty();
    html! {
        @if open {
            h2 { (c.tr("办理", "Work the case")) }
            div #actions {
                @for action in &k.allowed_actions {
                    @if let Some(label) = by_value(ACTIONS, *action) {
                        (action_form(c, k, label, view.kept(&format!("act:{}", label.slug))))
                    }
                }
                (hand_over_form(c, k, view.kept("handover")))
                (link_form(c, k, view.kept("link")))
            }
        }
    }
}

fn value<'a>(kept: Option<&'a [(String, String)]>, name: &str) -> &'a str {
    kept.map(|f| one(f, name)).unwrap_or("")
}

fn action_form(c: &Console, k: &Case, label: &Label<CaseAction>, kept: Option<&[(String, String)]>) -> Markup {
    let id = id_of(&k.name);
    let reason = |text: &str, required: bool| {
        html! {
            label { (text) textarea name="reason" rows="2" maxlength="500" required[required] { (value(kept, "reason")) } }
        }
    };
    let fields = match label.value {
        CaseAction::Assign => html! {
            label { (c.tr("调查人（账号）", "Investigator (username)"))
                input name="assignee" list="staff" required maxlength="100" value=(value(kept, "assignee")); }
            (reason(c.tr("说明（可选）", "Note (optional)"), false))
        },
        CaseAction::PlanActions => plan_fields(c, k, kept),
        CaseAction::Reply => html! {
            label { (c.tr("答复内容", "Reply to the complainant"))
                textarea name="reply_text" rows="4" required maxlength="5000" { (value(kept, "reply_text")) } }
            label { (c.tr("答复方式", "Replied by"))
                (select(c, "reply_channel", REPLY_CHANNELS, kept.map(|f| one(f, "reply_channel")).unwrap_or("phone"), None)) }
        },
        CaseAction::Confirm => {
            let effective = value(kept, "effective");
            html! {
                fieldset {
                    legend { (c.tr("整改是否有效？", "Did the fix work?")) }
                    label { input type="radio" name="effective" value="yes" checked[effective == "yes"]; " " (c.tr("有效", "yes, effective")) }
                    label { input type="radio" name="effective" value="no" checked[effective == "no"]; " " (c.tr("无效，重新调查", "no: investigate again")) }
                }
                label { (c.tr("投诉人的意见", "What the complainant said"))
                    textarea name="note" rows="2" maxlength="2000" { (value(kept, "note")) } }
                label { (c.tr("确认方式", "Confirmed through"))
                    (select(c, "source", SOURCES, kept.map(|f| one(f, "source")).unwrap_or("staff"), None)) }
            }
        }
        CaseAction::Withdraw => reason(c.tr("撤回原因（必填）", "Why withdrawn (required)"), true),
        CaseAction::Reject => reason(c.tr("不予受理的理由（必填）", "Why rejected (required)"), true),
        _ => reason(c.tr("说明（可选）", "Note (optional)"), false),
    };
    html! {
        details.card.action data-action=(label.slug) open[kept.is_some()] {
            summary { strong { (c.tr(label.zh, label.en)) } }
            form #{ "act-" (label.slug) } method="post" action={ "/console/cases/" (id) "/act" } {
                (c.csrf_field())
                input type="hidden" name="action" value=(label.slug);
                input type="hidden" name="etag" value=(k.etag);
                (fields)
                button type="submit" { (c.tr(label.zh, label.en)) }
            }
        }
    }
}

/// Root cause and a few rows of corrective actions: those planned (or typed), then blanks.
fn plan_fields(c: &Console, k: &Case, kept: Option<&[(String, String)]>) -> Markup {
    let rows: Vec<(String, String, String)> = match kept {
        Some(f) => {
            let (d, o, due) = (all(f, "ca_description"), all(f, "ca_owner"), all(f, "ca_due"));
            (0..d.len().max(o.len()).max(due.len()))
                .map(|i| {
                    let at = |v: &[&str]| v.get(i).copied().unwrap_or("").to_string();
                    (at(&d), at(&o), at(&due))
                })
                .collect()
        }
        None => k
            .corrective_actions
            .iter()
            .map(|a| (a.description.clone(), a.owner.clone(), date_text(&a.due_date)))
            .collect(),
    };
    let blanks = BLANK_ACTION_ROWS.max(MIN_ACTION_ROWS.saturating_sub(rows.len()));
    let root_cause = kept
        .map(|f| one(f, "root_cause").to_string())
        .unwrap_or_else(|| k.root_cause.clone());
    html! {
        label { (c.tr("根本原因", "Root cause"))
            textarea name="root_cause" rows="3" required maxlength="2000" { (root_cause) } }
        table.corrective {
            thead { tr {
                th { (c.tr("整改措施", "Corrective action")) }
                th { (c.tr("责任人（账号）", "Owner (username)")) }
                th { (c.tr("完成期限", "Due date")) }
            } }
            tbody {
                @for (d, o, due) in rows.iter().cloned().chain(std::iter::repeat_n(Default::default(), blanks)) {
                    tr {
                        td { input name="ca_description" maxlength="1000" value=(d) aria-label=(c.tr("整改措施", "Corrective action")); }
                        td { input name="ca_owner" list="staff" maxlength="100" value=(o) aria-label=(c.tr("责任人", "Owner")); }
                        td { input name="ca_due" type="date" value=(due) aria-label=(c.tr("完成期限", "Due date")); }
                    }
                }
            }
        }
        p.small { (c.tr("空行不会保存。", "Empty rows are left out.")) }
    }
}

fn hand_over_form(c: &Console, k: &Case, kept: Option<&[(String, String)]>) -> Markup {
    html! {
        details.card.action data-action="handover" open[kept.is_some()] {
            summary { strong { (c.tr("移交负责人", "Hand over")) } }
            form #handover method="post" action={ "/console/cases/" (id_of(&k.name)) "/handover" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(k.etag);
                label { (c.tr("新负责人（账号）", "New owner (username)"))
                    input name="new_owner" list="staff" required maxlength="100" value=(value(kept, "new_owner")); }
                label { (c.tr("移交原因", "Why"))
                    textarea name="reason" rows="2" required maxlength="500" { (value(kept, "reason")) } }
                button type="submit" { (c.tr("移交", "Hand over")) }
            }
        }
    }
}

fn link_form(c: &Console, k: &Case, kept: Option<&[(String, String)]>) -> Markup {
    html! {
        details.card.action data-action="link" open[kept.is_some()] {
            summary { strong { (c.tr("标记为重复案件", "Mark as a duplicate")) } }
            form #link method="post" action={ "/console/cases/" (id_of(&k.name)) "/link" } {
                (c.csrf_field())
                p.small { (c.tr(
                    "本案件将合并到主案件并结束（同一患者、其他渠道、在规定天数内）。",
                    "This case is linked into the primary case and ends (same patient, another channel, within the configured days).",
                )) }
                label { (c.tr("主案件的受理编号", "Confirmation number of the primary case"))
                    input name="primary" required maxlength="64" placeholder="FK7Q-2M9D" value=(value(kept, "primary")); }
                label { (c.tr("说明（可选）", "Note (optional)"))
                    textarea name="reason" rows="2" maxlength="500" { (value(kept, "reason")) } }
                button type="submit" { (c.tr("合并", "Link")) }
            }
        }
    }
}

fn history_action(c: &Console, action: &str) -> String {
    let named = match action {
        "created" => Some(c.tr("登记", "taken")),
        "hand_over" => Some(c.tr("移交", "handed over")),
        "link" => Some(c.tr("重复合并", "duplicate linked")),
        "escalate" => Some(c.tr("升级督办", "escalated")),
        slug => by_slug(ACTIONS, slug).map(|l| c.tr(l.zh, l.en)),
    };
    named.map(str::to_string).unwrap_or_else(|| action.to_string())
}

/// The name of a detail of a history entry; unknown keys as they are.
fn detail_key(c: &Console, key: &str) -> String {
    let named = match key {
        "owner" => c.tr("负责人", "owner"),
        "assignee" => c.tr("调查人", "investigator"),
        "from" => c.tr("原负责人", "from"),
        "to" => c.tr("新负责人", "to"),
        "root_cause" => c.tr("根本原因", "root cause"),
        "actions" => c.tr("整改措施数", "actions"),
        "effective" => c.tr("整改有效", "effective"),
        "primary" => c.tr("主案件", "primary case"),
        "duplicate" => c.tr("重复案件", "duplicate"),
        "level" => c.tr("督办级别", "escalation level"),
        other => return other.to_string(),
    };
    named.to_string()
}

/// The details of a history entry worth reading: names, texts and flags (codes left out).
fn detail_text(c: &Console, json: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return String::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) if !s.is_empty() => s.clone(),
                serde_json::Value::Bool(b) => c
                    .tr(if *b { "是" } else { "否" }, if *b { "yes" } else { "no" })
                    .to_string(),
                serde_json::Value::Number(n) if !matches!(k.as_str(), "channel" | "severity" | "source") => {
                    n.to_string()
                }
                _ => return None,
            };
            Some(format!("{}: {value}", detail_key(c, k)))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn timeline(c: &Console, entries: &[CaseHistoryEntry]) -> Markup {
    html! {
        ol #history {
            @for e in entries {
                li data-action=(e.action) data-to=(slug_of(STATES, e.to_state)) {
                    span.small { (c.ts(&e.time)) } " "
                    strong { (history_action(c, &e.action)) } " "
                    @if e.from_state != e.to_state && e.from_state != 0 {
                        span.tag { (name_of(c, STATES, e.from_state)) } "→"
                    }
                    span.tag { (name_of(c, STATES, e.to_state)) } " "
                    span.small { (c.tr("操作人", "by")) " " (e.actor) }
                    @if !e.reason.is_empty() { p { (e.reason) } }
                    @let detail = detail_text(c, &e.detail_json);
                    @if !detail.is_empty() { p.small { (detail) } }
                }
            }
        }
    }
}

/// A form the service refused: the page again, with it.
async fn refused(c: Console, id: &str, form: String, fields: Vec<(String, String)>, error: HttpError) -> Response {
    let fields = fields
        .into_iter()
        .filter(|(k, _)| k != "_csrf" && k != "etag")
        .collect();
    let view = View {
        failed: Some(Failed { form, fields, error }),
        ..Default::default()
    };
    render(c, id, view).await
}

fn done(id: &str, what: &str) -> Response {
    Redirect::to(&format!("/console/cases/{id}?done={what}")).into_response()
}

/// Moves the case one step with what that step needs and the etag the form was read with.
pub async fn act(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let fields = pairs(&body);
    let slug = one(&fields, "action").to_string();
    let form = format!("act:{slug}");
    let request = match transition(&id, &fields) {
        Ok(r) => r,
        Err(err) => return refused(c, &id, form, fields, err).await,
    };
    match client(&c).transition_case(request).await {
        Ok(_) => done(&id, &slug),
        Err(status) => refused(c, &id, form, fields, HttpError::from(status)).await,
    }
}

fn transition(id: &str, f: &[(String, String)]) -> Result<TransitionCaseRequest, HttpError> {
    let action =
        parse_slug(ACTIONS, "action", one(f, "action"))?.ok_or_else(|| HttpError::invalid("action", "is required"))?;
    let mut request = TransitionCaseRequest {
        name: format!("cases/{id}"),
        action: action as i32,
        reason: one(f, "reason").trim().to_string(),
        etag: one(f, "etag").to_string(),
        ..Default::default()
    };
    match action {
        CaseAction::Assign => request.assignee = one(f, "assignee").trim().to_string(),
        CaseAction::PlanActions => {
            request.root_cause = one(f, "root_cause").trim().to_string();
            request.corrective_actions = corrective_actions(f)?;
        }
        CaseAction::Reply => {
            let channel = parse_slug(REPLY_CHANNELS, "reply.channel", one(f, "reply_channel"))?;
            request.reply = Some(Reply {
                text: one(f, "reply_text").trim().to_string(),
                channel: channel.map(|ch| ch as i32).unwrap_or_default(),
                reply_time: None,
            });
        }
        CaseAction::Confirm => {
            let effective = match one(f, "effective") {
                "yes" => true,
                "no" => false,
                _ => {
                    return Err(HttpError::invalid(
                        "confirmation.effective",
                        "say whether the fix worked (yes or no)",
                    ));
                }
            };
            let source = parse_slug(SOURCES, "confirmation.source", one(f, "source"))?;
            request.confirmation = Some(Confirmation {
                effective,
                note: one(f, "note").trim().to_string(),
                source: source.unwrap_or(ConfirmationSource::Staff) as i32,
                ..Default::default()
            });
        }
        _ => {}
    }
    Ok(request)
}

/// The rows typed into the plan; blank rows are left out, so `[i]` in an error is the i-th
/// row given, as the service counts them.
fn corrective_actions(f: &[(String, String)]) -> Result<Vec<CorrectiveAction>, HttpError> {
    let (d, o, due) = (all(f, "ca_description"), all(f, "ca_owner"), all(f, "ca_due"));
    let mut out = Vec::new();
    let mut wrong: Vec<FieldViolation> = Vec::new();
    for row in 0..d.len().max(o.len()).max(due.len()) {
        let at = |v: &[&str]| v.get(row).map(|s| s.trim()).unwrap_or("").to_string();
        let (description, owner, due_text) = (at(&d), at(&o), at(&due));
        if description.is_empty() && owner.is_empty() && due_text.is_empty() {
            continue;
        }
        let due_date = match parse_date(&due_text) {
            Ok(d) => d,
            Err(()) => {
                wrong.push(FieldViolation {
                    field: format!("corrective_actions[{}].due_date", out.len()),
                    description: "must be a date YYYY-MM-DD".into(),
                });
                None
            }
        };
        out.push(CorrectiveAction {
            description,
            owner,
            due_date,
        });
    }
    match wrong.split_first() {
        None => Ok(out),
        Some((first, rest)) => {
            let mut err = HttpError::invalid(&first.field, first.description.clone());
            err.field_violations.extend(rest.iter().cloned());
            Err(err)
        }
    }
}

/// `YYYY-MM-DD`; empty is none (the service says a date is needed).
fn parse_date(text: &str) -> Result<Option<Date>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    use chrono::Datelike;
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| ())?;
    Ok(Some(Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }))
}

pub async fn hand_over(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let fields = pairs(&body);
    let request = HandOverCaseRequest {
        name: format!("cases/{id}"),
        new_owner: one(&fields, "new_owner").trim().to_string(),
        reason: one(&fields, "reason").trim().to_string(),
        etag: one(&fields, "etag").to_string(),
    };
    match client(&c).hand_over_case(request).await {
        Ok(_) => done(&id, "handover"),
        Err(status) => refused(c, &id, "handover".into(), fields, HttpError::from(status)).await,
    }
}

/// Links this case into the primary one the member names by its confirmation number.
pub async fn link(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let fields = pairs(&body);
    let primary = match primary_of(&c, one(&fields, "primary")).await {
        Ok(name) => name,
        Err(err) => return refused(c, &id, "link".into(), fields, err).await,
    };
    let request = LinkCasesRequest {
        name: primary,
        duplicate: format!("cases/{id}"),
        reason: one(&fields, "reason").trim().to_string(),
    };
    match client(&c).link_cases(request).await {
        Ok(_) => done(&id, "link"),
        Err(status) => refused(c, &id, "link".into(), fields, HttpError::from(status)).await,
    }
}

/// The name of the case a number (or id) typed into the link form means.
async fn primary_of(c: &Console, typed: &str) -> Result<String, HttpError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(HttpError::invalid("primary", "is required"));
    }
    match fetch(c, &key_of(typed), None).await {
        Ok(case) => Ok(case.name),
        Err(status) if matches!(status.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => {
            Err(HttpError::invalid("primary", format!("no case {typed}")))
        }
        Err(status) => Err(HttpError::from(status)),
    }
}
