//! Background loops of the followup service: the patients feed consumer, the reminder planner
//! and the outbox dispatcher. Each may run on every replica at once.

use crate::DeliveryConfig;
use crate::patients::Patients;
use crate::store::Store;
use crate::store::deliveries::{Claimed, Outcome};
use crate::store::feed::{Effect, PATIENTS_FEED, discharge_plans};
use futures::StreamExt;
use hcrm_kit::ApiError;
use hcrm_kit::notify::{Message, Notifier, NotifyError, Recipient};
use hcrm_kit::server::Job;
use hcrm_proto::followup::Task;
use hcrm_proto::patients::{Interaction, InteractionKind};
use hcrm_proto::types::Event;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Sleeps `d` unless the process stops first; true when it stops.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// Follows the patients feed from this service's cursor: discharges create plans, exam results
/// queue notices, admissions are kept for readmission figures, a death or a do-not-contact
/// request stops the patient's plans. Reconnects with backoff.
pub fn feed_consumer(store: Store, patients: Patients) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            let mut failures = 0u32;
            loop {
                if *stop.borrow() {
                    return;
                }
                match consume(&store, &patients, &mut stop).await {
                    Ok(()) => failures = 0,
                    Err(err) => {
                        failures += 1;
                        // The patients service starting later is normal: quiet at first.
                        if failures > 3 {
                            tracing::warn!(error = %err, failures, "patients feed interrupted; reconnecting");
                        } else {
                            tracing::debug!(error = %err, "patients feed not reachable yet");
                        }
                    }
                }
                let delay = Duration::from_millis(200 * 2u64.pow(failures.min(5)));
                if pause(&mut stop, delay).await {
                    return;
                }
            }
        })
    })
}

async fn consume(store: &Store, patients: &Patients, stop: &mut watch::Receiver<bool>) -> Result<(), ApiError> {
    let cursor = store.cursor(PATIENTS_FEED).await?;
    let mut events = patients
        .watch(cursor, &["interaction.recorded", "patient.updated", "patient.deleted"])
        .await?;
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(event) = next else { return Ok(()) };
        let event = event.map_err(|s| ApiError::Unavailable(format!("patients feed: {}", s.message())))?;
        let effect = decide(store, patients, &event).await?;
        store.apply_event(PATIENTS_FEED, event.sequence, effect).await?;
    }
}

/// What an `interaction.recorded` event asks of this service.
async fn decide(store: &Store, patients: &Patients, event: &Event) -> Result<Effect, ApiError> {
    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap_or_default();
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let patient_id = text("patient").trim_start_matches("patients/").to_string();
    let interaction = text("interaction");
    let occur = chrono::DateTime::parse_from_rfc3339(&text("occur_time"))
        .map(|t| t.timestamp_micros())
        .unwrap_or_else(|_| store.now());
    if patient_id.is_empty() {
        return Ok(Effect::None);
    }
    if event.r#type == "patient.deleted" {
        return Ok(Effect::StopContact {
            patient_id,
            reason: "patient record deleted".into(),
        });
    }
    if event.r#type == "patient.updated" {
        // Staff updates name their fields; a re-import from the HIS does not, and may carry a
        // death or an opt-out too.
        let fields: Option<Vec<&str>> = payload
            .get("fields")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect());
        if fields.is_some_and(|f| {
            !f.iter()
                .any(|f| *f == "deceased" || f.starts_with("contact_preferences"))
        }) {
            return Ok(Effect::None);
        }
        return Ok(match patients.contact(&patient_id).await? {
            Some(c) if c.reachable() => Effect::None,
            Some(c) => Effect::StopContact {
                patient_id,
                reason: if c.deceased {
                    "patient deceased"
                } else {
                    "patient asked not to be contacted"
                }
                .into(),
            },
            None => Effect::None,
        });
    }
    let kind = text("kind");
    if kind
        == InteractionKind::Discharge
            .as_str_name()
            .trim_start_matches("INTERACTION_KIND_")
    {
        let templates = store.discharge_templates().await?;
        let diagnoses: Vec<String> = payload
            .get("diagnosis_codes")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let plans = discharge_plans(
            &templates,
            &patient_id,
            &text("department"),
            &diagnoses,
            occur,
            &interaction,
        );
        if plans.is_empty() {
            return Ok(Effect::None);
        }
        // A deceased or do-not-contact patient gets no plan; a deleted one neither.
        return Ok(match patients.contact(&patient_id).await? {
            Some(contact) if contact.reachable() => Effect::Plans(plans),
            _ => {
                tracing::info!(source = %interaction, "discharge of an unreachable patient: no follow-up plan");
                Effect::None
            }
        });
    }
    if kind == "EXAM_REPORT" {
        return Ok(Effect::ExamNotice {
            id: interaction.rsplit('/').next().unwrap_or_default().to_string(),
            patient_id,
            department: text("department"),
            result_at: occur,
            summary: "检查结果已出，请留意医院通知 / Your exam result is ready".into(),
        });
    }
    if kind == "ADMISSION" {
        return Ok(Effect::Admission {
            source: interaction,
            patient_id,
            at: occur,
        });
    }
    Ok(Effect::None)
}

