//! The monthly analysis report (printable: the stylesheet hides the navigation and forms when
//! printing) and the complaint report of the six months up to it.
//!
//! The report's Markdown is shown as HTML built from escaped text: headings, lists, tables
//! and paragraphs only, so nothing in it can become markup.

use super::results::dimension_code;
use super::{add_months, dimension_name, month_text, months_between, parse_month, reports, this_month, with_status};
use crate::api::error::HttpError;
use crate::web::chart;
use crate::web::page::{Console, Lang};
use axum::extract::Query;
use axum::response::Response;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::{
    Category, Change, ComplaintReport, DurationStats, GetComplaintReportRequest, GetMonthlyReportRequest,
    GetSatisfactionReportRequest, GetTaxonomyRequest, MonthlyReport, SatisfactionReport,
};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Months of complaints shown up to the report's month.
const COMPLAINT_MONTHS: i32 = 6;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReportQuery {
    month: String,
}

fn month_form(c: &Console, month: &str) -> Markup {
    html! {
        form.inline #report-month method="get" action="/console/reports" {
            label { (c.tr("月份", "Month")) input name="month" type="month" value=(month) placeholder="2026-05"; }
            button type="submit" { (c.tr("查看", "Show")) }
            span.small { (c.tr("打印本页即为月度报告（打印时不含导航）。", "Print this page for the monthly report (navigation is left out).")) }
        }
    }
}

pub async fn show(c: Console, Query(query): Query<ReportQuery>) -> Response {
    let title = c.tr("报表", "Reports");
    let month = match query.month.trim() {
        "" => Some(add_months(this_month(&c), -1)),
        m => parse_month(m),
    };
    let Some(month) = month else {
        let err = HttpError::invalid("month", "must be a month like 2026-05");
        let body = html! { (month_form(&c, &query.month)) (c.error_box(&err)) };
        return with_status(c.page(title, body), Some(&err));
    };
    let label = month_text(month);
    let from = month_text(add_months(month, 1 - COMPLAINT_MONTHS));
    let previous = month_text(add_months(month, -1));
    let client = reports(&c);
    let (monthly, complaints, satisfaction, taxonomy) = tokio::join!(
        {
            let mut client = client.clone();
            let request = GetMonthlyReportRequest { month: label.clone() };
            async move { client.get_monthly_report(request).await.map(|r| r.into_inner()) }
        },
        {
            let mut client = client.clone();
            let request = GetComplaintReportRequest {
                from_month: from.clone(),
                to_month: label.clone(),
                department: String::new(),
            };
            async move { client.get_complaint_report(request).await.map(|r| r.into_inner()) }
        },
        {
            let mut client = client.clone();
            let request = GetSatisfactionReportRequest {
                from_month: previous.clone(),
                to_month: label.clone(),
                department: String::new(),
            };
            async move { client.get_satisfaction_report(request).await.map(|r| r.into_inner()) }
        },
        async {
            let mut cases = CaseServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel));
            cases
                .get_taxonomy(GetTaxonomyRequest {})
                .await
                .map(|t| t.into_inner().categories)
                .unwrap_or_default()
        },
    );
    // Nothing to show at all: the member's role reads neither report.
    if let (Err(status), Err(_)) = (&monthly, &complaints) {
        return c.error(status.clone());
    }
    let names = Names(taxonomy);
    let months = months_between(
        add_months(month, 1 - COMPLAINT_MONTHS),
        month,
        COMPLAINT_MONTHS as usize,
    );
    let body = html! {
        (month_form(&c, &label))
        @match &monthly {
            Ok(report) => { (monthly_section(&c, report, satisfaction.as_ref().ok(), &previous, &names)) }
            Err(status) => { section #monthly { h2 { (c.tr("月度分析报告", "Monthly analysis report")) } (c.error_box(&status.clone().into())) } }
        }
        @match &complaints {
            Ok(report) => { (complaint_section(&c, report, &months, &names)) }
            Err(status) => { section #complaint-report { h2 { (c.tr("投诉报表", "Complaint report")) } (c.error_box(&status.clone().into())) } }
        }
    };
    c.page(&format!("{} {label}", c.tr("月度报告", "Monthly report")), body)
}

/// Complaint category names from the taxonomy, in the member's language.
struct Names(Vec<Category>);

impl Names {
    fn of(&self, c: &Console, code: &str) -> String {
        fn find<'a>(list: &'a [Category], code: &str) -> Option<&'a Category> {
            list.iter().find_map(|cat| {
                if cat.code == code {
                    Some(cat)
                } else {
                    find(&cat.children, code)
                }
            })
        }
        match find(&self.0, code) {
            Some(cat) => {
                let (first, second) = match c.lang {
                    Lang::Zh => (&cat.name_zh, &cat.name_en),
                    Lang::En => (&cat.name_en, &cat.name_zh),
                };
                [first, second]
                    .into_iter()
                    .find(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| code.to_string())
            }
            None if code.is_empty() => c.tr("未分类", "uncategorised").to_string(),
            None => code.to_string(),
        }
    }
}

