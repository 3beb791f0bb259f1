//! Building a questionnaire without script: a form with one row per question and a fixed
//! number of blank rows; "add rows" sends the form back to be shown again with more blank
//! rows, keeping what was typed. The feedback service checks the questionnaire; its field
//! paths (`questionnaire.sections[0].questions[2].options`) are shown against the row they
//! are about (`q3.options`).

use super::{Authed, href, invalid, one, surveys, with_status};
use crate::api::error::{FieldViolation, HttpError};
use crate::web::page::Console;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::{
    Choice, CreateQuestionnaireRequest, Dimension, GetQuestionnaireRequest, LocalizedText, Question, QuestionKind,
    Questionnaire, Section, ShowIf, UpdateQuestionnaireRequest,
};
use http::HeaderMap;
use maud::{Markup, html};

/// Blank rows on a new questionnaire, added by "more rows", and kept below an existing one.
const NEW_ROWS: usize = 8;
const MORE_ROWS: usize = 5;
const SPARE_ROWS: usize = 3;
/// The service takes at most 100 questions; a few more rows leave room for blank ones.
const MAX_ROWS: usize = 120;

const KINDS: [(QuestionKind, &str); 5] = [
    (QuestionKind::Rating, "rating"),
    (QuestionKind::Nps, "nps"),
    (QuestionKind::SingleChoice, "single_choice"),
    (QuestionKind::MultipleChoice, "multiple_choice"),
    (QuestionKind::FreeText, "free_text"),
];

const DIMENSIONS: [(Dimension, &str); 8] = [
    (Dimension::Overall, "overall"),
    (Dimension::Attitude, "attitude"),
    (Dimension::ProfessionalSkill, "professional_skill"),
    (Dimension::Communication, "communication"),
    (Dimension::Responsiveness, "responsiveness"),
    (Dimension::ProblemSolving, "problem_solving"),
    (Dimension::Environment, "environment"),
    (Dimension::CounterService, "counter_service"),
];

/// One question row of the form, as typed.
#[derive(Debug, Default, Clone)]
struct Row {
    section_zh: String,
    section_en: String,
    id: String,
    kind: String,
    zh: String,
    en: String,
    required: bool,
    dimension: String,
    options: String,
    show_if_question: String,
    show_if_values: String,
}

impl Row {
    fn read(f: &[(String, String)], n: usize) -> Row {
        let get = |name: &str| one(f, &format!("q{n}.{name}"));
        Row {
            section_zh: get("section_zh"),
            section_en: get("section_en"),
            id: get("id"),
            kind: get("kind"),
            zh: get("zh"),
            en: get("en"),
            required: get("required") == "true",
            dimension: get("dimension"),
            options: get("options"),
            show_if_question: get("show_if_question"),
            show_if_values: get("show_if_values"),
        }
    }

    /// A row left empty is not a question (the kind and checkboxes have defaults).
    fn is_blank(&self) -> bool {
        [
            &self.id,
            &self.zh,
            &self.en,
            &self.options,
            &self.show_if_question,
            &self.show_if_values,
            &self.section_zh,
            &self.section_en,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
    }

    fn of(q: &Question, section: Option<&Section>) -> Row {
        let title = section.and_then(|s| s.title.clone()).unwrap_or_default();
        let text = q.text.clone().unwrap_or_default();
        let show_if = q.show_if.clone().unwrap_or_default();
        Row {
            section_zh: title.zh,
            section_en: title.en,
            id: q.id.clone(),
            kind: code_of_kind(q.kind).to_string(),
            zh: text.zh,
            en: text.en,
            required: q.required,
            dimension: code_of_dimension(q.dimension).to_string(),
            options: q.options.iter().map(option_line).collect::<Vec<_>>().join("\n"),
            show_if_question: show_if.question,
            show_if_values: show_if.values.join(", "),
        }
    }
}

fn code_of_kind(kind: i32) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k as i32 == kind)
        .map(|(_, code)| *code)
        .unwrap_or("")
}

fn code_of_dimension(dimension: i32) -> &'static str {
    DIMENSIONS
        .iter()
        .find(|(d, _)| *d as i32 == dimension)
        .map(|(_, code)| *code)
        .unwrap_or("")
}

