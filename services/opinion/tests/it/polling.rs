//! Sources polled from a local HTTP server: RSS in UTF-8 and in GBK, a page with scripts, a
//! malformed feed, a page over the size limit, conditional GET and a redirect to a private
//! address. Each fetch ends in kept mentions or a recorded error; the poller keeps going.

use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hcrm_kit::auth::Role;

crate::both_backends!(
    feeds_and_pages_are_polled_and_failures_recorded,
    the_poller_fetches_what_is_due_and_keeps_going,
);

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>本地新闻</title>
<item><title>仁心医院开展义诊活动</title><link>/news/1</link>
<description>&lt;p&gt;仁心医院专家团队走进社区，为居民免费义诊，获得一致好评。&lt;/p&gt;</description>
<pubDate>Sun, 31 May 2026 08:00:00 GMT</pubDate></item>
<item><title>市图书馆延长开放时间</title><link>/news/2</link><description>与医院无关的新闻。</description></item>
<item><title>网友投诉仁心医院停车难</title><link>/news/3</link><description>仁心医院停车场太小，排队一小时，体验很差。</description></item>
</channel></rss>"#;

fn gbk_rss() -> Vec<u8> {
    let xml = r#"<?xml version="1.0" encoding="GBK"?>
<rss version="2.0"><channel><title>论坛</title>
<item><title>仁心医院的护士真负责</title><link>http://forum.example.cn/t/9</link>
<description>住院期间仁心医院的护士非常细心负责，感谢她们。</description></item>
</channel></rss>"#;
    encoding_rs::GBK.encode(xml).0.into_owned()
}

const PAGE: &str = r#"<html><head><meta charset="utf-8"><title>仁心医院获评省级文明单位</title>
<script>var x = "仁心医院 脚本里的字不算";</script><style>p{}</style></head>
<body><p>近日，仁心医院荣获省级文明单位称号，这是对全院职工辛勤付出的肯定。</p></body></html>"#;

