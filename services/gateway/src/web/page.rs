//! What every console page is built from: the signed-in staff member ([`Console`], an
//! extractor that sends everyone else to the sign-in page), the language, clients of the
//! services carrying the member's identity, CSRF-checked forms, the layout and error pages.
//!
//! Texts are written in both languages where they are used, `c.tr("患者", "Patients")`, so no
//! page can miss a translation.

use crate::api::error::HttpError;
use crate::auth::{self, SignedIn};
use crate::state::Gateway;
use axum::extract::FromRequestParts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::HeaderMap;
use http::request::Parts;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const LANG_COOKIE: &str = "hcrm_lang";

/// The console's two languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The `hcrm_lang` cookie, else the browser's first choice between Chinese and English,
    /// else Chinese.
    pub fn of(headers: &HeaderMap) -> Lang {
        match auth::cookie(headers, LANG_COOKIE) {
            Some("en") => return Lang::En,
            Some("zh") => return Lang::Zh,
            _ => {}
        }
        let accept = headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for part in accept.split(',') {
            let tag = part.trim().to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Zh
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn tr(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// One of two texts that come from data (a taxonomy, a questionnaire), falling back to the
    /// other language when this one is empty.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh if !zh.is_empty() => zh,
            Lang::En if !en.is_empty() => en,
            _ if zh.is_empty() => en,
            _ => zh,
        }
    }
}

/// A client of a service, carrying the signed-in member's identity.
pub type Authed = InterceptedService<Channel, Forward>;

/// What every console call to a service carries: the member's token and the gateway's deadline
/// (`gateway.call_timeout_secs`, sent as `grpc-timeout`).
#[derive(Clone)]
pub struct Forward {
    authorization: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    timeout: std::time::Duration,
}

impl tonic::service::Interceptor for Forward {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request.set_timeout(self.timeout);
        Ok(request)
    }
}

/// A console request by a signed-in staff member.
pub struct Console {
    pub gw: Arc<Gateway>,
    pub who: SignedIn,
    pub lang: Lang,
    /// The path and query of this page (where the language switch and sign-in come back to).
    pub here: String,
    forward: Forward,
}

impl FromRequestParts<Arc<Gateway>> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(&parts.headers);
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/console".into());
        // After signing in again, a form's POST-only address would answer 405: go back to the
        // page the form was on instead.
        let next = if parts.method == http::Method::GET {
            here.clone()
        } else {
            referer_path(&parts.headers).unwrap_or_else(|| "/console".into())
        };
        let who = match auth::signed_in(gw, &parts.headers).await {
            Ok(Some(who)) => who,
            Ok(None) => {
                let next = url_encode(&safe_return(&next));
                return Err(Redirect::to(&format!("/login?next={next}")).into_response());
            }
            Err(err) => return Err(bare_error(lang, HttpError::from(err))),
        };
        let token = gw
            .mint(&who.account.principal())
            .map_err(|e| bare_error(lang, e.into()))?;
        let authorization = format!("Bearer {token}").parse().map_err(|_| {
            bare_error(
                lang,
                HttpError::new(tonic::Code::Internal, "the token is not a header value"),
            )
        })?;
        let forward = Forward {
            authorization,
            timeout: gw.call_timeout(),
        };
        Ok(Console {
            gw: gw.clone(),
            who,
            lang,
            here,
            forward,
        })
    }
}

/// The path of a same-site `Referer`, if any.
fn referer_path(headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(http::header::REFERER)?.to_str().ok()?;
    let uri: http::Uri = referer.parse().ok()?;
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    (uri.authority()?.as_str() == host).then(|| uri.path_and_query().map(|p| p.as_str().to_string()))?
}

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A local path to return to after sign-in or a language switch; anything else (another site,
/// `//host`, a scheme, a control or space character that a browser would strip into `//host`)
/// becomes the dashboard.
pub fn safe_return(path: &str) -> String {
    let bytes = path.as_bytes();
    let ok = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/') | Some(b'\\'))
        && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\')
        && !path.contains("://");
    if ok { path.to_string() } else { "/console".into() }
}

/// A protobuf date as `YYYY-MM-DD`; empty when unset.
pub fn date_text(d: &Option<hcrm_proto::types::Date>) -> String {
    d.as_ref()
        .filter(|d| d.year > 0)
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .unwrap_or_default()
}

/// A `YYYY-MM-DD` form field; empty is `None`, anything else names `field`.
pub fn parse_day(field: &str, text: &str) -> Result<Option<chrono::NaiveDate>, HttpError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| HttpError::invalid(field, "must be a date YYYY-MM-DD"))
}

