//! The guide desk (导医台): the department and doctor directory with the weekly clinics as the
//! HIS would sync it (one `ImportDirectory` stream), the desk's consultations of the last month,
//! convenience service requests in every state (some overdue), a few appointment requests, the
//! customer-management segments and who introduced whom.

use super::context::{Answer, DAY, Demo, HOUR, MINUTE, date, each, ordered, ts};
use super::hospital::{self, CITIES, DEPARTMENTS, Department, GUIDES, Staff};
use super::patients::{Person, Standing};
use super::{ids, names};
use chrono::{Datelike, Duration, NaiveDate, Timelike};
use hcrm_kit::auth::Role;
use hcrm_proto::patients as pb;
use hcrm_proto::patients::appointment_service_client::AppointmentServiceClient;
use hcrm_proto::patients::consultation_service_client::ConsultationServiceClient;
use hcrm_proto::patients::directory_row::Row;
use hcrm_proto::patients::directory_service_client::DirectoryServiceClient;
use hcrm_proto::patients::referral_service_client::ReferralServiceClient;
use hcrm_proto::patients::segment_service_client::SegmentServiceClient;
use hcrm_proto::patients::service_request::Details;
use hcrm_proto::patients::service_request_service_client::ServiceRequestServiceClient;
use hcrm_proto::patients::{
    ClinicKind, ConsultationCategory as Category, ConsultationChannel as Channel, DaySession, DoctorTitle,
    ScheduleExceptionKind, ServiceRequestSlaState, ServiceRequestState, ServiceRequestType,
};
use hcrm_proto::types::Address;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use std::collections::HashMap;

const SOURCE: &str = "his";

/// A doctor of the directory as the desk's other work refers to it.
#[derive(Debug, Clone)]
pub struct Doc {
    /// `doctors/{id}`.
    pub name: String,
    pub display_name: &'static str,
    pub department: &'static Department,
    pub title: DoctorTitle,
    pub expert: bool,
}

/// What the directory import wrote.
#[derive(Debug, Default)]
pub struct Directory {
    pub departments: usize,
    pub doctors: Vec<Doc>,
    pub patterns: usize,
    pub exceptions: usize,
}

/// What the desk's stage created.
#[derive(Debug, Default)]
pub struct Figures {
    pub consultations: usize,
    pub about_patients: usize,
    pub referred: usize,
    pub service_requests: usize,
    pub by_state: Vec<(&'static str, usize)>,
    pub overdue: usize,
    pub appointments: usize,
    pub segments: usize,
    pub referrals: usize,
}

fn guide(i: usize) -> Staff {
    Staff::new(GUIDES[i % GUIDES.len()], Role::Guide)
}

/// A request id derived from the seed: a retried run finds its first results.
fn request_id(demo: &Demo, what: &str, i: usize) -> String {
    format!("demo-{}-{what}-{i}", demo.seed())
}

// ---------------------------------------------------------------------------------------------
// Directory

/// A doctor before the import names it.
struct PlannedDoctor {
    external_id: String,
    display_name: &'static str,
    department: &'static Department,
    title: DoctorTitle,
    expert: bool,
}

fn title_zh(t: DoctorTitle) -> &'static str {
    match t {
        DoctorTitle::ChiefPhysician => "主任医师",
        DoctorTitle::AssociateChiefPhysician => "副主任医师",
        DoctorTitle::AttendingPhysician => "主治医师",
        DoctorTitle::ResidentPhysician => "住院医师",
        _ => "医师",
    }
}

/// Titles mixed across departments: the first doctor is the most senior, later ones less so.
fn title_of(department_index: usize, index: usize) -> (DoctorTitle, bool) {
    let title = match index {
        0 if department_index % 3 == 1 => DoctorTitle::AssociateChiefPhysician,
        0 => DoctorTitle::ChiefPhysician,
        1 if department_index.is_multiple_of(2) => DoctorTitle::AssociateChiefPhysician,
        _ => DoctorTitle::AttendingPhysician,
    };
    let expert = match title {
        DoctorTitle::ChiefPhysician => true,
        DoctorTitle::AssociateChiefPhysician => index == 0 || department_index.is_multiple_of(3),
        _ => false,
    };
    (title, expert)
}

/// The room of the `k`th clinic of a department whose rooms are `301-306` (or a named area).
fn room(rooms: &str, k: usize) -> String {
    match rooms
        .split_once('-')
        .map(|(a, b)| (a.parse::<usize>(), b.parse::<usize>()))
    {
        Some((Ok(a), Ok(b))) if b >= a => format!("{}诊室", a + k % (b - a + 1)),
        _ => rooms.to_string(),
    }
}

fn session_times(session: DaySession) -> (&'static str, &'static str) {
    match session {
        DaySession::Afternoon => ("13:30", "16:30"),
        DaySession::Evening => ("18:00", "20:30"),
        _ => ("08:00", "11:30"),
    }
}

/// The first date at least `min_days` after today falling on ISO weekday `weekday`.
fn next_weekday(today: NaiveDate, weekday: i32, min_days: i64) -> NaiveDate {
    let mut d = today + Duration::days(min_days);
    while d.weekday().number_from_monday() as i32 != weekday {
        d += Duration::days(1);
    }
    d
}

