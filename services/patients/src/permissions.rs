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
    /// Read the department and doctor directory and clinic schedules.
    DirectoryRead,
    /// Edit the directory and run the HIS directory import.
    DirectoryWrite,
    /// Read consultations and their statistics.
    ConsultationRead,
    /// Log consultations (hotline, counter).
    ConsultationWrite,
    /// Read service requests, their worklists and statistics.
    ServiceRequestRead,
    /// Create, take on, complete and cancel service requests.
    ServiceRequestWrite,
    /// Request an appointment at the booking platform for a patient.
    AppointmentRequest,
    /// Record the booking platform's answer to an appointment request.
    AppointmentConfirm,
    /// Read saved segments, count them and list their members.
    SegmentRead,
    /// Save, change and delete segments.
    SegmentWrite,
    /// Read computed grades, their reasons and history, and the grading rules.
    GradeRead,
    /// Publish a new version of the grading rules and run a recomputation.
    GradeRulesWrite,
    /// Read referrals (who introduced whom) and their counts.
    ReferralRead,
    /// Record and remove referrals.
    ReferralWrite,
    /// Export patients as FHIR R4.
    FhirExport,
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
                DirectoryRead,
                DirectoryWrite,
                ConsultationRead,
                ConsultationWrite,
                ServiceRequestRead,
                ServiceRequestWrite,
                AppointmentRequest,
                AppointmentConfirm,
                SegmentRead,
                SegmentWrite,
                GradeRead,
                GradeRulesWrite,
                ReferralRead,
                ReferralWrite,
                FhirExport,
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
                DirectoryRead,
                DirectoryWrite,
                ConsultationRead,
                ConsultationWrite,
                ServiceRequestRead,
                ServiceRequestWrite,
                AppointmentRequest,
                SegmentRead,
                SegmentWrite,
                GradeRead,
                ReferralRead,
                ReferralWrite,
                FhirExport,
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
                DirectoryRead,
                ConsultationRead,
                ServiceRequestRead,
                AppointmentRequest,
                SegmentRead,
                GradeRead,
                ReferralRead,
            ],
        ),
        (Role::OpinionAnalyst, &[PatientRead, OrganizationRead, DirectoryRead]),
        (
            Role::Clinician,
            &[
                PatientRead,
                PatientReadProtected,
                PatientUpdate,
                RelatedRead,
                InteractionRead,
                InteractionRecord,
                DirectoryRead,
                ServiceRequestRead,
                AppointmentRequest,
                GradeRead,
            ],
        ),
        (
            Role::DepartmentHead,
            &[
                PatientRead,
                RelatedRead,
                InteractionRead,
                DirectoryRead,
                ConsultationRead,
                ServiceRequestRead,
                GradeRead,
            ],
        ),
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
                DirectoryRead,
                DirectoryWrite,
                ServiceRequestRead,
                AppointmentRequest,
                AppointmentConfirm,
                SegmentRead,
                GradeRead,
                FhirExport,
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

    #[test]
    fn staff_and_service_callers_request_appointments_and_only_the_platform_answers() {
        let request: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| PERMISSIONS.grants(*r, AppointmentRequest))
            .collect();
        // Integration: other services (followup books the revisits its calls ask for).
        assert_eq!(
            request,
            vec![
                Role::Admin,
                Role::Guide,
                Role::Inspector,
                Role::Clinician,
                Role::Integration
            ]
        );
        let confirm: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| PERMISSIONS.grants(*r, AppointmentConfirm))
            .collect();
        assert_eq!(confirm, vec![Role::Admin, Role::Integration]);
    }
}
