//! Patients as the HIS would send them (one `ImportPatients` stream in batches), their family
//! members, and the organisations the centre works with.

use super::context::{Answer, Demo, date, each, ts};
use super::hospital::{self, CITIES, City, DEPARTMENTS, Department, OCCUPATIONS, Staff};
use super::{ids, names};
use chrono::{Datelike, Duration, NaiveDate};
use hcrm_kit::auth::Role;
use hcrm_proto::patients::organization_service_client::OrganizationServiceClient;
use hcrm_proto::patients::patient_service_client::PatientServiceClient;
use hcrm_proto::patients::*;
use hcrm_proto::types::{Address, ContactChannel};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use std::collections::HashSet;

const BATCH: usize = 500;
const SOURCE: &str = "his";

/// How a patient stands with the hospital, which decides their timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Visited within the last six months (C class).
    Active,
    /// Last visit long ago (M class).
    Lapsed,
    /// A lead who asked about the hospital and never came (M class).
    Lead,
}

/// What later stages need to know about a patient the demo created.
#[derive(Debug, Clone)]
pub struct Person {
    /// `patients/{id}`.
    pub name: String,
    pub display_name: String,
    pub female: bool,
    pub birth: NaiveDate,
    pub department: &'static Department,
    pub standing: Standing,
    pub deceased: bool,
    pub do_not_contact: bool,
}

impl Person {
    /// Whether follow-ups, surveys and confirmation calls may reach them.
    pub fn reachable(&self) -> bool {
        !self.deceased && !self.do_not_contact
    }
}

fn weighted<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for item in items {
        let w = weight(item);
        if pick < w {
            return item;
        }
        pick -= w;
    }
    &items[0]
}

fn address(rng: &mut StdRng, city: &City) -> Address {
    Address {
        province: city.province.into(),
        city: city.city.into(),
        district: city.districts.choose(rng).copied().unwrap_or_default().into(),
        street: format!(
            "{}{}号{}幢{}室",
            city.streets.choose(rng).copied().unwrap_or_default(),
            rng.random_range(1..400),
            rng.random_range(1..20),
            rng.random_range(1..6) * 100 + rng.random_range(1..5)
        ),
        postal_code: format!("{}{:03}", city.postal_prefix, rng.random_range(0..100) * 10),
    }
}

fn birth_date(rng: &mut StdRng, today: NaiveDate, ages: (u32, u32)) -> NaiveDate {
    let age = rng.random_range(ages.0..=ages.1);
    let days = i64::from(age) * 365 + rng.random_range(1..365);
    today - Duration::days(days)
}

fn age_at(birth: NaiveDate, today: NaiveDate) -> i32 {
    today.year() - birth.year() - i32::from((today.month(), today.day()) < (birth.month(), birth.day()))
}

fn tags(rng: &mut StdRng, dept: &Department, age: i32, vip: bool) -> Vec<String> {
    let mut tags = Vec::new();
    let by_department: &[&str] = match dept.code {
        "cardiology" => &["高血压", "冠心病", "房颤随访"],
        "endocrinology" => &["糖尿病", "甲状腺"],
        "respiratory" => &["慢阻肺", "哮喘"],
        "orthopedics" => &["术后康复", "骨质疏松"],
        "obstetrics" => &["孕产妇", "产后随访"],
        "pediatrics" => &["儿童", "预防接种"],
        "neurology" => &["脑卒中康复"],
        _ => &[],
    };
    if let Some(tag) = by_department.choose(rng)
        && rng.random_bool(0.7)
    {
        tags.push((*tag).to_string());
    }
    if age >= 65 {
        tags.push("老年人".into());
        if rng.random_bool(0.15) {
            tags.push("独居老人".into());
        }
    }
    if rng.random_bool(0.6) {
        tags.push("医保".into());
    }
    if rng.random_bool(0.08) {
        tags.push("企业体检".into());
    }
    if vip {
        tags.push("VIP".into());
    }
    tags
}

