//! Notifiers carry a message out of the system: a reminder to staff the day before a follow-up is
//! due, a notice to a patient, an alert. A notifier makes one delivery attempt and says whether a
//! failure is worth retrying; the caller (a delivery job with an outbox) owns leases, backoff and
//! dead-lettering.
//!
//! - [`LogNotifier`]: development; logs that a message would go out, nothing personal.
//! - [`WebhookNotifier`]: signed HTTP POST of the message as JSON.
//! - [`SmtpNotifier`]: plain-text e-mail.

use crate::secret::Secret;
use anyhow::Context;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the idempotency key of a webhook delivery.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Header carrying the Unix time (seconds) the webhook signature was made at.
pub const TIMESTAMP_HEADER: &str = "X-Hcrm-Timestamp";
/// Header carrying `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Hcrm-Signature";

/// Notifier kinds accepted in [`NotifierConfig::kind`].
pub const KINDS: &[&str] = &["log", "webhook", "smtp"];
/// Values accepted in [`NotifierConfig::smtp_tls`].
pub const SMTP_TLS_MODES: &[&str] = &["none", "starttls", "tls"];

/// One message to deliver.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    /// Unique per delivery; receivers de-duplicate on it (sent as the `Idempotency-Key` header /
    /// Message-ID).
    pub idempotency_key: String,
    /// Dotted kind, e.g. `followup.reminder`, `followup.exam_notice`, `opinion.alert`.
    pub kind: String,
    /// Who it is for: an opaque id (staff subject or `patients/{id}`), plus addresses when known.
    pub recipient: Recipient,
    pub subject: String,
    pub body: String,
    /// Structured details for machine receivers (JSON object).
    pub payload: serde_json::Value,
}

/// The addressee of a message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Recipient {
    /// Opaque id: a staff subject or `patients/{id}`.
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Why one delivery attempt failed, and whether another attempt may succeed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Worth another attempt later: timeouts, connection errors, HTTP 408/425/429/5xx, SMTP
    /// transient (4xx) replies.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed as is: HTTP 4xx other than those, SMTP permanent (5xx) replies, no
    /// e-mail address.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl NotifyError {
    /// Whether the caller should try again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, NotifyError::Transient(_))
    }
}

/// Carries messages out of the system, one attempt per call.
pub trait Notifier: Send + Sync {
    /// Short name for logs and metrics: `log`, `webhook`, `smtp`.
    fn name(&self) -> &'static str;
    /// One delivery attempt.
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), NotifyError>>;
}

/// Settings of the notifier a service sends through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifierConfig {
    /// `log` (default), `webhook` or `smtp`.
    pub kind: String,
    /// Where webhooks are POSTed (`http://` or `https://`).
    pub webhook_url: String,
    /// HMAC key for the signature header; required for `webhook`.
    pub webhook_secret: Option<Secret>,
    /// Longest one delivery attempt may take, in milliseconds.
    pub timeout_ms: u64,
    /// SMTP relay host name.
    pub smtp_host: String,
    /// SMTP port: 587 for STARTTLS, 465 for implicit TLS, 25 for plain relays.
    pub smtp_port: u16,
    /// SMTP login; no authentication when empty.
    pub smtp_username: String,
    /// SMTP password; required when `smtp_username` is set.
    pub smtp_password: Option<Secret>,
    /// Sender address, e.g. `HCRM <noreply@hospital.example>`.
    pub smtp_from: String,
    /// `none` (plain text; local relays and tests only), `starttls` (default) or `tls`.
    pub smtp_tls: String,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            kind: "log".into(),
            webhook_url: String::new(),
            webhook_secret: None,
            timeout_ms: 5000,
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_username: String::new(),
            smtp_password: None,
            smtp_from: String::new(),
            smtp_tls: "starttls".into(),
        }
    }
}

