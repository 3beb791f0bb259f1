//! Inviting patients to answer a published questionnaire, and the invitations with their
//! state. The links come back from the service once and are never kept: the page that created
//! them shows them (for sending by hand), and a reload repeats the same request id, which the
//! service answers with the same invitations and links.

use super::questionnaire::{Extra, ShowQuery, render, state_filter};
use super::{all, href, invalid, invitation_state_name, one, surveys};
use crate::api::error::HttpError;
use crate::web::page::{Authed, Console, url_encode};
use axum::extract::Path;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use hcrm_proto::feedback::{
    CreateInvitationsRequest, Invitation, InvitationState, ListInvitationsRequest, ListInvitationsResponse,
    Questionnaire,
};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::{GetPatientRequest, PatientMatch, SearchPatientsRequest};
use http::HeaderMap;
use maud::{Markup, html};
use std::collections::HashMap;

/// Patient look-ups in flight at once (codes typed in, names of listed invitations).
const LOOKUPS: usize = 8;
const PAGE_SIZE: i32 = 50;
/// What one CreateInvitations takes.
const MAX_PATIENTS: usize = 1000;

/// The invitation form as typed.
#[derive(Debug, Default, Clone)]
pub(super) struct InviteForm {
    patients: String,
    picks: Vec<String>,
    department: String,
    expire_days: String,
    send: bool,
    request_id: String,
}

fn patients(c: &Console) -> PatientServiceClient<Authed> {
    PatientServiceClient::new(c.authed(&c.gw.upstreams.patients.channel))
}

fn patient_href(name: &str) -> String {
    format!("/console/{name}")
}

/// The invitations part of a questionnaire's page.
pub(super) async fn section(c: &Console, q: &Questionnaire, query: &ShowQuery, extra: &Extra) -> Markup {
    if q.version == 0 {
        return html! {
            h2 #invitations { (c.tr("邀请", "Invitations")) }
            p.small #publish-first { (c.tr("问卷发布后才能邀请患者。", "Publish the questionnaire before inviting patients.")) }
        };
    }
    let state = match query.state.as_str() {
        "open" => InvitationState::Open,
        "answered" => InvitationState::Answered,
        "expired" => InvitationState::Expired,
        _ => InvitationState::Unspecified,
    };
    let listed = surveys(c)
        .list_invitations(ListInvitationsRequest {
            questionnaire: q.name.clone(),
            state: state as i32,
            page_size: PAGE_SIZE,
            page_token: query.page.clone(),
        })
        .await
        .map(|r| r.into_inner());
    let found = find(c, &query.find).await;
    let mut names: Vec<String> = extra.created.iter().map(|i| i.patient.clone()).collect();
    names.extend(extra.invite.picks.iter().cloned());
    if let Ok(listed) = &listed {
        names.extend(listed.invitations.iter().map(|i| i.patient.clone()));
    }
    let names = patient_names(c, names).await;
    html! {
        h2 #invite { (c.tr("邀请患者", "Invite patients")) }
        @if !extra.created.is_empty() { (created(c, &extra.created, &names, extra.invite.send)) }
        (invite_form(c, q, query, extra, found, &names))
        h2 #invitations { (c.tr("已发出的邀请", "Invitations")) }
        (state_filter(c, &q.name, &query.state))
        @match listed {
            Ok(listed) => { (invitation_table(c, q, query, &listed, &names)) }
            Err(status) => { (c.error_box(&status.into())) }
        }
    }
}

/// Patients found by the search box, to tick in the form.
async fn find(c: &Console, text: &str) -> Option<Result<Vec<PatientMatch>, HttpError>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let found = patients(c)
        .search_patients(SearchPatientsRequest {
            query: text.to_string(),
            page_size: 20,
        })
        .await
        .map(|r| r.into_inner().matches)
        .map_err(HttpError::from);
    Some(found)
}

