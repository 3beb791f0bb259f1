//! Who may do what in the feedback service: the one table of this service's permissions.
//!
//! Clinicians and department heads hold their grants for their own department only; a case of
//! another department answers NOT_FOUND. The gateway calls the patients' pages with its
//! integration identity: the invitation token, not a staff login, decides whose answer it is.

use hcrm_kit::auth::{PermissionTable, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    CaseRead,
    /// Open a case.
    CaseCreate,
    /// Move a case along its workflow, hand it over, link duplicates.
    CaseWork,
    TaxonomyRead,
    SurveyRead,
    /// Create, edit and publish questionnaires.
    SurveyDesign,
    /// Send invitations.
    Invite,
    /// Open an invitation and submit its answers (the patients' page).
    Answer,
    /// Record a counter rating (kiosks, the counter).
    CounterRate,
    ReportRead,
    EventsWatch,
}

use Perm::*;

pub static PERMISSIONS: PermissionTable<Perm> = PermissionTable {
    grants: &[
        (
            Role::Admin,
            &[
                CaseRead,
                CaseCreate,
                CaseWork,
                TaxonomyRead,
                SurveyRead,
                SurveyDesign,
                Invite,
                Answer,
                CounterRate,
                ReportRead,
                EventsWatch,
            ],
        ),
        // The inspection group runs complaints and surveys for the whole hospital.
        (
            Role::Inspector,
            &[
                CaseRead,
                CaseCreate,
                CaseWork,
                TaxonomyRead,
                SurveyRead,
                SurveyDesign,
                Invite,
                Answer,
                CounterRate,
                ReportRead,
            ],
        ),
        // Guides take complaints at the counter and on the hotline.
        (
            Role::Guide,
            &[CaseRead, CaseCreate, TaxonomyRead, SurveyRead, Answer, CounterRate],
        ),
        (Role::Clinician, &[CaseRead, CaseCreate, TaxonomyRead]),
        // Department heads investigate and fix their department's cases.
        (
            Role::DepartmentHead,
            &[CaseRead, CaseWork, TaxonomyRead, SurveyRead, ReportRead],
        ),
        // The opinion group escalates online posts into cases.
        (Role::OpinionAnalyst, &[CaseRead, CaseCreate, TaxonomyRead]),
        (Role::Auditor, &[CaseRead, TaxonomyRead, SurveyRead, ReportRead]),
        (
            Role::Integration,
            &[CaseCreate, TaxonomyRead, Answer, CounterRate, EventsWatch],
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_inspection_group_and_admins_design_surveys() {
        let designers: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| PERMISSIONS.grants(*r, SurveyDesign))
            .collect();
        assert_eq!(designers, vec![Role::Admin, Role::Inspector]);
        assert!(
            !PERMISSIONS.grants(Role::Integration, CaseRead),
            "the gateway reads no cases"
        );
    }
}
