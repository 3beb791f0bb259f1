//! The only place with SQL. One implementation serves SQLite and PostgreSQL (`$n` placeholders,
//! integers for times and days, text and bytes); the few dialect differences are chosen by
//! [`Backend`].

pub mod feed;
pub mod plans;
pub mod readings;
pub mod records;
pub mod reminders;
pub mod rollup;
pub mod stats;
pub mod tasks;
pub mod templates;

use crate::domain::calendar::Calendar;
use hcrm_kit::ApiError;
use hcrm_kit::clock::Clock;
use hcrm_kit::db::{Backend, Db, Tx};
use hcrm_kit::feed::Ledger;
use hcrm_kit::outbox::Outbox;

pub use hcrm_kit::resource::{check_etag, decode, etag, parse_name};

#[derive(Clone)]
pub struct Store {
    pub db: Db,
    pub ledger: Ledger,
    pub cal: Calendar,
    pub clock: Clock,
    /// Everything that leaves the service (`deliveries`); woken when deliveries were queued.
    pub outbox: Outbox,
    /// Local hour before which reminders and notices for tomorrow are not sent.
    pub send_from_hour: u32,
}

impl Store {
    pub fn new(db: Db, cfg: &crate::Config, clock: Clock) -> Self {
        Self {
            ledger: Ledger::new(db.clone()),
            outbox: Outbox::new(db.clone(), clock.clone()),
            db,
            cal: Calendar::new(cfg.utc_offset_minutes),
            clock,
            send_from_hour: cfg.send_from_hour,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Today in the hospital's time zone.
    pub fn today(&self) -> i32 {
        self.cal.day_of(self.now())
    }

    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, where `BEGIN IMMEDIATE` holds the lock.
    pub fn for_update(&self) -> &'static str {
        match self.db.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// After a commit that wrote to the ledger and maybe the outbox.
    pub fn committed(&self, outbox: bool) {
        self.ledger.changed();
        if outbox {
            self.outbox.wake();
        }
    }

    /// Claims a create's idempotency key for `resource` first thing in its transaction;
    /// `Some(existing)` when an earlier call with the key made `existing` (drop the transaction
    /// and answer with it).
    pub async fn claim_request(
        &self,
        tx: &mut Tx,
        key: Option<&str>,
        resource: &str,
    ) -> Result<Option<String>, ApiError> {
        match key {
            Some(key) => Ok(hcrm_kit::idempotency::claim(&self.db, tx, key, resource, self.now()).await?),
            None => Ok(None),
        }
    }
}

/// Appends a plan history entry.
pub async fn history(
    tx: &mut Tx,
    plan_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), ApiError> {
    sqlx::query("INSERT INTO plan_history (plan_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(plan_id)
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