fn option_line(choice: &Choice) -> String {
    let text = choice.text.clone().unwrap_or_default();
    if text.en.is_empty() {
        format!("{} | {}", choice.value, text.zh)
    } else {
        format!("{} | {} | {}", choice.value, text.zh, text.en)
    }
}

/// The whole form, as typed.
#[derive(Debug, Default, Clone)]
struct Draft {
    title_zh: String,
    title_en: String,
    description_zh: String,
    description_en: String,
    case_threshold: String,
    rows: Vec<Row>,
    /// Edit: the etag of the draft that was read. New: the retry key.
    etag: String,
    request_id: String,
}

/// Where each question and section of the built questionnaire came from (1-based rows).
#[derive(Debug, Default)]
struct RowMap {
    /// (section, question in section) → row.
    questions: Vec<((usize, usize), usize)>,
    /// The first row of each section.
    sections: Vec<usize>,
}

fn text(zh: &str, en: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        zh: zh.trim().to_string(),
        en: en.trim().to_string(),
    })
}

impl Draft {
    fn read(f: &[(String, String)]) -> Draft {
        let count = one(f, "rows").parse::<usize>().unwrap_or(NEW_ROWS).min(MAX_ROWS);
        Draft {
            title_zh: one(f, "title_zh"),
            title_en: one(f, "title_en"),
            description_zh: one(f, "description_zh"),
            description_en: one(f, "description_en"),
            case_threshold: one(f, "case_threshold"),
            rows: (1..=count).map(|n| Row::read(f, n)).collect(),
            etag: one(f, "etag"),
            request_id: one(f, "request_id"),
        }
    }

    fn of(q: &Questionnaire) -> Draft {
        let mut rows = Vec::new();
        for section in &q.sections {
            for (i, question) in section.questions.iter().enumerate() {
                // The section's title goes on its first row; the rows below continue it.
                rows.push(Row::of(question, (i == 0).then_some(section)));
            }
        }
        rows.extend(std::iter::repeat_n(Row::default(), SPARE_ROWS));
        let title = q.title.clone().unwrap_or_default();
        let description = q.description.clone().unwrap_or_default();
        Draft {
            title_zh: title.zh,
            title_en: title.en,
            description_zh: description.zh,
            description_en: description.en,
            case_threshold: if q.case_threshold == 0 {
                String::new()
            } else {
                q.case_threshold.to_string()
            },
            rows,
            etag: q.etag.clone(),
            request_id: String::new(),
        }
    }

    fn add_rows(&mut self, n: usize) {
        let room = MAX_ROWS.saturating_sub(self.rows.len());
        self.rows.extend(std::iter::repeat_n(Row::default(), n.min(room)));
    }

    /// The questionnaire the rows describe, or the fields that cannot be read (numbers, option
    /// lines); everything else is for the service to judge.
    fn build(&self) -> Result<(Questionnaire, RowMap), HttpError> {
        let mut wrong = Vec::new();
        let case_threshold = match self.case_threshold.trim() {
            "" => 0,
            t => t.parse::<i32>().unwrap_or_else(|_| {
                wrong.push((
                    "case_threshold".to_string(),
                    "must be a whole number 1–5, or empty".to_string(),
                ));
                0
            }),
        };
        let mut sections: Vec<Section> = Vec::new();
        let mut map = RowMap::default();
        for (index, row) in self.rows.iter().enumerate() {
            let n = index + 1;
            if row.is_blank() {
                continue;
            }
            let title = (row.section_zh.trim().to_string(), row.section_en.trim().to_string());
            let continues = sections.last().is_some_and(|s| {
                let t = s.title.clone().unwrap_or_default();
                (title.0.is_empty() && title.1.is_empty()) || (t.zh == title.0 && t.en == title.1)
            });
            if !continues {
                sections.push(Section {
                    title: text(&title.0, &title.1),
                    questions: Vec::new(),
                });
                map.sections.push(n);
            }
            let options = match parse_options(&row.options) {
                Ok(options) => options,
                Err(line) => {
                    wrong.push((
                        format!("q{n}.options"),
                        format!("line {line}: write one option per line as `code | 中文 | English`"),
                    ));
                    Vec::new()
                }
            };
            let show_if =
                (!row.show_if_question.trim().is_empty() || !row.show_if_values.trim().is_empty()).then(|| ShowIf {
                    question: row.show_if_question.trim().to_string(),
                    values: row
                        .show_if_values
                        .split([',', '，', ' ', ';', '；'])
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(String::from)
                        .collect(),
                });
            let question = Question {
                id: row.id.trim().to_string(),
                kind: KINDS
                    .iter()
                    .find(|(_, code)| *code == row.kind)
                    .map(|(k, _)| *k as i32)
                    .unwrap_or(0),
                text: text(&row.zh, &row.en),
                required: row.required,
                options,
                dimension: DIMENSIONS
                    .iter()
                    .find(|(_, code)| *code == row.dimension)
                    .map(|(d, _)| *d as i32)
                    .unwrap_or(0),
                show_if,
            };
            let s = sections.len() - 1;
            let section = &mut sections[s];
            map.questions.push(((s, section.questions.len()), n));
            section.questions.push(question);
        }
        if let Some(err) = invalid(wrong) {
            return Err(err);
        }
        let questionnaire = Questionnaire {
            title: text(&self.title_zh, &self.title_en),
            description: text(&self.description_zh, &self.description_en),
            sections,
            case_threshold,
            ..Default::default()
        };
        Ok((questionnaire, map))
    }
}