/// Every row of the directory import and the doctors in row order.
fn directory_rows(demo: &Demo) -> (Vec<pb::DirectoryRow>, Vec<PlannedDoctor>, usize, usize) {
    let mut rng = demo.rng("directory");
    let today = demo.today();
    let mut rows = Vec::new();
    for d in DEPARTMENTS {
        rows.push(pb::DirectoryRow {
            row: Some(Row::Department(pb::Department {
                code: d.code.into(),
                display_name: d.zh.into(),
                english_name: d.en.into(),
                treats: d.treats.iter().map(|t| (*t).to_string()).collect(),
                treats_en: d.treats_en.iter().map(|t| (*t).to_string()).collect(),
                location: Some(pb::DepartmentLocation {
                    building: d.location.0.into(),
                    floor: d.location.1.into(),
                    room: d.location.2.into(),
                }),
                phone: d.phone.into(),
                ..Default::default()
            })),
        });
    }
    let mut doctors = Vec::new();
    for (di, d) in DEPARTMENTS.iter().enumerate() {
        for (i, name) in d.doctors.iter().enumerate() {
            let (title, expert) = title_of(di, i);
            let n = d.diagnoses.len().max(1);
            let specialties: Vec<String> = (0..n.min(2))
                .filter_map(|k| d.diagnoses.get((i + k) % n).map(|(_, zh)| (*zh).to_string()))
                .collect();
            let external_id = format!("D{:04}", 1001 + doctors.len());
            let bio = format!(
                "{}{}，从事{}临床工作{}年，擅长{}的诊治。",
                d.zh,
                title_zh(title),
                d.zh,
                match title {
                    DoctorTitle::ChiefPhysician => rng.random_range(22..32),
                    DoctorTitle::AssociateChiefPhysician => rng.random_range(14..22),
                    _ => rng.random_range(6..14),
                },
                specialties.join("、")
            );
            rows.push(pb::DirectoryRow {
                row: Some(Row::Doctor(pb::Doctor {
                    display_name: (*name).into(),
                    title: title as i32,
                    expert,
                    specialties,
                    departments: vec![d.code.into()],
                    office_phone: format!("0571-8723{:04}", 6000 + doctors.len()),
                    bio,
                    source_system: SOURCE.into(),
                    external_id: external_id.clone(),
                    ..Default::default()
                })),
            });
            doctors.push(PlannedDoctor {
                external_id,
                display_name: name,
                department: d,
                title,
                expert,
            });
        }
    }
    // Each doctor's complete weekly set: 2–4 half-days, experts' as expert clinics.
    let mut patterns = 0;
    let mut held: Vec<Vec<(i32, DaySession)>> = Vec::new();
    for (k, doc) in doctors.iter().enumerate() {
        let mut slots: Vec<(i32, DaySession)> = (1..=5)
            .flat_map(|w| [(w, DaySession::Morning), (w, DaySession::Afternoon)])
            .collect();
        slots.push((6, DaySession::Morning));
        slots.shuffle(&mut rng);
        let count = rng.random_range(2..=4);
        let mut mine: Vec<(i32, DaySession)> = slots.into_iter().take(count).collect();
        mine.sort_by_key(|(w, s)| (*w, *s as i32));
        let (building, floor, rooms) = doc.department.location;
        let set: Vec<pb::ClinicPattern> = mine
            .iter()
            .enumerate()
            .map(|(j, (weekday, session))| {
                let kind = if doc.expert && (j + 1 < count || count < 3) {
                    ClinicKind::Expert
                } else if !doc.expert && count >= 3 && j + 1 == count {
                    ClinicKind::Special
                } else {
                    ClinicKind::Regular
                };
                let (start, end) = session_times(*session);
                pb::ClinicPattern {
                    department: doc.department.code.into(),
                    weekday: *weekday,
                    session: *session as i32,
                    start_time: start.into(),
                    end_time: end.into(),
                    kind: kind as i32,
                    location: format!("{building}{floor}楼 {}", room(rooms, k + j)),
                    quota: match kind {
                        ClinicKind::Expert => 15,
                        ClinicKind::Special => 20,
                        _ => 30,
                    },
                    external_id: format!("{}-{weekday}{}", doc.external_id, *session as i32),
                    ..Default::default()
                }
            })
            .collect();
        patterns += set.len();
        rows.push(pb::DirectoryRow {
            row: Some(Row::DoctorPatterns(pb::DoctorPatterns {
                doctor_external_id: doc.external_id.clone(),
                source_system: SOURCE.into(),
                patterns: set,
                ..Default::default()
            })),
        });
        held.push(mine);
    }
    // Leave and a cancelled clinic on days the doctors would see patients, and extra sessions.
    let mut exceptions = Vec::new();
    let mut picks: Vec<usize> = (0..doctors.len()).collect();
    picks.shuffle(&mut rng);
    let reasons = ["外出会诊", "参加学术会议", "年假"];
    for (n, &k) in picks.iter().take(3).enumerate() {
        let Some(&(weekday, session)) = held[k].choose(&mut rng) else {
            continue;
        };
        let day = next_weekday(today, weekday, rng.random_range(3..15));
        exceptions.push(pb::ScheduleException {
            doctor_external_id: doctors[k].external_id.clone(),
            date: Some(date(day)),
            session: if n == 0 { 0 } else { session as i32 },
            kind: ScheduleExceptionKind::Leave as i32,
            reason: reasons[n % reasons.len()].into(),
            ..Default::default()
        });
    }
    if let Some(&k) = picks.get(3)
        && let Some(&(weekday, session)) = held[k].first()
    {
        exceptions.push(pb::ScheduleException {
            doctor_external_id: doctors[k].external_id.clone(),
            date: Some(date(next_weekday(today, weekday, 8))),
            session: session as i32,
            kind: ScheduleExceptionKind::Cancelled as i32,
            department: doctors[k].department.code.into(),
            reason: "诊室改造，停诊一次".into(),
            ..Default::default()
        });
    }
    let experts: Vec<usize> = (0..doctors.len()).filter(|k| doctors[*k].expert).collect();
    for (n, &k) in experts.iter().take(2).enumerate() {
        let doc = &doctors[k];
        let (session, reason, location) = if n == 0 {
            (DaySession::Morning, "周末义诊", "门诊楼1楼 大厅义诊区".to_string())
        } else {
            (
                DaySession::Evening,
                "加开夜间专家门诊",
                format!(
                    "{}{}楼 {}",
                    doc.department.location.0,
                    doc.department.location.1,
                    room(doc.department.location.2, 0)
                ),
            )
        };
        // A weekend morning the doctor has no clinic on, or a weekday evening.
        let weekday = match n {
            0 if held[k].contains(&(6, DaySession::Morning)) => 7,
            0 => 6,
            _ => 3,
        };
        let (start, end) = session_times(session);
        exceptions.push(pb::ScheduleException {
            doctor_external_id: doc.external_id.clone(),
            date: Some(date(next_weekday(today, weekday, 2))),
            session: session as i32,
            kind: ScheduleExceptionKind::Extra as i32,
            department: doc.department.code.into(),
            start_time: start.into(),
            end_time: end.into(),
            clinic_kind: ClinicKind::Expert as i32,
            location,
            quota: 40,
            reason: reason.into(),
            ..Default::default()
        });
    }
    let exception_count = exceptions.len();
    for (n, mut e) in exceptions.into_iter().enumerate() {
        e.source_system = SOURCE.into();
        e.external_id = format!("EX{:04}", n + 1);
        rows.push(pb::DirectoryRow {
            row: Some(Row::Exception(e)),
        });
    }
    (rows, doctors, patterns, exception_count)
}

