//! The one error shape: `{"error":{"code":"…","message":"…","request_id":"…"}}`.

use serde::{Deserialize, Serialize};

/// Body of every non-2xx response produced by edgebrain itself (edge or brain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Machine-readable, stable. Clients branch on this, never on `message`.
    pub code: ErrorCode,
    /// Human-readable explanation; wording may change between releases.
    pub message: String,
    /// The `x-request-id` of the failed request, for support and log correlation.
    pub request_id: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                request_id: request_id.into(),
            },
        }
    }
}

/// The stable list of error codes. Each code has one HTTP status ([`ErrorCode::http_status`]).
///
/// Codes are part of the public contract: new ones may be added, existing ones are never renamed
/// or given another status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the request is malformed in a way no more specific code describes.
    BadRequest,
    /// 400: the body is not valid JSON, or not the JSON the endpoint expects.
    InvalidJson,
    /// 400: a query-string parameter is missing, malformed or out of range.
    InvalidQuery,
    /// 401: authentication is required or the credentials are invalid.
    Unauthorized,
    /// 403: authenticated, but not allowed to do this.
    Forbidden,
    /// 404: no such route or resource.
    NotFound,
    /// 405: the route exists but not for this method.
    MethodNotAllowed,
    /// 409: the request conflicts with the current state of the resource.
    Conflict,
    /// 413: the body exceeds the configured limit.
    PayloadTooLarge,
    /// 414: the URL exceeds the configured limit.
    UriTooLong,
    /// 415: the body's content type is not accepted by the endpoint.
    UnsupportedMediaType,
    /// 422: well-formed, but semantically invalid.
    Unprocessable,
    /// 429: a rate limit was hit; see `Retry-After`.
    RateLimited,
    /// 431: the request headers exceed the configured limit.
    HeadersTooLarge,
    /// 500: a bug or an unexpected failure; details are in the server log under the request id.
    Internal,
    /// 502: the edge could not reach the brain, or the brain's answer was unusable.
    BadGateway,
    /// 503: a dependency (such as the database) is not available right now.
    Unavailable,
    /// 504: the brain did not answer within the edge's upstream timeout.
    GatewayTimeout,
    /// A code this client does not know (sent by a newer server). Never sent by edgebrain.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code edgebrain may send, in documentation order.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidQuery,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UriTooLong,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unprocessable,
        ErrorCode::RateLimited,
        ErrorCode::HeadersTooLarge,
        ErrorCode::Internal,
        ErrorCode::BadGateway,
        ErrorCode::Unavailable,
        ErrorCode::GatewayTimeout,
    ];

    /// The HTTP status that always accompanies this code.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::InvalidJson | ErrorCode::InvalidQuery => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UriTooLong => 414,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Unprocessable => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
            ErrorCode::BadGateway => 502,
            ErrorCode::Unavailable => 503,
            ErrorCode::GatewayTimeout => 504,
        }
    }

    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::BadGateway => "bad_gateway",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::GatewayTimeout => "gateway_timeout",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody::new(ErrorCode::BadGateway, "brain unreachable", "req-1");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "bad_gateway", "message": "brain unreachable", "request_id": "req-1"}})
        );
        let back: ErrorBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn every_code_round_trips_and_as_str_matches_serde() {
        for code in ErrorCode::ALL {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&wire).unwrap();
            assert_eq!(back, code);
            assert!(
                (400..600).contains(&code.http_status()),
                "{code} has no error status"
            );
        }
    }

    #[test]
    fn the_code_list_is_stable() {
        // Renaming a code breaks every deployed client: this list may only grow.
        let wire: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            wire,
            [
                "bad_request",
                "invalid_json",
                "invalid_query",
                "unauthorized",
                "forbidden",
                "not_found",
                "method_not_allowed",
                "conflict",
                "payload_too_large",
                "uri_too_long",
                "unsupported_media_type",
                "unprocessable",
                "rate_limited",
                "headers_too_large",
                "internal",
                "bad_gateway",
                "unavailable",
                "gateway_timeout",
            ]
        );
    }

    #[test]
    fn unknown_codes_from_newer_servers_still_parse() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":{"code":"quota_exhausted","message":"m","request_id":"r"}}"#,
        )
        .unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
    }
}