/// Options, one per line: `code | 中文 | English` (English optional). Err: the 1-based line
/// that cannot be read.
fn parse_options(textarea: &str) -> Result<Vec<Choice>, usize> {
    let mut options = Vec::new();
    for (i, line) in textarea.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(['|', '｜']).map(str::trim).collect();
        if parts.len() < 2 || parts.len() > 3 || parts[0].is_empty() {
            return Err(i + 1);
        }
        options.push(Choice {
            value: parts[0].to_string(),
            text: text(parts[1], parts.get(2).copied().unwrap_or("")),
        });
    }
    Ok(options)
}

/// `[2]` at the start of `text` after `name`: the index and what follows (without a dot).
fn split_index<'a>(text: &'a str, name: &str) -> Option<(usize, &'a str)> {
    let rest = text.strip_prefix(name)?.strip_prefix('[')?;
    let end = rest.find(']')?;
    let index = rest[..end].parse().ok()?;
    let after = &rest[end + 1..];
    Some((index, after.strip_prefix('.').unwrap_or(after)))
}

fn question_field(sub: &str) -> &str {
    let head = sub.split(['.', '[']).next().unwrap_or(sub);
    match head {
        "text" if sub == "text.en" => "en",
        "text" => "zh",
        "show_if" if sub.ends_with("values") => "show_if_values",
        "show_if" => "show_if_question",
        other => other,
    }
}

/// The form field a service field path is about.
fn form_field(path: &str, map: &RowMap) -> String {
    let p = path.strip_prefix("questionnaire.").unwrap_or(path);
    if let Some((s, rest)) = split_index(p, "sections") {
        if let Some((i, sub)) = split_index(rest, "questions") {
            if let Some((_, row)) = map.questions.iter().find(|(at, _)| *at == (s, i)) {
                return format!("q{row}.{}", question_field(sub));
            }
        } else if rest.starts_with("title")
            && let Some(row) = map.sections.get(s)
        {
            let field = if rest == "title.en" { "section_en" } else { "section_zh" };
            return format!("q{row}.{field}");
        }
        return path.to_string();
    }
    match p {
        "title" | "title.zh" => "title_zh",
        "title.en" => "title_en",
        "description" | "description.zh" => "description_zh",
        "description.en" => "description_en",
        "sections" => "questions",
        other => other,
    }
    .to_string()
}

/// The service's error with its fields renamed to the form's.
fn on_form(mut err: HttpError, map: &RowMap) -> HttpError {
    for v in err.field_violations.iter_mut() {
        v.field = form_field(&v.field, map);
    }
    err
}

