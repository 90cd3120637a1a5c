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

    /// 200 with `value` as JSON.
    pub fn json_ok(value: &impl serde::Serialize, request_id: &RequestId) -> Self {
        Self::json(StatusCode::OK, value, request_id)
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

/// The Server-Sent Event the edge appends when the brain's event stream breaks off before its
/// end (connection reset, brain crash), so the client sees an explicit error rather than a
/// clean close that looks like success. `data` is an AI SDK UI-message-stream error part
/// (`{"type":"error","errorText":…}`) with the error code and request id added.
pub fn stream_broken_event(request_id: &RequestId) -> Vec<u8> {
    let data = serde_json::json!({
        "type": "error",
        "errorText": "the brain's stream broke off before it ended",
        "code": ErrorCode::BadGateway,
        "request_id": request_id.as_str(),
    });
    format!("event: error\ndata: {data}\n\n").into_bytes()
}

/// True when the response is a Server-Sent Events stream (the adapter guards those with
/// [`stream_broken_event`]).
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// Sets `x-request-id`, replacing any value already present.
pub(crate) fn set_request_id(headers: &mut HeaderMap, request_id: &RequestId) {
    // RequestId only holds visible ASCII, so this conversion always succeeds.
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert(HeaderName::from_static(REQUEST_ID), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_stream_ends_in_an_error_event_with_the_request_id() {
        let id = RequestId::parse(b"rid-1").unwrap_or_else(|| RequestId::from_random([0; 16]));
        let event = String::from_utf8(stream_broken_event(&id)).unwrap_or_default();
        assert!(event.starts_with("event: error\ndata: {"), "{event}");
        assert!(event.ends_with("\n\n"), "{event}");
        let data = event
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        assert_eq!(value["type"], "error");
        assert_eq!(value["code"], "bad_gateway");
        assert_eq!(value["request_id"], "rid-1");
    }

    #[test]
    fn event_streams_are_recognised_by_their_media_type() {
        let mut headers = HeaderMap::new();
        assert!(!is_event_stream(&headers));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Text/Event-Stream; charset=utf-8"),
        );
        assert!(is_event_stream(&headers));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_event_stream(&headers));
    }
}