impl NotifierConfig {
    /// Checks the settings of the configured kind, naming the key at fault.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.timeout_ms > 0, "timeout_ms must be greater than 0");
        match self.kind.as_str() {
            "log" => Ok(()),
            "webhook" => {
                anyhow::ensure!(
                    !self.webhook_url.trim().is_empty(),
                    "webhook_url is required when kind = webhook"
                );
                let url = reqwest::Url::parse(&self.webhook_url).context("webhook_url is not a valid URL")?;
                anyhow::ensure!(
                    matches!(url.scheme(), "http" | "https") && url.host_str().is_some(),
                    "webhook_url must be an http:// or https:// URL with a host"
                );
                anyhow::ensure!(
                    self.webhook_secret.as_ref().is_some_and(|s| !s.expose().is_empty()),
                    "webhook_secret is required when kind = webhook"
                );
                Ok(())
            }
            "smtp" => {
                anyhow::ensure!(
                    !self.smtp_host.trim().is_empty(),
                    "smtp_host is required when kind = smtp"
                );
                anyhow::ensure!(self.smtp_port > 0, "smtp_port must be greater than 0");
                anyhow::ensure!(
                    !self.smtp_from.trim().is_empty(),
                    "smtp_from is required when kind = smtp"
                );
                self.smtp_from.parse::<Mailbox>().map_err(|_| {
                    anyhow::anyhow!("smtp_from must be an e-mail address, e.g. `HCRM <noreply@example.org>`")
                })?;
                anyhow::ensure!(
                    SMTP_TLS_MODES.contains(&self.smtp_tls.as_str()),
                    "unknown smtp_tls {:?}; expected one of: {}",
                    self.smtp_tls,
                    SMTP_TLS_MODES.join(", ")
                );
                let has_password = self.smtp_password.as_ref().is_some_and(|s| !s.expose().is_empty());
                anyhow::ensure!(
                    self.smtp_username.is_empty() || has_password,
                    "smtp_password is required when smtp_username is set"
                );
                anyhow::ensure!(
                    !self.smtp_username.is_empty() || !has_password,
                    "smtp_username is required when smtp_password is set"
                );
                Ok(())
            }
            other => anyhow::bail!("unknown notifier kind {other:?}; expected one of: {}", KINDS.join(", ")),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Builds the notifier the settings describe, after [`NotifierConfig::check`].
pub fn from_config(cfg: &NotifierConfig) -> anyhow::Result<Arc<dyn Notifier>> {
    cfg.check()?;
    Ok(match cfg.kind.as_str() {
        "webhook" => Arc::new(WebhookNotifier::new(cfg)?),
        "smtp" => Arc::new(SmtpNotifier::new(cfg)?),
        _ => Arc::new(LogNotifier),
    })
}

/// Development notifier: logs that a message would go out. Only the kind, the idempotency key
/// and the recipient id are logged; subject, body and addresses may carry personal data.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            tracing::info!(
                kind = %message.kind,
                idempotency_key = %message.idempotency_key,
                recipient = %message.recipient.id,
                "notification"
            );
            Ok(())
        })
    }
}

/// POSTs the message as JSON to a configured URL, signed with HMAC-SHA256 so the receiver can
/// tell it came from us and was not altered.
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Secret,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a token in its query, so only the host is shown.
        f.debug_struct("WebhookNotifier")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Builds from `webhook_url`, `webhook_secret` and `timeout_ms`.
    pub fn new(cfg: &NotifierConfig) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(&cfg.webhook_url).context("webhook_url is not a valid URL")?;
        let secret = cfg
            .webhook_secret
            .clone()
            .ok_or_else(|| anyhow::anyhow!("webhook_secret is required when kind = webhook"))?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout())
            // A redirect would carry the signed message somewhere nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the webhook http client")?;
        Ok(Self { client, url, secret })
    }

    async fn post(&self, message: &Message) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(message).map_err(|e| NotifyError::Permanent(format!("serialising: {e}")))?;
        let timestamp = (crate::time::now_micros() / 1_000_000).to_string();
        let signature = sign(self.secret.expose().as_bytes(), &timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &message.idempotency_key)
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, format!("sha256={signature}"))
            .body(body)
            .send()
            .await
            .map_err(classify_reqwest)?;
        classify_status(response.status())
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(self.post(message))
    }
}

/// Hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `header` (the `X-Hcrm-Signature` value, `sha256=<hex>`) signs `timestamp` and `body`
/// under `secret`. The comparison takes constant time. Receivers should also reject timestamps
/// far from their own clock, so a captured request cannot be replayed later.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(given) = header.trim().strip_prefix("sha256=").and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

