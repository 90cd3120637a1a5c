#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::key::*;
use super::store::*;
use super::*;
use crate::core::target::RequestTarget;
use crate::core::test_support::headers;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, Method};
use proptest::prelude::*;

fn policy(json: &str) -> CachePolicy {
    serde_json::from_str(json).unwrap()
}

fn public() -> CachePolicy {
    policy(r#"{"ttl_secs": 60, "swr_secs": 30}"#)
}

/// [`cache_key`] for `request` at `url`: parsed, located, keyed.
fn key_at(
    url: &str,
    request: &CacheRequest<'_>,
    policy: &CachePolicy,
    version: u32,
) -> Result<CacheKey, BypassReason> {
    let target = RequestTarget::parse(url).ok_or(BypassReason::MalformedUrl)?;
    cache_key(request, &key_location(&target, policy)?, policy, version)
}

fn key_for(method: &Method, url: &str, policy: &CachePolicy) -> Result<CacheKey, BypassReason> {
    let empty = HeaderMap::new();
    let request = CacheRequest {
        method,
        headers: &empty,
        identity: None,
        body: None,
    };
    key_at(url, &request, policy, 3)
}

fn get_key(url: &str, policy: &CachePolicy) -> String {
    key_for(&Method::GET, url, policy).unwrap().0
}

#[test]
fn policies_deserialize_with_defaults() {
    let p = policy(r#"{"ttl_secs": 60}"#);
    assert_eq!(
        (p.ttl_secs(), p.swr_secs(), p.scope()),
        (60, 0, CacheScope::Public)
    );
    assert_eq!(p.query, QueryParams::All);
    assert!(!p.deterministic_post());
    assert_eq!(p.max_post_body_bytes(), DEFAULT_MAX_POST_BODY_BYTES);
    assert!(
        p.is_tracking("utm_source") && p.is_tracking("UTM_Campaign") && p.is_tracking("fbclid")
    );
    assert!(!p.is_tracking("utm") && !p.is_tracking("page"));
    let p = policy(
        r#"{"ttl_secs": 5, "scope": "identity", "query": ["q", "page"],
        "tracking_params": ["ref*"], "deterministic_post": true, "max_post_body_bytes": 10}"#,
    );
    assert_eq!(p.scope(), CacheScope::Identity);
    assert_eq!(
        p.query,
        QueryParams::Only(vec!["q".to_owned(), "page".to_owned()])
    );
    assert!(p.is_tracking("referrer") && !p.is_tracking("utm_source"));
    assert_eq!(
        policy(r#"{"ttl_secs": 5, "query": "all"}"#).query,
        QueryParams::All
    );
}

#[test]
fn bad_policies_fail_at_load_naming_the_field() {
    for (json, field) in [
        (r#"{"ttl_secs": 0}"#, "`ttl_secs`"),
        (r#"{"ttl_secs": 31536001}"#, "`ttl_secs`"),
        (r#"{"ttl_secs": 1, "swr_secs": 31536001}"#, "`swr_secs`"),
        (r#"{"ttl_secs": 1, "query": "some"}"#, "`query`"),
        (r#"{"ttl_secs": 1, "query": ["a", ""]}"#, "`query[1]`"),
        (r#"{"ttl_secs": 1, "query": ["a=b"]}"#, "`query[0]`"),
        (
            r#"{"ttl_secs": 1, "tracking_params": ["*"]}"#,
            "`tracking_params[0]`",
        ),
        (
            r#"{"ttl_secs": 1, "tracking_params": ["a*b"]}"#,
            "`tracking_params[0]`",
        ),
        (
            r#"{"ttl_secs": 1, "max_post_body_bytes": 0}"#,
            "`max_post_body_bytes`",
        ),
        (
            r#"{"ttl_secs": 1, "max_post_body_bytes": 1048577}"#,
            "`max_post_body_bytes`",
        ),
        (
            r#"{"ttl_secs": 1, "scope": "user"}"#,
            "unknown variant `user`",
        ),
        (r#"{"ttl_secs": 1, "tll": 2}"#, "unknown field `tll`"),
        (r#"{"swr_secs": 1}"#, "missing field `ttl_secs`"),
    ] {
        let err = serde_json::from_str::<CachePolicy>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{json}: {err}");
    }
}

#[test]
fn cache_versions_parse_with_a_default() {
    assert_eq!(parse_cache_version(None), Ok(1));
    assert_eq!(parse_cache_version(Some(" 7 ")), Ok(7));
    for bad in ["0", "-1", "x", ""] {
        let err = parse_cache_version(Some(bad)).unwrap_err();
        assert_eq!(err.field, "CACHE_VERSION");
    }
}

#[test]
fn keys_are_versioned_scoped_and_normalised() {
    let p = public();
    let key = get_key(
        "https://API.Example.com:443/api/v1/items?b=2&a=1&utm_source=x&fbclid=y#frag",
        &p,
    );
    assert_eq!(
        key,
        "https://edge-cache.invalid/v3/public/get/api.example.com/api/v1/items?a=1&b=2"
    );
    assert!(key.starts_with(&key_prefix(3)));
    // Same request, other spellings.
    for url in [
        "https://api.example.com/api/v1/items?a=1&b=2",
        "http://api.example.com:80/api/v1/items?a=1&&b=2&gclid=z",
        "https://api.example.com/api/v1/%69tems?a=%31&b=2&UTM_medium=m",
    ] {
        assert_eq!(get_key(url, &p), key, "{url}");
    }
    // Different requests.
    for url in [
        "https://api.example.com:8443/api/v1/items?a=1&b=2",
        "https://api.example.com/api/v1/Items?a=1&b=2",
        "https://api.example.com/api/v1/items?a=1&b=3",
        "https://api.example.com/api/v1/items?a=1&b=2&b=2",
        "https://other.example.com/api/v1/items?a=1&b=2",
    ] {
        assert_ne!(get_key(url, &p), key, "{url}");
    }
    assert_eq!(
        get_key("https://h/p?a&b=", &p),
        get_key("https://h/p?b&a=", &p),
    );
    assert_eq!(
        get_key("https://h", &p),
        "https://edge-cache.invalid/v3/public/get/h/"
    );
}

#[test]
fn bumping_the_version_changes_every_key() {
    let p = public();
    let empty = HeaderMap::new();
    let request = CacheRequest {
        method: &Method::GET,
        headers: &empty,
        identity: None,
        body: None,
    };
    let v1 = key_at("https://h/p", &request, &p, 1).unwrap();
    let v2 = key_at("https://h/p", &request, &p, 2).unwrap();
    assert_ne!(v1, v2);
    assert!(v2.as_str().starts_with("https://edge-cache.invalid/v2/"));
}

#[test]
fn only_listed_query_params_count() {
    let p = policy(r#"{"ttl_secs": 60, "query": ["q", "page"]}"#);
    assert_eq!(
        get_key("https://h/s?sid=1&page=2&q=x&utm_x=1", &p),
        "https://edge-cache.invalid/v3/public/get/h/s?page=2&q=x"
    );
    assert_eq!(
        get_key("https://h/s?sid=9", &p),
        "https://edge-cache.invalid/v3/public/get/h/s"
    );
}

#[test]
fn escapes_are_normalised_and_unsafe_bytes_escaped() {
    assert_eq!(normalize_component("%7e%41%2f%2F%zz%"), "~A%2F%2F%25zz%25");
    assert_eq!(normalize_component("a b\"<>"), "a%20b%22%3C%3E");
    assert_eq!(normalize_component("é"), "%C3%A9");
}

#[test]
fn identity_scope_keys_per_caller_without_exposing_ids() {
    let p = policy(r#"{"ttl_secs": 60, "scope": "identity"}"#);
    let empty = HeaderMap::new();
    let key = |identity| {
        key_at(
            "https://h/me",
            &CacheRequest {
                method: &Method::GET,
                headers: &empty,
                identity,
                body: None,
            },
            &p,
            1,
        )
    };
    let alice = key(Some("alice")).unwrap();
    let bob = key(Some("bob")).unwrap();
    assert_ne!(alice, bob);
    assert!(!alice.as_str().contains("alice"));
    assert!(
        alice
            .as_str()
            .starts_with("https://edge-cache.invalid/v1/id-")
    );
    assert_eq!(key(None), Err(BypassReason::NoIdentity));
    assert_eq!(key(Some("")), Err(BypassReason::NoIdentity));
}

#[test]
fn only_get_head_and_opted_in_posts_are_cached() {
    let p = public();
    assert_eq!(
        key_for(&Method::HEAD, "https://h/x", &p).unwrap().0,
        "https://edge-cache.invalid/v3/public/head/h/x"
    );
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        assert_eq!(
            key_for(&method, "https://h/x", &p),
            Err(BypassReason::Method)
        );
    }
    let ranged = headers(&[("range", "bytes=0-1")]);
    let request = CacheRequest {
        method: &Method::GET,
        headers: &ranged,
        identity: None,
        body: None,
    };
    assert_eq!(
        key_at("https://h/x", &request, &p, 1),
        Err(BypassReason::Range)
    );
    for url in [
        "/relative",
        "ftp://h/x",
        "https://user@h/x",
        "https:///x",
        "https://h h/x",
    ] {
        assert_eq!(
            key_for(&Method::GET, url, &p),
            Err(BypassReason::MalformedUrl),
            "{url}"
        );
    }
}

fn post_key(
    body: &[u8],
    content_type: &str,
    policy: &CachePolicy,
) -> Result<CacheKey, BypassReason> {
    let h = headers(&[("content-type", content_type)]);
    let request = CacheRequest {
        method: &Method::POST,
        headers: &h,
        identity: None,
        body: Some(body),
    };
    key_at("https://h/api/v1/complete", &request, policy, 1)
}

#[test]
fn deterministic_posts_are_keyed_by_their_normalised_body() {
    let p = policy(r#"{"ttl_secs": 60, "deterministic_post": true, "max_post_body_bytes": 128}"#);
    let json = "application/json";
    let a = post_key(
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        json,
        &p,
    )
    .unwrap();
    let b = post_key(
        b"{ \"messages\" : [ {\"content\":\"hi\", \"role\":\"user\"} ],\n \"model\":\"m\" }",
        json,
        &p,
    )
    .unwrap();
    assert_eq!(a, b);
    assert!(a.as_str().contains("/post-"), "{}", a.as_str());
    let other = post_key(
        br#"{"model":"m","messages":[{"role":"user","content":"ho"}]}"#,
        json,
        &p,
    )
    .unwrap();
    assert_ne!(a, other);
    // Array order is significant; the media type counts; parameters do not.
    assert_ne!(post_key(b"[1,2]", json, &p), post_key(b"[2,1]", json, &p));
    assert_ne!(
        post_key(b"[1]", json, &p),
        post_key(b"[1]", "text/plain", &p)
    );
    assert_eq!(
        post_key(b"[1]", json, &p),
        post_key(b"[1]", "Application/JSON; charset=utf-8", &p)
    );
    // Non-JSON bodies are hashed as they are.
    assert_ne!(
        post_key(b"a  b", "text/plain", &p),
        post_key(b"a b", "text/plain", &p)
    );
    assert_eq!(
        post_key(&[b'x'; 129], json, &p),
        Err(BypassReason::BodyTooLarge)
    );
    let h = HeaderMap::new();
    let request = CacheRequest {
        method: &Method::POST,
        headers: &h,
        identity: None,
        body: None,
    };
    assert_eq!(
        key_at("https://h/x", &request, &p, 1),
        Err(BypassReason::BodyMissing)
    );
}

fn decide(status: u16, pairs: &[(&str, &str)]) -> Storability {
    storable(status, &headers(pairs), &public())
}

#[test]
fn the_route_ttl_applies_when_the_brain_says_nothing() {
    assert_eq!(
        decide(200, &[]),
        Storability::Storable {
            ttl_secs: 60,
            swr_secs: 30
        }
    );
    assert_eq!(
        decide(204, &[("vary", "Accept-Encoding, Origin")]),
        Storability::Storable {
            ttl_secs: 60,
            swr_secs: 30
        }
    );
}

#[test]
fn the_brains_cache_control_can_only_shorten() {
    let store = |ttl_secs, swr_secs| Storability::Storable { ttl_secs, swr_secs };
    assert_eq!(
        decide(200, &[("cache-control", "max-age=10")]),
        store(10, 30)
    );
    assert_eq!(
        decide(200, &[("cache-control", "public, max-age=600")]),
        store(60, 30)
    );
    assert_eq!(
        decide(200, &[("cache-control", "max-age=0, s-maxage=20")]),
        store(20, 30)
    );
    assert_eq!(
        decide(
            200,
            &[
                ("cache-control", "s-maxage=\"5\""),
                ("cache-control", "max-age=50")
            ]
        ),
        store(5, 30)
    );
    assert_eq!(
        decide(200, &[("cache-control", "max-age=9, max-age=7")]),
        store(7, 30)
    );
    assert_eq!(
        decide(200, &[("cache-control", "max-age=99999999999")]),
        store(60, 30)
    );
    assert_eq!(
        decide(
            200,
            &[("cache-control", "max-age=10, stale-while-revalidate=5")]
        ),
        store(10, 5)
    );
    assert_eq!(
        decide(
            200,
            &[("cache-control", "max-age=10, stale-while-revalidate=500")]
        ),
        store(10, 30)
    );
    assert_eq!(
        decide(200, &[("cache-control", "max-age=10, must-revalidate")]),
        store(10, 0)
    );
    assert_eq!(
        decide(200, &[("cache-control", "s-maxage=10, proxy-revalidate")]),
        store(10, 0)
    );
    assert_eq!(
        decide(200, &[("cache-control", "max-age=10, x-unknown=\"a,b\"")]),
        store(10, 30)
    );
    assert_eq!(
        decide(200, &[("cache-control", "max-age=10"), ("expires", "0")]),
        store(10, 30)
    );
}

#[test]
fn uncacheable_responses_bypass_with_the_reason() {
    use BypassReason as R;
    for (status, pairs, reason) in [
        (404, vec![], R::Status(404)),
        (500, vec![], R::Status(500)),
        (301, vec![], R::Status(301)),
        (206, vec![], R::Status(206)),
        (200, vec![("set-cookie", "a=b")], R::SetsCookie),
        (
            200,
            vec![("content-type", "text/event-stream; charset=utf-8")],
            R::EventStream,
        ),
        (200, vec![("vary", "*")], R::VaryAll),
        (
            200,
            vec![("vary", "Origin, Accept-Language")],
            R::Vary("Accept-Language".to_owned()),
        ),
        (200, vec![("cache-control", "no-store")], R::NoStore),
        (
            200,
            vec![("cache-control", "max-age=60, Private")],
            R::Private,
        ),
        (
            200,
            vec![("cache-control", "private=\"x-user, x-org\", max-age=60")],
            R::Private,
        ),
        (
            200,
            vec![("cache-control", "no-cache=\"set-cookie\"")],
            R::NoCache,
        ),
        (
            200,
            vec![("cache-control", "s-maxage=0, max-age=60")],
            R::ZeroLifetime,
        ),
        (200, vec![("cache-control", "max-age=0")], R::ZeroLifetime),
        (
            200,
            vec![("cache-control", "max-age=soon")],
            R::MalformedCacheControl,
        ),
        (
            200,
            vec![("cache-control", "max-age")],
            R::MalformedCacheControl,
        ),
        (
            200,
            vec![("cache-control", "max-age=-1")],
            R::MalformedCacheControl,
        ),
        (
            200,
            vec![("expires", "Thu, 01 Jan 1970 00:00:00 GMT")],
            R::ExpiresWithoutMaxAge,
        ),
    ] {
        assert_eq!(
            decide(status, &pairs),
            Storability::Bypass(reason),
            "{status} {pairs:?}"
        );
    }
}

#[test]
fn freshness_runs_fresh_then_stale_then_expired() {
    assert_eq!(freshness(1_000, 60, 30, 1_000), Freshness::Fresh);
    assert_eq!(freshness(1_000, 60, 30, 60_999), Freshness::Fresh);
    assert_eq!(freshness(1_000, 60, 30, 61_000), Freshness::Stale);
    assert_eq!(freshness(1_000, 60, 30, 90_999), Freshness::Stale);
    assert_eq!(freshness(1_000, 60, 30, 91_000), Freshness::Expired);
    assert_eq!(freshness(1_000, 60, 0, 61_000), Freshness::Expired);
    // A stored-at in the future (clock skew) is fresh, not a panic.
    assert_eq!(freshness(u64::MAX, u32::MAX, u32::MAX, 0), Freshness::Fresh);
    assert_eq!(
        freshness(0, u32::MAX, u32::MAX, u64::MAX),
        Freshness::Expired
    );
}

#[test]
fn the_status_header_has_the_documented_values() {
    let values: Vec<_> = [
        CacheStatus::Hit,
        CacheStatus::Miss,
        CacheStatus::Stale,
        CacheStatus::Bypass,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    assert_eq!(values, ["HIT", "MISS", "STALE", "BYPASS"]);
    assert_eq!(CacheStatus::HEADER, "x-edge-cache");
    assert_eq!(
        CacheStatus::after_fetch(&decide(200, &[])),
        CacheStatus::Miss
    );
    assert_eq!(
        CacheStatus::after_fetch(&decide(500, &[])),
        CacheStatus::Bypass
    );
    let mut h = headers(&[("x-edge-cache", "HIT")]);
    CacheStatus::Bypass.set_on(&mut h);
    assert_eq!(
        h.get_all("x-edge-cache").iter().collect::<Vec<_>>(),
        ["BYPASS"]
    );
}

#[test]
fn stored_entries_drop_per_request_headers_and_carry_metadata() {
    let brain = headers(&[
        ("content-type", "application/json"),
        ("cache-control", "public, s-maxage=60"),
        ("x-request-id", "req-1"),
        ("x-session-id", "s-1"),
        ("access-control-allow-origin", "*"),
        ("ratelimit", "\"default\";r=1;t=2"),
        ("connection", "keep-alive"),
        ("x-edgebrain-cache-meta", "stored_at_ms=0;ttl=999999;swr=0"),
        ("etag", "\"v1\""),
    ]);
    let stored = prepare_for_store(&brain, 60, 30, 5_000);
    let names: Vec<_> = stored.keys().map(HeaderName::as_str).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "etag",
            ORIGIN_CACHE_CONTROL_HEADER,
            "cache-control",
            META_HEADER
        ]
    );
    assert_eq!(stored[CACHE_CONTROL], "max-age=90");
    assert_eq!(stored[ORIGIN_CACHE_CONTROL_HEADER], "public, s-maxage=60");
    let meta = StoredMeta::from_headers(&stored).unwrap();
    assert_eq!(
        meta,
        StoredMeta {
            stored_at_ms: 5_000,
            ttl_secs: 60,
            swr_secs: 30
        }
    );
    assert_eq!(meta.freshness(64_999), Freshness::Fresh);
    assert_eq!(meta.freshness(65_000), Freshness::Stale);

    let served = prepare_for_serve(&stored, CacheStatus::Hit, 17_500);
    assert_eq!(served[CACHE_CONTROL], "public, s-maxage=60");
    assert_eq!(served["age"], "12");
    assert_eq!(served["x-edge-cache"], "HIT");
    assert!(served.get(META_HEADER).is_none() && served.get(ORIGIN_CACHE_CONTROL_HEADER).is_none());
    assert_eq!(served["etag"], "\"v1\"");
}

#[test]
fn missing_or_forged_metadata_reads_as_absent() {
    for value in [
        "",
        "stored_at_ms=1;ttl=2",
        "stored_at_ms=1;ttl=2;swr=3;x=4",
        "stored_at_ms=-1;ttl=2;swr=3",
        "ttl=2;stored_at_ms=1;swr=3",
        "stored_at_ms=1;ttl=99999999999;swr=3",
    ] {
        assert_eq!(
            StoredMeta::from_headers(&headers(&[(META_HEADER, value)])),
            None,
            "{value}"
        );
    }
    assert_eq!(StoredMeta::from_headers(&HeaderMap::new()), None);
    let served = prepare_for_serve(&headers(&[("etag", "x")]), CacheStatus::Stale, 1);
    assert!(served.get("age").is_none());
    assert_eq!(served["x-edge-cache"], "STALE");
}

fn pair() -> impl Strategy<Value = (String, String)> {
    let part = prop_oneof![
        "[a-z]{1,3}",
        Just("utm_source".to_owned()),
        Just("%41".to_owned()),
        Just("%e9".to_owned()),
        Just("%".to_owned()),
        Just("+".to_owned()),
        "[ -~&&[^&#]]{0,4}",
        any::<String>().prop_map(|s| s.replace(['&', '#'], "")),
    ];
    (part.clone(), part)
}

fn query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", n.replace('=', ""), v))
        .collect::<Vec<_>>()
        .join("&")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn query_normalisation_is_idempotent_and_order_insensitive(
        pairs in prop::collection::vec(pair(), 0..8),
        seed in any::<u64>(),
    ) {
        let p = public();
        let once = normalize_query(&query(&pairs), &p);
        prop_assert_eq!(normalize_query(&once, &p), once.clone());
        let mut shuffled = pairs.clone();
        let len = shuffled.len().max(1);
        shuffled.rotate_left(usize::try_from(seed).unwrap_or(0) % len);
        shuffled.reverse();
        prop_assert_eq!(normalize_query(&query(&shuffled), &p), once.clone());
        prop_assert!(once.bytes().all(|b| b.is_ascii_graphic()), "{}", once);
        prop_assert!(!once.split('&').any(|pair| pair.starts_with("utm_source=")));
    }

    #[test]
    fn keys_are_fixed_points_and_never_panic(
        host in "[a-zA-Z0-9.-]{1,12}",
        path in "(/[ -~]{0,8}){0,3}",
        pairs in prop::collection::vec(pair(), 0..5),
    ) {
        let p = public();
        let url = format!("https://{host}{}?{}", path.replace(['?', '#'], ""), query(&pairs));
        if let Ok(key) = key_for(&Method::GET, &url, &p) {
            prop_assert!(key.as_str().bytes().all(|b| b.is_ascii_graphic()), "{}", key.as_str());
            let rest = key.as_str().strip_prefix("https://edge-cache.invalid/v3/public/get/").unwrap();
            let again = key_for(&Method::GET, &format!("https://{rest}"), &p).unwrap();
            prop_assert_eq!(again, key.clone());
            let upper = url.replacen(&host, &host.to_ascii_uppercase(), 1);
            let upper_key = key_for(&Method::GET, &upper, &p).unwrap();
            prop_assert_eq!(upper_key, key);
        }
    }

    #[test]
    fn json_bodies_hash_the_same_whatever_their_key_order(
        entries in prop::collection::btree_map("[a-z\"\\\\é]{0,4}", any::<i32>(), 0..6),
        spaces in "[ \n\t]{0,2}",
    ) {
        let p = policy(r#"{"ttl_secs": 1, "deterministic_post": true}"#);
        let render = |items: Vec<(&String, &i32)>| {
            let body: Vec<String> = items
                .iter()
                .map(|(k, v)| format!("{}{spaces}:{spaces}{v}", serde_json::to_string(k).unwrap()))
                .collect();
            format!("{{{spaces}{}}}", body.join(&format!(",{spaces}")))
        };
        let forward = render(entries.iter().collect());
        let backward = render(entries.iter().rev().collect());
        prop_assert_eq!(
            post_key(forward.as_bytes(), "application/json", &p),
            post_key(backward.as_bytes(), "application/json", &p)
        );
    }

    #[test]
    fn stored_headers_never_keep_per_request_or_forged_headers(
        names in prop::collection::vec(
            prop_oneof![
                prop::sample::select(STRIPPED_BEFORE_STORE.to_vec()).prop_map(str::to_owned),
                Just("access-control-allow-origin".to_owned()),
                "[a-z][a-z0-9-]{0,12}",
            ],
            0..10,
        ),
        ttl in 1u32..=MAX_LIFETIME_SECS,
        swr in 0u32..=MAX_LIFETIME_SECS,
        now in any::<u64>(),
    ) {
        let mut brain = HeaderMap::new();
        for name in &names {
            brain.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("v"));
        }
        let stored = prepare_for_store(&brain, ttl, swr, now);
        for name in stored.keys() {
            let internal = [META_HEADER, ORIGIN_CACHE_CONTROL_HEADER, "cache-control"].contains(&name.as_str());
            prop_assert!(internal || !STRIPPED_BEFORE_STORE.contains(&name.as_str()), "{}", name);
            prop_assert!(!name.as_str().starts_with("access-control-"));
        }
        prop_assert_eq!(
            StoredMeta::from_headers(&stored),
            Some(StoredMeta { stored_at_ms: now, ttl_secs: ttl, swr_secs: swr })
        );
        let served = prepare_for_serve(&stored, CacheStatus::Hit, now);
        prop_assert!(served.get(META_HEADER).is_none());
        prop_assert_eq!(served.get_all("cache-control").iter().count(), usize::from(brain.contains_key("cache-control")));
    }

    #[test]
    fn storable_never_panics_and_never_extends_the_route(
        status in 100u16..600,
        cc in prop::collection::vec(any::<u8>(), 0..40),
        ttl in 1u32..=1000,
        swr in 0u32..=1000,
    ) {
        let p = policy(&format!(r#"{{"ttl_secs": {ttl}, "swr_secs": {swr}}}"#));
        let mut h = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&cc) {
            h.insert(CACHE_CONTROL, value);
        }
        if let Storability::Storable { ttl_secs, swr_secs } = storable(status, &h, &p) {
            prop_assert!((1..=ttl).contains(&ttl_secs) && swr_secs <= swr);
            prop_assert!((200..300).contains(&status));
        }
    }
}