/// Display names of patients, by resource name; those that cannot be read are left out.
async fn patient_names(c: &Console, mut names: Vec<String>) -> HashMap<String, String> {
    names.sort();
    names.dedup();
    let client = patients(c);
    futures::stream::iter(names)
        .map(|name| {
            let mut client = client.clone();
            async move {
                let got = client
                    .get_patient(GetPatientRequest {
                        name: name.clone(),
                        ..Default::default()
                    })
                    .await;
                got.ok().map(|p| (name, p.into_inner().display_name))
            }
        })
        .buffer_unordered(LOOKUPS)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

fn patient_cell(name: &str, names: &HashMap<String, String>) -> Markup {
    let shown = names
        .get(name)
        .cloned()
        .unwrap_or_else(|| name.trim_start_matches("patients/").to_string());
    html! { a href=(patient_href(name)) { (shown) } }
}

fn created(c: &Console, created: &[Invitation], names: &HashMap<String, String>, sent: bool) -> Markup {
    html! {
        div.notice role="status" #created {
            p { strong { (c.tr("已创建邀请", "Invitations created")) ": " (created.len()) } }
            p { (c.tr("以下链接只显示这一次，请现在复制给需要人工发送的患者（刷新本页会显示同样的链接）。",
                      "These links are shown this once: copy them now for patients you send them to by hand (reloading this page shows the same links).")) }
            @if sent { p { (c.tr("链接也已按患者同意的渠道排队发送。", "The links are also queued to the patients through the channels they accept.")) } }
        }
        table #new-links {
            thead { tr { th { (c.tr("患者", "Patient")) } th { (c.tr("链接", "Link")) } th { (c.tr("令牌", "Token")) } th { (c.tr("有效期至", "Expires")) } } }
            tbody {
                @for i in created {
                    tr data-name=(i.name) data-patient=(i.patient) {
                        td { (patient_cell(&i.patient, names)) }
                        td { a href=(i.link) data-link { (i.link) } }
                        td { code data-token=(i.token) { (i.token) } }
                        td { (c.ts(&i.expire_time)) }
                    }
                }
            }
        }
    }
}

fn invite_form(
    c: &Console,
    q: &Questionnaire,
    query: &ShowQuery,
    extra: &Extra,
    found: Option<Result<Vec<PatientMatch>, HttpError>>,
    names: &HashMap<String, String>,
) -> Markup {
    let form = &extra.invite;
    let request_id = if form.request_id.is_empty() || !extra.created.is_empty() {
        hcrm_kit::new_id()
    } else {
        form.request_id.clone()
    };
    html! {
        @if let Some(err) = &extra.invite_error { (c.error_box(err)) }
        form.inline #find-patients method="get" action={ (href(&q.name)) "#invite" } role="search" {
            label { (c.tr("查找患者（姓名、拼音、电话、档案号）", "Find patients (name, pinyin, phone, code)"))
                input name="find" value=(query.find) maxlength="64"; }
            button.secondary type="submit" { (c.tr("查找", "Find")) }
        }
        form.card #invite-form method="post" action={ (href(&q.name)) "/invitations" } {
            (c.csrf_field())
            input type="hidden" name="request_id" value=(request_id);
            @match &found {
                Some(Ok(matches)) if matches.is_empty() => { p.small { (c.tr("没有找到匹配的患者。", "No patient matches.")) } }
                Some(Ok(matches)) => {
                    fieldset #found {
                        legend { (c.tr("勾选要邀请的患者", "Tick the patients to invite")) }
                        @for m in matches {
                            @if let Some(p) = &m.patient {
                                label data-patient=(p.name) {
                                    input type="checkbox" name="pick" value=(p.name) checked[form.picks.contains(&p.name)];
                                    " " (p.display_name) " · " (p.code) " · " (p.phones.first().map(String::as_str).unwrap_or(""))
                                }
                            }
                        }
                    }
                }
                Some(Err(err)) => { (c.error_box(err)) }
                None => {}
            }
            @let listed_above = |pick: &String| matches!(&found, Some(Ok(m)) if m.iter().any(|m| m.patient.as_ref().is_some_and(|p| &p.name == pick)));
            @let kept: Vec<&String> = form.picks.iter().filter(|p| !listed_above(p)).collect();
            @if !kept.is_empty() {
                fieldset #picked {
                    legend { (c.tr("已勾选的患者", "Patients ticked")) }
                    @for pick in kept {
                        label data-patient=(pick) {
                            input type="checkbox" name="pick" value=(pick) checked;
                            " " (names.get(pick).map(String::as_str).unwrap_or(pick.as_str()))
                        }
                    }
                }
            }
            label { (c.tr("患者档案号或编号，每行一个（也可用上面的查找勾选）", "Patient codes or ids, one per line (or tick them after a search above)"))
                textarea name="patients" rows="4" { (form.patients) } }
            label { (c.tr("调查所涉科室（代码，如 cardiology）", "Department the answers are about (code, e.g. cardiology)"))
                input name="department" value=(form.department) required maxlength="40"; }
            label { (c.tr("链接有效天数（留空用系统默认）", "Days the links stay valid (empty: the service default)"))
                input name="expire_days" value=(form.expire_days) inputmode="numeric" maxlength="3"; }
            label { input type="checkbox" name="send" value="true" checked[form.send];
                " " (c.tr("通过患者同意的渠道发送链接（未同意或拒绝联系的患者不会收到）", "Send the link through the channels each patient accepts (no message to patients without consent)")) }
            button type="submit" { (c.tr("创建邀请", "Create invitations")) }
        }
    }
}

