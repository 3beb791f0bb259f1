//! Complaints, suggestions and praise from every intake channel, walked through the PDCA
//! workflow so each state appears: some just received, some under investigation, replied and
//! waiting for the confirmation call, confirmed by that call (or not: reopened), closed,
//! withdrawn, rejected, and a duplicate linked into its primary case.

use super::case_texts::{STORIES, Story};
use super::case_workflow::Worker;
use super::context::{Answer, Demo, ordered};
use super::hospital::{self, DEPARTMENTS, Department, Staff};
use super::patients::{Person, Standing};
use hcrm_kit::auth::Role;
use hcrm_proto::feedback::case_service_client::CaseServiceClient;
use hcrm_proto::feedback::*;
use hcrm_proto::followup::followup_service_client::FollowupServiceClient;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use std::collections::BTreeMap;

/// Where the demo leaves a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Received,
    Assigned,
    Investigating,
    ActionPlanned,
    Replied,
    Confirmed,
    Closed,
    /// Replied, but the confirmation call says the fix did not work: investigating again.
    Reopened,
    Withdrawn,
    Rejected,
    Linked,
}

pub struct Spec {
    pub story: &'static Story,
    pub department: &'static Department,
    pub doctor: &'static str,
    pub channel: IntakeChannel,
    pub severity: Severity,
    pub patient: Option<Person>,
    pub target: Target,
    /// For a duplicate: the index of the case it is linked into.
    pub primary: Option<usize>,
    pub request_id: String,
}

impl Spec {
    fn case(&self, rng: &mut StdRng) -> Case {
        let fill = |t: &str| t.replace("{d}", self.department.zh).replace("{doc}", self.doctor);
        let (contact_name, contact_phone) = match &self.patient {
            Some(_) => (String::new(), String::new()),
            None if rng.random_bool(0.7) => (
                format!(
                    "{}{}",
                    super::names::surname(rng).0,
                    if rng.random_bool(0.5) { "先生" } else { "女士" }
                ),
                super::ids::mobile(rng),
            ),
            None => (String::new(), String::new()),
        };
        Case {
            kind: self.story.kind as i32,
            channel: self.channel as i32,
            patient: self.patient.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            contact_name,
            contact_phone,
            department: self.department.code.into(),
            category: self.story.category.into(),
            subcategory: self.story.subcategory.into(),
            severity: self.severity as i32,
            title: fill(self.story.title),
            description: fill(self.story.description),
            ..Default::default()
        }
    }

    /// Confirmed through followup's confirmation call (a registered patient who may be called),
    /// or by staff.
    pub fn confirmed_by_call(&self) -> bool {
        self.patient.as_ref().is_some_and(Person::reachable)
    }
}

fn random_target(rng: &mut StdRng, kind: CaseKind) -> Target {
    let u = rng.random_range(0..100);
    match kind {
        CaseKind::Complaint => match u {
            0..=9 => Target::Received,
            10..=17 => Target::Assigned,
            18..=27 => Target::Investigating,
            28..=37 => Target::ActionPlanned,
            38..=47 => Target::Replied,
            48..=52 => Target::Confirmed,
            53..=86 => Target::Closed,
            87..=88 => Target::Reopened,
            89..=94 => Target::Withdrawn,
            _ => Target::Rejected,
        },
        CaseKind::Suggestion => match u {
            0..=19 => Target::Received,
            20..=34 => Target::Assigned,
            _ => Target::Closed,
        },
        _ => {
            if u < 25 {
                Target::Received
            } else {
                Target::Closed
            }
        }
    }
}

fn severity(rng: &mut StdRng, story: &Story) -> Severity {
    if story.kind != CaseKind::Complaint {
        return Severity::Low;
    }
    if story.subcategory == "safety" {
        return if rng.random_bool(0.5) {
            Severity::Critical
        } else {
            Severity::High
        };
    }
    match rng.random_range(0..100) {
        0..=19 => Severity::Low,
        20..=79 => Severity::Medium,
        80..=96 => Severity::High,
        _ => Severity::Critical,
    }
}

