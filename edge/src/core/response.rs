//! Responses the edge produces itself: health and errors, in the shared wire shapes.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use shared_types::error::{ErrorBody, ErrorCode};
use shared_types::headers::REQUEST_ID;
use shared_types::health::{HealthReport, Service, Status};

use super::request_id::RequestId;

/// A complete response, ready for the adapter to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl EdgeResponse {
    /// The error shape with the status that belongs to `code`.
    pub fn error(code: ErrorCode, message: impl Into<String>, request_id: &RequestId) -> Self {
        let body = ErrorBody::new(code, message, request_id.as_str());
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::json(status, &body, request_id)
    }

    /// The edge's own liveness report.
    pub fn health(request_id: &RequestId) -> Self {
        let report = HealthReport {
            status: Status::Ok,
            service: Service::Edge,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        Self::json(StatusCode::OK, &report, request_id)
    }

    fn json(status: StatusCode, value: &impl serde::Serialize, request_id: &RequestId) -> Self {
        // Serializing these plain structs cannot fail; fall back to a fixed body rather than panic.
        let body = serde_json::to_vec(value).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"serialization failed","request_id":""}}"#
                .to_vec()
        });
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        set_request_id(&mut headers, request_id);
        Self {
            status,
            headers,
            body,
        }
    }

    /// Drops the body (for `HEAD`), keeping status and headers.
    pub fn without_body(mut self) -> Self {
        self.body.clear();
        self
    }
}

/// Sets `x-request-id`, replacing any value already present.
pub(crate) fn set_request_id(headers: &mut HeaderMap, request_id: &RequestId) {
    // RequestId only holds visible ASCII, so this conversion always succeeds.
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert(HeaderName::from_static(REQUEST_ID), value);
    }
}