fn classify_status(status: reqwest::StatusCode) -> Result<(), NotifyError> {
    let code = status.as_u16();
    if status.is_success() {
        Ok(())
    } else if matches!(code, 408 | 425 | 429) || status.is_server_error() {
        Err(NotifyError::Transient(format!("webhook answered {status}")))
    } else if status.is_redirection() {
        Err(NotifyError::Permanent(format!(
            "webhook answered {status}; redirects are not followed"
        )))
    } else if status.is_client_error() {
        Err(NotifyError::Permanent(format!("webhook answered {status}")))
    } else {
        Err(NotifyError::Transient(format!("webhook answered unexpected {status}")))
    }
}

fn classify_reqwest(err: reqwest::Error) -> NotifyError {
    // The URL may carry a token, so it is left out of the message.
    let err = err.without_url();
    if err.is_builder() {
        NotifyError::Permanent(format!("webhook request: {err}"))
    } else if err.is_timeout() {
        NotifyError::Transient("webhook timed out".into())
    } else {
        NotifyError::Transient(format!("webhook request: {err}"))
    }
}

/// Sends the message as plain-text e-mail to the recipient's address.
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpNotifier").finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// Builds from the `smtp_*` settings and `timeout_ms`.
    pub fn new(cfg: &NotifierConfig) -> anyhow::Result<Self> {
        let from = cfg
            .smtp_from
            .parse::<Mailbox>()
            .map_err(|_| anyhow::anyhow!("smtp_from must be an e-mail address"))?;
        let host = cfg.smtp_host.as_str();
        let mut builder = match cfg.smtp_tls.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).context("smtp starttls setup")?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host).context("smtp tls setup")?,
            other => anyhow::bail!(
                "unknown smtp_tls {other:?}; expected one of: {}",
                SMTP_TLS_MODES.join(", ")
            ),
        };
        builder = builder.port(cfg.smtp_port).timeout(Some(cfg.timeout()));
        if !cfg.smtp_username.is_empty() {
            let password = cfg
                .smtp_password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(cfg.smtp_username.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            timeout: cfg.timeout(),
        })
    }

    async fn deliver(&self, message: &Message) -> Result<(), NotifyError> {
        let to = message
            .recipient
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| NotifyError::Permanent("recipient has no e-mail address".into()))?
            .parse::<Mailbox>()
            // The address itself is personal data and stays out of the error.
            .map_err(|_| NotifyError::Permanent("recipient e-mail address is not valid".into()))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.as_str())
            .message_id(Some(message_id(&message.idempotency_key)))
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| NotifyError::Permanent(format!("building the e-mail: {e}")))?;
        // lettre's timeout applies per socket operation; this bounds the whole attempt.
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Err(_) => Err(NotifyError::Transient("smtp timed out".into())),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify_smtp(&e)),
        }
    }
}

impl Notifier for SmtpNotifier {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(self.deliver(message))
    }
}

/// `<{key}@hcrm>` when the key is safe in a header, else `<{sha256(key)}@hcrm>`; the same key
/// always gives the same Message-ID, so a retried send is recognisable.
fn message_id(key: &str) -> String {
    let safe = !key.is_empty()
        && key.len() <= 200
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if safe {
        format!("<{key}@hcrm>")
    } else {
        format!("<{}@hcrm>", hex::encode(Sha256::digest(key.as_bytes())))
    }
}

