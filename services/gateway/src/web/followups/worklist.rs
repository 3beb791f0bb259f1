//! The worklists: my tasks today, the overdue ones, a department's; with a short statistics
//! panel of the last 30 days.

use super::{Names, date_text, followup, id_of, missing, status_tag, subnav};
use crate::web::page::{Console, url_encode};
use axum::extract::Query;
use axum::response::Response;
use hcrm_proto::followup::{GetStatisticsRequest, ListTasksRequest, Rate, Statistics, Task, TaskView};
use maud::{Markup, html};
use serde::Deserialize;

const PAGE_SIZE: i32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct WorklistQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    page: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Today,
    Overdue,
    Department,
}

impl View {
    fn of(text: &str) -> View {
        match text {
            "overdue" => View::Overdue,
            "department" => View::Department,
            _ => View::Today,
        }
    }

    fn key(self) -> &'static str {
        match self {
            View::Today => "today",
            View::Overdue => "overdue",
            View::Department => "department",
        }
    }

    fn task_view(self) -> TaskView {
        match self {
            View::Today => TaskView::MineToday,
            View::Overdue => TaskView::Overdue,
            View::Department => TaskView::Department,
        }
    }

    fn title(self, c: &Console) -> &'static str {
        match self {
            View::Today => c.tr("我的今日随访", "My follow-ups today"),
            View::Overdue => c.tr("逾期随访", "Overdue follow-ups"),
            View::Department => c.tr("科室随访任务", "A department's follow-ups"),
        }
    }
}

pub async fn show(c: Console, Query(q): Query<WorklistQuery>) -> Response {
    let view = View::of(&q.view);
    let department = match q.department.trim() {
        "" => c.who.account.department.clone().unwrap_or_default(),
        d => d.to_string(),
    };
    // The department view needs a department: ask for one rather than send a refused call.
    let wants_department = view == View::Department && department.is_empty();
    let request = ListTasksRequest {
        view: view.task_view() as i32,
        department: if view == View::Department {
            department.clone()
        } else {
            String::new()
        },
        page_size: PAGE_SIZE,
        page_token: q.page.clone(),
        ..Default::default()
    };
    let tasks = async {
        if wants_department {
            return None;
        }
        Some(followup(&c).list_tasks(request).await.map(|r| r.into_inner()))
    };
    let stats = async {
        followup(&c)
            .get_statistics(GetStatisticsRequest::default())
            .await
            .map(|r| r.into_inner())
    };
    let (tasks, stats) = tokio::join!(tasks, stats);
    let names = match &tasks {
        Some(Ok(list)) => Names::fetch(&c, list.tasks.iter().map(|t| t.patient.as_str())).await,
        _ => Names::default(),
    };
    let body = html! {
        (subnav(&c))
        (tabs(&c, view, &department))
        @match &tasks {
            None => { p.small { (c.tr("请输入科室代码。", "Enter a department code.")) } }
            Some(Err(status)) => { (c.error_box(&crate::api::error::HttpError::from(status.clone()))) }
            Some(Ok(list)) if list.tasks.is_empty() => {
                p.small #no-tasks { (c.tr("没有任务。", "No tasks.")) }
            }
            Some(Ok(list)) => {
                (task_table(&c, &list.tasks, &names))
                @if !list.next_page_token.is_empty() {
                    p { a rel="next" href={ "/console/followups?view=" (view.key()) "&department=" (url_encode(&department)) "&page=" (url_encode(&list.next_page_token)) } {
                        (c.tr("下一页", "Next page"))
                    } }
                }
            }
        }
        (stats_panel(&c, &stats))
    };
    c.page(view.title(&c), body)
}

