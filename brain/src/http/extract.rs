//! Extractors whose rejections are [`Error`]s, so a malformed request gets the error shape
//! with a specific code instead of axum's plain-text rejection.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::Error;

/// Like [`axum::extract::Query`], rejecting with 400 `invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(Error::InvalidQuery(rejection.body_text())),
        }
    }
}

/// Like [`axum::Json`], rejecting in the error shape: 415 `unsupported_media_type` without a
/// JSON content type, 413 over the body limit, 400 `invalid_json` otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::MissingJsonContentType(rejection)) => {
                Err(Error::UnsupportedMediaType(rejection.body_text()))
            }
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::BodyTooLarge(rejection.body_text()))
            }
            Err(rejection) => Err(Error::InvalidJson(rejection.body_text())),
        }
    }
}
