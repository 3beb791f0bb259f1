//! Satisfaction results over a range of months: the share of satisfied ratings per month as a
//! chart, and every department × dimension cell with its answer count. Cells with too few
//! answers carry no figure (the service suppresses them) and say so.

use super::{
    Month, add_months, dimension_name, month_text, months_between, parse_month, reports, this_month, with_status,
};
use crate::api::error::HttpError;
use crate::web::chart;
use crate::web::page::Console;
use axum::extract::Query;
use axum::response::Response;
use hcrm_proto::feedback::{Dimension, GetSatisfactionReportRequest, SatisfactionCell, SatisfactionReport};
use maud::{Markup, html};
use serde::Deserialize;

/// The service answers at most this many months.
const MAX_MONTHS: usize = 36;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ResultsQuery {
    from_month: String,
    to_month: String,
    department: String,
}

fn range_form(c: &Console, q: &ResultsQuery) -> Markup {
    html! {
        form.inline #range method="get" action="/console/surveys/results" {
            label { (c.tr("起始月份", "From month")) input name="from_month" type="month" value=(q.from_month) placeholder="2026-01"; }
            label { (c.tr("截止月份", "To month")) input name="to_month" type="month" value=(q.to_month) placeholder="2026-06"; }
            label { (c.tr("科室（留空为全院）", "Department (empty: whole hospital)")) input name="department" value=(q.department) maxlength="40"; }
            button type="submit" { (c.tr("查看", "Show")) }
        }
    }
}

/// The months asked for, or the field that is not a month.
fn read_range(q: &ResultsQuery, now: Month) -> Result<(Month, Month), HttpError> {
    let to = match q.to_month.trim() {
        "" => Some(now),
        t => parse_month(t),
    };
    let from = match (q.from_month.trim(), to) {
        ("", Some(to)) => Some(add_months(to, -5)),
        ("", None) => Some(add_months(now, -5)),
        (f, _) => parse_month(f),
    };
    let mut wrong = Vec::new();
    if from.is_none() {
        wrong.push(("from_month".to_string(), "must be a month like 2026-06".to_string()));
    }
    if to.is_none() {
        wrong.push(("to_month".to_string(), "must be a month like 2026-06".to_string()));
    }
    match (from, to, super::invalid(wrong)) {
        (Some(from), Some(to), None) => Ok((from, to)),
        (_, _, Some(err)) => Err(err),
        _ => Err(HttpError::invalid("to_month", "must be a month like 2026-06")),
    }
}

pub async fn show(c: Console, Query(mut q): Query<ResultsQuery>) -> Response {
    let title = c.tr("满意度结果", "Satisfaction results");
    let (from, to) = match read_range(&q, this_month(&c)) {
        Ok(range) => range,
        Err(err) => {
            let body = html! { (range_form(&c, &q)) (c.error_box(&err)) };
            return with_status(c.page(title, body), Some(&err));
        }
    };
    q.from_month = month_text(from);
    q.to_month = month_text(to);
    let got = reports(&c)
        .get_satisfaction_report(GetSatisfactionReportRequest {
            from_month: q.from_month.clone(),
            to_month: q.to_month.clone(),
            department: q.department.trim().to_string(),
        })
        .await;
    let report = match got {
        Ok(r) => r.into_inner(),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            let err = HttpError::from(status);
            let body = html! { (range_form(&c, &q)) (c.error_box(&err)) };
            return with_status(c.page(title, body), Some(&err));
        }
        Err(status) => return c.error(status),
    };
    let months = months_between(from, to, MAX_MONTHS);
    let body = html! {
        p.small { a href="/console/surveys" { (c.tr("问卷", "Questionnaires")) } " · " a href="/console/reports" { (c.tr("月度报告", "Monthly report")) } }
        (range_form(&c, &q))
        (charts(&c, &report, &months))
        (cell_table(&c, &report))
    };
    c.page(title, body)
}

/// The whole (or filtered) hospital's cell of a month: no department, all dimensions.
fn total<'a>(report: &'a SatisfactionReport, month: &str) -> Option<&'a SatisfactionCell> {
    report
        .cells
        .iter()
        .find(|cell| cell.month == month && cell.department.is_empty() && cell.dimension == 0)
}