/// Syncs the directory as the HIS would: one `ImportDirectory` stream; every row must succeed.
pub async fn directory(demo: &Demo) -> anyhow::Result<Directory> {
    let (rows, planned, patterns, exceptions) = directory_rows(demo);
    let kinds: Vec<bool> = rows.iter().map(|r| matches!(r.row, Some(Row::Doctor(_)))).collect();
    let total = rows.len();
    let messages: Vec<pb::ImportDirectoryRequest> = rows
        .chunks(1000)
        .map(|chunk| pb::ImportDirectoryRequest { rows: chunk.to_vec() })
        .collect();
    let mut client = DirectoryServiceClient::new(demo.as_staff(&hospital::his())?);
    let mut results = client
        .import_directory(futures::stream::iter(messages))
        .await
        .answer("ImportDirectory")?;
    let mut doctor_names: HashMap<usize, String> = HashMap::new();
    let mut answered = 0;
    while let Some(message) = results.message().await? {
        for row in message.results {
            let index = usize::try_from(row.index)?;
            if row.code != 0 {
                anyhow::bail!("ImportDirectory row {index}: code {}: {}", row.code, row.message);
            }
            if kinds.get(index).copied().unwrap_or(false) {
                doctor_names.insert(index, row.name);
            }
            answered += 1;
        }
    }
    anyhow::ensure!(answered == total, "ImportDirectory answered {answered} of {total} rows");
    let first_doctor = kinds.iter().position(|k| *k).unwrap_or(0);
    let doctors = planned
        .into_iter()
        .enumerate()
        .map(|(k, p)| {
            let name = doctor_names
                .remove(&(first_doctor + k))
                .ok_or_else(|| anyhow::anyhow!("ImportDirectory named no doctor for {}", p.external_id))?;
            Ok(Doc {
                name,
                display_name: p.display_name,
                department: p.department,
                title: p.title,
                expert: p.expert,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Directory {
        departments: DEPARTMENTS.len(),
        doctors,
        patterns,
        exceptions,
    })
}

// ---------------------------------------------------------------------------------------------
// Consultations

/// Calls by local hour: busy in the morning and early afternoon, a trickle at night.
const HOUR_WEIGHTS: [u32; 24] = [
    1, 1, 0, 0, 0, 0, 1, 4, 12, 14, 13, 8, 3, 3, 11, 12, 9, 4, 2, 2, 2, 1, 1, 1,
];

const CATEGORIES: &[(Category, u32)] = &[
    (Category::Registration, 22),
    (Category::DepartmentGuidance, 22),
    (Category::ExamResults, 12),
    (Category::FeesInsurance, 12),
    (Category::AdmissionDischarge, 8),
    (Category::Medication, 7),
    (Category::Directions, 10),
    (Category::Complaint, 4),
    (Category::Other, 3),
];

fn pick<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut n = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if n < *w {
            return *item;
        }
        n -= w;
    }
    items[0].0
}

fn one<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or_default()
}

/// A consultation's start: a day of the last 30, an hour by the desk's load, never in the future.
fn consultation_time(demo: &Demo, rng: &mut StdRng) -> i64 {
    let mut day = demo.days_ago(rng.random_range(0..30));
    if day.weekday().number_from_monday() > 5 && rng.random_bool(0.5) {
        day = demo.days_ago(rng.random_range(0..30));
    }
    let weights: Vec<(u32, u32)> = HOUR_WEIGHTS.iter().enumerate().map(|(h, w)| (h as u32, *w)).collect();
    let hour = pick(rng, &weights);
    let at = demo.at_local(day, hour * 60 + rng.random_range(0..60));
    if at > demo.now - 2 * MINUTE { at - DAY } else { at }
}

