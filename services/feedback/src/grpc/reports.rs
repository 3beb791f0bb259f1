//! ReportService.

use super::{Api, scoped_department};
use crate::domain::workdays::parse_month;
use crate::permissions::Perm;
use hcrm_kit::ApiError;
use hcrm_kit::auth::Scope;
use hcrm_kit::validate::Violations;
use hcrm_proto::feedback::report_service_server::ReportService;
use hcrm_proto::feedback::*;
use tonic::{Request, Response, Status};

const MAX_MONTHS: i32 = 36;

/// A month range and department filter, checked; a scoped caller sees their department only.
fn range(from: &str, to: &str, department: &str, scope: &Scope) -> Result<(i32, i32, Option<String>), ApiError> {
    let mut v = Violations::new();
    let from_m = parse_month(from);
    let to_m = parse_month(to);
    if from_m.is_none() {
        v.add("from_month", "must be a month like 2026-10");
    }
    if to_m.is_none() {
        v.add("to_month", "must be a month like 2026-10");
    }
    v.text("department", department, false, 40);
    if let (Some(f), Some(t)) = (from_m, to_m) {
        let span = (t / 100 - f / 100) * 12 + (t % 100 - f % 100) + 1;
        if span < 1 {
            v.add("to_month", "must not be before from_month");
        } else if span > MAX_MONTHS {
            v.add("to_month", format!("at most {MAX_MONTHS} months from from_month"));
        }
    }
    v.finish()?;
    let department = match scoped_department(scope) {
        Some(own) if !department.is_empty() && department != own => {
            return Err(ApiError::PermissionDenied(format!(
                "department {department} is outside your scope"
            )));
        }
        Some(own) => Some(own),
        None => (!department.is_empty()).then(|| department.to_string()),
    };
    Ok((from_m.unwrap_or_default(), to_m.unwrap_or_default(), department))
}

#[tonic::async_trait]
impl ReportService for Api {
    async fn get_satisfaction_report(
        &self,
        request: Request<GetSatisfactionReportRequest>,
    ) -> Result<Response<SatisfactionReport>, Status> {
        let (ctx, scope) = self
            .authorize(&request, Perm::ReportRead, "GetSatisfactionReport")
            .await?;
        let req = request.into_inner();
        let run = async {
            let (from, to, department) = range(&req.from_month, &req.to_month, &req.department, &scope)?;
            Ok(SatisfactionReport {
                cells: self.store.satisfaction_report(from, to, department.as_deref()).await?,
                min_group_size: self.store.rules.min_group_size,
            })
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_complaint_report(
        &self,
        request: Request<GetComplaintReportRequest>,
    ) -> Result<Response<ComplaintReport>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::ReportRead, "GetComplaintReport").await?;
        let req = request.into_inner();
        let run = async {
            let (from, to, department) = range(&req.from_month, &req.to_month, &req.department, &scope)?;
            self.store.complaint_report(from, to, department.as_deref()).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }

    async fn get_monthly_report(
        &self,
        request: Request<GetMonthlyReportRequest>,
    ) -> Result<Response<MonthlyReport>, Status> {
        let (ctx, scope) = self.authorize(&request, Perm::ReportRead, "GetMonthlyReport").await?;
        let req = request.into_inner();
        let run = async {
            let month =
                parse_month(&req.month).ok_or_else(|| ApiError::invalid("month", "must be a month like 2026-10"))?;
            // The monthly report is the hospital's: department heads read their own figures
            // through the satisfaction and complaint reports.
            if scoped_department(&scope).is_some() {
                return Err(ApiError::PermissionDenied(
                    "the monthly report covers every department; ask for your department's satisfaction and complaint reports".into(),
                ));
            }
            self.store.monthly_report(month).await
        };
        run.await.map(Response::new).map_err(|e| ctx.status(e))
    }
}