fn number(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn signed(v: f64) -> String {
    if v > 0.0 { format!("+{}", number(v)) } else { number(v) }
}

/// Whether a month's hospital-wide satisfaction has a figure.
fn has_figure(satisfaction: Option<&SatisfactionReport>, month: &str, value: f64) -> bool {
    match satisfaction {
        Some(report) => report
            .cells
            .iter()
            .find(|cell| cell.month == month && cell.department.is_empty() && cell.dimension == 0)
            .is_some_and(|cell| !cell.suppressed),
        // Without the detail, a zero share is read as "no figure" (the service sends 0 then).
        None => value > 0.0,
    }
}

fn change_row(code: &str, label: &str, change: Option<Change>, unit: &str) -> Markup {
    let change = change.unwrap_or_default();
    html! {
        tr data-figure=(code) data-current=(number(change.current)) data-previous=(number(change.previous)) {
            th { (label) }
            td { (number(change.current)) (unit) }
            td { (number(change.previous)) (unit) }
            td { (signed(change.delta)) }
        }
    }
}

fn satisfaction_row(
    c: &Console,
    report: &MonthlyReport,
    satisfaction: Option<&SatisfactionReport>,
    previous: &str,
) -> Markup {
    let change = report.satisfaction.unwrap_or_default();
    let now = has_figure(satisfaction, &report.month, change.current);
    let before = has_figure(satisfaction, previous, change.previous);
    let few = c.tr("答卷太少", "too few answers");
    html! {
        tr data-figure="satisfaction" data-suppressed=(!now) {
            th { (c.tr("满意率", "Satisfaction")) }
            td { @if now { (number(change.current)) "%" } @else { span.small { "— " (few) } } }
            td { @if before { (number(change.previous)) "%" } @else { span.small { "— " (few) } } }
            td { @if now && before { (signed(change.delta)) } @else { "—" } }
        }
    }
}

fn durations(c: &Console, id: &str, first: &Option<DurationStats>, close: &Option<DurationStats>) -> Markup {
    let row = |code: &str, label: &str, d: &Option<DurationStats>| {
        let d = d.unwrap_or_default();
        html! {
            tr data-duration=(code) data-count=(d.count) {
                th { (label) }
                td { (d.count) }
                td { @if d.count > 0 { (number(d.median_hours)) " h" } @else { "—" } }
                td { @if d.count > 0 { (number(d.p90_hours)) " h" } @else { "—" } }
            }
        }
    };
    html! {
        table id=(id) {
            thead { tr { th {} th { (c.tr("案件数", "Cases")) } th { (c.tr("中位数", "Median")) } th { "P90" } } }
            tbody {
                (row("first_response", c.tr("首次响应用时", "Time to first response"), first))
                (row("close", c.tr("办结用时", "Time to close"), close))
            }
        }
    }
}

fn monthly_section(
    c: &Console,
    report: &MonthlyReport,
    satisfaction: Option<&SatisfactionReport>,
    previous: &str,
    names: &Names,
) -> Markup {
    let shown: Vec<_> = report.dimensions.iter().filter(|d| !d.suppressed).collect();
    let dimension_labels: Vec<String> = shown
        .iter()
        .map(|d| dimension_name(c, d.dimension).to_string())
        .collect();
    let dimension_values: Vec<f64> = shown.iter().map(|d| d.satisfied_percent).collect();
    let comments = report.comments.clone().unwrap_or_default();
    html! {
        section #monthly data-month=(report.month) {
            h2 { (c.tr("月度分析报告", "Monthly analysis report")) " " (report.month) }
            div.grid {
                div.card {
                    h3 { (c.tr("本月与上月", "This month against last")) }
                    table #figures {
                        thead { tr { th {} th { (c.tr("本月", "This month")) } th { (c.tr("上月", "Last month")) } th { (c.tr("变化", "Change")) } } }
                        tbody {
                            (satisfaction_row(c, report, satisfaction, previous))
                            (change_row("responses", c.tr("答卷", "Answers"), report.responses, ""))
                            (change_row("complaints", c.tr("投诉", "Complaints"), report.complaints, ""))
                            (change_row("suggestions", c.tr("建议", "Suggestions"), report.suggestions, ""))
                            (change_row("praise", c.tr("表扬", "Praise"), report.praise, ""))
                        }
                    }
                }
                div.card {
                    h3 { (c.tr("处理时效", "Handling times")) }
                    (durations(c, "monthly-durations", &report.time_to_first_response, &report.time_to_close))
                    p { (c.tr("超时案件", "Missed deadlines")) ": " strong #missed-deadlines { (report.missed_deadlines) } }
                }
            }
            div.card {
                h3 { (c.tr("各维度满意率", "Satisfaction by dimension")) }
                @if !shown.is_empty() { (chart::bars(c.tr("各维度满意率（%）", "Satisfied by dimension (%)"), &dimension_labels, &dimension_values)) }
                @if report.dimensions.is_empty() {
                    p.small { (c.tr("本月没有评分。", "No ratings this month.")) }
                } @else {
                    table #dimensions {
                        thead { tr { th { (c.tr("维度", "Dimension")) } th { (c.tr("答卷", "Answers")) } th { (c.tr("满意率", "Satisfied")) } th { "95% CI" } } }
                        tbody {
                            @for d in &report.dimensions {
                                tr data-dimension=(dimension_code(d.dimension)) data-responses=(d.responses) {
                                    td { (dimension_name(c, d.dimension)) }
                                    td { (d.responses) }
                                    @if d.suppressed {
                                        td.suppressed colspan="2" { (c.tr("答卷太少", "too few answers")) }
                                    } @else {
                                        td { (number(d.satisfied_percent)) "%" }
                                        td { (number(d.ci_low)) "–" (number(d.ci_high)) "%" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.grid {
                div.card {
                    h3 { (c.tr("满意率最低的科室", "Departments with the lowest satisfaction")) }
                    @if report.worst_departments.is_empty() {
                        p.small { (c.tr("没有答卷足够多的科室。", "No department had enough answers.")) }
                    } @else {
                        table #worst-departments {
                            thead { tr { th { (c.tr("科室", "Department")) } th { (c.tr("答卷", "Answers")) } th { (c.tr("满意率", "Satisfied")) } th { (c.tr("投诉", "Complaints")) } } }
                            tbody { @for d in &report.worst_departments {
                                tr data-department=(d.department) { td { (d.department) } td { (d.responses) } td { (number(d.satisfied_percent)) "%" } td { (d.complaints) } }
                            } }
                        }
                    }
                }
                div.card {
                    h3 { (c.tr("主要投诉类别", "Top complaint categories")) }
                    @if report.top_categories.is_empty() {
                        p.small { (c.tr("本月没有投诉。", "No complaints this month.")) }
                    } @else {
                        table #top-categories {
                            thead { tr { th { (c.tr("类别", "Category")) } th { (c.tr("本月", "This month")) } th { (c.tr("上月", "Last month")) } } }
                            tbody { @for cat in &report.top_categories {
                                tr data-category=(cat.category) { td { (names.of(c, &cat.category)) } td { (cat.count) } td { (cat.previous) } }
                            } }
                        }
                    }
                }
                div.card #comments data-total=(comments.total) {
                    h3 { (c.tr("患者意见", "Patients' comments")) }
                    @if comments.total == 0 {
                        p.small { (c.tr("本月没有文字意见。", "No free-text answers this month.")) }
                    } @else {
                        p { (comments.total) " " (c.tr("条，已分析", "comments, scored")) " " (comments.analyzed) }
                        p {
                            span.tag.bad { (c.tr("负面", "negative")) " " (comments.negative) }
                            span.tag { (c.tr("中性", "neutral")) " " (comments.neutral) }
                            span.tag.good { (c.tr("正面", "positive")) " " (comments.positive) }
                        }
                        @if !comments.negative_topics.is_empty() {
                            p.small { (c.tr("负面意见涉及：", "Negative comments are about: ")) }
                            ul { @for t in &comments.negative_topics { li { (t.topic) " (" (t.count) ")" } } }
                        }
                    }
                }
            }
            div.card #report-text {
                h3 { (c.tr("报告正文", "Report text")) }
                (markdown(&report.markdown))
                details {
                    summary { (c.tr("Markdown 原文（可复制）", "Markdown source (to copy)")) }
                    pre #markdown-source { (report.markdown) }
                }
            }
        }
    }
}

fn complaint_section(c: &Console, report: &ComplaintReport, months: &[String], names: &Names) -> Markup {
    let per_month: Vec<f64> = months
        .iter()
        .map(|m| {
            report
                .counts
                .iter()
                .filter(|x| &x.month == m)
                .map(|x| x.count as f64)
                .sum()
        })
        .collect();
    let mut by_category: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut by_department: BTreeMap<&str, i64> = BTreeMap::new();
    for count in &report.counts {
        *by_category
            .entry(count.category.as_str())
            .or_default()
            .entry(count.month.as_str())
            .or_default() += count.count;
        *by_department.entry(count.department.as_str()).or_default() += count.count;
    }
    html! {
        section #complaint-report {
            h2 { (c.tr("投诉报表", "Complaint report")) " " (months.first().map(String::as_str).unwrap_or("")) " – " (months.last().map(String::as_str).unwrap_or("")) }
            div.grid {
                div.card {
                    h3 { (c.tr("每月投诉量", "Complaints per month")) }
                    (chart::bars(c.tr("每月投诉量", "Complaints per month"), months, &per_month))
                }
                div.card {
                    h3 { (c.tr("处理时效", "Handling times")) }
                    (durations(c, "complaint-durations", &report.time_to_first_response, &report.time_to_close))
                    p { (c.tr("超时案件", "Missed deadlines")) ": " strong #complaint-missed { (report.missed_deadlines) }
                        " · " (c.tr("目前已超期未结", "Open and overdue now")) ": " strong #overdue-now { (report.overdue_now) } }
                }
            }
            @if by_category.is_empty() {
                p.small #no-complaints { (c.tr("这段时间没有投诉。", "No complaints in this period.")) }
            } @else {
                div.card {
                    h3 { (c.tr("按类别和月份", "By category and month")) }
                    table #complaint-counts {
                        thead { tr { th { (c.tr("类别", "Category")) } @for m in months { th { (m) } } th { (c.tr("合计", "Total")) } } }
                        tbody { @for (category, counts) in &by_category {
                            tr data-category=(category) {
                                td { (names.of(c, category)) }
                                @for m in months { td data-month=(m) { (counts.get(m.as_str()).copied().unwrap_or(0)) } }
                                td { (counts.values().sum::<i64>()) }
                            }
                        } }
                    }
                }
                div.card {
                    h3 { (c.tr("按科室", "By department")) }
                    table #complaint-departments {
                        thead { tr { th { (c.tr("科室", "Department")) } th { (c.tr("投诉", "Complaints")) } } }
                        tbody { @for (department, n) in &by_department {
                            tr data-department=(department) { td { (department) } td { (n) } }
                        } }
                    }
                }
            }
        }
    }
}

/// A block of the report's Markdown.
#[derive(Debug, PartialEq)]
enum Block {
    Heading(usize, String),
    List(Vec<String>),
    Table(Vec<Vec<String>>),
    Paragraph(Vec<String>),
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&ch| ch == '#').count();
    let rest = line[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then_some((level, rest.trim()))
}

fn table_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|cell| cell.trim().to_string()).collect()
}

