//! Follow-up templates (admins and the inspection group write them; the service says who may):
//! the list, a template's page with its versions, creating, revising and archiving.
//!
//! The schedule, the questions and the recovery-score items are typed one per line with the
//! parts separated by `|`, so a template fits on one form; the page explains the format.

use super::plans::split_list;
use super::{
    CHANNELS, Entries, channel_key, channel_label, channel_typed, etag_of, id_of, kind_label, read_form, request_id,
    subnav, template_client, template_state_tag, with_status,
};
use crate::api::error::{FieldViolation, HttpError};
use crate::web::page::{Console, Lang, url_encode};
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_proto::followup::{
    Applicability, ArchiveTemplateRequest, Channel, ChronicRules, CreateTemplateRequest, GetTemplateRequest,
    ListTemplatesRequest, Question, ReviseTemplateRequest, ScheduleStep, ScoreItem, ScoreTemplate, Template,
    TemplateKind, TemplateState,
};
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;

/// Wrong fields of a form, all of them at once.
#[derive(Debug, Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, field: &str, description: String) {
        self.0.push((field.to_string(), description));
    }

    fn finish(self) -> Result<(), HttpError> {
        let mut all = self.0.into_iter();
        let Some((field, description)) = all.next() else {
            return Ok(());
        };
        let mut err = HttpError::invalid(&field, description);
        err.field_violations
            .extend(all.map(|(field, description)| FieldViolation { field, description }));
        Err(err)
    }
}

/// "step 2: " in the page's language, for the numbered lines of a list field.
fn nth(lang: Lang, what: Section, n: usize) -> String {
    let (zh, en) = match what {
        Section::Schedule => ("第 {} 步", "step {}"),
        Section::Questions => ("第 {} 个问题", "question {}"),
        Section::Score => ("第 {} 项评分", "score item {}"),
    };
    let pattern = lang.tr(zh, en);
    format!("{}: ", pattern.replace("{}", &n.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Schedule,
    Questions,
    Score,
}

impl Section {
    fn field(self) -> &'static str {
        match self {
            Section::Schedule => "schedule",
            Section::Questions => "questions",
            Section::Score => "score",
        }
    }

    /// The request path prefix the service uses for the numbered entries of this field.
    fn service_path(self) -> &'static str {
        match self {
            Section::Schedule => "template.schedule[",
            Section::Questions => "template.questions[",
            Section::Score => "template.score.items[",
        }
    }
}

/// The parts of a typed line, split at `|` (or the full-width `｜`).
fn cells(line: &str) -> Vec<&str> {
    line.split(['|', '｜']).map(str::trim).collect()
}

/// The non-empty lines of a list field.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

fn is_yes(text: &str) -> bool {
    matches!(
        text.trim().to_lowercase().as_str(),
        "notify" | "yes" | "y" | "true" | "是" | "通知" | "提醒"
    )
}

fn is_lower(text: &str) -> bool {
    matches!(
        text.trim().to_lowercase().as_str(),
        "lower" | "lower_is_better" | "越低越好" | "低" | "yes" | "是"
    )
}

fn parse_steps(lang: Lang, text: &str, p: &mut Problems) -> Vec<ScheduleStep> {
    let mut steps = Vec::new();
    for (i, line) in lines(text).enumerate() {
        let at = nth(lang, Section::Schedule, i + 1);
        let parts = cells(line);
        if parts.len() > 5 {
            p.add("schedule", format!("{at}{}", lang.tr("最多 5 部分", "at most 5 parts")));
            continue;
        }
        let part = |k: usize| parts.get(k).copied().unwrap_or("");
        let Ok(offset_days) = part(0).parse::<i32>() else {
            p.add(
                "schedule",
                format!(
                    "{at}{}",
                    lang.tr("天数应为整数", "the days after the anchor must be a whole number")
                ),
            );
            continue;
        };
        let window_days = match part(1) {
            "" => 0,
            w => match w.parse::<i32>() {
                Ok(w) => w,
                Err(_) => {
                    p.add(
                        "schedule",
                        format!(
                            "{at}{}",
                            lang.tr("窗口天数应为整数", "the window must be a whole number of days")
                        ),
                    );
                    continue;
                }
            },
        };
        let Some(channel) = channel_typed(part(2)) else {
            p.add(
                "schedule",
                format!("{at}{} {:?}", lang.tr("不认识的方式", "unknown channel"), part(2)),
            );
            continue;
        };
        steps.push(ScheduleStep {
            offset_days,
            window_days,
            channel: channel as i32,
            purpose: part(3).to_string(),
            notify_patient: is_yes(part(4)),
        });
    }
    steps
}

