//! Referrals: who introduced whom, counted per introducer; self-referrals and second
//! introducers refused.

use crate::both_backends;
use crate::helpers::*;
use hcrm_kit::auth::Role;
use hcrm_proto::patients::*;
use hcrm_proto::types::Date;
use tonic::Code;

both_backends!(referrals_are_recorded_once_and_counted);

fn referral(introducer: &str, referred: &str) -> Referral {
    Referral {
        introducer: introducer.into(),
        referred: referred.into(),
        referral_date: Some(Date {
            year: 2026,
            month: 3,
            day: 1,
        }),
        channel: "word_of_mouth".into(),
        note: "同事介绍".into(),
        ..Default::default()
    }
}

fn named(name: &str) -> Patient {
    Patient {
        display_name: name.into(),
        ..Default::default()
    }
}

async fn referrals_are_recorded_once_and_counted(backend: TestBackend) {
    let svc = Service::start(backend).await;
    let a = create(&svc, named("介绍人甲")).await;
    let b = create(&svc, named("乙")).await;
    let c = create(&svc, named("丙")).await;
    let d = create(&svc, named("丁")).await;
    let mut guide = svc.referrals(Role::Guide);
    let record = |introducer: &Patient, referred: &Patient, request_id: &str| RecordReferralRequest {
        referral: Some(referral(&introducer.name, &referred.name)),
        request_id: request_id.into(),
    };
    let ab = guide.record_referral(record(&a, &b, "r-1")).await.unwrap().into_inner();
    assert!(ab.name.starts_with("referrals/"));
    assert_eq!(ab.introducer, a.name);
    assert_eq!(ab.referred, b.name);
    assert_eq!(ab.recorded_by, "guide-user");
    assert_eq!(ab.note, "同事介绍");
    // A retry with the same request id is the same referral.
    let retry = guide.record_referral(record(&a, &b, "r-1")).await.unwrap().into_inner();
    assert_eq!(retry.name, ab.name);
    guide.record_referral(record(&a, &c, "")).await.unwrap();
    guide.record_referral(record(&d, &a, "")).await.unwrap();

    // A second introducer for b, and a self-referral, are refused.
    let dup = assert_status(
        guide.record_referral(record(&c, &b, "")).await,
        Code::AlreadyExists,
        None,
    );
    assert!(dup.message().contains(&ab.name), "{}", dup.message());
    assert_status(
        guide.record_referral(record(&d, &d, "")).await,
        Code::InvalidArgument,
        Some("referral.referred"),
    );
    let mut undated = referral(&d.name, &c.name);
    undated.referral_date = None;
    assert_status(
        guide
            .record_referral(RecordReferralRequest {
                referral: Some(undated),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("referral.referral_date"),
    );
    let mut bad_channel = referral(&d.name, &c.name);
    bad_channel.channel = "Word Of Mouth".into();
    assert_status(
        guide
            .record_referral(RecordReferralRequest {
                referral: Some(bad_channel),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("referral.channel"),
    );
    assert_status(
        guide
            .record_referral(RecordReferralRequest {
                referral: Some(referral("patients/nobody", &d.name)),
                request_id: String::new(),
            })
            .await,
        Code::NotFound,
        None,
    );
    assert_status(
        guide
            .record_referral(RecordReferralRequest {
                referral: Some(referral("nobody", &d.name)),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        Some("referral.introducer"),
    );

    // Listing by either side, and counts per introducer.
    let by_a = guide
        .list_referrals(ListReferralsRequest {
            introducer: a.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut referred: Vec<String> = by_a.referrals.iter().map(|r| r.referred.clone()).collect();
    referred.sort();
    let mut expected = vec![b.name.clone(), c.name.clone()];
    expected.sort();
    assert_eq!(referred, expected);
    let to_a = guide
        .list_referrals(ListReferralsRequest {
            referred: a.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(to_a.referrals.len(), 1);
    assert_eq!(to_a.referrals[0].introducer, d.name);
    assert_status(
        guide.list_referrals(ListReferralsRequest::default()).await,
        Code::InvalidArgument,
        Some("introducer"),
    );
    let top = guide
        .list_top_introducers(ListTopIntroducersRequest::default())
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(String, i64)> = top
        .introducers
        .iter()
        .map(|i| (i.introducer.clone(), i.referrals))
        .collect();
    assert_eq!(counts, vec![(a.name.clone(), 2), (d.name.clone(), 1)]);
    assert_eq!(top.introducers[0].display_name, "介绍人甲");
    let first_page = guide
        .list_top_introducers(ListTopIntroducersRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.introducers.len(), 1);
    let second_page = guide
        .list_top_introducers(ListTopIntroducersRequest {
            page_size: 1,
            page_token: first_page.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.introducers[0].introducer, d.name);

    // Who may: inspectors read, clinicians neither read nor write.
    svc.referrals(Role::Inspector)
        .list_top_introducers(ListTopIntroducersRequest::default())
        .await
        .expect("inspector reads");
    assert_status(
        svc.referrals(Role::Clinician)
            .list_top_introducers(ListTopIntroducersRequest::default())
            .await,
        Code::PermissionDenied,
        None,
    );
    assert_status(
        svc.referrals(Role::Inspector).record_referral(record(&c, &d, "")).await,
        Code::PermissionDenied,
        None,
    );

    // Merging the introducer into another record moves its referrals both ways.
    let e = create(&svc, named("戊")).await;
    svc.patients(Role::Admin)
        .merge_patients(MergePatientsRequest {
            survivor: e.name.clone(),
            merged: a.name.clone(),
            reason: "same person".into(),
        })
        .await
        .unwrap();
    let list = |introducer: &str, referred: &str| ListReferralsRequest {
        introducer: introducer.into(),
        referred: referred.into(),
        ..Default::default()
    };
    let by_e = guide.list_referrals(list(&e.name, "")).await.unwrap().into_inner();
    let mut introduced: Vec<&str> = by_e.referrals.iter().map(|r| r.referred.as_str()).collect();
    introduced.sort();
    let mut expected = vec![b.name.as_str(), c.name.as_str()];
    expected.sort();
    assert_eq!(introduced, expected);
    let to_e = guide.list_referrals(list("", &e.name)).await.unwrap().into_inner();
    let introducers: Vec<&str> = to_e.referrals.iter().map(|r| r.introducer.as_str()).collect();
    assert_eq!(introducers, vec![d.name.as_str()]);
    let pool = svc.sql().await;
    let a_id = a.name.trim_start_matches("patients/");
    let left: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM referrals WHERE introducer = $1 OR referred = $1")
            .bind(a_id)
            .fetch_one(&pool)
            .await
            .unwrap(),
        "n",
    );
    pool.close().await;
    assert_eq!(left, 0, "nothing stays with the merged record");
    svc.stop().await;
}
