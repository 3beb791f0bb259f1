//! The incident workflow: OPEN → ACKNOWLEDGED → RESPONDING → RESOLVED, and REOPEN from
//! RESOLVED back to RESPONDING. One table decides what is allowed.

use hcrm_proto::opinion::{IncidentAction, IncidentState};

use IncidentAction as A;
use IncidentState as S;

/// The state `action` leads to from `state`, if it is allowed.
pub fn next(state: S, action: A) -> Option<S> {
    match (state, action) {
        (S::Open, A::Acknowledge) => Some(S::Acknowledged),
        (S::Open | S::Acknowledged, A::Respond) => Some(S::Responding),
        (S::Open | S::Acknowledged | S::Responding, A::Resolve) => Some(S::Resolved),
        (S::Resolved, A::Reopen) => Some(S::Responding),
        _ => None,
    }
}

/// The actions allowed from `state`.
pub fn allowed(state: S) -> Vec<A> {
    [A::Acknowledge, A::Respond, A::Resolve, A::Reopen]
        .into_iter()
        .filter(|a| next(state, *a).is_some())
        .collect()
}

/// Whether the action needs a reason (the resolution, or why it is reopened).
pub fn needs_reason(action: A) -> bool {
    matches!(action, A::Resolve | A::Reopen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_moves_forward_and_reopens_only_when_resolved() {
        assert_eq!(next(S::Open, A::Acknowledge), Some(S::Acknowledged));
        assert_eq!(next(S::Acknowledged, A::Acknowledge), None);
        assert_eq!(next(S::Responding, A::Resolve), Some(S::Resolved));
        assert_eq!(next(S::Resolved, A::Resolve), None);
        assert_eq!(next(S::Open, A::Reopen), None);
        assert_eq!(allowed(S::Resolved), vec![A::Reopen]);
        assert_eq!(allowed(S::Open), vec![A::Acknowledge, A::Respond, A::Resolve]);
    }
}
