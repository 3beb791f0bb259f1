//! Deliveries as the API shows them: the kit's outbox rows in followup's proto.

use hcrm_kit::outbox::{self, State};
use hcrm_kit::time::to_timestamp;
use hcrm_proto::followup::{Delivery, DeliveryState};

/// The outbox state a request filters on; `None` for any.
pub fn state_filter(state: DeliveryState) -> Option<State> {
    match state {
        DeliveryState::Pending => Some(State::Pending),
        DeliveryState::Delivered => Some(State::Delivered),
        DeliveryState::Dead => Some(State::Dead),
        DeliveryState::Skipped => Some(State::Skipped),
        DeliveryState::Unspecified => None,
    }
}

fn state_of(state: Option<State>) -> DeliveryState {
    match state {
        Some(State::Pending) => DeliveryState::Pending,
        Some(State::Delivered) => DeliveryState::Delivered,
        Some(State::Dead) => DeliveryState::Dead,
        Some(State::Skipped) => DeliveryState::Skipped,
        None => DeliveryState::Unspecified,
    }
}

pub fn to_proto(d: outbox::Delivery) -> Delivery {
    Delivery {
        name: format!("deliveries/{}", d.id),
        kind: d.kind,
        idempotency_key: d.id,
        recipient: d.recipient,
        state: state_of(d.state) as i32,
        attempts: d.attempts as i32,
        last_error: d.last_error,
        not_before: Some(to_timestamp(d.next_attempt_at)),
        delivered_time: d.delivered_at.map(to_timestamp),
        create_time: Some(to_timestamp(d.created_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filterable_state_maps_back_to_itself() {
        for s in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
            DeliveryState::Skipped,
            DeliveryState::Unspecified,
        ] {
            assert_eq!(state_of(state_filter(s)), s);
        }
    }
}
