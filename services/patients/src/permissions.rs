//! Who may do what in the patients service: the one table of this service's permissions.
//!
//! Clinicians and department heads hold their grants for their own department only (the kit's
//! `Scope`); a record outside it answers NOT_FOUND so its existence does not leak.

use hcrm_kit::auth::{PermissionTable, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Read patients, masked.
    PatientRead,
    /// Read identity number, bank card, insurance number and medical history in clear (audited).
    PatientReadProtected,
    PatientCreate,
    PatientUpdate,
    PatientDelete,
    PatientMerge,
    /// Bulk intake of patients and interactions.
    Import,
    RelatedRead,
    RelatedWrite,
    InteractionRead,
    InteractionRecord,
    OrganizationRead,
    OrganizationWrite,
    AuditRead,
    /// Read the event feed (other services, integrations).
    EventsWatch,
}

use Perm::*;

pub static PERMISSIONS: PermissionTable<Perm> = PermissionTable {
    grants: &[
        (
            Role::Admin,
            &[
                PatientRead,
                PatientReadProtected,
                PatientCreate,
                PatientUpdate,
                PatientDelete,
                PatientMerge,
                Import,
                RelatedRead,
                RelatedWrite,
                InteractionRead,
                InteractionRecord,
                OrganizationRead,
                OrganizationWrite,
                AuditRead,
                EventsWatch,
            ],
        ),
        (
            Role::Guide,
            &[
                PatientRead,
                PatientReadProtected,
                PatientCreate,
                PatientUpdate,
                PatientDelete,
                PatientMerge,
                RelatedRead,
                RelatedWrite,
                InteractionRead,
                InteractionRecord,
                OrganizationRead,
                OrganizationWrite,
            ],
        ),
        (
            Role::Inspector,
            &[
                PatientRead,
                RelatedRead,
                InteractionRead,
                InteractionRecord,
                OrganizationRead,
            ],
        ),
        (Role::OpinionAnalyst, &[PatientRead, OrganizationRead]),
        (
            Role::Clinician,
            &[
                PatientRead,
                PatientReadProtected,
                PatientUpdate,
                RelatedRead,
                InteractionRead,
                InteractionRecord,
            ],
        ),
        (Role::DepartmentHead, &[PatientRead, RelatedRead, InteractionRead]),
        (Role::Auditor, &[AuditRead, PatientRead]),
        (
            Role::Integration,
            &[
                PatientRead,
                PatientCreate,
                PatientUpdate,
                Import,
                RelatedRead,
                RelatedWrite,
                InteractionRead,
                InteractionRecord,
                OrganizationRead,
                EventsWatch,
            ],
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_roles_see_protected_data_or_the_audit_log() {
        let protected: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| PERMISSIONS.grants(*r, PatientReadProtected))
            .collect();
        assert_eq!(protected, vec![Role::Admin, Role::Guide, Role::Clinician]);
        let audit: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| PERMISSIONS.grants(*r, AuditRead))
            .collect();
        assert_eq!(audit, vec![Role::Admin, Role::Auditor]);
    }
}
