//! Bytes to text. Chinese sites still serve GBK, GB2312, GB18030 and Big5, often with the
//! charset only in the XML declaration or a `<meta>` tag, and sometimes with a header that
//! contradicts the bytes; mis-decoding silently turns a complaint into mojibake that no keyword
//! matches, so the detection order matters.

use std::borrow::Cow;

use encoding_rs::{Encoding, GB18030, REPLACEMENT, UTF_8};

use super::{FetchError, SourceKind};

/// How far into the body the XML declaration and `<meta>` tags are looked for. Larger than the
/// HTML spec's 1024-byte prescan because Chinese CMS templates often put long comments or
/// scripts before the charset `<meta>`.
const SNIFF_LEN: usize = 4096;

#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    pub encoding: &'static Encoding,
}

/// Detection order: byte-order mark, Content-Type charset, XML declaration, `<meta>` (pages only:
/// in a feed, a `<meta>` would belong to an entry's embedded HTML), else UTF-8.
///
/// The BOM comes first, unlike the order one might expect, because it is the only signal that
/// is part of the bytes themselves (and browsers agree). When the chosen encoding is UTF-8 but
/// the bytes are not valid UTF-8, the other declared encodings and then GB18030 are tried, and
/// the first that decodes without errors wins: a UTF-8 header on a GBK page is a common server
/// misconfiguration here, and a clean GB18030 decode of invalid UTF-8 is a strong signal.
pub(crate) fn decode(body: &[u8], content_type: Option<&str>, kind: SourceKind) -> Result<Decoded, FetchError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        let (text, _) = encoding.decode_without_bom_handling(&body[bom_len..]);
        return Ok(Decoded {
            text: text.into_owned(),
            encoding,
        });
    }

    let head = &body[..body.len().min(SNIFF_LEN)];
    let mut declared: Vec<(String, &'static Encoding)> = Vec::new();
    let mut push = |label: &str, in_document: bool| {
        if let Some(encoding) = Encoding::for_label(label.trim().as_bytes()) {
            // A document that declares UTF-16 in ASCII-readable text cannot be UTF-16.
            let encoding = if in_document && !encoding.is_ascii_compatible() {
                UTF_8
            } else {
                encoding
            };
            declared.push((label.to_owned(), encoding));
        } else {
            tracing::debug!(label, "unknown charset label ignored");
        }
    };
    if let Some(label) = content_type.and_then(charset_param) {
        push(label, false);
    }
    if let Some(label) = xml_declared_encoding(head) {
        push(label, true);
    }
    if kind == SourceKind::Page
        && let Some(label) = meta_charset(head)
    {
        push(&label, true);
    }

    let (label, primary) = declared.first().map_or(("", UTF_8), |(l, e)| (l.as_str(), *e));
    if primary == REPLACEMENT {
        return Err(FetchError::Decode(format!("unsupported character set \"{label}\"")));
    }
    let (text, had_errors) = primary.decode_without_bom_handling(body);
    if had_errors && primary == UTF_8 {
        let alternatives = declared.iter().skip(1).map(|(_, e)| *e).chain([GB18030]);
        for alt in alternatives {
            if alt == UTF_8 || alt == REPLACEMENT || !alt.is_ascii_compatible() {
                continue;
            }
            if let Some(alt_text) = alt.decode_without_bom_handling_and_without_replacement(body) {
                tracing::debug!(
                    declared = label,
                    used = alt.name(),
                    "invalid UTF-8, decoded with fallback"
                );
                return Ok(Decoded {
                    text: alt_text.into_owned(),
                    encoding: alt,
                });
            }
        }
    }
    if had_errors {
        tracing::debug!(
            encoding = primary.name(),
            "body has bytes invalid in its encoding; replaced"
        );
    }
    Ok(Decoded {
        text: text.into_owned(),
        encoding: primary,
    })
}

/// The `charset` parameter of a Content-Type value, unquoted.
fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
        (!value.is_empty()).then_some(value)
    })
}

/// The span of the `<?xml ...?>` declaration at the start of the document, if any.
fn xml_declaration(doc: &[u8]) -> Option<(usize, usize)> {
    let start = doc.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &doc[start..];
    // "<?xml-stylesheet" is a processing instruction, not the declaration.
    if !rest.starts_with(b"<?xml") || !matches!(rest.get(5), Some(b' ' | b'\t' | b'\r' | b'\n' | b'?')) {
        return None;
    }
    let end = find(rest, b"?>")?;
    Some((start, start + end + 2))
}

