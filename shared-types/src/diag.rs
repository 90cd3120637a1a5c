//! Deployment diagnostics.
//!
//! `GET /api/v1/diag/stream?events=N&interval_ms=M` answers with `N` Server-Sent Events, one every
//! `M` milliseconds, each `event: tick` with a [`StreamTick`] as `data`. A deployment check reads the
//! first tick and notes that it arrived before the last one was sent, which proves that no hop
//! (edge, CDN, reverse proxy) buffers streamed responses.
//!
//! `GET /api/v1/diag/whoami` answers with the caller's identity as the brain sees it
//! ([`WhoAmI`]): proof that the edge's identity arrives, signed, at the brain.
//!
//! `POST|PUT|PATCH|DELETE|GET /api/v1/diag/echo` answers with an [`EchoReport`] describing the
//! request as the brain received it, which proves that method, path, query, headers and body
//! cross every hop intact.

use serde::{Deserialize, Serialize};

/// Query of the stream probe. Both fields are bounded by the brain's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamParams {
    /// Number of events to send (default 5).
    #[serde(default = "StreamParams::default_events")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub events: u32,
    /// Pause between events in milliseconds (default 200).
    #[serde(default = "StreamParams::default_interval_ms")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub interval_ms: u64,
    /// Abort the stream (reset, no clean end) right after this many events: proves that every
    /// hop reports a broken stream as an error rather than a clean close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_after: Option<u32>,
}

impl StreamParams {
    const fn default_events() -> u32 {
        5
    }
    const fn default_interval_ms() -> u64 {
        200
    }
}

impl Default for StreamParams {
    fn default() -> Self {
        Self {
            events: Self::default_events(),
            interval_ms: Self::default_interval_ms(),
            break_after: None,
        }
    }
}

/// SSE event name of each stream probe event.
pub const STREAM_TICK_EVENT: &str = "tick";

/// `data` of one stream probe event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamTick {
    /// 1-based position of this event.
    pub seq: u32,
    /// Total number of events in this stream.
    pub of: u32,
    /// Brain wall clock when the event was written, in milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
}

/// `GET /api/v1/session` (and the operators' `GET /api/v1/diag/whoami`): the caller as the brain
/// sees it, after edge-signature checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    /// The signed-in user (JWT `sub`), if any.
    pub user_id: Option<String>,
    /// The edge session.
    pub session_id: Option<String>,
    pub scopes: Vec<String>,
    /// The tenancy key everything this caller owns is stored under (`user:…` or `session:…`).
    pub owner: String,
    /// The key the caller's token budget counts under: `user:…` when signed in, else the
    /// network the edge saw (`network:…`), so a new session brings no new budget. Absent from
    /// brains older than this field.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub budget_key: Option<String>,
}

/// The request as the brain saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EchoReport {
    pub method: String,
    pub path: String,
    /// Raw query string without `?`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Request headers, lower-cased names, in arrival order. Repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    /// Length of the request body in bytes.
    pub body_bytes: u64,
    /// The body parsed as JSON; present when the body is non-empty (it must then be JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_params_default_when_absent() {
        let p: StreamParams = serde_json::from_str("{}").unwrap();
        assert_eq!(p, StreamParams::default());
        let p: StreamParams = serde_json::from_str(r#"{"events":3,"interval_ms":100}"#).unwrap();
        assert_eq!(
            p,
            StreamParams {
                events: 3,
                interval_ms: 100,
                break_after: None,
            }
        );
    }

    #[test]
    fn tick_wire_shape() {
        let t = StreamTick {
            seq: 1,
            of: 3,
            sent_at_ms: 42,
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"seq":1,"of":3,"sent_at_ms":42}"#
        );
    }
}
