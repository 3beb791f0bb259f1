//! A receiver down for a minute: the outbox holds what is to be sent, retries with the
//! production backoff (2 s doubling, 8 attempts) without giving up, and delivers everything
//! once when the receiver is back. Time moves by the suite's clock, not by waiting.

use crate::helpers::*;
use std::time::Duration;

crate::both_backends!(a_receiver_down_for_a_minute_gets_everything_after);

async fn a_receiver_down_for_a_minute_gets_everything_after(backend: TestBackend) {
    let suite = Suite::start_tuned(backend, START, |cfg| {
        cfg.delivery.backoff_ms = 2_000;
        cfg.delivery.max_attempts = 8;
    })
    .await;
    let q = published(&suite).await;
    let mut patients = Vec::new();
    for i in 0..3 {
        patients.push(suite.patient(&format!("患者{i}"), &format!("1380000010{i}")).await);
    }
    suite.webhook.lock().unwrap().fail_next = u32::MAX;
    invite(&suite, &q.name, &patients, "card", true).await;
    // A minute and five seconds of the receiver answering 500, in five-second steps.
    for _ in 0..13 {
        suite.clock.advance(5 * 1_000_000);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(suite.delivered("feedback.invitation").is_empty());
    let attempts = suite
        .count("SELECT MIN(attempts) FROM deliveries WHERE kind = 'feedback.invitation' AND state = 'pending'")
        .await;
    assert!(attempts >= 4, "retried through the outage: {attempts} attempts");
    assert_eq!(
        suite
            .count("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'")
            .await,
        0
    );
    // Back up: the next retry (at most 64 s later) delivers each link, once.
    suite.webhook.lock().unwrap().fail_next = 0;
    suite.clock.advance(70 * 1_000_000);
    eventually("every link after the outage", || async {
        (suite.delivered("feedback.invitation").len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let links: Vec<u32> = {
        let received = suite.webhook.lock().unwrap();
        received
            .by_key
            .iter()
            .filter(|(k, _)| k.starts_with("invitation-"))
            .map(|(_, n)| *n)
            .collect()
    };
    assert_eq!(links, vec![1, 1, 1], "each delivered once");
    suite.stop().await;
}
