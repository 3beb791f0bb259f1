//! The nightly grade pass as replicas run it: not before its hour, once a local day, one
//! replica at a time (the lease), and resumed — not restarted — after a replica dies mid-pass.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::ApiError;
use hcrm_kit::clock::Clock;
use hcrm_kit::testing::eventually;
use hcrm_patients::jobs::grading::Grader;
use hcrm_patients::store::grades::PassState;
use hcrm_proto::patients::Patient;
use sqlx::Row;

both_backends!(the_nightly_pass_runs_once_a_day_resumes_and_holds_its_lease);

const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3_600 * SECOND;
const OFFSET: i64 = 480 * 60 * SECOND;

/// (lease owner, lease until) of the grading lease.
async fn lease(svc: &Service) -> (String, i64) {
    let pool = svc.sql().await;
    let row = sqlx::query("SELECT lease_owner, lease_until FROM grade_pass WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    (row.get("lease_owner"), row.get("lease_until"))
}

async fn the_nightly_pass_runs_once_a_day_resumes_and_holds_its_lease(backend: TestBackend) {
    // The service's own job runs once at start (today's pass over nobody when it is past the
    // pass's hour), then sleeps an hour: from then on only the graders below grade.
    let svc = Service::start_with(backend, |c| c.grading_poll_ms = 3_600_000).await;
    let store = svc.open_store().await;
    eventually("the start-up turn to end", || {
        let svc = &svc;
        async move {
            let (owner, until) = lease(svc).await;
            (!owner.is_empty() && until == 0).then_some(())
        }
    })
    .await;

    let mut ids = Vec::new();
    for i in 0..5u32 {
        let p = create(
            &svc,
            Patient {
                display_name: format!("测试{}", ["甲", "乙", "丙", "丁", "戊"][i as usize]),
                identity_number: resident_id("19700101", 300 + i),
                phones: vec![format!("1390000{:04}", 7000 + i)],
                ..zhang_san()
            },
        )
        .await;
        ids.push(p.name.trim_start_matches("patients/").to_string());
    }
    ids.sort();
    assert_eq!(svc.count("patient_grades").await, 0, "creating a patient grades nobody");

    // Tomorrow, local time.
    let now = hcrm_kit::time::now_micros();
    let tomorrow = ((now + OFFSET) / (24 * HOUR) + 1) * (24 * HOUR) - OFFSET;
    let at = |hours: i64| tomorrow + hours * HOUR;

    // Replica A at 01:00: before the pass's hour (02:00), nothing happens.
    let clock_a = Clock::manual(at(1));
    let a = Grader::new(store.clone(), clock_a.clone(), 2, 2, 480);
    assert_eq!(a.tick().await.unwrap(), 0);
    assert_eq!(svc.count("patient_grades").await, 0);

    // At 03:00 A starts the pass, grades its first batch of two, saves its place — and dies,
    // holding the lease.
    clock_a.set(at(3));
    let day = a.local_now().date().format("%Y-%m-%d").to_string();
    let rules = store.grading_rules(0).await.unwrap();
    assert!(
        store
            .claim_grading_lease(&a.owner, at(3), at(3) + 120 * SECOND)
            .await
            .unwrap()
    );
    let (counts, last) = store.grade_batch(&rules, None, 2, at(3)).await.unwrap();
    assert_eq!(counts.evaluated, 2);
    assert_eq!(last.as_deref(), Some(ids[1].as_str()));
    let state = PassState {
        pass_day: day.clone(),
        last_id: last,
        finished: false,
    };
    store.save_pass(&a.owner, &state, counts, true).await.unwrap();
    assert_eq!(svc.count("patient_grades").await, 2);
    // The first patient's grade goes missing behind the pass's back: a pass that started over
    // would grade it again, one that resumes after A's place does not.
    let pool = svc.sql().await;
    sqlx::query("DELETE FROM patient_grades WHERE patient_id = $1")
        .bind(&ids[0])
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // Replica B while A's lease lasts: it waits, and RecomputeGrades says why.
    let clock_b = Clock::manual(at(3) + SECOND);
    let b = Grader::new(store.clone(), clock_b.clone(), 2, 2, 480);
    assert_eq!(b.tick().await.unwrap(), 0);
    assert!(matches!(b.recompute_all().await, Err(ApiError::FailedPrecondition(_))));
    assert_eq!(svc.count("patient_grades").await, 1);

    // Once the lease has run out, B continues after A's place and finishes the day's pass.
    clock_b.set(at(3) + 121 * SECOND);
    assert_eq!(b.tick().await.unwrap(), 3, "the three patients after A's place");
    let state = store.pass_state().await.unwrap();
    assert!(state.finished);
    assert_eq!(state.pass_day, day);
    assert_eq!(svc.count("patient_grades").await, 4, "resumed, not restarted");
    let pool = svc.sql().await;
    let evaluated: i64 = sqlx::query("SELECT evaluated FROM grade_pass WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("evaluated");
    pool.close().await;
    assert_eq!(evaluated, 5, "A's two and B's three");

    // Once a day: later the same day nothing runs; the next day everyone is graded again.
    clock_b.set(at(20));
    assert_eq!(b.tick().await.unwrap(), 0);
    assert_eq!(svc.count("patient_grades").await, 4);
    clock_b.set(at(24 + 2));
    assert!(b.tick().await.unwrap() >= 1, "the missing grade is written again");
    assert_eq!(svc.count("patient_grades").await, 5);
    svc.stop().await;
}
