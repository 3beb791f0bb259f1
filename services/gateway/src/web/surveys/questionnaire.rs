//! The questionnaires: the list, one questionnaire's page (its draft's questions, publishing,
//! its invitations) and a preview of what patients see.

use super::invitations::{self, InviteForm};
use super::{href, invitation_state_name, kind_name, local, state_name, surveys, with_status};
use crate::api::error::HttpError;
use crate::web::page::Console;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::feedback::{
    GetQuestionnaireRequest, Invitation, ListQuestionnairesRequest, PublishQuestionnaireRequest, Question,
    QuestionKind, Questionnaire, QuestionnaireState,
};
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    page: String,
}

pub async fn list(c: Console, Query(query): Query<ListQuery>) -> Response {
    let listed = surveys(&c)
        .list_questionnaires(ListQuestionnairesRequest {
            page_size: 50,
            page_token: query.page.clone(),
        })
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return c.error(status),
    };
    let body = html! {
        p {
            a href="/console/surveys/new" { (c.tr("新建问卷", "New questionnaire")) }
            " · "
            a href="/console/surveys/results" { (c.tr("满意度结果", "Satisfaction results")) }
            " · "
            a href="/console/reports" { (c.tr("月度报告", "Monthly report")) }
        }
        @if listed.questionnaires.is_empty() {
            p.small #no-surveys { (c.tr("还没有问卷。", "No questionnaires yet.")) }
        } @else {
            table #surveys {
                thead { tr {
                    th { (c.tr("标题", "Title")) } th { (c.tr("状态", "State")) }
                    th { (c.tr("已发布版本", "Published version")) } th { (c.tr("问题数", "Questions")) }
                    th { (c.tr("更新时间", "Updated")) }
                } }
                tbody {
                    @for q in &listed.questionnaires {
                        tr data-name=(q.name) data-state=(state_name_code(q.state)) data-version=(q.version) {
                            td { a href=(href(&q.name)) { (title_of(&c, q)) } }
                            td { (state_tag(&c, q.state)) }
                            td { @if q.version > 0 { "v" (q.version) } @else { "—" } }
                            td { (question_count(q)) }
                            td { (c.ts(&q.update_time)) }
                        }
                    }
                }
            }
            @if !listed.next_page_token.is_empty() {
                p { a href={ "/console/surveys?page=" (crate::web::page::url_encode(&listed.next_page_token)) } { (c.tr("下一页", "Next page")) } }
            }
        }
    };
    c.page(c.tr("满意度调查", "Surveys"), body)
}

fn title_of(c: &Console, q: &Questionnaire) -> String {
    let title = local(c, &q.title);
    if title.trim().is_empty() { q.name.clone() } else { title }
}

fn question_count(q: &Questionnaire) -> usize {
    q.sections.iter().map(|s| s.questions.len()).sum()
}

fn state_name_code(state: i32) -> &'static str {
    match QuestionnaireState::try_from(state).unwrap_or_default() {
        QuestionnaireState::Draft => "draft",
        QuestionnaireState::Published => "published",
        QuestionnaireState::Unspecified => "",
    }
}

fn state_tag(c: &Console, state: i32) -> Markup {
    let class = if state == QuestionnaireState::Published as i32 {
        "tag good"
    } else {
        "tag warn"
    };
    html! { span class=(class) { (state_name(c, state)) } }
}

