//! A discharge recorded in the patients service creates the plans its templates call for:
//! automatically, once, also when followup was down at the time.

use crate::both_backends;
use crate::helpers::*;
use hcrm_proto::followup::*;
use hcrm_proto::patients::Patient;

both_backends!(discharge_creates_plans_once_even_after_downtime);

async fn discharge_creates_plans_once_even_after_downtime(backend: TestBackend) {
    // Followup answers calls but consumes no feed: "down" as far as discharges go.
    let mut suite = Suite::start_with(backend, false).await;
    let template = create_template(&suite, discharge_template()).await;
    let mut other = discharge_template();
    other.display_name = "骨科出院随访".into();
    other.applies_to.as_mut().unwrap().departments = vec!["orth".into()];
    create_template(&suite, other).await;

    let li = suite.patient("李四", "13800138001").await;
    let deceased = suite
        .patient_with(Patient {
            display_name: "王五".into(),
            deceased: true,
            ..Default::default()
        })
        .await;
    let today = today(&suite);
    suite.discharge(&li, "card", &["I21.9"], "dis-1").await;
    suite.discharge(&deceased, "card", &["I21.9"], "dis-2").await;
    // The same discharge sent again by the HIS is one event only; a non-matching one none.
    suite.discharge(&li, "card", &["I21.9"], "dis-1").await;
    assert_eq!(
        suite.count("SELECT COUNT(*) FROM plans").await,
        0,
        "nothing happens while followup is down"
    );

    // Followup comes back (a second process on the same database) and catches up.
    let handle = suite.serve(false, Some(true), Some(suite.url.clone())).await;
    suite.keep(handle);
    let plans = plans_of(&suite, &li, 1).await;
    let plan = &plans[0];
    assert_eq!(plan.template, template.name);
    assert_eq!(plan.template_version, 1);
    assert_eq!(plan.origin, PlanOrigin::Discharge as i32);
    assert_eq!(plan.department, "card");
    assert_eq!(plan.diagnosis_codes, vec!["I21.9".to_string()]);
    assert!(
        plan.source.starts_with(&format!("patients/{li}/interactions/")),
        "{}",
        plan.source
    );
    let tasks = tasks_of(&suite, &plan.name).await;
    let dues: Vec<_> = tasks.iter().map(|t| t.due_date.unwrap()).collect();
    use hcrm_followup::domain::calendar::to_date;
    assert_eq!(dues, vec![to_date(today + 1), to_date(today + 7)]);
    assert_eq!(tasks[0].status, TaskStatus::Pending as i32);
    assert_eq!(tasks[1].window_end_date, Some(to_date(today + 10)));

    // A third consumer starting from the same cursor creates nothing twice; a new discharge is
    // applied once although two consumers watch.
    let handle = suite.serve(false, Some(true), Some(suite.url.clone())).await;
    suite.keep(handle);
    let zhao = suite.patient("赵六", "13800138002").await;
    suite.discharge(&zhao, "card", &["I25.1"], "dis-3").await;
    plans_of(&suite, &zhao, 1).await;
    assert_eq!(
        suite.count("SELECT COUNT(*) FROM plans").await,
        2,
        "one plan per matching discharge, the deceased none"
    );
    assert_eq!(suite.count("SELECT COUNT(*) FROM tasks").await, 4);
    plans_of(&suite, &li, 1).await;

    // The patient dies: the plan and its open tasks stop, nobody calls the family.
    let current = suite
        .patients()
        .get_patient(hcrm_proto::patients::GetPatientRequest {
            name: format!("patients/{li}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    suite
        .patients()
        .update_patient(hcrm_proto::patients::UpdatePatientRequest {
            patient: Some(Patient {
                name: current.name.clone(),
                deceased: true,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["deceased".into()],
            }),
            etag: current.etag.clone(),
            reason: "died at home".into(),
        })
        .await
        .unwrap();
    let plan = eventually("the plan stops", || async {
        let plan = plans_of(&suite, &li, 1).await.remove(0);
        (plan.state == PlanState::Cancelled as i32).then_some(plan)
    })
    .await;
    let plan = suite
        .followup(hcrm_kit::auth::Role::Admin)
        .get_plan(GetPlanRequest { name: plan.name })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.history.last().unwrap().detail, "patient deceased");
    let tasks = tasks_of(&suite, &plan.name).await;
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Cancelled as i32 && t.cancel_reason == "patient deceased")
    );
    suite.stop().await;
}