fn preferences(rng: &mut StdRng, demo: &Demo, has_email: bool, do_not_contact: bool) -> ContactPreferences {
    let mut channels = vec![ContactChannel::Phone, ContactChannel::Sms];
    if rng.random_bool(0.6) {
        channels.push(ContactChannel::Wechat);
    }
    if rng.random_bool(0.3) {
        channels.push(ContactChannel::App);
    }
    if has_email && rng.random_bool(0.7) {
        channels.push(ContactChannel::Email);
    }
    let quiet = rng.random_bool(0.3);
    ContactPreferences {
        allowed_channels: channels.into_iter().map(|c| c as i32).collect(),
        do_not_contact,
        quiet_hours_start: if quiet { "21:30".into() } else { String::new() },
        quiet_hours_end: if quiet { "08:00".into() } else { String::new() },
        consent_time: Some(ts(demo.now - rng.random_range(30..720) * super::context::DAY)),
    }
}

/// One generated patient row and what the demo remembers of it.
fn generate(rng: &mut StdRng, demo: &Demo, index: usize, used_ids: &mut HashSet<String>) -> (ImportPatientRow, Person) {
    let today = demo.today();
    let dept = weighted(rng, DEPARTMENTS, |d| d.share);
    let female = match dept.code {
        "obstetrics" => true,
        _ => rng.random_bool(0.52),
    };
    let name = names::person(rng, female);
    let birth = birth_date(rng, today, dept.ages);
    let age = age_at(birth, today);
    let city = weighted(rng, CITIES, |c| c.weight);
    let identity = loop {
        let id = ids::resident_id(rng, city.region, birth, female);
        if used_ids.insert(id.clone()) {
            break id;
        }
    };
    let standing = match rng.random_range(0..100) {
        0..=7 => Standing::Lead,
        8..=14 => Standing::Lapsed,
        _ => Standing::Active,
    };
    let deceased = standing == Standing::Lapsed && age >= 70 && rng.random_bool(0.1);
    let do_not_contact = !deceased && rng.random_bool(0.03);
    let has_email = (18..65).contains(&age) && rng.random_bool(0.45);
    let vip = rng.random_bool(0.03);
    let (occupation, industry) = match age {
        0..=5 => ("学龄前儿童", ""),
        6..=17 => ("学生", "教育"),
        18..=22 if rng.random_bool(0.6) => ("学生", "教育"),
        60.. if rng.random_bool(0.8) => ("退休", ""),
        _ => *OCCUPATIONS.choose(rng).unwrap_or(&OCCUPATIONS[0]),
    };
    let education = match age {
        0..=5 => Education::Unspecified,
        6..=17 => Education::Primary,
        _ => *[
            Education::Secondary,
            Education::Vocational,
            Education::Bachelor,
            Education::Bachelor,
            Education::Postgraduate,
            Education::Primary,
        ]
        .choose(rng)
        .unwrap_or(&Education::Secondary),
    };
    let marital = match age {
        0..=21 => MaritalStatus::Unspecified,
        22..=29 if rng.random_bool(0.5) => MaritalStatus::Single,
        75.. if rng.random_bool(0.3) => MaritalStatus::Widowed,
        _ if rng.random_bool(0.06) => MaritalStatus::Divorced,
        _ => MaritalStatus::Married,
    };
    let mut history = MedicalHistory::default();
    if rng.random_bool(0.15) {
        history.allergies.push(
            ["青霉素", "头孢类", "磺胺类", "海鲜", "花粉"]
                .choose(rng)
                .copied()
                .unwrap_or("青霉素")
                .into(),
        );
    }
    if dept.code == "cardiology" && rng.random_bool(0.5) {
        history.heart_diseases.push("冠状动脉粥样硬化性心脏病".into());
    }
    if rng.random_bool(0.03) {
        history.genetic_diseases.push("地中海贫血（携带者）".into());
    }
    let death_date = if deceased {
        Some(date(today - Duration::days(rng.random_range(30..300))))
    } else {
        None
    };
    let patient = Patient {
        display_name: name.full.clone(),
        sex: if female { Sex::Female } else { Sex::Male } as i32,
        birth_date: Some(date(birth)),
        phones: vec![ids::mobile(rng)],
        email: if has_email {
            format!("{}{}@example.com", name.surname_pinyin, rng.random_range(100..10_000))
        } else {
            String::new()
        },
        wechat_id: if age >= 16 && rng.random_bool(0.4) {
            format!("wxid_{:010x}", rng.random_range(0..1u64 << 40))
        } else {
            String::new()
        },
        address: Some(address(rng, city)),
        occupation: occupation.into(),
        industry: industry.into(),
        education: education as i32,
        marital_status: marital as i32,
        income_band: rng.random_range(1..=5),
        identity_type: IdentityType::ResidentId as i32,
        identity_number: identity,
        medical_history: (history != MedicalHistory::default()).then_some(history),
        tags: tags(rng, dept, age, vip),
        department: dept.code.into(),
        intent_grade: if standing == Standing::Lead {
            rng.random_range(1..=5)
        } else {
            0
        },
        value_tier: rng.random_range(1..=4),
        vip,
        contact_preferences: Some(preferences(rng, demo, has_email, do_not_contact)),
        deceased,
        death_date,
        ..Default::default()
    };
    let person = Person {
        name: String::new(),
        display_name: name.full,
        female,
        birth,
        department: dept,
        standing,
        deceased,
        do_not_contact,
    };
    let row = ImportPatientRow {
        source_system: SOURCE.into(),
        external_id: format!("{:08}", 10_000_000 + index),
        patient: Some(patient),
    };
    (row, person)
}

