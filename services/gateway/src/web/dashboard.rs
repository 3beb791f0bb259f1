//! The dashboard: today's follow-ups and the overdue ones, open cases by SLA state, the guide
//! desk's overdue service requests and today's consultations, satisfaction this month against
//! last, negative mentions and open incidents, with trend charts. Each figure
//! comes from its own call; a figure the member may not see, or whose service is down, shows a
//! dash and why instead of failing the page.

use super::chart::{self, Series};
use super::page::Console;
use axum::response::Response;
use chrono::{Datelike, Duration, NaiveDate};
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::report_service_client::ReportServiceClient;
use hcrm_proto::feedback::{GetComplaintReportRequest, GetSatisfactionReportRequest, ListCasesRequest, SlaState};
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::{ListTasksRequest, Task, TaskView};
use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
use hcrm_proto::opinion::reputation_service_client::ReputationServiceClient;
use hcrm_proto::opinion::{GetReputationRequest, IncidentState, ListIncidentsRequest, Reputation};
use hcrm_proto::patients::consultation_service_client::ConsultationServiceClient;
use hcrm_proto::patients::service_request_service_client::ServiceRequestServiceClient;
use hcrm_proto::patients::{GetConsultationStatisticsRequest, ListServiceRequestsRequest};
use hcrm_proto::types::Date;
use maud::{Markup, html};

/// Lists are counted up to this many; more shows as "100+".
const COUNT_CAP: i32 = 100;

/// A figure, or why it is missing.
type Figure<T> = Result<T, tonic::Status>;

fn date(d: NaiveDate) -> Option<Date> {
    Some(Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    })
}

