//! `hcrm.patients.v1.ConsultationService`.

use super::{Api, request_key};
use crate::domain::consultation::{self, EARLIEST};
use crate::permissions::{PERMISSIONS, Perm};
use crate::store::consultations::ConsultationQuery;
use crate::store::parse_name;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::clock::Clock;
use hcrm_kit::paging::PageSize;
use hcrm_kit::request::RequestContext;
use hcrm_kit::time::from_timestamp;
use hcrm_kit::validate::{Violations, normalize_phone};
use hcrm_proto::patients::consultation_service_server::ConsultationService;
use hcrm_proto::patients::*;
use tonic::{Request, Response, Status};

/// The consultation API: the shared state plus the hospital's time zone and clock.
#[derive(Clone)]
pub struct Consultations {
    pub api: Api,
    /// Local hours and weekdays of the statistics (`patients.utc_offset_minutes`).
    pub utc_offset_minutes: i32,
    pub clock: Clock,
}

/// Whether the caller may see callers' phone numbers in clear: those who may read protected
/// patient data. Not audited as a denial: it only decides the view.
pub fn sees_protected(ctx: &RequestContext) -> bool {
    ctx.principal
        .authorize(&PERMISSIONS, Perm::PatientReadProtected)
        .is_ok()
}

fn shown(mut c: Consultation, clear: bool) -> Consultation {
    if !clear {
        consultation::mask(&mut c);
    }
    c
}

/// A required time range of at most 400 days, not before 2000.
pub fn time_range(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
) -> Result<(i64, i64), ApiError> {
    let mut v = Violations::new();
    let mut read = |field: &str, t: Option<&prost_types::Timestamp>| match t.map(from_timestamp) {
        None => {
            v.add(field, "is required");
            None
        }
        Some(None) => {
            v.add(field, "is out of range");
            None
        }
        Some(Some(t)) if t < EARLIEST => {
            v.add(field, "must not be before 2000");
            None
        }
        Some(Some(t)) => Some(t),
    };
    let start = read("start_time", start);
    let end = read("end_time", end);
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            v.add("end_time", "must be after start_time");
        } else if e - s > 400 * 24 * 3600 * 1_000_000 {
            v.add("end_time", "must be at most 400 days after start_time");
        }
    }
    v.finish()?;
    Ok((start.unwrap_or_default(), end.unwrap_or_default()))
}

