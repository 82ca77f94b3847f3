//! The waiting-room and booking pages, compiled into the binary. `--web-dir` serves them from
//! disk instead, for working on the pages without rebuilding.

use super::AppState;
use crate::domain::error::Code;
use crate::domain::Error;
use crate::http::extract::ApiPath;
use crate::http::problem::ApiError;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../../../../web/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../../../web/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../../../web/style.css")),
    ("admin.html", "text/html; charset=utf-8", include_str!("../../../../web/admin.html")),
    ("admin.js", "text/javascript; charset=utf-8", include_str!("../../../../web/admin.js")),
];

fn serve(s: &AppState, name: &str) -> Response {
    let Some((_, mime, embedded)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError(Error::new(Code::RouteNotFound, "no such page")).into_response();
    };
    let body = match &s.web_dir {
        Some(dir) => match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => text,
            Err(_) => return ApiError(Error::new(Code::RouteNotFound, "no such page")).into_response(),
        },
        None => (*embedded).to_owned(),
    };
    ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

pub async fn index(State(s): State<AppState>) -> Response {
    serve(&s, "index.html")
}

/// The operator's page: live figures and controls of each line (it asks for the admin secret).
pub async fn admin(State(s): State<AppState>) -> Response {
    serve(&s, "admin.html")
}

pub async fn asset(State(s): State<AppState>, ApiPath(name): ApiPath<String>) -> Response {
    serve(&s, &name)
}
