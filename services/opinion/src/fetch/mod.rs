//! Fetching feeds and pages for the opinion poller.
//!
//! Source URLs are typed in by staff, and the content behind them is controlled by strangers,
//! so everything here assumes hostility: the URL may point into the hospital network
//! (SSRF), DNS may change its answer between our check and the connect (rebinding), a redirect
//! may bounce us inside, a body may be endless, a server may stall, and the bytes may be in
//! any of the legacy Chinese encodings. A failure is always a [`FetchError`] whose message the
//! poller stores as the source's last error before moving on to the next source.
//!
//! Layout: [`guard`] (what may be contacted), [`limiter`] (politeness per host), `decode`
//! (bytes to text), `parse` (text to items) and `client` (the [`Fetcher`] tying them together).

mod client;
mod decode;
mod error;
pub mod guard;
pub mod limiter;
mod parse;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use client::Fetcher;
pub use error::FetchError;
pub use guard::{check_url, is_forbidden_ip};
pub use limiter::HostLimiter;

/// Knobs for [`Fetcher`]. The defaults suit polling public news sites every few minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// TCP (and TLS) connect deadline per attempt.
    pub connect_timeout: Duration,
    /// Deadline for the whole fetch after the rate limiter let it go: every redirect hop and the
    /// full body, so one stalling server cannot hold a poller slot for long.
    pub timeout: Duration,
    /// Bodies larger than this fail with [`FetchError::TooLarge`] instead of being buffered.
    pub max_bytes: usize,
    /// Redirect hops followed before [`FetchError::TooManyRedirects`].
    pub max_redirects: usize,
    /// Host names or IP literals (exact, case-insensitive) exempt from the private-address
    /// guard, e.g. an intranet news site. Matching is on the name in the URL, never on what it
    /// resolves to, so allowing "127.0.0.1" does not allow "localhost".
    pub allow_hosts: Vec<String>,
    /// Minimum spacing of requests to one host (see [`HostLimiter`]).
    pub min_interval: Duration,
    /// Item text is cut to this many characters so one huge page cannot bloat the store.
    pub max_text_chars: usize,
    pub user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(20),
            max_bytes: 2 * 1024 * 1024,
            max_redirects: 5,
            allow_hosts: Vec::new(),
            min_interval: Duration::from_secs(1),
            max_text_chars: 20_000,
            user_agent: concat!("HCRM-opinion/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// What the caller expects behind the URL; we do not guess, because a page that merely looks
/// like XML (or a feed served as text/html) would be misparsed silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// RSS 0.9x/1.0/2.0, Atom or JSON Feed: one item per entry.
    Feed,
    /// An HTML page: one item for the whole page.
    Page,
}

/// HTTP cache validators from the previous successful fetch, stored with the source so the
/// next poll can be a cheap conditional GET.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The outcome of a successful fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The server answered 304 to our validators: nothing new, keep the old validators.
    NotModified,
    Items {
        items: Vec<FetchedItem>,
        /// Validators of this response (`None` where the server sent none); store them for the
        /// next poll.
        validators: Validators,
        /// The URL after redirects, against which relative links were resolved.
        final_url: String,
        /// The encoding the body was decoded from (encoding_rs name, e.g. "UTF-8", "GBK").
        encoding: &'static str,
    },
}

/// One mention candidate: a feed entry or a whole page, as plain text.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedItem {
    /// Absolute http(s) link of the entry or page; `None` when the entry had no usable link.
    pub url: Option<String>,
    pub title: String,
    /// Plain text with whitespace collapsed, capped at `max_text_chars`. For feed entries the
    /// title comes first, so a match on the headline alone is still found in `text`.
    pub text: String,
    /// Author names joined with ", "; empty when unknown.
    pub author: String,
    /// Publication time, else last-update time; `None` when unknown.
    pub published: Option<chrono::DateTime<chrono::Utc>>,
}
