//! Working a case through its PDCA steps as the inspection group does, down to the
//! confirmation call followup plans once a complainant has been replied to.

use super::cases::{Spec, Target};
use super::context::{Answer, Authed, wait_for};
use super::hospital;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::*;
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::{
    Channel, FollowUpRecord, ListPlansRequest, ListTasksRequest, Outcome, PlanOrigin, RecordFollowUpRequest, TaskView,
};
use hcrm_proto::types::ContactChannel;
use std::time::Duration;

pub struct Worker {
    pub cases: CaseServiceClient<Authed>,
    pub followup: FollowupServiceClient<Authed>,
    pub inspector: FollowupServiceClient<Authed>,
    pub today: chrono::NaiveDate,
}

impl Worker {
    async fn step(
        &self,
        case: &Case,
        action: CaseAction,
        fill: impl FnOnce(&mut TransitionCaseRequest),
    ) -> anyhow::Result<Case> {
        let mut request = TransitionCaseRequest {
            name: case.name.clone(),
            action: action as i32,
            etag: case.etag.clone(),
            ..Default::default()
        };
        fill(&mut request);
        self.cases
            .clone()
            .transition_case(request)
            .await
            .answer(&format!("TransitionCase {}", action.as_str_name()))
    }

    pub async fn walk(&self, spec: &Spec, case: Case, rng_pick: u32) -> anyhow::Result<Case> {
        use CaseAction as A;
        let head = hospital::head_of(spec.department.code);
        let mut case = case;
        // How far a withdrawn or rejected case got first.
        let stop_at = match spec.target {
            Target::Received | Target::Linked => return Ok(case),
            Target::Withdrawn => rng_pick % 5,
            Target::Rejected => rng_pick % 3,
            _ => 9,
        };
        let reached = |n: u32, t: Target| -> bool {
            let rank = match t {
                Target::Assigned => 1,
                Target::Investigating => 2,
                Target::ActionPlanned => 3,
                Target::Replied => 4,
                Target::Confirmed | Target::Closed | Target::Reopened => 5,
                _ => stop_at,
            };
            rank >= n
        };
        if spec.story.kind != CaseKind::Complaint {
            // Suggestions and praise are passed to the department and closed as noted.
            if spec.target == Target::Assigned || rng_pick.is_multiple_of(2) {
                case = self.step(&case, A::Assign, |r| r.assignee = head.clone()).await?;
            }
            if spec.target == Target::Closed {
                case = self
                    .step(&case, A::Close, |r| r.reason = "已转交相关科室参考，感谢反馈".into())
                    .await?;
            }
            return Ok(case);
        }
        if reached(1, spec.target) {
            case = self.step(&case, A::Assign, |r| r.assignee = head.clone()).await?;
        }
        if reached(2, spec.target) {
            case = self.step(&case, A::StartInvestigation, |_| {}).await?;
        }
        if reached(3, spec.target) {
            let due = self.today + chrono::Duration::days(i64::from(7 + rng_pick % 14));
            case = self
                .step(&case, A::PlanActions, |r| {
                    r.root_cause = spec.story.root_cause.into();
                    r.corrective_actions = vec![CorrectiveAction {
                        description: spec.story.action.into(),
                        owner: head.clone(),
                        due_date: Some(super::context::date(due)),
                    }];
                })
                .await?;
        }
        if reached(4, spec.target) {
            let text = format!(
                "您好，关于您反映的“{}”，我们已核实并整改：{}。感谢您的监督。",
                case.title, spec.story.action
            );
            case = self
                .step(&case, A::Reply, |r| {
                    r.reply = Some(Reply {
                        text,
                        channel: ContactChannel::Phone as i32,
                        reply_time: None,
                    })
                })
                .await?;
        }
        match spec.target {
            Target::Withdrawn => {
                return self
                    .step(&case, A::Withdraw, |r| {
                        r.reason = "患者表示问题已当面解决，撤回投诉".into()
                    })
                    .await;
            }
            Target::Rejected => {
                return self
                    .step(&case, A::Reject, |r| {
                        r.reason = "经核实，所反映问题发生在院外合作药店，不属于本院管理范围".into()
                    })
                    .await;
            }
            Target::Confirmed | Target::Closed | Target::Reopened => {}
            _ => return Ok(case),
        }
        let effective = spec.target != Target::Reopened;
        case = if spec.confirmed_by_call() {
            self.confirm_by_call(&case, effective).await?
        } else {
            self.step(&case, A::Confirm, |r| {
                r.confirmation = Some(Confirmation {
                    effective,
                    note: if effective {
                        "投诉人来电确认问题已解决".into()
                    } else {
                        "投诉人表示问题仍未解决".into()
                    },
                    source: ConfirmationSource::Staff as i32,
                    ..Default::default()
                })
            })
            .await?
        };
        if spec.target == Target::Closed {
            case = self
                .step(&case, A::Close, |r| r.reason = "整改有效，投诉人满意".into())
                .await?;
        }
        Ok(case)
    }

    /// The confirmation call followup plans once a complainant was replied to: record it, then
    /// wait for feedback to apply the answer.
    async fn confirm_by_call(&self, case: &Case, effective: bool) -> anyhow::Result<Case> {
        let what = format!("the confirmation call plan of {}", case.name);
        let source = format!("{}#", case.name);
        let followup = self.followup.clone();
        let plan = wait_for(&what, Duration::from_secs(60), || {
            let mut followup = followup.clone();
            let request = ListPlansRequest {
                patient: case.patient.clone(),
                page_size: 100,
                ..Default::default()
            };
            let source = source.clone();
            async move {
                let plans = followup.list_plans(request).await.answer("ListPlans")?.plans;
                Ok(plans
                    .into_iter()
                    .find(|p| p.origin == PlanOrigin::Complaint as i32 && p.source.starts_with(&source)))
            }
        })
        .await?;
        let tasks = self
            .followup
            .clone()
            .list_tasks(ListTasksRequest {
                view: TaskView::All as i32,
                plan: plan.name.clone(),
                ..Default::default()
            })
            .await
            .answer("ListTasks")?
            .tasks;
        let task = tasks
            .first()
            .ok_or_else(|| anyhow::anyhow!("{} has no task", plan.name))?;
        self.inspector
            .clone()
            .record_follow_up(RecordFollowUpRequest {
                task: task.name.clone(),
                record: Some(FollowUpRecord {
                    channel: Channel::Phone as i32,
                    outcome: Outcome::Reached as i32,
                    content: if effective {
                        "投诉处理回访：患者表示问题已解决，对处理结果满意".into()
                    } else {
                        "投诉处理回访：患者表示问题仍然存在，要求继续处理".into()
                    },
                    fix_effective: Some(effective),
                    ..Default::default()
                }),
                request_id: format!("demo-confirm-{}", case.name.trim_start_matches("cases/")),
            })
            .await
            .answer("RecordFollowUp (confirmation call)")?;
        let what = format!("feedback to apply the confirmation of {}", case.name);
        let cases = self.cases.clone();
        wait_for(&what, Duration::from_secs(60), || {
            let mut cases = cases.clone();
            let name = case.name.clone();
            async move {
                let c = cases
                    .get_case(GetCaseRequest {
                        name,
                        ..Default::default()
                    })
                    .await
                    .answer("GetCase")?;
                Ok((c.state != CaseState::Replied as i32).then_some(c))
            }
        })
        .await
    }
}
