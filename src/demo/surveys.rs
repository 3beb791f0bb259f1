//! The inpatient satisfaction survey: designed and published by the inspection group, invitations
//! for recently treated patients, answers submitted as the gateway's patient pages would (mostly
//! satisfied; the low ratings open cases on their own), and window ratings from the kiosks.

use super::context::{Answer, Demo, each};
use super::hospital::{self, DEPARTMENTS, Staff};
use super::patients::{Person, Standing};
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::survey_service_client::SurveyServiceClient;
use hcrm_proto::feedback::*;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};

#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub questionnaire: String,
    pub invitations: usize,
    pub responses: usize,
    pub low_ratings: usize,
    pub counter_ratings: usize,
}

/// A 1–5 rating from someone satisfied with probability `happy`.
pub fn rating(rng: &mut StdRng, happy: f64) -> i32 {
    if rng.random_bool(happy.clamp(0.0, 1.0)) {
        if rng.random_bool(0.62) { 5 } else { 4 }
    } else {
        match rng.random_range(0..100) {
            0..=59 => 3,
            60..=87 => 2,
            _ => 1,
        }
    }
}

fn text(zh: &str, en: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        zh: zh.into(),
        en: en.into(),
    })
}

const RATINGS: &[(&str, Dimension, &str, &str)] = &[
    ("attitude", Dimension::Attitude, "医护人员的服务态度", "Staff attitude"),
    (
        "skill",
        Dimension::ProfessionalSkill,
        "医生的诊疗水平",
        "Doctors' professional skill",
    ),
    (
        "communication",
        Dimension::Communication,
        "病情和治疗方案是否解释清楚",
        "How clearly your condition and treatment were explained",
    ),
    (
        "responsiveness",
        Dimension::Responsiveness,
        "呼叫后医护人员的响应速度",
        "How quickly staff came when called",
    ),
    (
        "problem_solving",
        Dimension::ProblemSolving,
        "您反映的问题是否得到解决",
        "Whether the problems you raised were solved",
    ),
    (
        "environment",
        Dimension::Environment,
        "病区环境与卫生",
        "Ward environment and cleanliness",
    ),
    ("overall", Dimension::Overall, "总体满意度", "Overall satisfaction"),
];

fn questionnaire() -> Questionnaire {
    let rating_questions = RATINGS
        .iter()
        .map(|(id, dimension, zh, en)| Question {
            id: (*id).into(),
            kind: QuestionKind::Rating as i32,
            text: text(zh, en),
            required: true,
            dimension: *dimension as i32,
            ..Default::default()
        })
        .collect();
    let choice = |value: &str, zh: &str, en: &str| Choice {
        value: value.into(),
        text: text(zh, en),
    };
    Questionnaire {
        title: text("住院患者满意度调查", "Inpatient satisfaction survey"),
        description: text(
            "感谢您选择仁心医院。请花两分钟评价本次住院体验，您的意见将帮助我们改进服务。",
            "Thank you for choosing Renxin Hospital. Two minutes of your time help us improve.",
        ),
        sections: vec![
            Section {
                title: text("服务评价", "Your stay"),
                questions: rating_questions,
            },
            Section {
                title: text("更多意见", "More"),
                questions: vec![
                    Question {
                        id: "recommend".into(),
                        kind: QuestionKind::Nps as i32,
                        text: text("您有多大可能向亲友推荐本院？", "How likely are you to recommend us?"),
                        required: true,
                        ..Default::default()
                    },
                    Question {
                        id: "booking".into(),
                        kind: QuestionKind::SingleChoice as i32,
                        text: text("您是通过什么方式预约的？", "How did you book?"),
                        options: vec![
                            choice("app", "医院App", "Hospital app"),
                            choice("wechat", "微信公众号", "WeChat"),
                            choice("phone", "电话预约", "Phone"),
                            choice("window", "现场窗口", "At the window"),
                        ],
                        ..Default::default()
                    },
                    Question {
                        id: "improve".into(),
                        kind: QuestionKind::MultipleChoice as i32,
                        text: text("您认为最需要改进的方面（可多选）", "What should we improve first?"),
                        options: vec![
                            choice("waiting", "等候时间", "Waiting time"),
                            choice("fees", "费用说明", "Explaining charges"),
                            choice("food", "住院餐食", "Meals"),
                            choice("parking", "停车", "Parking"),
                            choice("signage", "标识指引", "Signage"),
                        ],
                        show_if: Some(ShowIf {
                            question: "overall".into(),
                            values: vec!["1".into(), "2".into(), "3".into()],
                        }),
                        ..Default::default()
                    },
                    Question {
                        id: "comment".into(),
                        kind: QuestionKind::FreeText as i32,
                        text: text("其他意见和建议", "Anything else you would like to tell us"),
                        ..Default::default()
                    },
                ],
            },
        ],
        ..Default::default()
    }
}

