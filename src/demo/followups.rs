//! Follow-up as the inspection group runs it: discharge templates (two with recovery scores),
//! the plans followup makes from the discharges on its own, and the calls of the past months
//! recorded on their tasks — reached or not, scores, guidance, satisfaction, now and then a
//! complaint — leaving today's calls and some overdue ones open.

use super::context::{Answer, Authed, Demo, MINUTE, each, from_date, ts};
use super::hospital::{self, DEPARTMENTS, Staff};
use super::surveys::rating;
use hcrm_kit::auth::Role;
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use hcrm_proto::followup::template_service_client::TemplateServiceClient;
use hcrm_proto::followup::*;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The console account that finds today's calls in "my tasks".
pub const CONSOLE_INSPECTOR: &str = "inspector";

const PAGE: i32 = 500;

#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub plans: usize,
    pub tasks: usize,
    pub calls: usize,
    pub complaints_raised: usize,
    pub due_today: usize,
    /// Of those, given to the console's inspector.
    pub for_console: usize,
    pub overdue: usize,
}

fn score_items(department: &str) -> Vec<ScoreItem> {
    let item = |key: &str, label: &str, weight: f64, max: f64, lower_is_better: bool| ScoreItem {
        key: key.into(),
        label: label.into(),
        weight,
        min: 0.0,
        max,
        lower_is_better,
    };
    match department {
        "cardiology" => vec![
            item("chest_pain", "近一周胸闷胸痛发作次数", 30.0, 7.0, true),
            item("medication", "按医嘱服药情况（0–10）", 30.0, 10.0, false),
            item("activity", "日常活动耐量（0–10）", 25.0, 10.0, false),
            item("bp_control", "血压控制情况（0–10）", 15.0, 10.0, false),
        ],
        "orthopedics" => vec![
            item("pain", "疼痛评分 VAS（0–10）", 35.0, 10.0, true),
            item("mobility", "关节活动与行走能力（0–10）", 35.0, 10.0, false),
            item("wound", "伤口愈合情况（0–10）", 30.0, 10.0, false),
        ],
        _ => Vec::new(),
    }
}

fn steps() -> Vec<ScheduleStep> {
    vec![
        ScheduleStep {
            offset_days: 1,
            window_days: 2,
            channel: Channel::Phone as i32,
            purpose: "出院次日电话回访：症状、用药、伤口".into(),
            notify_patient: false,
        },
        ScheduleStep {
            offset_days: 7,
            window_days: 3,
            channel: Channel::Phone as i32,
            purpose: "出院一周回访：康复情况，提醒复诊".into(),
            notify_patient: true,
        },
        ScheduleStep {
            offset_days: 30,
            window_days: 7,
            channel: Channel::Phone as i32,
            purpose: "出院一月回访：康复评估与满意度".into(),
            notify_patient: true,
        },
    ]
}