fn parse_questions(lang: Lang, text: &str, p: &mut Problems) -> Vec<Question> {
    let mut questions = Vec::new();
    for (i, line) in lines(text).enumerate() {
        match line.split_once(['|', '｜']) {
            Some((key, text)) => questions.push(Question {
                key: key.trim().to_string(),
                text: text.trim().to_string(),
            }),
            None => p.add(
                "questions",
                format!(
                    "{}{}",
                    nth(lang, Section::Questions, i + 1),
                    lang.tr("格式应为 “键 | 问题”", "write it as “key | question”")
                ),
            ),
        }
    }
    questions
}

fn parse_score(lang: Lang, text: &str, p: &mut Problems) -> Vec<ScoreItem> {
    let mut items = Vec::new();
    for (i, line) in lines(text).enumerate() {
        let at = nth(lang, Section::Score, i + 1);
        let parts = cells(line);
        if !(5..=6).contains(&parts.len()) {
            p.add(
                "score",
                format!(
                    "{at}{}",
                    lang.tr(
                        "格式应为 “键 | 名称 | 权重 | 最小值 | 最大值 | lower（可选）”",
                        "write it as “key | label | weight | min | max | lower (optional)”"
                    )
                ),
            );
            continue;
        }
        let number = |k: usize| parts[k].replace(',', ".").parse::<f64>().ok().filter(|v| v.is_finite());
        let (Some(weight), Some(min), Some(max)) = (number(2), number(3), number(4)) else {
            p.add(
                "score",
                format!(
                    "{at}{}",
                    lang.tr("权重、最小值和最大值应为数字", "weight, min and max must be numbers")
                ),
            );
            continue;
        };
        items.push(ScoreItem {
            key: parts[0].to_string(),
            label: parts[1].to_string(),
            weight,
            min,
            max,
            lower_is_better: parts.get(5).is_some_and(|t| is_lower(t)),
        });
    }
    items
}

fn parse_int(lang: Lang, e: &Entries, field: &str, p: &mut Problems) -> i32 {
    match e.text(field).parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            p.add(field, lang.tr("应为整数", "must be a whole number").to_string());
            0
        }
    }
}

fn parse_chronic(lang: Lang, e: &Entries, p: &mut Problems) -> ChronicRules {
    let mut early = Vec::new();
    for part in split_list(e.get("chronic_early_intervals_days")) {
        match part.parse::<i32>() {
            Ok(d) => early.push(d),
            Err(_) => p.add(
                "chronic_early_intervals_days",
                lang.tr(
                    "应为用逗号分隔的天数，如 3, 4",
                    "must be days separated by commas, e.g. 3, 4",
                )
                .to_string(),
            ),
        }
    }
    ChronicRules {
        measure: e.text("chronic_measure"),
        systolic_below: parse_int(lang, e, "chronic_systolic_below", p),
        diastolic_below: parse_int(lang, e, "chronic_diastolic_below", p),
        stable_after: parse_int(lang, e, "chronic_stable_after", p),
        early_intervals_days: early,
        stable_interval_days: parse_int(lang, e, "chronic_stable_interval_days", p),
        max_interval_days: parse_int(lang, e, "chronic_max_interval_days", p),
        maintenance_after: parse_int(lang, e, "chronic_maintenance_after", p),
    }
}