/// Queues tomorrow's reminders, every `poll_ms` (set-based and idempotent: cheap to repeat).
pub fn reminder_planner(store: Store, poll_ms: u64) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            loop {
                match store.plan_reminders().await {
                    Ok(n) if n > 0 => tracing::info!(queued = n, "queued reminders for tomorrow"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "planning reminders failed"),
                }
                if pause(&mut stop, Duration::from_millis(poll_ms.max(100) * 10)).await {
                    return;
                }
            }
        })
    })
}

/// Rolls up the statistics of closed days that changed, every `poll_ms` × 10.
pub fn stats_rollup(store: Store, poll_ms: u64) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            loop {
                match store.roll_up_dirty().await {
                    Ok(n) if n > 0 => tracing::info!(days = n, "rolled up follow-up statistics"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "rolling up statistics failed"),
                }
                if pause(&mut stop, Duration::from_millis(poll_ms.max(100) * 10)).await {
                    return;
                }
            }
        })
    })
}

/// Sends what the outbox holds: claims a batch with a lease, attempts each delivery, settles it.
/// Several may run at once (one per replica, or more).
#[derive(Clone)]
pub struct Dispatcher {
    pub store: Store,
    pub patients: Patients,
    pub notifier: Arc<dyn Notifier>,
    pub cfg: DeliveryConfig,
    /// E-mail addresses of staff subjects and department pools.
    pub staff_email: Arc<BTreeMap<String, String>>,
    /// This claimant's name in the leases.
    pub owner: String,
}

