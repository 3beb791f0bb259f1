//! Alerts: negative mentions over a threshold in a window, a burst against the entity's own
//! baseline and a single story's reach; one alert per window (or per story), delivered through
//! the notifier; no storm when the posts keep coming.

use crate::helpers::*;
use hcrm_kit::auth::Role;

crate::both_backends!(negative_posts_raise_one_alert_per_window, bursts_and_reach_raise_alerts);

const COMPLAINTS: &[&str] = &[
    "仁心医院的医生态度恶劣，推诿病人，太让人失望了。",
    "仁心医院乱收费，一个小检查收了八百块，黑心医院。",
    "在仁心医院排队五个小时，护士冷漠，服务太差。",
    "仁心医院误诊，耽误了我父亲的治疗，非常愤怒。",
    "仁心医院的停车场收费太贵，保安态度还很差。",
];

async fn rule(
    suite: &Suite,
    entity: &str,
    kind: AlertKind,
    threshold: i64,
    fill: impl FnOnce(&mut AlertRule),
) -> AlertRule {
    let mut rule = AlertRule {
        entity: entity.into(),
        kind: kind as i32,
        threshold,
        window_minutes: 60,
        enabled: true,
        ..Default::default()
    };
    fill(&mut rule);
    suite
        .watch(Role::OpinionAnalyst)
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(rule),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn alerts(suite: &Suite) -> Vec<Alert> {
    suite
        .incidents(Role::OpinionAnalyst)
        .list_alerts(ListAlertsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .alerts
}

async fn negative_posts_raise_one_alert_per_window(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    let rule = rule(&suite, &hospital.name, AlertKind::NegativeCount, 3, |r| {
        r.notify = vec!["group:opinion".into(), "director".into()]
    })
    .await;
    let two: Vec<PushedMention> = COMPLAINTS[..2]
        .iter()
        .enumerate()
        .map(|(i, t)| post(&format!("https://bbs.example.cn/{i}"), t))
        .collect();
    suite.push(two).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert!(alerts(&suite).await.is_empty(), "two negatives are below the threshold");
    let rest: Vec<PushedMention> = COMPLAINTS[2..]
        .iter()
        .enumerate()
        .map(|(i, t)| post(&format!("https://bbs.example.cn/x{i}"), t))
        .collect();
    suite.push(rest).await;
    let raised = eventually("an alert", || async {
        let a = alerts(&suite).await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(raised.len(), 1);
    let alert = &raised[0];
    assert_eq!(alert.rule, rule.name);
    assert_eq!(alert.kind, AlertKind::NegativeCount as i32);
    assert!(alert.observed >= 3, "{alert:?}");
    assert!(alert.story.starts_with("stories/"));
    assert!(alert.message.contains("仁心医院"), "{}", alert.message);
    eventually("a notice to each recipient", || async {
        (suite.delivered("opinion.alert").len() == 2).then_some(())
    })
    .await;
    // More negatives within the window: no second alert.
    suite
        .push(vec![post(
            "https://bbs.example.cn/more",
            "仁心医院服务太差，再也不去了。",
        )])
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(alerts(&suite).await.len(), 1, "one alert per window");
    // An hour later the window is quiet: nothing new. New negatives then raise the next alert.
    suite.clock.advance(61 * MINUTE);
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    assert_eq!(alerts(&suite).await.len(), 1);
    let next: Vec<PushedMention> = COMPLAINTS
        .iter()
        .enumerate()
        .map(|(i, t)| post(&format!("https://bbs.example.cn/later{i}"), &format!("{t} 第二天")))
        .collect();
    suite.push(next).await;
    eventually("the next window's alert", || async {
        (alerts(&suite).await.len() == 2).then_some(())
    })
    .await;
    suite.stop().await;
}

async fn bursts_and_reach_raise_alerts(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    // A quiet baseline: one neutral mention an hour for the past three hours.
    for h in 1..=3 {
        let mut p = post(
            &format!("https://news.example.cn/{h}"),
            &format!("仁心医院门诊时间调整通知 第{h}期"),
        );
        p.publish_time = Some(at(START - h * HOUR - MINUTE));
        suite.push(vec![p]).await;
    }
    rule(&suite, &hospital.name, AlertKind::Burst, 5, |r| {
        r.burst_factor = 3.0;
        r.baseline_windows = 3;
    })
    .await;
    rule(&suite, &hospital.name, AlertKind::HighReach, 10_000, |_| {}).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    assert!(alerts(&suite).await.is_empty(), "a quiet baseline raises nothing");
    // Eight distinct posts within the hour: a burst. One of them reached 50,000 readers.
    let posts: Vec<PushedMention> = (0..8)
        .map(|i| {
            let mut p = post(
                &format!("https://weibo.com/burst/{i}"),
                &format!(
                    "第{i}条：听说仁心医院{}",
                    [
                        "新院区开业",
                        "专家义诊",
                        "停电",
                        "招聘",
                        "改扩建",
                        "开通夜间门诊",
                        "换了院长",
                        "医保结算系统升级"
                    ][i]
                ),
            );
            if i == 0 {
                p.reach = 50_000;
            }
            p
        })
        .collect();
    suite.push(posts).await;
    let raised = eventually("a burst and a reach alert", || async {
        let a = alerts(&suite).await;
        (a.len() >= 2).then_some(a)
    })
    .await;
    let kinds: Vec<i32> = raised.iter().map(|a| a.kind).collect();
    assert!(kinds.contains(&(AlertKind::Burst as i32)), "{raised:?}");
    assert!(kinds.contains(&(AlertKind::HighReach as i32)), "{raised:?}");
    let burst = raised.iter().find(|a| a.kind == AlertKind::Burst as i32).unwrap();
    assert_eq!(burst.observed, 8);
    assert!((burst.baseline - 1.0).abs() < 1e-9, "{burst:?}");
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    assert_eq!(alerts(&suite).await.len(), 2, "the reach alert is once per story");
    suite.stop().await;
}
