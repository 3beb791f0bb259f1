//! The REST/JSON API: `POST /api/v1/{service}/{method}` for every gRPC method of the services,
//! the request message as the JSON body and the response as JSON (server streams as NDJSON, one
//! message per line; client streams take a JSON array). Described by `/api/v1/openapi.json`.
//! grpc-web requests to `/{service}/{method}` are forwarded as they are.

pub mod catalog;
pub mod error;
pub mod grpc_web;
pub mod openapi;

use crate::auth::{self, CSRF_HEADER, Credentials};
use crate::state::Gateway;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use catalog::{RawCodec, Route, from_json, to_json};
use error::HttpError;
use futures::StreamExt;
use hcrm_kit::request::REQUEST_ID_HEADER;
use http::HeaderMap;
use std::sync::Arc;
use tonic::Code;

pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/{service}/{method}", post(call))
}

async fn openapi_json(State(gw): State<Arc<Gateway>>) -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], gw.openapi.clone()).into_response()
}

/// The caller's request id when it is a sensible one, else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(hcrm_kit::new_id)
}

async fn call(
    State(gw): State<Arc<Gateway>>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = request_id(&headers);
    match forward(&gw, &service, &method, &headers, &request_id, body).await {
        Ok(response) => response,
        Err(err) => err.with_request_id(&request_id).into_response(),
    }
}

/// The bearer token to send upstream: the caller's own, or one minted for the session's account
/// after its CSRF token is checked.
pub async fn upstream_token(gw: &Gateway, headers: &HeaderMap) -> Result<String, HttpError> {
    auth::check_origin(gw, headers)?;
    match auth::credentials(gw, headers).await? {
        Credentials::Bearer(token) => Ok(token),
        Credentials::Session(who) => {
            auth::check_csrf(&who, headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
            Ok(gw.mint(&who.account.principal())?)
        }
    }
}

fn request_of<T>(
    message: T,
    token: &str,
    request_id: &str,
    headers: &HeaderMap,
    gw: &Gateway,
) -> Result<tonic::Request<T>, HttpError> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| HttpError::new(Code::Unauthenticated, "the bearer token is not a header value"))?;
    metadata.insert("authorization", bearer);
    if let Ok(value) = request_id.parse() {
        metadata.insert(REQUEST_ID_HEADER, value);
    }
    // Keep the browser's or the integration's trace.
    for name in ["traceparent", "tracestate"] {
        if let Some(value) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            metadata.insert(name, value);
        }
    }
    request.set_timeout(gw.call_timeout());
    Ok(request)
}

/// Reads the body: one JSON object, or for client streams a JSON array of them.
fn messages(route: &Route, body: &[u8]) -> Result<Vec<Bytes>, HttpError> {
    let value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        if route.client_streaming() {
            serde_json::json!([])
        } else {
            serde_json::json!({})
        }
    } else {
        serde_json::from_slice(body).map_err(|e| HttpError::invalid("body", format!("is not JSON: {e}")))?
    };
    if route.client_streaming() {
        let items = value.as_array().ok_or_else(|| {
            HttpError::invalid(
                "body",
                "must be a JSON array of request messages for this streaming method",
            )
        })?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| from_json(route.input(), item).map_err(|e| HttpError::invalid(&format!("body[{i}]"), e)))
            .collect()
    } else {
        if !value.is_object() {
            return Err(HttpError::invalid("body", "must be a JSON object"));
        }
        Ok(vec![
            from_json(route.input(), &value).map_err(|e| HttpError::invalid("body", e))?,
        ])
    }
}

/// Calls one method with a JSON body.
pub async fn forward(
    gw: &Gateway,
    service: &str,
    method: &str,
    headers: &HeaderMap,
    request_id: &str,
    body: Bytes,
) -> Result<Response, HttpError> {
    let route = gw.catalog.get(service, method).ok_or_else(|| {
        HttpError::new(
            Code::NotFound,
            format!("no method {service}/{method}; the methods are listed in /api/v1/openapi.json"),
        )
    })?;
    let token = upstream_token(gw, headers).await?;
    let mut messages = messages(route, &body)?;
    let mut grpc = tonic::client::Grpc::new(route.upstream.channel.clone());
    grpc.ready().await.map_err(|e| {
        HttpError::new(
            Code::Unavailable,
            format!("the {} service is unreachable: {e}", route.upstream.name),
        )
    })?;
    let path = route.grpc_path.clone();
    let output = route.output();
    let stream_out = route.server_streaming();
    if !route.client_streaming() {
        let message = messages.pop().unwrap_or_default();
        let request = request_of(message, &token, request_id, headers, gw)?;
        if stream_out {
            let stream = grpc.server_streaming(request, path, RawCodec).await?.into_inner();
            return Ok(ndjson(output, stream));
        }
        let response = grpc.unary(request, path, RawCodec).await?.into_inner();
        return json_response(output, response);
    }
    let request = request_of(futures::stream::iter(messages), &token, request_id, headers, gw)?;
    if stream_out {
        let stream = grpc.streaming(request, path, RawCodec).await?.into_inner();
        return Ok(ndjson(output, stream));
    }
    let response = grpc.client_streaming(request, path, RawCodec).await?.into_inner();
    json_response(output, response)
}

fn json_response(output: prost_reflect::MessageDescriptor, bytes: Bytes) -> Result<Response, HttpError> {
    let value = to_json(output, bytes).map_err(|e| HttpError::new(Code::Internal, e))?;
    Ok(axum::Json(value).into_response())
}

/// A server stream as NDJSON: one message per line; an error ends the stream with one
/// `{"error": …}` line (the status line was sent long before).
fn ndjson(output: prost_reflect::MessageDescriptor, stream: tonic::Streaming<Bytes>) -> Response {
    let lines = stream.map(move |item| {
        let value = match item {
            Ok(bytes) => to_json(output.clone(), bytes).unwrap_or_else(|e| HttpError::new(Code::Internal, e).body()),
            Err(status) => HttpError::from(status).body(),
        };
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        Ok::<Bytes, std::convert::Infallible>(line.into())
    });
    (
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}
