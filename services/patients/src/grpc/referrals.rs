//! `hcrm.patients.v1.ReferralService`.

use super::request_key;
use super::segments::Customers;
use crate::domain::patient::{date_of, is_code};
use crate::permissions::Perm;
use crate::store::parse_name;
use crate::store::referrals::Side;
use hcrm_kit::ApiError;
use hcrm_kit::paging::PageSize;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::referral_service_server::ReferralService;
use hcrm_proto::patients::*;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl ReferralService for Customers {
    #[tracing::instrument(skip_all)]
    async fn record_referral(&self, request: Request<RecordReferralRequest>) -> Result<Response<Referral>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::ReferralWrite, "RecordReferral")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut r = req.referral.unwrap_or_default();
            r.channel = r.channel.trim().to_string();
            r.note = r.note.trim().to_string();
            let introducer = parse_name("referral.introducer", &r.introducer, "patients").map(str::to_string);
            let referred = parse_name("referral.referred", &r.referred, "patients").map(str::to_string);
            for (field, parsed) in [("referral.introducer", &introducer), ("referral.referred", &referred)] {
                if let Err(ApiError::InvalidArgument(violations)) = parsed {
                    for violation in violations {
                        v.add(field, violation.description.clone());
                    }
                }
            }
            if let (Ok(a), Ok(b)) = (&introducer, &referred)
                && a == b
            {
                v.add("referral.referred", "a patient cannot introduce themselves");
            }
            let date = r.referral_date.as_ref().and_then(date_of);
            match (&r.referral_date, date) {
                (None, _) => v.add("referral.referral_date", "is required"),
                (Some(_), None) => v.add("referral.referral_date", "is not a valid date"),
                (Some(_), Some(d)) if d > self.today() => v.add("referral.referral_date", "must not be in the future"),
                _ => {}
            }
            if !r.channel.is_empty() && !is_code(&r.channel, 32) {
                v.add("referral.channel", "must be a lower-case code such as word_of_mouth");
            }
            v.text("referral.note", &r.note, false, 500);
            v.finish()?;
            let (introducer, referred) = (introducer?, referred?);
            let day = date.expect("checked above").format("%Y-%m-%d").to_string();
            let key = request_key("RecordReferral", &ctx, &req.request_id);
            self.api
                .store
                .record_referral(&ctx, (&introducer, &referred), r, day, key, self.now())
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_referrals(
        &self,
        request: Request<ListReferralsRequest>,
    ) -> Result<Response<ListReferralsResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::ReferralRead, "ListReferrals")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let side = match (req.introducer.is_empty(), req.referred.is_empty()) {
                (false, true) => Side::Introducer(parse_name("introducer", &req.introducer, "patients")?.to_string()),
                (true, false) => Side::Referred(parse_name("referred", &req.referred, "patients")?.to_string()),
                _ => {
                    return Err(ApiError::invalid(
                        "introducer",
                        "give exactly one of introducer or referred",
                    ));
                }
            };
            let key = format!("referrals\u{1f}{}\u{1f}{}", req.introducer, req.referred);
            let after: Option<(i64, String)> = self.api.pages.read("page_token", &key, &req.page_token)?;
            let rows = self.api.store.list_referrals(&side, after, size).await?;
            let next_page_token = match rows.last() {
                Some((_, at, id)) if rows.len() == size => self.api.pages.issue(&key, &(*at, id.clone())),
                _ => String::new(),
            };
            Ok(ListReferralsResponse {
                referrals: rows.into_iter().map(|(r, _, _)| r).collect(),
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_top_introducers(
        &self,
        request: Request<ListTopIntroducersRequest>,
    ) -> Result<Response<ListTopIntroducersResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::ReferralRead, "ListTopIntroducers")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let key = "top-introducers";
            let offset: usize = self.api.pages.read("page_token", key, &req.page_token)?.unwrap_or(0);
            let introducers = self.api.store.top_introducers(offset, size).await?;
            let next_page_token = if introducers.len() == size {
                self.api.pages.issue(key, &(offset + size))
            } else {
                String::new()
            };
            Ok(ListTopIntroducersResponse {
                introducers,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}
