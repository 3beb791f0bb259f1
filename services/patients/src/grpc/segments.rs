//! `hcrm.patients.v1.SegmentService`, and the state the segment, grading and referral servers
//! share.

use super::{Api, mask_paths, request_key};
use crate::domain::segment;
use crate::jobs::grading::Grader;
use crate::permissions::Perm;
use crate::store::{parse_name, segments};
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::paging::PageSize;
use hcrm_kit::validate::Violations;
use hcrm_proto::patients::segment_service_server::SegmentService;
use hcrm_proto::patients::*;
use prost::Message;
use tonic::{Request, Response, Status};

/// The segment, grading and referral servers: the patients API plus the grader (clock, lease).
#[derive(Clone)]
pub struct Customers {
    pub api: Api,
    pub grader: Grader,
}

impl Customers {
    /// Today in the hospital's time zone.
    pub fn today(&self) -> chrono::NaiveDate {
        self.grader.local_now().date()
    }

    pub fn now(&self) -> i64 {
        self.grader.clock.now()
    }

    /// The filter of a Count / ListMembers request: the saved segment's or the ad-hoc one.
    async fn resolve_filter(&self, segment: &str, filter: Option<SegmentFilter>) -> Result<SegmentFilter, ApiError> {
        if !segment.is_empty() {
            if filter.is_some() {
                return Err(ApiError::invalid("filter", "give either segment or filter, not both"));
            }
            let id = parse_name("segment", segment, "segments")?;
            return Ok(self.api.store.get_segment(id).await?.filter.unwrap_or_default());
        }
        let mut f = filter.unwrap_or_default();
        segment::normalize_filter(&mut f);
        let mut v = Violations::new();
        segment::validate_filter(&f, "filter", &mut v);
        v.finish()?;
        Ok(f)
    }
}

fn segment_id(field: &str, name: &str) -> Result<String, ApiError> {
    parse_name(field, name, "segments").map(str::to_string)
}

#[tonic::async_trait]
impl SegmentService for Customers {
    #[tracing::instrument(skip_all)]
    async fn create_segment(&self, request: Request<CreateSegmentRequest>) -> Result<Response<Segment>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::SegmentWrite, "CreateSegment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.request_id("request_id", &req.request_id);
            let mut s = req.segment.unwrap_or_default();
            segment::normalize(&mut s);
            segment::validate(&s, "segment", &mut v);
            v.finish()?;
            let key = request_key("CreateSegment", &ctx, &req.request_id);
            self.api.store.create_segment(&ctx, s, key, self.now()).await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn get_segment(&self, request: Request<GetSegmentRequest>) -> Result<Response<Segment>, Status> {
        let (ctx, _) = self.api.authorize(&request, Perm::SegmentRead, "GetSegment").await?;
        let req = request.into_inner();
        let result = async { self.api.store.get_segment(&segment_id("name", &req.name)?).await }.await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn update_segment(&self, request: Request<UpdateSegmentRequest>) -> Result<Response<Segment>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::SegmentWrite, "UpdateSegment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let changes = req.segment.ok_or_else(|| ApiError::invalid("segment", "is required"))?;
            let id = segment_id("segment.name", &changes.name)?;
            let paths = mask_paths(req.update_mask.as_ref(), segment::UPDATABLE_PATHS)?;
            if req.etag.is_empty() {
                return Err(ApiError::invalid(
                    "etag",
                    "is required: send the etag of the segment as last read",
                ));
            }
            self.api
                .store
                .update_segment(&ctx, &id, &changes, &paths, &req.etag, self.now())
                .await
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_segment(
        &self,
        request: Request<DeleteSegmentRequest>,
    ) -> Result<Response<DeleteSegmentResponse>, Status> {
        let (ctx, _) = self
            .api
            .authorize(&request, Perm::SegmentWrite, "DeleteSegment")
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = segment_id("name", &req.name)?;
            self.api.store.delete_segment(&ctx, &id, &req.etag, self.now()).await?;
            Ok(DeleteSegmentResponse {})
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_segments(
        &self,
        request: Request<ListSegmentsRequest>,
    ) -> Result<Response<ListSegmentsResponse>, Status> {
        let (ctx, _) = self.api.authorize(&request, Perm::SegmentRead, "ListSegments").await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize::STANDARD.resolve("page_size", req.page_size)?;
            let key = "segments";
            let after: Option<(String, String)> = self.api.pages.read("page_token", key, &req.page_token)?;
            let segments = self.api.store.list_segments(after, size).await?;
            let next_page_token = match segments.last() {
                Some(last) if segments.len() == size => {
                    let id = last.name.trim_start_matches("segments/").to_string();
                    self.api.pages.issue(key, &(last.display_name.clone(), id))
                }
                _ => String::new(),
            };
            Ok(ListSegmentsResponse {
                segments,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn count_segment(
        &self,
        request: Request<CountSegmentRequest>,
    ) -> Result<Response<CountSegmentResponse>, Status> {
        let (ctx, scope) = self.api.authorize(&request, Perm::SegmentRead, "CountSegment").await?;
        let req = request.into_inner();
        let result = async {
            let f = self.resolve_filter(&req.segment, req.filter).await?;
            let sql = segments::compile(&f, &scope, self.today());
            let count = self.api.store.count_segment(&sql).await?;
            Ok(CountSegmentResponse { count })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }

    #[tracing::instrument(skip_all)]
    async fn list_segment_members(
        &self,
        request: Request<ListSegmentMembersRequest>,
    ) -> Result<Response<ListSegmentMembersResponse>, Status> {
        let (ctx, scope) = self
            .api
            .authorize(&request, Perm::SegmentRead, "ListSegmentMembers")
            .await?;
        let req = request.into_inner();
        let result = async {
            let size = PageSize {
                default: 100,
                max: 1000,
            }
            .resolve("page_size", req.page_size)?;
            let key = format!(
                "segment-members\u{1f}{}\u{1f}{}\u{1f}{}",
                req.segment,
                hex(&req.filter.as_ref().map(Message::encode_to_vec).unwrap_or_default()),
                scope_key(&scope)
            );
            let after: Option<String> = self.api.pages.read("page_token", &key, &req.page_token)?;
            let f = self.resolve_filter(&req.segment, req.filter).await?;
            let sql = segments::compile(&f, &scope, self.today());
            let patients = self.api.store.segment_members(&sql, after.as_deref(), size).await?;
            let next_page_token = match patients.last() {
                Some(last) if patients.len() == size => self
                    .api
                    .pages
                    .issue(&key, &last.name.trim_start_matches("patients/").to_string()),
                _ => String::new(),
            };
            Ok(ListSegmentMembersResponse {
                patients,
                next_page_token,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| ctx.status(e))
    }
}

fn scope_key(scope: &Scope) -> String {
    format!("{scope:?}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
