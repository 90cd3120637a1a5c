//! The versioned HTTP surface: every public endpoint of the brain under [`PREFIX`], as the
//! router serves it (paths in axum's `{param}` syntax, which is also OpenAPI's).
//!
//! This list is the contract's table of contents. The brain's tests check it against the router
//! (every entry is served, every method not listed answers 405, every routed path is listed) and
//! against the OpenAPI document (same operations, both ways), and the Rust client's tests that
//! some client method sends each operation (`client/tests/api.rs`).
//!
//! Versioning: everything lives under `/api/v1`. Within v1 changes are additive (new endpoints,
//! new optional fields, new error codes); a breaking change would be a new prefix served next
//! to the old one.

/// The version prefix of every API path.
pub const PREFIX: &str = "/api/v1";

/// One operation: a method on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// Full path with `{param}` placeholders, starting with [`PREFIX`].
    pub path: &'static str,
}

const fn op(method: &'static str, path: &'static str) -> Endpoint {
    Endpoint { method, path }
}

/// Every operation served under [`PREFIX`], grouped by resource.
pub const ENDPOINTS: &[Endpoint] = &[
    // The contract itself.
    op("GET", "/api/v1/openapi.json"),
    // Deployment diagnostics (`diag`).
    op("GET", "/api/v1/diag/stream"),
    op("GET", "/api/v1/diag/whoami"),
    op("GET", "/api/v1/diag/echo"),
    op("POST", "/api/v1/diag/echo"),
    op("PUT", "/api/v1/diag/echo"),
    op("PATCH", "/api/v1/diag/echo"),
    op("DELETE", "/api/v1/diag/echo"),
    // Datasets (`data`).
    op("GET", "/api/v1/datasets"),
    op("POST", "/api/v1/datasets"),
    op("POST", "/api/v1/datasets/import"),
    op("GET", "/api/v1/datasets/memory"),
    op("GET", "/api/v1/datasets/{id}"),
    op("PATCH", "/api/v1/datasets/{id}"),
    op("PUT", "/api/v1/datasets/{id}"),
    op("DELETE", "/api/v1/datasets/{id}"),
    op("POST", "/api/v1/datasets/{id}/rows"),
    op("PUT", "/api/v1/datasets/{id}/pin"),
    op("DELETE", "/api/v1/datasets/{id}/pin"),
    // Queries (`data`).
    op("POST", "/api/v1/queries/sql"),
    op("POST", "/api/v1/queries/json"),
    // Conversations (`chat`).
    op("GET", "/api/v1/threads"),
    op("POST", "/api/v1/threads"),
    op("GET", "/api/v1/threads/{id}"),
    op("PATCH", "/api/v1/threads/{id}"),
    op("DELETE", "/api/v1/threads/{id}"),
    op("GET", "/api/v1/threads/{id}/messages"),
    op("POST", "/api/v1/threads/{id}/messages"),
    op("GET", "/api/v1/runs/{id}"),
    op("GET", "/api/v1/runs/{id}/events"),
    op("POST", "/api/v1/runs/{id}/cancel"),
    op("GET", "/api/v1/usage"),
    // Accounts (`account`): a visitor's session moves to the user who signed in.
    op("GET", "/api/v1/session"),
    op("POST", crate::account::CLAIM_SESSION_PATH),
    // Agents and escalations (`agent`).
    op("GET", "/api/v1/agents"),
    op("GET", "/api/v1/escalations"),
    op("POST", "/api/v1/escalations/{id}/resolve"),
    op("GET", "/api/v1/escalations/{id}/messages"),
    // Documents and retrieval (`knowledge`).
    op("GET", "/api/v1/documents"),
    op("POST", "/api/v1/documents"),
    op("GET", "/api/v1/documents/{id}"),
    op("DELETE", "/api/v1/documents/{id}"),
    op("GET", "/api/v1/documents/{id}/text"),
    op("POST", "/api/v1/knowledge/search"),
];

/// Builds a concrete path from an [`Endpoint`] path by filling its `{name}` placeholders in
/// order with `args`, percent-encoding each (so an id can never add a path segment). `None` when
/// the number of arguments does not match the number of placeholders.
pub fn fill_path(template: &str, args: &[&str]) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}')? + start;
        out.push_str(&rest[..start]);
        encode_segment(args.next()?, &mut out);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    if args.next().is_some() {
        return None;
    }
    Some(out)
}

/// RFC 3986 path-segment encoding: unreserved characters stay, every other byte is `%XX`.
fn encode_segment(segment: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // `.` and `..` alone are dot-segments that URL normalisation would resolve away.
    let dot_segment = segment == "." || segment == "..";
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'~')
            || (byte == b'.' && !dot_segment);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_versioned_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for endpoint in ENDPOINTS {
            assert!(endpoint.path.starts_with(PREFIX), "{endpoint:?}");
            assert!(
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&endpoint.method),
                "{endpoint:?}"
            );
            assert!(
                seen.insert((endpoint.method, endpoint.path)),
                "{endpoint:?}"
            );
            assert!(!endpoint.path.ends_with('/'), "{endpoint:?}");
        }
    }

    #[test]
    fn paths_fill_with_encoded_arguments() {
        assert_eq!(
            fill_path("/api/v1/runs/{id}/events", &["a b/../c"]).unwrap(),
            "/api/v1/runs/a%20b%2F..%2Fc/events"
        );
        assert_eq!(fill_path("/api/v1/usage", &[]).unwrap(), "/api/v1/usage");
        assert_eq!(
            fill_path("/api/v1/runs/{id}", &[".."]).unwrap(),
            "/api/v1/runs/%2E%2E"
        );
        assert_eq!(fill_path("/api/v1/runs/{id}", &[]), None);
        assert_eq!(fill_path("/api/v1/usage", &["x"]), None);
    }
}
