//! The small set of error codes every service maps its errors onto, and their mapping to gRPC
//! status (with `google.rpc` details) and HTTP status.
//!
//! A service keeps its own `thiserror` enum and converts it into [`ApiError`] with an exhaustive
//! match, so a new variant cannot silently become `INTERNAL`.

use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Error domain sent in `google.rpc.ErrorInfo`.
pub const ERROR_DOMAIN: &str = "hcrm";

/// One wrong field in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path to the field, e.g. `patient.phones[1]`.
    pub field: String,
    /// Why the value is wrong, lower-case, no trailing period.
    pub description: String,
}

/// Every error a caller can see.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument: {}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{resource} not found")]
    NotFound { resource: String },
    #[error("{what} already exists as {existing}")]
    AlreadyExists { what: String, existing: String },
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    #[error("aborted: {0}")]
    Aborted(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Result of an API operation.
pub type ApiResult<T> = Result<T, ApiError>;

fn describe_violations(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// A single-field `INVALID_ARGUMENT`.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(resource: impl Into<String>) -> Self {
        ApiError::NotFound {
            resource: resource.into(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::NotFound { .. } => Code::NotFound,
            ApiError::AlreadyExists { .. } => Code::AlreadyExists,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Aborted(_) => Code::Aborted,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status the gateway answers with for this error.
    pub fn http_status(&self) -> u16 {
        http_status_of(self.code())
    }

    /// Converts into a gRPC status with `google.rpc` details. `request_id` goes into
    /// `RequestInfo` so a caller can quote it; internal causes are logged here and masked.
    pub fn into_status(self, request_id: &str) -> Status {
        let code = self.code();
        let mut details = ErrorDetails::new();
        if !request_id.is_empty() {
            details.set_request_info(request_id, "");
        }
        let message = match self {
            ApiError::InvalidArgument(violations) => {
                let message = format!("invalid argument: {}", describe_violations(&violations));
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                message
            }
            ApiError::AlreadyExists { what, existing } => {
                details.set_resource_info("", existing.clone(), "", format!("{what} already exists"));
                details.set_error_info(
                    "ALREADY_EXISTS",
                    ERROR_DOMAIN,
                    HashMap::from([("existing".to_string(), existing.clone())]),
                );
                format!("{what} already exists as {existing}")
            }
            ApiError::Internal(cause) => {
                tracing::error!(request_id, error = ?cause, "internal error");
                format!("internal error; quote request id {request_id} when reporting it")
            }
            other => other.to_string(),
        };
        Status::with_error_details(code, message, details)
    }
}

/// The HTTP status for a gRPC code: the one mapping the gateway and the kit share
/// (FAILED_PRECONDITION is 412 so a client can tell it from a malformed request).
pub fn http_status_of(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::FailedPrecondition => 412,
        Code::ResourceExhausted => 429,
        Code::Cancelled => 499,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        Code::Internal | Code::Unknown | Code::DataLoss => 500,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut => ApiError::Unavailable("database busy, retry later".into()),
            // The database is unreachable or restarting: the caller's retry will succeed later.
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                ApiError::Unavailable("database unavailable, retry later".into())
            }
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => {
                ApiError::Unavailable("database unavailable, retry later".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// True when the database error is a unique-constraint violation (both backends).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = ApiError::invalid("patient.phones[0]", "not a phone number").into_status("r1");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request detail");
        assert_eq!(bad.field_violations[0].field, "patient.phones[0]");
        assert_eq!(details.request_info().unwrap().request_id, "r1");
    }

    #[test]
    fn internal_errors_are_masked() {
        let status = ApiError::internal(anyhow::anyhow!("password=hunter2 leaked")).into_status("r2");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
        assert!(status.message().contains("r2"));
    }
}
