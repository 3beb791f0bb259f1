use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, ACCEPT_LANGUAGE, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};
use url::Url;

use super::guard::{self, AllowList, GuardResolver};
use super::{FetchConfig, FetchError, Fetched, HostLimiter, SourceKind, Validators, decode, parse};

/// The guarded HTTP client plus the per-host limiter. Cheap to clone (clones share the
/// connection pool and the limiter), so the poller can hand one to every task.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    cfg: Arc<FetchConfig>,
    allow: Arc<AllowList>,
    limiter: HostLimiter,
}

impl Fetcher {
    pub fn new(cfg: FetchConfig) -> anyhow::Result<Fetcher> {
        anyhow::ensure!(cfg.max_bytes > 0, "fetch max_bytes must be positive");
        anyhow::ensure!(!cfg.timeout.is_zero(), "fetch timeout must be positive");
        anyhow::ensure!(!cfg.connect_timeout.is_zero(), "fetch connect_timeout must be positive");
        let allow = Arc::new(AllowList::new(&cfg.allow_hosts));
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .redirect(guard::redirect_policy(Arc::clone(&allow), cfg.max_redirects))
            .dns_resolver(Arc::new(GuardResolver::new(Arc::clone(&allow))))
            // A proxy would resolve and connect on our behalf, out of the guard's sight.
            .no_proxy()
            // Source URLs can carry tokens in their query; don't leak them to redirect targets.
            .referer(false)
            .build()
            .context("building the feed HTTP client")?;
        Ok(Fetcher {
            client,
            limiter: HostLimiter::new(cfg.min_interval),
            cfg: Arc::new(cfg),
            allow,
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// The limiter `fetch` waits on; a scheduler may consult it (`try_acquire`) to defer sources
    /// instead of waiting, but must then not call `fetch` for a slot it already took, or it pays
    /// the interval twice.
    pub fn limiter(&self) -> &HostLimiter {
        &self.limiter
    }

    /// Fetches and parses one source. Waits for the host's rate-limit slot first (that wait is
    /// not counted against `timeout`), then gives the whole exchange, redirects and body
    /// included, `timeout` to finish.
    pub async fn fetch(&self, url: &str, kind: SourceKind, validators: &Validators) -> Result<Fetched, FetchError> {
        let url = guard::check_with(url, &self.allow)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        self.limiter.acquire(&host).await;

        let started = Instant::now();
        let result = tokio::time::timeout(self.cfg.timeout, self.fetch_once(url.clone(), kind, validators))
            .await
            .unwrap_or(Err(FetchError::Timeout));
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(Fetched::NotModified) => tracing::debug!(%url, elapsed_ms, "not modified"),
            Ok(Fetched::Items { items, encoding, .. }) => {
                tracing::debug!(%url, elapsed_ms, items = items.len(), encoding, "fetched")
            }
            Err(error) => tracing::debug!(%url, elapsed_ms, %error, "fetch failed"),
        }
        result
    }

    /// `fetch` without the static URL check and the rate limit; tests use it to reach the
    /// resolver guard with names that `check_url` would already refuse.
    pub(super) async fn fetch_once(
        &self,
        url: Url,
        kind: SourceKind,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        let mut request = self
            .client
            .get(url)
            .header(ACCEPT, accept(kind))
            .header(ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9,en;q=0.8");
        // Validators come from a previous response; one that is no longer a valid header value
        // is dropped rather than failing the poll.
        if let Some(etag) = validators.etag.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(since) = validators
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            request = request.header(IF_MODIFIED_SINCE, since);
        }

        let response = request.send().await.map_err(FetchError::from_reqwest)?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && !validators.is_empty() {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let limit = self.cfg.max_bytes;
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(FetchError::TooLarge { limit });
        }
        let headers = response.headers();
        let new_validators = Validators {
            etag: header_string(headers, &ETAG),
            last_modified: header_string(headers, &LAST_MODIFIED),
        };
        let content_type = header_string(headers, &CONTENT_TYPE);
        if let Some(ct) = content_type.as_deref().filter(|ct| is_binary(ct)) {
            return Err(FetchError::Parse(format!("unexpected content type {ct}")));
        }
        let final_url = response.url().clone();
        let body = read_limited(response, limit).await?;

        let max_chars = self.cfg.max_text_chars;
        let base = final_url.clone();
        // Decoding and parsing up to max_bytes of markup takes milliseconds of CPU; keep it off
        // the async workers that serve gRPC.
        let (items, encoding) = tokio::task::spawn_blocking(move || {
            let decoded = decode::decode(&body, content_type.as_deref(), kind)?;
            let items = match kind {
                SourceKind::Feed => parse::parse_feed(&decoded.text, &base, max_chars)?,
                SourceKind::Page => vec![parse::parse_page(&decoded.text, &base, max_chars)],
            };
            Ok::<_, FetchError>((items, decoded.encoding.name()))
        })
        .await
        .map_err(|e| FetchError::Parse(format!("parser task failed: {e}")))??;

        Ok(Fetched::Items {
            items,
            validators: new_validators,
            final_url: final_url.to_string(),
            encoding,
        })
    }
}

fn accept(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Feed => {
            "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
        }
        SourceKind::Page => "text/html, application/xhtml+xml;q=0.9, */*;q=0.8",
    }
}

fn header_string(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Media types that can never be a feed or a page; refusing them before the body is read saves
/// downloading a video just to fail parsing it.
fn is_binary(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ["image/", "audio/", "video/", "font/"]
        .iter()
        .any(|p| essence.starts_with(p))
        || matches!(
            essence.as_str(),
            "application/pdf" | "application/zip" | "application/gzip"
        )
}

/// Reads the body chunk by chunk so that an endless or oversized body costs at most `limit`
/// bytes of memory, whatever Content-Length claimed.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, FetchError> {
    let expected = response.content_length().map_or(16 * 1024, |len| len as usize);
    let mut body = Vec::with_capacity(expected.min(limit));
    while let Some(chunk) = response.chunk().await.map_err(FetchError::from_reqwest)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
