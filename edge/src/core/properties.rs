//! Property tests: whatever arrives, the core answers sensibly and never panics.

use http::{HeaderMap, Method};
use proptest::prelude::*;

use crate::core::test_support::lossy_headers;
use shared_types::error::ErrorBody;
use shared_types::headers::REQUEST_ID;

use super::{Decision, EdgeConfig, Inputs, RequestHead, RequestId, decide};

fn config() -> EdgeConfig {
    let vars = [
        ("BRAIN_URL", "http://brain:8080"),
        ("UPSTREAM_TIMEOUT_MS", "1000"),
        ("MAX_BODY_BYTES", "1048576"),
        ("MAX_HEADER_BYTES", "16384"),
        ("MAX_URL_BYTES", "4096"),
        (
            "EDGE_SIGNING_SECRETS",
            "edge-signing-secret-0123456789abcdef",
        ),
        ("SIGN_BODY_MAX_BYTES", "1024"),
        ("SESSION_KEYS", "k1:session-key-0123456789abcdef0123456789"),
        ("SESSION_TTL_SECS", "3600"),
        ("CORS", r#"{"allowed_origins": ["https://app.example"]}"#),
        (
            "RATE_LIMITS",
            r#"[{"name": "default", "limit": 10, "window_secs": 60}]"#,
        ),
        (
            "ROUTES",
            r#"[{"path": "/api/v1/cached/*", "cache": {"ttl_secs": 60}}]"#,
        ),
    ];
    match EdgeConfig::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }) {
        Ok(config) => config,
        Err(error) => panic!("the property-test configuration is valid: {error}"),
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
    prop::collection::vec((name, value), 0..12).prop_map(lossy_headers)
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
        match decide(&head, &config(), None, Inputs { now_ms, random, session_random: [3; 16], nonce: [4; 16], keys_refreshed: false }) {
            Decision::Respond(response) => {
                let id = response.headers.get(REQUEST_ID).expect("every response carries a request id");
                prop_assert!(RequestId::parse(id.as_bytes()).is_some());
                if response.status.is_success() {
                    // Empty only for HEAD and answered preflights (204).
                    prop_assert!(method == Method::HEAD || !response.body.is_empty() || response.status == 204);
                } else if response.status.is_redirection() {
                    // vercel.json redirects: a Location, always a valid header value.
                    prop_assert!(response.headers.get("location").is_some());
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
            Decision::RefreshKeys => prop_assert!(false, "no key store, so no key refresh"),
            // The sign-in endpoints are decided by `signin::endpoint` (with the isolate's state).
            Decision::SignIn => prop_assert!(url.contains("/auth/"), "{}", url),
            Decision::RefreshSignIn { .. } => prop_assert!(false, "no sign-in configured"),
        }
    }

    #[test]
    fn minted_request_ids_always_validate(random in any::<[u8; 16]>()) {
        let id = RequestId::from_random(random);
        prop_assert_eq!(RequestId::parse(id.as_str().as_bytes()), Some(id));
    }
}

// The edge→brain signature (`shared_types::signature`), which the edge produces and the brain
// verifies: parsing never panics on any header, and no change to a signed part verifies.
mod signature {
    use proptest::prelude::*;
    use shared_types::signature::{
        SignatureHeader, SignedParts, body_digest, brain_authority, header_value,
    };

    const SECRET: &[u8] = b"property-signing-secret-0123456789abcdef";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn parsing_arbitrary_headers_never_panics(value in "\\PC{0,600}") {
            let _ = SignatureHeader::parse(&value);
        }

        #[test]
        fn structured_garbage_never_verifies(
            t in any::<u64>(),
            n in "[0-9a-f]{32}",
            d in "[0-9a-f]{64}",
            v in "[0-9a-f]{64}",
        ) {
            let header = SignatureHeader::parse(&format!("t={t},n={n},d={d},v1={v}"));
            if let Ok(header) = header {
                let parts = header.parts("GET", "/api/x", ["", "", "", ""]);
                prop_assert!(header.verify(&parts, [SECRET], t, 300).is_err());
            }
        }

        #[test]
        fn any_changed_part_or_secret_fails_verification(
            method in "(GET|POST|PUT|DELETE)",
            path in "/api/[a-z0-9/?=&%-]{0,60}",
            body in proptest::collection::vec(any::<u8>(), 0..200),
            user in "[a-z0-9-]{0,20}",
            session in "[0-9a-f]{32}",
            scopes in "[a-z: ]{0,30}",
            network in "[0-9a-f:./]{0,24}",
            timestamp in 1_000_000_000u64..4_000_000_000,
            nonce in "[0-9a-f]{32}",
            brain in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
            which in 0usize..9,
        ) {
            let digest = body_digest(&body);
            let authority = brain_authority(&brain).unwrap_or_else(|| "brain".to_owned());
            let parts = SignedParts {
                timestamp_secs: timestamp,
                nonce: &nonce,
                method: &method,
                authority: &authority,
                path_and_query: &path,
                body_digest: &digest,
                identity: [&user, &session, &scopes, &network],
            };
            let header = SignatureHeader::parse(&header_value(&parts, [SECRET])).unwrap_or_else(|e| {
                panic!("a header the edge writes must parse: {e}")
            });
            let identity = [user.as_str(), session.as_str(), scopes.as_str(), network.as_str()];
            prop_assert!(header.verify(&header.parts(&method, &path, identity), [SECRET], timestamp, 300).is_ok());

            let changed_path = format!("{path}x");
            let changed_user = format!("{user}x");
            let changed_session = format!("{session}0");
            let changed_scopes = format!("{scopes} admin");
            let changed_network = format!("{network}0");
            // The same request, claimed for another brain.
            let mut moved = header.clone();
            moved.authority = Some(format!("x{authority}"));
            let tampered = match which {
                8 => moved.parts(&method, &path, identity),
                0 => header.parts(if method == "GET" { "POST" } else { "GET" }, &path, identity),
                1 => header.parts(&method, &changed_path, identity),
                2 => header.parts(&method, &path, [&changed_user, &session, &scopes, &network]),
                3 => header.parts(&method, &path, [&user, &changed_session, &scopes, &network]),
                4 => header.parts(&method, &path, [&user, &session, &changed_scopes, &network]),
                7 => header.parts(&method, &path, [&user, &session, &scopes, &changed_network]),
                _ => header.parts(&method, &path, identity),
            };
            let secret: &[u8] = if which == 5 { b"another-secret-0123456789abcdef-xyz" } else { SECRET };
            let now = if which == 6 { timestamp + 301 } else { timestamp };
            prop_assert!(header.verify(&tampered, [secret], now, 300).is_err());
        }
    }
}