fn tabs(c: &Console, view: View, department: &str) -> Markup {
    let tab = |v: View, zh: &'static str, en: &'static str| {
        html! {
            a href={ "/console/followups?view=" (v.key()) } class=[(v == view).then_some("current")] data-view=(v.key()) { (c.tr(zh, en)) }
        }
    };
    html! {
        nav.tabs {
            (tab(View::Today, "今日", "Today")) " · "
            (tab(View::Overdue, "逾期", "Overdue")) " · "
            (tab(View::Department, "按科室", "By department"))
        }
        @if view == View::Department {
            form.inline method="get" action="/console/followups" {
                input type="hidden" name="view" value="department";
                label { (c.tr("科室代码", "Department code")) input name="department" value=(department) maxlength="32" required; }
                button type="submit" { (c.tr("查看", "Show")) }
            }
        }
    }
}

fn task_table(c: &Console, tasks: &[Task], names: &Names) -> Markup {
    html! {
        table #tasks {
            thead { tr {
                th { (c.tr("应随访日期", "Due")) }
                th { (c.tr("截止日期", "Window ends")) }
                th { (c.tr("患者", "Patient")) }
                th { (c.tr("目的", "Purpose")) }
                th { (c.tr("方式", "Channel")) }
                th { (c.tr("科室", "Department")) }
                th { (c.tr("已尝试", "Attempts")) }
                th { (c.tr("状态", "Status")) }
                th {}
            } }
            tbody {
                @for t in tasks {
                    tr data-task=(id_of(&t.name)) data-patient=(id_of(&t.patient)) {
                        td { (date_text(&t.due_date)) }
                        td { (date_text(&t.window_end_date)) }
                        td { (names.link(&t.patient)) }
                        td { (t.purpose) }
                        td { (super::channel_label(c, t.channel)) }
                        td { (t.department) }
                        td { (t.attempts) }
                        td { (status_tag(c, t.status)) }
                        td { a href={ "/console/followups/" (t.name) } { (c.tr("处理", "Open")) } }
                    }
                }
            }
        }
    }
}

fn stats_panel(c: &Console, stats: &Result<Statistics, tonic::Status>) -> Markup {
    html! {
        section.card #statistics {
            h2 { (c.tr("近30天统计", "The last 30 days")) }
            @match stats {
                Err(status) => { (missing(c, status)) }
                Ok(s) => {
                    div.grid {
                        div { div.small { (c.tr("随访次数", "Follow-ups")) } div.figure data-figure="follow_ups" { (s.follow_ups) } }
                        div { div.small { (c.tr("当前逾期任务", "Overdue tasks now")) } div.figure.bad data-figure="overdue_tasks" { (s.overdue_tasks) } }
                    }
                    @if !s.success_by_channel.is_empty() {
                        h2 { (c.tr("各渠道接通率", "Reached by channel")) }
                        (rate_table(c, &s.success_by_channel, s.min_group_size))
                    }
                }
            }
        }
    }
}

fn rate_table(c: &Console, rates: &[Rate], min_group: i64) -> Markup {
    html! {
        table #success-by-channel {
            thead { tr {
                th { (c.tr("渠道", "Channel")) }
                th { (c.tr("尝试", "Attempts")) }
                th { (c.tr("接通", "Reached")) }
                th { (c.tr("接通率 (95% 区间)", "Rate (95% interval)")) }
            } }
            tbody {
                @for r in rates {
                    tr data-channel=(r.key) {
                        td { (super::channel_of(&r.key).map(|ch| super::channel_label(c, ch as i32)).filter(|l| !l.is_empty()).unwrap_or(&r.key)) }
                        td { (r.n) }
                        td { (r.hits) }
                        td { (rate_text(c, r, min_group)) }
                    }
                }
            }
        }
    }
}

fn rate_text(c: &Console, r: &Rate, min_group: i64) -> String {
    match (r.rate, r.ci_low, r.ci_high) {
        (Some(rate), Some(lo), Some(hi)) => format!("{:.1}% ({:.1}–{:.1}%)", rate * 100.0, lo * 100.0, hi * 100.0),
        (Some(rate), _, _) => format!("{:.1}%", rate * 100.0),
        _ => format!("{} {min_group}", c.tr("样本不足，至少需要", "too few; needs")),
    }
}
