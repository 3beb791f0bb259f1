//! Who may do what in the followup service: the one table of this service's permissions.
//!
//! Clinicians and department heads hold their grants for their own department only; a plan or
//! task of another department answers NOT_FOUND.

use hcrm_kit::auth::{PermissionTable, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    TemplateRead,
    TemplateWrite,
    PlanRead,
    /// Create and cancel plans.
    PlanWrite,
    TaskRead,
    /// Reschedule, reassign, cancel tasks.
    TaskWrite,
    /// Record a follow-up.
    Record,
    /// Push chronic-disease readings.
    ReadingsWrite,
    StatsRead,
    DeliveriesRead,
    EventsWatch,
}

use Perm::*;

pub static PERMISSIONS: PermissionTable<Perm> = PermissionTable {
    grants: &[
        (
            Role::Admin,
            &[
                TemplateRead,
                TemplateWrite,
                PlanRead,
                PlanWrite,
                TaskRead,
                TaskWrite,
                Record,
                ReadingsWrite,
                StatsRead,
                DeliveriesRead,
                EventsWatch,
            ],
        ),
        // The inspection group runs follow-ups for the whole hospital.
        (
            Role::Inspector,
            &[
                TemplateRead,
                TemplateWrite,
                PlanRead,
                PlanWrite,
                TaskRead,
                TaskWrite,
                Record,
                StatsRead,
                DeliveriesRead,
            ],
        ),
        (
            Role::Clinician,
            &[
                TemplateRead,
                PlanRead,
                PlanWrite,
                TaskRead,
                TaskWrite,
                Record,
                ReadingsWrite,
                StatsRead,
            ],
        ),
        (
            Role::DepartmentHead,
            &[TemplateRead, PlanRead, TaskRead, TaskWrite, StatsRead],
        ),
        (Role::Guide, &[TemplateRead, PlanRead, TaskRead]),
        (Role::Auditor, &[StatsRead, DeliveriesRead]),
        (Role::Integration, &[TemplateRead, PlanRead, ReadingsWrite, EventsWatch]),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_staff_who_call_patients_record_follow_ups() {
        let recorders: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| PERMISSIONS.grants(*r, Record))
            .collect();
        assert_eq!(recorders, vec![Role::Admin, Role::Inspector, Role::Clinician]);
        assert!(!PERMISSIONS.grants(Role::OpinionAnalyst, PlanRead));
    }
}