fn is_rule(cells: &[String]) -> bool {
    cells
        .iter()
        .all(|cell| !cell.is_empty() && cell.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
}

/// Markdown as blocks: `#` headings, `-`/`*` lists, `|` tables, paragraphs.
fn blocks(text: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    // Whether the last block may take the next line (no blank line in between).
    let mut open = false;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            open = false;
            continue;
        }
        if let Some((level, rest)) = heading(t) {
            out.push(Block::Heading(level, rest.to_string()));
            open = false;
            continue;
        }
        if let Some(item) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
            match out.last_mut() {
                Some(Block::List(items)) if open => items.push(item.trim().to_string()),
                _ => out.push(Block::List(vec![item.trim().to_string()])),
            }
        } else if t.starts_with('|') {
            let cells = table_cells(t);
            match out.last_mut() {
                Some(Block::Table(rows)) if open => {
                    if !is_rule(&cells) {
                        rows.push(cells);
                    }
                }
                _ => out.push(Block::Table(vec![cells])),
            }
        } else {
            match out.last_mut() {
                Some(Block::Paragraph(lines)) if open => lines.push(t.to_string()),
                _ => out.push(Block::Paragraph(vec![t.to_string()])),
            }
        }
        open = true;
    }
    out
}

/// `**bold**` inside a line; the rest is text.
fn inline(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split("**").enumerate() {
            @if i % 2 == 1 { strong { (part) } } @else { (part) }
        }
    }
}