fn invitation_table(
    c: &Console,
    q: &Questionnaire,
    query: &ShowQuery,
    listed: &ListInvitationsResponse,
    names: &HashMap<String, String>,
) -> Markup {
    html! {
        @if listed.invitations.is_empty() {
            p.small #no-invitations { (c.tr("没有邀请。", "No invitations.")) }
        } @else {
            table #invitation-list {
                thead { tr {
                    th { (c.tr("患者", "Patient")) } th { (c.tr("科室", "Department")) } th { (c.tr("版本", "Version")) }
                    th { (c.tr("状态", "State")) } th { (c.tr("已提醒", "Reminded")) } th { (c.tr("创建", "Created")) }
                    th { (c.tr("有效期至", "Expires")) }
                } }
                tbody {
                    @for i in &listed.invitations {
                        tr data-name=(i.name) data-patient=(i.patient) data-state=(state_code(i.state)) {
                            td { (patient_cell(&i.patient, names)) }
                            td { (i.department) }
                            td { "v" (i.version) }
                            td { span class=(state_class(i.state)) { (invitation_state_name(c, i.state)) } }
                            td { @if i.reminded { "✓" } }
                            td { (c.ts(&i.create_time)) }
                            td { (c.ts(&i.expire_time)) }
                        }
                    }
                }
            }
            @if !listed.next_page_token.is_empty() {
                p { a href={ (href(&q.name)) "?state=" (query.state) "&page=" (url_encode(&listed.next_page_token)) "#invitations" } { (c.tr("下一页", "Next page")) } }
            }
        }
    }
}

fn state_code(state: i32) -> &'static str {
    match InvitationState::try_from(state).unwrap_or_default() {
        InvitationState::Open => "open",
        InvitationState::Answered => "answered",
        InvitationState::Expired => "expired",
        InvitationState::Unspecified => "",
    }
}

fn state_class(state: i32) -> &'static str {
    match InvitationState::try_from(state).unwrap_or_default() {
        InvitationState::Answered => "tag good",
        InvitationState::Expired => "tag bad",
        _ => "tag",
    }
}

/// What a line of the patients box names: a resource name, an id, or a member code.
enum Entry {
    Name(String),
    Code(String),
}

fn entry(text: &str) -> Entry {
    if text.starts_with("patients/") {
        return Entry::Name(text.to_string());
    }
    let uuid_like = text.len() == 36 && text.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-');
    if uuid_like {
        Entry::Name(format!("patients/{text}"))
    } else {
        Entry::Code(text.to_string())
    }
}

/// The patients a member code belongs to, by an exact code match of the search.
async fn by_code(client: &mut PatientServiceClient<Authed>, code: &str) -> Result<Option<String>, HttpError> {
    let found = client
        .search_patients(SearchPatientsRequest {
            query: code.to_string(),
            page_size: 5,
        })
        .await
        .map_err(HttpError::from)?;
    Ok(found
        .into_inner()
        .matches
        .into_iter()
        .filter_map(|m| m.patient)
        .find(|p| p.code.eq_ignore_ascii_case(code))
        .map(|p| p.name))
}

