//! The case workflow as a state machine (PDCA: plan the fix, do it, check it with the
//! complainant, act on the result). One table says which action is allowed from which state;
//! the service refuses anything else naming what is allowed.

use hcrm_kit::ApiError;
use hcrm_proto::feedback::{CaseAction, CaseKind, CaseState, Resolution};

use CaseAction as A;
use CaseState as S;

/// Whether a case in `state` is still being worked on.
pub fn is_open(state: S) -> bool {
    matches!(
        state,
        S::Received | S::Assigned | S::Investigating | S::ActionPlanned | S::Replied | S::Confirmed
    )
}

/// The actions allowed from `state` for a case of `kind`.
pub fn allowed(kind: CaseKind, state: S) -> Vec<A> {
    let complaint = kind == CaseKind::Complaint;
    let mut out = match state {
        S::Received => vec![A::Assign, A::Withdraw, A::Reject],
        S::Assigned => vec![A::Assign, A::StartInvestigation, A::Withdraw, A::Reject],
        S::Investigating => vec![A::PlanActions, A::Withdraw, A::Reject],
        S::ActionPlanned => vec![A::PlanActions, A::Reply, A::Withdraw],
        S::Replied => vec![A::Confirm, A::Withdraw],
        S::Confirmed => vec![A::Close],
        _ => vec![],
    };
    // A suggestion or praise needs no confirmation: it may be closed as noted while open.
    if !complaint && is_open(state) && !out.contains(&A::Close) {
        out.push(A::Close);
    }
    out
}

/// Where `action` takes a case: the next state and, when it ends the case, its resolution.
/// `effective` is the confirmation's answer (CONFIRM only).
pub fn next(kind: CaseKind, state: S, action: A, effective: bool) -> Result<(S, Resolution), ApiError> {
    let allowed_now = allowed(kind, state);
    if !allowed_now.contains(&action) {
        let names: Vec<&str> = allowed_now.iter().map(|a| a.as_str_name()).collect();
        let allowed_text = if names.is_empty() {
            "none: the case has ended".to_string()
        } else {
            names.join(", ")
        };
        return Err(ApiError::FailedPrecondition(format!(
            "{} is not allowed while the case is {}; allowed: {allowed_text}",
            action.as_str_name(),
            state.as_str_name()
        )));
    }
    Ok(match action {
        A::Assign => (S::Assigned, Resolution::Unspecified),
        A::StartInvestigation => (S::Investigating, Resolution::Unspecified),
        A::PlanActions => (S::ActionPlanned, Resolution::Unspecified),
        A::Reply => (S::Replied, Resolution::Unspecified),
        // Check before close: a fix that did not work sends the case back to investigation.
        A::Confirm if effective => (S::Confirmed, Resolution::Unspecified),
        A::Confirm => (S::Investigating, Resolution::Unspecified),
        A::Close if state == S::Confirmed => (S::Closed, Resolution::Effective),
        A::Close => (S::Closed, Resolution::Noted),
        A::Withdraw => (S::Withdrawn, Resolution::Withdrawn),
        A::Reject => (S::Rejected, Resolution::Rejected),
        A::Unspecified => unreachable!("never allowed"),
    })
}

/// The short name kept in the history (`assign`, `plan_actions`, …).
pub fn action_name(action: A) -> String {
    action
        .as_str_name()
        .trim_start_matches("CASE_ACTION_")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [S; 10] = [
        S::Received,
        S::Assigned,
        S::Investigating,
        S::ActionPlanned,
        S::Replied,
        S::Confirmed,
        S::Closed,
        S::Withdrawn,
        S::Rejected,
        S::Linked,
    ];
    const ACTIONS: [A; 8] = [
        A::Assign,
        A::StartInvestigation,
        A::PlanActions,
        A::Reply,
        A::Confirm,
        A::Close,
        A::Withdraw,
        A::Reject,
    ];

    /// Every (state, action) pair of a complaint: the expected next state, or refused.
    #[test]
    fn every_transition_of_a_complaint() {
        let k = CaseKind::Complaint;
        let expected = |s: S, a: A| -> Option<S> {
            Some(match (s, a) {
                (S::Received | S::Assigned, A::Assign) => S::Assigned,
                (S::Assigned, A::StartInvestigation) => S::Investigating,
                (S::Investigating | S::ActionPlanned, A::PlanActions) => S::ActionPlanned,
                (S::ActionPlanned, A::Reply) => S::Replied,
                (S::Replied, A::Confirm) => S::Confirmed,
                (S::Confirmed, A::Close) => S::Closed,
                (S::Received | S::Assigned | S::Investigating | S::ActionPlanned | S::Replied, A::Withdraw) => {
                    S::Withdrawn
                }
                (S::Received | S::Assigned | S::Investigating, A::Reject) => S::Rejected,
                _ => return None,
            })
        };
        for s in STATES {
            for a in ACTIONS {
                match (expected(s, a), next(k, s, a, true)) {
                    (Some(want), Ok((got, _))) => assert_eq!(got, want, "{s:?} + {a:?}"),
                    (None, Err(ApiError::FailedPrecondition(msg))) => {
                        assert!(msg.contains("allowed:"), "{msg}");
                        for ok in allowed(k, s) {
                            assert!(msg.contains(ok.as_str_name()), "{msg} should name {ok:?}");
                        }
                    }
                    (want, got) => panic!("{s:?} + {a:?}: wanted {want:?}, got {got:?}"),
                }
            }
        }
    }

    #[test]
    fn an_ineffective_fix_reopens_the_investigation() {
        let (state, res) = next(CaseKind::Complaint, S::Replied, A::Confirm, false).unwrap();
        assert_eq!((state, res), (S::Investigating, Resolution::Unspecified));
        let (state, res) = next(CaseKind::Complaint, S::Confirmed, A::Close, true).unwrap();
        assert_eq!((state, res), (S::Closed, Resolution::Effective));
    }

    #[test]
    fn suggestions_close_as_noted_from_any_open_state() {
        for s in STATES {
            let got = next(CaseKind::Suggestion, s, A::Close, true);
            if is_open(s) {
                let want = if s == S::Confirmed {
                    Resolution::Effective
                } else {
                    Resolution::Noted
                };
                assert_eq!(got.unwrap(), (S::Closed, want), "{s:?}");
            } else {
                assert!(got.is_err(), "{s:?}");
            }
        }
        assert!(next(CaseKind::Complaint, S::Received, A::Close, true).is_err());
    }

    #[test]
    fn ended_cases_allow_nothing() {
        let err = next(CaseKind::Complaint, S::Closed, A::Assign, true).unwrap_err();
        assert!(err.to_string().contains("none: the case has ended"), "{err}");
        assert_eq!(action_name(A::PlanActions), "plan_actions");
    }
}
