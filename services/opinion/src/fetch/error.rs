use std::error::Error as StdError;

/// Why a fetch failed. The poller stores `to_string()` as the source's last fetch error, so each
/// message has to make sense to a staff member reading it on the source list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL, a redirect target or a resolved address is one we refuse to contact.
    #[error("blocked: {reason}")]
    Blocked { reason: String },
    #[error("response larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("timed out")]
    Timeout,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("more than {max} redirects")]
    TooManyRedirects { max: usize },
    #[error("cannot decode the response: {0}")]
    Decode(String),
    #[error("cannot parse the response: {0}")]
    Parse(String),
    #[error("network error: {0}")]
    Network(String),
}

impl FetchError {
    pub(crate) fn blocked(reason: impl Into<String>) -> Self {
        FetchError::Blocked { reason: reason.into() }
    }

    /// Maps a reqwest error back to ours. The guard resolver and the redirect policy can only
    /// fail by handing reqwest a boxed error, which comes back buried in the source chain; digging
    /// it out keeps "blocked: ..." from turning into an opaque "error sending request".
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
        while let Some(e) = source {
            if let Some(ours) = e.downcast_ref::<FetchError>() {
                return ours.clone();
            }
            source = e.source();
        }
        if err.is_timeout() {
            return FetchError::Timeout;
        }
        FetchError::Network(error_chain(&err))
    }
}

/// reqwest's own Display says only "error sending request for url (...)"; the cause (refused,
/// reset, TLS, DNS) is further down the chain and is what an operator needs to see.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        source = e.source();
    }
    msg
}
