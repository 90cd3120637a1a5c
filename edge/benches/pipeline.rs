//! CPU cost of the edge core per request: the whole pipeline `decide` runs (limits, URL checks,
//! CORS, vercel.json rules, route table, JWT verification, session, identity headers, proxy
//! plan) plus the edge→brain signature; and the vercel.json rules engine alone on long paths
//! (200 realistic redirect rules × a 10 KB path, and the worst case the step budget allows);
//! and the same request against a fleet of 1 and of 3 brains (`BRAIN_URLS`: tenant affinity).
//! Native code; the wasm build runs the same logic.
//!
//! `cargo bench -p edge --bench pipeline`; results in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use edge::core::auth::KeyStore;
use edge::core::rules::{RequestFacts, Rules, RulesOutcome};
use edge::core::{BodySigning, Decision, EdgeConfig, Inputs, RequestHead, decide};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, Method};
use sha2::Sha256;

const NOW_SECS: u64 = 1_800_000_000;
const HS_SECRET: &str = "bench-idp-hs256-secret-0123456789abcdef";

fn config() -> EdgeConfig {
    config_for(("BRAIN_URL", "http://brain.internal:8080"))
}

/// The bench configuration with the brains given as `(BRAIN_URL or BRAIN_URLS, value)`.
fn config_for(brains: (&str, &str)) -> EdgeConfig {
    let vars = [
        (brains.0, brains.1.to_owned()),
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

    // The cost of tenant affinity: one request with an established session, to a fleet of one
    // and to three brains (a rendezvous weight per brain, then the order).
    let headers = browser_headers(&[("cookie", cookie.clone())]);
    let mut group = c.benchmark_group("edge_core_fleet");
    for (name, brains) in [
        ("1_brain", ("BRAIN_URL", "http://brain.internal:8080")),
        (
            "3_brains",
            (
                "BRAIN_URLS",
                "http://brain-1.internal:8080,http://brain-2.internal:8080,http://brain-3.internal:8080",
            ),
        ),
    ] {
        let config = config_for(brains);
        group.bench_function(format!("decide+sign/anonymous_with_session/{name}"), |b| {
            b.iter(|| {
                let head = RequestHead {
                    method: &Method::GET,
                    url: "https://edge.example/api/v1/diag/echo?a=1",
                    headers: &headers,
                    client_ip: Some("203.0.113.9"),
                };
                match decide(black_box(&head), &config, Some(&keys), inputs()) {
                    Decision::Proxy(mut proxy) => {
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

/// 200 redirects of the kinds a site migration accumulates (sections moved, old blog URLs,
/// numeric ids, language prefixes, legacy extensions), some with conditions, plus the
/// repository's catch-all security-headers rule.
fn migration_rules() -> String {
    let mut redirects = Vec::new();
    for i in 0..200 {
        let (source, destination, has) = match i % 10 {
            0 => (
                format!("/old-section-{i}/:path*"),
                format!("/section-{i}/:path*"),
                "",
            ),
            1 => (
                format!("/blog-{i}/:year(\\\\d{{4}})/:month(\\\\d{{2}})/:slug"),
                format!("/posts/{i}/:slug"),
                "",
            ),
            2 => (
                format!("/docs-{i}/v1/:path*"),
                format!("/docs-{i}/v2/:path*"),
                "",
            ),
            3 => (
                format!("/p{i}/:id(\\\\d+)"),
                format!("/products/{i}/:id"),
                "",
            ),
            4 => (format!("/(.*)/legacy-{i}"), format!("/$1/current-{i}"), ""),
            5 => (
                format!("/:lang(en|fr|de)/promo-{i}"),
                format!("/:lang/offers/{i}"),
                "",
            ),
            6 => (
                format!("/archive-{i}/:rest*"),
                format!("https://archive.example.com/{i}/:rest*"),
                "",
            ),
            7 => (
                format!("/shop-{i}/:cat/:item"),
                format!("/store/:cat/:item?from={i}"),
                r#", "has": [{"type": "cookie", "key": "legacy"}]"#,
            ),
            8 => (
                format!("/team-{i}/(.*)\\\\.php"),
                format!("/team/{i}/$1"),
                "",
            ),
            _ => (
                format!("/u{i}/:name/settings"),
                format!("/account/:name?tab={i}"),
                r#", "missing": [{"type": "header", "key": "x-preview"}]"#,
            ),
        };
        redirects.push(format!(
            r#"{{"source": "{source}", "destination": "{destination}"{has}}}"#
        ));
    }
    format!(
        r#"{{"redirects": [{}], "headers": [{{"source": "/(.*)", "headers": [
            {{"key": "X-Content-Type-Options", "value": "nosniff"}},
            {{"key": "Referrer-Policy", "value": "strict-origin-when-cross-origin"}}]}}]}}"#,
        redirects.join(",\n")
    )
}

fn evaluate(rules: &Rules, path: &str, headers: &HeaderMap) -> RulesOutcome {
    rules
        .evaluate(&RequestFacts {
            path,
            query: "utm_source=mail",
            host: Some("edge.example"),
            headers,
        })
        .expect("within the step budget")
}

/// A path of about `bytes` bytes under `prefix`: 10-character segments.
fn long_path(prefix: &str, bytes: usize) -> String {
    let mut path = prefix.to_owned();
    while path.len() < bytes {
        path.push_str("/abcdefghij");
    }
    path
}

fn rules_engine(c: &mut Criterion) {
    let rules = Rules::from_vercel_json(&migration_rules()).expect("the bench rules load");
    let headers = browser_headers(&[]);
    let matching = long_path("/archive-196", 10 * 1024);
    let unmatched = long_path("/zzz", 10 * 1024);
    let short = "/docs-192/v1/getting-started/install";
    // The outcomes are what a user of these rules expects.
    let outcome = evaluate(&rules, &matching, &headers);
    assert!(outcome.redirect.is_some_and(|r| {
        r.location
            .starts_with("https://archive.example.com/196/abcdefghij/")
    }));
    let outcome = evaluate(&rules, &unmatched, &headers);
    assert!(outcome.redirect.is_none() && outcome.headers.len() == 2);
    let outcome = evaluate(&rules, short, &headers);
    assert_eq!(
        outcome.redirect.map(|r| r.location).as_deref(),
        Some("/docs-192/v2/getting-started/install?utm_source=mail")
    );

    let mut group = c.benchmark_group("rules");
    group.bench_function("200_redirects/10KB_path_matching_rule_196", |b| {
        b.iter(|| black_box(evaluate(&rules, black_box(&matching), &headers)))
    });
    group.bench_function("200_redirects/10KB_path_no_rule", |b| {
        b.iter(|| black_box(evaluate(&rules, black_box(&unmatched), &headers)))
    });
    group.bench_function("200_redirects/short_path", |b| {
        b.iter(|| black_box(evaluate(&rules, black_box(short), &headers)))
    });
    group.finish();
}

/// Rule files within the default limits that would cost too much on a long path stop at the
/// step budget (the request gets 414): this measures how long reaching the budget takes.
fn rules_worst_case(c: &mut Criterion) {
    let headers = browser_headers(&[]);
    let backtracking = Rules::from_vercel_json(
        r#"{"headers": [{"source": "/:x((?:a|a)+)-:y(z)", "headers": [{"key": "x", "value": "1"}]}]}"#,
    )
    .expect("loads");
    let backtracking_path = format!("/{}-b", "a".repeat(60));
    let scanning = Rules::from_vercel_json(&format!(
        r#"{{"headers": [{}]}}"#,
        (0..1024)
            .map(|i| format!(
                r#"{{"source": "/:p{i}(.*)", "headers": [{{"key": "x-{i}", "value": "1"}}]}}"#
            ))
            .collect::<Vec<_>>()
            .join(",")
    ))
    .expect("loads");
    let scanning_path = long_path("", 8 * 1024);
    let mut group = c.benchmark_group("rules_budget");
    for (name, rules, path) in [
        (
            "exponential_backtracking",
            &backtracking,
            &backtracking_path,
        ),
        ("1024_catch_all_rules_8KB_path", &scanning, &scanning_path),
    ] {
        let facts = RequestFacts {
            path,
            query: "",
            host: None,
            headers: &headers,
        };
        assert!(rules.evaluate(&facts).is_err(), "{name} reaches the budget");
        group.bench_function(name, |b| {
            b.iter(|| black_box(rules.evaluate(black_box(&facts))))
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline, rules_engine, rules_worst_case);
criterion_main!(benches);