fn specs(demo: &Demo, people: &[Person]) -> Vec<Spec> {
    let mut rng = demo.rng("cases");
    let candidates: Vec<&Person> = people
        .iter()
        .filter(|p| p.standing == Standing::Active && !p.deceased)
        .collect();
    let count = (people.len() / 20).max(30);
    // The first complaints take every target once, so a small demo still shows each state.
    let forced = [
        Target::Received,
        Target::Assigned,
        Target::Investigating,
        Target::ActionPlanned,
        Target::Replied,
        Target::Confirmed,
        Target::Closed,
        Target::Reopened,
        Target::Withdrawn,
        Target::Rejected,
    ];
    let complaints: Vec<&Story> = STORIES.iter().filter(|s| s.kind == CaseKind::Complaint).collect();
    let mut out: Vec<Spec> = Vec::new();
    for i in 0..count {
        let story: &'static Story = if i < forced.len() || rng.random_bool(0.6) {
            complaints.choose(&mut rng).copied().unwrap_or(&STORIES[0])
        } else {
            STORIES.choose(&mut rng).unwrap_or(&STORIES[0])
        };
        let kind = story.kind;
        let target = forced.get(i).copied().unwrap_or_else(|| random_target(&mut rng, kind));
        let department = DEPARTMENTS.choose(&mut rng).unwrap_or(&DEPARTMENTS[0]);
        let needs_call = matches!(target, Target::Closed | Target::Reopened) && i < forced.len();
        let anonymous = target == Target::Confirmed && i < forced.len();
        let patient = if needs_call {
            candidates
                .iter()
                .filter(|p| p.reachable())
                .copied()
                .collect::<Vec<_>>()
                .choose(&mut rng)
                .copied()
        } else if anonymous || rng.random_bool(0.25) {
            None
        } else {
            candidates.choose(&mut rng).copied()
        };
        let channel = *[
            IntakeChannel::Hotline,
            IntakeChannel::Hotline,
            IntakeChannel::Counter,
            IntakeChannel::Web,
            IntakeChannel::App,
            IntakeChannel::Mailbox,
        ]
        .choose(&mut rng)
        .unwrap_or(&IntakeChannel::Hotline);
        out.push(Spec {
            story,
            department,
            doctor: department.doctors.choose(&mut rng).copied().unwrap_or("值班"),
            channel,
            severity: severity(&mut rng, story),
            patient: patient.cloned(),
            target,
            primary: None,
            request_id: format!("demo-case-{i}"),
        });
    }
    // The same patient's complaint again through another channel: a duplicate to link.
    if let Some(primary) = out
        .iter()
        .position(|s| s.story.kind == CaseKind::Complaint && s.patient.is_some() && s.target == Target::Received)
    {
        let p = &out[primary];
        let duplicate = Spec {
            story: p.story,
            department: p.department,
            doctor: p.doctor,
            channel: if p.channel == IntakeChannel::Web {
                IntakeChannel::Hotline
            } else {
                IntakeChannel::Web
            },
            severity: p.severity,
            patient: p.patient.clone(),
            target: Target::Linked,
            primary: Some(primary),
            request_id: format!("demo-case-{}", out.len()),
        };
        out.push(duplicate);
    }
    out
}

/// Who takes a case in through its channel: guides on the phone and at the counter, the web
/// portal and app as integrations, the inspection group for the mailbox.
fn intake(channel: IntakeChannel, rng: &mut StdRng) -> (Staff, String) {
    match channel {
        IntakeChannel::Web | IntakeChannel::App => (
            Staff::new("web-portal", Role::Integration),
            hospital::INSPECTORS[1].to_string(),
        ),
        IntakeChannel::Mailbox => (Staff::new(hospital::INSPECTORS[2], Role::Inspector), String::new()),
        _ => (
            Staff::new(hospital::GUIDES.choose(rng).copied().unwrap_or("guide-li"), Role::Guide),
            String::new(),
        ),
    }
}

#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub cases: usize,
    pub by_state: BTreeMap<String, usize>,
}

/// Opens the cases and walks each to its state.
pub async fn fill(demo: &Demo, people: &[Person]) -> anyhow::Result<Figures> {
    let specs = specs(demo, people);
    let mut rng = demo.rng("case-intake");
    let mut jobs = Vec::new();
    for spec in &specs {
        let (staff, owner) = intake(spec.channel, &mut rng);
        let case = spec.case(&mut rng);
        let pick: u32 = rng.random();
        jobs.push((spec, staff, owner, case, pick));
    }
    let worker = Worker {
        cases: CaseServiceClient::new(demo.as_staff(&Staff::new(hospital::INSPECTORS[0], Role::Inspector))?),
        followup: FollowupServiceClient::new(demo.as_staff(&hospital::operator())?),
        inspector: FollowupServiceClient::new(demo.as_staff(&Staff::new(hospital::INSPECTORS[1], Role::Inspector))?),
        today: demo.today(),
    };
    // Open every case first: a duplicate is linked into a case that must exist.
    let opened = ordered(&jobs, 8, |(spec, staff, owner, case, _)| async move {
        let mut client = CaseServiceClient::new(demo.as_staff(staff)?);
        client
            .create_case(CreateCaseRequest {
                case: Some(case.clone()),
                owner: owner.clone(),
                request_id: spec.request_id.clone(),
            })
            .await
            .answer("CreateCase")
    })
    .await?;
    for (spec, case) in specs.iter().zip(&opened) {
        if let Some(primary) = spec.primary {
            worker
                .cases
                .clone()
                .link_cases(LinkCasesRequest {
                    name: opened[primary].name.clone(),
                    duplicate: case.name.clone(),
                    reason: "同一患者通过不同渠道重复反映同一问题".into(),
                })
                .await
                .answer("LinkCases")?;
        }
    }
    let worker = &worker;
    let states = ordered(jobs.iter().zip(opened), 6, |((spec, .., pick), case)| async move {
        if spec.target == Target::Linked {
            return Ok(CaseState::Linked as i32);
        }
        Ok(worker.walk(spec, case, *pick).await?.state)
    })
    .await?;
    let mut figures = Figures {
        cases: specs.len(),
        ..Default::default()
    };
    for state in states {
        let name = CaseState::try_from(state)
            .unwrap_or_default()
            .as_str_name()
            .trim_start_matches("CASE_STATE_")
            .to_lowercase();
        *figures.by_state.entry(name).or_default() += 1;
    }
    Ok(figures)
}
