//! The case workflow over gRPC: intake, PDCA with a reopened check, history and timeline,
//! wrong transitions, etags, hand-over, duplicates, deadlines on the holiday calendar.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::feedback::*;
use hcrm_proto::followup as fu;
use hcrm_proto::patients::{InteractionKind, ListInteractionsRequest};
use tonic::Code;

crate::both_backends!(
    pdca_with_a_reopened_check,
    wrong_steps_are_refused_naming_the_allowed_ones,
    hand_over_keeps_one_owner,
    duplicates_link_within_the_window,
    deadlines_skip_the_national_day_holiday,
    escalation_warns_then_escalates_twice,
    a_confirmation_call_checks_the_fix,
);

async fn pdca_with_a_reopened_check(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let patient = suite.patient("王芳", "13800000001").await;
    let c = open_case(&suite, Role::Guide, complaint(&patient, "outpatient")).await;
    assert_eq!(c.state, CaseState::Received as i32);
    assert_eq!(c.owner, "guide-user", "the first responder owns the case");
    assert_eq!(c.number.len(), 9);
    assert!(c.response_due_time.is_some() && c.resolution_due_time.is_some());
    assert_eq!(c.sla_state, SlaState::OnTrack as i32);
    // The confirmation number finds it too.
    let by_number = suite
        .cases(Role::Inspector)
        .get_case(GetCaseRequest {
            name: c.number.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_number.name, c.name);

    let n = c.name.as_str();
    let c = step(&suite, n, CaseAction::Assign, |r| r.assignee = "head-outpatient".into())
        .await
        .unwrap();
    assert_eq!(
        (c.state, c.assignee.as_str(), c.owner.as_str()),
        (CaseState::Assigned as i32, "head-outpatient", "guide-user")
    );
    assert!(c.first_response_time.is_some());
    step(&suite, n, CaseAction::StartInvestigation, |_| {}).await.unwrap();
    step(&suite, n, CaseAction::PlanActions, plan).await.unwrap();
    let c = step(&suite, n, CaseAction::Reply, reply).await.unwrap();
    assert_eq!(c.state, CaseState::Replied as i32);
    // The fix did not work: back to the investigation.
    let c = step(&suite, n, CaseAction::Confirm, confirm(false)).await.unwrap();
    assert_eq!((c.state, c.reopen_count), (CaseState::Investigating as i32, 1));
    step(&suite, n, CaseAction::PlanActions, plan).await.unwrap();
    step(&suite, n, CaseAction::Reply, reply).await.unwrap();
    let c = step(&suite, n, CaseAction::Confirm, confirm(true)).await.unwrap();
    assert_eq!(c.state, CaseState::Confirmed as i32);
    assert_eq!(
        c.confirmation.as_ref().unwrap().source,
        ConfirmationSource::Staff as i32
    );
    let c = step(&suite, n, CaseAction::Close, |_| {}).await.unwrap();
    assert_eq!(
        (c.state, c.resolution),
        (CaseState::Closed as i32, Resolution::Effective as i32)
    );
    assert!(c.allowed_actions.is_empty());
    assert_eq!(c.sla_state, SlaState::Met as i32);

    let history = suite
        .cases(Role::Auditor)
        .list_case_history(ListCaseHistoryRequest { name: c.name.clone() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "assign",
            "start_investigation",
            "plan_actions",
            "reply",
            "confirm",
            "plan_actions",
            "reply",
            "confirm",
            "close"
        ]
    );
    assert!(history.iter().skip(1).all(|h| h.actor == "inspector-user"));
    // Every step reaches the patient's timeline, once.
    let id = patient.trim_start_matches("patients/");
    eventually("timeline entries", || async {
        let entries = suite
            .patients()
            .list_interactions(ListInteractionsRequest {
                parent: format!("patients/{id}"),
                page_size: 50,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .interactions;
        let complaints = entries
            .iter()
            .filter(|i| i.kind == InteractionKind::Complaint as i32)
            .count();
        (complaints == history.len()).then_some(())
    })
    .await;
    // The confirmation request was published for followup.
    let events = suite
        .count("SELECT COUNT(*) FROM events WHERE type = 'feedback.confirmation_requested'")
        .await;
    assert_eq!(events, 2);
    suite.stop().await;
}

async fn wrong_steps_are_refused_naming_the_allowed_ones(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let c = open_case(&suite, Role::Inspector, complaint("", "outpatient")).await;
    let status = assert_status(
        step(&suite, &c.name, CaseAction::Reply, reply).await,
        Code::FailedPrecondition,
        None,
    );
    let msg = status.message();
    assert!(
        msg.contains("CASE_ACTION_ASSIGN") && msg.contains("CASE_ACTION_REJECT"),
        "{msg}"
    );
    // A complaint closes only after the complainant confirmed.
    assert_status(
        step(&suite, &c.name, CaseAction::Close, |_| {}).await,
        Code::FailedPrecondition,
        None,
    );
    // Withdrawing needs a reason; a stale etag is ABORTED; nothing changes.
    assert_status(
        step(&suite, &c.name, CaseAction::Withdraw, |_| {}).await,
        Code::InvalidArgument,
        Some("reason"),
    );
    let stale = step(&suite, &c.name, CaseAction::Assign, |r| {
        r.assignee = "x".into();
        r.etag = "\"999\"".into();
    })
    .await;
    assert_status(stale, Code::Aborted, None);
    let c2 = step(&suite, &c.name, CaseAction::Withdraw, |r| r.reason = "患者撤诉".into())
        .await
        .unwrap();
    assert_eq!(
        (c2.state, c2.resolution),
        (CaseState::Withdrawn as i32, Resolution::Withdrawn as i32)
    );
    let status = assert_status(
        step(&suite, &c.name, CaseAction::Assign, |r| r.assignee = "x".into()).await,
        Code::FailedPrecondition,
        None,
    );
    assert!(status.message().contains("the case has ended"), "{}", status.message());
    // A suggestion closes as noted without the PDCA loop.
    let mut s = complaint("", "outpatient");
    s.kind = CaseKind::Suggestion as i32;
    let s = open_case(&suite, Role::Inspector, s).await;
    let s = step(&suite, &s.name, CaseAction::Close, |_| {}).await.unwrap();
    assert_eq!(s.resolution, Resolution::Noted as i32);
    assert_eq!(suite.count("SELECT COUNT(*) FROM case_history").await, 4);
    suite.stop().await;
}

async fn hand_over_keeps_one_owner(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let c = open_case(&suite, Role::Guide, complaint("", "outpatient")).await;
    let mut cases = suite.cases(Role::Inspector);
    let request = |owner: &str, reason: &str, etag: &str| HandOverCaseRequest {
        name: c.name.clone(),
        new_owner: owner.into(),
        reason: reason.into(),
        etag: etag.into(),
    };
    assert_status(
        cases.hand_over_case(request("", "", "")).await,
        Code::InvalidArgument,
        Some("new_owner"),
    );
    assert_status(
        cases.hand_over_case(request("nurse-zhang", "", "")).await,
        Code::InvalidArgument,
        Some("reason"),
    );
    let moved = cases
        .hand_over_case(request("nurse-zhang", "转交门诊护士长", &c.etag))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.owner, "nurse-zhang");
    assert_status(
        cases.hand_over_case(request("nurse-zhang", "again", "")).await,
        Code::FailedPrecondition,
        None,
    );
    assert_status(
        cases.hand_over_case(request("someone", "late", &c.etag)).await,
        Code::Aborted,
        None,
    );
    let mine = cases
        .list_cases(ListCasesRequest {
            owner: "nurse-zhang".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(mine.len(), 1);
    suite.stop().await;
}

async fn duplicates_link_within_the_window(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let patient = suite.patient("李雷", "13800000002").await;
    let first = open_case(&suite, Role::Guide, complaint(&patient, "outpatient")).await;
    let mut web = complaint(&patient, "outpatient");
    web.channel = IntakeChannel::Web as i32;
    let second = open_case(&suite, Role::Integration, web).await;
    let anonymous = open_case(&suite, Role::Guide, complaint("", "outpatient")).await;
    let mut cases = suite.cases(Role::Inspector);
    let link = |dup: &str| LinkCasesRequest {
        name: first.name.clone(),
        duplicate: dup.into(),
        reason: "同一事件两个渠道".into(),
    };
    assert_status(
        cases.link_cases(link(&anonymous.name)).await,
        Code::FailedPrecondition,
        None,
    );
    assert_status(
        cases.link_cases(link(&first.name)).await,
        Code::InvalidArgument,
        Some("duplicate"),
    );
    let primary = cases.link_cases(link(&second.name)).await.unwrap().into_inner();
    assert_eq!(primary.linked_cases, vec![second.name.clone()]);
    let dup = cases
        .get_case(GetCaseRequest {
            name: second.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (dup.state, dup.linked_to.as_str()),
        (CaseState::Linked as i32, first.name.as_str())
    );
    // Eight days later the same patient's complaint is a new matter.
    suite.clock.advance(8 * DAY);
    let later = open_case(&suite, Role::Guide, complaint(&patient, "outpatient")).await;
    let status = assert_status(
        cases.link_cases(link(&later.name)).await,
        Code::FailedPrecondition,
        None,
    );
    assert!(status.message().contains("7 days"), "{}", status.message());
    suite.stop().await;
}

/// 2025-09-30 15:00 in Beijing, the day before the National Day holiday (1–8 October, with
/// 28 September and 11 October worked).
const EVE_OF_NATIONAL_DAY: i64 = 1_759_215_600_000_000;

async fn deadlines_skip_the_national_day_holiday(backend: TestBackend) {
    let suite = Suite::start_at(backend, EVE_OF_NATIONAL_DAY).await;
    let c = open_case(&suite, Role::Guide, complaint("", "outpatient")).await;
    // Medium: respond within 1 working day → end of Thursday 9 October (Beijing) = 16:00 UTC.
    assert_eq!(c.response_due_time, Some(to_timestamp(1_760_025_600_000_000)));
    // Close within 10 working days: 9, 10, 11 (make-up Saturday), 13–17, 20, 21 October.
    assert_eq!(c.resolution_due_time, Some(to_timestamp(1_761_062_400_000_000)));
    suite.stop().await;
}

async fn escalation_warns_then_escalates_twice(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    // Monday 10:00; high severity: respond by the end of Tuesday.
    let mut c = complaint("", "surgery");
    c.severity = Severity::High as i32;
    let c = open_case(&suite, Role::Guide, c).await;
    let due = hcrm_kit::time::from_timestamp(c.response_due_time.as_ref().unwrap()).unwrap();
    let level_of = |suite: &Suite, level: i64| {
        suite
            .delivered("feedback.escalation")
            .into_iter()
            .filter(|b| b["payload"]["level"].as_i64() == Some(level))
            .collect::<Vec<_>>()
    };
    suite.clock.set(due - 3 * HOUR);
    let warned = eventually("owner warned", || async { level_of(&suite, 1).pop() }).await;
    assert_eq!(warned["recipient"]["id"], "guide-user");
    let listed = suite
        .cases(Role::Inspector)
        .list_cases(ListCasesRequest {
            sla_state: SlaState::DueSoon as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(listed.len(), 1);
    suite.clock.set(due + HOUR);
    let head = eventually("department head told", || async { level_of(&suite, 2).pop() }).await;
    assert_eq!(head["recipient"]["id"], "department-head:surgery");
    // Overdue again one working day later: the director.
    suite.clock.set(due + DAY + HOUR);
    let director = eventually("director told", || async { level_of(&suite, 3).pop() }).await;
    assert_eq!(director["recipient"]["id"], "director");
    let overdue = suite
        .cases(Role::Inspector)
        .list_cases(ListCasesRequest {
            sla_state: SlaState::Overdue as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!((overdue.len(), overdue[0].escalation_level), (1, 3));
    // Each level once, however many passes ran.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for level in 1..=3 {
        assert_eq!(level_of(&suite, level).len(), 1, "level {level}");
    }
    suite.stop().await;
}

/// The open confirmation-call tasks followup made for `patient`, waited for.
async fn confirmation_tasks(suite: &Suite, patient: &str, n: usize) -> Vec<fu::Task> {
    eventually("confirmation call tasks", || async {
        let tasks = suite
            .followup()
            .list_tasks(fu::ListTasksRequest {
                view: fu::TaskView::All as i32,
                patient: patient.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .tasks;
        (tasks.len() == n).then_some(tasks)
    })
    .await
}

async fn record_call(
    suite: &Suite,
    task: &str,
    fix_effective: Option<bool>,
) -> Result<fu::FollowUpRecord, tonic::Status> {
    suite
        .followup()
        .record_follow_up(fu::RecordFollowUpRequest {
            task: task.into(),
            record: Some(fu::FollowUpRecord {
                channel: fu::Channel::Phone as i32,
                outcome: fu::Outcome::Reached as i32,
                content: "回访：询问候诊情况".into(),
                fix_effective,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn a_confirmation_call_checks_the_fix(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let patient = suite.patient("孙丽", "13800000051").await;
    let c = open_case(&suite, Role::Guide, complaint(&patient, "outpatient")).await;
    let n = c.name.as_str();
    step(&suite, n, CaseAction::Assign, |r| r.assignee = "head-outpatient".into())
        .await
        .unwrap();
    step(&suite, n, CaseAction::StartInvestigation, |_| {}).await.unwrap();
    step(&suite, n, CaseAction::PlanActions, plan).await.unwrap();
    step(&suite, n, CaseAction::Reply, reply).await.unwrap();
    // Followup plans the call for the inspection group, due tomorrow.
    let task = confirmation_tasks(&suite, &patient, 1).await.remove(0);
    assert_eq!(task.assignee, "group:inspection");
    assert!(task.purpose.contains(&c.number), "{}", task.purpose);
    // The question must be answered on such a call, and only there.
    assert_status(
        record_call(&suite, &task.name, None).await,
        Code::InvalidArgument,
        Some("record.fix_effective"),
    );
    // Not fixed: the case goes back to the investigation.
    let call = record_call(&suite, &task.name, Some(false)).await.unwrap();
    let reopened = eventually("case reopened by the call", || async {
        let c = suite
            .cases(Role::Inspector)
            .get_case(GetCaseRequest {
                name: c.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (c.state == CaseState::Investigating as i32).then_some(c)
    })
    .await;
    assert_eq!(reopened.reopen_count, 1);
    let confirmation = reopened.confirmation.unwrap();
    assert_eq!(
        (confirmation.source, confirmation.effective),
        (ConfirmationSource::FollowUp as i32, false)
    );
    assert_eq!(confirmation.confirmed_by, call.recorded_by);
    // Fixed the second time: CONFIRMED, then closed as effective.
    step(&suite, n, CaseAction::PlanActions, plan).await.unwrap();
    step(&suite, n, CaseAction::Reply, reply).await.unwrap();
    let second = confirmation_tasks(&suite, &patient, 2)
        .await
        .into_iter()
        .find(|t| t.name != task.name)
        .unwrap();
    record_call(&suite, &second.name, Some(true)).await.unwrap();
    eventually("case confirmed by the call", || async {
        let c = suite
            .cases(Role::Inspector)
            .get_case(GetCaseRequest {
                name: c.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (c.state == CaseState::Confirmed as i32).then_some(())
    })
    .await;
    let closed = step(&suite, n, CaseAction::Close, |_| {}).await.unwrap();
    assert_eq!(closed.resolution, Resolution::Effective as i32);
    suite.stop().await;
}
