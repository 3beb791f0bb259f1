//! Who may do what in the opinion service: the one table of this service's permissions.
//!
//! The public-opinion group runs the service. Crawlers and partners push posts with an
//! integration identity; the other services call `AnalyzeText` the same way.

use hcrm_kit::auth::{PermissionTable, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Read the watch list, sources and alert rules.
    WatchRead,
    /// Edit the watch list, sources and alert rules; poll a source now.
    WatchManage,
    /// Push posts (IngestMentions).
    Ingest,
    MentionRead,
    Analyze,
    AlertRead,
    /// Open and work incidents, draft replies, escalate to feedback.
    IncidentWork,
    /// Approve another person's drafted public reply.
    ReplyApprove,
    ReputationRead,
    EventsWatch,
}

use Perm::*;

pub static PERMISSIONS: PermissionTable<Perm> = PermissionTable {
    grants: &[
        (
            Role::Admin,
            &[
                WatchRead,
                WatchManage,
                Ingest,
                MentionRead,
                Analyze,
                AlertRead,
                IncidentWork,
                ReplyApprove,
                ReputationRead,
                EventsWatch,
            ],
        ),
        (
            Role::OpinionAnalyst,
            &[
                WatchRead,
                WatchManage,
                MentionRead,
                Analyze,
                AlertRead,
                IncidentWork,
                ReplyApprove,
                ReputationRead,
            ],
        ),
        // The inspection group sees what is said online about the cases it works.
        (
            Role::Inspector,
            &[WatchRead, MentionRead, Analyze, AlertRead, ReputationRead],
        ),
        (Role::DepartmentHead, &[MentionRead, ReputationRead]),
        (Role::Auditor, &[WatchRead, MentionRead, AlertRead, ReputationRead]),
        (Role::Integration, &[Ingest, Analyze, EventsWatch]),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_analysts_and_admins_approve_replies_and_crawlers_only_push() {
        let approvers: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| PERMISSIONS.grants(*r, ReplyApprove))
            .collect();
        assert_eq!(approvers, vec![Role::Admin, Role::OpinionAnalyst]);
        assert!(!PERMISSIONS.grants(Role::Integration, MentionRead));
        assert!(!PERMISSIONS.grants(Role::Guide, Ingest));
    }
}
