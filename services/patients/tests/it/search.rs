//! Search by name, pinyin, initials, phone, last four digits, code and identity number.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;

both_backends!(search_ranks_by_kind_of_match);

async fn search_ranks_by_kind_of_match(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let mut guide = svc.patients(Role::Guide);
    let zhang = create(&svc, zhang_san()).await;
    let zhang_feng = create(
        &svc,
        Patient {
            display_name: "张三丰".into(),
            phones: vec!["13912345678".into()],
            ..Default::default()
        },
    )
    .await;
    create(
        &svc,
        Patient {
            display_name: "李四".into(),
            phones: vec!["13800001234".into()],
            ..Default::default()
        },
    )
    .await;
    let search = |q: &str| SearchPatientsRequest {
        query: q.into(),
        page_size: 10,
    };
    let names = |r: SearchPatientsResponse| {
        r.matches
            .into_iter()
            .map(|m| (m.patient.unwrap().display_name, m.matched_on))
            .collect::<Vec<_>>()
    };

    let r = names(guide.search_patients(search("张三")).await.unwrap().into_inner());
    assert_eq!(r[0], ("张三".to_string(), "name".to_string()));
    assert_eq!(r[1], ("张三丰".to_string(), "name_prefix".to_string()));
    let r = names(guide.search_patients(search("zhangsan")).await.unwrap().into_inner());
    assert_eq!(r[0].0, "张三");
    assert_eq!(r.len(), 2);
    let r = names(guide.search_patients(search("zsf")).await.unwrap().into_inner());
    assert_eq!(r, vec![("张三丰".to_string(), "initials".to_string())]);
    let r = names(
        guide
            .search_patients(search("138-0013-8000"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(r, vec![("张三".to_string(), "phone".to_string())]);
    let r = names(guide.search_patients(search("1234")).await.unwrap().into_inner());
    assert_eq!(r, vec![("李四".to_string(), "phone_last4".to_string())]);
    let r = guide
        .search_patients(search(&zhang_feng.code.to_lowercase()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.matches[0].matched_on, "code");
    let r = guide
        .search_patients(search(&zhang_san().identity_number))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.matches[0].patient.as_ref().unwrap().name, zhang.name);
    assert_eq!(r.matches[0].matched_on, "identity_number");
    let r = guide.search_patients(search("王")).await.unwrap().into_inner();
    assert!(r.matches.is_empty());
    let r = guide.search_patients(search("%")).await.unwrap().into_inner();
    assert!(r.matches.is_empty(), "a wildcard must not match everything");
    svc.stop().await;
}
