//! End-to-end tests of the fetcher against a local axum server on 127.0.0.1 (no other network).
//! Forbidden redirect targets are loopback addresses that are not allow-listed, never private
//! or metadata addresses, so that a regression in the guard cannot send traffic off the machine;
//! those addresses are covered by the guard's pure unit tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{TimeZone, Utc};
use encoding_rs::GBK;
use futures::StreamExt;

use super::*;

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn test_config() -> FetchConfig {
    FetchConfig {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        allow_hosts: vec!["127.0.0.1".to_owned()],
        min_interval: Duration::ZERO,
        ..FetchConfig::default()
    }
}

fn fetcher(cfg: FetchConfig) -> Fetcher {
    Fetcher::new(cfg).unwrap()
}

struct Got {
    items: Vec<FetchedItem>,
    validators: Validators,
    final_url: String,
    encoding: &'static str,
}

fn got(result: Result<Fetched, FetchError>) -> Got {
    match result {
        Ok(Fetched::Items {
            items,
            validators,
            final_url,
            encoding,
        }) => Got {
            items,
            validators,
            final_url,
            encoding,
        },
        other => panic!("expected items, got {other:?}"),
    }
}

fn reply(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

fn redirect(location: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// Counts requests, so tests can prove a blocked URL never reached the server.
fn counted(hits: &Arc<AtomicUsize>, response: Response) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    response
}

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>健康新闻</title><link>http://news.example/</link>
<item>
  <title>某某医院开通夜间门诊</title>
  <link>/news/1.html</link>
  <description>&lt;p&gt;患者称&lt;b&gt;服务很好&lt;/b&gt;&lt;/p&gt;</description>
  <dc:creator>张三</dc:creator>
  <pubDate>Tue, 05 Mar 2024 18:20:30 +0800</pubDate>
</item>
<item>
  <title>Second</title>
  <link>https://other.example/2</link>
  <description>plain</description>
</item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Hospital watch</title>
  <id>urn:feed</id>
  <updated>2024-03-06T00:00:00Z</updated>
  <entry>
    <title type="html">&lt;b&gt;Ward&lt;/b&gt; reopened</title>
    <id>urn:1</id>
    <link rel="alternate" href="entries/1"/>
    <link rel="edit" href="https://edit.example/1"/>
    <published>2024-03-05T08:00:00+08:00</published>
    <updated>2024-03-06T08:00:00Z</updated>
    <author><name>Reporter One</name></author>
    <author><name>Reporter Two</name></author>
    <content type="html">&lt;p&gt;The ward &lt;script&gt;evil()&lt;/script&gt;is open.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Only updated</title>
    <id>urn:2</id>
    <updated>2024-03-07T09:30:00Z</updated>
    <summary>Summary text</summary>
  </entry>
</feed>"#;

#[tokio::test]
async fn rss_feed_items_links_and_dates() {
    let seen_ua = Arc::new(std::sync::Mutex::new(String::new()));
    let ua = Arc::clone(&seen_ua);
    let addr = serve(Router::new().route(
        "/feeds/rss.xml",
        get(move |headers: HeaderMap| async move {
            *ua.lock().unwrap() = headers[header::USER_AGENT].to_str().unwrap().to_owned();
            reply("application/rss+xml; charset=utf-8", RSS)
        }),
    ))
    .await;
    let url = format!("http://{addr}/feeds/rss.xml");
    let g = got(fetcher(test_config())
        .fetch(&url, SourceKind::Feed, &Validators::default())
        .await);
    assert_eq!(g.encoding, "UTF-8");
    assert_eq!(g.final_url, url);
    assert_eq!(g.validators, Validators::default());
    assert_eq!(g.items.len(), 2);
    let first = &g.items[0];
    assert_eq!(first.title, "某某医院开通夜间门诊");
    assert_eq!(first.text, "某某医院开通夜间门诊\n患者称服务很好");
    assert_eq!(
        first.url.as_deref(),
        Some(format!("http://{addr}/news/1.html").as_str())
    );
    assert_eq!(first.author, "张三");
    assert_eq!(
        first.published,
        Some(Utc.with_ymd_and_hms(2024, 3, 5, 10, 20, 30).unwrap())
    );
    assert_eq!(g.items[1].url.as_deref(), Some("https://other.example/2"));
    assert_eq!(g.items[1].published, None);
    assert_eq!(*seen_ua.lock().unwrap(), FetchConfig::default().user_agent);
}

#[tokio::test]
async fn atom_feed_items() {
    let addr =
        serve(Router::new().route("/feeds/atom.xml", get(|| async { reply("application/atom+xml", ATOM) }))).await;
    let url = format!("http://{addr}/feeds/atom.xml");
    let g = got(fetcher(test_config())
        .fetch(&url, SourceKind::Feed, &Validators::default())
        .await);
    assert_eq!(g.items.len(), 2);
    let first = &g.items[0];
    assert_eq!(first.title, "Ward reopened");
    assert_eq!(first.text, "Ward reopened\nThe ward is open.");
    assert_eq!(
        first.url.as_deref(),
        Some(format!("http://{addr}/feeds/entries/1").as_str())
    );
    assert_eq!(first.author, "Reporter One, Reporter Two");
    assert_eq!(
        first.published,
        Some(Utc.with_ymd_and_hms(2024, 3, 5, 0, 0, 0).unwrap())
    );
    let second = &g.items[1];
    assert_eq!(second.text, "Only updated\nSummary text");
    assert_eq!(second.url, None);
    assert_eq!(
        second.published,
        Some(Utc.with_ymd_and_hms(2024, 3, 7, 9, 30, 0).unwrap())
    );
}

#[tokio::test]
async fn gbk_feed_declared_in_xml_only() {
    let xml = r#"<?xml version="1.0" encoding="GBK"?>
<rss version="2.0"><channel><title>频道</title>
<item><title>市第一人民医院回应患者投诉</title><link>http://news.example/a</link>
<description>家属表示满意</description></item></channel></rss>"#;
    let (bytes, _, unmappable) = GBK.encode(xml);
    assert!(!unmappable);
    let body = bytes.into_owned();
    assert!(std::str::from_utf8(&body).is_err(), "the test body must not be UTF-8");
    let addr = serve(Router::new().route("/gbk.xml", get(move || async move { reply("text/xml", body) }))).await;
    let g = got(fetcher(test_config())
        .fetch(
            &format!("http://{addr}/gbk.xml"),
            SourceKind::Feed,
            &Validators::default(),
        )
        .await);
    assert_eq!(g.encoding, "GBK");
    assert_eq!(g.items.len(), 1);
    assert_eq!(g.items[0].title, "市第一人民医院回应患者投诉");
    assert_eq!(g.items[0].text, "市第一人民医院回应患者投诉\n家属表示满意");
}

#[tokio::test]
async fn gbk_page_with_meta_charset() {
    let html = r#"<html><head><meta charset="gbk"><title>医院新闻</title></head>
<body><p>儿科病房<b>正式</b>启用</p></body></html>"#;
    let body = GBK.encode(html).0.into_owned();
    let addr = serve(Router::new().route("/page", get(move || async move { reply("text/html", body) }))).await;
    let url = format!("http://{addr}/page");
    let g = got(fetcher(test_config())
        .fetch(&url, SourceKind::Page, &Validators::default())
        .await);
    assert_eq!(g.encoding, "GBK");
    assert_eq!(g.items.len(), 1);
    assert_eq!(g.items[0].title, "医院新闻");
    assert_eq!(g.items[0].text, "儿科病房正式启用");
    assert_eq!(g.items[0].url.as_deref(), Some(url.as_str()));
}

#[tokio::test]
async fn page_text_excludes_scripts_and_styles() {
    let html = r#"<!doctype html><html><head><title>Visit us</title>
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
<meta name="author" content="Press Office">
<script>var t = "SCRIPT-IN-HEAD";</script></head>
<body><h1>Open day</h1>
<script>document.write("SCRIPT-IN-BODY")</script>
<style>.x::after { content: "STYLE-TEXT" }</style>
<noscript>NOSCRIPT-TEXT</noscript>
<template><p>TEMPLATE-TEXT</p></template>
<p>All   welcome.</p></body></html>"#;
    let addr = serve(Router::new().route(
        "/p",
        get(move || async move { reply("text/html; charset=utf-8", html) }),
    ))
    .await;
    let g = got(fetcher(test_config())
        .fetch(&format!("http://{addr}/p"), SourceKind::Page, &Validators::default())
        .await);
    let item = &g.items[0];
    assert_eq!(item.title, "Visit us");
    assert_eq!(item.text, "Open day All welcome.");
    for hidden in [
        "SCRIPT-IN-HEAD",
        "SCRIPT-IN-BODY",
        "STYLE-TEXT",
        "NOSCRIPT-TEXT",
        "TEMPLATE-TEXT",
    ] {
        assert!(!item.text.contains(hidden), "{hidden} leaked into {:?}", item.text);
    }
    assert_eq!(item.author, "Press Office");
    assert_eq!(
        item.published,
        Some(Utc.with_ymd_and_hms(2024, 3, 5, 10, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn malformed_xml_is_a_parse_error() {
    let addr = serve(Router::new().route(
        "/bad.xml",
        get(|| async {
            reply(
                "application/rss+xml",
                "<rss version=\"2.0\"><channel><item><title>x</item></rss>",
            )
        }),
    ))
    .await;
    let err = fetcher(test_config())
        .fetch(
            &format!("http://{addr}/bad.xml"),
            SourceKind::Feed,
            &Validators::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Parse(_)), "{err:?}");
}

#[tokio::test]
async fn binary_content_type_refused() {
    let addr = serve(Router::new().route(
        "/img",
        get(|| async { reply("image/png", vec![0x89u8, b'P', b'N', b'G']) }),
    ))
    .await;
    let err = fetcher(test_config())
        .fetch(&format!("http://{addr}/img"), SourceKind::Page, &Validators::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Parse(ref m) if m.contains("image/png")),
        "{err:?}"
    );
}

/// A body that yields `first` and then never ends: reading it all would hit the timeout.
fn stalled_body(first: Bytes) -> Body {
    Body::from_stream(
        futures::stream::once(async move { Ok::<_, Infallible>(first) }).chain(futures::stream::pending()),
    )
}

#[tokio::test]
async fn declared_length_over_limit_rejected_up_front() {
    let addr = serve(Router::new().route(
        "/huge",
        get(|| async {
            Response::builder()
                .header(header::CONTENT_TYPE, "application/rss+xml")
                .header(header::CONTENT_LENGTH, (100 * 1024 * 1024).to_string())
                .body(stalled_body(Bytes::from_static(b"<rss>")))
                .unwrap()
        }),
    ))
    .await;
    let cfg = FetchConfig {
        max_bytes: 64 * 1024,
        ..test_config()
    };
    let started = Instant::now();
    let err = fetcher(cfg)
        .fetch(&format!("http://{addr}/huge"), SourceKind::Feed, &Validators::default())
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::TooLarge { limit: 64 * 1024 });
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn endless_chunked_body_stops_at_limit() {
    static CHUNK: [u8; 8192] = [b'a'; 8192];
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&produced);
    let addr = serve(Router::new().route(
        "/endless",
        get(move || {
            let counter = Arc::clone(&counter);
            async move {
                let stream = futures::stream::repeat_with(move || {
                    counter.fetch_add(CHUNK.len(), Ordering::Relaxed);
                    Ok::<_, Infallible>(Bytes::from_static(&CHUNK))
                });
                reply("text/html", Body::from_stream(stream))
            }
        }),
    ))
    .await;
    let cfg = FetchConfig {
        max_bytes: 64 * 1024,
        ..test_config()
    };
    let started = Instant::now();
    let err = fetcher(cfg)
        .fetch(
            &format!("http://{addr}/endless"),
            SourceKind::Page,
            &Validators::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::TooLarge { limit: 64 * 1024 });
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // The server only got as far as socket buffers allowed before we hung up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(produced.load(Ordering::Relaxed) < 64 * 1024 * 1024);
}

#[tokio::test]
async fn size_limit_boundary() {
    fn page(len: usize) -> String {
        let mut s = "<p>".to_owned();
        s.push_str(&"x".repeat(len - 3));
        s
    }
    let addr = serve(
        Router::new()
            .route("/exact", get(|| async { reply("text/html", page(1000)) }))
            .route("/over", get(|| async { reply("text/html", page(1001)) }))
            .route(
                "/chunked-exact",
                get(|| async {
                    let parts = vec![
                        Ok::<_, Infallible>(Bytes::from(page(500))),
                        Ok(Bytes::from("y".repeat(500))),
                    ];
                    reply("text/html", Body::from_stream(futures::stream::iter(parts)))
                }),
            )
            .route(
                "/chunked-over",
                get(|| async {
                    let parts = vec![
                        Ok::<_, Infallible>(Bytes::from(page(500))),
                        Ok(Bytes::from("y".repeat(501))),
                    ];
                    reply("text/html", Body::from_stream(futures::stream::iter(parts)))
                }),
            ),
    )
    .await;
    let f = fetcher(FetchConfig {
        max_bytes: 1000,
        ..test_config()
    });
    let fetch = |path: &'static str| {
        let f = f.clone();
        async move {
            f.fetch(
                &format!("http://{addr}{path}"),
                SourceKind::Page,
                &Validators::default(),
            )
            .await
        }
    };
    assert_eq!(got(fetch("/exact").await).items[0].text.len(), 997);
    assert_eq!(fetch("/over").await.unwrap_err(), FetchError::TooLarge { limit: 1000 });
    assert_eq!(got(fetch("/chunked-exact").await).items[0].text.len(), 997);
    assert_eq!(
        fetch("/chunked-over").await.unwrap_err(),
        FetchError::TooLarge { limit: 1000 }
    );
}

#[tokio::test]
async fn slow_server_times_out() {
    let addr = serve(
        Router::new()
            .route(
                "/slow-headers",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    reply("text/html", "late")
                }),
            )
            .route(
                "/slow-body",
                get(|| async { reply("text/html", stalled_body(Bytes::from_static(b"<p>start"))) }),
            ),
    )
    .await;
    let f = fetcher(FetchConfig {
        timeout: Duration::from_millis(300),
        ..test_config()
    });
    for path in ["/slow-headers", "/slow-body"] {
        let started = Instant::now();
        let err = f
            .fetch(
                &format!("http://{addr}{path}"),
                SourceKind::Page,
                &Validators::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::Timeout, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn conditional_get_returns_not_modified() {
    const ETAG: &str = "\"v1\"";
    const LAST_MODIFIED: &str = "Tue, 05 Mar 2024 10:00:00 GMT";
    let since_seen = Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = Arc::clone(&since_seen);
    let addr = serve(Router::new().route(
        "/rss",
        get(move |headers: HeaderMap| async move {
            *seen.lock().unwrap() = headers
                .get(header::IF_MODIFIED_SINCE)
                .map(|v| v.to_str().unwrap().to_owned());
            if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == ETAG) {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            (
                [
                    (header::ETAG, ETAG),
                    (header::LAST_MODIFIED, LAST_MODIFIED),
                    (header::CONTENT_TYPE, "application/rss+xml"),
                ],
                RSS,
            )
                .into_response()
        }),
    ))
    .await;
    let url = format!("http://{addr}/rss");
    let f = fetcher(test_config());

    let first = got(f.fetch(&url, SourceKind::Feed, &Validators::default()).await);
    assert_eq!(
        first.validators,
        Validators {
            etag: Some(ETAG.to_owned()),
            last_modified: Some(LAST_MODIFIED.to_owned())
        }
    );
    assert_eq!(*since_seen.lock().unwrap(), None);

    let second = f.fetch(&url, SourceKind::Feed, &first.validators).await.unwrap();
    assert_eq!(second, Fetched::NotModified);
    assert_eq!(since_seen.lock().unwrap().as_deref(), Some(LAST_MODIFIED));

    let stale = Validators {
        etag: Some("\"v0\"".to_owned()),
        last_modified: None,
    };
    assert_eq!(got(f.fetch(&url, SourceKind::Feed, &stale).await).items.len(), 2);
}

#[tokio::test]
async fn error_status_reported() {
    let addr = serve(Router::new()).await;
    let err = fetcher(test_config())
        .fetch(
            &format!("http://{addr}/missing"),
            SourceKind::Page,
            &Validators::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::Status(404));
    assert_eq!(err.to_string(), "HTTP status 404");
}

#[tokio::test]
async fn redirect_to_allowed_host_followed() {
    let addr = serve(
        Router::new()
            .route("/start", get(|| async { redirect("/middle".to_owned()) }))
            .route(
                "/middle",
                get(|headers: HeaderMap| async move {
                    let port = headers[header::HOST]
                        .to_str()
                        .unwrap()
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .to_owned();
                    redirect(format!("http://localhost:{port}/feeds/rss.xml"))
                }),
            )
            .route("/feeds/rss.xml", get(|| async { reply("application/rss+xml", RSS) })),
    )
    .await;
    let cfg = FetchConfig {
        allow_hosts: vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        ..test_config()
    };
    let g = got(fetcher(cfg)
        .fetch(
            &format!("http://{addr}/start"),
            SourceKind::Feed,
            &Validators::default(),
        )
        .await);
    let final_url = format!("http://localhost:{}/feeds/rss.xml", addr.port());
    assert_eq!(g.final_url, final_url);
    // Relative links resolve against where the feed actually came from.
    assert_eq!(
        g.items[0].url.as_deref(),
        Some(format!("http://localhost:{}/news/1.html", addr.port()).as_str())
    );
}

#[tokio::test]
async fn redirect_to_forbidden_target_blocked() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let addr = serve(
        Router::new()
            .route(
                "/to/{target}",
                get(|Path(target): Path<String>, headers: HeaderMap| async move {
                    let port = headers[header::HOST]
                        .to_str()
                        .unwrap()
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .to_owned();
                    match target.as_str() {
                        "loopback-ip" => redirect(format!("http://127.0.0.2:{port}/rss")),
                        "loopback-v6" => redirect(format!("http://[::1]:{port}/rss")),
                        "localhost" => redirect(format!("http://localhost:{port}/rss")),
                        "ftp" => redirect("ftp://127.0.0.1/rss".to_owned()),
                        _ => StatusCode::NOT_FOUND.into_response(),
                    }
                }),
            )
            .route(
                "/rss",
                get(move || async move { counted(&h, reply("application/rss+xml", RSS)) }),
            ),
    )
    .await;
    let f = fetcher(test_config());
    for target in ["loopback-ip", "loopback-v6", "localhost", "ftp"] {
        let err = f
            .fetch(
                &format!("http://{addr}/to/{target}"),
                SourceKind::Feed,
                &Validators::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Blocked { .. }), "{target}: {err:?}");
        assert!(err.to_string().starts_with("blocked: "), "{err}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirect_limit_enforced() {
    let addr = serve(
        Router::new()
            .route(
                "/hop/{n}",
                get(|Path(n): Path<u32>| async move {
                    if n == 0 {
                        redirect("/feed".to_owned())
                    } else {
                        redirect(format!("/hop/{}", n - 1))
                    }
                }),
            )
            .route("/feed", get(|| async { reply("application/rss+xml", RSS) })),
    )
    .await;
    let f = fetcher(FetchConfig {
        max_redirects: 3,
        ..test_config()
    });
    // /hop/1 -> /hop/0 -> /feed: two redirects; /hop/2: three; /hop/3: four.
    assert_eq!(
        got(f
            .fetch(
                &format!("http://{addr}/hop/2"),
                SourceKind::Feed,
                &Validators::default()
            )
            .await)
        .items
        .len(),
        2
    );
    let err = f
        .fetch(
            &format!("http://{addr}/hop/3"),
            SourceKind::Feed,
            &Validators::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::TooManyRedirects { max: 3 });
}

#[tokio::test]
async fn loopback_name_blocked_when_only_ip_allowed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let addr = serve(Router::new().route(
        "/rss",
        get(move || async move { counted(&h, reply("application/rss+xml", RSS)) }),
    ))
    .await;
    let f = fetcher(test_config());
    let url = format!("http://localhost:{}/rss", addr.port());
    let err = f
        .fetch(&url, SourceKind::Feed, &Validators::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");

    // Past the static check, the resolver guard inside the client refuses the name too: this
    // is what stops a public-looking name that resolves (or rebinds) to a private address.
    let err = f
        .fetch_once(url::Url::parse(&url).unwrap(), SourceKind::Feed, &Validators::default())
        .await
        .unwrap_err();
    match err {
        FetchError::Blocked { reason } => assert!(reason.contains("resolves to"), "{reason}"),
        other => panic!("expected Blocked from the resolver, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    // Allowing the name lets the same URL through.
    let allowed = fetcher(FetchConfig {
        allow_hosts: vec!["localhost".to_owned()],
        ..test_config()
    });
    assert_eq!(
        got(allowed.fetch(&url, SourceKind::Feed, &Validators::default()).await)
            .items
            .len(),
        2
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ip_literal_blocked_unless_allowed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let addr = serve(Router::new().route(
        "/rss",
        get(move || async move { counted(&h, reply("application/rss+xml", RSS)) }),
    ))
    .await;
    let url = format!("http://{addr}/rss");
    let blocked = fetcher(FetchConfig {
        allow_hosts: Vec::new(),
        ..test_config()
    });
    let err = blocked
        .fetch(&url, SourceKind::Feed, &Validators::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Blocked { ref reason } if reason.contains("127.0.0.1")),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    for bad in ["ftp://127.0.0.1/rss", "http://user:pw@127.0.0.1/rss", "http://"] {
        let err = fetcher(test_config())
            .fetch(bad, SourceKind::Feed, &Validators::default())
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Blocked { .. }), "{bad}: {err:?}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn same_host_requests_are_spaced() {
    let addr = serve(Router::new().route("/rss", get(|| async { reply("application/rss+xml", RSS) }))).await;
    let cfg = FetchConfig {
        allow_hosts: vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        min_interval: Duration::from_secs(1),
        ..test_config()
    };
    let f = fetcher(cfg);
    let url = format!("http://{addr}/rss");

    let started = Instant::now();
    got(f.fetch(&url, SourceKind::Feed, &Validators::default()).await);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "first fetch waited: {:?}",
        started.elapsed()
    );
    got(f.fetch(&url, SourceKind::Feed, &Validators::default()).await);
    assert!(
        started.elapsed() >= Duration::from_millis(990),
        "second fetch did not wait: {:?}",
        started.elapsed()
    );

    // Another host is not held back by the first one's interval.
    let other = Instant::now();
    got(f
        .fetch(
            &format!("http://localhost:{}/rss", addr.port()),
            SourceKind::Feed,
            &Validators::default(),
        )
        .await);
    assert!(
        other.elapsed() < Duration::from_millis(900),
        "other host waited: {:?}",
        other.elapsed()
    );

    // A scheduler can ask instead of waiting.
    assert!(f.limiter().try_acquire("127.0.0.1").is_err());
}

#[test]
fn error_messages_are_readable() {
    let cases = [
        (
            FetchError::Blocked {
                reason: "address 10.0.0.1 is private or reserved".into(),
            },
            "blocked: address 10.0.0.1 is private or reserved",
        ),
        (
            FetchError::TooLarge { limit: 2048 },
            "response larger than the limit of 2048 bytes",
        ),
        (FetchError::Timeout, "timed out"),
        (FetchError::Status(503), "HTTP status 503"),
        (FetchError::TooManyRedirects { max: 5 }, "more than 5 redirects"),
        (
            FetchError::Decode("unsupported character set \"hz-gb-2312\"".into()),
            "cannot decode the response: unsupported character set \"hz-gb-2312\"",
        ),
        (
            FetchError::Parse("no root element".into()),
            "cannot parse the response: no root element",
        ),
        (
            FetchError::Network("connection refused".into()),
            "network error: connection refused",
        ),
    ];
    for (err, msg) in cases {
        assert_eq!(err.to_string(), msg);
    }
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = fetcher(test_config())
        .fetch(&format!("http://{addr}/"), SourceKind::Page, &Validators::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Network(_)), "{err:?}");
}

#[test]
fn invalid_config_rejected() {
    assert!(
        Fetcher::new(FetchConfig {
            max_bytes: 0,
            ..FetchConfig::default()
        })
        .is_err()
    );
    assert!(
        Fetcher::new(FetchConfig {
            timeout: Duration::ZERO,
            ..FetchConfig::default()
        })
        .is_err()
    );
    let f = Fetcher::new(FetchConfig::default()).unwrap();
    assert_eq!(f.config().max_redirects, 5);
    assert_eq!(f.config().max_bytes, 2 * 1024 * 1024);
}
