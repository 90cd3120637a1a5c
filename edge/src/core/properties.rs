//! Property tests: whatever arrives, the core answers sensibly and never panics.

use core::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use shared_types::error::ErrorBody;
use shared_types::headers::REQUEST_ID;

use super::{Decision, EdgeConfig, Inputs, RequestHead, RequestId, decide};

fn config() -> EdgeConfig {
    EdgeConfig {
        brain_origin: "http://brain:8080".to_owned(),
        upstream_timeout: Duration::from_millis(100),
        max_body_bytes: 1 << 20,
        max_header_bytes: 8 << 10,
        max_url_bytes: 4 << 10,
        signing_secrets: vec![b"edge-signing-secret-0123456789abcdef".to_vec()],
        sign_body_max_bytes: 1 << 10,
        sessions: crate::core::session::SessionConfig {
            keys: crate::core::session::SessionConfig::parse_keys(
                "k1:session-key-0123456789abcdef0123456789",
            )
            .unwrap_or_default(),
            ttl_secs: 3600,
        },
    }
}

/// URLs skewed towards the interesting: real prefixes, percent escapes, dots, odd bytes.
fn url() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("/api".to_owned()),
        Just("/api/".to_owned()),
        Just("/health".to_owned()),
        Just("https://edge.example".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%FF".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("://".to_owned()),
        "[a-z0-9=&]{0,8}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        Just("x-request-id".to_owned()),
        Just("content-length".to_owned()),
        Just("connection".to_owned()),
        Just("host".to_owned()),
        "[a-z][a-z0-9-]{0,20}",
    ];
    let value = prop::collection::vec(any::<u8>(), 0..64);
    prop::collection::vec((name, value), 0..12).prop_map(|pairs| {
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
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        Just(Method::DELETE),
        "[A-Z]{1,10}".prop_filter_map("valid token", |m| Method::from_bytes(m.as_bytes()).ok()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_request_gets_a_well_formed_decision(
        method in method(),
        url in url(),
        headers in headers(),
        random in any::<[u8; 16]>(),
        now_ms in any::<u64>(),
    ) {
        let head = RequestHead { method: &method, url: &url, headers: &headers, client_ip: None };
        match decide(&head, &config(), Inputs { now_ms, random, session_random: [3; 16], nonce: [4; 16] }) {
            Decision::Respond(response) => {
                let id = response.headers.get(REQUEST_ID).expect("every response carries a request id");
                prop_assert!(RequestId::parse(id.as_bytes()).is_some());
                if response.status.is_success() {
                    prop_assert!(method == Method::HEAD || !response.body.is_empty());
                } else {
                    prop_assert!(response.status.is_client_error(), "{}", response.status);
                    let body: ErrorBody = serde_json::from_slice(&response.body).expect("error shape");
                    prop_assert_eq!(body.error.request_id.as_bytes(), id.as_bytes());
                    prop_assert_eq!(body.error.code.http_status(), response.status.as_u16());
                }
            }
            Decision::Proxy(proxy) => {
                let rest = proxy.url.strip_prefix("http://brain:8080").expect("brain origin");
                prop_assert!(rest == "/api" || rest.starts_with("/api/") || rest.starts_with("/api?"), "{}", rest);
                prop_assert!(rest.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert_eq!(proxy.headers.get_all(REQUEST_ID).iter().count(), 1);
                prop_assert!(proxy.headers.get("host").is_none() && proxy.headers.get("connection").is_none());
                prop_assert!(proxy.deadline_ms >= now_ms.min(u64::MAX - 100));
            }
        }
    }

    #[test]
    fn minted_request_ids_always_validate(random in any::<[u8; 16]>()) {
        let id = RequestId::from_random(random);
        prop_assert_eq!(RequestId::parse(id.as_str().as_bytes()), Some(id));
    }
}
