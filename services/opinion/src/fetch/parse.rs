//! Text to items. Everything downstream (watch-list matching, de-duplication, sentiment) works
//! on plain text, so markup is stripped here once, and invisible content (scripts, styles,
//! templates) is dropped so that keywords inside tracking code cannot produce mentions.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use scraper::{ElementRef, Html, Node, Selector};
use url::Url;

use super::decode::rewrite_xml_declaration;
use super::{FetchError, FetchedItem};

/// Elements whose content is never shown as text.
const INVISIBLE: &[&str] = &[
    "script", "style", "noscript", "template", "head", "iframe", "object", "svg", "canvas",
];

/// Elements that break a line when rendered: their boundaries become spaces so that
/// `<p>a</p><p>b</p>` reads "a b", while inline tags inside a Chinese sentence add nothing.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Meta keys (from `property`, `name` or `itemprop`, lower-cased) carrying the publication time,
/// best first. "pubdate"/"publishdate" are what many Chinese CMSs emit.
const PUBLISHED_KEYS: &[&str] = &[
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish_date",
    "publish-date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.created",
    "date",
];

const AUTHOR_KEYS: &[&str] = &["author", "dc.creator", "article:author"];

pub(crate) fn parse_feed(text: &str, base: &Url, max_chars: usize) -> Result<Vec<FetchedItem>, FetchError> {
    let xml = rewrite_xml_declaration(text);
    let feed = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        .sanitize_content(false)
        .build()
        .parse(xml.as_bytes())
        .map_err(|e| FetchError::Parse(e.to_string()))?;
    Ok(feed
        .entries
        .into_iter()
        .filter_map(|entry| entry_item(entry, base, max_chars))
        .collect())
}

fn entry_item(entry: feed_rs::model::Entry, base: &Url, max_chars: usize) -> Option<FetchedItem> {
    let title = entry
        .title
        .as_ref()
        .map(|t| to_plain_text(&t.content, is_markup(t.content_type.as_ref())))
        .unwrap_or_default();
    let content = entry.content.as_ref().and_then(|c| {
        let body = c.body.as_deref()?;
        Some(to_plain_text(body, is_markup(c.content_type.as_ref())))
    });
    let summary = entry
        .summary
        .as_ref()
        .map(|s| to_plain_text(&s.content, is_markup(s.content_type.as_ref())));
    // The full content when there is one; the summary is usually a cut of it.
    let body = content.filter(|c| !c.is_empty()).or(summary).unwrap_or_default();

    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r.eq_ignore_ascii_case("alternate")))
        .or(entry.links.first())
        .and_then(|l| absolute_http_url(base, &l.href));

    if title.is_empty() && body.is_empty() && link.is_none() {
        return None;
    }
    let text = match (title.is_empty(), body.is_empty()) {
        (_, true) => title.clone(),
        (true, false) => body,
        (false, false) => format!("{title}\n{body}"),
    };
    let author = entry
        .authors
        .iter()
        .filter_map(|p| p.name.as_deref().map(str::trim).filter(|n| !n.is_empty()))
        .collect::<Vec<_>>()
        .join(", ");
    Some(FetchedItem {
        url: link,
        title: truncate_chars(title, max_chars),
        text: truncate_chars(text, max_chars),
        author,
        published: entry.published.or(entry.updated),
    })
}

fn is_markup(media_type: &str) -> bool {
    media_type.contains("html") || media_type.contains("xml")
}

/// Plain text as the reader would see it. Text declared plain is still stripped when it
/// contains tags, since many feeds put HTML into RSS titles and Atom `type="text"` elements.
fn to_plain_text(content: &str, markup: bool) -> String {
    if markup || looks_like_html(content) {
        let fragment = Html::parse_fragment(content);
        visible_text(fragment.root_element())
    } else {
        collapse_whitespace(content)
    }
}

