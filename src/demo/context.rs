//! What every stage shares: the channel to the installation, tokens for the staff the demo acts
//! as, the moment the demo runs at in the hospital's time zone, and a random generator per stage.

use super::hospital::Staff;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime};
use hcrm_kit::auth::Authenticator;
use hcrm_kit::client::Bearer;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel whose calls carry one staff member's bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

pub const MINUTE: i64 = 60 * 1_000_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Tokens outlive the longest demo with room to spare; they are never stored.
const TOKEN_TTL_SECS: u64 = 4 * 3600;

pub struct Demo {
    channel: Channel,
    authenticator: Authenticator,
    seed: u64,
    /// When the demo runs, UTC microseconds: every synthetic time is placed relative to it.
    pub now: i64,
    /// The hospital's offset from UTC in minutes (followup's and feedback's calendars).
    pub utc_offset_minutes: i32,
}

impl Demo {
    pub fn new(channel: Channel, authenticator: Authenticator, seed: u64, utc_offset_minutes: i32) -> Self {
        Self {
            channel,
            authenticator,
            seed,
            now: hcrm_kit::time::now_micros(),
            utc_offset_minutes,
        }
    }

    /// A channel authenticated as `staff`.
    pub fn as_staff(&self, staff: &Staff) -> anyhow::Result<Authed> {
        let token = self.authenticator.mint(
            &staff.subject,
            &[staff.role],
            staff.department.as_deref(),
            TOKEN_TTL_SECS,
        )?;
        Ok(InterceptedService::new(self.channel.clone(), Bearer::new(&token)?))
    }

    /// The random generator of one stage: seeded from the demo's seed and the stage's name, so
    /// stages running side by side still give the same hospital for the same seed.
    pub fn rng(&self, stage: &str) -> StdRng {
        // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in stage.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        StdRng::seed_from_u64(self.seed ^ hash)
    }

    /// The demo's seed: request ids derived from it make a retried run idempotent.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn offset(&self) -> i64 {
        i64::from(self.utc_offset_minutes) * MINUTE
    }

    /// Today in the hospital's time zone.
    pub fn today(&self) -> NaiveDate {
        self.local_date(self.now)
    }

    /// The local date of a UTC time.
    pub fn local_date(&self, micros: i64) -> NaiveDate {
        DateTime::from_timestamp_micros(micros + self.offset())
            .map(|t| t.date_naive())
            .unwrap_or_default()
    }

    /// UTC microseconds of a local date and time of day (minutes after midnight).
    pub fn at_local(&self, date: NaiveDate, minutes: u32) -> i64 {
        let time = NaiveTime::from_num_seconds_from_midnight_opt(minutes.min(1439) * 60, 0).unwrap_or_default();
        date.and_time(time).and_utc().timestamp_micros() - self.offset()
    }

    /// The date `days` before today.
    pub fn days_ago(&self, days: i64) -> NaiveDate {
        self.today() - Duration::days(days)
    }
}

/// A call's answer, or an error naming the call and what the service said (its code and
/// message, which name the field at fault).
pub trait Answer<T> {
    fn answer(self, what: &str) -> anyhow::Result<T>;
}

impl<T> Answer<T> for Result<tonic::Response<T>, tonic::Status> {
    fn answer(self, what: &str) -> anyhow::Result<T> {
        self.map(tonic::Response::into_inner)
            .map_err(|s| anyhow::anyhow!("{what}: {:?}: {}", s.code(), s.message()))
    }
}

/// A `hcrm.type.v1.Date`.
pub fn date(d: NaiveDate) -> hcrm_proto::types::Date {
    use chrono::Datelike;
    hcrm_proto::types::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// A `hcrm.type.v1.Date` back as a calendar date.
pub fn from_date(d: Option<&hcrm_proto::types::Date>) -> Option<NaiveDate> {
    let d = d?;
    NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)
}

/// A protobuf timestamp of UTC microseconds.
pub fn ts(micros: i64) -> prost_types::Timestamp {
    hcrm_kit::time::to_timestamp(micros)
}

/// Runs `work` over `items`, `limit` at a time, and returns the results in the items' order;
/// stops at the first error.
pub async fn ordered<'a, I, F, Fut, T>(items: I, limit: usize, work: F) -> anyhow::Result<Vec<T>>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'a,
    T: Send + 'a,
{
    use futures::{FutureExt, StreamExt};
    // Boxed: the futures borrow the caller's data, and a boxed future's `Send` is proven here
    // once instead of for every lifetime the spawned demo might be polled with.
    let futures: Vec<futures::future::BoxFuture<'a, (usize, anyhow::Result<T>)>> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| work(item).map(move |r| (i, r)).boxed())
        .collect();
    let mut running = futures::stream::iter(futures).buffer_unordered(limit.max(1));
    let mut done = Vec::new();
    while let Some((i, result)) = running.next().await {
        done.push((i, result?));
    }
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, r)| r).collect())
}

/// Runs `work` over `items`, `limit` at a time; how many ran. Stops at the first error.
pub async fn each<'a, I, F, Fut>(items: I, limit: usize, work: F) -> anyhow::Result<usize>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'a,
{
    Ok(ordered(items, limit, work).await?.len())
}

/// Polls `check` until it returns `Some`, every `every`, for at most `limit`; the error says
/// what was waited for.
pub async fn wait_for<T, F, Fut>(what: &str, limit: std::time::Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>> + Send,
{
    use futures::FutureExt;
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().boxed().await? {
            return Ok(value);
        }
        if started.elapsed() > limit {
            anyhow::bail!("gave up after {}s waiting for {what}", limit.as_secs());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