/// Imports `count` patients through one `ImportPatients` stream; every row must succeed.
pub async fn import(demo: &Demo, count: usize) -> anyhow::Result<Vec<Person>> {
    let mut rng = demo.rng("patients");
    let mut used = HashSet::new();
    let (rows, mut people): (Vec<_>, Vec<_>) = (0..count).map(|i| generate(&mut rng, demo, i, &mut used)).unzip();
    let messages: Vec<ImportPatientsRequest> = rows
        .chunks(BATCH)
        .map(|chunk| ImportPatientsRequest { rows: chunk.to_vec() })
        .collect();
    let mut client = PatientServiceClient::new(demo.as_staff(&hospital::his())?);
    let mut results = client
        .import_patients(futures::stream::iter(messages))
        .await
        .answer("ImportPatients")?;
    while let Some(message) = results.message().await? {
        for row in message.results {
            let index = usize::try_from(row.index)?;
            if row.code != 0 {
                anyhow::bail!("ImportPatients row {index}: code {}: {}", row.code, row.message);
            }
            if let Some(person) = people.get_mut(index) {
                person.name = row.name;
            }
        }
    }
    if let Some(missing) = people.iter().position(|p| p.name.is_empty()) {
        anyhow::bail!("ImportPatients answered no result for row {missing}");
    }
    Ok(people)
}

/// Family members and emergency contacts for some patients (every child has a guardian).
pub async fn relatives(demo: &Demo, people: &[Person]) -> anyhow::Result<usize> {
    let mut rng = demo.rng("relatives");
    let today = demo.today();
    let mut requests = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let age = age_at(p.birth, today);
        let mut add = |rng: &mut StdRng, relationship: &str, female: bool, same_surname: bool, emergency: bool| {
            let name = if same_surname {
                names::same_family(rng, &p.display_name, female).full
            } else {
                names::person(rng, female).full
            };
            let n = requests.len();
            requests.push(CreateRelatedPersonRequest {
                parent: p.name.clone(),
                related_person: Some(RelatedPerson {
                    display_name: name,
                    relationship: relationship.into(),
                    phones: vec![ids::mobile(rng)],
                    emergency_contact: emergency,
                    ..Default::default()
                }),
                request_id: format!("demo-related-{i}-{n}"),
            });
        };
        if age < 18 {
            let mother = rng.random_bool(0.6);
            add(&mut rng, "guardian", mother, !mother, true);
        } else if rng.random_bool(0.2) {
            let daughter = rng.random_bool(0.5);
            if age >= 60 && rng.random_bool(0.6) {
                // A son keeps the father's surname; the patient's own only if he is the father.
                add(&mut rng, "child", daughter, !p.female && !daughter, true);
            } else if age > 22 {
                add(&mut rng, "spouse", !p.female, false, true);
            }
            if rng.random_bool(0.25) {
                let female = rng.random_bool(0.5);
                add(&mut rng, "friend", female, false, false);
            }
        }
    }
    let staff = Staff::new(hospital::GUIDES[0], Role::Guide);
    let client = PatientServiceClient::new(demo.as_staff(&staff)?);
    each(requests, 8, |request| {
        let mut client = client.clone();
        async move {
            client
                .create_related_person(request)
                .await
                .answer("CreateRelatedPerson")
                .map(|_| ())
        }
    })
    .await
}

