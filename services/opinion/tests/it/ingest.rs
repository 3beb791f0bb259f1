//! Pushed posts: matched to the watch list, scored, de-duplicated by URL and grouped into
//! stories by near-duplicate text; bad posts reported by index and field; the analyser.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use tonic::Code;

crate::both_backends!(
    a_repost_storm_is_one_story_with_its_reach,
    duplicates_unmatched_and_invalid_posts_are_counted_not_kept,
    mentions_and_stories_are_listed_by_entity_and_sentiment,
    the_analyser_scores_chinese_and_english,
    only_crawlers_push_and_only_staff_read,
    concurrent_pushes_of_the_same_posts_store_each_once,
);

const ORIGINAL: &str = "仁心医院急诊科的医生态度太差了，排队三个小时没人管，护士还对我家老人大声呵斥，\
    这样的医院真让人寒心。希望医院领导能重视一下急诊的服务问题，不要再让病人受这种委屈了。";

/// A repost: the original with a prefix and a few characters changed.
fn repost(i: usize) -> String {
    let edited = ORIGINAL.replacen("三个小时", "3个小时", i % 2);
    format!("转发{i}：{edited}")
}

async fn a_repost_storm_is_one_story_with_its_reach(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    let posts: Vec<PushedMention> = (0..60)
        .map(|i| post(&format!("https://weibo.com/p/{i}"), &repost(i)))
        .collect();
    let r = suite.push(posts).await;
    assert_eq!(
        (r.received, r.accepted, r.duplicates, r.unmatched, r.rejected),
        (60, 60, 0, 0, 0)
    );
    assert_eq!(r.stories_created, 1, "{r:?}");
    assert_eq!(r.grouped, 59);
    // An unrelated post about the same hospital is another story.
    let other = suite
        .push(vec![post(
            "https://news.example.cn/a/1",
            "仁心医院心内科团队成功完成全省首例新型心脏瓣膜介入手术，患者术后恢复良好，已顺利出院。",
        )])
        .await;
    assert_eq!(other.stories_created, 1);
    let stories = suite
        .mentions(Role::OpinionAnalyst)
        .list_stories(ListStoriesRequest {
            entity: hospital.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stories;
    assert_eq!(stories.len(), 2);
    let storm = stories.iter().find(|s| s.mention_count == 60).expect("the storm");
    assert_eq!(storm.reach, 600, "ten each");
    assert_eq!(storm.entities, vec![hospital.name.clone()]);
    assert_eq!(
        storm.sentiment.as_ref().unwrap().label,
        SentimentLabel::Negative as i32,
        "{storm:?}"
    );
    assert!(
        storm.topics.iter().any(|t| t == "service_attitude"),
        "{:?}",
        storm.topics
    );
    let good = stories.iter().find(|s| s.mention_count == 1).unwrap();
    assert!(good.topics.iter().any(|t| t == "new_technique"), "{:?}", good.topics);
    // Later reposts join the same story.
    let later = suite.push(vec![post("https://weibo.com/p/later", &repost(99))]).await;
    assert_eq!((later.stories_created, later.grouped), (0, 1));
    suite.stop().await;
}

async fn duplicates_unmatched_and_invalid_posts_are_counted_not_kept(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    suite.hospital().await;
    let first = suite
        .push(vec![
            post("https://tieba.example.cn/t/1", "在仁心医院看病，医生很耐心，非常感谢！"),
            post("https://tieba.example.cn/t/2", "今天天气不错，去公园散步。"),
        ])
        .await;
    assert_eq!((first.accepted, first.unmatched), (1, 1));
    // The same URL again (and twice within one message) is a duplicate; a post without URL is
    // keyed by its text.
    let mut bad_url = post("ftp://x/1", "仁心医院");
    bad_url.reach = 1;
    let mut negative_reach = post("https://a.example.cn/2", "仁心医院");
    negative_reach.reach = -1;
    let again = suite
        .push_messages(vec![
            vec![
                post("https://tieba.example.cn/t/1", "在仁心医院看病，医生很耐心，非常感谢！"),
                post("", "仁心医院的停车场太难找了"),
                post("", "仁心医院的停车场太难找了"),
            ],
            vec![
                post("https://a.example.cn/1", "   "),
                bad_url,
                negative_reach,
                post("https://a.example.cn/3", &"仁".repeat(20_001)),
            ],
        ])
        .await
        .unwrap();
    assert_eq!(again.received, 7);
    assert_eq!(
        (again.accepted, again.duplicates, again.rejected),
        (1, 2, 4),
        "{again:?}"
    );
    let fields: Vec<(i64, &str)> = again.rejections.iter().map(|r| (r.index, r.field.as_str())).collect();
    assert_eq!(fields, vec![(3, "text"), (4, "url"), (5, "reach"), (6, "text")]);
    assert_eq!(suite.count("SELECT COUNT(*) FROM mentions").await, 2);
    // More than 1,000 posts in one message is refused as a whole message.
    let many: Vec<PushedMention> = (0..1001)
        .map(|i| post(&format!("https://b.example.cn/{i}"), "仁心医院"))
        .collect();
    assert_status(
        suite.push_messages(vec![many]).await,
        Code::InvalidArgument,
        Some("mentions"),
    );
    suite.stop().await;
}

async fn mentions_and_stories_are_listed_by_entity_and_sentiment(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    let cardiology = suite
        .entity(
            EntityKind::Department,
            "心内科",
            &["心内科", "心血管内科", "cardiology"],
        )
        .await;
    let mut posts = vec![
        post(
            "https://x.example.cn/1",
            "仁心医院心内科的王医生医术高明，非常负责，感谢！",
        ),
        post(
            "https://x.example.cn/2",
            "仁心医院收费太乱了，检查费莫名其妙多收了好几百，太黑心了。",
        ),
        post(
            "https://x.example.cn/3",
            "Renxin Hospital cardiology team was caring and professional.",
        ),
        post("https://x.example.cn/4", "仁心医院门诊楼今天开始装修，请大家绕行东门。"),
    ];
    posts[0].publish_time = Some(at(START - HOUR));
    let r = suite.push(posts).await;
    assert_eq!(r.accepted, 4);
    let analyst = suite.mentions(Role::OpinionAnalyst);
    let by_entity = |entity: String, sentiment: SentimentLabel| {
        let mut client = analyst.clone();
        async move {
            client
                .list_mentions(ListMentionsRequest {
                    entity,
                    sentiment: sentiment as i32,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .mentions
        }
    };
    let all = by_entity(hospital.name.clone(), SentimentLabel::Unspecified).await;
    assert_eq!(all.len(), 4);
    assert_eq!(
        all.last().unwrap().url,
        "https://x.example.cn/1",
        "oldest (published earlier) last"
    );
    let cardio = by_entity(cardiology.name.clone(), SentimentLabel::Unspecified).await;
    assert_eq!(cardio.len(), 2, "Chinese and English terms match");
    let negative = by_entity(String::new(), SentimentLabel::Negative).await;
    assert_eq!(negative.len(), 1);
    assert_eq!(negative[0].url, "https://x.example.cn/2");
    assert!(
        negative[0].topics.iter().any(|t| t == "charges"),
        "{:?}",
        negative[0].topics
    );
    let english = &all.iter().find(|m| m.url.ends_with("/3")).unwrap();
    assert_eq!(english.language, "en");
    assert_eq!(
        english.sentiment.as_ref().unwrap().label,
        SentimentLabel::Positive as i32
    );
    // Paging: two pages of two, no overlap.
    let first = analyst
        .clone()
        .list_mentions(ListMentionsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let second = analyst
        .clone()
        .list_mentions(ListMentionsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<String> = first
        .mentions
        .iter()
        .chain(&second.mentions)
        .map(|m| m.name.clone())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4);
    // A mention read back whole.
    let one = analyst
        .clone()
        .get_mention(GetMentionRequest {
            name: all[0].name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one, all[0]);
    assert_status(
        analyst
            .clone()
            .get_mention(GetMentionRequest {
                name: "mentions/nope".into(),
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        analyst
            .clone()
            .list_mentions(ListMentionsRequest {
                entity: "hospital".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("entity"),
    );
    assert_status(
        analyst
            .clone()
            .list_mentions(ListMentionsRequest {
                sentiment: 9,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("sentiment"),
    );
    suite.stop().await;
}

async fn the_analyser_scores_chinese_and_english(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    let mut client = suite.mentions(Role::Integration);
    let analyze = |text: &'static str| {
        let mut c = client.clone();
        async move {
            c.analyze_text(AnalyzeTextRequest { text: text.into() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let good = analyze("仁心医院的护士服务很好，非常耐心").await;
    let bad = analyze("仁心医院的护士服务不好，一点都不耐心").await;
    assert_eq!(good.sentiment.as_ref().unwrap().label, SentimentLabel::Positive as i32);
    assert_eq!(bad.sentiment.as_ref().unwrap().label, SentimentLabel::Negative as i32);
    assert!(!bad.sentiment.as_ref().unwrap().reasons.is_empty(), "explains itself");
    assert_eq!(good.entities, vec![hospital.name.clone()]);
    assert_eq!(good.language, "zh");
    let en = analyze("The staff were rude and the wait was terrible.").await;
    assert_eq!(en.language, "en");
    assert_eq!(en.sentiment.unwrap().label, SentimentLabel::Negative as i32);
    assert_status(
        client.analyze_text(AnalyzeTextRequest { text: String::new() }).await,
        Code::InvalidArgument,
        Some("text"),
    );
    suite.stop().await;
}

async fn only_crawlers_push_and_only_staff_read(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    suite.hospital().await;
    let guide = suite.mentions(Role::Guide);
    assert_status(
        guide
            .clone()
            .ingest_mentions(tokio_stream::iter(vec![IngestMentionsRequest::default()]))
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        guide.clone().list_mentions(ListMentionsRequest::default()).await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite
            .mentions(Role::Integration)
            .list_stories(ListStoriesRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    // A department head reads mentions but does not work incidents.
    suite
        .mentions(Role::DepartmentHead)
        .list_mentions(ListMentionsRequest::default())
        .await
        .expect("department heads read mentions");
    assert_status(
        suite
            .incidents(Role::DepartmentHead)
            .create_incident(CreateIncidentRequest {
                incident: Some(Incident {
                    title: "x".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        None,
    );
    suite.stop().await;
}

async fn concurrent_pushes_of_the_same_posts_store_each_once(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    suite.hospital().await;
    let posts: Vec<PushedMention> = (0..600)
        .map(|i| {
            post(
                &format!("https://bbs.example.cn/t/{i}"),
                &format!(
                    "第{i}条：仁心医院{}",
                    ["排队太久", "医生很好", "收费不清楚", "环境干净"][i % 4]
                ),
            )
        })
        .collect();
    let pushes: Vec<_> = (0..4)
        .map(|k| {
            // Each crawler pushes the same posts in its own order, in messages of 150.
            let mut mine = posts.clone();
            mine.rotate_left(k * 150);
            let messages: Vec<Vec<PushedMention>> = mine.chunks(150).map(|c| c.to_vec()).collect();
            let suite = &suite;
            async move { suite.push_messages(messages).await.expect("ingest") }
        })
        .collect();
    let results = futures::future::join_all(pushes).await;
    let accepted: i64 = results.iter().map(|r| r.accepted).sum();
    let duplicates: i64 = results.iter().map(|r| r.duplicates).sum();
    assert_eq!((accepted, duplicates), (600, 1800), "{results:?}");
    assert_eq!(suite.count("SELECT COUNT(*) FROM mentions").await, 600);
    assert_eq!(
        suite
            .count("SELECT CAST(SUM(mention_count) AS BIGINT) FROM stories")
            .await,
        600,
        "story counts match the mentions"
    );
    assert_eq!(
        suite
            .count("SELECT CAST(SUM(mentions) AS BIGINT) FROM daily WHERE entity_id = ''")
            .await,
        600
    );
    suite.stop().await;
}
