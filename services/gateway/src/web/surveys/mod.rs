//! Surveys and reports: building questionnaires (drafts, published versions), inviting
//! patients, the satisfaction results, and the monthly analysis and complaint reports.
//!
//! The feedback service decides who may do what and what a valid questionnaire is; these pages
//! only turn forms into requests and the service's answers (field errors included) back into
//! pages.

mod editor;
mod invitations;
mod questionnaire;
mod reports;
mod results;

use super::page::{Authed, Console};
use crate::api::error::HttpError;
use crate::state::Gateway;
use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use hcrm_proto::feedback::report_service_client::ReportServiceClient;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::{Dimension, InvitationState, LocalizedText, QuestionKind, QuestionnaireState};
use std::sync::Arc;

/// The routes of this area, merged into the console by `web::router`.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/console/surveys", get(questionnaire::list))
        .route("/console/surveys/results", get(results::show))
        .route("/console/reports", get(reports::show))
        .route("/console/surveys/new", get(editor::new_form).post(editor::create))
        .route("/console/surveys/{id}", get(questionnaire::show))
        .route(
            "/console/surveys/{id}/edit",
            get(editor::edit_form).post(editor::update),
        )
        .route("/console/surveys/{id}/publish", post(questionnaire::publish))
        .route("/console/surveys/{id}/preview", get(questionnaire::preview))
        .route("/console/surveys/{id}/invitations", post(invitations::create))
}

fn surveys(c: &Console) -> SurveyServiceClient<Authed> {
    SurveyServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel))
}

fn reports(c: &Console) -> ReportServiceClient<Authed> {
    ReportServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel))
}

/// The page's path for a questionnaire resource name.
fn href(name: &str) -> String {
    format!("/console/surveys/{}", name.trim_start_matches("questionnaires/"))
}

/// Text in the member's language, else in the other one.
fn local(c: &Console, text: &Option<LocalizedText>) -> String {
    super::page::localized(c.lang, text)
}

fn kind_name(c: &Console, kind: i32) -> &'static str {
    match QuestionKind::try_from(kind).unwrap_or_default() {
        QuestionKind::Rating => c.tr("评分（1–5）", "rating (1–5)"),
        QuestionKind::Nps => c.tr("推荐度（0–10）", "NPS (0–10)"),
        QuestionKind::SingleChoice => c.tr("单选", "single choice"),
        QuestionKind::MultipleChoice => c.tr("多选", "multiple choice"),
        QuestionKind::FreeText => c.tr("文字", "free text"),
        QuestionKind::Unspecified => "—",
    }
}

fn dimension_name(c: &Console, dimension: i32) -> &'static str {
    match Dimension::try_from(dimension).unwrap_or_default() {
        Dimension::Attitude => c.tr("服务态度", "attitude"),
        Dimension::ProfessionalSkill => c.tr("专业技术", "professional skill"),
        Dimension::Communication => c.tr("沟通", "communication"),
        Dimension::Responsiveness => c.tr("响应及时", "responsiveness"),
        Dimension::ProblemSolving => c.tr("解决问题", "problem solving"),
        Dimension::Environment => c.tr("就医环境", "environment"),
        Dimension::CounterService => c.tr("窗口服务", "counter service"),
        Dimension::Overall => c.tr("总体", "overall"),
        Dimension::Unspecified => c.tr("全部维度", "all dimensions"),
    }
}

fn state_name(c: &Console, state: i32) -> &'static str {
    match QuestionnaireState::try_from(state).unwrap_or_default() {
        QuestionnaireState::Draft => c.tr("草稿", "draft"),
        QuestionnaireState::Published => c.tr("已发布", "published"),
        QuestionnaireState::Unspecified => "—",
    }
}

fn invitation_state_name(c: &Console, state: i32) -> &'static str {
    match InvitationState::try_from(state).unwrap_or_default() {
        InvitationState::Open => c.tr("待回答", "open"),
        InvitationState::Answered => c.tr("已回答", "answered"),
        InvitationState::Expired => c.tr("已过期", "expired"),
        InvitationState::Unspecified => "—",
    }
}

/// A page answered with an error's status (the form is shown again with the error above it).
fn with_status(mut response: Response, error: Option<&HttpError>) -> Response {
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

/// A urlencoded body as its fields, repeated ones included (after `Console::form` checked it).
fn fields(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn one(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn all(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// An INVALID_ARGUMENT naming several fields at once.
fn invalid(violations: Vec<(String, String)>) -> Option<HttpError> {
    let mut iter = violations.into_iter();
    let (field, description) = iter.next()?;
    let mut err = HttpError::invalid(&field, description);
    for (field, description) in iter {
        err.field_violations
            .push(crate::api::error::FieldViolation { field, description });
    }
    Some(err)
}

/// A month as (year, month 1–12).
type Month = (i32, u32);

/// A `YYYY-MM` month.
fn parse_month(text: &str) -> Option<Month> {
    let (y, m) = text.trim().split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let year: i32 = y.parse().ok()?;
    let month: u32 = m.parse().ok()?;
    (1..=12).contains(&month).then_some((year, month))
}

fn month_text((year, month): Month) -> String {
    format!("{year:04}-{month:02}")
}

fn add_months((year, month): Month, n: i32) -> Month {
    let k = year * 12 + month as i32 - 1 + n;
    (k.div_euclid(12), k.rem_euclid(12) as u32 + 1)
}

/// The month of today in the hospital's zone.
fn this_month(c: &Console) -> Month {
    use chrono::Datelike;
    let today = super::dashboard::today(c);
    (today.year(), today.month())
}

/// The months from `from` to `to`, inclusive (at most `limit`).
fn months_between(from: Month, to: Month, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = from;
    while at <= to && out.len() < limit {
        out.push(month_text(at));
        at = add_months(at, 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_read_and_counted_across_years() {
        assert_eq!(parse_month("2026-06"), Some((2026, 6)));
        for bad in ["2026-13", "2026-6", "26-06", "2026/06", ""] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
        assert_eq!(add_months((2026, 1), -1), (2025, 12));
        assert_eq!(add_months((2025, 11), 3), (2026, 2));
        assert_eq!(
            months_between((2025, 11), (2026, 2), 36),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert!(months_between((2026, 3), (2026, 2), 36).is_empty());
    }
}