fn consultation(demo: &Demo, rng: &mut StdRng, people: &[&Person], directory: &Directory) -> (usize, pb::Consultation) {
    let start = consultation_time(demo, rng);
    let local_hour = chrono::DateTime::from_timestamp_micros(start + i64::from(demo.utc_offset_minutes) * MINUTE)
        .map(|t| t.hour())
        .unwrap_or(12);
    let night = !(7..20).contains(&local_hour);
    let channel = if night {
        Channel::Hotline
    } else {
        pick(
            rng,
            &[
                (Channel::Hotline, 45),
                (Channel::Counter, 25),
                (Channel::Online, 12),
                (Channel::Wechat, 15),
                (Channel::Other, 3),
            ],
        )
    };
    let staff = if night { 2 } else { rng.random_range(0..GUIDES.len()) };
    let category = pick(rng, CATEGORIES);
    let known = if rng.random_bool(0.4) {
        people.choose(rng).copied()
    } else {
        None
    };
    let dept = match known {
        Some(p) if rng.random_bool(0.6) => p.department,
        _ => DEPARTMENTS.choose(rng).unwrap_or(&DEPARTMENTS[0]),
    };
    let mut c = pb::Consultation {
        channel: channel as i32,
        category: category as i32,
        start_time: Some(ts(start)),
        duration_seconds: rng.random_range(60..=600),
        ..Default::default()
    };
    match known {
        Some(p) => {
            c.patient = p.name.clone();
            c.caller_name = p.display_name.clone();
        }
        None => {
            c.caller_phone = ids::mobile(rng);
            if rng.random_bool(0.6) {
                let (surname, _) = names::surname(rng);
                c.caller_name = format!("{surname}{}", one(rng, &["先生", "女士"]));
            }
        }
    }
    let (building, floor, _) = dept.location;
    let (question, answer): (String, String) = match category {
        Category::Registration => {
            let q = one(
                rng,
                &[
                    "{d}的号怎么预约？",
                    "明天上午{d}还有号吗？",
                    "网上预约了{d}，到医院后怎么取号？",
                    "{d}专家号什么时候放号？",
                ],
            );
            if rng.random_bool(0.5) {
                c.referral_department = dept.code.into();
                c.referral_phone = dept.phone.into();
            }
            (
                q.replace("{d}", dept.zh),
                "可通过医院公众号、自助机或电话预约，提前7天放号；就诊当天凭身份证在自助机签到取号。".into(),
            )
        }
        Category::DepartmentGuidance => {
            let symptom = one(rng, dept.treats);
            let q = one(
                rng,
                &[
                    "{s}，应该挂哪个科？",
                    "家里老人{s}，挂什么科好？",
                    "{s}好几天了，看哪个科？",
                ],
            );
            c.referral_department = dept.code.into();
            c.referral_phone = dept.phone.into();
            let mut answer = format!("建议到{}就诊，位于{building}{floor}楼。", dept.zh);
            let experts: Vec<&Doc> = directory
                .doctors
                .iter()
                .filter(|d| d.expert && d.department.code == dept.code)
                .collect();
            if let Some(doc) = experts.choose(rng)
                && rng.random_bool(0.5)
            {
                c.referral_doctor = doc.name.clone();
                answer += &format!("可预约{}{}的专家门诊。", doc.display_name, title_zh(doc.title));
            }
            (q.replace("{s}", symptom), answer)
        }
        Category::ExamResults => {
            let exam = one(
                rng,
                &["胸部CT", "心脏彩超", "胃镜病理", "血常规", "核磁共振", "甲状腺B超"],
            );
            if rng.random_bool(0.25) {
                c.follow_up_needed = true;
                c.follow_up_note = format!("{exam}报告出具后电话告知患者");
            }
            (
                format!("上周做的{exam}报告什么时候能出？"),
                "一般检查后3个工作日内出报告，可在自助机或公众号查询打印，也可申请邮寄。".into(),
            )
        }
        Category::FeesInsurance => (
            one(
                rng,
                &[
                    "异地医保能直接结算吗？",
                    "住院押金大概要交多少？",
                    "门诊慢病医保报销比例是多少？",
                    "发票丢了能补打吗？",
                ],
            )
            .into(),
            "已告知医保结算政策及办理窗口（门诊楼一楼医保办），需携带医保卡和身份证。".into(),
        ),
        Category::AdmissionDischarge => (
            one(
                rng,
                &["住院需要准备哪些材料？", "出院结算在哪里办理？", "家属可以代办出院吗？"],
            )
            .into(),
            "已告知入出院流程：住院处在门诊楼一楼，代办出院需患者签字授权书和押金条。".into(),
        ),
        Category::Medication => (
            one(
                rng,
                &[
                    "医生开的降压药吃完了，能直接配药吗？",
                    "这个药饭前吃还是饭后吃？",
                    "出院带的药和以前的药能一起吃吗？",
                ],
            )
            .into(),
            "建议按医嘱服药；慢病续方可在便民门诊开具，具体用药请咨询主治医生或药学门诊。".into(),
        ),
        Category::Directions => (
            match rng.random_range(0..4) {
                0 => "医院停车场在哪里？".into(),
                1 => "周末门诊开放吗？".into(),
                2 => "从地铁站怎么走到门诊楼？".into(),
                _ => format!("{}在几楼？", dept.zh),
            },
            format!(
                "门诊周一至周六开放，地下停车场入口在文一路侧；{}在{building}{floor}楼。",
                dept.zh
            ),
        ),
        Category::Complaint => {
            c.follow_up_needed = true;
            c.follow_up_note = "转督查组核实，三个工作日内回电".into();
            c.duration_seconds = rng.random_range(300..=600);
            (
                one(
                    rng,
                    &[
                        "上次就诊排队等了两个小时，想反映一下",
                        "收费窗口工作人员态度不好",
                        "检查预约一直约不上，很着急",
                    ],
                )
                .into(),
                "已记录并致歉，转督查组核实处理后回电。".into(),
            )
        }
        _ => (
            one(rng, &["能开具就诊证明吗？", "医院有陪诊服务吗？", "可以复印病历吗？"]).into(),
            "可到门诊楼一楼服务中心办理，需携带身份证。".into(),
        ),
    };
    c.question = question;
    c.answer = answer;
    if !c.follow_up_needed && rng.random_bool(0.04) {
        c.follow_up_needed = true;
        c.follow_up_note = "核实后回电".into();
    }
    (staff, c)
}

