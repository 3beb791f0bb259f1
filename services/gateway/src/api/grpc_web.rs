//! grpc-web through the gateway: `POST /{service}/{method}` with a grpc-web content type is
//! passed to the service's own listener (which speaks grpc-web) and the answer streamed back.
//! A console session works as for the REST API: the gateway adds a minted token once the
//! CSRF header has been checked; a bearer token is passed on.

use super::error::HttpError;
use super::{request_id, upstream_token};
use crate::state::Gateway;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use hcrm_kit::request::REQUEST_ID_HEADER;
use std::sync::Arc;
use tonic::Code;

/// Headers a grpc-web client sends that the service needs.
const PASSED: &[&str] = &[
    "content-type",
    "accept",
    "grpc-timeout",
    "x-grpc-web",
    "x-user-agent",
    "traceparent",
    "tracestate",
];

pub async fn forward(
    State(gw): State<Arc<Gateway>>,
    Path((service, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    let id = request_id(request.headers());
    match proxy(&gw, &service, &method, &id, request).await {
        Ok(response) => response,
        Err(err) => err.with_request_id(&id).into_response(),
    }
}

fn is_grpc_web(request: &Request) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc-web"))
}

async fn proxy(gw: &Gateway, service: &str, method: &str, id: &str, request: Request) -> Result<Response, HttpError> {
    if !is_grpc_web(&request) {
        return Err(HttpError::new(Code::NotFound, "no such page"));
    }
    if !gw.catalog.has_service(service) || gw.catalog.get(service, method).is_none() {
        return Err(HttpError::new(
            Code::Unimplemented,
            format!("no method {service}/{method}"),
        ));
    }
    let upstream = gw
        .upstreams
        .for_service(service)
        .ok_or_else(|| HttpError::new(Code::Unimplemented, format!("no service {service}")))?;
    let token = upstream_token(gw, request.headers()).await?;
    let mut outgoing = gw
        .http
        .post(format!("{}/{service}/{method}", upstream.url))
        .header("authorization", format!("Bearer {token}"))
        .header(REQUEST_ID_HEADER, id);
    for name in PASSED {
        if let Some(value) = request.headers().get(*name) {
            outgoing = outgoing.header(*name, value.clone());
        }
    }
    let body = axum::body::to_bytes(request.into_body(), gw.cfg.max_body_bytes)
        .await
        .map_err(|_| too_large(gw.cfg.max_body_bytes))?;
    let answer = outgoing.body(body).send().await.map_err(|e| {
        // The address and the cause are for the log, not for the caller.
        tracing::warn!(service = upstream.name, error = %e, "grpc-web forwarding failed");
        HttpError::new(
            Code::Unavailable,
            format!("the {} service is unavailable", upstream.name),
        )
    })?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        let name = name.as_str();
        if name.starts_with("grpc-") || name == "content-type" || name == REQUEST_ID_HEADER {
            response = response.header(name, value.as_bytes());
        }
    }
    let stream = answer.bytes_stream().map_err(std::io::Error::other);
    response
        .body(Body::from_stream(stream))
        .map_err(|e| HttpError::new(Code::Internal, format!("grpc-web response: {e}")))
}

/// 413 with the limit named.
fn too_large(limit: usize) -> HttpError {
    let mut err = HttpError::new(
        Code::ResourceExhausted,
        format!("the request body is larger than {limit} bytes"),
    );
    err.status = 413;
    err
}
