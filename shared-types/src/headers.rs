//! HTTP header names that are part of the wire contract.

/// Correlates one request across browser, edge and brain. The edge creates it when absent and
/// both services echo it on every response and in every log line about the request.
pub const REQUEST_ID: &str = "x-request-id";

/// The edge's own verdict on how a response was produced (`proxy`, `edge`); set on every edge
/// response so deployment checks can tell which hop answered.
pub const EDGE_SOURCE: &str = "x-edge-source";

/// The session id of a non-browser client (browsers get the `__Host-` session cookie instead).
/// Sent by clients to the edge, and returned by the edge when it issues or replaces one.
pub const CLIENT_SESSION_ID: &str = "x-session-id";

/// Edge → brain: the verified user id (JWT `sub`), absent for anonymous callers. Only the edge
/// may set it: the brain drops it unless it is covered by [`EDGE_SIGNATURE`].
pub const IDENTITY_USER: &str = "x-edgebrain-user";

/// Edge → brain: the edge-issued session id (present for anonymous and signed-in callers).
pub const IDENTITY_SESSION: &str = "x-edgebrain-session";

/// Edge → brain: the caller's scopes/roles, space-separated (OAuth `scope` style).
pub const IDENTITY_SCOPES: &str = "x-edgebrain-scopes";

/// The identity headers, in the order they enter the request signature.
pub const IDENTITY_HEADERS: [&str; 3] = [IDENTITY_USER, IDENTITY_SESSION, IDENTITY_SCOPES];

/// Edge → brain: `t=<unix seconds>,n=<nonce>,d=<body digest>,v1=<hex hmac>[,v1=…]`; see
/// `shared_types::signature`.
pub const EDGE_SIGNATURE: &str = "x-edgebrain-signature";

/// Edge → client: how the edge cache produced this response: `HIT` (fresh from the cache),
/// `MISS` (fetched from the brain, possibly stored), `STALE` (served from the cache while it is
/// refreshed in the background) or `BYPASS` (not cacheable; the brain answered).
pub const EDGE_CACHE: &str = "x-edge-cache";
