//! The one error type of the HTTP layer and its rendering as [`ErrorBody`].
//!
//! Handlers return [`Result<T>`]. [`Error::into_response`] only sets the status and attaches the
//! code and message; the error-body middleware (`render_error_body`), which knows the request
//! id, writes the JSON body. The same middleware rewrites any other non-2xx response that is not
//! JSON (axum's own rejections, a caught panic) into the same shape, so every error the brain
//! produces looks alike.

use std::any::Any;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared_types::error::{ErrorBody, ErrorCode};

use crate::account::AccountError;
use crate::agent::escalations::EscalationError;
use crate::chat::ChatError;
use crate::data::DataError;
use crate::knowledge::KnowledgeError;
use crate::knowledge::extract::ExtractError;
use crate::store::StoreError;
use crate::telemetry::error_chain;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    /// This brain is shutting down and takes no new work: 503 with `x-edgebrain-draining: 1`,
    /// so the edge may send the request to another brain (nothing of it was done here).
    #[error("this brain is shutting down and takes no new work; retry (nothing was done)")]
    Draining,
    /// A body (or what it would become in memory) over a limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A route, or a resource that does not exist or is not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// A request body longer than `limit` bytes.
    pub fn body_over(limit: u64) -> Self {
        Error::PayloadTooLarge(format!("request body exceeds the limit of {limit} bytes"))
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::InvalidQuery(_) => ErrorCode::InvalidQuery,
            Error::InvalidJson(_) => ErrorCode::InvalidJson,
            Error::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Unavailable(_) | Error::Draining => ErrorCode::Unavailable,
            Error::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Unprocessable(_) => ErrorCode::Unprocessable,
            Error::RateLimited(_) => ErrorCode::RateLimited,
            Error::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Error::Store(error) if error.is_unavailable() => ErrorCode::Unavailable,
            Error::Store(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What the client is told. Server-side failures get a generic text: their details (sqlx
    /// messages, panics) stay in the log, found there by the request id.
    fn public_message(&self) -> String {
        match self {
            Error::Store(error) if error.is_unavailable() => {
                "the database is unavailable; retry later".to_owned()
            }
            Error::Store(_) | Error::Internal(_) => {
                "internal error; the server log has details under this request id".to_owned()
            }
            client_error => client_error.to_string(),
        }
    }
}

impl From<DataError> for Error {
    fn from(error: DataError) -> Self {
        match error {
            DataError::BadRequest(message) => Error::BadRequest(message),
            DataError::Invalid(message) => Error::Unprocessable(message),
            DataError::NotFound(message) => Error::NotFound(message),
            DataError::Forbidden(message) => Error::Forbidden(message),
            DataError::Conflict(message) => Error::Conflict(message),
            DataError::UnsupportedFormat(message) => Error::UnsupportedMediaType(message),
            DataError::TooLarge { limit } => Error::body_over(limit),
            over @ DataError::OverMemory { .. } => Error::PayloadTooLarge(over.to_string()),
            timeout @ DataError::Timeout { .. } => Error::Unprocessable(timeout.to_string()),
            busy @ DataError::Busy { .. } => Error::Unavailable(busy.to_string()),
            DataError::Unavailable(message) => Error::Unavailable(message),
            DataError::Store(error) => Error::Store(error),
            DataError::Internal(error) => Error::Internal(error),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.code();
        // The cause, for the log only (`log_server_error`); the client gets the public message.
        let cause = matches!(self, Error::Store(_) | Error::Internal(_))
            .then(|| ErrorCause(error_chain(&self)));
        let draining = matches!(self, Error::Draining);
        let mut response = status_of(code).into_response();
        if let Some(cause) = cause {
            response.extensions_mut().insert(cause);
        }
        if draining {
            response.headers_mut().insert(
                shared_types::headers::DRAINING,
                HeaderValue::from_static("1"),
            );
        }
        response.extensions_mut().insert(ErrorDetails {
            code,
            message: self.public_message(),
        });
        response
    }
}

impl From<EscalationError> for Error {
    fn from(error: EscalationError) -> Self {
        match error {
            EscalationError::NotFound(_) => Error::NotFound(error.to_string()),
            EscalationError::AlreadyResolved(_) => Error::Conflict(error.to_string()),
            EscalationError::NoteTooLong => Error::Unprocessable(error.to_string()),
            EscalationError::Store(store) => Error::Store(store),
        }
    }
}

impl From<ChatError> for Error {
    fn from(error: ChatError) -> Self {
        match error {
            ChatError::ThreadNotFound | ChatError::RunNotFound => {
                Error::NotFound(error.to_string())
            }
            ChatError::UnknownModel(_) | ChatError::UnknownAgent(_) => {
                Error::BadRequest(error.to_string())
            }
            ChatError::ThreadBusy(_) | ChatError::RunOnAnotherBrain => {
                Error::Conflict(error.to_string())
            }
            ChatError::BudgetExhausted { .. } => Error::RateLimited(error.to_string()),
            ChatError::ContextTooLong(_) | ChatError::NoSuchMessage | ChatError::InvalidTitle => {
                Error::Unprocessable(error.to_string())
            }
            ChatError::Template(message) => Error::Internal(anyhow::anyhow!(message)),
            ChatError::Store(store) => Error::Store(store),
        }
    }
}

impl From<AccountError> for Error {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::ClaimedByAnotherUser => Error::Conflict(error.to_string()),
            AccountError::Invalid(message) => Error::BadRequest(message),
            AccountError::RefreshRefused(_) => Error::Unauthorized(error.to_string()),
            AccountError::Store(store) => Error::Store(store),
            AccountError::Internal(internal) => Error::Internal(internal),
        }
    }
}

impl From<KnowledgeError> for Error {
    fn from(error: KnowledgeError) -> Self {
        match error {
            KnowledgeError::BadRequest(message) => Error::BadRequest(message),
            KnowledgeError::Unreadable(nul @ ExtractError::Nul { .. }) => {
                Error::BadRequest(nul.to_string())
            }
            KnowledgeError::UnsupportedFormat(_) => Error::UnsupportedMediaType(error.to_string()),
            KnowledgeError::TooLarge { limit } => Error::body_over(limit),
            KnowledgeError::Unreadable(_)
            | KnowledgeError::QuotaExceeded { .. }
            | KnowledgeError::EmbedTimedOut { .. } => Error::Unprocessable(error.to_string()),
            KnowledgeError::NotFound => Error::NotFound(error.to_string()),
            KnowledgeError::EmbedderUnavailable(_) => Error::Unavailable(error.to_string()),
            KnowledgeError::EmbedFailed(message) => {
                Error::Internal(anyhow::anyhow!("embedding failed: {message}"))
            }
            KnowledgeError::Store(store) => Error::Store(store),
            KnowledgeError::Internal(internal) => Error::Internal(internal),
        }
    }
}

/// Why a request failed on the server's side (the error chain), for the log line of
/// [`log_server_error`]; never sent to the client.
#[derive(Debug, Clone)]
pub(crate) struct ErrorCause(String);

/// One log line per 5xx answer, written by the error-body layer with the request id as a field
/// of its own: `error` with the cause when a handler's error knew it (store, internal, panic),
/// `warn` otherwise (unavailable, draining, a gateway error).
pub(crate) fn log_server_error(response: &Response, request_id: &str) {
    let status = response.status();
    if !status.is_server_error() {
        return;
    }
    let code = response
        .extensions()
        .get::<ErrorDetails>()
        .map_or_else(|| code_for_status(status), |details| details.code);
    match response.extensions().get::<ErrorCause>() {
        Some(ErrorCause(cause)) => {
            tracing::error!(request_id, code = %code, error = %cause, "request failed");
        }
        None => {
            tracing::warn!(request_id, code = %code, status = status.as_u16(), "request failed");
        }
    }
}

/// Code and message of an error response whose body is still to be written (with the request
/// id) by [`render_error_body`].
#[derive(Debug, Clone)]
pub(crate) struct ErrorDetails {
    code: ErrorCode,
    message: String,
}

/// Gives every error response the [`ErrorBody`] shape. Responses carrying [`ErrorDetails`] are
/// rendered from them; any other non-2xx response that is not already JSON (axum rejections,
/// tower-http layers) is rewritten with the code matching its status. JSON error responses
/// (the 503 [`shared_types::health::ReadinessReport`]) are left alone.
pub(crate) fn render_error_body(mut response: Response, request_id: &str) -> Response {
    let details = match response.extensions_mut().remove::<ErrorDetails>() {
        Some(details) => details,
        None if is_error(response.status()) && !is_json(&response) => {
            let code = code_for_status(response.status());
            ErrorDetails {
                code,
                message: generic_message(code).to_owned(),
            }
        }
        None => return response,
    };
    let body = ErrorBody::new(details.code, details.message, request_id);
    let json = match serde_json::to_vec(&body) {
        Ok(json) => json,
        // Unreachable for a struct of strings; still, never answer an error with a panic.
        Err(_) => {
            br#"{"error":{"code":"internal","message":"error rendering failed","request_id":""}}"#
                .to_vec()
        }
    };
    let (mut parts, _) = response.into_parts();
    parts.status = status_of(details.code);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}

/// Fallback for paths no route matches.
pub(crate) async fn not_found() -> Error {
    Error::NotFound("no such route".to_owned())
}

/// Fallback for known paths requested with a method they do not serve. axum still adds the
/// `Allow` header.
pub(crate) async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

/// Answer for a handler that panicked (`CatchPanicLayer`): a logged internal error instead of a
/// dropped connection.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    Error::Internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}

fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| essence(value).eq_ignore_ascii_case("application/json"))
}

