//! The gateway's HTTP application: the API and grpc-web (`api`), the staff console (`/console`,
//! signed in), the patients' pages (`/s/{token}`, `/complaint`; no sign-in, their own smaller
//! rate budget), and the static stylesheet.

pub mod account;
pub mod admin;
pub mod cases;
pub mod chart;
pub mod dashboard;
pub mod followups;
pub mod guide;
pub mod login;
pub mod opinion;
pub mod page;
pub mod patient_edit;
pub mod patients;
pub mod public;
pub mod surveys;

use crate::state::Gateway;
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::header::{self, HeaderValue};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

const CSS: &str = include_str!("../../static/console.css");

pub fn router(gw: Arc<Gateway>) -> Router {
    let console = Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/lang/{code}", get(login::language))
        .route("/console", get(dashboard::show))
        .route("/console/patients", get(patients::search))
        .route("/console/patients/new", get(patients::new_form).post(patients::create))
        .route("/console/patients/{id}", get(patients::show))
        .route("/console/patients/{id}/reveal", post(patients::reveal))
        .route(
            "/console/patients/{id}/edit",
            get(patient_edit::show).post(patient_edit::save),
        )
        .route("/console/account", get(account::show).post(account::change))
        .route("/console/admin", get(admin::show))
        .route("/console/admin/accounts", post(admin::create))
        .route("/console/admin/accounts/{username}", post(admin::update))
        .route("/console/admin/accounts/{username}/password", post(admin::password))
        .merge(followups::routes())
        .merge(cases::routes())
        .merge(surveys::routes())
        .merge(guide::routes())
        .merge(opinion::routes());
    let api = crate::api::router()
        .route("/{service}/{method}", post(crate::api::grpc_web::forward))
        .layer(cors(&gw.cfg.cors_origins));
    let staff = console
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(gw.clone(), crate::limits::staff));
    let patients_pages = Router::new()
        .route("/s/{token}", get(public::survey).post(public::answer))
        .route("/complaint", get(public::complaint_form).post(public::complaint))
        .layer(axum::middleware::from_fn_with_state(gw.clone(), crate::limits::public));
    Router::new()
        .merge(staff)
        .merge(patients_pages)
        .route("/static/console.css", get(css))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(host_from_authority))
        .layer(axum::extract::DefaultBodyLimit::max(gw.cfg.max_body_bytes))
        .with_state(gw)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Ready while not draining and the account database answers (Kubernetes' readiness probe).
async fn ready(axum::extract::State(gw): axum::extract::State<Arc<Gateway>>) -> Response {
    if *gw.stopping.borrow() {
        return (http::StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    match sqlx::query("SELECT 1").execute(&gw.store.db.pool).await {
        Ok(_) => "ready".into_response(),
        Err(_) => (http::StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

async fn not_found(headers: http::HeaderMap) -> Response {
    page::bare_error(
        page::Lang::of(&headers),
        crate::api::error::HttpError::new(tonic::Code::NotFound, "no such page"),
    )
}

/// CORS for the configured origins only; none configured = same origin only (no headers).
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-csrf-token"),
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("x-grpc-web"),
            header::HeaderName::from_static("x-user-agent"),
            header::HeaderName::from_static("grpc-timeout"),
        ])
        .expose_headers([
            header::HeaderName::from_static("grpc-status"),
            header::HeaderName::from_static("grpc-message"),
            header::HeaderName::from_static("grpc-status-details-bin"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// HTTP/2 requests carry the host in the URI (`:authority`), not in `Host`; the origin check
/// compares against `Host`, so it is filled in from the URI when missing.
async fn host_from_authority(mut request: Request, next: Next) -> Response {
    if !request.headers().contains_key(header::HOST)
        && let Some(value) = request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, value);
    }
    next.run(request).await
}

/// Headers that keep pages from being framed, sniffed or fed scripts from elsewhere.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
