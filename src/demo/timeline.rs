//! The patients' timeline over the last months as the HIS, the booking platform, the lab and the
//! hotline would report it: outpatient visits, prescriptions, bookings, admissions and
//! discharges (which followup turns into plans), exam results and information requests.

use super::context::{Answer, DAY, Demo, HOUR, MINUTE, ts};
use super::hospital::{self, DEPARTMENTS, Department};
use super::patients::{Person, Standing};
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::*;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

const BATCH: usize = 1000;

/// The generated timeline: stays in hospital first (so plans start while the rest goes in).
pub struct Timeline {
    pub stays: Vec<ImportInteractionRow>,
    pub rest: Vec<ImportInteractionRow>,
    pub discharges: usize,
    /// Discharges of patients who may be contacted: each makes one plan.
    pub expected_plans: usize,
}

impl Timeline {
    pub fn entries(&self) -> usize {
        self.stays.len() + self.rest.len()
    }
}

struct Builder<'a> {
    demo: &'a Demo,
    rng: StdRng,
    stays: Vec<ImportInteractionRow>,
    rest: Vec<ImportInteractionRow>,
    discharges: usize,
    expected_plans: usize,
}

fn doctor(rng: &mut StdRng, dept: &Department) -> &'static str {
    dept.doctors.choose(rng).copied().unwrap_or("值班医生")
}

