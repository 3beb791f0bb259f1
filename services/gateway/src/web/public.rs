//! The patients' pages, without sign-in: answering a survey from an invitation link, and filing
//! a complaint, suggestion or praise. The gateway calls feedback as `service:gateway` (the
//! integration role: it can answer and file, and read no one's records), so a link reaches its
//! own invitation only. Mobile-first, no script needed (skip logic is applied again here before
//! the answers are sent), friendly pages for an expired or used link.

use super::page::Lang;
use crate::api::error::HttpError;
use crate::state::Gateway;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::{
    Answer, Case, CaseKind, CreateCaseRequest, GetTaxonomyRequest, IntakeChannel, InvitationView,
    OpenInvitationRequest, Question, QuestionKind, SubmitSurveyResponseRequest,
};
use http::HeaderMap;
use maud::{DOCTYPE, Markup, html};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::Code;

fn shell(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/console.css";
            }
            body.public.plain {
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

use super::page::localized as local;

/// A friendly page for a link that cannot be used, with the status a client can act on.
fn link_problem(lang: Lang, status: &tonic::Status) -> Response {
    let (code, text) = match status.code() {
        Code::NotFound | Code::InvalidArgument => (
            404,
            lang.tr(
                "链接无效。请检查短信或邮件中的完整链接。",
                "This link is not valid. Please check the full link in your message.",
            ),
        ),
        Code::FailedPrecondition => (
            410,
            lang.tr(
                "该问卷已经提交过，或链接已过期。感谢您的参与！",
                "This survey has already been answered, or the link has expired. Thank you!",
            ),
        ),
        Code::ResourceExhausted => (
            429,
            lang.tr(
                "请求过于频繁，请稍后再试。",
                "Too many requests; please try again shortly.",
            ),
        ),
        _ => (
            503,
            lang.tr(
                "服务暂时不可用，请稍后再试。",
                "The service is unavailable; please try again later.",
            ),
        ),
    };
    let page = shell(
        lang,
        lang.tr("满意度调查", "Satisfaction survey"),
        html! { div.notice role="status" data-code=(crate::api::error::code_str(status.code())) { p { (text) } } },
    );
    let status = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE);
    (status, Html(page.into_string())).into_response()
}

fn surveys(gw: &Gateway) -> SurveyServiceClient<tonic::transport::Channel> {
    SurveyServiceClient::new(gw.upstreams.feedback.channel.clone())
}

fn service_request<T>(gw: &Gateway, message: T) -> Result<tonic::Request<T>, tonic::Status> {
    gw.service
        .request(message, gw.call_timeout())
        .map_err(|e| HttpError::from(e).into_status())
}