/// The report's Markdown as HTML of escaped text.
fn markdown(text: &str) -> Markup {
    html! {
        div.markdown {
            @for block in blocks(text) {
                @match block {
                    Block::Heading(1, t) => { h2 { (inline(&t)) } }
                    Block::Heading(2, t) => { h3 { (inline(&t)) } }
                    Block::Heading(_, t) => { h4 { (inline(&t)) } }
                    Block::List(items) => { ul { @for item in &items { li { (inline(item)) } } } }
                    Block::Table(rows) => {
                        table {
                            @if let Some((head, body)) = rows.split_first() {
                                thead { tr { @for cell in head { th { (inline(cell)) } } } }
                                tbody { @for row in body { tr { @for cell in row { td { (inline(cell)) } } } } }
                            }
                        }
                    }
                    Block::Paragraph(lines) => { p { (inline(&lines.join(" "))) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_headings_lists_tables_and_escaped_text() {
        let md = "# 2026-05 报告 / Report\n\n## 总览 Overview\n\n| 指标 | 本月 |\n|---|---|\n| 投诉 | 3 |\n\n- one **big**\n- two\n\ntext <script>alert(1)</script>\nmore\n";
        assert_eq!(
            blocks(md),
            vec![
                Block::Heading(1, "2026-05 报告 / Report".into()),
                Block::Heading(2, "总览 Overview".into()),
                Block::Table(vec![
                    vec!["指标".into(), "本月".into()],
                    vec!["投诉".into(), "3".into()]
                ]),
                Block::List(vec!["one **big**".into(), "two".into()]),
                Block::Paragraph(vec!["text <script>alert(1)</script>".into(), "more".into()]),
            ]
        );
        let html = markdown(md).into_string();
        assert!(html.contains("<h2>2026-05 报告 / Report</h2>"), "{html}");
        assert!(html.contains("<th>指标</th>") && html.contains("<td>3</td>"), "{html}");
        assert!(html.contains("<li>one <strong>big</strong></li>"), "{html}");
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
        assert!(!html.contains("---"), "{html}");
    }

    #[test]
    fn a_hash_without_a_space_is_text() {
        assert_eq!(heading("#1 item"), None);
        assert_eq!(heading("### Three"), Some((3, "Three")));
    }
}