async fn serve() -> String {
    let app = axum::Router::new()
        .route(
            "/rss",
            get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], RSS) }),
        )
        .route(
            "/gbk.xml",
            get(|| async { ([(header::CONTENT_TYPE, "text/xml")], gbk_rss()) }),
        )
        .route("/page", get(|| async { ([(header::CONTENT_TYPE, "text/html")], PAGE) }))
        .route(
            "/broken",
            get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], "<rss><channel><item>") }),
        )
        .route(
            "/huge",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "仁".repeat(200_000)) }),
        )
        .route(
            "/etag",
            get(|headers: HeaderMap| async move {
                if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"v1\"") {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                (
                    [(header::ETAG, "\"v1\""), (header::CONTENT_TYPE, "application/rss+xml")],
                    RSS,
                )
                    .into_response()
            }),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "http://10.0.0.1/feed")]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn source(suite: &Suite, url: &str, kind: SourceKind) -> Source {
    suite
        .watch(Role::OpinionAnalyst)
        .create_source(CreateSourceRequest {
            source: Some(Source {
                kind: kind as i32,
                url: url.into(),
                enabled: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Polls now. The background poller may hold the source's lease at that moment (a new source is
/// due at once); the service then says FAILED_PRECONDITION "being fetched right now", and the
/// test asks again, as a person would.
async fn poll(suite: &Suite, s: &Source) -> Source {
    let started = std::time::Instant::now();
    loop {
        match suite
            .watch(Role::OpinionAnalyst)
            .poll_source(PollSourceRequest { name: s.name.clone() })
            .await
        {
            Ok(r) => return r.into_inner(),
            Err(status)
                if status.code() == tonic::Code::FailedPrecondition
                    && started.elapsed() < std::time::Duration::from_secs(10) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(status) => panic!("PollSource: {status:?}"),
        }
    }
}

async fn feeds_and_pages_are_polled_and_failures_recorded(backend: TestBackend) {
    let suite = Suite::start(backend).await;
    let hospital = suite.hospital().await;
    let base = serve().await;

    let rss = source(&suite, &format!("{base}/rss"), SourceKind::Feed).await;
    let polled = poll(&suite, &rss).await;
    assert_eq!(polled.last_status, FetchStatus::Ok as i32, "{polled:?}");
    assert_eq!(
        (polled.last_item_count, polled.last_kept_count),
        (3, 2),
        "the library news is not about us"
    );
    assert!(polled.last_fetch_time.is_some());
    let again = poll(&suite, &rss).await;
    assert_eq!((again.last_item_count, again.last_kept_count), (3, 0), "already stored");
    let mentions = suite
        .mentions(Role::OpinionAnalyst)
        .list_mentions(ListMentionsRequest {
            source: rss.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mentions;
    assert_eq!(mentions.len(), 2);
    assert!(
        mentions.iter().all(|m| m.url.starts_with(&format!("{base}/news/"))),
        "links resolved"
    );
    assert!(mentions.iter().all(|m| m.entities == vec![hospital.name.clone()]));
    let clinic = mentions.iter().find(|m| m.url.ends_with("/1")).unwrap();
    assert!(!clinic.text.contains("<p>"), "markup stripped: {}", clinic.text);
    assert!(clinic.topics.iter().any(|t| t == "good_deeds"), "{:?}", clinic.topics);

    let gbk = poll(
        &suite,
        &source(&suite, &format!("{base}/gbk.xml"), SourceKind::Feed).await,
    )
    .await;
    assert_eq!(gbk.last_status, FetchStatus::Ok as i32, "{gbk:?}");
    assert_eq!(gbk.last_kept_count, 1);
    assert_eq!(gbk.last_encoding.to_uppercase(), "GBK");

    let page = poll(&suite, &source(&suite, &format!("{base}/page"), SourceKind::Page).await).await;
    assert_eq!(page.last_kept_count, 1, "{page:?}");
    let page_mention = suite
        .mentions(Role::OpinionAnalyst)
        .list_mentions(ListMentionsRequest {
            source: page.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mentions
        .remove(0);
    assert!(!page_mention.text.contains("脚本"), "{}", page_mention.text);
    assert_eq!(page_mention.title, "仁心医院获评省级文明单位");

    for (path, expect) in [("/broken", "pars"), ("/huge", "large"), ("/redirect", "blocked")] {
        let s = poll(
            &suite,
            &source(&suite, &format!("{base}{path}"), SourceKind::Feed).await,
        )
        .await;
        assert_eq!(s.last_status, FetchStatus::Error as i32, "{path}: {s:?}");
        assert_eq!(s.consecutive_failures, 1);
        assert!(s.last_error.to_lowercase().contains(expect), "{path}: {}", s.last_error);
        assert!(
            s.next_fetch_time.unwrap().seconds > at(START).seconds + 900,
            "backs off"
        );
    }

    let etag = source(&suite, &format!("{base}/etag"), SourceKind::Feed).await;
    assert_eq!(poll(&suite, &etag).await.last_status, FetchStatus::Ok as i32);
    assert_eq!(poll(&suite, &etag).await.last_status, FetchStatus::NotModified as i32);
    suite.stop().await;
}

async fn the_poller_fetches_what_is_due_and_keeps_going(backend: TestBackend) {
    let suite = Suite::start_tuned(backend, |cfg| cfg.poll_every_seconds = 1).await;
    suite.hospital().await;
    let base = serve().await;
    let broken = source(&suite, &format!("{base}/broken"), SourceKind::Feed).await;
    let rss = source(&suite, &format!("{base}/rss"), SourceKind::Feed).await;
    let get = |name: String| {
        let mut client = suite.watch(Role::OpinionAnalyst);
        async move { client.get_source(GetSourceRequest { name }).await.unwrap().into_inner() }
    };
    let done = eventually("both sources polled", || async {
        let (b, r) = (get(broken.name.clone()).await, get(rss.name.clone()).await);
        (b.last_fetch_time.is_some() && r.last_fetch_time.is_some()).then_some((b, r))
    })
    .await;
    assert_eq!(done.0.last_status, FetchStatus::Error as i32);
    assert_eq!(done.1.last_status, FetchStatus::Ok as i32);
    assert_eq!(done.1.last_kept_count, 2);
    // Not due again until its interval has passed (the clock stands still): the failed source
    // was tried once, not once a second.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(get(broken.name.clone()).await.consecutive_failures, 1);
    // Once its (backed-off) time comes, it is tried again and keeps failing cleanly.
    suite.clock.advance(2 * 900 * 1_000_000 + 1);
    eventually("the second try", || async {
        (get(broken.name.clone()).await.consecutive_failures == 2).then_some(())
    })
    .await;
    suite.stop().await;
}