/// A calendar day as the protobuf date the services take.
pub fn proto_date(d: chrono::NaiveDate) -> hcrm_proto::types::Date {
    use chrono::Datelike;
    hcrm_proto::types::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// A text the services keep in both languages (questionnaires), in the page's language, or the
/// other one when it is empty.
pub fn localized(lang: Lang, text: &Option<hcrm_proto::feedback::LocalizedText>) -> String {
    text.as_ref()
        .map(|t| lang.pick(&t.zh, &t.en).to_string())
        .unwrap_or_default()
}

/// Whether a URL from data may be a link: http(s) with a host, nothing else (`javascript:` …).
pub fn is_web_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.and_then(|r| r.chars().next())
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '[')
}

impl Console {
    pub fn tr(&self, zh: &'static str, en: &'static str) -> &'static str {
        self.lang.tr(zh, en)
    }

    pub fn pick<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(zh, en)
    }

    pub fn is_admin(&self) -> bool {
        self.who.account.is_admin()
    }

    /// Whether the member holds `role` (for showing forms; the services still decide).
    pub fn has_role(&self, role: hcrm_kit::auth::Role) -> bool {
        self.who.account.roles.contains(&role)
    }

    pub fn csrf(&self) -> &str {
        &self.who.session.csrf
    }

    /// A channel to one of the services with the member's token.
    pub fn authed(&self, channel: &Channel) -> Authed {
        InterceptedService::new(channel.clone(), self.forward.clone())
    }

    /// The hidden CSRF field every console form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="_csrf" value=(self.csrf()); }
    }

    /// Reads a console form after checking its CSRF token and origin.
    pub fn form<T: DeserializeOwned>(&self, headers: &HeaderMap, body: &[u8]) -> Result<T, HttpError> {
        auth::check_origin(&self.gw, headers)?;
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| HttpError::invalid("form", e.to_string()))?;
        let token = fields.iter().find(|(k, _)| k == "_csrf").map(|(_, v)| v.as_str());
        auth::check_csrf(&self.who, token)?;
        serde_urlencoded::from_bytes(body).map_err(|e| HttpError::invalid("form", e.to_string()))
    }

    /// A whole console page.
    pub fn page(&self, title: &str, body: Markup) -> Response {
        Html(self.layout(title, body).into_string()).into_response()
    }

    fn layout(&self, title: &str, body: Markup) -> Markup {
        let nav: [(&str, &str, &str); 9] = [
            ("/console", "工作台", "Dashboard"),
            ("/console/patients", "患者", "Patients"),
            ("/console/guide", "导医台", "Guide desk"),
            ("/console/followups", "随访", "Follow-ups"),
            ("/console/cases", "投诉与建议", "Cases"),
            ("/console/surveys", "满意度调查", "Surveys"),
            ("/console/opinion", "舆情", "Opinion"),
            ("/console/reports", "报表", "Reports"),
            ("/console/admin", "系统管理", "Admin"),
        ];
        let other = match self.lang {
            Lang::Zh => ("en", "English"),
            Lang::En => ("zh", "中文"),
        };
        let path = self.here.split('?').next().unwrap_or("");
        html! {
            (DOCTYPE)
            html lang=(self.lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · HCRM" }
                    link rel="stylesheet" href="/static/console.css";
                }
                body {
                    header.top {
                        a.brand href="/console" { "HCRM " span { (self.tr("患者服务中心", "Patient service centre")) } }
                        nav {
                            @for (href, zh, en) in nav {
                                @let current = path == href || (href != "/console" && path.starts_with(href));
                                a href=(href) class=[current.then_some("current")] { (self.tr(zh, en)) }
                            }
                        }
                        div.me {
                            a.who href="/console/account" { (self.who.account.display_name) }
                            a.lang href={ "/lang/" (other.0) "?next=" (url_encode(&self.here)) } data-lang=(other.0) { (other.1) }
                            form method="post" action="/logout" {
                                (self.csrf_field())
                                button.link type="submit" { (self.tr("退出", "Sign out")) }
                            }
                        }
                    }
                    main {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
    }

    /// An error as a console page with the right status: what went wrong and the fields named.
    pub fn error(&self, err: impl Into<HttpError>) -> Response {
        let err = err.into();
        let status = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.error_box(&err);
        let mut response = self.page(self.tr("出错了", "Something went wrong"), body);
        *response.status_mut() = status;
        response
    }

    /// The box that explains an error above a form.
    pub fn error_box(&self, err: &HttpError) -> Markup {
        html! {
            div.error role="alert" data-code=(crate::api::error::code_str(err.code)) {
                p { strong { (explain(self.lang, err)) } }
                @if !err.field_violations.is_empty() {
                    ul {
                        @for v in &err.field_violations {
                            li { code { (v.field) } ": " (v.description) }
                        }
                    }
                } @else {
                    p { (err.message) }
                }
                @if !err.request_id.is_empty() {
                    p.small { (self.tr("请求编号", "Request id")) ": " code { (err.request_id) } }
                }
            }
        }
    }
}

/// A one-line explanation of an error code for staff.
pub fn explain(lang: Lang, err: &HttpError) -> &'static str {
    use tonic::Code::*;
    match err.code {
        InvalidArgument | OutOfRange => lang.tr("填写的内容有误，请检查以下字段。", "Some fields need correcting."),
        NotFound => lang.tr("没有找到该记录，或您无权查看。", "Not found, or not yours to see."),
        AlreadyExists => lang.tr("该记录已存在。", "This record already exists."),
        FailedPrecondition => lang.tr(
            "当前状态下不能执行此操作。",
            "This cannot be done in the current state.",
        ),
        Aborted => lang.tr(
            "记录已被他人修改，请刷新后重试。",
            "Someone changed this meanwhile; reload and try again.",
        ),
        PermissionDenied => lang.tr("您没有执行此操作的权限。", "You are not allowed to do this."),
        Unauthenticated => lang.tr("请重新登录。", "Please sign in again."),
        ResourceExhausted => lang.tr("请求过于频繁，请稍后再试。", "Too many requests; try again shortly."),
        Unavailable | DeadlineExceeded => lang.tr(
            "服务暂时不可用，请稍后再试。",
            "A service is unavailable; try again shortly.",
        ),
        _ => lang.tr(
            "系统出错，请将请求编号告知管理员。",
            "An internal error; quote the request id to an administrator.",
        ),
    }
}

/// An error page for a request without a console context (no session, or before one exists).
pub fn bare_error(lang: Lang, err: HttpError) -> Response {
    let status = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "HCRM" }
                link rel="stylesheet" href="/static/console.css";
            }
            body.plain {
                main {
                    div.error role="alert" data-code=(crate::api::error::code_str(err.code)) {
                        p { strong { (explain(lang, &err)) } }
                        p { (err.message) }
                    }
                }
            }
        }
    };
    (status, Html(page.into_string())).into_response()
}