async fn consultations(
    demo: &Demo,
    people: &[&Person],
    directory: &Directory,
) -> anyhow::Result<(usize, usize, usize)> {
    let mut rng = demo.rng("consultations");
    let count = (people.len() / 10).max(60);
    let planned: Vec<(usize, pb::Consultation)> = (0..count)
        .map(|_| consultation(demo, &mut rng, people, directory))
        .collect();
    let about = planned.iter().filter(|(_, c)| !c.patient.is_empty()).count();
    let referred = planned
        .iter()
        .filter(|(_, c)| !c.referral_department.is_empty() || !c.referral_doctor.is_empty())
        .count();
    let clients = (0..GUIDES.len())
        .map(|i| Ok(ConsultationServiceClient::new(demo.as_staff(&guide(i))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let done = each(planned.into_iter().enumerate(), 4, |(i, (staff, c))| {
        let mut client = clients[staff].clone();
        let request = pb::CreateConsultationRequest {
            consultation: Some(c),
            request_id: request_id(demo, "consultation", i),
        };
        async move {
            client
                .create_consultation(request)
                .await
                .answer("CreateConsultation")
                .map(|_| ())
        }
    })
    .await?;
    Ok((done, about, referred))
}

// ---------------------------------------------------------------------------------------------
// Service requests

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Open in the pool.
    Pool,
    /// Open with an owner.
    Owned,
    InProgress,
    Done,
    Cancelled,
}

struct Planned {
    staff: usize,
    request: pb::ServiceRequest,
    target: Target,
    outcome: String,
}

fn address(rng: &mut StdRng) -> Address {
    let city = &CITIES[0];
    Address {
        province: city.province.into(),
        city: city.city.into(),
        district: one(rng, city.districts).into(),
        street: format!(
            "{}{}号{}幢{}室",
            one(rng, city.streets),
            rng.random_range(1..400),
            rng.random_range(1..20),
            rng.random_range(1..6) * 100 + rng.random_range(1..5)
        ),
        postal_code: format!("{}{:03}", city.postal_prefix, rng.random_range(0..100) * 10),
    }
}

const TYPES: [ServiceRequestType; 6] = [
    ServiceRequestType::ResultDelivery,
    ServiceRequestType::ExamEscort,
    ServiceRequestType::AdmissionHelp,
    ServiceRequestType::ProxyDischarge,
    ServiceRequestType::HomeCare,
    ServiceRequestType::Other,
];

const TARGETS: [Target; 5] = [
    Target::Pool,
    Target::Owned,
    Target::InProgress,
    Target::Done,
    Target::Cancelled,
];

/// One request of `kind` meant to end in `target`; `result_age` is how long ago a result
/// delivery's result came in (two hours and more makes it overdue).
fn service_request(
    demo: &Demo,
    rng: &mut StdRng,
    p: &Person,
    kind: ServiceRequestType,
    target: Target,
    result_age: i64,
) -> Planned {
    let done = target == Target::Done;
    let dept = p.department;
    let mut r = pb::ServiceRequest {
        patient: p.name.clone(),
        r#type: kind as i32,
        ..Default::default()
    };
    let outcome: String = match kind {
        ServiceRequestType::ResultDelivery => {
            let exam = one(rng, &["胸部CT", "心脏彩超", "病理报告", "核磁共振", "骨密度"]);
            let method = *[
                pb::ResultDeliveryMethod::Mail,
                pb::ResultDeliveryMethod::Phone,
                pb::ResultDeliveryMethod::Email,
            ]
            .choose(rng)
            .unwrap_or(&pb::ResultDeliveryMethod::Phone);
            let mut d = pb::ResultDeliveryDetails {
                method: method as i32,
                result_time: Some(ts(demo.now - result_age)),
                exam: exam.into(),
                ..Default::default()
            };
            match method {
                pb::ResultDeliveryMethod::Mail => d.address = Some(address(rng)),
                pb::ResultDeliveryMethod::Phone => d.phone = ids::mobile(rng),
                _ => d.email = format!("patient{}@example.com", rng.random_range(1000..100_000)),
            }
            r.details = Some(Details::ResultDelivery(d));
            match method {
                pb::ResultDeliveryMethod::Mail => format!(
                    "{exam}报告已邮寄，顺丰 SF{:012}",
                    rng.random_range(0..1_000_000_000_000u64)
                ),
                pb::ResultDeliveryMethod::Phone => format!("已电话告知患者本人{exam}结果，并提醒复诊"),
                _ => format!("{exam}报告已发送至患者邮箱"),
            }
        }
        ServiceRequestType::ExamEscort => {
            let mut exams = vec![one(rng, &["心脏彩超", "胸部CT", "胃镜", "核磁共振"]).to_string()];
            if rng.random_bool(0.5) {
                exams.push("抽血化验".into());
            }
            let outcome = format!("已陪同完成{}", exams.join("、"));
            r.details = Some(Details::ExamEscort(pb::ExamEscortDetails {
                exams,
                appointment_time: Some(ts(demo.now + rng.random_range(1..6) * HOUR)),
                meeting_point: "门诊楼一楼服务台".into(),
            }));
            outcome
        }
        ServiceRequestType::AdmissionHelp => {
            r.details = Some(Details::AdmissionHelp(pb::AdmissionHelpDetails {
                ward: format!("{}{}病区", dept.zh, rng.random_range(1..=3)),
                notifying_department: dept.code.into(),
                admission_time: Some(ts(demo.now + rng.random_range(1..4) * HOUR)),
                escorted_to_ward: done,
                handed_over: done,
            }));
            "已护送至病区，与责任医生和护士交接".into()
        }
        ServiceRequestType::ProxyDischarge => {
            let mail = rng.random_bool(0.5);
            r.details = Some(Details::ProxyDischarge(pb::ProxyDischargeDetails {
                authorization_signed: done || target == Target::InProgress,
                deposit_slip_received: done,
                invoice_delivery: if mail {
                    pb::InvoiceDelivery::Mail
                } else {
                    pb::InvoiceDelivery::PickUp
                } as i32,
                invoice_address: mail.then(|| address(rng)),
                ward: format!("{}{}病区", dept.zh, rng.random_range(1..=3)),
            }));
            if mail {
                "已代办出院结算，发票邮寄".into()
            } else {
                "已代办出院结算，发票在服务中心待领取".into()
            }
        }
        ServiceRequestType::HomeCare => {
            let service = one(rng, &["上门换药", "PICC导管维护", "上门采血", "压疮护理"]);
            r.details = Some(Details::HomeCare(pb::HomeCareDetails {
                service: service.into(),
                preferred_time: Some(ts(demo.now + rng.random_range(1..4) * DAY)),
                address: Some(address(rng)),
            }));
            format!("已预约社区护士上门{service}")
        }
        _ => {
            r.description = one(rng, &["代办病历复印并邮寄", "代办诊断证明盖章", "协助办理医保异地备案"]).into();
            "已办理完成并告知患者".into()
        }
    };
    let staff = rng.random_range(0..GUIDES.len());
    if target == Target::Owned {
        r.owner = GUIDES[(staff + 1) % GUIDES.len()].into();
    }
    Planned {
        staff,
        request: r,
        target,
        outcome,
    }
}

fn service_requests_plan(demo: &Demo, people: &[&Person]) -> Vec<Planned> {
    let mut rng = demo.rng("service-requests");
    let mut plan = Vec::new();
    if people.is_empty() {
        return plan;
    }
    // Every type in every state; result deliveries still open are two hours past their result.
    for target in TARGETS {
        for kind in TYPES {
            let p = people.choose(&mut rng).copied().unwrap_or(people[0]);
            let open = matches!(target, Target::Pool | Target::Owned | Target::InProgress);
            let age = if open {
                2 * HOUR + rng.random_range(0..40) * MINUTE
            } else {
                rng.random_range(10..40) * MINUTE
            };
            plan.push(service_request(demo, &mut rng, p, kind, target, age));
        }
    }
    // The rest: mostly open work of the day, one result due soon, one more overdue.
    let extra: [(ServiceRequestType, Target, i64); 10] = [
        (ServiceRequestType::ResultDelivery, Target::Pool, 50 * MINUTE),
        (ServiceRequestType::ResultDelivery, Target::Pool, 3 * HOUR),
        (ServiceRequestType::ResultDelivery, Target::Done, 20 * MINUTE),
        (ServiceRequestType::ExamEscort, Target::Pool, 0),
        (ServiceRequestType::ExamEscort, Target::Done, 0),
        (ServiceRequestType::AdmissionHelp, Target::Owned, 0),
        (ServiceRequestType::HomeCare, Target::Pool, 0),
        (ServiceRequestType::HomeCare, Target::Done, 0),
        (ServiceRequestType::ProxyDischarge, Target::Pool, 0),
        (ServiceRequestType::Other, Target::InProgress, 0),
    ];
    for (kind, target, age) in extra {
        let p = people.choose(&mut rng).copied().unwrap_or(people[0]);
        plan.push(service_request(demo, &mut rng, p, kind, target, age.max(MINUTE)));
    }
    plan
}

/// Creates one request and walks it to its target state; a retry picks up where it stopped.
async fn work_request(
    client: &mut ServiceRequestServiceClient<super::context::Authed>,
    planned: Planned,
    request_id: String,
) -> anyhow::Result<pb::ServiceRequest> {
    let mut r = client
        .create_service_request(pb::CreateServiceRequestRequest {
            service_request: Some(planned.request),
            request_id,
        })
        .await
        .answer("CreateServiceRequest")?;
    let open = ServiceRequestState::Open as i32;
    let in_progress = ServiceRequestState::InProgress as i32;
    loop {
        r = match planned.target {
            Target::InProgress | Target::Done if r.state == open => client
                .start_service_request(pb::StartServiceRequestRequest {
                    name: r.name.clone(),
                    etag: r.etag.clone(),
                    owner: String::new(),
                })
                .await
                .answer("StartServiceRequest")?,
            Target::Done if r.state == in_progress => client
                .complete_service_request(pb::CompleteServiceRequestRequest {
                    name: r.name.clone(),
                    etag: r.etag.clone(),
                    outcome: planned.outcome.clone(),
                })
                .await
                .answer("CompleteServiceRequest")?,
            Target::Cancelled if r.state == open || r.state == in_progress => client
                .cancel_service_request(pb::CancelServiceRequestRequest {
                    name: r.name.clone(),
                    etag: r.etag.clone(),
                    reason: "患者已自行办理，无需代办".into(),
                })
                .await
                .answer("CancelServiceRequest")?,
            _ => return Ok(r),
        };
    }
}

async fn service_requests(demo: &Demo, people: &[&Person]) -> anyhow::Result<Vec<pb::ServiceRequest>> {
    let plan = service_requests_plan(demo, people);
    let clients = (0..GUIDES.len())
        .map(|i| Ok(ServiceRequestServiceClient::new(demo.as_staff(&guide(i))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    ordered(plan.into_iter().enumerate(), 4, |(i, planned)| {
        let mut client = clients[planned.staff].clone();
        let id = request_id(demo, "service-request", i);
        async move { work_request(&mut client, planned, id).await }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Appointments, segments, referrals

async fn appointments(demo: &Demo, people: &[&Person], directory: &Directory) -> anyhow::Result<usize> {
    let mut rng = demo.rng("appointments");
    let today = demo.today();
    let mut requests = Vec::new();
    for i in 0..people.len().min(6) {
        let Some(p) = people.choose(&mut rng).copied() else {
            break;
        };
        let expert = directory
            .doctors
            .iter()
            .find(|d| d.expert && d.department.code == p.department.code)
            .filter(|_| i % 2 == 0);
        let first = rng.random_range(2..6);
        requests.push(pb::RequestAppointmentRequest {
            appointment_request: Some(pb::AppointmentRequest {
                patient: p.name.clone(),
                kind: if expert.is_some() {
                    pb::AppointmentKind::Expert
                } else {
                    pb::AppointmentKind::Revisit
                } as i32,
                department: p.department.code.into(),
                doctor: expert.map(|d| d.name.clone()).unwrap_or_default(),
                preferred_dates: vec![
                    date(today + Duration::days(first)),
                    date(today + Duration::days(first + 1)),
                ],
                reason: if expert.is_some() {
                    "患者希望预约专家门诊复查".into()
                } else {
                    "出院后复诊".into()
                },
                source: "guide-desk".into(),
                ..Default::default()
            }),
            request_id: request_id(demo, "appointment", i),
        });
    }
    let client = AppointmentServiceClient::new(demo.as_staff(&guide(0))?);
    each(requests, 4, |request| {
        let mut client = client.clone();
        async move {
            client
                .request_appointment(request)
                .await
                .answer("RequestAppointment")
                .map(|_| ())
        }
    })
    .await
}

async fn segments(demo: &Demo) -> anyhow::Result<usize> {
    let half_year_ago = demo.now - 182 * DAY;
    let list = [
        (
            "心内科高血压患者 50–70 岁",
            "心血管内科的原发性高血压患者，50 至 70 岁：血压管理讲座与随访邀约。",
            pb::SegmentFilter {
                departments: vec!["cardiology".into()],
                diagnosis_prefixes: vec!["I10".into()],
                min_age: Some(50),
                max_age: Some(70),
                ..Default::default()
            },
        ),
        (
            "半年未复诊的潜在客户",
            "来过但半年以上没有就诊的患者：复诊提醒和健康讲座邀约。",
            pb::SegmentFilter {
                last_visit_before: Some(ts(half_year_ago)),
                min_visits: Some(1),
                ..Default::default()
            },
        ),
        (
            "VIP 客户",
            "VIP 患者：专人回访、体检套餐和专家门诊优先预约。",
            pb::SegmentFilter {
                vip: Some(true),
                ..Default::default()
            },
        ),
    ];
    let mut client = SegmentServiceClient::new(demo.as_staff(&guide(0))?);
    for (i, (name, description, filter)) in list.into_iter().enumerate() {
        client
            .create_segment(pb::CreateSegmentRequest {
                segment: Some(pb::Segment {
                    display_name: name.into(),
                    description: description.into(),
                    filter: Some(filter),
                    ..Default::default()
                }),
                request_id: request_id(demo, "segment", i),
            })
            .await
            .answer("CreateSegment")?;
    }
    Ok(3)
}

async fn referrals(demo: &Demo, people: &[&Person]) -> anyhow::Result<usize> {
    let mut rng = demo.rng("referrals");
    if people.len() < 4 {
        return Ok(0);
    }
    let mut order: Vec<&Person> = people.to_vec();
    order.shuffle(&mut rng);
    let pool = (people.len() / 20).clamp(1, 12);
    let (introducers, rest) = order.split_at(pool);
    let mut requests = Vec::new();
    for (i, referred) in rest.iter().take(30).enumerate() {
        // A few patients introduce many: the top-introducer list has a head.
        let k = ((rng.random::<f64>().powi(2)) * pool as f64) as usize;
        let introducer = introducers[k.min(pool - 1)];
        let channel = one(
            &mut rng,
            &["word_of_mouth", "word_of_mouth", "wechat", "event", "community"],
        );
        requests.push(pb::RecordReferralRequest {
            referral: Some(pb::Referral {
                introducer: introducer.name.clone(),
                referred: referred.name.clone(),
                referral_date: Some(date(demo.days_ago(rng.random_range(1..365)))),
                channel: channel.into(),
                note: match channel {
                    "event" => "健康讲座现场介绍".into(),
                    "wechat" => "转发医院公众号文章推荐".into(),
                    "community" => "社区义诊时介绍".into(),
                    _ => "亲友介绍来院就诊".into(),
                },
                ..Default::default()
            }),
            request_id: request_id(demo, "referral", i),
        });
    }
    let client = ReferralServiceClient::new(demo.as_staff(&guide(1))?);
    each(requests, 4, |request| {
        let mut client = client.clone();
        async move {
            client
                .record_referral(request)
                .await
                .answer("RecordReferral")
                .map(|_| ())
        }
    })
    .await
}

/// The desk's work of the last month: consultations, service requests, appointment requests
/// (only when `book` — the booking platform's notifier merely logs), segments and referrals.
pub async fn desk(demo: &Demo, people: &[Person], directory: &Directory, book: bool) -> anyhow::Result<Figures> {
    let living: Vec<&Person> = people.iter().filter(|p| !p.deceased).collect();
    let active: Vec<&Person> = living
        .iter()
        .copied()
        .filter(|p| p.standing == Standing::Active && p.reachable())
        .collect();
    let (consulted, requests, appointments, segments, referrals) = tokio::try_join!(
        consultations(demo, &living, directory),
        service_requests(demo, &active),
        async {
            if book {
                appointments(demo, &active, directory).await
            } else {
                tracing::info!("patients.booking.kind is not log: the demo requests no appointments");
                Ok(0)
            }
        },
        segments(demo),
        referrals(demo, &living),
    )?;
    let mut by_state = Vec::new();
    for state in [
        ServiceRequestState::Open,
        ServiceRequestState::InProgress,
        ServiceRequestState::Done,
        ServiceRequestState::Cancelled,
    ] {
        let n = requests.iter().filter(|r| r.state == state as i32).count();
        let label = hcrm_patients::domain::service_request::state_name(state);
        by_state.push((label, n));
    }
    let overdue = requests
        .iter()
        .filter(|r| r.sla_state == ServiceRequestSlaState::Overdue as i32)
        .count();
    Ok(Figures {
        consultations: consulted.0,
        about_patients: consulted.1,
        referred: consulted.2,
        service_requests: requests.len(),
        by_state,
        overdue,
        appointments,
        segments,
        referrals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::patients::tests::offline_demo;
    use hcrm_kit::validate::Violations;
    use hcrm_patients::domain::{consultation as rules, directory as dir, service_request as sr};

    #[tokio::test]
    async fn directory_rows_pass_the_services_own_checks() {
        let demo = offline_demo();
        let (rows, doctors, patterns, exceptions) = directory_rows(&demo);
        assert_eq!(
            doctors.len(),
            DEPARTMENTS.iter().map(|d| d.doctors.len()).sum::<usize>()
        );
        assert!(patterns >= 2 * doctors.len() && patterns <= 4 * doctors.len());
        assert!(exceptions >= 4);
        let titles: std::collections::HashSet<i32> = doctors.iter().map(|d| d.title as i32).collect();
        assert_eq!(titles.len(), 3, "chief, associate chief and attending");
        for (i, row) in rows.into_iter().enumerate() {
            let mut v = Violations::new();
            match row.row.unwrap() {
                Row::Department(mut d) => {
                    dir::normalize_department(&mut d);
                    dir::validate_department(&d, "department", &mut v);
                }
                Row::Doctor(mut d) => {
                    dir::normalize_doctor(&mut d);
                    dir::validate_doctor(&d, "doctor", &mut v);
                }
                Row::DoctorPatterns(set) => {
                    assert!((2..=4).contains(&set.patterns.len()));
                    for mut p in set.patterns {
                        dir::normalize_pattern(&mut p);
                        assert!(dir::validate_pattern(&p, "pattern", false, &mut v).is_some());
                    }
                }
                Row::Exception(mut e) => {
                    dir::normalize_exception(&mut e);
                    assert!(dir::validate_exception(&e, "exception", &mut v).is_some(), "{e:?}");
                }
                Row::Pattern(_) => {}
            }
            assert!(v.finish().is_ok(), "row {i}");
        }
    }

    fn people(demo: &Demo) -> Vec<Person> {
        (0..200)
            .map(|i| Person {
                name: format!("patients/p{i}"),
                display_name: "测试".into(),
                female: i % 2 == 0,
                birth: demo.days_ago(365 * 40),
                department: &DEPARTMENTS[i % DEPARTMENTS.len()],
                standing: Standing::Active,
                deceased: false,
                do_not_contact: false,
            })
            .collect()
    }

    #[tokio::test]
    async fn consultations_and_requests_pass_the_services_own_checks() {
        let demo = offline_demo();
        let people = people(&demo);
        let refs: Vec<&Person> = people.iter().collect();
        let directory = Directory {
            doctors: vec![Doc {
                name: "doctors/d1".into(),
                display_name: "林国栋",
                department: &DEPARTMENTS[0],
                title: DoctorTitle::ChiefPhysician,
                expert: true,
            }],
            ..Default::default()
        };
        let mut rng = demo.rng("consultations");
        let mut hours = [0; 24];
        for i in 0..500 {
            let (_, mut c) = consultation(&demo, &mut rng, &refs, &directory);
            rules::normalize(&mut c);
            let start = c.start_time.as_ref().and_then(hcrm_kit::time::from_timestamp);
            let at = start.unwrap();
            assert!(at < demo.now && at > demo.now - 31 * DAY, "consultation {i}");
            hours[((at / HOUR + i64::from(demo.utc_offset_minutes) / 60).rem_euclid(24)) as usize] += 1;
            let mut v = Violations::new();
            rules::validate(&c, "consultation", start, demo.now, &mut v);
            assert!(v.finish().is_ok(), "consultation {i}: {c:?}");
        }
        assert!(hours[9] > hours[13] && hours[15] > hours[21], "{hours:?}");
        let plan = service_requests_plan(&demo, &refs);
        assert_eq!(plan.len(), 40);
        for (i, p) in plan.iter().enumerate() {
            let mut r = p.request.clone();
            sr::normalize(&mut r);
            let mut v = Violations::new();
            sr::validate(&r, "service_request", demo.now, &mut v);
            assert!(v.finish().is_ok(), "request {i}: {r:?}");
            if p.target == Target::Done {
                assert!(sr::check_completable(&r).is_ok(), "request {i}");
            }
        }
    }
}
