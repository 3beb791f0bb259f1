//! The public-opinion group's view: the hospital, some departments and doctors on the watch
//! list, alert rules, a month of posts pushed as a crawler would (with a repost storm), and the
//! incidents: the storm's, being answered and escalated into a complaint, and an older one
//! resolved.

use super::context::{Answer, Authed, Demo};
use super::hospital::{self, DEPARTMENTS, HOSPITAL, HOSPITAL_TERMS, Staff};
use super::posts::{self, OLD_TITLE, STORM_TITLE, WATCHED};
use hcrm_kit::auth::Role;
use hcrm_proto::opinion::incident_service_client::IncidentServiceClient;
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::opinion::watch_service_client::WatchServiceClient;
use hcrm_proto::opinion::*;

const BATCH: usize = 500;

#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub entities: usize,
    pub alert_rules: usize,
    pub mentions: i64,
    pub stories: i64,
    pub storm_mentions: i64,
    pub incidents: usize,
}

fn entity(kind: EntityKind, display_name: &str, terms: Vec<String>, department: &str) -> CreateEntityRequest {
    CreateEntityRequest {
        entity: Some(Entity {
            kind: kind as i32,
            display_name: display_name.into(),
            terms,
            department: department.into(),
            ..Default::default()
        }),
    }
}

/// The watch list; returns the hospital's and the emergency department's entity names.
async fn watch_list(client: &mut WatchServiceClient<Authed>) -> anyhow::Result<(usize, String, String)> {
    let mut requests = vec![entity(
        EntityKind::Hospital,
        HOSPITAL,
        HOSPITAL_TERMS.iter().map(|t| (*t).to_string()).collect(),
        "",
    )];
    for dept in DEPARTMENTS.iter().filter(|d| WATCHED.contains(&d.code)) {
        requests.push(entity(
            EntityKind::Department,
            dept.zh,
            dept.aliases.iter().map(|a| (*a).to_string()).collect(),
            dept.code,
        ));
        for doctor in dept.doctors {
            requests.push(entity(
                EntityKind::Doctor,
                &format!("{doctor}（{}）", dept.zh),
                vec![(*doctor).to_string()],
                dept.code,
            ));
        }
    }
    requests.push(entity(
        EntityKind::Term,
        "医疗纠纷",
        vec!["医疗纠纷".into(), "医患纠纷".into(), "医闹".into()],
        "",
    ));
    let (mut hospital_entity, mut emergency) = (String::new(), String::new());
    let count = requests.len();
    for request in requests {
        let created = client.create_entity(request).await.answer("CreateEntity")?;
        if created.kind == EntityKind::Hospital as i32 {
            hospital_entity = created.name;
        } else if created.department == "emergency" && created.kind == EntityKind::Department as i32 {
            emergency = created.name;
        }
    }
    Ok((count, hospital_entity, emergency))
}

async fn rules(
    client: &mut WatchServiceClient<Authed>,
    hospital_entity: &str,
    emergency: &str,
) -> anyhow::Result<usize> {
    let rule = |entity: &str, kind: AlertKind, threshold: i64, window_minutes: i32| AlertRule {
        entity: entity.into(),
        kind: kind as i32,
        threshold,
        window_minutes,
        enabled: true,
        ..Default::default()
    };
    let list = [
        rule(hospital_entity, AlertKind::NegativeCount, 10, 360),
        rule(hospital_entity, AlertKind::HighReach, 50_000, 1440),
        AlertRule {
            burst_factor: 3.0,
            baseline_windows: 4,
            ..rule(emergency, AlertKind::Burst, 10, 180)
        },
    ];
    for (i, r) in list.iter().enumerate() {
        client
            .create_alert_rule(CreateAlertRuleRequest {
                rule: Some(r.clone()),
                request_id: format!("demo-alert-rule-{i}"),
            })
            .await
            .answer("CreateAlertRule")?;
    }
    Ok(list.len())
}