/// Formats microseconds since the epoch as local time, `offset_minutes` east of UTC.
pub fn local_time(micros: i64, offset_minutes: i32) -> String {
    chrono::DateTime::from_timestamp_micros(micros + i64::from(offset_minutes) * 60_000_000)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

impl Console {
    /// A time in the hospital's zone.
    pub fn time(&self, micros: i64) -> String {
        local_time(micros, self.gw.cfg.utc_offset_minutes)
    }

    /// A protobuf timestamp in the hospital's zone; empty when absent.
    pub fn ts(&self, t: &Option<prost_types::Timestamp>) -> String {
        t.as_ref()
            .and_then(hcrm_kit::time::from_timestamp)
            .map(|m| self.time(m))
            .unwrap_or_default()
    }
}

/// Raw, already-escaped markup (for inline SVG built by `chart`).
pub fn raw(text: String) -> Markup {
    PreEscaped(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_return("/console/patients?q=1"), "/console/patients?q=1");
        for bad in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_return(bad), "/console", "{bad}");
        }
        assert_eq!(url_encode("/a b?c=张"), "%2Fa%20b%3Fc%3D%E5%BC%A0");
    }

    #[test]
    fn the_language_follows_the_cookie_then_the_browser() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::of(&headers), Lang::Zh);
        headers.insert(http::header::ACCEPT_LANGUAGE, "en-GB,en;q=0.9".parse().unwrap());
        assert_eq!(Lang::of(&headers), Lang::En);
        headers.insert(http::header::COOKIE, "hcrm_lang=zh".parse().unwrap());
        assert_eq!(Lang::of(&headers), Lang::Zh);
        assert_eq!(local_time(0, 480), "1970-01-01 08:00");
    }
}