fn is_token(token: &str) -> bool {
    (8..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn open(gw: &Gateway, token: &str) -> Result<InvitationView, tonic::Status> {
    if !is_token(token) {
        return Err(tonic::Status::not_found("no such invitation"));
    }
    let request = service_request(
        gw,
        OpenInvitationRequest {
            token: token.to_string(),
        },
    )?;
    surveys(gw).open_invitation(request).await.map(|r| r.into_inner())
}

fn questions(view: &InvitationView) -> impl Iterator<Item = &Question> {
    view.questionnaire
        .iter()
        .flat_map(|q| q.sections.iter())
        .flat_map(|s| s.questions.iter())
}

pub async fn survey(State(gw): State<Arc<Gateway>>, headers: HeaderMap, Path(token): Path<String>) -> Response {
    let lang = Lang::of(&headers);
    match open(&gw, &token).await {
        Ok(view) => survey_page(lang, &token, &view, None),
        Err(status) => link_problem(lang, &status),
    }
}

fn survey_page(lang: Lang, token: &str, view: &InvitationView, error: Option<&HttpError>) -> Response {
    let Some(questionnaire) = &view.questionnaire else {
        return link_problem(lang, &tonic::Status::not_found("no questionnaire"));
    };
    let title = local(lang, &questionnaire.title);
    let body = html! {
        p.lead { (local(lang, &questionnaire.description)) }
        @if let Some(err) = error {
            div.error role="alert" {
                p { strong { (lang.tr("请检查以下问题：", "Please check these answers:")) } }
                ul { @for v in &err.field_violations { li { (v.description) } } }
                @if err.field_violations.is_empty() { p { (err.message) } }
            }
        }
        form #survey method="post" action={ "/s/" (token) } {
            @for section in &questionnaire.sections {
                @let section_title = local(lang, &section.title);
                @if !section_title.is_empty() { h2 { (section_title) } }
                @for q in &section.questions {
                    (question(lang, q))
                }
            }
            button type="submit" { (lang.tr("提交", "Submit")) }
        }
    };
    let status = error
        .map(|e| http::StatusCode::from_u16(e.status).unwrap_or(http::StatusCode::BAD_REQUEST))
        .unwrap_or(http::StatusCode::OK);
    (status, Html(shell(lang, &title, body).into_string())).into_response()
}

fn question(lang: Lang, q: &Question) -> Markup {
    let name = format!("q.{}", q.id);
    let text = local(lang, &q.text);
    let kind = QuestionKind::try_from(q.kind).unwrap_or_default();
    html! {
        fieldset.card data-question=(q.id) data-show-if=[q.show_if.as_ref().map(|s| format!("{}={}", s.question, s.values.join("|")))] {
            legend { (text) @if q.required { " *" } }
            @if q.show_if.is_some() {
                p.small { (lang.tr("（仅在前面的回答符合时需要回答）", "(only if it applies to your earlier answer)")) }
            }
            @match kind {
                QuestionKind::Rating => {
                    @for score in 1..=5 {
                        label.choice {
                            input type="radio" name=(name) value=(score); " " (score)
                        }
                    }
                    p.small { (lang.tr("1 = 非常不满意，5 = 非常满意", "1 = very dissatisfied, 5 = very satisfied")) }
                }
                QuestionKind::Nps => {
                    @for score in 0..=10 {
                        label.choice {
                            input type="radio" name=(name) value=(score); " " (score)
                        }
                    }
                }
                QuestionKind::SingleChoice => {
                    @for option in &q.options {
                        label { input type="radio" name=(name) value=(option.value); " " (local(lang, &option.text)) }
                    }
                }
                QuestionKind::MultipleChoice => {
                    @for option in &q.options {
                        label { input type="checkbox" name=(name) value=(option.value); " " (local(lang, &option.text)) }
                    }
                }
                _ => {
                    textarea name=(name) rows="4" maxlength="2000" {}
                }
            }
        }
    }
}

/// The answers of a submitted form, in the questionnaire's order, keeping only questions that are
/// shown for the earlier answers (the service refuses answers to hidden ones).
fn answers_of(view: &InvitationView, fields: &[(String, String)]) -> Vec<Answer> {
    let mut given: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in fields {
        if let Some(id) = k.strip_prefix("q.")
            && !v.trim().is_empty()
        {
            given.entry(id).or_default().push(v.as_str());
        }
    }
    let mut kept: HashMap<String, Vec<String>> = HashMap::new();
    let mut answers = Vec::new();
    for q in questions(view) {
        let Some(values) = given.get(q.id.as_str()) else {
            continue;
        };
        if let Some(show_if) = &q.show_if {
            let shown = kept
                .get(&show_if.question)
                .is_some_and(|earlier| earlier.iter().any(|v| show_if.values.contains(v)));
            if !shown {
                continue;
            }
        }
        let kind = QuestionKind::try_from(q.kind).unwrap_or_default();
        let answer = match kind {
            QuestionKind::Rating | QuestionKind::Nps => match values[0].trim().parse::<i32>() {
                Ok(score) => Answer {
                    question: q.id.clone(),
                    score: Some(score),
                    ..Default::default()
                },
                Err(_) => continue,
            },
            QuestionKind::SingleChoice | QuestionKind::MultipleChoice => Answer {
                question: q.id.clone(),
                choices: values.iter().map(|v| v.to_string()).collect(),
                ..Default::default()
            },
            _ => Answer {
                question: q.id.clone(),
                text: values[0].trim().to_string(),
                ..Default::default()
            },
        };
        kept.insert(q.id.clone(), values.iter().map(|v| v.trim().to_string()).collect());
        answers.push(answer);
    }
    answers
}

pub async fn answer(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let lang = Lang::of(&headers);
    // A page of another site must not post answers (or complaints) from its visitors' browsers.
    if let Err(err) = crate::auth::check_origin(&gw, &headers) {
        return link_problem(lang, &HttpError::from(err).into_status());
    }
    let view = match open(&gw, &token).await {
        Ok(view) => view,
        Err(status) => return link_problem(lang, &status),
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let answers = answers_of(&view, &fields);
    let request = match service_request(
        &gw,
        SubmitSurveyResponseRequest {
            token: token.clone(),
            answers,
        },
    ) {
        Ok(r) => r,
        Err(status) => return link_problem(lang, &status),
    };
    match surveys(&gw).submit_survey_response(request).await {
        Ok(_) => {
            let page = shell(
                lang,
                lang.tr("感谢您的反馈", "Thank you for your feedback"),
                html! { div.notice role="status" id="thanks" { p { (lang.tr("您的回答已提交。我们会认真阅读每一条意见。", "Your answers have been received. We read every comment.")) } } },
            );
            Html(page.into_string()).into_response()
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            let err = HttpError::from(status);
            survey_page(lang, &token, &view, Some(&err))
        }
        Err(status) => link_problem(lang, &status),
    }
}

/// The complaint form (GET).
pub async fn complaint_form(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    complaint_page(&gw, lang, &ComplaintForm::default(), None).await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ComplaintForm {
    kind: String,
    category: String,
    department: String,
    title: String,
    description: String,
    name: String,
    phone: String,
    request_id: String,
}

async fn complaint_page(gw: &Gateway, lang: Lang, form: &ComplaintForm, error: Option<&HttpError>) -> Response {
    let mut cases = CaseServiceClient::new(gw.upstreams.feedback.channel.clone());
    let categories = match service_request(gw, GetTaxonomyRequest::default()) {
        Ok(request) => cases
            .get_taxonomy(request)
            .await
            .map(|t| t.into_inner().categories)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    // Random, not time-ordered: the key is the gateway's across all patients, so it must not be guessable.
    let request_id = if form.request_id.is_empty() {
        crate::auth::random_token()
    } else {
        form.request_id.clone()
    };
    let title = lang.tr("投诉与建议", "Complaints and suggestions");
    let body = html! {
        p.lead { (lang.tr("您的意见会由患者服务中心专人处理。提交后您会得到一个受理编号，来电查询时请告知。",
                          "A member of the patient service centre will handle your message. You will get a reference number to quote when you call.")) }
        @if let Some(err) = error {
            div.error role="alert" {
                p { strong { (lang.tr("请检查以下内容：", "Please check:")) } }
                ul { @for v in &err.field_violations { li { code { (v.field.trim_start_matches("case.")) } ": " (v.description) } } }
                @if err.field_violations.is_empty() { p { (err.message) } }
            }
        }
        form.card #complaint method="post" action="/complaint" {
            input type="hidden" name="request_id" value=(request_id);
            label { (lang.tr("类型", "Type"))
                select name="kind" {
                    option value="complaint" selected[form.kind == "complaint"] { (lang.tr("投诉", "Complaint")) }
                    option value="suggestion" selected[form.kind == "suggestion"] { (lang.tr("建议", "Suggestion")) }
                    option value="praise" selected[form.kind == "praise"] { (lang.tr("表扬", "Praise")) }
                }
            }
            label { (lang.tr("问题类别", "Category"))
                select name="category" required {
                    @for c in &categories {
                        option value=(c.code) selected[form.category == c.code] { (lang.pick(&c.name_zh, &c.name_en)) }
                    }
                }
            }
            label { (lang.tr("科室或地点（选填）", "Department or place (optional)")) input name="department" maxlength="40" value=(form.department); }
            label { (lang.tr("标题", "Subject")) input name="title" required maxlength="200" value=(form.title); }
            label { (lang.tr("详细经过", "What happened")) textarea name="description" required rows="6" maxlength="5000" { (form.description) } }
            label { (lang.tr("您的姓名（选填）", "Your name (optional)")) input name="name" maxlength="100" value=(form.name); }
            label { (lang.tr("联系电话（选填，便于回复）", "Phone (optional, so we can reply)")) input name="phone" inputmode="tel" value=(form.phone); }
            button type="submit" { (lang.tr("提交", "Submit")) }
        }
    };
    let status = error
        .map(|e| http::StatusCode::from_u16(e.status).unwrap_or(http::StatusCode::BAD_REQUEST))
        .unwrap_or(http::StatusCode::OK);
    (status, Html(shell(lang, title, body).into_string())).into_response()
}

pub async fn complaint(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = Lang::of(&headers);
    let form: ComplaintForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if let Err(err) = crate::auth::check_origin(&gw, &headers) {
        return complaint_page(&gw, lang, &form, Some(&HttpError::from(err))).await;
    }
    let kind = match form.kind.as_str() {
        "suggestion" => CaseKind::Suggestion,
        "praise" => CaseKind::Praise,
        _ => CaseKind::Complaint,
    };
    let department = match form.department.trim() {
        "" => gw.cfg.complaint_department.clone(),
        d => d.to_string(),
    };
    let case = Case {
        kind: kind as i32,
        channel: IntakeChannel::Web as i32,
        category: form.category.trim().to_string(),
        department,
        title: form.title.trim().to_string(),
        description: form.description.trim().to_string(),
        contact_name: form.name.trim().to_string(),
        contact_phone: form.phone.trim().to_string(),
        ..Default::default()
    };
    let request = CreateCaseRequest {
        case: Some(case),
        owner: gw.cfg.complaint_owner.clone(),
        request_id: form.request_id.clone(),
    };
    let request = match service_request(&gw, request) {
        Ok(r) => r,
        Err(status) => return complaint_page(&gw, lang, &form, Some(&HttpError::from(status))).await,
    };
    let mut cases = CaseServiceClient::new(gw.upstreams.feedback.channel.clone());
    match cases.create_case(request).await {
        Ok(created) => {
            let number = created.into_inner().number;
            let page = shell(
                lang,
                lang.tr("已收到您的意见", "We have received your message"),
                html! {
                    div.notice role="status" {
                        p { (lang.tr("受理编号", "Reference number")) ": " strong #number { (number) } }
                        p { (lang.tr("查询进度时请告知此编号。我们会在规定时间内回复。", "Quote this number when you ask about it. We reply within our service deadlines.")) }
                    }
                },
            );
            Html(page.into_string()).into_response()
        }
        Err(status) => complaint_page(&gw, lang, &form, Some(&HttpError::from(status))).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcrm_proto::feedback::{Questionnaire, Section, ShowIf};

    fn q(id: &str, kind: QuestionKind, show_if: Option<(&str, &[&str])>) -> Question {
        Question {
            id: id.into(),
            kind: kind as i32,
            show_if: show_if.map(|(question, values)| ShowIf {
                question: question.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn answers_to_questions_hidden_by_earlier_answers_are_dropped() {
        let view = InvitationView {
            questionnaire: Some(Questionnaire {
                sections: vec![Section {
                    questions: vec![
                        q("overall", QuestionKind::Rating, None),
                        q("why", QuestionKind::FreeText, Some(("overall", &["1", "2"]))),
                        q("areas", QuestionKind::MultipleChoice, None),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let happy = answers_of(
            &view,
            &form(&[("q.overall", "5"), ("q.why", "n/a"), ("q.areas", "a"), ("q.areas", "b")]),
        );
        assert_eq!(
            happy.iter().map(|a| a.question.as_str()).collect::<Vec<_>>(),
            ["overall", "areas"]
        );
        assert_eq!(happy[0].score, Some(5));
        assert_eq!(happy[1].choices, ["a", "b"]);
        let unhappy = answers_of(&view, &form(&[("q.overall", "2"), ("q.why", " rude nurse ")]));
        assert_eq!(unhappy[1].text, "rude nurse");
        assert!(!is_token("../etc"));
        assert!(is_token("AbCdEf0123456789"));
    }
}