pub fn today(c: &Console) -> NaiveDate {
    let micros = c.gw.store.now() + i64::from(c.gw.cfg.utc_offset_minutes) * 60_000_000;
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

fn month_text(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn months_back(d: NaiveDate, n: u32) -> NaiveDate {
    let mut year = d.year();
    let mut month = d.month() as i32 - n as i32;
    while month < 1 {
        month += 12;
        year -= 1;
    }
    NaiveDate::from_ymd_opt(year, month as u32, 1).unwrap_or(d)
}

fn count_text(n: usize) -> String {
    if n >= COUNT_CAP as usize {
        format!("{COUNT_CAP}+")
    } else {
        n.to_string()
    }
}

pub async fn show(c: Console) -> Response {
    let today = today(&c);
    let followup = FollowupServiceClient::new(c.authed(&c.gw.upstreams.followup.channel));
    let cases = CaseServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel));
    let reports = ReportServiceClient::new(c.authed(&c.gw.upstreams.feedback.channel));
    let incidents = IncidentServiceClient::new(c.authed(&c.gw.upstreams.opinion.channel));
    let reputation = ReputationServiceClient::new(c.authed(&c.gw.upstreams.opinion.channel));

    let tasks = |view: TaskView| {
        let mut client = followup.clone();
        async move {
            client
                .list_tasks(ListTasksRequest {
                    view: view as i32,
                    page_size: COUNT_CAP,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().tasks)
        }
    };
    let open_cases = |sla: SlaState| {
        let mut client = cases.clone();
        async move {
            client
                .list_cases(ListCasesRequest {
                    open_only: true,
                    sla_state: sla as i32,
                    page_size: COUNT_CAP,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().cases.len())
        }
    };
    let this_month = month_text(today);
    let last_month = month_text(months_back(today, 1));
    let satisfaction = {
        let mut client = reports.clone();
        let request = GetSatisfactionReportRequest {
            from_month: last_month.clone(),
            to_month: this_month.clone(),
            department: String::new(),
        };
        async move { client.get_satisfaction_report(request).await.map(|r| r.into_inner()) }
    };
    let complaints = {
        let mut client = reports.clone();
        let request = GetComplaintReportRequest {
            from_month: month_text(months_back(today, 5)),
            to_month: this_month.clone(),
            department: String::new(),
        };
        async move { client.get_complaint_report(request).await.map(|r| r.into_inner()) }
    };
    let open_incidents = {
        let mut client = incidents.clone();
        async move {
            client
                .list_incidents(ListIncidentsRequest {
                    states: vec![
                        IncidentState::Open as i32,
                        IncidentState::Acknowledged as i32,
                        IncidentState::Responding as i32,
                    ],
                    page_size: COUNT_CAP,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().incidents.len())
        }
    };
    let trend = {
        let mut client = reputation.clone();
        let request = GetReputationRequest {
            start_date: date(today - Duration::days(29)),
            end_date: date(today),
            top: 5,
            ..Default::default()
        };
        async move { client.get_reputation(request).await.map(|r| r.into_inner()) }
    };
    let overdue_requests = {
        let mut client = ServiceRequestServiceClient::new(c.authed(&c.gw.upstreams.patients.channel));
        let request = ListServiceRequestsRequest {
            overdue_only: true,
            page_size: COUNT_CAP,
            ..Default::default()
        };
        async move {
            client
                .list_service_requests(request)
                .await
                .map(|r| r.into_inner().service_requests.len())
        }
    };
    let consultations_today = {
        let mut client = ConsultationServiceClient::new(c.authed(&c.gw.upstreams.patients.channel));
        let offset = i64::from(c.gw.cfg.utc_offset_minutes) * 60;
        let start = today.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp() - offset;
        let at = |seconds: i64| prost_types::Timestamp { seconds, nanos: 0 };
        let request = GetConsultationStatisticsRequest {
            start_time: Some(at(start)),
            end_time: Some(at(start + 86_400)),
        };
        async move {
            client
                .get_consultation_statistics(request)
                .await
                .map(|r| r.into_inner().total)
        }
    };
    let (
        mine,
        overdue,
        on_track,
        due_soon,
        late,
        requests_late,
        consulted,
        satisfaction,
        complaints,
        open_incidents,
        trend,
    ) = tokio::join!(
        tasks(TaskView::MineToday),
        tasks(TaskView::Overdue),
        open_cases(SlaState::OnTrack),
        open_cases(SlaState::DueSoon),
        open_cases(SlaState::Overdue),
        overdue_requests,
        consultations_today,
        satisfaction,
        complaints,
        open_incidents,
        trend,
    );

    let names = match &mine {
        Ok(tasks) => crate::web::followups::Names::fetch(&c, tasks.iter().take(20).map(|t| t.patient.as_str())).await,
        Err(_) => crate::web::followups::Names::default(),
    };
    let satisfied = |month: &str| -> Result<Option<f64>, &tonic::Status> {
        satisfaction.as_ref().map(|report| {
            report
                .cells
                .iter()
                .find(|cell| cell.month == month && cell.department.is_empty() && cell.dimension == 0)
                .filter(|cell| !cell.suppressed)
                .map(|cell| cell.satisfied_percent)
        })
    };
    let body = html! {
        div.grid {
            (tile(&c, c.tr("今日待随访", "My follow-ups today"), mine.as_ref().map(|t| count_text(t.len())), "", "/console/followups"))
            (tile(&c, c.tr("逾期随访", "Overdue follow-ups"), overdue.as_ref().map(|t| count_text(t.len())), "bad", "/console/followups?view=overdue"))
            (tile(&c, c.tr("处理中的投诉（按期）", "Open cases on track"), on_track.as_ref().map(|n| count_text(*n)), "good", "/console/cases?sla=on_track"))
            (tile(&c, c.tr("即将到期", "Cases due soon"), due_soon.as_ref().map(|n| count_text(*n)), "warn", "/console/cases?sla=due_soon"))
            (tile(&c, c.tr("已超期", "Cases overdue"), late.as_ref().map(|n| count_text(*n)), "bad", "/console/cases?sla=overdue"))
            (tile(&c, c.tr("便民服务已超时", "Service requests overdue"), requests_late.as_ref().map(|n| count_text(*n)), "bad", "/console/guide/requests?overdue=1"))
            (tile(&c, c.tr("今日咨询", "Consultations today"), consulted.as_ref().map(|n| n.to_string()), "", "/console/guide/consultations"))
            (tile(&c, c.tr("本月满意度", "Satisfaction this month"), satisfied(&this_month).map(percent), "", "/console/reports"))
            (tile(&c, c.tr("上月满意度", "Satisfaction last month"), satisfied(&last_month).map(percent), "", "/console/reports"))
            (tile(&c, c.tr("未结舆情事件", "Open incidents"), open_incidents.as_ref().map(|n| count_text(*n)), "warn", "/console/opinion"))
            (tile(&c, c.tr("今日负面提及", "Negative mentions today"), trend.as_ref().map(|r| r.days.last().map(|d| d.negative).unwrap_or(0).to_string()), "bad", "/console/opinion"))
        }
        div.grid {
            div.card {
                h2 { (c.tr("近30天舆情", "Mentions, last 30 days")) }
                (mention_chart(&c, &trend))
            }
            div.card {
                h2 { (c.tr("近6个月投诉量", "Complaints, last 6 months")) }
                @match &complaints {
                    Ok(report) => {
                        @let months: Vec<String> = (0..6).rev().map(|k| month_text(months_back(today, k))).collect();
                        @let counts: Vec<f64> = months.iter().map(|m| report.counts.iter().filter(|x| &x.month == m).map(|x| x.count as f64).sum()).collect();
                        (chart::bars(c.tr("每月投诉量", "Complaints per month"), &months, &counts))
                    }
                    Err(status) => { (missing(&c, status)) }
                }
            }
        }
        div.card {
            h2 { (c.tr("我的今日随访", "My follow-ups today")) }
            @match &mine {
                Ok(tasks) if tasks.is_empty() => { p.small { (c.tr("今天没有待办随访。", "Nothing due today.")) } }
                Ok(tasks) => { (task_table(&c, tasks, &names)) }
                Err(status) => { (missing(&c, status)) }
            }
        }
    };
    c.page(c.tr("工作台", "Dashboard"), body)
}

fn percent(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "—".into())
}

fn tile(c: &Console, label: &str, value: Result<String, &tonic::Status>, tone: &str, href: &str) -> Markup {
    html! {
        a.card.tile href=(href) {
            div.small { (label) }
            @match value {
                Ok(v) => { div class={ "figure " (tone) } data-figure=(label) { (v) } }
                Err(status) => { div.figure { "—" } (missing(c, status)) }
            }
        }
    }
}

fn missing(c: &Console, status: &tonic::Status) -> Markup {
    let why = match status.code() {
        tonic::Code::PermissionDenied => c.tr("无权查看", "not available to your role"),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => c.tr("服务暂不可用", "service unavailable"),
        _ => c.tr("暂无数据", "no figure"),
    };
    html! { div.small { (why) } }
}

fn mention_chart(c: &Console, trend: &Figure<Reputation>) -> Markup {
    match trend {
        Ok(r) => {
            let labels: Vec<String> = r
                .days
                .iter()
                .map(|d| {
                    d.date
                        .as_ref()
                        .map(|d| format!("{:02}-{:02}", d.month, d.day))
                        .unwrap_or_default()
                })
                .collect();
            chart::lines(
                c.tr("每日提及", "Mentions per day"),
                &labels,
                &[
                    Series {
                        name: c.tr("全部", "all"),
                        values: r.days.iter().map(|d| d.mentions as f64).collect(),
                    },
                    Series {
                        name: c.tr("负面", "negative"),
                        values: r.days.iter().map(|d| d.negative as f64).collect(),
                    },
                ],
            )
        }
        Err(status) => missing(c, status),
    }
}

/// Tasks as a table: due date, patient (by name), purpose, department, attempts; each row opens
/// the task's page with the call form.
fn task_table(c: &Console, tasks: &[Task], names: &crate::web::followups::Names) -> Markup {
    html! {
        table #my-tasks {
            thead { tr {
                th { (c.tr("应随访日期", "Due")) }
                th { (c.tr("患者", "Patient")) }
                th { (c.tr("目的", "Purpose")) }
                th { (c.tr("科室", "Department")) }
                th { (c.tr("已尝试", "Attempts")) }
                th {}
            } }
            tbody {
                @for t in tasks.iter().take(20) {
                    tr data-task=(t.name) {
                        td { (t.due_date.as_ref().map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)).unwrap_or_default()) }
                        td { (names.link(&t.patient)) }
                        td { (t.purpose) }
                        td { (t.department) }
                        td { (t.attempts) }
                        td { a href={ "/console/followups/" (t.name) } { (c.tr("去随访", "Call")) } }
                    }
                }
            }
        }
    }
}