#[tonic::async_trait]
impl ConsultationService for Consultations {
    #[tracing::instrument(skip_all)]
    async fn create_consultation(
        &self,
        request: Request<CreateConsultationRequest>,
    ) -> Result<Response<Consultation>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::ConsultationWrite, "CreateConsultation")
            .await?;
        let req = request.into_inner();
        let result = async {
            let now = self.clock.now();
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut c = req.consultation.unwrap_or_default();
            consultation::normalize(&mut c);
            let start = match &c.start_time {
                Some(t) => from_timestamp(t),
                None => Some(now),
            };
            consultation::validate(&c, "consultation", start, now, &mut v);
            v.finish()?;
            let key = request_key("CreateConsultation", &ctx, &req.request_id);
            self.api
                .store
                .create_consultation(&ctx, c, start.unwrap_or(now), key, now)
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_consultation(
        &self,
        request: Request<GetConsultationRequest>,
    ) -> Result<Response<Consultation>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ConsultationRead, "GetConsultation")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = parse_name("name", &req.name, "consultations")?;
            let c = self.api.store.get_consultation(id, &scope).await?;
            Ok(shown(c, sees_protected(&ctx)))
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_consultations(
        &self,
        request: Request<ListConsultationsRequest>,
    ) -> Result<Response<ListConsultationsResponse>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ConsultationRead, "ListConsultations")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let q = query_of(&req)?;
            let key = format!(
                "consultations\u{1f}{:?}\u{1f}{:?}",
                q,
                match &scope {
                    Scope::All => "",
                    Scope::Department(d) => d.as_str(),
                }
            );
            let after: Option<(i64, String)> = self.api.pages.read("page_token", &key, &req.page_token)?;
            let rows = self.api.store.list_consultations(&q, &scope, after, size).await?;
            let next_page_token = match rows.last() {
                Some((_, at, id)) if rows.len() == size => self.api.pages.issue(&key, &(*at, id.clone())),
                _ => String::new(),
            };
            let clear = sees_protected(&ctx);
            Ok(ListConsultationsResponse {
                consultations: rows.into_iter().map(|(c, _, _)| shown(c, clear)).collect(),
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_consultation_statistics(
        &self,
        request: Request<GetConsultationStatisticsRequest>,
    ) -> Result<Response<ConsultationStatistics>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::ConsultationRead, "GetConsultationStatistics")
            .await?;
        let req = request.into_inner();
        let result = async {
            let (start, end) = time_range(req.start_time.as_ref(), req.end_time.as_ref())?;
            let buckets = self
                .api
                .store
                .consultation_buckets(start, end, self.utc_offset_minutes, &scope)
                .await?;
            Ok(statistics(&buckets, self.utc_offset_minutes))
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}

/// The store's filters from a list request; INVALID_ARGUMENT naming the wrong fields.
fn query_of(req: &ListConsultationsRequest) -> Result<ConsultationQuery, ApiError> {
    let mut v = Violations::new();
    let mut q = ConsultationQuery::default();
    if !req.patient.is_empty() {
        match parse_name("patient", &req.patient, "patients") {
            Ok(id) => q.patient_id = Some(id.to_string()),
            Err(_) => v.add("patient", "must look like patients/{id}"),
        }
    }
    if !req.phone.is_empty() {
        let digits: String = req.phone.chars().filter(char::is_ascii_digit).collect();
        if digits.len() == 4 && req.phone.trim() == digits {
            q.phone_last4 = Some(digits);
        } else {
            match normalize_phone(&req.phone) {
                Some(p) => q.phone = Some(p),
                None => v.add("phone", "must be a phone number or its last four digits"),
            }
        }
    }
    v.enum_value::<ConsultationCategory>("category", req.category, false);
    v.enum_value::<ConsultationChannel>("channel", req.channel, false);
    q.category = req.category;
    q.channel = req.channel;
    v.text("handled_by", &req.handled_by, false, 128);
    q.handled_by = req.handled_by.clone();
    q.follow_up_needed = req.follow_up_needed;
    for (field, t, slot) in [
        ("start_time", &req.start_time, &mut q.start),
        ("end_time", &req.end_time, &mut q.end),
    ] {
        if let Some(t) = t {
            match from_timestamp(t) {
                Some(t) => *slot = Some(t),
                None => v.add(field, "is out of range"),
            }
        }
    }
    if let (Some(s), Some(e)) = (q.start, q.end)
        && e <= s
    {
        v.add("end_time", "must be after start_time");
    }
    v.text("query", &req.query, false, 100);
    q.text = req.query.trim().to_lowercase();
    v.finish()?;
    Ok(q)
}

/// Sums the buckets into the response: every category and channel listed, 24 hours, 7 weekdays.
pub fn statistics(buckets: &[crate::store::consultations::Bucket], utc_offset_minutes: i32) -> ConsultationStatistics {
    let categories = ConsultationCategory::Other as usize + 1;
    let channels = ConsultationChannel::Other as usize + 1;
    let mut by_category = vec![0i64; categories];
    let mut by_channel = vec![0i64; channels];
    let mut by_hour = vec![0i64; 24];
    let mut by_weekday = vec![0i64; 7];
    let (mut total, mut duration, mut follow_up) = (0i64, 0i64, 0i64);
    for b in buckets {
        let (hour, weekday) = consultation::split_hour_of_week(b.hour_of_week);
        if let Some(n) = by_category.get_mut(b.category as usize) {
            *n += b.count;
        }
        if let Some(n) = by_channel.get_mut(b.channel as usize) {
            *n += b.count;
        }
        by_hour[hour] += b.count;
        by_weekday[weekday] += b.count;
        total += b.count;
        duration += b.duration_seconds;
        follow_up += b.follow_up_needed;
    }
    ConsultationStatistics {
        total,
        by_category: by_category
            .into_iter()
            .enumerate()
            .skip(1)
            .map(|(c, count)| ConsultationCategoryCount {
                category: c as i32,
                count,
            })
            .collect(),
        by_hour,
        by_weekday,
        by_channel: by_channel
            .into_iter()
            .enumerate()
            .skip(1)
            .map(|(c, count)| ConsultationChannelCount {
                channel: c as i32,
                count,
            })
            .collect(),
        mean_duration_seconds: if total > 0 { duration as f64 / total as f64 } else { 0.0 },
        follow_up_needed: follow_up,
        utc_offset_minutes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::consultations::Bucket;

    #[test]
    fn buckets_add_up_per_dimension() {
        let buckets = [
            Bucket {
                category: ConsultationCategory::ExamResults as i32,
                channel: ConsultationChannel::Hotline as i32,
                // Hour 0 of the epoch week is Thursday 00:00.
                hour_of_week: 23,
                count: 2,
                duration_seconds: 300,
                follow_up_needed: 1,
            },
            Bucket {
                category: ConsultationCategory::Directions as i32,
                channel: ConsultationChannel::Counter as i32,
                hour_of_week: 24 * 5 + 9,
                count: 1,
                duration_seconds: 60,
                follow_up_needed: 0,
            },
        ];
        let s = statistics(&buckets, 480);
        assert_eq!(s.total, 3);
        assert_eq!(s.by_category.len(), 9);
        assert_eq!(s.by_category[2].count, 2);
        assert_eq!(s.by_category[2].category, ConsultationCategory::ExamResults as i32);
        assert_eq!(s.by_category[6].count, 1);
        assert_eq!(s.by_hour[23], 2);
        assert_eq!(s.by_hour[9], 1);
        // Thursday (3) and, five days later, Tuesday (1).
        assert_eq!(s.by_weekday, vec![0, 1, 0, 2, 0, 0, 0]);
        assert_eq!(s.by_channel[0].count, 2);
        assert_eq!(s.by_channel[1].count, 1);
        assert_eq!(s.mean_duration_seconds, 120.0);
        assert_eq!(s.follow_up_needed, 1);
    }

    #[test]
    fn ranges_are_required_and_bounded() {
        let t = |s: i64| Some(prost_types::Timestamp { seconds: s, nanos: 0 });
        let err = time_range(None, None).unwrap_err().to_string();
        assert!(err.contains("start_time") && err.contains("end_time"), "{err}");
        assert!(time_range(t(1_800_000_000).as_ref(), t(1_700_000_000).as_ref()).is_err());
        assert!(time_range(t(1_700_000_000).as_ref(), t(1_800_000_000).as_ref()).is_err());
        assert_eq!(
            time_range(t(1_700_000_000).as_ref(), t(1_700_003_600).as_ref()).unwrap(),
            (1_700_000_000_000_000, 1_700_003_600_000_000)
        );
    }
}