/// The byte range of the `encoding` value inside a declaration.
fn encoding_value_span(decl: &[u8]) -> Option<(usize, usize)> {
    let at = find(decl, b"encoding")? + "encoding".len();
    let mut i = at;
    while decl.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if decl.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    while decl.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let quote = *decl.get(i).filter(|q| **q == b'"' || **q == b'\'')?;
    let value_start = i + 1;
    let len = decl[value_start..].iter().position(|b| *b == quote)?;
    Some((value_start, value_start + len))
}

fn xml_declared_encoding(head: &[u8]) -> Option<&str> {
    let (start, end) = xml_declaration(head)?;
    let decl = &head[start..end];
    let (from, to) = encoding_value_span(decl)?;
    std::str::from_utf8(&decl[from..to]).ok()
}

/// The charset named by a `<meta charset>` or `<meta http-equiv content="...; charset=...">` tag.
fn meta_charset(head: &[u8]) -> Option<String> {
    let lower = head.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(found) = find(&lower[pos..], b"<meta") {
        let tag_start = pos + found + "<meta".len();
        let tag_end = find(&lower[tag_start..], b">").map_or(lower.len(), |e| tag_start + e);
        let tag = &lower[tag_start..tag_end];
        if let Some(label) = charset_in_tag(tag) {
            return Some(label);
        }
        pos = tag_end;
    }
    None
}

fn charset_in_tag(tag: &[u8]) -> Option<String> {
    let mut i = find(tag, b"charset")? + "charset".len();
    while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if tag.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    while tag
        .get(i)
        .is_some_and(|b| b.is_ascii_whitespace() || *b == b'"' || *b == b'\'')
    {
        i += 1;
    }
    let len = tag[i..]
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
        .unwrap_or(tag.len() - i);
    (len > 0).then(|| String::from_utf8_lossy(&tag[i..i + len]).into_owned())
}

