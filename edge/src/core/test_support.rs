//! Configuration and header builders shared by the core's tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{HeaderMap, HeaderName, HeaderValue};

use super::EdgeConfig;

/// The test configuration (one brain, small limits, fixed secrets) plus `extra` variables,
/// with `rules` as the rules file. The last value given for a variable wins; an empty one
/// unsets it.
pub(crate) fn config_with(extra: &[(&str, &str)], rules: &str) -> EdgeConfig {
    let mut vars: Vec<(String, String)> = [
        ("BRAIN_URL", "http://brain.internal:8080"),
        ("UPSTREAM_TIMEOUT_MS", "1500"),
        ("MAX_BODY_BYTES", "1000"),
        ("MAX_HEADER_BYTES", "4096"),
        ("MAX_URL_BYTES", "2048"),
        (
            "EDGE_SIGNING_SECRETS",
            "edge-signing-secret-0123456789abcdef",
        ),
        ("SIGN_BODY_MAX_BYTES", "100"),
        ("SESSION_KEYS", "k1:session-key-0123456789abcdef0123456789"),
        ("SESSION_TTL_SECS", "3600"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    EdgeConfig::from_vars_and_rules(
        |name| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        },
        rules,
    )
    .unwrap()
}

/// A header map of `pairs`, repeated names appended in order.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// A header map of the generated `pairs` that are valid header names and values (the rest are
/// dropped), for property tests.
pub(crate) fn lossy_headers(pairs: Vec<(String, Vec<u8>)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            map.append(name, value);
        }
    }
    map
}