/// The media type without parameters: `application/json; charset=utf-8` → `application/json`.
pub(crate) fn essence(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(essence, _)| essence)
        .trim()
}

/// The error code for a status set by someone else. Statuses without a code of their own fall
/// back to `bad_request` / `internal` (and take that code's status, keeping the code ↔ status
/// contract).
fn code_for_status(status: StatusCode) -> ErrorCode {
    ErrorCode::ALL
        .into_iter()
        .find(|code| code.http_status() == status.as_u16() && is_canonical(*code))
        .unwrap_or(if status.is_client_error() {
            ErrorCode::BadRequest
        } else {
            ErrorCode::Internal
        })
}

/// Several codes share 400; a bare 400 means `bad_request`.
fn is_canonical(code: ErrorCode) -> bool {
    !matches!(code, ErrorCode::InvalidJson | ErrorCode::InvalidQuery)
}

fn generic_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotFound => "no such route",
        ErrorCode::MethodNotAllowed => "method not allowed on this route",
        ErrorCode::PayloadTooLarge => "request body too large",
        ErrorCode::UriTooLong => "request URI too long",
        ErrorCode::HeadersTooLarge => "request headers too large",
        ErrorCode::UnsupportedMediaType => "unsupported content type",
        ErrorCode::Unavailable => "service unavailable; retry later",
        ErrorCode::GatewayTimeout => "timed out",
        code if code.http_status() < 500 => "bad request",
        _ => "internal error; the server log has details under this request id",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn foreign_statuses_map_to_their_codes() {
        assert_eq!(
            code_for_status(StatusCode::BAD_REQUEST),
            ErrorCode::BadRequest
        );
        assert_eq!(code_for_status(StatusCode::NOT_FOUND), ErrorCode::NotFound);
        assert_eq!(
            code_for_status(StatusCode::METHOD_NOT_ALLOWED),
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            code_for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            code_for_status(StatusCode::IM_A_TEAPOT),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_for_status(StatusCode::INTERNAL_SERVER_ERROR),
            ErrorCode::Internal
        );
        assert_eq!(
            code_for_status(StatusCode::NOT_IMPLEMENTED),
            ErrorCode::Internal
        );
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let error = Error::Internal(anyhow::anyhow!("password authentication failed for user x"));
        assert_eq!(error.code(), ErrorCode::Internal);
        assert!(!error.public_message().contains("password"));
    }

    #[test]
    fn essence_strips_parameters() {
        assert_eq!(
            essence("application/json; charset=utf-8"),
            "application/json"
        );
        assert_eq!(essence(" text/plain "), "text/plain");
    }
}