const PRAISE: &[&str] = &[
    "护士非常细心，每天都耐心讲解注意事项，谢谢你们！",
    "主治医生很负责，查房时把手术方案讲得很清楚。",
    "病房干净整洁，出院手续也很快，整体体验很好。",
    "感谢医护团队的照顾，家人住院期间我们很放心。",
    "夜班护士响应很快，态度温和，给你们点赞。",
];

const GRIPES: &[&str] = &[
    "出院结算排队时间太长，希望增加窗口。",
    "病区晚上太吵，休息不好。",
    "费用清单看不懂，希望有人解释。",
    "停车太难了，转了半个小时才找到车位。",
    "检查预约要等好几天，住院时间被拖长了。",
    "有个别护士说话比较冲，希望改进服务态度。",
];

/// How a respondent felt about the stay; their ratings follow it.
#[derive(Clone, Copy, PartialEq)]
enum Mood {
    Content,
    Mixed,
    Unhappy,
}

fn mood_rating(rng: &mut StdRng, mood: Mood) -> i32 {
    let u = rng.random_range(0..100);
    match mood {
        Mood::Content => match u {
            0..=2 => 3,
            3..=34 => 4,
            _ => 5,
        },
        Mood::Mixed => match u {
            0..=1 => 2,
            2..=44 => 3,
            45..=84 => 4,
            _ => 5,
        },
        Mood::Unhappy => rating(rng, 0.2),
    }
}