fn charts(c: &Console, report: &SatisfactionReport, months: &[String]) -> Markup {
    let satisfied: Vec<f64> = months
        .iter()
        .map(|m| {
            total(report, m)
                .filter(|cell| !cell.suppressed)
                .map_or(0.0, |cell| cell.satisfied_percent)
        })
        .collect();
    let answers: Vec<f64> = months
        .iter()
        .map(|m| total(report, m).map_or(0.0, |cell| cell.responses as f64))
        .collect();
    html! {
        div.grid {
            div.card #satisfied-chart {
                h2 { (c.tr("每月满意率（%）", "Satisfied per month (%)")) }
                (chart::bars(c.tr("满意率", "Satisfied %"), months, &satisfied))
                p.small { (c.tr("答卷少于", "Months with fewer than")) " " (report.min_group_size) " " (c.tr("份的月份不显示数值（显示为 0）。", "answers show no figure (drawn as 0).")) }
            }
            div.card #answers-chart {
                h2 { (c.tr("每月答卷数", "Answers per month")) }
                (chart::bars(c.tr("答卷数", "Answers"), months, &answers))
            }
        }
    }
}

fn cell_table(c: &Console, report: &SatisfactionReport) -> Markup {
    let mut cells: Vec<&SatisfactionCell> = report.cells.iter().collect();
    // Latest month first; within it the hospital before departments, all dimensions first.
    cells.sort_by(|a, b| {
        b.month
            .cmp(&a.month)
            .then(a.department.cmp(&b.department))
            .then(a.dimension.cmp(&b.dimension))
    });
    html! {
        h2 { (c.tr("按科室和维度", "By department and dimension")) }
        @if cells.is_empty() {
            p.small #no-answers { (c.tr("所选期间没有答卷。", "No answers in this period.")) }
        } @else {
            p.small {
                (c.tr("满意率 = 4 分和 5 分评价所占比例，附 95% 置信区间；“窗口服务”行为窗口评价。",
                      "Satisfied = share of ratings of 4 or 5, with the 95% interval; “counter service” rows are counter ratings."))
            }
            table #satisfaction {
                thead { tr {
                    th { (c.tr("月份", "Month")) } th { (c.tr("科室", "Department")) } th { (c.tr("维度", "Dimension")) }
                    th { (c.tr("答卷", "Answers")) } th { (c.tr("满意率", "Satisfied")) } th { "95% CI" } th { (c.tr("平均分", "Mean")) }
                } }
                tbody {
                    @for cell in cells {
                        tr data-month=(cell.month) data-department=(cell.department) data-dimension=(dimension_code(cell.dimension)) data-responses=(cell.responses) {
                            td { (cell.month) }
                            td { @if cell.department.is_empty() { (c.tr("全院", "whole hospital")) } @else { (cell.department) } }
                            td { (dimension_name(c, cell.dimension)) }
                            td { (cell.responses) }
                            @if cell.suppressed {
                                td.suppressed colspan="3" { (c.tr("答卷太少", "too few answers")) " (< " (report.min_group_size) ")" }
                            } @else {
                                td { (format!("{:.1}%", cell.satisfied_percent)) }
                                td { (format!("{:.1}–{:.1}%", cell.ci_low, cell.ci_high)) }
                                td { (format!("{:.2}", cell.mean)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A stable code for a dimension in `data-` attributes.
pub(super) fn dimension_code(dimension: i32) -> &'static str {
    match Dimension::try_from(dimension).unwrap_or_default() {
        Dimension::Attitude => "attitude",
        Dimension::ProfessionalSkill => "professional_skill",
        Dimension::Communication => "communication",
        Dimension::Responsiveness => "responsiveness",
        Dimension::ProblemSolving => "problem_solving",
        Dimension::Environment => "environment",
        Dimension::CounterService => "counter_service",
        Dimension::Overall => "overall",
        Dimension::Unspecified => "all",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_defaults_to_the_last_six_months_and_names_a_wrong_month() {
        let q = ResultsQuery::default();
        assert_eq!(read_range(&q, (2026, 3)).unwrap(), ((2025, 10), (2026, 3)));
        let q = ResultsQuery {
            from_month: "2026-1".into(),
            to_month: "June".into(),
            ..Default::default()
        };
        let err = read_range(&q, (2026, 3)).unwrap_err();
        let fields: Vec<&str> = err.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["from_month", "to_month"]);
    }
}
