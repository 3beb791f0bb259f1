//! Reports over gRPC: satisfaction with intervals and suppressed small groups, complaint
//! counts and durations, and the monthly report comparing two months.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::*;
use tonic::Code;

crate::both_backends!(monthly_report_compares_two_months, reports_check_their_ranges);

/// Answers `n` invitations of `department` with the given ratings.
async fn answer_many(suite: &Suite, q: &str, patient: &str, department: &str, ratings: &[(i32, i32)]) {
    let patients = vec![patient.to_string()];
    for (attitude, environment) in ratings {
        let inv = invite(suite, q, &patients, department, false).await.remove(0);
        submit(suite, &inv.token, answers(*attitude, *environment))
            .await
            .unwrap();
    }
}

async fn monthly_report_compares_two_months(backend: TestBackend) {
    // 2026-05-20: last month's answers and complaints.
    let may = START - 12 * DAY;
    let suite = Suite::start_at(backend, may).await;
    let q = published(&suite).await;
    let p = suite.patient("患者", "13800000031").await;
    // April: two answers about eye, a group too small to show.
    suite.clock.set(START - 45 * DAY);
    answer_many(&suite, &q.name, &p, "eye", &[(5, 5), (4, 4)]).await;
    suite.clock.set(may);
    // May: card 3 of 6 ratings satisfied (4 or 5); surgery 6 of 6.
    answer_many(&suite, &q.name, &p, "card", &[(5, 4), (3, 3), (4, 3)]).await;
    answer_many(&suite, &q.name, &p, "surgery", &[(5, 5), (4, 5), (5, 4)]).await;
    for _ in 0..3 {
        open_case(&suite, Role::Guide, complaint("", "card")).await;
    }
    // June: card recovers (5 of 6), one complaint answered the same day.
    suite.clock.set(START);
    answer_many(&suite, &q.name, &p, "card", &[(5, 4), (4, 4), (5, 3)]).await;
    let c = open_case(&suite, Role::Guide, complaint("", "card")).await;
    suite.clock.advance(2 * HOUR);
    step(&suite, &c.name, CaseAction::Assign, |r| r.assignee = "head-card".into())
        .await
        .unwrap();
    let mut praise = complaint("", "surgery");
    praise.kind = CaseKind::Praise as i32;
    praise.category = "other".into();
    praise.subcategory.clear();
    open_case(&suite, Role::Guide, praise).await;

    let report = suite
        .reports(Role::Inspector)
        .get_monthly_report(GetMonthlyReportRequest {
            month: "2026-06".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let sat = report.satisfaction.unwrap();
    assert_eq!((sat.current, sat.previous), (83.3, 75.0));
    let complaints = report.complaints.unwrap();
    assert_eq!(
        (complaints.current, complaints.previous, complaints.delta),
        (1.0, 3.0, -2.0)
    );
    assert_eq!(report.praise.unwrap().current, 1.0);
    let first = report.time_to_first_response.unwrap();
    assert_eq!((first.count, first.median_hours), (1, 2.0));
    assert_eq!(
        report.worst_departments.len(),
        1,
        "surgery had no June answers; card had 3"
    );
    assert_eq!(report.responses.unwrap().current, 3.0, "answers, not ratings");
    assert_eq!(report.worst_departments[0].department, "card");
    assert_eq!(report.top_categories[0].category, "waiting");
    assert_eq!(
        (report.top_categories[0].count, report.top_categories[0].previous),
        (1, 3)
    );
    assert!(
        report.markdown.contains("| 满意度 Satisfaction | 83.3% | 75% | +8.3 |"),
        "{}",
        report.markdown
    );
    assert!(
        report.markdown.contains("| card | 3 | 83.3% | 1 |"),
        "{}",
        report.markdown
    );

    let cells = suite
        .reports(Role::Auditor)
        .get_satisfaction_report(GetSatisfactionReportRequest {
            from_month: "2026-04".into(),
            to_month: "2026-06".into(),
            department: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .cells;
    let cell = |month: &str, dept: &str, dim: Dimension| {
        cells
            .iter()
            .find(|c| c.month == month && c.department == dept && c.dimension == dim as i32)
            .cloned()
            .unwrap_or_else(|| panic!("no cell {month} {dept} {dim:?} in {cells:?}"))
    };
    // Two answers about eye in April: fewer than 3, no figure, neither per dimension nor in all.
    for dim in [Dimension::Attitude, Dimension::Unspecified] {
        let small = cell("2026-04", "eye", dim);
        assert!(
            small.suppressed && small.satisfied_percent == 0.0 && small.responses == 2,
            "{small:?}"
        );
    }
    // Three card answers in May are enough; six answers (12 ratings) in the month.
    assert!(!cell("2026-05", "card", Dimension::Attitude).suppressed);
    let may_all = cell("2026-05", "", Dimension::Unspecified);
    assert_eq!((may_all.responses, may_all.satisfied_percent), (6, 75.0));
    assert!(may_all.ci_low < 75.0 && may_all.ci_high > 75.0);

    let complaints = suite
        .reports(Role::Inspector)
        .get_complaint_report(GetComplaintReportRequest {
            from_month: "2026-05".into(),
            to_month: "2026-06".into(),
            department: "card".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let total: i64 = complaints.counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 4);
    assert_eq!(complaints.overdue_now, 3, "May's unanswered complaints are overdue now");
    suite.stop().await;
}

async fn reports_check_their_ranges(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut reports = suite.reports(Role::Inspector);
    let range = |from: &str, to: &str| GetSatisfactionReportRequest {
        from_month: from.into(),
        to_month: to.into(),
        department: String::new(),
    };
    assert_status(
        reports.get_satisfaction_report(range("2026-13", "2026-01")).await,
        Code::InvalidArgument,
        Some("from_month"),
    );
    assert_status(
        reports.get_satisfaction_report(range("2026-06", "2026-01")).await,
        Code::InvalidArgument,
        Some("to_month"),
    );
    assert_status(
        reports.get_satisfaction_report(range("2020-01", "2026-01")).await,
        Code::InvalidArgument,
        Some("to_month"),
    );
    assert_status(
        reports
            .get_monthly_report(GetMonthlyReportRequest { month: "June".into() })
            .await,
        Code::InvalidArgument,
        Some("month"),
    );
    // An empty month is a report of zeros, not an error.
    let empty = reports
        .get_monthly_report(GetMonthlyReportRequest {
            month: "2026-01".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.complaints.unwrap().current, 0.0);
    assert!(empty.markdown.contains("No complaints this month."));
    // Department heads see their own department's figures only.
    let mut head = hcrm_proto::feedback::report_service_client::ReportServiceClient::new(
        suite.authed(Role::DepartmentHead, Some("card")),
    );
    assert_status(
        head.get_satisfaction_report(GetSatisfactionReportRequest {
            from_month: "2026-06".into(),
            to_month: "2026-06".into(),
            department: "surgery".into(),
        })
        .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        head.get_monthly_report(GetMonthlyReportRequest {
            month: "2026-06".into(),
        })
        .await,
        Code::PermissionDenied,
        None,
    );
    suite.stop().await;
}