/// The dispatcher as a background job: rounds back to back while there is work, then waits for
/// a wake-up or the poll interval.
pub fn dispatcher(d: Dispatcher) -> Job {
    Box::new(move |mut stop| {
        Box::pin(async move {
            loop {
                let sent = match d.once().await {
                    Ok(n) => n,
                    Err(err) => {
                        tracing::warn!(error = %err, "delivery round failed");
                        0
                    }
                };
                if sent > 0 {
                    continue;
                }
                tokio::select! {
                    _ = d.store.outbox.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(d.cfg.poll_ms)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    })
}

impl Dispatcher {
    /// One round: claim a batch, then send it `concurrency` at a time, settling each group in
    /// one transaction (a replica that dies mid-batch has at most one group's sends unrecorded).
    /// Returns how many were claimed.
    pub async fn once(&self) -> Result<usize, ApiError> {
        let lease = self.cfg.lease_secs * 1_000_000;
        let claimed_at = self.store.now();
        let claimed = self.store.claim(&self.owner, lease, self.cfg.batch).await?;
        for group in claimed.chunks(self.cfg.concurrency.max(1)) {
            let about_tasks: Vec<&str> = group
                .iter()
                .filter(|d| d.kind == "followup.reminder" || d.kind == "followup.patient_notice")
                .map(|d| d.reference.as_str())
                .collect();
            let tasks = self.store.tasks_by_id(&about_tasks).await?;
            let outcomes = futures::future::join_all(group.iter().map(|d| async {
                // Past half the lease, start nothing new: the rest goes back to the queue before
                // another replica could take it over mid-send.
                if self.store.now() > claimed_at + lease / 2 {
                    return Outcome::Postponed(self.store.now());
                }
                let outcome = self.attempt(d, &tasks).await;
                if let Outcome::Failed { error, .. } = &outcome {
                    tracing::warn!(delivery = %d.id, kind = %d.kind, attempts = d.attempts, error = %error, "delivery failed");
                }
                outcome
            }))
            .await;
            let settled: Vec<(&Claimed, Outcome)> = group.iter().zip(outcomes).collect();
            let lost = self
                .store
                .settle(&self.owner, &settled, self.cfg.max_attempts, self.cfg.backoff_ms)
                .await?;
            if lost > 0 {
                tracing::warn!(
                    lost,
                    "leases lost before settling; another replica owns those deliveries"
                );
            }
        }
        Ok(claimed.len())
    }

    /// One attempt at one delivery; `tasks` holds the tasks reminders and notices are about.
    async fn attempt(&self, d: &Claimed, tasks: &HashMap<String, Task>) -> Outcome {
        match d.kind.as_str() {
            "patients.timeline" => timeline(&self.patients, d).await,
            "followup.reminder" => match task_for(d, tasks) {
                Ok(task) => self.send(&self.reminder_message(d, task)).await,
                Err(reason) => Outcome::Skipped(reason),
            },
            "followup.patient_notice" | "followup.exam_notice" => self.patient_notice(d, tasks).await,
            _ => {
                let message = Message {
                    idempotency_key: d.id.clone(),
                    kind: d.kind.clone(),
                    recipient: self.staff(&d.recipient),
                    subject: "随访提醒 / follow-up alert".into(),
                    body: d.message.clone(),
                    payload: serde_json::from_str(&d.message).unwrap_or_default(),
                };
                self.send(&message).await
            }
        }
    }

    fn staff(&self, subject: &str) -> Recipient {
        Recipient {
            id: subject.to_string(),
            email: self.staff_email.get(subject).cloned(),
            phone: None,
        }
    }

    async fn send(&self, message: &Message) -> Outcome {
        if self.notifier.name() == "smtp" && message.recipient.email.is_none() {
            return Outcome::Skipped(format!("no e-mail address for {}", message.recipient.id));
        }
        match self.notifier.send(message).await {
            Ok(()) => Outcome::Delivered,
            Err(NotifyError::Transient(e)) => Outcome::Failed {
                error: e,
                transient: true,
            },
            Err(NotifyError::Permanent(e)) => Outcome::Failed {
                error: e,
                transient: false,
            },
        }
    }

    /// The reminder to a task's assignee (as assigned now).
    fn reminder_message(&self, d: &Claimed, task: &Task) -> Message {
        let due = task.due_date.unwrap_or_default();
        Message {
            idempotency_key: d.id.clone(),
            kind: d.kind.clone(),
            recipient: self.staff(&task.assignee),
            subject: format!(
                "明日随访提醒 / follow-up due {}-{:02}-{:02}",
                due.year, due.month, due.day
            ),
            body: format!(
                "任务 {} 明天到期（{}）。Task {} is due tomorrow.",
                task.name, task.purpose, task.name
            ),
            payload: serde_json::json!({
                "task": task.name,
                "plan": task.plan,
                "patient": task.patient,
                "department": task.department,
                "due_date": format!("{}-{:02}-{:02}", due.year, due.month, due.day),
                "purpose": task.purpose,
            }),
        }
    }

    /// A notice to a patient: only if they may be contacted, through a channel they accept and
    /// the notifier reaches, outside their quiet hours.
    async fn patient_notice(&self, d: &Claimed, tasks: &HashMap<String, Task>) -> Outcome {
        let patient_id = d.recipient.trim_start_matches("patients/");
        let contact = match self.patients.contact(patient_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Outcome::Skipped("the patient no longer exists".into()),
            Err(err) => return failed(err),
        };
        if !contact.reachable() {
            return Outcome::Skipped("the patient may not be contacted".into());
        }
        use hcrm_proto::types::ContactChannel;
        let accepts = |c: ContactChannel| contact.allowed_channels.contains(&c);
        let email = contact.email.clone().filter(|_| accepts(ContactChannel::Email));
        let phone = contact
            .phone
            .clone()
            .filter(|_| accepts(ContactChannel::Sms) || accepts(ContactChannel::Phone));
        let reachable = match self.notifier.name() {
            "smtp" => email.is_some(),
            _ => email.is_some() || phone.is_some(),
        };
        if !reachable {
            return Outcome::Skipped("no channel the patient accepts that this notifier reaches".into());
        }
        if let Some((start, end)) = contact.quiet_hours {
            let now = self.store.now();
            let allowed = crate::domain::calendar::outside_quiet_hours(&self.store.cal, now, start, end);
            if allowed > now {
                return Outcome::Postponed(allowed);
            }
        }
        let (subject, body) = if d.kind == "followup.exam_notice" {
            let v: serde_json::Value = serde_json::from_str(&d.message).unwrap_or_default();
            (
                "检查结果通知 / exam result".to_string(),
                v.get("summary")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_string(),
            )
        } else {
            match task_for(d, tasks) {
                Ok(task) => {
                    let due = task.due_date.unwrap_or_default();
                    (
                        "复查提醒 / re-check reminder".to_string(),
                        format!(
                            "您的复查安排在 {}-{:02}-{:02}：{}",
                            due.year, due.month, due.day, task.purpose
                        ),
                    )
                }
                Err(reason) => return Outcome::Skipped(reason),
            }
        };
        let message = Message {
            idempotency_key: d.id.clone(),
            kind: d.kind.clone(),
            recipient: Recipient {
                id: d.recipient.clone(),
                email,
                phone,
            },
            subject,
            body,
            payload: serde_json::json!({ "reference": d.reference }),
        };
        self.send(&message).await
    }
}

/// The open task a reminder or notice is about, as it is now; `Err(reason)` when the delivery
/// no longer applies (the task closed, or moved to another day: the new day has its own).
fn task_for<'a>(d: &Claimed, tasks: &'a HashMap<String, Task>) -> Result<&'a Task, String> {
    use hcrm_proto::followup::TaskStatus;
    let task = tasks.get(&d.reference).ok_or("the task no longer exists")?;
    if !matches!(
        TaskStatus::try_from(task.status),
        Ok(TaskStatus::Pending | TaskStatus::Due)
    ) {
        return Err("the task is no longer open".into());
    }
    let due = task.due_date.and_then(|d| crate::domain::calendar::from_date(&d));
    let day = d.id.rsplit('-').next().and_then(|s| s.parse::<i32>().ok());
    if due.is_none() || due != day {
        return Err("the task was rescheduled".into());
    }
    Ok(task)
}

fn failed(err: ApiError) -> Outcome {
    let transient = !matches!(err, ApiError::InvalidArgument(_) | ApiError::PermissionDenied(_));
    Outcome::Failed {
        error: err.to_string(),
        transient,
    }
}

async fn timeline(patients: &Patients, d: &Claimed) -> Outcome {
    let v: serde_json::Value = serde_json::from_str(&d.message).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let occur = chrono::DateTime::parse_from_rfc3339(&text("occur_time"))
        .map(|t| hcrm_kit::time::to_timestamp(t.timestamp_micros()))
        .ok();
    let interaction = Interaction {
        kind: InteractionKind::FollowUp as i32,
        department: text("department"),
        occur_time: occur,
        summary: text("summary"),
        source_system: text("source_system"),
        external_id: text("external_id"),
        details_json: v.get("details").map(|x| x.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    let patient_id = d.recipient.trim_start_matches("patients/");
    match patients.record_timeline(patient_id, interaction).await {
        Ok(()) => Outcome::Delivered,
        Err(ApiError::NotFound { .. }) => Outcome::Skipped("the patient no longer exists".into()),
        Err(err) => failed(err),
    }
}