/// The template a form describes; what it means (ranges, weights adding up to 100, distinct
/// offsets) is the service's to check.
fn template_of(lang: Lang, e: &Entries) -> Result<Template, HttpError> {
    let mut p = Problems::default();
    let kind = match e.text("kind").as_str() {
        "scheduled" => TemplateKind::Scheduled,
        "chronic" => TemplateKind::Chronic,
        "" => TemplateKind::Unspecified,
        _ => {
            p.add(
                "kind",
                lang.tr("应为定期随访或慢病管理", "must be scheduled or chronic")
                    .to_string(),
            );
            TemplateKind::Unspecified
        }
    };
    let default_channel = channel_typed(e.get("default_channel")).unwrap_or_else(|| {
        p.add(
            "default_channel",
            lang.tr("不认识的方式", "unknown channel").to_string(),
        );
        Channel::Unspecified
    });
    let chronic = kind == TemplateKind::Chronic;
    let schedule = parse_steps(lang, e.get("schedule"), &mut p);
    let rules = chronic.then(|| parse_chronic(lang, e, &mut p));
    let questions = parse_questions(lang, e.get("questions"), &mut p);
    let items = parse_score(lang, e.get("score"), &mut p);
    p.finish()?;
    Ok(Template {
        display_name: e.text("display_name"),
        description: e.text("description"),
        kind: kind as i32,
        applies_to: Some(Applicability {
            departments: split_list(e.get("departments")),
            diagnosis_prefixes: split_list(e.get("diagnosis_prefixes")),
            on_discharge: e.get("on_discharge") == "true",
        }),
        schedule,
        default_channel: default_channel as i32,
        questions,
        score: (!items.is_empty()).then_some(ScoreTemplate { items }),
        chronic: rules,
        ..Default::default()
    })
}

/// Points the service's numbered field paths (`template.schedule[1].offset_days`) at the line
/// staff typed, so the form's own field is named with the step.
fn annotate(lang: Lang, mut err: HttpError) -> HttpError {
    for v in &mut err.field_violations {
        for section in [Section::Schedule, Section::Questions, Section::Score] {
            let Some(rest) = v.field.strip_prefix(section.service_path()) else {
                continue;
            };
            if let Some(n) = rest.split(']').next().and_then(|n| n.parse::<usize>().ok()) {
                v.description = format!("{} → {}{}", v.field, nth(lang, section, n + 1), v.description);
                v.field = section.field().to_string();
            }
        }
    }
    err
}

fn fmt_number(v: f64) -> String {
    format!("{v}")
}

