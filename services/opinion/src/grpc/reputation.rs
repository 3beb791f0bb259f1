//! ReputationService: the trend and positive publicity.

use super::{Api, optional_id, position, time_position};
use crate::domain::days;
use crate::permissions::Perm;
use crate::store::mentions::StoryQuery;
use hcrm_kit::ApiError;
use hcrm_kit::paging::PageSize;
use hcrm_kit::resource::page;
use hcrm_proto::opinion::reputation_service_server::ReputationService;
use hcrm_proto::opinion::*;
use hcrm_proto::types::Date;
use tonic::{Request, Response, Status};

const MAX_DAYS: i64 = 400;

fn date(field: &str, d: &Option<Date>) -> Result<chrono::NaiveDate, ApiError> {
    let d = d.as_ref().ok_or_else(|| ApiError::invalid(field, "is required"))?;
    if !(1900..=2200).contains(&d.year) {
        return Err(ApiError::invalid(field, "must be a date between 1900 and 2200"));
    }
    chrono::NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).unwrap_or(0),
        u32::try_from(d.day).unwrap_or(0),
    )
    .ok_or_else(|| ApiError::invalid(field, "must be a real date"))
}

/// The period's dates, checked: start ≤ end, at most 400 days.
fn period(start: &Option<Date>, end: &Option<Date>) -> Result<(chrono::NaiveDate, chrono::NaiveDate), ApiError> {
    let (start, end) = (date("start_date", start)?, date("end_date", end)?);
    if end < start {
        return Err(ApiError::invalid("end_date", "must not be before start_date"));
    }
    if (end - start).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid(
            "end_date",
            format!("a period is at most {MAX_DAYS} days"),
        ));
    }
    Ok((start, end))
}

#[tonic::async_trait]
impl ReputationService for Api {
    async fn get_reputation(&self, request: Request<GetReputationRequest>) -> Result<Response<Reputation>, Status> {
        let ctx = self.authorize(&request, Perm::ReputationRead, "GetReputation").await?;
        let req = request.into_inner();
        let run = async {
            let entity = optional_id("entity", &req.entity, "entities")?;
            let (start, end) = period(&req.start_date, &req.end_date)?;
            if !(0..=50).contains(&req.top) {
                return Err(ApiError::invalid("top", "must be 0–50 (0: 10)"));
            }
            if let Some(e) = &entity {
                self.store.get_entity(e).await?;
            }
            let key = entity.clone().unwrap_or_default();
            let mut reputation = self.store.reputation(&key, days::ymd(start), days::ymd(end)).await?;
            let offset = self.store.rules.utc_offset_minutes;
            let from = days::start_of(start, offset);
            let to = days::start_of(end + chrono::Duration::days(1), offset);
            let top = if req.top == 0 { 10 } else { req.top as usize };
            reputation.top_stories = self.store.top_stories(entity.as_deref(), from, to, top).await?;
            Ok(reputation)
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn list_publicity(
        &self,
        request: Request<ListPublicityRequest>,
    ) -> Result<Response<ListPublicityResponse>, Status> {
        let ctx = self.authorize(&request, Perm::ReputationRead, "ListPublicity").await?;
        let req = request.into_inner();
        let run = async {
            let entity = optional_id("entity", &req.entity, "entities")?;
            let (start, end) = period(&req.start_date, &req.end_date)?;
            let offset = self.store.rules.utc_offset_minutes;
            let q = StoryQuery {
                entity,
                publicity: true,
                first_seen: Some((
                    days::start_of(start, offset),
                    days::start_of(end + chrono::Duration::days(1), offset),
                )),
                ..Default::default()
            };
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let query = format!("publicity:{q:?}");
            let after: Option<(i64, String)> = position(&self.pages, &query, &req.page_token)?;
            let items = self.store.list_stories(&q, after, size + 1).await?;
            let (stories, next_page_token) = page(
                items,
                size,
                |s| time_position(&s.last_seen_time, &s.name),
                &self.pages,
                &query,
            );
            Ok(ListPublicityResponse {
                stories,
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }
}