/// The discharge templates: cardiology and orthopaedics with their recovery scores, and one for
/// every other department, so each discharge makes exactly one plan.
pub async fn templates(demo: &Demo) -> anyhow::Result<usize> {
    let staff = Staff::new(hospital::INSPECTORS[0], Role::Inspector);
    let mut client = TemplateServiceClient::new(demo.as_staff(&staff)?);
    let others: Vec<String> = DEPARTMENTS
        .iter()
        .map(|d| d.code)
        .filter(|c| !matches!(*c, "cardiology" | "orthopedics"))
        .map(String::from)
        .collect();
    let questions = |list: &[(&str, &str)]| -> Vec<Question> {
        list.iter()
            .map(|(key, text)| Question {
                key: (*key).into(),
                text: (*text).into(),
            })
            .collect()
    };
    let list = [
        (
            "心血管内科出院随访",
            "心内科出院患者：次日、一周、一月回访，评估胸痛、服药与血压控制",
            vec!["cardiology".to_string()],
            score_items("cardiology"),
            questions(&[
                ("symptoms", "出院后是否有胸闷、胸痛、心悸？"),
                ("medicine", "是否按时服用抗血小板和降压药物？"),
            ]),
        ),
        (
            "骨科术后随访",
            "骨科出院患者：疼痛、功能锻炼与伤口愈合",
            vec!["orthopedics".to_string()],
            score_items("orthopedics"),
            questions(&[
                ("exercise", "是否按计划进行康复锻炼？"),
                ("wound", "伤口有无红肿、渗液？"),
            ]),
        ),
        (
            "出院随访（通用）",
            "其他科室出院患者的标准回访",
            others,
            Vec::new(),
            questions(&[("recovery", "出院后恢复情况如何？"), ("revisit", "是否已预约复诊？")]),
        ),
    ];
    for (i, (display_name, description, departments, items, questions)) in list.into_iter().enumerate() {
        client
            .create_template(CreateTemplateRequest {
                template: Some(Template {
                    display_name: display_name.into(),
                    description: description.into(),
                    kind: TemplateKind::Scheduled as i32,
                    applies_to: Some(Applicability {
                        departments,
                        diagnosis_prefixes: Vec::new(),
                        on_discharge: true,
                    }),
                    schedule: steps(),
                    default_channel: Channel::Phone as i32,
                    questions,
                    score: (!items.is_empty()).then_some(ScoreTemplate { items }),
                    ..Default::default()
                }),
                request_id: format!("demo-template-{i}"),
            })
            .await
            .answer("CreateTemplate")?;
    }
    Ok(3)
}

