//! The only place with SQL. One implementation serves SQLite and PostgreSQL (`$n` placeholders,
//! integers for times and months, text and bytes); dialect differences are chosen by
//! [`Backend`].

pub mod cases;
pub mod escalation;
pub mod feed;
pub mod invitations;
pub mod questionnaires;
pub mod reports;
pub mod responses;

use crate::domain::sla::SlaTable;
use crate::domain::taxonomy::Category;
use crate::domain::workdays::WorkCalendar;
use hcrm_kit::ApiError;
use hcrm_kit::clock::Clock;
use hcrm_kit::db::{Backend, Db, Tx};
use hcrm_kit::feed::Ledger;
use hcrm_kit::outbox::Outbox;
use std::sync::Arc;

pub use hcrm_kit::resource::{check_etag, decode, etag, parse_name};

/// What the store needs from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub sla: SlaTable,
    pub warn_before_micros: i64,
    pub escalate_again_days: u32,
    pub duplicate_window_micros: i64,
    pub case_threshold: i32,
    pub invitation_days: i32,
    pub remind_after_micros: i64,
    pub survey_base_url: String,
    pub intake_owner: String,
    pub director: String,
    pub min_group_size: i64,
    pub categories: Vec<Category>,
    pub department_heads: std::collections::BTreeMap<String, String>,
    /// Whether free-text answers are sent to the opinion service for their sentiment.
    pub analyze_comments: bool,
}

#[derive(Clone)]
pub struct Store {
    pub db: Db,
    pub ledger: Ledger,
    pub outbox: Outbox,
    pub cal: WorkCalendar,
    pub clock: Clock,
    pub rules: Arc<Rules>,
    /// Derives invitation tokens from their ids (the token itself is never stored).
    token_key: [u8; 32],
    /// Seals complainants' contact details.
    pub sealer: hcrm_kit::crypto::Sealer,
}

impl Store {
    pub fn new(
        db: Db,
        cfg: &crate::Config,
        clock: Clock,
        token_key: [u8; 32],
        sealer: hcrm_kit::crypto::Sealer,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            ledger: Ledger::new(db.clone()),
            outbox: Outbox::new(db.clone(), clock.clone()),
            db,
            cal: cfg.calendar()?,
            clock,
            rules: Arc::new(Rules {
                sla: cfg.sla.clone(),
                warn_before_micros: cfg.warn_before_hours * 3_600_000_000,
                escalate_again_days: cfg.escalate_again_days,
                duplicate_window_micros: cfg.duplicate_window_days * 86_400_000_000,
                case_threshold: cfg.case_threshold,
                invitation_days: cfg.invitation_days,
                remind_after_micros: cfg.remind_after_days as i64 * 86_400_000_000,
                survey_base_url: cfg.survey_base_url.clone(),
                intake_owner: cfg.intake_owner.clone(),
                director: cfg.director.clone(),
                min_group_size: cfg.min_group_size,
                categories: cfg.categories.clone(),
                department_heads: cfg.department_heads.clone(),
                analyze_comments: cfg.opinion_url.as_deref() != Some(""),
            }),
            token_key,
            sealer,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
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
    /// `Some(existing)` when an earlier call with the key made `existing`.
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

    /// Who is told when a department's case misses a deadline.
    pub fn department_head(&self, department: &str) -> String {
        self.rules
            .department_heads
            .get(department)
            .cloned()
            .unwrap_or_else(|| format!("department-head:{department}"))
    }
}
