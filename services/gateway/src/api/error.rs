//! Errors as the REST API and the console answer them: the gRPC code and its HTTP status, the
//! message, and the details a client acts on (field violations, the request id to quote, the
//! existing resource of an ALREADY_EXISTS), taken from the status's `google.rpc` details.

use axum::response::{IntoResponse, Response};
use hcrm_kit::ApiError;
use hcrm_kit::error::http_status_of;
use serde::Serialize;
use std::collections::HashMap;
use tonic::Code;
use tonic_types::StatusExt;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// An error answered as JSON: `{"error": {...}}` (boxed: results carrying it stay small).
#[derive(Debug, Clone)]
pub struct HttpError(Box<ErrorBody>);

impl std::ops::Deref for HttpError {
    type Target = ErrorBody;
    fn deref(&self) -> &ErrorBody {
        &self.0
    }
}

impl std::ops::DerefMut for HttpError {
    fn deref_mut(&mut self) -> &mut ErrorBody {
        &mut self.0
    }
}

/// What an error says.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(serialize_with = "code_name")]
    pub code: Code,
    pub status: u16,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_violations: Vec<FieldViolation>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
}

fn code_name<S: serde::Serializer>(code: &Code, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code_str(*code))
}

/// The canonical name of a gRPC code, as grpc-gateway and Google APIs spell it.
pub fn code_str(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl HttpError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorBody {
            code,
            status: http_status_of(code),
            message: message.into(),
            request_id: String::new(),
            field_violations: Vec::new(),
            reason: String::new(),
            metadata: HashMap::new(),
        }))
    }

    /// INVALID_ARGUMENT about one field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut err = Self::new(
            Code::InvalidArgument,
            format!("invalid argument: {field}: {description}"),
        );
        err.field_violations.push(FieldViolation {
            field: field.to_string(),
            description,
        });
        err
    }

    pub fn with_request_id(mut self, request_id: &str) -> Self {
        if self.request_id.is_empty() {
            self.request_id = request_id.to_string();
        }
        self
    }

    /// Back into a status, for code paths that speak tonic.
    pub fn into_status(self) -> tonic::Status {
        tonic::Status::new(self.code, self.message.clone())
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": &*self.0 })
    }
}

impl From<ApiError> for HttpError {
    fn from(err: ApiError) -> Self {
        // The same conversion the services use, so details and masking are identical; a fresh
        // request id ties the logged cause of an internal error to what the member can quote.
        HttpError::from(err.into_status(&hcrm_kit::new_id()))
    }
}

impl From<tonic::Status> for HttpError {
    fn from(status: tonic::Status) -> Self {
        let mut err = HttpError::new(status.code(), status.message());
        let details = status.get_error_details();
        if let Some(bad) = details.bad_request() {
            err.field_violations = bad
                .field_violations
                .iter()
                .map(|v| FieldViolation {
                    field: v.field.clone(),
                    description: v.description.clone(),
                })
                .collect();
        }
        if let Some(info) = details.request_info() {
            err.request_id = info.request_id.clone();
        }
        if let Some(info) = details.error_info() {
            err.reason = info.reason.clone();
            err.metadata = info.metadata.clone();
        }
        err
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if !self.request_id.is_empty()
            && let Ok(value) = http::HeaderValue::from_str(&self.request_id)
        {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_and_request_ids_survive_the_trip_through_a_status() {
        let status = ApiError::invalid("patient.phones[1]", "not a phone number").into_status("req-1");
        let err = HttpError::from(status);
        assert_eq!(err.status, 400);
        assert_eq!(err.request_id, "req-1");
        assert_eq!(
            err.field_violations,
            vec![FieldViolation {
                field: "patient.phones[1]".into(),
                description: "not a phone number".into()
            }]
        );
        let body = err.body();
        assert_eq!(body["error"]["code"], "INVALID_ARGUMENT");
        assert_eq!(body["error"]["fieldViolations"][0]["field"], "patient.phones[1]");
    }

    #[test]
    fn codes_map_to_their_http_statuses() {
        for (code, status) in [
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::FailedPrecondition, 412),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::Internal, 500),
        ] {
            assert_eq!(HttpError::new(code, "x").status, status, "{code:?}");
        }
        let exists = HttpError::from(
            ApiError::AlreadyExists {
                what: "account".into(),
                existing: "accounts/li".into(),
            }
            .into_status("r"),
        );
        assert_eq!(exists.metadata.get("existing").map(String::as_str), Some("accounts/li"));
    }
}
