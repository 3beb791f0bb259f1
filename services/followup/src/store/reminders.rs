//! Tomorrow's reminders, queued straight into the outbox (`deliveries`, see
//! [`hcrm_kit::outbox`]) by one set-based statement per kind.

use super::Store;
use hcrm_kit::ApiError;

impl Store {
    /// Queues tomorrow's reminders: one per open task due tomorrow to its assignee, and a notice
    /// to the patient where the step asks for one. Set-based and idempotent: any replica may run
    /// it any number of times. Returns how many were new.
    pub async fn plan_reminders(&self) -> Result<u64, ApiError> {
        let now = self.now();
        let today = self.today();
        let tomorrow = (today + 1) as i64;
        // Not before the working day starts: nobody gets a reminder at midnight.
        let send_at = now.max(self.cal.start_of(today) + self.send_from_hour as i64 * 3_600_000_000);
        let mut tx = self.db.begin_write().await?;
        let staff = sqlx::query(
            "INSERT INTO deliveries (id, kind, recipient, department, ref, message, state, attempts, next_attempt_at, \
             lease_owner, lease_until, last_error, source_at, delivered_at, created_at) \
             SELECT 'reminder-' || id || '-' || CAST(due_day AS TEXT), 'followup.reminder', assignee, department, id, '', \
             'pending', 0, $3, '', 0, '', NULL, NULL, $1 \
             FROM tasks WHERE state = 'open' AND due_day = $2 \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .bind(tomorrow)
        .bind(send_at)
        .execute(&mut *tx)
        .await?;
        let patients = sqlx::query(
            "INSERT INTO deliveries (id, kind, recipient, department, ref, message, state, attempts, next_attempt_at, \
             lease_owner, lease_until, last_error, source_at, delivered_at, created_at) \
             SELECT 'notice-' || id || '-' || CAST(due_day AS TEXT), 'followup.patient_notice', 'patients/' || patient_id, \
             department, id, '', 'pending', 0, $3, '', 0, '', NULL, NULL, $1 \
             FROM tasks WHERE state = 'open' AND due_day = $2 AND notify_patient = 1 \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .bind(tomorrow)
        .bind(send_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let queued = staff.rows_affected() + patients.rows_affected();
        if queued > 0 {
            self.outbox.wake();
        }
        Ok(queued)
    }
}
