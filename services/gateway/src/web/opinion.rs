//! (being written)

use crate::state::Gateway;
use axum::Router;
use std::sync::Arc;

/// The routes of this area, merged into the console by `web::router`.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
}
