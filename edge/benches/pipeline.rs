//! CPU cost of the edge core per request: the whole pipeline `decide` runs (limits, URL checks,
//! CORS, vercel.json rules, route table, JWT verification, session, identity headers, proxy
//! plan) plus the edge→brain signature. Native code; the wasm build runs the same logic.
//!
//! `cargo bench -p edge --bench pipeline`; results in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use edge::core::auth::KeyStore;
use edge::core::{BodySigning, Decision, EdgeConfig, Inputs, RequestHead, decide};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, Method};
use sha2::Sha256;

const NOW_SECS: u64 = 1_800_000_000;
const HS_SECRET: &str = "bench-idp-hs256-secret-0123456789abcdef";

fn config() -> EdgeConfig {
    let vars = [
        ("BRAIN_URL", "http://brain.internal:8080".to_owned()),
        ("EDGE_SIGNING_SECRETS", "bench-edge-signing-secret-0123456789abcdef".to_owned()),
        ("SESSION_KEYS", "k1:bench-session-key-0123456789abcdef0123456789".to_owned()),
        (
            "AUTH_CONFIG",
            r#"{"issuer":"https://idp.bench/","audiences":["edgebrain"],"algorithms":["HS256"]}"#
                .to_owned(),
        ),
        ("AUTH_HS256_SECRETS", format!(r#"[{{"kid":"b1","secret":"{HS_SECRET}"}}]"#)),
        (
            "CORS",
            r#"{"allowed_origins":["https://app.bench"],"allow_credentials":true}"#.to_owned(),
        ),
        (
            "RATE_LIMITS",
            r#"[{"name":"default","limit":120,"window_secs":60},{"name":"chat","limit":20,"window_secs":60}]"#
                .to_owned(),
        ),
        (
            "ROUTES",
            r#"[{"path":"/api/v1/admin/*","auth":{"mode":"required","scopes":["admin"]}},
                {"path":"/api/v1/reports/*","methods":["GET"],"cache":{"ttl_secs":60}},
                {"path":"/api/v1/threads/*","auth":{"mode":"required"},"rate_limit":"chat"}]"#
                .to_owned(),
        ),
    ];
    EdgeConfig::from_vars(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    })
    .expect("a valid bench configuration")
}

fn token() -> String {
    let b64 = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let input = format!(
        "{}.{}",
        b64(serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "b1"})),
        b64(serde_json::json!({
            "iss": "https://idp.bench/", "aud": "edgebrain", "sub": "user-42",
            "exp": NOW_SECS + 600, "iat": NOW_SECS, "scope": "chat reports:read"
        }))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(HS_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn inputs() -> Inputs {
    Inputs {
        now_ms: NOW_SECS * 1000,
        random: [1; 16],
        session_random: [2; 16],
        nonce: [3; 16],
        keys_refreshed: false,
    }
}

/// Typical browser headers, plus the given extras.
fn browser_headers(extra: &[(&str, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "edge.example".to_owned()),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) bench".to_owned(),
        ),
        ("accept", "application/json".to_owned()),
        ("accept-language", "en-GB,en;q=0.9".to_owned()),
        ("origin", "https://app.bench".to_owned()),
    ]
    .iter()
    .chain(extra)
    {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn pipeline(c: &mut Criterion) {
    let config = config();
    let keys = KeyStore::new(config.auth.as_ref().unwrap());
    // A session cookie the edge issued earlier.
    let cookie = {
        let head_headers = browser_headers(&[]);
        let get = Method::GET;
        let head = RequestHead {
            method: &get,
            url: "https://edge.example/api/v1/x",
            headers: &head_headers,
            client_ip: Some("203.0.113.9"),
        };
        match decide(&head, &config, Some(&keys), inputs()) {
            Decision::Proxy(proxy) => {
                let set_cookie = proxy.response_headers["set-cookie"].to_str().unwrap();
                set_cookie.split(';').next().unwrap().to_owned()
            }
            other => panic!("expected a proxy decision, got {other:?}"),
        }
    };
    let bearer = format!("Bearer {}", token());

    let cases: [(&str, Method, &str, HeaderMap); 4] = [
        (
            "anonymous_new_session",
            Method::GET,
            "https://edge.example/api/v1/diag/echo?a=1",
            browser_headers(&[]),
        ),
        (
            "anonymous_with_session",
            Method::GET,
            "https://edge.example/api/v1/diag/echo?a=1",
            browser_headers(&[("cookie", cookie.clone())]),
        ),
        (
            "jwt_session_rewrite",
            Method::GET,
            // Rewritten by vercel.json (/v1/:path* → /api/v1/:path*).
            "https://edge.example/v1/threads/t-1/messages?cursor=abc",
            browser_headers(&[
                ("cookie", cookie.clone()),
                ("authorization", bearer.clone()),
            ]),
        ),
        (
            "jwt_cached_route",
            Method::GET,
            "https://edge.example/api/v1/reports/q3?utm_source=x&page=2",
            browser_headers(&[
                ("cookie", cookie.clone()),
                ("authorization", bearer.clone()),
            ]),
        ),
    ];

    let mut group = c.benchmark_group("edge_core");
    for (name, method, url, headers) in &cases {
        group.bench_function(format!("decide+sign/{name}"), |b| {
            b.iter(|| {
                let head = RequestHead {
                    method,
                    url,
                    headers,
                    client_ip: Some("203.0.113.9"),
                };
                match decide(black_box(&head), &config, Some(&keys), inputs()) {
                    Decision::Proxy(mut proxy) => {
                        assert_eq!(proxy.body_signing, BodySigning::Empty);
                        proxy.sign(None, &config);
                        black_box(proxy)
                    }
                    other => panic!("{name}: expected a proxy decision, got {other:?}"),
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
