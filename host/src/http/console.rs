//! The web console: a page and its script and style, embedded in the
//! binary (nothing fetched at run time: no CDN, no Node). It uses the JSON
//! API and its event streams like any client, with the token the user
//! gives it (kept for the browser session).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

/// Assets may be cached only briefly: a new server version brings new ones.
const CACHE: &str = "no-cache";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, CACHE)], INDEX)
                    .into_response()
            }),
        )
        .route(
            "/console.js",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, CACHE)], SCRIPT)
            }),
        )
        .route(
            "/console.css",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, CACHE)], STYLE)
            }),
        )
}