/// What the questionnaire page may show besides the questionnaire.
#[derive(Debug, Default)]
pub(super) struct Extra {
    /// A refused publish.
    pub error: Option<HttpError>,
    /// The invitation form as typed, and why it was refused.
    pub invite: InviteForm,
    pub invite_error: Option<HttpError>,
    /// Invitations just made, with their links (shown this once).
    pub created: Vec<Invitation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShowQuery {
    /// A patient search for the invitation form.
    pub find: String,
    /// Invitations: `open`, `answered`, `expired`, or all.
    pub state: String,
    pub page: String,
}

pub async fn show(c: Console, Path(id): Path<String>, Query(query): Query<ShowQuery>) -> Response {
    render(&c, &id, &query, Extra::default()).await
}

/// The published version's content differs from the draft (saved changes not yet published).
fn same_content(a: &Questionnaire, b: &Questionnaire) -> bool {
    a.title == b.title
        && a.description == b.description
        && a.sections == b.sections
        && a.case_threshold == b.case_threshold
}

pub(super) async fn render(c: &Console, id: &str, query: &ShowQuery, extra: Extra) -> Response {
    let name = format!("questionnaires/{id}");
    let mut client = surveys(c);
    let draft = match client
        .get_questionnaire(GetQuestionnaireRequest {
            name: name.clone(),
            version: 0,
        })
        .await
    {
        Ok(q) => q.into_inner(),
        Err(status) => return c.error(status),
    };
    let published = if draft.version > 0 {
        client
            .get_questionnaire(GetQuestionnaireRequest {
                name: name.clone(),
                version: draft.version,
            })
            .await
            .ok()
            .map(|r| r.into_inner())
    } else {
        None
    };
    let changed = published.as_ref().is_some_and(|p| !same_content(p, &draft));
    let invitations = invitations::section(c, &draft, query, &extra).await;
    let body = html! {
        @if let Some(err) = &extra.error { (c.error_box(err)) }
        div.card #questionnaire data-name=(draft.name) data-state=(state_name_code(draft.state)) data-version=(draft.version) {
            p {
                (state_tag(c, draft.state))
                @if draft.version > 0 { span.tag #published-version { (c.tr("最新发布", "latest published")) " v" (draft.version) } }
                @if changed { span.tag.warn #unpublished { (c.tr("草稿有未发布的修改", "the draft has unpublished changes")) } }
            }
            @let description = local(c, &draft.description);
            @if !description.is_empty() { p.lead { (description) } }
            dl.fields {
                dt { (c.tr("立案阈值", "Case threshold")) }
                dd { @if draft.case_threshold > 0 { "≤ " (draft.case_threshold) } @else { (c.tr("系统默认", "service default")) } }
                dt { (c.tr("创建", "Created")) } dd { (c.ts(&draft.create_time)) }
                dt { (c.tr("更新", "Updated")) } dd { (c.ts(&draft.update_time)) }
            }
            p {
                a href={ (href(&draft.name)) "/edit" } { (c.tr("编辑草稿", "Edit draft")) }
                " · "
                a href={ (href(&draft.name)) "/preview" } { (c.tr("预览草稿", "Preview draft")) }
                @if draft.version > 0 {
                    " · "
                    a href={ (href(&draft.name)) "/preview?version=" (draft.version) } { (c.tr("预览已发布版本", "Preview published version")) " v" (draft.version) }
                }
            }
            @if draft.version == 0 || changed {
                form.inline #publish method="post" action={ (href(&draft.name)) "/publish" } {
                    (c.csrf_field())
                    input type="hidden" name="etag" value=(draft.etag);
                    button type="submit" { (c.tr("发布为版本", "Publish as version")) " " (draft.version + 1) }
                    span.small { (c.tr("发布后此版本不再改变；已发出的邀请仍用原版本。", "A published version never changes; invitations already sent keep their version.")) }
                }
            }
        }
        h2 { (c.tr("问题（草稿）", "Questions (draft)")) }
        (question_table(c, &draft))
        (invitations)
    };
    let status_of = extra.error.as_ref().or(extra.invite_error.as_ref());
    with_status(c.page(&title_of(c, &draft), body), status_of)
}

fn show_if_text(q: &Question) -> String {
    q.show_if
        .as_ref()
        .map(|s| format!("{} ∈ {{{}}}", s.question, s.values.join(", ")))
        .unwrap_or_default()
}

fn question_table(c: &Console, q: &Questionnaire) -> Markup {
    html! {
        table #questions {
            thead { tr {
                th { (c.tr("分节", "Section")) } th { (c.tr("编号", "Id")) } th { (c.tr("题型", "Kind")) }
                th { (c.tr("题目", "Question")) } th { (c.tr("必答", "Required")) } th { (c.tr("维度", "Dimension")) }
                th { (c.tr("选项", "Options")) } th { (c.tr("条件显示", "Shown if")) }
            } }
            tbody {
                @for section in &q.sections {
                    @for question in &section.questions {
                        tr data-question=(question.id) {
                            td { (local(c, &section.title)) }
                            td { code { (question.id) } }
                            td { (kind_name(c, question.kind)) }
                            td { (local(c, &question.text)) }
                            td { @if question.required { "✓" } }
                            td { @if question.dimension != 0 { (super::dimension_name(c, question.dimension)) } }
                            td.small { @for o in &question.options { code { (o.value) } " " (local(c, &o.text)) br; } }
                            td.small { (show_if_text(question)) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PublishForm {
    etag: String,
}

pub async fn publish(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let form: PublishForm = match c.form(&headers, &body) {
        Ok(f) => f,
        Err(err) => return c.error(err),
    };
    let published = surveys(&c)
        .publish_questionnaire(PublishQuestionnaireRequest {
            name: format!("questionnaires/{id}"),
            etag: form.etag,
        })
        .await;
    match published {
        Ok(q) => Redirect::to(&href(&q.into_inner().name)).into_response(),
        Err(status) => {
            let extra = Extra {
                error: Some(status.into()),
                ..Default::default()
            };
            render(&c, &id, &ShowQuery::default(), extra).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PreviewQuery {
    version: String,
}

/// What a patient sees, read-only: the same questions, in the member's language.
pub async fn preview(c: Console, Path(id): Path<String>, Query(query): Query<PreviewQuery>) -> Response {
    let version = match query.version.trim() {
        "" => 0,
        v => match v.parse::<i32>() {
            Ok(v) if v >= 0 => v,
            _ => return c.error(HttpError::invalid("version", "must be a version number")),
        },
    };
    let got = surveys(&c)
        .get_questionnaire(GetQuestionnaireRequest {
            name: format!("questionnaires/{id}"),
            version,
        })
        .await;
    let q = match got {
        Ok(q) => q.into_inner(),
        Err(status) => return c.error(status),
    };
    let which = if version == 0 {
        c.tr("草稿", "draft").to_string()
    } else {
        format!("v{version}")
    };
    let body = html! {
        p.small {
            (c.tr("患者看到的样子（只读）", "As a patient sees it (read-only)")) ": " (which) " · "
            a href=(href(&q.name)) { (c.tr("返回问卷", "Back to the questionnaire")) }
        }
        div.card #preview {
            h2 { (title_of(&c, &q)) }
            @let description = local(&c, &q.description);
            @if !description.is_empty() { p.lead { (description) } }
            @for section in &q.sections {
                @let section_title = local(&c, &section.title);
                @if !section_title.is_empty() { h3 { (section_title) } }
                @for question in &section.questions { (preview_question(&c, question)) }
            }
        }
    };
    c.page(c.tr("问卷预览", "Questionnaire preview"), body)
}

fn preview_question(c: &Console, q: &Question) -> Markup {
    let kind = QuestionKind::try_from(q.kind).unwrap_or_default();
    html! {
        fieldset.card data-question=(q.id) disabled {
            legend { (local(c, &q.text)) @if q.required { " *" } }
            @if let Some(s) = &q.show_if {
                p.small { (c.tr("仅当以下回答时显示", "Shown only when")) " " code { (s.question) } " = " (s.values.join(" / ")) }
            }
            @match kind {
                QuestionKind::Rating => { @for score in 1..=5 { label.choice { input type="radio"; " " (score) } } }
                QuestionKind::Nps => { @for score in 0..=10 { label.choice { input type="radio"; " " (score) } } }
                QuestionKind::SingleChoice => { @for o in &q.options { label { input type="radio"; " " (local(c, &o.text)) } } }
                QuestionKind::MultipleChoice => { @for o in &q.options { label { input type="checkbox"; " " (local(c, &o.text)) } } }
                _ => { textarea rows="3" {} }
            }
        }
    }
}

/// The state filter links above the invitations.
pub(super) fn state_filter(c: &Console, name: &str, current: &str) -> Markup {
    let states = [
        ("", c.tr("全部", "all")),
        ("open", ""),
        ("answered", ""),
        ("expired", ""),
    ];
    html! {
        p.small #invitation-filter {
            (c.tr("显示：", "Show: "))
            @for (code, label) in states {
                @let label = match code { "open" => invitation_state_name(c, 1), "answered" => invitation_state_name(c, 2), "expired" => invitation_state_name(c, 3), _ => label };
                @if code == current { strong { (label) } } @else {
                    a href={ (href(name)) "?state=" (code) "#invitations" } { (label) }
                }
                " "
            }
        }
    }
}
