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
/// JSON content type, 413 over the body limit, 400 `invalid_json` otherwise — including for a
/// string holding NUL (`\u0000`), which no stored text may contain (PostgreSQL's text cannot;
/// refused alike on SQLite). serde_json's recursion limit (128) bounds nesting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        if !is_json_content_type(&parts.headers) {
            return Err(Error::UnsupportedMediaType(
                "expected request with `Content-Type: application/json`".to_owned(),
            ));
        }
        let request = Request::from_parts(parts, body);
        let bytes = match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(Error::PayloadTooLarge(rejection.body_text()));
            }
            Err(rejection) => return Err(Error::BadRequest(rejection.body_text())),
        };
        if has_escaped_nul(&bytes) {
            return Err(Error::InvalidJson(
                "a JSON string holds a NUL character (\\u0000), which no text here may contain"
                    .to_owned(),
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::MissingJsonContentType(rejection)) => {
                Err(Error::UnsupportedMediaType(rejection.body_text()))
            }
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::PayloadTooLarge(rejection.body_text()))
            }
            Err(rejection) => Err(Error::InvalidJson(rejection.body_text())),
        }
    }
}

/// `application/json` or any `application/*+json`, as [`axum::Json`] accepts.
fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// True when a JSON text holds the escape `\u0000`. In JSON a backslash
/// only appears inside strings, as the start of an escape, so escapes are read pairwise: the
/// text `\\u0000` (an escaped backslash, then "u0000") is not NUL. A raw NUL byte is not
/// valid JSON at all and is refused by the parser.
pub(crate) fn has_escaped_nul(json: &[u8]) -> bool {
    let mut index = 0;
    while index < json.len() {
        if json[index] == b'\\' {
            if json.get(index + 1) == Some(&b'u')
                && json.get(index + 2..index + 6) == Some(b"0000".as_slice())
            {
                return true;
            }
            index += 2;
        } else {
            index += 1;
        }
    }
    false
}

/// True when a URI's path or query holds a percent-encoded NUL (`%00`); a raw NUL cannot be
/// in a URI at all.
pub(crate) fn has_encoded_nul(path_and_query: &str) -> bool {
    path_and_query
        .as_bytes()
        .windows(3)
        .any(|window| window == b"%00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_nul_is_found_and_escaped_backslashes_are_not_nul() {
        assert!(has_escaped_nul(br#"{"a":"x\u0000y"}"#));
        assert!(!has_escaped_nul(br#"{"a":"x\\u0000y"}"#));
        assert!(has_escaped_nul(br#"{"a":"\\\u0000"}"#));
        assert!(has_escaped_nul(br#"{"a":"\u00001"}"#));
        assert!(!has_escaped_nul(br#"{"a":"\u0001"}"#));
        assert!(has_encoded_nul("/api/v1/threads/a%00b"));
        assert!(!has_encoded_nul("/api/v1/threads/a%2500b"));
    }
}
