//! What followup's outbox holds and how each kind is sent: reminders to staff, notices to
//! patients (within their consent and quiet hours), alerts, timeline entries, and appointment
//! wishes handed to the patients service.

use crate::store::Store;
use futures::future::BoxFuture;
use hcrm_kit::ApiError;
use hcrm_kit::notify::{Message, Notifier, Recipient};
use hcrm_kit::outbox::{Claimed, Deadline, Outcome, Sender};
use hcrm_kit::peers::patients::Patients;
use hcrm_kit::time::to_timestamp;
use hcrm_proto::followup::Task;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Followup's [`Sender`] for `hcrm_kit::outbox::dispatcher`.
#[derive(Clone)]
pub struct FollowupSender {
    pub store: Store,
    pub patients: Patients,
    pub notifier: Arc<dyn Notifier>,
    /// E-mail addresses of staff subjects and department pools.
    pub staff_email: Arc<BTreeMap<String, String>>,
}

impl Sender for FollowupSender {
    fn attempt_group<'a>(
        &'a self,
        group: &'a [Claimed],
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ApiError>> {
        Box::pin(async move {
            // The tasks reminders and notices are about, as they are now: one query per group.
            let about_tasks: Vec<&str> = group
                .iter()
                .filter(|d| d.kind == "followup.reminder" || d.kind == "followup.patient_notice")
                .map(|d| d.reference.as_str())
                .collect();
            let tasks = self.store.tasks_by_id(&about_tasks).await?;
            Ok(deadline.each(group, |d| self.attempt(d, &tasks)).await)
        })
    }
}

impl FollowupSender {
    /// One attempt at one delivery; `tasks` holds the tasks reminders and notices are about.
    async fn attempt(&self, d: &Claimed, tasks: &HashMap<String, Task>) -> Outcome {
        match d.kind.as_str() {
            "patients.timeline" => self.patients.deliver_timeline(d).await,
            "patients.appointment" => self.appointment(d).await,
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

    /// Hands an appointment wish to the patients service (`RequestAppointment`), which books it
    /// at the hospital's booking platform. The request id queued with it (made from the
    /// follow-up's id) makes every retry the same request; the request's name is then written
    /// on the record. A refusal (a bad wish, a patient who died or is gone) is not retried.
    async fn appointment(&self, d: &Claimed) -> Outcome {
        use crate::domain::appointment::window;
        use hcrm_proto::patients::{AppointmentKind, AppointmentRequest};
        let v: serde_json::Value = serde_json::from_str(&d.message).unwrap_or_default();
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        let day = |k: &str| v.get(k).and_then(|x| x.as_i64()).map(|d| d as i32);
        let kind = match text("kind").as_str() {
            "revisit" => AppointmentKind::Revisit,
            "expert" => AppointmentKind::Expert,
            other => {
                return Outcome::Failed {
                    error: format!("unknown appointment kind {other:?}"),
                    transient: false,
                };
            }
        };
        let (start, end) = window(
            &self.store.cal,
            day("earliest_day"),
            day("latest_day"),
            self.store.now(),
        );
        let request = AppointmentRequest {
            patient: d.recipient.clone(),
            kind: kind as i32,
            department: text("department"),
            doctor: text("doctor"),
            window_start_time: start.map(to_timestamp),
            window_end_time: end.map(to_timestamp),
            reason: text("reason"),
            source: text("source"),
            ..Default::default()
        };
        let made = match self.patients.request_appointment(request, &text("request_id")).await {
            Ok(made) => made,
            Err(ApiError::NotFound { .. }) => return Outcome::Skipped("the patient no longer exists".into()),
            Err(ApiError::FailedPrecondition(reason)) => return Outcome::Skipped(reason),
            Err(err) => return Outcome::failed(err),
        };
        match self.store.set_appointment_request(&d.reference, &made.name).await {
            Ok(()) => Outcome::Delivered,
            Err(err) => Outcome::failed(err),
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
        hcrm_kit::outbox::send_via(self.notifier.as_ref(), message).await
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
            Err(err) => return Outcome::failed(err),
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