fn looks_like_html(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

/// Resolves `href` against the feed or page URL and keeps it only if it is http(s): the poller
/// shows these links to staff and may fetch them later, so `javascript:` and the like are dropped.
fn absolute_http_url(base: &Url, href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = base.join(href).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

pub(crate) fn parse_page(text: &str, url: &Url, max_chars: usize) -> FetchedItem {
    let doc = Html::parse_document(text);

    let metas: Vec<(String, &str)> = doc
        .select(&selector("meta"))
        .filter_map(|m| {
            let el = m.value();
            let key = el.attr("property").or(el.attr("name")).or(el.attr("itemprop"))?;
            let content = el.attr("content")?.trim();
            (!content.is_empty()).then(|| (key.trim().to_ascii_lowercase(), content))
        })
        .collect();
    let meta = |key: &str| metas.iter().find(|(k, _)| k == key).map(|(_, v)| *v);

    let title = doc
        .select(&selector("title"))
        .map(visible_text_of_title)
        .find(|t| !t.is_empty())
        .or_else(|| meta("og:title").map(collapse_whitespace))
        .or_else(|| doc.select(&selector("h1")).map(visible_text).find(|t| !t.is_empty()))
        .unwrap_or_default();

    let published = PUBLISHED_KEYS
        .iter()
        .filter_map(|key| meta(key))
        .chain(
            doc.select(&selector("time[itemprop=datePublished], time[pubdate]"))
                .filter_map(|t| t.value().attr("datetime")),
        )
        .find_map(parse_datetime);

    let author = AUTHOR_KEYS
        .iter()
        .find_map(|key| meta(key))
        .map(collapse_whitespace)
        .unwrap_or_default();

    let body = doc.select(&selector("body")).next().unwrap_or(doc.root_element());
    FetchedItem {
        url: matches!(url.scheme(), "http" | "https").then(|| url.to_string()),
        title: truncate_chars(title, max_chars),
        text: truncate_chars(visible_text(body), max_chars),
        author,
        published,
    }
}

fn selector(css: &str) -> Selector {
    // Only called with the literal selectors above, which the tests exercise.
    Selector::parse(css).expect("static selector is valid")
}

/// `<title>` sits in `<head>`, which [`visible_text`] skips, so its text is read directly.
fn visible_text_of_title(title: ElementRef<'_>) -> String {
    collapse_whitespace(&title.text().collect::<String>())
}

/// The text a reader would see under `root`, whitespace collapsed. Iterative, because hostile
/// pages can nest elements deeply enough to overflow a recursive walk.
fn visible_text(root: ElementRef<'_>) -> String {
    enum Step<N> {
        Visit(N),
        Break,
    }
    let mut out = String::new();
    let mut stack = vec![Step::Visit(*root)];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Break => {
                out.push(' ');
                continue;
            }
            Step::Visit(node) => node,
        };
        match node.value() {
            Node::Text(text) => out.push_str(text),
            Node::Element(el) => {
                let name = el.name();
                if INVISIBLE.contains(&name) {
                    continue;
                }
                if BLOCKS.contains(&name) {
                    out.push(' ');
                    stack.push(Step::Break);
                }
                stack.extend(node.children().rev().map(Step::Visit));
            }
            Node::Document | Node::Fragment => stack.extend(node.children().rev().map(Step::Visit)),
            _ => {}
        }
    }
    collapse_whitespace(&out)
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate_chars(mut s: String, max_chars: usize) -> String {
    if let Some((cut, _)) = s.char_indices().nth(max_chars) {
        s.truncate(cut);
    }
    s
}

/// Publication times as pages write them. Times without a zone are taken as UTC: the page
/// gives no better information, and this matches how feed-rs treats zone-less feed dates.
fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(dt.with_timezone(&Utc));
    }
    const ZONED: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M%z",
    ];
    for fmt in ZONED {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    const NAIVE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%Y年%m月%d日 %H:%M:%S",
        "%Y年%m月%d日 %H:%M",
        "%Y年%m月%d日%H:%M",
    ];
    for fmt in NAIVE {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc());
        }
    }
    for fmt in ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn base() -> Url {
        Url::parse("https://news.example.com/feeds/rss.xml").unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn datetime_formats() {
        let cases = [
            ("2024-03-05T10:20:30Z", utc(2024, 3, 5, 10, 20, 30)),
            ("2024-03-05T18:20:30+08:00", utc(2024, 3, 5, 10, 20, 30)),
            ("2024-03-05T18:20:30+0800", utc(2024, 3, 5, 10, 20, 30)),
            ("Tue, 05 Mar 2024 18:20:30 +0800", utc(2024, 3, 5, 10, 20, 30)),
            ("2024-03-05 10:20:30", utc(2024, 3, 5, 10, 20, 30)),
            ("2024-03-05 10:20", utc(2024, 3, 5, 10, 20, 0)),
            ("2024/03/05 10:20", utc(2024, 3, 5, 10, 20, 0)),
            ("2024年03月05日 10:20", utc(2024, 3, 5, 10, 20, 0)),
            ("2024年3月5日", utc(2024, 3, 5, 0, 0, 0)),
            (" 2024-03-05 ", utc(2024, 3, 5, 0, 0, 0)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_datetime(s), Some(want), "{s}");
        }
        assert_eq!(parse_datetime(""), None);
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn plain_text_stripping() {
        assert_eq!(
            to_plain_text("<p>Good <b>care</b></p><p>at  the\n ward</p>", true),
            "Good care at the ward"
        );
        assert_eq!(to_plain_text("<p>医院<b>服务</b>好</p>", true), "医院服务好");
        assert_eq!(
            to_plain_text("<div>x<script>var hidden=1</script><style>.a{}</style>y</div>", true),
            "xy"
        );
        assert_eq!(to_plain_text("a < b &amp; c", false), "a < b &amp; c");
        assert_eq!(to_plain_text("Title with <em>tags</em>", false), "Title with tags");
        assert_eq!(to_plain_text("x &amp; y", true), "x & y");
    }

    #[test]
    fn truncation_counts_chars() {
        assert_eq!(truncate_chars("医院服务".to_owned(), 2), "医院");
        assert_eq!(truncate_chars("abc".to_owned(), 3), "abc");
        assert_eq!(truncate_chars("abc".to_owned(), 0), "");
    }

    #[test]
    fn links_resolved_and_filtered() {
        let base = base();
        assert_eq!(
            absolute_http_url(&base, "/a/1.html").as_deref(),
            Some("https://news.example.com/a/1.html")
        );
        assert_eq!(
            absolute_http_url(&base, "2.html").as_deref(),
            Some("https://news.example.com/feeds/2.html")
        );
        assert_eq!(
            absolute_http_url(&base, "http://other.example/x").as_deref(),
            Some("http://other.example/x")
        );
        assert_eq!(absolute_http_url(&base, "javascript:alert(1)"), None);
        assert_eq!(absolute_http_url(&base, "  "), None);
    }

    #[test]
    fn rss_entries() {
        let rss = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>News</title><link>https://news.example.com/</link>
<item><title>First &amp; best</title><link>/news/1.html</link>
  <description>&lt;p&gt;Short &lt;b&gt;summary&lt;/b&gt;&lt;/p&gt;</description>
  <content:encoded><![CDATA[<p>Full <i>content</i></p><script>tracker()</script>]]></content:encoded>
  <dc:creator>Li Hua</dc:creator>
  <pubDate>Tue, 05 Mar 2024 18:20:30 +0800</pubDate></item>
<item><description>No title, only text</description></item>
<item><title>   </title></item>
</channel></rss>"#;
        let items = parse_feed(rss, &base(), 1000).unwrap();
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].title, "First & best");
        assert_eq!(items[0].text, "First & best\nFull content");
        assert_eq!(items[0].url.as_deref(), Some("https://news.example.com/news/1.html"));
        assert_eq!(items[0].author, "Li Hua");
        assert_eq!(items[0].published, Some(utc(2024, 3, 5, 10, 20, 30)));
        assert_eq!(items[1].title, "");
        assert_eq!(items[1].text, "No title, only text");
        assert_eq!(items[1].url, None);
    }

    #[test]
    fn feed_text_capped() {
        let rss = format!(
            r#"<rss version="2.0"><channel><item><title>{}</title><description>{}</description></item></channel></rss>"#,
            "标".repeat(50),
            "文".repeat(500)
        );
        let items = parse_feed(&rss, &base(), 100).unwrap();
        assert_eq!(items[0].title.chars().count(), 50);
        assert_eq!(items[0].text.chars().count(), 100);
    }

    #[test]
    fn not_a_feed_is_a_parse_error() {
        for doc in [
            "<html><body>hi</body></html>",
            "<rss version=\"2.0\"><channel><item><title>x</item>",
            "hello",
        ] {
            assert!(
                matches!(parse_feed(doc, &base(), 100), Err(FetchError::Parse(_))),
                "{doc}"
            );
        }
    }

    #[test]
    fn page_fields() {
        let html = r#"<!doctype html><html><head>
<title> 某某医院  回应投诉 </title>
<meta property="article:published_time" content="2024-03-05T18:20:30+08:00">
<meta name="Author" content="记者 王五">
<style>body { color: red }</style>
<script>var hospital = "secret";</script>
</head><body>
<h1>回应</h1><p>医院表示<b>重视</b>。</p>
<noscript>enable js noscript-text</noscript>
<template><p>template-text</p></template>
<script type="application/ld+json">{"script-text": 1}</script>
<div>第二段</div>
</body></html>"#;
        let url = Url::parse("https://news.example.com/a/1.html").unwrap();
        let item = parse_page(html, &url, 1000);
        assert_eq!(item.title, "某某医院 回应投诉");
        assert_eq!(item.text, "回应 医院表示重视。 第二段");
        assert_eq!(item.author, "记者 王五");
        assert_eq!(item.published, Some(utc(2024, 3, 5, 10, 20, 30)));
        assert_eq!(item.url.as_deref(), Some("https://news.example.com/a/1.html"));
    }

    #[test]
    fn page_fallbacks() {
        let url = Url::parse("https://news.example.com/").unwrap();
        let item = parse_page(
            r#"<meta name="pubdate" content="2024-03-05 10:20"><meta property="og:title" content="OG title"><p>text</p>"#,
            &url,
            1000,
        );
        assert_eq!(item.title, "OG title");
        assert_eq!(item.published, Some(utc(2024, 3, 5, 10, 20, 0)));
        assert_eq!(item.text, "text");

        let item = parse_page(
            r#"<h1>Heading</h1><time itemprop="datePublished" datetime="2024-03-05">5 March</time>"#,
            &url,
            1000,
        );
        assert_eq!(item.title, "Heading");
        assert_eq!(item.published, Some(utc(2024, 3, 5, 0, 0, 0)));
        assert_eq!(item.author, "");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let html = format!("{}deep{}", "<div>".repeat(20_000), "</div>".repeat(20_000));
        let item = parse_page(&html, &base(), 100);
        assert_eq!(item.text, "deep");
    }
}