async fn story_titled(client: &mut MentionServiceClient<Authed>, entity: &str, title: &str) -> anyhow::Result<Story> {
    let mut page_token = String::new();
    loop {
        let page = client
            .list_stories(ListStoriesRequest {
                entity: entity.into(),
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .answer("ListStories")?;
        if let Some(story) = page.stories.into_iter().find(|s| s.title == title) {
            return Ok(story);
        }
        if page.next_page_token.is_empty() {
            anyhow::bail!("no story titled {title:?} after ingesting its posts");
        }
        page_token = page.next_page_token;
    }
}

/// Fills the watch list, the rules, the mentions and the incidents.
pub async fn fill(demo: &Demo, patients: usize) -> anyhow::Result<Figures> {
    let analyst = demo.as_staff(&Staff::new(hospital::ANALYST, Role::OpinionAnalyst))?;
    let mut watch = WatchServiceClient::new(analyst.clone());
    let (entities, hospital_entity, emergency) = watch_list(&mut watch).await?;
    let alert_rules = rules(&mut watch, &hospital_entity, &emergency).await?;

    let posts = posts::generate(demo, patients);
    let messages: Vec<IngestMentionsRequest> = posts
        .chunks(BATCH)
        .map(|chunk| IngestMentionsRequest {
            mentions: chunk.to_vec(),
        })
        .collect();
    let mut crawler = MentionServiceClient::new(demo.as_staff(&Staff::new("crawler", Role::Integration))?);
    let ingested = crawler
        .ingest_mentions(futures::stream::iter(messages))
        .await
        .answer("IngestMentions")?;
    if let Some(first) = ingested.rejections.first() {
        anyhow::bail!(
            "IngestMentions rejected {} posts, the first at {} ({}: {})",
            ingested.rejected,
            first.index,
            first.field,
            first.description
        );
    }
    if ingested.unmatched > 0 {
        tracing::warn!(
            unmatched = ingested.unmatched,
            "demo posts matched nothing on the watch list"
        );
    }

    let mut mentions = MentionServiceClient::new(analyst.clone());
    let storm = story_titled(&mut mentions, &hospital_entity, STORM_TITLE).await?;
    let old = story_titled(&mut mentions, &hospital_entity, OLD_TITLE).await?;
    incidents(demo, &storm, &old).await?;
    Ok(Figures {
        entities,
        alert_rules,
        mentions: ingested.accepted,
        stories: ingested.stories_created,
        storm_mentions: storm.mention_count,
        incidents: 2,
    })
}

async fn incidents(demo: &Demo, storm: &Story, old: &Story) -> anyhow::Result<()> {
    let analyst = demo.as_staff(&Staff::new(hospital::ANALYST, Role::OpinionAnalyst))?;
    let mut wu = IncidentServiceClient::new(analyst);
    let mut sun = IncidentServiceClient::new(demo.as_staff(&Staff::new(hospital::ANALYST_LEAD, Role::OpinionAnalyst))?);
    let step = |incident: &Incident, action: IncidentAction, reason: &str| TransitionIncidentRequest {
        name: incident.name.clone(),
        action: action as i32,
        reason: reason.into(),
        etag: incident.etag.clone(),
    };

    // The older complaint: handled and resolved.
    let mut resolved = wu
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                story: old.name.clone(),
                description: "网友反映体检中心报告延迟且电话无人接听".into(),
                ..Default::default()
            }),
            owner: hospital::ANALYST.into(),
            request_id: "demo-incident-old".into(),
        })
        .await
        .answer("CreateIncident")?;
    for (action, reason) in [
        (IncidentAction::Acknowledge, ""),
        (IncidentAction::Respond, ""),
        (
            IncidentAction::Resolve,
            "已协调体检中心加急出具报告，并致电当事人说明原因，对方表示理解",
        ),
    ] {
        resolved = wu
            .transition_incident(step(&resolved, action, reason))
            .await
            .answer("TransitionIncident")?;
    }

    // The storm: acknowledged, answered publicly after a second person approved the reply, and
    // escalated into a complaint for the emergency department.
    let mut open = wu
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                story: storm.name.clone(),
                description: "急诊科候诊超时的帖子被大量转发，需核实当晚急诊排班与分诊记录".into(),
                ..Default::default()
            }),
            owner: hospital::ANALYST.into(),
            request_id: "demo-incident-storm".into(),
        })
        .await
        .answer("CreateIncident")?;
    open = wu
        .transition_incident(step(&open, IncidentAction::Acknowledge, ""))
        .await
        .answer("TransitionIncident")?;
    open = wu
        .add_incident_note(AddIncidentNoteRequest {
            name: open.name.clone(),
            text: "已联系急诊科护士长调取当晚分诊记录和抢救室排班，当晚同时有两例多发伤抢救".into(),
        })
        .await
        .answer("AddIncidentNote")?;
    open = wu
        .transition_incident(step(&open, IncidentAction::Respond, ""))
        .await
        .answer("TransitionIncident")?;
    open = wu
        .draft_reply(DraftReplyRequest {
            name: open.name.clone(),
            text: "您好，我们已关注到您反映的急诊候诊问题，非常抱歉给您和家人带来不好的就医体验。医院已成立专班调查当晚情况，将尽快与您联系沟通，并优化急诊分诊和候诊告知流程。".into(),
            etag: open.etag.clone(),
        })
        .await
        .answer("DraftReply")?;
    open = sun
        .approve_reply(ApproveReplyRequest {
            name: open.name.clone(),
            etag: open.etag.clone(),
        })
        .await
        .answer("ApproveReply")?;
    wu.escalate_incident(EscalateIncidentRequest {
        name: open.name.clone(),
        department: "emergency".into(),
        category: "waiting".into(),
        severity: "HIGH".into(),
        description: "网络舆情：急诊胸痛患者候诊四小时无人处置，需调查分诊与排班".into(),
        etag: open.etag.clone(),
    })
    .await
    .answer("EscalateIncident")?;
    Ok(())
}
