//! Recomputing grades: every `grading_poll_ms` the patients whose timeline changed (marked
//! dirty when an interaction is recorded, imported or merged), and once a local day, from
//! `grading_hour`, the nightly pass over every patient in id-ordered batches. Both run under one
//! lease in `grade_pass` so a single replica grades at a time; the nightly pass saves its
//! position after every batch, so a replica that dies mid-pass is followed by another that
//! continues where it stopped.
//!
//! Dirty marking plus a short-interval job rather than grading inline: recording stays one
//! cheap upsert per entry (bulk imports and the other writers of the timeline do not pay for
//! rule evaluation or contend on grade rows), and both paths share one batch evaluator.

use crate::store::Store;
use crate::store::grades::{PassCounts, PassState};
use chrono::{Timelike, Utc};
use hcrm_kit::ApiError;
use hcrm_kit::clock::Clock;
use hcrm_kit::server::{Job, periodic};
use std::sync::Arc;
use std::time::Duration;

/// How long a lease lasts without renewal (renewed after every batch).
const LEASE_MICROS: i64 = 120 * 1_000_000;
/// Dirty batches per turn before the nightly check (the rest waits for the next turn).
const DIRTY_BATCHES_PER_TURN: usize = 20;

/// Grades patients; shared by the job and `RecomputeGrades`.
#[derive(Clone)]
pub struct Grader {
    pub store: Store,
    pub clock: Clock,
    /// Local hour from which the nightly pass runs.
    pub hour: u32,
    pub batch: usize,
    pub utc_offset_minutes: i32,
    /// This replica's lease owner id.
    pub owner: String,
    /// One grading turn at a time in this process.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Grader {
    pub fn new(store: Store, clock: Clock, hour: u32, batch: usize, utc_offset_minutes: i32) -> Self {
        Self {
            store,
            clock,
            hour,
            batch,
            utc_offset_minutes,
            owner: hcrm_kit::new_id(),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Local date and time now.
    pub fn local_now(&self) -> chrono::NaiveDateTime {
        let now = self.clock.now() + i64::from(self.utc_offset_minutes) * 60 * 1_000_000;
        chrono::DateTime::<Utc>::from_timestamp_micros(now)
            .unwrap_or_default()
            .naive_utc()
    }

    async fn renew(&self) -> Result<bool, ApiError> {
        let now = self.clock.now();
        self.store
            .claim_grading_lease(&self.owner, now, now + LEASE_MICROS)
            .await
    }

    /// One turn of the job: dirty patients, then the nightly pass when due. Returns how many
    /// grades were written.
    pub async fn tick(&self) -> Result<u64, ApiError> {
        let _turn = self.lock.lock().await;
        if !self.renew().await? {
            return Ok(0);
        }
        let result = self.tick_held().await;
        self.store.release_grading_lease(&self.owner).await?;
        result
    }

    async fn tick_held(&self) -> Result<u64, ApiError> {
        let rules = self.store.grading_rules(0).await?;
        let mut written = 0u64;
        for _ in 0..DIRTY_BATCHES_PER_TURN {
            let counts = self.store.grade_dirty(&rules, self.batch, self.clock.now()).await?;
            if counts.evaluated == 0 {
                break;
            }
            written += counts.updated as u64;
            if !self.renew().await? {
                return Ok(written);
            }
        }
        let local = self.local_now();
        let today = local.date().format("%Y-%m-%d").to_string();
        let state = self.store.pass_state().await?;
        let (mut state, mut fresh) = if !state.finished {
            (state, false)
        } else if state.pass_day != today && local.hour() >= self.hour {
            let fresh = PassState {
                pass_day: today,
                last_id: None,
                finished: false,
            };
            (fresh, true)
        } else {
            return Ok(written);
        };
        tracing::info!(day = %state.pass_day, resume = state.last_id.is_some(), "nightly grade pass");
        loop {
            let (counts, last) = self
                .store
                .grade_batch(&rules, state.last_id.as_deref(), self.batch, self.clock.now())
                .await?;
            written += counts.updated as u64;
            state.finished = last.is_none();
            state.last_id = last;
            if !self.renew().await? {
                return Ok(written);
            }
            self.store.save_pass(&self.owner, &state, counts, fresh).await?;
            fresh = false;
            if state.finished {
                return Ok(written);
            }
        }
    }

    /// Runs the whole pass now (RecomputeGrades): FAILED_PRECONDITION while another replica
    /// holds the lease. Returns the counts and the rule version applied.
    pub async fn recompute_all(&self) -> Result<(PassCounts, i32), ApiError> {
        let _turn = self.lock.lock().await;
        if !self.renew().await? {
            return Err(ApiError::FailedPrecondition(
                "another replica is grading now; retry in a few minutes".into(),
            ));
        }
        let result = async {
            let rules = self.store.grading_rules(0).await?;
            let mut total = PassCounts::default();
            let mut after: Option<String> = None;
            loop {
                let (counts, last) = self
                    .store
                    .grade_batch(&rules, after.as_deref(), self.batch, self.clock.now())
                    .await?;
                total += counts;
                if !self.renew().await? {
                    return Err(ApiError::Aborted("the grading lease was lost; retry".into()));
                }
                match last {
                    Some(last) => after = Some(last),
                    None => return Ok((total, rules.version)),
                }
            }
        }
        .await;
        self.store.release_grading_lease(&self.owner).await?;
        result
    }
}

/// The grading job.
pub fn job(grader: Grader, poll_ms: u64) -> Job {
    periodic("grading", Duration::from_millis(poll_ms.max(10)), move || {
        let grader = grader.clone();
        async move { grader.tick().await }
    })
}