fn violations_of<'a>(error: Option<&'a HttpError>, prefix: &str) -> Vec<&'a FieldViolation> {
    error
        .map(|e| {
            e.field_violations
                .iter()
                .filter(|v| v.field.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// The rows an error names (`q3.options` → 3), in order.
fn rows_with_errors(error: Option<&HttpError>) -> Vec<usize> {
    let mut rows: Vec<usize> = error
        .map(|e| {
            e.field_violations
                .iter()
                .filter_map(|v| v.field.strip_prefix('q')?.split('.').next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    rows.sort_unstable();
    rows.dedup();
    rows
}

fn row_markup(c: &Console, n: usize, row: &Row, error: Option<&HttpError>) -> Markup {
    let wrong = violations_of(error, &format!("q{n}."));
    let name = |field: &str| format!("q{n}.{field}");
    html! {
        fieldset.card.question-row id=(format!("row-{n}")) data-row=(n) {
            legend { (c.tr("问题", "Question")) " " (n) }
            @if !wrong.is_empty() {
                div.error role="alert" data-row-error=(n) {
                    ul { @for v in &wrong { li data-field=(v.field) { code { (v.field) } ": " (v.description) } } }
                }
            }
            div.grid {
                label { (c.tr("分节标题（中文，留空则接上一节）", "Section title, Chinese (blank: same section)"))
                    input name=(name("section_zh")) value=(row.section_zh) maxlength="500"; }
                label { (c.tr("分节标题（英文）", "Section title, English"))
                    input name=(name("section_en")) value=(row.section_en) maxlength="500"; }
                label { (c.tr("编号（字母、数字、_ -）", "Id (letters, digits, _ -)"))
                    input name=(name("id")) value=(row.id) maxlength="40"; }
                label { (c.tr("题型", "Kind"))
                    select name=(name("kind")) {
                        option value="" { "—" }
                        @for (kind, code) in KINDS {
                            option value=(code) selected[row.kind == code] { (super::kind_name(c, kind as i32)) }
                        }
                    }
                }
                label { (c.tr("满意度维度（仅评分题）", "Satisfaction dimension (ratings only)"))
                    select name=(name("dimension")) {
                        option value="" { "—" }
                        @for (dimension, code) in DIMENSIONS {
                            option value=(code) selected[row.dimension == code] { (super::dimension_name(c, dimension as i32)) }
                        }
                    }
                }
                label { input type="checkbox" name=(name("required")) value="true" checked[row.required]; " " (c.tr("必答", "Required")) }
            }
            label { (c.tr("题目（中文）", "Question, Chinese")) input name=(name("zh")) value=(row.zh) maxlength="500"; }
            label { (c.tr("题目（英文）", "Question, English")) input name=(name("en")) value=(row.en) maxlength="500"; }
            label { (c.tr("选项（单选、多选题；每行一个：代码 | 中文 | English）", "Options (choice questions; one per line: code | 中文 | English)"))
                textarea name=(name("options")) rows="3" { (row.options) } }
            div.grid {
                label { (c.tr("仅当此前问题（编号）", "Show only if earlier question (id)"))
                    input name=(name("show_if_question")) value=(row.show_if_question) maxlength="40"; }
                label { (c.tr("的回答为（逗号分隔，如 1,2 或选项代码）", "was answered (comma-separated, e.g. 1,2 or option codes)"))
                    input name=(name("show_if_values")) value=(row.show_if_values); }
            }
        }
    }
}

fn help(c: &Console) -> Markup {
    html! {
        details.card #how-to open {
            summary { (c.tr("填写说明", "How to fill this in")) }
            ul {
                li { (c.tr("每个问题一行；空着的行会被忽略。需要更多行时点“增加行”，已填内容会保留。",
                           "One question per row; empty rows are ignored. Need more rows? Press “Add rows”: what you typed is kept.")) }
                li { (c.tr("编号在问卷内唯一，只用字母、数字、_ 或 -，例如 attitude、q1。",
                           "The id is unique within the questionnaire: letters, digits, _ or -, e.g. attitude, q1.")) }
                li { (c.tr("评分题 1–5 分，计入所选满意度维度（不选则计入“总体”）；推荐度 0–10 分。",
                           "Ratings are 1–5 and count towards the chosen dimension (none: overall); NPS is 0–10.")) }
                li { (c.tr("单选、多选题至少两个选项，每行一个：代码 | 中文 | English，例如 parking | 停车难 | Parking。",
                           "Choice questions need two options or more, one per line: code | 中文 | English, e.g. parking | 停车难 | Parking.")) }
                li { (c.tr("条件显示：填写前面某题的编号，以及使本题出现的回答（评分写数字，选择题写选项代码）。",
                           "Show-if: the id of an earlier question and the answers that show this one (digits for ratings, option codes for choices).")) }
                li { (c.tr("分节：在某行填写分节标题即开始新的一节，下面留空的行属于同一节。",
                           "Sections: a section title on a row starts a new section; rows below with no title belong to it.")) }
                li { (c.tr("保存只修改草稿；患者只会看到发布后的版本。",
                           "Saving changes the draft only; patients see published versions.")) }
            }
        }
    }
}

fn editor_page(c: &Console, title: &str, action: &str, draft: &Draft, error: Option<&HttpError>) -> Response {
    let wrong_rows = rows_with_errors(error);
    let body = html! {
        @if let Some(err) = error { (c.error_box(err)) }
        @if !wrong_rows.is_empty() {
            p #wrong-rows { (c.tr("有误的问题：", "Questions to correct: "))
                @for n in &wrong_rows { a href={ "#row-" (n) } { (c.tr("问题", "question")) " " (n) } " " } }
        }
        (help(c))
        form.card #questionnaire-form method="post" action=(action) {
            (c.csrf_field())
            input type="hidden" name="rows" value=(draft.rows.len());
            @if !draft.etag.is_empty() { input type="hidden" name="etag" value=(draft.etag); }
            @if !draft.request_id.is_empty() { input type="hidden" name="request_id" value=(draft.request_id); }
            div.grid {
                label { (c.tr("标题（中文）", "Title, Chinese")) input name="title_zh" value=(draft.title_zh) maxlength="500"; }
                label { (c.tr("标题（英文）", "Title, English")) input name="title_en" value=(draft.title_en) maxlength="500"; }
            }
            label { (c.tr("说明（中文，患者在问卷开头看到）", "Description, Chinese (shown to patients at the top)"))
                textarea name="description_zh" rows="2" { (draft.description_zh) } }
            label { (c.tr("说明（英文）", "Description, English")) textarea name="description_en" rows="2" { (draft.description_en) } }
            label { (c.tr("评分不高于此分数时自动立案（1–5，留空用系统默认）", "Open a case for a rating at or below (1–5; empty: the service default)"))
                input name="case_threshold" value=(draft.case_threshold) inputmode="numeric" maxlength="2"; }
            h2 { (c.tr("问题", "Questions")) }
            @for (i, row) in draft.rows.iter().enumerate() { (row_markup(c, i + 1, row, error)) }
            button type="submit" name="action" value="save" { (c.tr("保存草稿", "Save draft")) }
            " "
            button.secondary type="submit" name="action" value="more" formnovalidate { (c.tr("增加行", "Add rows")) }
        }
    };
    with_status(c.page(title, body), error)
}

pub async fn new_form(c: Console) -> Response {
    let draft = Draft {
        rows: vec![Row::default(); NEW_ROWS],
        request_id: hcrm_kit::new_id(),
        ..Default::default()
    };
    editor_page(
        &c,
        c.tr("新建问卷", "New questionnaire"),
        "/console/surveys/new",
        &draft,
        None,
    )
}

/// The form of a POST after its CSRF check, and whether it only asks for more rows.
fn read_form(c: &Console, headers: &HeaderMap, body: &[u8]) -> Result<(Draft, bool), HttpError> {
    c.form::<serde::de::IgnoredAny>(headers, body)?;
    let f = super::fields(body);
    let mut draft = Draft::read(&f);
    let more = one(&f, "action") == "more";
    if more {
        draft.add_rows(MORE_ROWS);
    }
    Ok((draft, more))
}

pub async fn create(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let title = c.tr("新建问卷", "New questionnaire");
    let action = "/console/surveys/new";
    let draft = match read_form(&c, &headers, &body) {
        Ok((draft, false)) => draft,
        Ok((draft, true)) => return editor_page(&c, title, action, &draft, None),
        Err(err) => return c.error(err),
    };
    let (questionnaire, map) = match draft.build() {
        Ok(built) => built,
        Err(err) => return editor_page(&c, title, action, &draft, Some(&err)),
    };
    let created = surveys(&c)
        .create_questionnaire(CreateQuestionnaireRequest {
            questionnaire: Some(questionnaire),
            request_id: draft.request_id.clone(),
        })
        .await;
    match created {
        Ok(q) => Redirect::to(&href(&q.into_inner().name)).into_response(),
        Err(status) => editor_page(&c, title, action, &draft, Some(&on_form(status.into(), &map))),
    }
}

async fn draft_of(client: &mut SurveyServiceClient<Authed>, name: &str) -> Result<Questionnaire, tonic::Status> {
    client
        .get_questionnaire(GetQuestionnaireRequest {
            name: name.to_string(),
            version: 0,
        })
        .await
        .map(|r| r.into_inner())
}

fn edit_title(c: &Console) -> &'static str {
    c.tr("编辑问卷草稿", "Edit the questionnaire draft")
}

pub async fn edit_form(c: Console, Path(id): Path<String>) -> Response {
    match draft_of(&mut surveys(&c), &format!("questionnaires/{id}")).await {
        Ok(q) => {
            let action = format!("/console/surveys/{id}/edit");
            editor_page(&c, edit_title(&c), &action, &Draft::of(&q), None)
        }
        Err(status) => c.error(status),
    }
}

pub async fn update(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let action = format!("/console/surveys/{id}/edit");
    let draft = match read_form(&c, &headers, &body) {
        Ok((draft, false)) => draft,
        Ok((draft, true)) => return editor_page(&c, edit_title(&c), &action, &draft, None),
        Err(err) => return c.error(err),
    };
    let (mut questionnaire, map) = match draft.build() {
        Ok(built) => built,
        Err(err) => return editor_page(&c, edit_title(&c), &action, &draft, Some(&err)),
    };
    questionnaire.name = format!("questionnaires/{id}");
    let updated = surveys(&c)
        .update_questionnaire(UpdateQuestionnaireRequest {
            questionnaire: Some(questionnaire),
            etag: draft.etag.clone(),
        })
        .await;
    match updated {
        Ok(q) => Redirect::to(&href(&q.into_inner().name)).into_response(),
        Err(status) => editor_page(&c, edit_title(&c), &action, &draft, Some(&on_form(status.into(), &map))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn rows_become_sections_and_questions_and_errors_come_back_to_their_rows() {
        let f = form(&[
            ("rows", "4"),
            ("title_zh", "出院调查"),
            ("q1.section_zh", "总体"),
            ("q1.id", "overall"),
            ("q1.kind", "rating"),
            ("q1.zh", "总体满意度"),
            ("q1.dimension", "overall"),
            ("q1.required", "true"),
            ("q3.section_zh", "环境"),
            ("q3.id", "areas"),
            ("q3.kind", "multiple_choice"),
            ("q3.zh", "哪些方面"),
            ("q3.options", "parking | 停车 | Parking\nfood | 饮食"),
            ("q3.show_if_question", "overall"),
            ("q3.show_if_values", "1, 2"),
        ]);
        let (q, map) = Draft::read(&f).build().unwrap();
        assert_eq!(q.sections.len(), 2);
        assert_eq!(q.sections[1].questions[0].options[1].value, "food");
        assert_eq!(q.sections[1].questions[0].show_if.as_ref().unwrap().values, ["1", "2"]);
        assert!(q.sections[0].questions[0].required);
        assert_eq!(
            form_field("questionnaire.sections[1].questions[0].options[1].text.zh", &map),
            "q3.options"
        );
        assert_eq!(form_field("questionnaire.sections[1].title.en", &map), "q3.section_en");
        assert_eq!(form_field("questionnaire.sections[0].questions[0].text", &map), "q1.zh");
        assert_eq!(form_field("questionnaire.title", &map), "title_zh");

        let wrong = Draft::read(&form(&[
            ("rows", "1"),
            ("case_threshold", "two"),
            ("q1.id", "x"),
            ("q1.options", "just-one-part"),
        ]))
        .build()
        .unwrap_err();
        let fields: Vec<&str> = wrong.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["case_threshold", "q1.options"]);
    }

    #[test]
    fn a_questionnaire_read_back_into_rows_builds_the_same_questionnaire() {
        let f = form(&[
            ("rows", "2"),
            ("title_zh", "t"),
            ("q1.section_zh", "s"),
            ("q1.section_en", "S"),
            ("q1.id", "a"),
            ("q1.kind", "single_choice"),
            ("q1.zh", "问"),
            ("q1.options", "y | 是 | Yes\nn | 否"),
            ("q2.id", "b"),
            ("q2.kind", "free_text"),
            ("q2.zh", "说明"),
            ("q2.show_if_question", "a"),
            ("q2.show_if_values", "n"),
        ]);
        let (q, _) = Draft::read(&f).build().unwrap();
        let (again, _) = Draft::of(&q).build().unwrap();
        assert_eq!(q, again);
    }
}
