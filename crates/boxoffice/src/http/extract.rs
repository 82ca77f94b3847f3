//! Extractors whose rejections use the service's problem+json format.

use super::problem::ApiError;
use super::AppState;
use crate::domain::error::Code;
use crate::domain::{Error, IdempotencyKey};
use crate::queue::Ticket;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON body; malformed JSON, wrong types and missing fields are 400, an oversized body 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Error {
    match r {
        JsonRejection::JsonDataError(e) => Error::new(Code::InvalidBody, e.body_text()),
        JsonRejection::JsonSyntaxError(e) => Error::new(Code::MalformedJson, e.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            Error::new(Code::UnsupportedMediaType, "send the body as Content-Type: application/json")
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::new(Code::PayloadTooLarge, "the request body is too large")
        }
        other => Error::new(Code::InvalidBody, other.body_text()),
    }
}

/// Path parameters; a non-numeric id is 400.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| ApiError(Error::new(Code::InvalidPath, e.body_text())))
    }
}

/// An id in the path, read as the contract's JSON Schema reads an integer: `7`, or a whole number
/// spelled `7.0` or `7e0` (as JSON bodies are, `domain::whole_number`); anything else is 400.
/// Whether it names a valid id (positive) is the domain's to say.
pub struct PathId(pub i64);

impl<'de> serde::Deserialize<'de> for PathId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse::<i64>()
            .ok()
            .or_else(|| raw.parse::<serde_json::Number>().ok().as_ref().and_then(crate::domain::whole_number))
            .map(PathId)
            .ok_or_else(|| serde::de::Error::custom(format!("Cannot parse `{raw}` to a whole number")))
    }
}

/// Query parameters; anything unparsable is 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError(Error::new(Code::InvalidQuery, e.body_text())))
    }
}

/// The verified queue token from `Authorization: Bearer <token>`.
pub struct Bearer(pub Ticket);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError(Error::new(
                Code::TokenMissing,
                "send the queue token as Authorization: Bearer <token>",
            )));
        };
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).ok_or_else(|| {
            ApiError(Error::new(Code::TokenInvalid, "the Authorization header is not a Bearer token"))
        })?;
        Ok(Bearer(state.app.verify(token)?))
    }
}

/// For Server-Sent Events: the token from the Authorization header, or from `?token=` because
/// a browser's EventSource cannot set headers.
pub struct StreamBearer(pub Ticket);

impl FromRequestParts<AppState> for StreamBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Bearer::from_request_parts(parts, state).await.map(|b| StreamBearer(b.0));
        }
        #[derive(serde::Deserialize)]
        struct Q {
            token: Option<String>,
        }
        let ApiQuery(q) = ApiQuery::<Q>::from_request_parts(parts, state).await?;
        let token = q.token.ok_or_else(|| {
            ApiError(Error::new(Code::TokenMissing, "send the queue token as Authorization: Bearer or ?token="))
        })?;
        Ok(StreamBearer(state.app.verify(&token)?))
    }
}

/// The `Idempotency-Key` header, if sent.
pub struct IdemKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdemKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get("idempotency-key") {
            None => Ok(IdemKey(None)),
            Some(v) => {
                let s = v.to_str().map_err(|_| {
                    ApiError(Error::new(Code::InvalidIdempotencyKey, "Idempotency-Key must be visible ASCII"))
                })?;
                Ok(IdemKey(Some(IdempotencyKey::parse(s)?)))
            }
        }
    }
}
