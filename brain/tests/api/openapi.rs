//! The contract's table of contents (`shared_types::api::ENDPOINTS`), the router and the OpenAPI
//! document agree: every listed operation is routed, every other method on a listed path is 405,
//! every path a module routes is listed, and the served document is the generated one.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use shared_types::api::{ENDPOINTS, PREFIX, fill_path};
use shared_types::error::{ErrorBody, ErrorCode};

use crate::helpers::{Backend, Caller, assert_error, spawn_app};

#[tokio::test]
async fn the_document_is_served_signed_and_matches_the_generated_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let caller = Caller::anonymous("openapi-reader");
    let response = app
        .send_as(&caller, app.client.get(app.url("/api/v1/openapi.json")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: serde_json::Value = response.json().await.unwrap();
    assert_eq!(served, brain::http::openapi::document());
    assert_eq!(served["openapi"], "3.1.0");

    // Like every /api route, it needs the edge's signature.
    let unsigned = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_error(unsigned, ErrorCode::Unauthorized).await;
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// True when the router's fallback answered (`no such route` / 405), not a handler.
async fn answered_by_fallback(response: reqwest::Response) -> Option<String> {
    let status = response.status();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return Some("405".to_owned());
    }
    if status == StatusCode::NOT_FOUND {
        let body: ErrorBody = response.json().await.unwrap();
        if body.error.message == "no such route" {
            return Some("404 no such route".to_owned());
        }
    }
    None
}

#[tokio::test]
async fn every_listed_operation_is_routed_and_no_other_method_is() {
    let app = spawn_app(Backend::Sqlite).await;
    let caller = Caller::anonymous("route-prober");
    let paths: BTreeSet<&str> = ENDPOINTS.iter().map(|e| e.path).collect();
    for path in paths {
        let placeholders = path.matches('{').count();
        let args = vec!["00000000-0000-4000-8000-000000000000"; placeholders];
        let mut concrete = fill_path(path, &args).unwrap();
        // A tiny streamed probe (diag stream) must not take the default second.
        if path.ends_with("/diag/stream") {
            concrete.push_str("?events=1&interval_ms=0");
        }
        for method in METHODS {
            let listed = ENDPOINTS
                .iter()
                .any(|e| e.path == path && e.method == method);
            let request = app.client.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&concrete),
            );
            let response = app.send_as(&caller, request).await;
            let fallback = answered_by_fallback(response).await;
            if listed {
                assert_eq!(fallback, None, "{method} {path} is listed but not routed");
            } else {
                assert_eq!(
                    fallback.as_deref(),
                    Some("405"),
                    "{method} {path} is routed but not in shared_types::api::ENDPOINTS"
                );
            }
        }
    }
}

/// The paths each `http` module routes, read from the sources: `.nest("/api/v1/x", m::router())`
/// in `http/mod.rs`, then `.route("/p", …)` in `http/m.rs`; plus full-path `.route(...)`s.
fn routed_paths() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let strings_after = |text: &str, call: &str| -> Vec<String> {
        text.split(call)
            .skip(1)
            .filter_map(|rest| {
                let rest = rest.trim_start();
                let rest = rest.strip_prefix('"')?;
                Some(rest[..rest.find('"')?].to_owned())
            })
            .collect()
    };
    let root = read("mod.rs");
    let mut found = BTreeSet::new();
    for nest in root.split(".nest(").skip(1) {
        let prefix = nest.trim_start().strip_prefix('"').unwrap();
        let prefix = &prefix[..prefix.find('"').unwrap()];
        let module = nest[nest.find(',').unwrap() + 1..].trim_start();
        let module = &module[..module.find("::").unwrap()];
        let source = read(&format!("{module}.rs"));
        // `runs.rs` holds two routers (runs, usage): attribute each route to the router
        // function whose body it is in.
        let router_fn = nest[nest.find("::").unwrap() + 2..].trim_start();
        let router_fn = &router_fn[..router_fn.find('(').unwrap()];
        let body = source
            .split(&format!("fn {router_fn}("))
            .nth(1)
            .unwrap_or_else(|| panic!("{module}.rs has no fn {router_fn}"));
        let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
        for route in strings_after(body, ".route(") {
            let full = if route == "/" {
                prefix.to_owned()
            } else {
                format!("{prefix}{route}")
            };
            found.insert(full);
        }
    }
    for file in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for route in strings_after(&text, ".route(") {
            if route.starts_with(PREFIX) {
                found.insert(route);
            }
        }
        for route in strings_after(&text, "pub const PATH: &str =") {
            if route.starts_with(PREFIX) {
                found.insert(route);
            }
        }
    }
    found
        .into_iter()
        .filter(|path| path.starts_with(PREFIX))
        .collect()
}

#[test]
fn every_routed_path_is_listed() {
    let routed = routed_paths();
    assert!(
        routed.len() >= 15,
        "the source scan found too little: {routed:?}"
    );
    let listed: BTreeSet<String> = ENDPOINTS.iter().map(|e| e.path.to_owned()).collect();
    let missing: Vec<&String> = routed.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routed under {PREFIX} but not in shared_types::api::ENDPOINTS (nor the OpenAPI document): {missing:?}"
    );
}
