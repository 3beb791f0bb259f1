//! The reputation trend per local day, top stories, and positive publicity as its own list.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::types::Date;
use tonic::Code;

crate::both_backends!(the_trend_counts_each_day_and_publicity_is_listed);

fn date(day: i32) -> Option<Date> {
    Some(Date {
        year: 2026,
        month: 5,
        day,
    })
}

async fn the_trend_counts_each_day_and_publicity_is_listed(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    // START is 2026-06-01 10:00 in Beijing: two days back is 30 May, one day back 31 May.
    let mut posts = Vec::new();
    for (i, (days_back, text)) in [
        (2, "仁心医院医生态度恶劣，太让人失望了。"),
        (2, "仁心医院乱收费，黑心。"),
        (1, "仁心医院护士张丽在公交车上救助晕倒乘客，好人好事值得点赞！"),
        (1, "仁心医院门诊楼今天开始装修，请绕行。"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = post(&format!("https://x.example.cn/{i}"), text);
        p.publish_time = Some(at(START - days_back * DAY));
        if i == 2 {
            p.reach = 5_000;
        }
        posts.push(p);
    }
    suite.push(posts).await;
    let mut client = suite.reputation(Role::DepartmentHead);
    let r = client
        .get_reputation(GetReputationRequest {
            entity: hospital.name.clone(),
            start_date: date(29),
            end_date: date(31),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(i32, i64, i64)> = r
        .days
        .iter()
        .map(|d| (d.date.unwrap().day, d.mentions, d.negative))
        .collect();
    assert_eq!(counts, vec![(29, 0, 0), (30, 2, 2), (31, 2, 0)]);
    assert_eq!(r.mentions, 4);
    assert!((r.negative_share - 0.5).abs() < 1e-9);
    assert_eq!(r.days[0].index, 50.0, "a quiet day is neutral");
    assert!(
        r.days[1].index < 50.0 && r.days[2].index > r.days[1].index,
        "{:?}",
        r.days
    );
    assert_eq!(r.top_stories[0].reach, 5_000, "the most reached first");
    let publicity = client
        .list_publicity(ListPublicityRequest {
            entity: hospital.name.clone(),
            start_date: date(1),
            end_date: date(31),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stories;
    assert_eq!(publicity.len(), 1, "{publicity:?}");
    assert!(publicity[0].title.contains("救助"));
    assert_status(
        client
            .get_reputation(GetReputationRequest {
                start_date: date(31),
                end_date: date(29),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("end_date"),
    );
    assert_status(
        client
            .get_reputation(GetReputationRequest {
                start_date: Some(Date {
                    year: 2026,
                    month: 2,
                    day: 30,
                }),
                end_date: date(29),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("start_date"),
    );
    assert_status(
        suite
            .reputation(Role::Guide)
            .get_reputation(GetReputationRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    suite.stop().await;
}
