//! One poll of a source: fetch (conditional GET, guarded), turn the items into mentions,
//! ingest them, record the outcome. A failure is recorded on the source and the poller moves on.

use crate::fetch::{Fetched, Fetcher, SourceKind};
use crate::store::Store;
use crate::store::ingest::Incoming;
use crate::store::sources::{Due, FetchOutcome};
use hcrm_kit::ApiError;
use hcrm_proto::opinion::SourceKind as Kind;

/// Sources fetched at once per pass; the per-host limiter spaces requests to one host.
const BATCH: usize = 8;

/// Polls every source that is due; the number polled.
pub async fn poll_due(store: &Store, fetcher: &Fetcher) -> Result<usize, ApiError> {
    let due = store.claim_due(None, BATCH).await?;
    let n = due.len();
    let polls = due.into_iter().map(|d| poll(store, fetcher, d));
    for result in futures::future::join_all(polls).await {
        result?;
    }
    Ok(n)
}

/// Polls one source now (PollSource); false when another poll holds it.
pub async fn poll_now(store: &Store, fetcher: &Fetcher, id: &str) -> Result<bool, ApiError> {
    let Some(due) = store.claim_due(Some(id), 1).await?.pop() else {
        return Ok(false);
    };
    poll(store, fetcher, due).await?;
    Ok(true)
}

async fn poll(store: &Store, fetcher: &Fetcher, due: Due) -> Result<(), ApiError> {
    let kind = match Kind::try_from(due.kind).unwrap_or_default() {
        Kind::Page => SourceKind::Page,
        _ => SourceKind::Feed,
    };
    let outcome = match fetcher.fetch(&due.url, kind, &due.validators).await {
        Ok(Fetched::NotModified) => FetchOutcome::NotModified,
        Ok(Fetched::Items {
            items,
            validators,
            final_url,
            encoding,
        }) => {
            let site = url::Url::parse(&final_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let count = items.len() as i32;
            let batch: Vec<Incoming> = items
                .into_iter()
                .filter(|i| !i.text.trim().is_empty() || !i.title.trim().is_empty())
                .map(|i| Incoming {
                    // A page is one mention per distinct content; a feed item is its link.
                    url: match kind {
                        SourceKind::Page => String::new(),
                        SourceKind::Feed => i.url.unwrap_or_default(),
                    },
                    source: format!("sources/{}", due.id),
                    site: site.clone(),
                    author: i.author.chars().take(200).collect(),
                    title: i.title.chars().take(500).collect(),
                    text: if i.text.trim().is_empty() { i.title } else { i.text },
                    published_at: i.published.map(|p| p.timestamp_micros()),
                    reach: 1,
                })
                .collect();
            // In batches of the push path's size: a huge feed is many small transactions.
            let mut kept = 0;
            let mut failed = None;
            for chunk in batch.chunks(500) {
                match store.ingest(chunk.to_vec()).await {
                    Ok(done) => kept += done.accepted as i32,
                    Err(err) => {
                        tracing::warn!(source = %due.id, error = %err, "storing a fetch failed");
                        failed = Some(format!("storing the items failed: {err}"));
                        break;
                    }
                }
            }
            match failed {
                None => FetchOutcome::Fetched {
                    items: count,
                    kept,
                    validators,
                    encoding: encoding.to_string(),
                },
                Some(error) => FetchOutcome::Failed(error),
            }
        }
        Err(err) => {
            tracing::info!(source = %due.id, url = %due.url, error = %err, "fetch failed");
            FetchOutcome::Failed(err.to_string())
        }
    };
    store.record_fetch(&due.id, outcome).await
}