fn answers(rng: &mut StdRng) -> (Vec<hcrm_proto::feedback::Answer>, bool) {
    // Most patients leave content, some with reservations, a few after a bad stay.
    let mood = match rng.random_range(0..100) {
        0..=4 => Mood::Unhappy,
        5..=21 => Mood::Mixed,
        _ => Mood::Content,
    };
    let score = |s: i32| hcrm_proto::feedback::Answer {
        question: String::new(),
        score: Some(s),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut overall = 5;
    let mut lowest = 5;
    for (id, ..) in RATINGS {
        let r = mood_rating(rng, mood);
        lowest = lowest.min(r);
        if *id == "overall" {
            overall = r;
        }
        out.push(hcrm_proto::feedback::Answer {
            question: (*id).into(),
            ..score(r)
        });
    }
    let nps = match mood {
        Mood::Content => rng.random_range(8..=10),
        Mood::Mixed => rng.random_range(5..=9),
        Mood::Unhappy => rng.random_range(0..=6),
    };
    out.push(hcrm_proto::feedback::Answer {
        question: "recommend".into(),
        ..score(nps)
    });
    if rng.random_bool(0.7) {
        let choice = ["app", "wechat", "phone", "window"]
            .choose(rng)
            .copied()
            .unwrap_or("app");
        out.push(hcrm_proto::feedback::Answer {
            question: "booking".into(),
            choices: vec![choice.into()],
            ..Default::default()
        });
    }
    if overall <= 3 {
        let mut options = vec!["waiting", "fees", "food", "parking", "signage"];
        options.shuffle(rng);
        let picked = rng.random_range(1..=2);
        out.push(hcrm_proto::feedback::Answer {
            question: "improve".into(),
            choices: options.into_iter().take(picked).map(String::from).collect(),
            ..Default::default()
        });
    }
    if rng.random_bool(0.4) {
        let pool = if lowest <= 3 { GRIPES } else { PRAISE };
        out.push(hcrm_proto::feedback::Answer {
            question: "comment".into(),
            text: pool.choose(rng).copied().unwrap_or_default().into(),
            ..Default::default()
        });
    }
    (out, lowest <= 2)
}

/// Designs and publishes the survey, invites patients treated lately and submits their answers.
pub async fn fill(demo: &Demo, people: &[Person]) -> anyhow::Result<Figures> {
    let mut rng = demo.rng("surveys");
    let designer = Staff::new(hospital::INSPECTORS[0], Role::Inspector);
    let mut staff = SurveyServiceClient::new(demo.as_staff(&designer)?);
    let draft = staff
        .create_questionnaire(CreateQuestionnaireRequest {
            questionnaire: Some(questionnaire()),
            request_id: "demo-questionnaire".into(),
        })
        .await
        .answer("CreateQuestionnaire")?;
    let published = staff
        .publish_questionnaire(PublishQuestionnaireRequest {
            name: draft.name.clone(),
            etag: draft.etag.clone(),
        })
        .await
        .answer("PublishQuestionnaire")?;
    let mut invited: Vec<&Person> = people
        .iter()
        .filter(|p| p.standing == Standing::Active && p.reachable())
        .collect();
    invited.shuffle(&mut rng);
    invited.truncate((people.len() / 5).clamp(60, 1000));
    let mut tokens = Vec::new();
    for dept in DEPARTMENTS {
        let patients: Vec<String> = invited
            .iter()
            .filter(|p| p.department.code == dept.code)
            .map(|p| p.name.clone())
            .collect();
        if patients.is_empty() {
            continue;
        }
        let created = staff
            .create_invitations(CreateInvitationsRequest {
                questionnaire: published.name.clone(),
                patients,
                department: dept.code.into(),
                expire_days: 0,
                send: false,
                request_id: format!("demo-invitations-{}", dept.code),
            })
            .await
            .answer("CreateInvitations")?;
        tokens.extend(created.invitations.into_iter().map(|i| i.token));
    }
    let mut figures = Figures {
        questionnaire: published.name.clone(),
        invitations: tokens.len(),
        ..Default::default()
    };
    // Some never answer: their invitations stay open and get the service's reminder.
    let mut submissions = Vec::new();
    for token in tokens {
        if rng.random_bool(0.85) {
            let (answers, low) = answers(&mut rng);
            figures.low_ratings += usize::from(low);
            submissions.push(SubmitSurveyResponseRequest { token, answers });
        }
    }
    let pages = SurveyServiceClient::new(demo.as_staff(&Staff::new("gateway", Role::Integration))?);
    figures.responses = each(submissions, 8, |request| {
        let mut pages = pages.clone();
        async move {
            pages
                .submit_survey_response(request)
                .await
                .answer("SubmitSurveyResponse")
                .map(|_| ())
        }
    })
    .await?;
    figures.counter_ratings = counter_ratings(demo, &mut rng, people.len()).await?;
    Ok(figures)
}

/// Window ratings (窗口服务评价) from the kiosks at the departments' triage desks.
async fn counter_ratings(demo: &Demo, rng: &mut StdRng, patients: usize) -> anyhow::Result<usize> {
    let mut requests = Vec::new();
    for i in 0..(patients / 10).clamp(30, 300) {
        let dept = DEPARTMENTS.choose(rng).unwrap_or(&DEPARTMENTS[0]);
        let happy = if dept.code == "emergency" { 0.75 } else { 0.9 };
        let value = rating(rng, happy);
        let comment = match value {
            1 | 2 => ["等了很久没人理", "窗口解释不耐烦", "排队太长"]
                .choose(rng)
                .copied()
                .unwrap_or_default(),
            5 if rng.random_bool(0.3) => ["服务很好", "很耐心", "效率高"]
                .choose(rng)
                .copied()
                .unwrap_or_default(),
            _ => "",
        };
        requests.push(RecordCounterRatingRequest {
            rating: Some(CounterRating {
                service_point: format!("{}-triage-{}", dept.code, rng.random_range(1..=3)),
                department: dept.code.into(),
                rating: value,
                comment: comment.into(),
                ..Default::default()
            }),
            request_id: format!("demo-counter-{i}"),
        });
    }
    let kiosk = SurveyServiceClient::new(demo.as_staff(&Staff::new("kiosk", Role::Integration))?);
    each(requests, 8, |request| {
        let mut kiosk = kiosk.clone();
        async move {
            kiosk
                .record_counter_rating(request)
                .await
                .answer("RecordCounterRating")
                .map(|_| ())
        }
    })
    .await
}