/// Resolves what was typed and ticked into patient names, each with what the member entered
/// (to name it in errors); codes that match no patient are field errors.
async fn resolve(c: &Console, form: &InviteForm) -> Result<Vec<(String, String)>, HttpError> {
    let typed: Vec<String> = form
        .patients
        .split(['\n', ',', '，', ';', '；', ' ', '\t', '\r'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    if typed.len() + form.picks.len() > MAX_PATIENTS {
        return Err(HttpError::invalid(
            "patients",
            format!("at most {MAX_PATIENTS} patients at a time"),
        ));
    }
    let client = patients(c);
    let looked_up: Vec<(String, Result<Option<String>, HttpError>)> = futures::stream::iter(typed)
        .map(|text| {
            let mut client = client.clone();
            async move {
                match entry(&text) {
                    Entry::Name(name) => (text, Ok(Some(name))),
                    Entry::Code(code) => {
                        let found = by_code(&mut client, &code).await;
                        (text, found)
                    }
                }
            }
        })
        .buffered(LOOKUPS)
        .collect()
        .await;
    let mut resolved: Vec<(String, String)> = Vec::new();
    let mut wrong = Vec::new();
    for (text, found) in looked_up {
        match found {
            Ok(Some(name)) => resolved.push((name, text)),
            Ok(None) => wrong.push((
                "patients".to_string(),
                format!("{text}: no patient has this code or id"),
            )),
            Err(err) => return Err(err),
        }
    }
    if let Some(err) = invalid(wrong) {
        return Err(err);
    }
    for pick in &form.picks {
        resolved.push((pick.clone(), pick.clone()));
    }
    // A patient typed and also ticked is invited once.
    let mut seen = std::collections::HashSet::new();
    resolved.retain(|(name, _)| seen.insert(name.clone()));
    Ok(resolved)
}

/// `patients[3]` of the request named back as the entry the member typed.
fn on_form(mut err: HttpError, entries: &[(String, String)]) -> HttpError {
    for v in err.field_violations.iter_mut() {
        let index = v
            .field
            .strip_prefix("patients[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|i| i.parse::<usize>().ok());
        if let Some(typed) = index.and_then(|i| entries.get(i)) {
            v.description = format!("{}: {}", typed.1, v.description);
            v.field = "patients".into();
        }
    }
    err
}

pub async fn create(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let f = super::fields(&body);
    let form = InviteForm {
        patients: one(&f, "patients"),
        picks: all(&f, "pick"),
        department: one(&f, "department").trim().to_string(),
        expire_days: one(&f, "expire_days").trim().to_string(),
        send: one(&f, "send") == "true",
        request_id: one(&f, "request_id"),
    };
    let refused = |err: HttpError, form: InviteForm| Extra {
        invite: form,
        invite_error: Some(err),
        ..Default::default()
    };
    let query = ShowQuery::default();
    let expire_days = match form.expire_days.as_str() {
        "" => 0,
        d => match d.parse::<i32>() {
            Ok(d) => d,
            Err(_) => {
                let err = HttpError::invalid("expire_days", "must be a whole number of days, or empty");
                return render(&c, &id, &query, refused(err, form)).await;
            }
        },
    };
    let entries = match resolve(&c, &form).await {
        Ok(entries) => entries,
        Err(err) => return render(&c, &id, &query, refused(err, form)).await,
    };
    let made = surveys(&c)
        .create_invitations(CreateInvitationsRequest {
            questionnaire: format!("questionnaires/{id}"),
            patients: entries.iter().map(|(name, _)| name.clone()).collect(),
            department: form.department.clone(),
            expire_days,
            send: form.send,
            request_id: form.request_id.clone(),
        })
        .await;
    match made {
        Ok(made) => {
            let extra = Extra {
                created: made.into_inner().invitations,
                // The next batch is often for the same department.
                invite: InviteForm {
                    department: form.department.clone(),
                    send: form.send,
                    ..Default::default()
                },
                ..Default::default()
            };
            render(&c, &id, &query, extra).await
        }
        Err(status) => render(&c, &id, &query, refused(on_form(status.into(), &entries), form)).await,
    }
}
