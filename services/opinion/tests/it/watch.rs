//! The watch list, sources and alert rules: field-level errors, names that must be unique,
//! stale etags, the SSRF guard at creation, permissions.

use crate::helpers::*;
use hcrm_kit::auth::Role;
use tonic::Code;

crate::both_backends!(
    the_watch_list_is_kept_with_clear_errors,
    sources_to_private_addresses_are_refused_at_creation,
    alert_rules_are_checked,
);

async fn the_watch_list_is_kept_with_clear_errors(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut analyst = suite.watch(Role::OpinionAnalyst);
    let hospital = suite.hospital().await;
    assert!(hospital.terms.iter().any(|t| t == "Renxin Hospital"));
    assert_status(
        analyst
            .create_entity(CreateEntityRequest {
                entity: Some(Entity {
                    kind: EntityKind::Hospital as i32,
                    display_name: "仁心医院".into(),
                    terms: vec!["仁心".into()],
                    ..Default::default()
                }),
            })
            .await,
        Code::AlreadyExists,
        None,
    );
    let bad = analyst
        .create_entity(CreateEntityRequest {
            entity: Some(Entity {
                kind: 0,
                display_name: String::new(),
                terms: vec!["x".into()],
                ..Default::default()
            }),
        })
        .await;
    let status = assert_status(bad, Code::InvalidArgument, Some("entity.kind"));
    let text = format!("{status:?}");
    assert!(
        text.contains("entity.display_name") && text.contains("entity.terms[0]"),
        "{text}"
    );
    // A new term applies to the next posts.
    let mut e = hospital.clone();
    e.terms.push("RX Hospital".into());
    let updated = analyst
        .update_entity(UpdateEntityRequest {
            entity: Some(e.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(updated.etag, hospital.etag);
    assert_status(
        analyst.update_entity(UpdateEntityRequest { entity: Some(e) }).await,
        Code::Aborted,
        None,
    );
    let r = suite
        .push(vec![post(
            "https://x.example.org/1",
            "Waited for hours at RX Hospital, terrible.",
        )])
        .await;
    assert_eq!(r.accepted, 1, "the new term matched");
    // Archived: no longer matched, still readable.
    let archived = analyst
        .archive_entity(ArchiveEntityRequest {
            name: updated.name.clone(),
            etag: updated.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archived);
    let r = suite
        .push(vec![post("https://x.example.org/2", "RX Hospital again")])
        .await;
    assert_eq!((r.accepted, r.unmatched), (0, 1));
    let listed = analyst
        .list_entities(ListEntitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entities;
    assert!(listed.is_empty(), "archived entities are left out by default");
    assert_status(
        analyst
            .get_entity(GetEntityRequest {
                name: "entities/nope".into(),
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        suite
            .watch(Role::Guide)
            .list_entities(ListEntitiesRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        suite
            .watch(Role::Inspector)
            .create_entity(CreateEntityRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    suite.stop().await;
}

async fn sources_to_private_addresses_are_refused_at_creation(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let mut analyst = suite.watch(Role::OpinionAnalyst);
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/feed.xml",
        "http://[::1]/feed",
        "ftp://example.com/feed.xml",
        "http://user:pw@example.com/feed.xml",
        "not a url",
    ] {
        assert_status(
            analyst
                .create_source(CreateSourceRequest {
                    source: Some(Source {
                        kind: SourceKind::Feed as i32,
                        url: url.into(),
                        ..Default::default()
                    }),
                })
                .await,
            Code::InvalidArgument,
            Some("source.url"),
        );
    }
    let ok = analyst
        .create_source(CreateSourceRequest {
            source: Some(Source {
                kind: SourceKind::Feed as i32,
                url: "https://news.example.cn/rss.xml".into(),
                title: "本地新闻".into(),
                enabled: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.interval_seconds, 900, "the default interval");
    assert_status(
        analyst
            .create_source(CreateSourceRequest {
                source: Some(Source {
                    kind: SourceKind::Feed as i32,
                    url: "https://news.example.cn/rss.xml".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::AlreadyExists,
        None,
    );
    assert_status(
        analyst
            .create_source(CreateSourceRequest {
                source: Some(Source {
                    kind: SourceKind::Page as i32,
                    url: "https://news.example.cn/p".into(),
                    interval_seconds: 5,
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
        Some("source.interval_seconds"),
    );
    let mut s = ok.clone();
    s.enabled = false;
    s.interval_seconds = 3600;
    let updated = analyst
        .update_source(UpdateSourceRequest { source: Some(s) })
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.enabled);
    assert_eq!(updated.interval_seconds, 3600);
    assert_eq!(updated.url, ok.url, "the URL is the source's identity");
    analyst
        .delete_source(DeleteSourceRequest {
            name: ok.name.clone(),
            etag: updated.etag.clone(),
        })
        .await
        .unwrap();
    assert_status(
        analyst.get_source(GetSourceRequest { name: ok.name }).await,
        Code::NotFound,
        None,
    );
    suite.stop().await;
}

async fn alert_rules_are_checked(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    let mut analyst = suite.watch(Role::OpinionAnalyst);
    let bad = analyst
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(AlertRule {
                entity: hospital.name.clone(),
                kind: AlertKind::Burst as i32,
                threshold: 0,
                window_minutes: 1,
                burst_factor: 0.5,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let status = format!(
        "{:?}",
        assert_status(bad, Code::InvalidArgument, Some("rule.threshold"))
    );
    for field in ["rule.window_minutes", "rule.burst_factor", "rule.baseline_windows"] {
        assert!(status.contains(field), "{field}: {status}");
    }
    assert_status(
        analyst
            .create_alert_rule(CreateAlertRuleRequest {
                rule: Some(AlertRule {
                    entity: "entities/none".into(),
                    kind: AlertKind::NegativeCount as i32,
                    threshold: 3,
                    window_minutes: 60,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        None,
    );
    let create = CreateAlertRuleRequest {
        rule: Some(AlertRule {
            entity: hospital.name.clone(),
            kind: AlertKind::NegativeCount as i32,
            threshold: 3,
            window_minutes: 60,
            enabled: true,
            ..Default::default()
        }),
        request_id: "rule-negatives-1".into(),
    };
    let rule = analyst.create_alert_rule(create.clone()).await.unwrap().into_inner();
    let retried = analyst.create_alert_rule(create).await.unwrap().into_inner();
    assert_eq!(
        retried.name, rule.name,
        "a retry with the same request_id is the same rule"
    );
    let listed = analyst
        .list_alert_rules(ListAlertRulesRequest {
            entity: hospital.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(listed, vec![rule.clone()]);
    assert_status(
        analyst
            .delete_alert_rule(DeleteAlertRuleRequest {
                name: rule.name.clone(),
                etag: "\"9\"".into(),
            })
            .await,
        Code::Aborted,
        None,
    );
    analyst
        .delete_alert_rule(DeleteAlertRuleRequest {
            name: rule.name,
            etag: rule.etag,
        })
        .await
        .unwrap();
    suite.stop().await;
}