impl Builder<'_> {
    fn entry(&mut self, stay: bool, person: &Person, interaction: Interaction) {
        let row = ImportInteractionRow {
            patient: person.name.clone(),
            patient_external_id: String::new(),
            interaction: Some(interaction),
        };
        if stay {
            self.stays.push(row);
        } else {
            self.rest.push(row);
        }
    }

    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:07}", self.stays.len() + self.rest.len())
    }

    /// A local daytime moment `days` days ago (never in the future).
    fn daytime(&mut self, days: i64) -> i64 {
        let day = self.demo.days_ago(days);
        let at = self.demo.at_local(day, self.rng.random_range(8 * 60..17 * 60 + 30));
        at.min(self.demo.now - 10 * MINUTE)
    }

    fn visit(&mut self, p: &Person, at: i64) {
        let dept = if self.rng.random_bool(0.8) {
            p.department
        } else {
            DEPARTMENTS.choose(&mut self.rng).unwrap_or(p.department)
        };
        let doc = doctor(&mut self.rng, dept);
        if self.rng.random_bool(0.15) {
            let booked = at - self.rng.random_range(2..10) * DAY - self.rng.random_range(0..8) * HOUR;
            let id = self.next_id("bk");
            self.entry(
                false,
                p,
                Interaction {
                    kind: InteractionKind::Appointment as i32,
                    department: dept.code.into(),
                    occur_time: Some(ts(booked)),
                    summary: format!("预约{}门诊：{}医生", dept.zh, doc),
                    source_system: "booking".into(),
                    external_id: id,
                    ..Default::default()
                },
            );
        }
        let (code, diagnosis) = *dept.diagnoses.choose(&mut self.rng).unwrap_or(&("Z00.0", "健康检查"));
        let id = self.next_id("op");
        self.entry(
            false,
            p,
            Interaction {
                kind: InteractionKind::OutpatientVisit as i32,
                department: dept.code.into(),
                occur_time: Some(ts(at)),
                summary: format!("{}门诊就诊：{}", dept.zh, diagnosis),
                source_system: "his".into(),
                external_id: id,
                details_json: serde_json::json!({ "doctor": doc, "visit_type": "复诊" }).to_string(),
                diagnosis_codes: vec![code.into()],
                ..Default::default()
            },
        );
        if self.rng.random_bool(0.4) {
            let drugs = self.rng.random_range(1..5);
            let id = self.next_id("rx");
            self.entry(
                false,
                p,
                Interaction {
                    kind: InteractionKind::Prescription as i32,
                    department: dept.code.into(),
                    occur_time: Some(ts(at + 20 * MINUTE)),
                    summary: format!("电子处方：{doc}开具，共{drugs}种药品"),
                    source_system: "his".into(),
                    external_id: id,
                    ..Default::default()
                },
            );
        }
    }

    /// An admission and its discharge `days` days ago.
    fn stay(&mut self, p: &Person, discharged: i64) {
        let dept = p.department;
        let (code, diagnosis) = *dept.diagnoses.choose(&mut self.rng).unwrap_or(&("Z00.0", "健康检查"));
        let nights = self.rng.random_range(2..12);
        let admitted = discharged - nights * DAY - self.rng.random_range(0..6) * HOUR;
        let doc = doctor(&mut self.rng, dept);
        let ward = format!("{}病区{}床", dept.zh, self.rng.random_range(1..48));
        let id = self.next_id("adm");
        self.entry(
            true,
            p,
            Interaction {
                kind: InteractionKind::Admission as i32,
                department: dept.code.into(),
                occur_time: Some(ts(admitted)),
                summary: format!("入院：{diagnosis}"),
                source_system: "his".into(),
                external_id: id,
                details_json: serde_json::json!({ "doctor": doc, "ward": ward }).to_string(),
                diagnosis_codes: vec![code.into()],
                ..Default::default()
            },
        );
        let id = self.next_id("dis");
        self.entry(
            true,
            p,
            Interaction {
                kind: InteractionKind::Discharge as i32,
                department: dept.code.into(),
                occur_time: Some(ts(discharged)),
                summary: format!("出院：{diagnosis}，住院{nights}天"),
                source_system: "his".into(),
                external_id: id,
                details_json: serde_json::json!({ "doctor": doc, "ward": ward, "outcome": "好转" }).to_string(),
                diagnosis_codes: vec![code.into()],
                ..Default::default()
            },
        );
        self.discharges += 1;
        if p.reachable() {
            self.expected_plans += 1;
        }
    }

    fn exam(&mut self, p: &Person, at: i64) {
        let test = ["血常规", "肝肾功能", "血脂四项", "糖化血红蛋白", "胸部CT", "心脏彩超"]
            .choose(&mut self.rng)
            .copied()
            .unwrap_or("血常规");
        let id = self.next_id("lab");
        self.entry(
            false,
            p,
            Interaction {
                kind: InteractionKind::ExamReport as i32,
                department: p.department.code.into(),
                occur_time: Some(ts(at)),
                summary: format!("检查报告已出：{test}"),
                source_system: "lis".into(),
                external_id: id,
                ..Default::default()
            },
        );
    }

    fn enquiry(&mut self, p: &Person, at: i64) {
        let topic = [
            "体检套餐价格",
            "专家门诊时间",
            "医保报销范围",
            "停车和交通",
            "住院探视规定",
        ]
        .choose(&mut self.rng)
        .copied()
        .unwrap_or("专家门诊时间");
        let id = self.next_id("call");
        self.entry(
            false,
            p,
            Interaction {
                kind: InteractionKind::InformationRequest as i32,
                department: p.department.code.into(),
                occur_time: Some(ts(at)),
                summary: format!("咨询热线：{topic}"),
                source_system: "hotline".into(),
                external_id: id,
                ..Default::default()
            },
        );
    }
}

/// Days ago, from 1 to `max`, recent days more likely (most discharges are recent).
fn recent_days(rng: &mut StdRng, max: i64) -> i64 {
    let u: f64 = rng.random();
    1 + (u.powf(1.4) * (max - 1) as f64) as i64
}