async fn discharge_plans(client: &mut FollowupServiceClient<Authed>) -> anyhow::Result<HashSet<String>> {
    let mut plans = HashSet::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_plans(ListPlansRequest {
                page_size: PAGE,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .answer("ListPlans")?;
        plans.extend(
            page.plans
                .into_iter()
                .filter(|p| p.origin == PlanOrigin::Discharge as i32)
                .map(|p| p.name),
        );
        if page.next_page_token.is_empty() {
            return Ok(plans);
        }
        page_token = page.next_page_token;
    }
}

/// Waits until followup has made a plan for every discharge of a reachable patient (it reads
/// the patients feed on its own); returns the plans' names.
pub async fn wait_for_plans(demo: &Demo, expected: usize) -> anyhow::Result<HashSet<String>> {
    let client = FollowupServiceClient::new(demo.as_staff(&hospital::operator())?);
    let limit = Duration::from_secs(120 + expected as u64 / 10);
    let what = format!("followup to make {expected} plans from the discharges (does it read the patients feed?)");
    super::context::wait_for(&what, limit, || {
        let mut client = client.clone();
        async move {
            let made = discharge_plans(&mut client).await?;
            Ok((made.len() >= expected).then_some(made))
        }
    })
    .await
}

/// Every task of the discharge plans.
async fn all_tasks(demo: &Demo) -> anyhow::Result<Vec<Task>> {
    let mut client = FollowupServiceClient::new(demo.as_staff(&hospital::operator())?);
    let mut tasks = Vec::new();
    for dept in DEPARTMENTS {
        let mut page_token = String::new();
        loop {
            let page = client
                .list_tasks(ListTasksRequest {
                    view: TaskView::Department as i32,
                    department: dept.code.into(),
                    page_size: PAGE,
                    page_token: page_token.clone(),
                    ..Default::default()
                })
                .await
                .answer("ListTasks")?;
            tasks.extend(page.tasks);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    Ok(tasks)
}

const REACHED: &[&str] = &[
    "患者自述恢复良好，按时服药，无明显不适。",
    "患者诉偶有乏力，饮食睡眠尚可，已嘱注意休息。",
    "家属代答：患者精神状态好，已能下床活动。",
    "患者伤口愈合良好，无红肿渗液，按计划复查。",
    "患者咳嗽较前明显减轻，体温正常。",
    "患者询问复诊时间，已告知并协助预约。",
    "患者夜间偶有胸闷，已建议提前到心内科门诊复查。",
    "患者对出院指导理解清楚，家属配合照护。",
];

const GUIDANCE: &[&str] = &[
    "低盐低脂饮食，规律服药，每日监测血压。",
    "适度活动，避免剧烈运动，两周后门诊复查。",
    "伤口保持干燥清洁，如有发热及时就诊。",
    "戒烟限酒，注意保暖，预防呼吸道感染。",
    "控制饮食，监测血糖，按时用药。",
    "按康复计划进行功能锻炼，循序渐进。",
];

const COMPLAINTS: &[&str] = &[
    "患者反映出院结算等待时间过长，窗口人员解释不清。",
    "家属反映住院期间夜间病区噪音大，休息不好。",
    "患者反映出院带药与医嘱说明不一致，要求科室核实。",
    "患者反映护士换药时态度生硬。",
];

/// Where a call stands: the first attempt's local date and time, then one a day.
struct Call {
    occur: i64,
    outcome: Outcome,
}

fn outcome(rng: &mut StdRng, attempt: u32) -> Outcome {
    let reached = match attempt {
        1 => 0.78,
        2 => 0.65,
        _ => 0.5,
    };
    let u: f64 = rng.random();
    if u < reached {
        Outcome::Reached
    } else if attempt == 1 && u < reached + 0.03 {
        Outcome::Refused
    } else if attempt == 1 && u < reached + 0.05 {
        Outcome::WrongNumber
    } else {
        Outcome::NotReached
    }
}

fn record(rng: &mut StdRng, task: &Task, call: &Call, attempt: u32) -> (FollowUpRecord, bool) {
    let channel = match rng.random_range(0..100) {
        0..=79 => Channel::Phone,
        80..=91 => Channel::Wechat,
        92..=97 => Channel::App,
        _ => Channel::HomeVisit,
    };
    let mut r = FollowUpRecord {
        channel: channel as i32,
        outcome: call.outcome as i32,
        occur_time: Some(ts(call.occur)),
        ..Default::default()
    };
    let mut complaint = false;
    match call.outcome {
        Outcome::Reached => {
            r.content = REACHED.choose(rng).copied().unwrap_or_default().into();
            r.health_guidance = GUIDANCE.choose(rng).copied().unwrap_or_default().into();
            // Recovery improves with the step: the later call scores higher.
            let later = task.purpose.contains("一月");
            let quality = rng.random_range(if later { 0.6..1.0 } else { 0.35..0.95 });
            r.score_answers = score_items(&task.department)
                .iter()
                .map(|item| {
                    let share = (quality + rng.random_range(-0.15..0.15f64)).clamp(0.0, 1.0);
                    let share = if item.lower_is_better { 1.0 - share } else { share };
                    ScoreAnswer {
                        key: item.key.clone(),
                        value: (item.min + share * (item.max - item.min)).round(),
                    }
                })
                .collect();
            let mut dimensions = vec![
                Dimension::Attitude,
                Dimension::ProfessionalSkill,
                Dimension::Communication,
                Dimension::Responsiveness,
                Dimension::ProblemSolving,
                Dimension::Environment,
            ];
            dimensions.shuffle(rng);
            let happy = rng.random_range(0.75..0.98);
            r.satisfaction = dimensions
                .into_iter()
                .take(rng.random_range(2..=4))
                .map(|d| Satisfaction {
                    dimension: d as i32,
                    rating: rating(rng, happy),
                })
                .collect();
            if rng.random_bool(0.012) {
                complaint = true;
                r.complaint_raised = true;
                r.complaint_summary = COMPLAINTS.choose(rng).copied().unwrap_or_default().into();
            }
        }
        Outcome::NotReached => {
            r.content = ["电话无人接听", "手机关机", "占线，稍后再拨"][attempt as usize % 3].into();
        }
        Outcome::Refused => r.content = "患者表示身体已无大碍，不需要继续回访".into(),
        Outcome::WrongNumber => r.content = "号码为空号，已请导医组核对联系方式".into(),
        Outcome::Unspecified => {}
    }
    (r, complaint)
}

/// What the demo does with one task.
enum Job {
    Record(Vec<(usize, RecordFollowUpRequest, bool)>),
    Reassign(ReassignTaskRequest),
    Leave,
}

/// Records the calls of the past on the discharge plans' tasks, gives some of today's calls to
/// the console's inspector, and leaves the rest open.
pub async fn work(demo: &Demo, order: &HashMap<String, usize>, plans: &HashSet<String>) -> anyhow::Result<Figures> {
    let mut rng = demo.rng("followups");
    let today = demo.today();
    let mut tasks = all_tasks(demo).await?;
    // Complaint confirmation calls belong to the cases stage.
    tasks.retain(|t| plans.contains(&t.plan));
    // Task names are fresh ids: order by patient and date so the same seed decides the same.
    tasks.sort_by_key(|t| {
        (
            order.get(&t.patient).copied().unwrap_or(usize::MAX),
            t.due_date.as_ref().map(|d| (d.year, d.month, d.day)),
            t.purpose.clone(),
        )
    });
    let mut figures = Figures {
        plans: plans.len(),
        tasks: tasks.len(),
        ..Default::default()
    };
    let mut jobs = Vec::new();
    for task in &tasks {
        let (Some(due), Some(window_end)) = (
            from_date(task.due_date.as_ref()),
            from_date(task.window_end_date.as_ref()),
        ) else {
            continue;
        };
        let job = if due > today {
            Job::Leave
        } else if due <= today && today <= window_end && (due == today || rng.random_bool(0.5)) {
            figures.due_today += 1;
            // At least one, so the console's inspector always starts with a call to make.
            if figures.for_console == 0 || rng.random_bool(0.5) {
                figures.for_console += 1;
                Job::Reassign(ReassignTaskRequest {
                    name: task.name.clone(),
                    assignee: CONSOLE_INSPECTOR.into(),
                    etag: task.etag.clone(),
                    reason: "今日回访分配".into(),
                })
            } else {
                Job::Leave
            }
        } else if rng.random_bool(0.08) {
            figures.overdue += 1;
            Job::Leave
        } else {
            let mut calls = Vec::new();
            let slack = (window_end - due).num_days().clamp(0, 1);
            let mut day = due + chrono::Duration::days(rng.random_range(0..=slack));
            for attempt in 1..=3u32 {
                let occur = demo.at_local(day, rng.random_range(8 * 60 + 30..17 * 60 + 30));
                if occur > demo.now - 10 * MINUTE {
                    break;
                }
                let call = Call {
                    occur,
                    outcome: outcome(&mut rng, attempt),
                };
                let (r, complaint) = record(&mut rng, task, &call, attempt);
                let caller = rng.random_range(0..hospital::INSPECTORS.len());
                calls.push((
                    caller,
                    RecordFollowUpRequest {
                        task: task.name.clone(),
                        record: Some(r),
                        request_id: format!("demo-{}-{attempt}", task.name.trim_start_matches("tasks/")),
                    },
                    complaint,
                ));
                if call.outcome != Outcome::NotReached {
                    break;
                }
                day += chrono::Duration::days(1);
            }
            if calls.is_empty() {
                Job::Leave
            } else {
                Job::Record(calls)
            }
        };
        jobs.push(job);
    }
    let callers: Vec<FollowupServiceClient<Authed>> = hospital::INSPECTORS
        .iter()
        .map(|s| {
            Ok(FollowupServiceClient::new(
                demo.as_staff(&Staff::new(s, Role::Inspector))?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let calls: usize = jobs
        .iter()
        .map(|j| if let Job::Record(c) = j { c.len() } else { 0 })
        .sum();
    figures.complaints_raised = jobs
        .iter()
        .map(|j| {
            if let Job::Record(c) = j {
                c.iter().filter(|x| x.2).count()
            } else {
                0
            }
        })
        .sum();
    let callers = &callers;
    each(jobs, 8, |job| async move {
        match job {
            Job::Record(calls) => {
                for (caller, request, _) in calls {
                    callers[caller]
                        .clone()
                        .record_follow_up(request)
                        .await
                        .answer("RecordFollowUp")?;
                }
            }
            Job::Reassign(request) => {
                callers[0].clone().reassign_task(request).await.answer("ReassignTask")?;
            }
            Job::Leave => {}
        }
        Ok(())
    })
    .await?;
    figures.calls = calls;
    Ok(figures)
}