fn classify_smtp(err: &lettre::transport::smtp::Error) -> NotifyError {
    // Replies may echo the recipient address, so only the code is kept.
    let what = match err.status() {
        Some(code) => format!("smtp server answered {code}"),
        None if err.is_timeout() => "smtp timed out".into(),
        None => format!("smtp: {err}"),
    };
    if err.is_permanent() {
        NotifyError::Permanent(what)
    } else {
        // Transient replies, timeouts, connection and TLS trouble: another attempt may succeed.
        NotifyError::Transient(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    const SECRET: &str = "test-webhook-secret";

    fn message() -> Message {
        Message {
            idempotency_key: "delivery-0001".into(),
            kind: "followup.reminder".into(),
            recipient: Recipient {
                id: "patients/42".into(),
                email: Some("ward7@hospital.example".into()),
                phone: None,
            },
            subject: "Follow-up due tomorrow".into(),
            body: "Patient 42 has a follow-up due tomorrow.".into(),
            payload: serde_json::json!({ "task": "tasks/7" }),
        }
    }

    /// One request as the receiver saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        key: String,
        content_type: String,
        timestamp: String,
        signature: String,
        body: Vec<u8>,
        signature_ok: bool,
    }

    #[derive(Clone, Default)]
    struct Receiver {
        seen: Arc<Mutex<Vec<Seen>>>,
        target_hits: Arc<AtomicUsize>,
    }

    fn header_text(headers: &HeaderMap, name: &str) -> String {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// Serves `/hook` answering `status` after `delay`, and `/target` (where a 302 points);
    /// returns the hook URL and what was received.
    async fn receiver(status: u16, delay: Duration) -> (String, Receiver) {
        let state = Receiver::default();
        let hook = move |State(rx): State<Receiver>, headers: HeaderMap, body: Bytes| async move {
            let seen = Seen {
                key: header_text(&headers, IDEMPOTENCY_HEADER),
                content_type: header_text(&headers, "content-type"),
                timestamp: header_text(&headers, TIMESTAMP_HEADER),
                signature: header_text(&headers, SIGNATURE_HEADER),
                signature_ok: verify_signature(
                    SECRET.as_bytes(),
                    &header_text(&headers, TIMESTAMP_HEADER),
                    &body,
                    &header_text(&headers, SIGNATURE_HEADER),
                ),
                body: body.to_vec(),
            };
            let signature_ok = seen.signature_ok;
            rx.seen.lock().unwrap().push(seen);
            tokio::time::sleep(delay).await;
            if !signature_ok {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let status = StatusCode::from_u16(status).unwrap();
            if status.is_redirection() {
                (status, [(header::LOCATION, "/target")]).into_response()
            } else {
                status.into_response()
            }
        };
        let target = |State(rx): State<Receiver>| async move {
            rx.target_hits.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .route("/target", axum::routing::any(target))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/hook"), state)
    }

    fn webhook_config(url: &str, timeout_ms: u64) -> NotifierConfig {
        NotifierConfig {
            kind: "webhook".into(),
            webhook_url: url.into(),
            webhook_secret: Some(Secret::new(SECRET)),
            timeout_ms,
            ..Default::default()
        }
    }

    async fn send_webhook(status: u16, delay: Duration, timeout_ms: u64) -> (Result<(), NotifyError>, Receiver) {
        let (url, rx) = receiver(status, delay).await;
        let notifier = from_config(&webhook_config(&url, timeout_ms)).unwrap();
        assert_eq!(notifier.name(), "webhook");
        (notifier.send(&message()).await, rx)
    }

    #[tokio::test]
    async fn a_webhook_answered_200_is_delivered_once_signed_with_the_key_and_message() {
        let (result, rx) = send_webhook(200, Duration::ZERO, 5000).await;
        result.unwrap();
        let seen = rx.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let seen = &seen[0];
        assert!(seen.signature_ok, "signature must verify");
        assert_eq!(seen.key, "delivery-0001");
        assert_eq!(seen.content_type, "application/json");
        assert_eq!(serde_json::from_slice::<Message>(&seen.body).unwrap(), message());
        let now = crate::time::now_micros() / 1_000_000;
        assert!((now - seen.timestamp.parse::<i64>().unwrap()).abs() < 60);
    }

    #[tokio::test]
    async fn a_tampered_webhook_fails_verification() {
        let (result, rx) = send_webhook(200, Duration::ZERO, 5000).await;
        result.unwrap();
        let seen = rx.seen.lock().unwrap()[0].clone();
        let secret = SECRET.as_bytes();
        assert!(verify_signature(secret, &seen.timestamp, &seen.body, &seen.signature));
        let mut tampered = seen.body.clone();
        let at = tampered.iter().position(|&b| b == b'4').unwrap();
        tampered[at] = b'5';
        assert!(!verify_signature(secret, &seen.timestamp, &tampered, &seen.signature));
        assert!(!verify_signature(
            b"another secret",
            &seen.timestamp,
            &seen.body,
            &seen.signature
        ));
        let later = (seen.timestamp.parse::<i64>().unwrap() + 1).to_string();
        assert!(!verify_signature(secret, &later, &seen.body, &seen.signature));
        let bare = seen.signature.trim_start_matches("sha256=");
        assert!(!verify_signature(secret, &seen.timestamp, &seen.body, bare));
        assert!(!verify_signature(secret, &seen.timestamp, &seen.body, "sha256=zz"));
    }

    #[tokio::test]
    async fn a_webhook_answered_500_is_transient() {
        let (result, rx) = send_webhook(500, Duration::ZERO, 5000).await;
        assert!(matches!(result, Err(NotifyError::Transient(_))), "{result:?}");
        assert_eq!(rx.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_webhook_answered_429_is_transient() {
        let (result, _) = send_webhook(429, Duration::ZERO, 5000).await;
        assert!(matches!(result, Err(NotifyError::Transient(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_webhook_answered_400_is_permanent() {
        let (result, rx) = send_webhook(400, Duration::ZERO, 5000).await;
        assert!(matches!(result, Err(NotifyError::Permanent(_))), "{result:?}");
        assert_eq!(rx.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_webhook_redirect_is_permanent_and_not_followed() {
        let (result, rx) = send_webhook(302, Duration::ZERO, 5000).await;
        assert!(matches!(result, Err(NotifyError::Permanent(_))), "{result:?}");
        assert_eq!(rx.seen.lock().unwrap().len(), 1);
        assert_eq!(
            rx.target_hits.load(Ordering::SeqCst),
            0,
            "the redirect target must not be hit"
        );
    }

    #[tokio::test]
    async fn a_webhook_slower_than_the_timeout_is_transient() {
        let started = std::time::Instant::now();
        let (result, _) = send_webhook(200, Duration::from_secs(3), 200).await;
        assert!(matches!(result, Err(NotifyError::Transient(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_unreachable_webhook_is_transient() {
        // Binding then dropping a listener leaves a port nobody answers on.
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let notifier = from_config(&webhook_config(&format!("http://127.0.0.1:{port}/hook"), 2000)).unwrap();
        let result = notifier.send(&message()).await;
        assert!(matches!(result, Err(NotifyError::Transient(_))), "{result:?}");
    }

    /// A fake SMTP server answering `rcpt_reply` to RCPT; returns its port and the DATA of each
    /// accepted message.
    async fn fake_smtp(rcpt_reply: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = Arc::new(Mutex::new(Vec::new()));
        let recorded = data.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read);
                    write.write_all(b"220 fake.test ESMTP\r\n").await.unwrap();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                        let reply = match verb.as_str() {
                            "EHLO" | "HELO" => "250 fake.test\r\n",
                            "RCPT" => rcpt_reply,
                            "DATA" => {
                                write.write_all(b"354 go ahead\r\n").await.unwrap();
                                let mut text = String::new();
                                while !text.ends_with("\r\n.\r\n") {
                                    if lines.read_line(&mut text).await.unwrap_or(0) == 0 {
                                        return;
                                    }
                                }
                                recorded.lock().unwrap().push(text);
                                "250 queued\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => "250 ok\r\n",
                        };
                        if write.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, data)
    }

    fn smtp_config(port: u16) -> NotifierConfig {
        NotifierConfig {
            kind: "smtp".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: port,
            smtp_from: "HCRM <noreply@hcrm.example>".into(),
            smtp_tls: "none".into(),
            timeout_ms: 5000,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_email_carries_the_subject_body_and_a_message_id_from_the_key() {
        let (port, data) = fake_smtp("250 ok\r\n").await;
        let notifier = from_config(&smtp_config(port)).unwrap();
        assert_eq!(notifier.name(), "smtp");
        notifier.send(&message()).await.unwrap();
        let data = data.lock().unwrap().clone();
        assert_eq!(data.len(), 1);
        let text = &data[0];
        assert!(text.contains("Subject: Follow-up due tomorrow"), "{text}");
        assert!(text.contains("Message-ID: <delivery-0001@hcrm>"), "{text}");
        assert!(text.contains("To: ward7@hospital.example"), "{text}");
        assert!(text.contains("noreply@hcrm.example"), "{text}");
        assert!(text.contains("Patient 42 has a follow-up due tomorrow."), "{text}");
    }

    #[tokio::test]
    async fn a_rejected_recipient_is_permanent() {
        let (port, data) = fake_smtp("550 5.1.1 no such user\r\n").await;
        let result = from_config(&smtp_config(port)).unwrap().send(&message()).await;
        assert!(matches!(result, Err(NotifyError::Permanent(_))), "{result:?}");
        assert!(data.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_deferred_recipient_is_transient() {
        let (port, data) = fake_smtp("451 4.3.0 try again later\r\n").await;
        let result = from_config(&smtp_config(port)).unwrap().send(&message()).await;
        assert!(matches!(result, Err(NotifyError::Transient(_))), "{result:?}");
        assert!(data.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_recipient_without_email_is_permanent() {
        let (port, data) = fake_smtp("250 ok\r\n").await;
        let mut msg = message();
        msg.recipient.email = None;
        let result = from_config(&smtp_config(port)).unwrap().send(&msg).await;
        assert!(matches!(result, Err(NotifyError::Permanent(_))), "{result:?}");
        assert!(data.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_smtp_server_is_transient() {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let result = from_config(&smtp_config(port)).unwrap().send(&message()).await;
        assert!(matches!(result, Err(NotifyError::Transient(_))), "{result:?}");
    }

    #[test]
    fn unsafe_keys_give_a_stable_hashed_message_id() {
        assert_eq!(message_id("abc-1"), "<abc-1@hcrm>");
        let odd = message_id("a key <with> @ odd chars");
        assert_eq!(odd, message_id("a key <with> @ odd chars"));
        assert!(odd.starts_with('<') && odd.ends_with("@hcrm>") && !odd.contains(' '));
        assert_ne!(odd, message_id("another odd key!"));
    }

    #[tokio::test]
    async fn the_log_notifier_always_succeeds() {
        let notifier = from_config(&NotifierConfig::default()).unwrap();
        assert_eq!(notifier.name(), "log");
        notifier.send(&message()).await.unwrap();
    }

    fn check_error(cfg: &NotifierConfig) -> String {
        format!("{:#}", cfg.check().unwrap_err())
    }

    #[test]
    fn config_check_names_the_key_at_fault() {
        NotifierConfig::default().check().unwrap();

        let mut cfg = webhook_config("", 5000);
        assert!(
            check_error(&cfg).contains("webhook_url is required"),
            "{}",
            check_error(&cfg)
        );
        cfg.webhook_url = "ftp://hooks.example/x".into();
        assert!(
            check_error(&cfg).contains("webhook_url must be an http"),
            "{}",
            check_error(&cfg)
        );
        cfg.webhook_url = "https://hooks.example/x".into();
        cfg.check().unwrap();
        cfg.webhook_secret = None;
        assert!(
            check_error(&cfg).contains("webhook_secret is required"),
            "{}",
            check_error(&cfg)
        );
        assert!(from_config(&cfg).is_err());

        let mut cfg = smtp_config(25);
        cfg.check().unwrap();
        cfg.smtp_from = "not an address".into();
        assert!(check_error(&cfg).contains("smtp_from"), "{}", check_error(&cfg));
        cfg.smtp_from = "noreply@hcrm.example".into();
        cfg.smtp_tls = "ssl".into();
        let err = check_error(&cfg);
        assert!(err.contains("smtp_tls") && err.contains("none, starttls, tls"), "{err}");
        cfg.smtp_tls = "starttls".into();
        cfg.smtp_username = "relay".into();
        assert!(
            check_error(&cfg).contains("smtp_password is required"),
            "{}",
            check_error(&cfg)
        );
        cfg.smtp_host = String::new();
        assert!(
            check_error(&cfg).contains("smtp_host is required"),
            "{}",
            check_error(&cfg)
        );

        let cfg = NotifierConfig {
            kind: "pager".into(),
            ..Default::default()
        };
        let err = check_error(&cfg);
        assert!(err.contains("\"pager\"") && err.contains("log, webhook, smtp"), "{err}");
    }

    #[test]
    fn config_layers_over_defaults_and_rejects_unknown_keys() {
        let cfg: NotifierConfig = config::Config::builder()
            .add_source(config::Config::try_from(&NotifierConfig::default()).unwrap())
            .set_override("kind", "smtp")
            .unwrap()
            .set_override("smtp_port", "2525")
            .unwrap()
            .set_override("smtp_password", "hunter2")
            .unwrap()
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(cfg.kind, "smtp");
        assert_eq!(cfg.smtp_port, 2525);
        assert_eq!(cfg.timeout_ms, 5000);
        assert_eq!(cfg.smtp_tls, "starttls");
        assert_eq!(cfg.smtp_password.as_ref().map(Secret::expose), Some("hunter2"));
        assert!(!format!("{cfg:?}").contains("hunter2"));

        let unknown = serde_json::from_value::<NotifierConfig>(serde_json::json!({ "webhook_uri": "x" }));
        assert!(unknown.unwrap_err().to_string().contains("webhook_uri"));
    }
}