fn schedule_lines(t: &Template) -> String {
    t.schedule
        .iter()
        .map(|s| {
            let channel = channel_key(Channel::try_from(s.channel).unwrap_or_default());
            let notify = if s.notify_patient { " | notify" } else { "" };
            format!(
                "{} | {} | {} | {}{notify}",
                s.offset_days, s.window_days, channel, s.purpose
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn question_lines(t: &Template) -> String {
    t.questions
        .iter()
        .map(|q| format!("{} | {}", q.key, q.text))
        .collect::<Vec<_>>()
        .join("\n")
}

fn score_lines(t: &Template) -> String {
    let items = t.score.as_ref().map(|s| s.items.as_slice()).unwrap_or(&[]);
    items
        .iter()
        .map(|i| {
            let lower = if i.lower_is_better { " | lower" } else { "" };
            format!(
                "{} | {} | {} | {} | {}{lower}",
                i.key,
                i.label,
                fmt_number(i.weight),
                fmt_number(i.min),
                fmt_number(i.max)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A template as the entries of the editor (to revise it).
fn entries_of(t: &Template) -> Entries {
    let applies = t.applies_to.clone().unwrap_or_default();
    let kind = match TemplateKind::try_from(t.kind).unwrap_or_default() {
        TemplateKind::Chronic => "chronic",
        _ => "scheduled",
    };
    let mut fields: Vec<(&str, String)> = vec![
        ("display_name", t.display_name.clone()),
        ("description", t.description.clone()),
        ("kind", kind.into()),
        (
            "default_channel",
            channel_key(Channel::try_from(t.default_channel).unwrap_or_default()).into(),
        ),
        ("departments", applies.departments.join(", ")),
        ("diagnosis_prefixes", applies.diagnosis_prefixes.join(", ")),
        ("schedule", schedule_lines(t)),
        ("questions", question_lines(t)),
        ("score", score_lines(t)),
    ];
    if applies.on_discharge {
        fields.push(("on_discharge", "true".into()));
    }
    if let Some(r) = &t.chronic {
        let early: Vec<String> = r.early_intervals_days.iter().map(|d| d.to_string()).collect();
        fields.extend([
            ("chronic_measure", r.measure.clone()),
            ("chronic_systolic_below", r.systolic_below.to_string()),
            ("chronic_diastolic_below", r.diastolic_below.to_string()),
            ("chronic_stable_after", r.stable_after.to_string()),
            ("chronic_early_intervals_days", early.join(", ")),
            ("chronic_stable_interval_days", r.stable_interval_days.to_string()),
            ("chronic_max_interval_days", r.max_interval_days.to_string()),
            ("chronic_maintenance_after", r.maintenance_after.to_string()),
        ]);
    }
    Entries(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A fresh editor: a scheduled template and the usual hypertension thresholds for a chronic one.
fn fresh() -> Entries {
    Entries::default()
        .or("kind", "scheduled")
        .or("default_channel", "phone")
        .or("chronic_measure", "blood_pressure")
        .or("chronic_systolic_below", "140")
        .or("chronic_diastolic_below", "90")
        .or("chronic_stable_after", "3")
        .or("chronic_early_intervals_days", "3, 4")
        .or("chronic_stable_interval_days", "7")
        .or("chronic_max_interval_days", "30")
        .or("chronic_maintenance_after", "8")
        .or("request_id", hcrm_kit::new_id())
}

/// How the list fields are typed, with examples.
fn format_help(c: &Console) -> Markup {
    html! {
        details.card #format-help open {
            summary { (c.tr("填写说明", "How to fill in the lists")) }
            p { (c.tr("随访步骤、问题和评分项每行一条，各部分用竖线 | 分隔；空行会被忽略。",
                      "Steps, questions and score items: one per line, parts separated by a bar |; empty lines are ignored.")) }
            p { strong { (c.tr("随访步骤", "Schedule")) } ": "
                (c.tr("距起算日天数 | 窗口天数 | 方式 | 目的 | notify（提前一天通知患者，可不填）",
                      "days after the anchor | window days | channel | purpose | notify (tell the patient the day before; optional)")) }
            pre { "1 | 2 | phone | 出院后首次回访\n7 | 3 | phone | 复查血压 | notify\n30 | 7 | wechat | 康复情况" }
            p.small { (c.tr("方式可写：", "Channels: "))
                @for ch in CHANNELS { code { (channel_key(ch)) } " (" (channel_label(c, ch as i32)) ") " } }
            p { strong { (c.tr("问题", "Questions")) } ": " (c.tr("键 | 问题（键用小写字母、数字、下划线）", "key | question (keys: lower-case letters, digits, _)")) }
            pre { "wound | 伤口愈合情况如何？\nmedication | 是否按时服药？" }
            p { strong { (c.tr("康复评分项", "Recovery score items")) } ": "
                (c.tr("键 | 名称 | 权重 | 最小值 | 最大值 | lower（数值越低越好时填写）；权重合计 100",
                      "key | label | weight | min | max | lower (when lower is better); weights add up to 100")) }
            pre { "pain | 疼痛程度 | 40 | 0 | 10 | lower\nmobility | 活动能力 | 60 | 0 | 5" }
        }
    }
}

/// The template editor; `hidden` adds the fields of the action (request id, or etag).
fn editor(c: &Console, id: &str, action: &str, e: &Entries, hidden: Markup, extra: Markup, submit: &str) -> Markup {
    html! {
        form.card id=(id) method="post" action=(action) {
            (c.csrf_field())
            (hidden)
            label { (c.tr("名称", "Name")) input name="display_name" value=(e.get("display_name")) required maxlength="100"; }
            label { (c.tr("说明", "Description")) textarea name="description" rows="2" maxlength="2000" { (e.get("description")) } }
            div.grid {
                label { (c.tr("类型", "Kind"))
                    select name="kind" {
                        option value="scheduled" selected[e.get("kind") == "scheduled"] { (kind_label(c, TemplateKind::Scheduled as i32)) }
                        option value="chronic" selected[e.get("kind") == "chronic"] { (kind_label(c, TemplateKind::Chronic as i32)) }
                    }
                }
                label { (c.tr("默认方式", "Default channel")) (super::channel_select(c, "default_channel", e.get("default_channel"), true)) }
            }
            fieldset {
                legend { (c.tr("适用范围（留空表示全部）", "Applies to (empty: everyone)")) }
                label { (c.tr("科室代码（逗号分隔）", "Department codes (comma-separated)")) input name="departments" value=(e.get("departments")); }
                label { (c.tr("诊断编码前缀（ICD-10，逗号分隔，如 I10, I2）", "Diagnosis prefixes (ICD-10, comma-separated, e.g. I10, I2)")) input name="diagnosis_prefixes" value=(e.get("diagnosis_prefixes")); }
                label { input type="checkbox" name="on_discharge" value="true" checked[e.get("on_discharge") == "true"];
                    " " (c.tr("出院时自动建立随访计划", "Make a plan automatically at discharge")) }
            }
            label { (c.tr("随访步骤（定期随访，每行一步）", "Schedule (scheduled templates; one step per line)"))
                textarea name="schedule" rows="5" { (e.get("schedule")) } }
            label { (c.tr("随访问题（每行一个）", "Questions (one per line)"))
                textarea name="questions" rows="4" { (e.get("questions")) } }
            label { (c.tr("康复评分项（每行一项）", "Recovery score items (one per line)"))
                textarea name="score" rows="4" { (e.get("score")) } }
            fieldset #chronic-rules {
                legend { (c.tr("慢病规则（仅慢病管理模板）", "Chronic rules (chronic templates only)")) }
                div.grid {
                    label { (c.tr("测量项", "Measure")) input name="chronic_measure" value=(e.get("chronic_measure")); }
                    label { (c.tr("收缩压达标上限（低于）", "Systolic below")) input type="number" name="chronic_systolic_below" value=(e.get("chronic_systolic_below")); }
                    label { (c.tr("舒张压达标上限（低于）", "Diastolic below")) input type="number" name="chronic_diastolic_below" value=(e.get("chronic_diastolic_below")); }
                    label { (c.tr("连续达标几次转稳定", "Stable after (controlled readings)")) input type="number" name="chronic_stable_after" value=(e.get("chronic_stable_after")); }
                    label { (c.tr("早期随访间隔天数（逗号分隔）", "Early intervals, days (comma-separated)")) input name="chronic_early_intervals_days" value=(e.get("chronic_early_intervals_days")); }
                    label { (c.tr("稳定期间隔天数", "Stable interval, days")) input type="number" name="chronic_stable_interval_days" value=(e.get("chronic_stable_interval_days")); }
                    label { (c.tr("最长间隔天数", "Longest gap, days")) input type="number" name="chronic_max_interval_days" value=(e.get("chronic_max_interval_days")); }
                    label { (c.tr("稳定后连续达标几次转维持", "Maintenance after (controlled readings)")) input type="number" name="chronic_maintenance_after" value=(e.get("chronic_maintenance_after")); }
                }
            }
            (extra)
            button type="submit" { (submit) }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    archived: String,
}

pub async fn list(c: Console, Query(q): Query<ListQuery>) -> Response {
    let show_archived = q.archived == "1";
    let listed = template_client(&c)
        .list_templates(ListTemplatesRequest {
            page_size: 200,
            show_archived,
            ..Default::default()
        })
        .await;
    let templates = match listed {
        Ok(r) => r.into_inner().templates,
        Err(status) => return c.error(status),
    };
    let body = html! {
        (subnav(&c))
        p {
            a href="/console/followups/templates/new" { (c.tr("新建模板", "New template")) } " · "
            @if show_archived {
                a href="/console/followups/templates" { (c.tr("只看启用的", "Active only")) }
            } @else {
                a href="/console/followups/templates?archived=1" { (c.tr("包括已归档", "Include archived")) }
            }
        }
        table #templates {
            thead { tr {
                th { (c.tr("名称", "Name")) } th { (c.tr("版本", "Version")) } th { (c.tr("类型", "Kind")) }
                th { (c.tr("步骤", "Steps")) } th { (c.tr("评分项", "Score items")) } th { (c.tr("出院自动", "At discharge")) }
                th { (c.tr("适用科室", "Departments")) } th { (c.tr("状态", "State")) } th { (c.tr("更新时间", "Updated")) }
            } }
            tbody {
                @for t in &templates {
                    @let applies = t.applies_to.clone().unwrap_or_default();
                    tr data-template=(id_of(&t.name)) {
                        td { a href={ "/console/followups/" (t.name) } { (t.display_name) } }
                        td { (t.version) }
                        td { (kind_label(&c, t.kind)) }
                        td { (t.schedule.len()) }
                        td { (t.score.as_ref().map_or(0, |s| s.items.len())) }
                        td { @if applies.on_discharge { span.tag { (c.tr("是", "yes")) } } }
                        td { (applies.departments.join(", ")) }
                        td { (template_state_tag(&c, t.state)) }
                        td { (c.ts(&t.update_time)) }
                    }
                }
            }
        }
    };
    c.page(c.tr("随访模板", "Follow-up templates"), body)
}

fn new_page(c: &Console, e: &Entries, error: Option<&HttpError>) -> Response {
    let hidden = html! { input type="hidden" name="request_id" value=(e.get("request_id")); };
    let body = html! {
        (subnav(c))
        p.small { (c.tr("模板由管理员和质控组维护。", "Templates are kept by administrators and the inspection group.")) }
        @if let Some(err) = error { (c.error_box(err)) }
        (format_help(c))
        (editor(c, "new-template", "/console/followups/templates", e, hidden, html! {}, c.tr("创建模板", "Create the template")))
    };
    with_status(c.page(c.tr("新建随访模板", "New follow-up template"), body), error)
}

pub async fn new_form(c: Console) -> Response {
    new_page(&c, &fresh(), None)
}

pub async fn create(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let result = match template_of(c.lang, &entries) {
        Ok(template) => template_client(&c)
            .create_template(CreateTemplateRequest {
                template: Some(template),
                request_id: request_id(&entries),
            })
            .await
            .map_err(|s| annotate(c.lang, HttpError::from(s))),
        Err(err) => Err(err),
    };
    match result {
        Ok(t) => Redirect::to(&format!("/console/followups/{}?done=created", t.into_inner().name)).into_response(),
        Err(err) => new_page(&c, &entries, Some(&err)),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    version: i32,
    #[serde(default)]
    done: String,
}

/// Which form of the template page was refused, with its entries.
enum Refused {
    Revise(Entries, HttpError),
    Archive(Entries, HttpError),
}

pub async fn show(c: Console, Path(id): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    let notice = match q.done.as_str() {
        "created" => Some(c.tr("模板已创建。", "The template was created.")),
        "revised" => Some(c.tr("已发布新版本。", "A new version was published.")),
        "archived" => Some(c.tr(
            "模板已归档，不再生成新的计划。",
            "The template was archived; it makes no new plans.",
        )),
        _ => None,
    };
    template_page(&c, &id, q.version, notice, None).await
}

async fn get(c: &Console, id: &str, version: i32) -> Result<Template, tonic::Status> {
    template_client(c)
        .get_template(GetTemplateRequest {
            name: format!("templates/{id}"),
            version,
        })
        .await
        .map(|r| r.into_inner())
}

async fn template_page(
    c: &Console,
    id: &str,
    version: i32,
    notice: Option<&str>,
    refused: Option<Refused>,
) -> Response {
    let latest = match get(c, id, 0).await {
        Ok(t) => t,
        Err(status) => return c.error(status),
    };
    let shown = if version > 0 && version != latest.version {
        match get(c, id, version).await {
            Ok(t) => t,
            Err(status) => return c.error(status),
        }
    } else {
        latest.clone()
    };
    let error = match &refused {
        Some(Refused::Revise(_, err) | Refused::Archive(_, err)) => Some(err),
        None => None,
    };
    let active = latest.state == TemplateState::Active as i32;
    let body = html! {
        (subnav(c))
        @if let Some(text) = notice { div.notice role="status" { (text) } }
        @if let Some(err) = error { (c.error_box(err)) }
        p #versions {
            (c.tr("版本", "Versions")) ": "
            @for v in 1..=latest.version {
                @if v == shown.version { strong data-version=(v) { "v" (v) } } @else { a href={ "/console/followups/" (latest.name) "?version=" (v) } data-version=(v) { "v" (v) } }
                " "
            }
        }
        (details(c, &shown))
        @if active {
            (revise_form(c, &latest, &refused))
            (archive_form(c, &latest, &refused))
        }
    };
    let title = format!(
        "{} · {} v{}",
        c.tr("随访模板", "Template"),
        shown.display_name,
        shown.version
    );
    with_status(c.page(&title, body), error)
}

fn details(c: &Console, t: &Template) -> Markup {
    let applies = t.applies_to.clone().unwrap_or_default();
    html! {
        section.card #template data-template=(id_of(&t.name)) data-version=(t.version) data-etag=(t.etag) {
            dl.fields {
                dt { (c.tr("类型", "Kind")) } dd { (kind_label(c, t.kind)) }
                dt { (c.tr("状态", "State")) } dd { (template_state_tag(c, t.state)) }
                dt { (c.tr("说明", "Description")) } dd { (t.description) }
                dt { (c.tr("默认方式", "Default channel")) } dd { (channel_label(c, t.default_channel)) }
                dt { (c.tr("适用科室", "Departments")) } dd { (applies.departments.join(", ")) }
                dt { (c.tr("诊断前缀", "Diagnosis prefixes")) } dd { (applies.diagnosis_prefixes.join(", ")) }
                dt { (c.tr("出院自动建计划", "Plan at discharge")) } dd { (if applies.on_discharge { c.tr("是", "yes") } else { c.tr("否", "no") }) }
                dt { (c.tr("更新时间", "Updated")) } dd { (c.ts(&t.update_time)) }
            }
        }
        @if !t.schedule.is_empty() {
            h2 { (c.tr("随访步骤", "Schedule")) }
            table #schedule {
                thead { tr { th { (c.tr("距起算日天数", "Days after anchor")) } th { (c.tr("窗口天数", "Window days")) } th { (c.tr("方式", "Channel")) } th { (c.tr("目的", "Purpose")) } th { (c.tr("通知患者", "Notify patient")) } } }
                tbody { @for s in &t.schedule {
                    tr data-offset=(s.offset_days) { td { (s.offset_days) } td { (s.window_days) } td { (channel_label(c, s.channel)) } td { (s.purpose) } td { @if s.notify_patient { (c.tr("是", "yes")) } } }
                } }
            }
        }
        @if let Some(r) = &t.chronic {
            h2 { (c.tr("慢病规则", "Chronic rules")) }
            p #chronic {
                (c.tr("达标：收缩压低于", "Controlled: systolic below")) " " (r.systolic_below) " / "
                (c.tr("舒张压低于", "diastolic below")) " " (r.diastolic_below) "; "
                (c.tr("早期间隔", "early intervals")) " " (r.early_intervals_days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")) " "
                (c.tr("天", "days")) "; " (c.tr("稳定期", "stable")) " " (r.stable_interval_days) " " (c.tr("天", "days")) "; "
                (c.tr("最长", "at most")) " " (r.max_interval_days) " " (c.tr("天", "days"))
            }
        }
        @if !t.questions.is_empty() {
            h2 { (c.tr("随访问题", "Questions")) }
            ol #questions { @for q in &t.questions { li data-key=(q.key) { (q.text) " " code.small { (q.key) } } } }
        }
        @if let Some(score) = t.score.as_ref().filter(|s| !s.items.is_empty()) {
            h2 { (c.tr("康复评分项", "Recovery score items")) }
            table #score-items {
                thead { tr { th { (c.tr("键", "Key")) } th { (c.tr("名称", "Label")) } th { (c.tr("权重", "Weight")) } th { (c.tr("范围", "Range")) } th {} } }
                tbody { @for i in &score.items {
                    tr data-key=(i.key) { td { code { (i.key) } } td { (i.label) } td { (fmt_number(i.weight)) } td { (fmt_number(i.min)) "–" (fmt_number(i.max)) }
                        td { @if i.lower_is_better { (c.tr("越低越好", "lower is better")) } } }
                } }
            }
        }
    }
}

fn revise_form(c: &Console, latest: &Template, refused: &Option<Refused>) -> Markup {
    let (entries, open) = match refused {
        Some(Refused::Revise(e, _)) => (e.clone(), true),
        _ => (entries_of(latest), false),
    };
    let hidden = html! { input type="hidden" name="etag" value=(latest.etag); };
    let extra = html! {
        label { (c.tr("修订原因", "Why it changes")) input name="reason" maxlength="256" value=(entries.get("reason")); }
    };
    html! {
        details.card #revise open[open] {
            summary { (c.tr("修订（发布新版本；已有计划沿用原版本）", "Revise (publishes a new version; existing plans keep theirs)")) }
            (format_help(c))
            (editor(c, "revise-template", &format!("/console/followups/{}/revise", latest.name), &entries, hidden, extra, c.tr("发布新版本", "Publish the new version")))
        }
    }
}

fn archive_form(c: &Console, latest: &Template, refused: &Option<Refused>) -> Markup {
    let (entries, open) = match refused {
        Some(Refused::Archive(e, _)) => (e.clone(), true),
        _ => (Entries::default(), false),
    };
    html! {
        details.card #archive open[open] {
            summary { (c.tr("归档（不再生成新计划，已有计划继续）", "Archive (no new plans; existing plans go on)")) }
            form method="post" action={ "/console/followups/" (latest.name) "/archive" } {
                (c.csrf_field())
                input type="hidden" name="etag" value=(latest.etag);
                label { (c.tr("原因", "Reason")) input name="reason" maxlength="256" value=(entries.get("reason")); }
                button.secondary type="submit" { (c.tr("归档", "Archive")) }
            }
        }
    }
}

pub async fn revise(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let request = etag_of(&c, &entries).and_then(|etag| {
        let template = template_of(c.lang, &entries)?;
        Ok(ReviseTemplateRequest {
            template: Some(Template {
                name: format!("templates/{id}"),
                etag,
                ..template
            }),
            reason: entries.text("reason"),
        })
    });
    let result = match request {
        Ok(request) => template_client(&c)
            .revise_template(request)
            .await
            .map_err(|s| annotate(c.lang, HttpError::from(s))),
        Err(err) => Err(err),
    };
    match result {
        Ok(_) => Redirect::to(&format!(
            "/console/followups/templates/{}?done=revised",
            url_encode(&id)
        ))
        .into_response(),
        Err(err) => template_page(&c, &id, 0, None, Some(Refused::Revise(entries, err))).await,
    }
}

pub async fn archive(c: Console, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let entries = match read_form(&c, &headers, &body) {
        Ok(e) => e,
        Err(err) => return c.error(err),
    };
    let result = match etag_of(&c, &entries) {
        Ok(etag) => template_client(&c)
            .archive_template(ArchiveTemplateRequest {
                name: format!("templates/{id}"),
                etag,
                reason: entries.text("reason"),
            })
            .await
            .map_err(HttpError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(_) => Redirect::to(&format!(
            "/console/followups/templates/{}?done=archived",
            url_encode(&id)
        ))
        .into_response(),
        Err(err) => template_page(&c, &id, 0, None, Some(Refused::Archive(entries, err))).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Entries {
        Entries(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn typed_lines_make_a_template_and_come_back_the_same() {
        let e = form(&[
            ("display_name", "出院随访"),
            ("kind", "scheduled"),
            ("default_channel", "phone"),
            ("departments", "cardiology, neurology"),
            ("on_discharge", "true"),
            (
                "schedule",
                "1 | 2 | phone | 首次回访\n\n7｜3｜微信｜复查血压｜notify\n30",
            ),
            ("questions", "wound | 伤口愈合如何？"),
            (
                "score",
                "pain | 疼痛 | 40 | 0 | 10 | lower\nmobility | 活动 | 60 | 0 | 5",
            ),
        ]);
        let t = template_of(Lang::En, &e).expect("parsed");
        assert_eq!(t.schedule.len(), 3);
        assert_eq!(t.schedule[1].channel, Channel::Wechat as i32);
        assert!(t.schedule[1].notify_patient);
        assert_eq!((t.schedule[2].offset_days, t.schedule[2].window_days), (30, 0));
        let items = &t.score.as_ref().expect("score").items;
        assert!(items[0].lower_is_better && !items[1].lower_is_better);
        assert_eq!(t.applies_to.as_ref().map(|a| a.departments.len()), Some(2));
        let again = template_of(Lang::En, &entries_of(&t)).expect("round trip");
        assert_eq!(again, t);
    }

    #[test]
    fn wrong_lines_are_named_with_their_step() {
        let e = form(&[
            ("kind", "scheduled"),
            ("schedule", "1 | 2\nseven | 3\n9 | 1 | pigeon"),
            ("score", "pain | 疼痛 | forty | 0 | 10"),
        ]);
        let err = template_of(Lang::En, &e).expect_err("refused");
        let fields: Vec<(&str, &str)> = err
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(fields.len(), 3, "{fields:?}");
        assert!(
            fields[0].0 == "schedule" && fields[0].1.starts_with("step 2: "),
            "{fields:?}"
        );
        assert!(fields[1].1.starts_with("step 3: "), "{fields:?}");
        assert!(
            fields[2].0 == "score" && fields[2].1.starts_with("score item 1: "),
            "{fields:?}"
        );
    }

    #[test]
    fn the_services_paths_point_at_the_typed_line() {
        let err = HttpError::invalid("template.schedule[1].offset_days", "is used by an earlier step");
        let err = annotate(Lang::En, err);
        assert_eq!(err.field_violations[0].field, "schedule");
        assert!(
            err.field_violations[0].description.contains("step 2: is used"),
            "{err:?}"
        );
        let err = annotate(Lang::En, HttpError::invalid("template.display_name", "is required"));
        assert_eq!(err.field_violations[0].field, "template.display_name");
    }
}