pub fn generate(demo: &Demo, people: &[Person]) -> Timeline {
    let mut b = Builder {
        demo,
        rng: demo.rng("timeline"),
        stays: Vec::new(),
        rest: Vec::new(),
        discharges: 0,
        expected_plans: 0,
    };
    for p in people {
        match p.standing {
            Standing::Lead => {
                let days = b.rng.random_range(10..120);
                let at = b.daytime(days);
                b.enquiry(p, at);
            }
            Standing::Lapsed => {
                for _ in 0..b.rng.random_range(1..=2) {
                    let days = b.rng.random_range(200..500);
                    let at = b.daytime(days);
                    b.visit(p, at);
                }
            }
            Standing::Active => {
                for _ in 0..b.rng.random_range(1..=3) {
                    let days = recent_days(&mut b.rng, 180);
                    let at = b.daytime(days);
                    b.visit(p, at);
                }
                if p.department.inpatient && b.rng.random_bool(0.22) {
                    let days = recent_days(&mut b.rng, 170);
                    let at = b.daytime(days);
                    b.stay(p, at);
                    // Some come back within a month: the readmissions followup's statistics compare.
                    if b.rng.random_bool(0.06) && days > 30 {
                        let again = at + b.rng.random_range(14..26) * DAY;
                        b.stay(p, again);
                    }
                }
                if b.rng.random_bool(0.04) {
                    // Results of the last two days and of the last hour, so the one-hour promise
                    // shows both notices sent late (results in before the demo) and on time.
                    let back = if b.rng.random_bool(0.4) {
                        b.rng.random_range(5 * MINUTE..50 * MINUTE)
                    } else {
                        b.rng.random_range(HOUR..48 * HOUR)
                    };
                    b.exam(p, demo.now - back);
                }
            }
        }
    }
    // Discharges exactly 1, 7 and 30 days ago give follow-ups due today at every step.
    let inpatients: Vec<&Person> = people
        .iter()
        .filter(|p| p.standing == Standing::Active && p.department.inpatient && p.reachable())
        .collect();
    let per_step = (people.len() / 250).max(2);
    for days in [1, 7, 30] {
        for _ in 0..per_step {
            if let Some(p) = inpatients.choose(&mut b.rng).copied() {
                let at = b.daytime(days);
                b.stay(p, at);
            }
        }
    }
    Timeline {
        stays: b.stays,
        rest: b.rest,
        discharges: b.discharges,
        expected_plans: b.expected_plans,
    }
}

/// Sends `rows` through one `ImportInteractions` stream; every row must succeed.
pub async fn import(demo: &Demo, rows: &[ImportInteractionRow]) -> anyhow::Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let messages: Vec<ImportInteractionsRequest> = rows
        .chunks(BATCH)
        .map(|chunk| ImportInteractionsRequest { rows: chunk.to_vec() })
        .collect();
    let mut client = PatientServiceClient::new(demo.as_staff(&hospital::his())?);
    let mut results = client
        .import_interactions(futures::stream::iter(messages))
        .await
        .answer("ImportInteractions")?;
    let mut done = 0;
    while let Some(message) = results.message().await? {
        for row in message.results {
            if row.code != 0 {
                anyhow::bail!(
                    "ImportInteractions row {}: code {}: {}",
                    row.index,
                    row.code,
                    row.message
                );
            }
            done += 1;
        }
    }
    anyhow::ensure!(
        done == rows.len(),
        "ImportInteractions answered {done} of {} rows",
        rows.len()
    );
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::patients::tests::offline_demo;
    use crate::demo::patients::{Person, Standing};
    use hcrm_kit::validate::Violations;

    #[tokio::test]
    async fn generated_entries_pass_the_services_own_checks() {
        let demo = offline_demo();
        let people: Vec<Person> = (0..300)
            .map(|i| Person {
                name: format!("patients/p{i}"),
                display_name: "测试".into(),
                female: i % 2 == 0,
                birth: demo.days_ago(365 * 40),
                department: &DEPARTMENTS[i % DEPARTMENTS.len()],
                standing: [Standing::Active, Standing::Active, Standing::Lapsed, Standing::Lead][i % 4],
                deceased: false,
                do_not_contact: i % 10 == 0,
            })
            .collect();
        let timeline = generate(&demo, &people);
        assert!(timeline.discharges >= 6, "{} discharges", timeline.discharges);
        assert!(timeline.expected_plans <= timeline.discharges);
        let mut ids = std::collections::HashSet::new();
        for (i, row) in timeline.stays.iter().chain(&timeline.rest).enumerate() {
            let interaction = row.interaction.as_ref().unwrap();
            let mut v = Violations::new();
            hcrm_patients::domain::interaction::validate(interaction, "interaction", demo.now, &mut v);
            assert!(v.finish().is_ok(), "entry {i}: {interaction:?}");
            assert!(ids.insert(interaction.external_id.clone()), "external ids are unique");
            let at = interaction
                .occur_time
                .as_ref()
                .and_then(hcrm_kit::time::from_timestamp)
                .unwrap();
            assert!(at < demo.now, "entry {i} is in the future");
        }
    }
}