/// After transcoding a feed to UTF-8 its declaration still names the old encoding, and the XML
/// parser honours the declaration, so it would decode our UTF-8 as GBK a second time.
pub(crate) fn rewrite_xml_declaration(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some((start, end)) = xml_declaration(bytes) else {
        return Cow::Borrowed(text);
    };
    let Some((from, to)) = encoding_value_span(&bytes[start..end]) else {
        return Cow::Borrowed(text);
    };
    let (from, to) = (start + from, start + to);
    if text[from..to].eq_ignore_ascii_case("utf-8") {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}UTF-8{}", &text[..from], &text[to..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{BIG5, GBK, UTF_16LE, WINDOWS_1252};

    fn gbk(s: &str) -> Vec<u8> {
        GBK.encode(s).0.into_owned()
    }

    #[test]
    fn charset_param_parsing() {
        assert_eq!(charset_param("text/html; charset=GBK"), Some("GBK"));
        assert_eq!(charset_param("text/xml;Charset=\"gb2312\""), Some("gb2312"));
        assert_eq!(charset_param("text/html"), None);
        assert_eq!(charset_param("text/html; charset="), None);
    }

    #[test]
    fn header_charset_used() {
        let body = gbk("<p>医院</p>");
        let d = decode(&body, Some("text/html; charset=gb2312"), SourceKind::Page).unwrap();
        assert_eq!(d.encoding, GBK);
        assert_eq!(d.text, "<p>医院</p>");
    }

    #[test]
    fn header_beats_document_declaration() {
        let body = BIG5
            .encode("<?xml version=\"1.0\" encoding=\"GBK\"?><r>醫院</r>")
            .0
            .into_owned();
        let d = decode(&body, Some("application/xml; charset=big5"), SourceKind::Feed).unwrap();
        assert_eq!(d.encoding, BIG5);
        assert!(d.text.contains("醫院"));
    }

    #[test]
    fn xml_declaration_used() {
        let body = gbk("<?xml version='1.0' encoding = 'GBK' ?><rss>好评</rss>");
        let d = decode(&body, Some("application/rss+xml"), SourceKind::Feed).unwrap();
        assert_eq!(d.encoding, GBK);
        assert!(d.text.contains("好评"));
    }

    #[test]
    fn meta_charset_and_http_equiv() {
        let body = gbk("<html><head><meta charset=\"gbk\"><title>投诉</title>");
        let d = decode(&body, None, SourceKind::Page).unwrap();
        assert_eq!(d.encoding, GBK);
        assert!(d.text.contains("投诉"));

        let body = gbk(
            "<html><head><META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=gb2312\"><title>投诉</title>",
        );
        let d = decode(&body, Some("text/html"), SourceKind::Page).unwrap();
        assert_eq!(d.encoding, GBK);
        assert!(d.text.contains("投诉"));
    }

    #[test]
    fn meta_ignored_in_feeds() {
        let body = b"<rss><description><meta charset=\"windows-1252\"></description></rss>";
        let d = decode(body, None, SourceKind::Feed).unwrap();
        assert_eq!(d.encoding, UTF_8);
        let d = decode(body, None, SourceKind::Page).unwrap();
        assert_eq!(d.encoding, WINDOWS_1252);
    }

    #[test]
    fn bom_wins() {
        let mut body = vec![0xEF, 0xBB, 0xBF];
        body.extend_from_slice("<p>医院</p>".as_bytes());
        let d = decode(&body, Some("text/html; charset=gbk"), SourceKind::Page).unwrap();
        assert_eq!(d.encoding, UTF_8);
        assert_eq!(d.text, "<p>医院</p>");

        let mut body = vec![0xFF, 0xFE];
        for unit in "<p>医院</p>".encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        let d = decode(&body, None, SourceKind::Page).unwrap();
        assert_eq!(d.encoding, UTF_16LE);
        assert_eq!(d.text, "<p>医院</p>");
    }

    #[test]
    fn undeclared_defaults_to_utf8_then_gb18030() {
        let d = decode("<p>医院</p>".as_bytes(), None, SourceKind::Page).unwrap();
        assert_eq!(d.encoding, UTF_8);

        let body = gbk("<p>某某医院的服务很好</p>");
        let d = decode(&body, Some("text/html"), SourceKind::Page).unwrap();
        assert_eq!(d.encoding, GB18030);
        assert_eq!(d.text, "<p>某某医院的服务很好</p>");
    }

    #[test]
    fn wrong_utf8_header_falls_back_to_document_declaration() {
        let body = BIG5.encode("<html><meta charset=big5><p>醫院</p>").0.into_owned();
        let d = decode(&body, Some("text/html; charset=utf-8"), SourceKind::Page).unwrap();
        assert_eq!(d.encoding, BIG5);
        assert!(d.text.contains("醫院"));
    }

    #[test]
    fn garbage_stays_utf8_with_replacement() {
        let body = [b'a', 0xFF, 0xFF, b'b'];
        let d = decode(&body, None, SourceKind::Page).unwrap();
        assert_eq!(d.encoding, UTF_8);
        assert_eq!(d.text, "a\u{FFFD}\u{FFFD}b");
    }

    #[test]
    fn unknown_label_ignored_and_unsupported_rejected() {
        let d = decode(b"<p>x</p>", Some("text/html; charset=no-such-thing"), SourceKind::Page).unwrap();
        assert_eq!(d.encoding, UTF_8);
        let err = decode(b"<p>x</p>", Some("text/html; charset=hz-gb-2312"), SourceKind::Page).unwrap_err();
        assert!(
            matches!(err, FetchError::Decode(ref m) if m.contains("hz-gb-2312")),
            "{err}"
        );
    }

    #[test]
    fn declared_utf16_in_document_means_utf8() {
        let d = decode(
            b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><r/>",
            None,
            SourceKind::Feed,
        )
        .unwrap();
        assert_eq!(d.encoding, UTF_8);
    }

    #[test]
    fn declaration_rewritten() {
        assert_eq!(
            rewrite_xml_declaration("<?xml version=\"1.0\" encoding=\"GBK\"?>\n<rss/>"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss/>"
        );
        assert_eq!(
            rewrite_xml_declaration("  <?xml version='1.0' encoding = 'gb2312' standalone='yes'?><rss/>"),
            "  <?xml version='1.0' encoding = 'UTF-8' standalone='yes'?><rss/>"
        );
        let unchanged = [
            "<?xml version=\"1.0\"?><rss/>",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss/>",
            "<?xml-stylesheet href=\"a.xsl\" encoding=\"GBK\"?><rss/>",
            "<rss encoding=\"GBK\"/>",
        ];
        for doc in unchanged {
            assert!(matches!(rewrite_xml_declaration(doc), Cow::Borrowed(_)), "{doc}");
        }
    }
}