/// Partner hospitals, community health centres, companies buying check-ups, an insurer and the
/// health commission, each with a contact person.
pub async fn organisations(demo: &Demo) -> anyhow::Result<usize> {
    let mut rng = demo.rng("organisations");
    let list: &[(&str, OrganizationKind, &str)] = &[
        ("青溪县人民医院", OrganizationKind::PartnerHospital, "医务科科长"),
        ("云岭镇中心卫生院", OrganizationKind::PartnerHospital, "院长"),
        ("仁心医院西城分院", OrganizationKind::PartnerHospital, "院办主任"),
        (
            "文华街道社区卫生服务中心",
            OrganizationKind::CommunityHealthCentre,
            "全科主任",
        ),
        (
            "湖滨街道社区卫生服务中心",
            OrganizationKind::CommunityHealthCentre,
            "公卫科长",
        ),
        ("临浦社区卫生服务站", OrganizationKind::CommunityHealthCentre, "站长"),
        ("恒远智能科技有限公司", OrganizationKind::Company, "人事行政经理"),
        ("明川物流集团", OrganizationKind::Company, "工会主席"),
        ("睿思教育培训学校", OrganizationKind::Company, "办公室主任"),
        ("华辰人寿保险（合作理赔）", OrganizationKind::Company, "理赔专员"),
        ("市卫生健康委员会医政处", OrganizationKind::Government, "科员"),
        ("区医疗保障局", OrganizationKind::Government, "稽核科科长"),
    ];
    let mut requests = Vec::new();
    for (i, (name, kind, title)) in list.iter().enumerate() {
        let city = &CITIES[0];
        let female = rng.random_bool(0.5);
        requests.push(CreateOrganizationRequest {
            organization: Some(Organization {
                display_name: (*name).into(),
                kind: *kind as i32,
                address: Some(address(&mut rng, city)),
                phone: format!("0571-8{:07}", rng.random_range(0..10_000_000)),
                contacts: vec![OrganizationContact {
                    display_name: names::person(&mut rng, female).full,
                    title: (*title).into(),
                    phone: ids::mobile(&mut rng),
                    email: format!("contact{}@example.com", i + 1),
                }],
                notes: match kind {
                    OrganizationKind::Company => "年度员工体检合作单位".into(),
                    OrganizationKind::PartnerHospital => "双向转诊协议单位".into(),
                    _ => String::new(),
                },
                ..Default::default()
            }),
            request_id: format!("demo-organisation-{i}"),
        });
    }
    requests.shuffle(&mut rng);
    let staff = Staff::new(hospital::GUIDES[1], Role::Guide);
    let mut client = OrganizationServiceClient::new(demo.as_staff(&staff)?);
    for request in &requests {
        client
            .create_organization(request.clone())
            .await
            .answer("CreateOrganization")?;
    }
    Ok(requests.len())
}

/// Whether the installation already has patients.
pub async fn any(demo: &Demo) -> anyhow::Result<bool> {
    let mut client = PatientServiceClient::new(demo.as_staff(&hospital::operator())?);
    let page = client
        .list_patients(ListPatientsRequest {
            page_size: 1,
            show_deleted: true,
            ..Default::default()
        })
        .await
        .answer("ListPatients")?;
    Ok(!page.patients.is_empty())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use hcrm_kit::auth::Authenticator;
    use hcrm_kit::validate::Violations;

    /// A demo that never connects: for generating data only.
    pub fn offline_demo() -> Demo {
        let channel = tonic::transport::Channel::from_static("http://127.0.0.1:1").connect_lazy();
        Demo::new(
            channel,
            Authenticator::hs256("offline-demo-secret-0123456789abcdef"),
            7,
            480,
        )
    }

    #[tokio::test]
    async fn generated_patients_pass_the_services_own_checks() {
        let demo = offline_demo();
        let mut rng = demo.rng("patients");
        let mut used = HashSet::new();
        for i in 0..500 {
            let (row, person) = generate(&mut rng, &demo, i, &mut used);
            let mut patient = row.patient.unwrap();
            hcrm_patients::domain::patient::normalize(&mut patient);
            let mut v = Violations::new();
            hcrm_patients::domain::patient::validate(&patient, "patient", demo.today(), &mut v);
            assert!(v.finish().is_ok(), "row {i}: {patient:?}");
            assert!(hcrm_patients::domain::identity::check_resident_id(&patient.identity_number).is_ok());
            assert_eq!(patient.department, person.department.code);
        }
        assert_eq!(used.len(), 500, "identity numbers are unique");
    }
}
