//! HTTP header names that are part of the wire contract.

/// Correlates one request across browser, edge and brain. The edge creates it when absent and
/// both services echo it on every response and in every log line about the request.
pub const REQUEST_ID: &str = "x-request-id";

/// The edge's own verdict on how a response was produced (`proxy`, `edge`); set on every edge
/// response so deployment checks can tell which hop answered.
pub const EDGE_SOURCE: &str = "x-edge-source";
