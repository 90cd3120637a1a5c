//! The differential test: the engine against the implementations Vercel deploys with.
//!
//! `testdata/oracle.json` holds the cases and the answers of path-to-regexp 6.1.0, V8's RegExp
//! and `@vercel/routing-utils` (with its JSON schemas), written by `testdata/oracle.mjs` from the
//! npm packages pinned in package.json (`scripts/test` checks the file is what they answer
//! now). This test answers the same cases with the engine and compares:
//! - `match`: a `source` is accepted or refused alike, compiles to the same regular expression,
//!   and captures the same values on a path;
//! - `regex`: a JavaScript regex is valid or not alike, and matches at the same index with the
//!   same groups;
//! - `rule`: a one-rule file is accepted or refused alike, and compiles to the same route
//!   (regex, Location or destination template, status, header values).
//!
//! It fails when agreement drops below 99 %, when a case disagrees that [`DIFFERENCES`] does
//! not list (with the reason the difference is intended), or when a listed case agrees again.

use serde_json::Value;

use super::pattern::SourcePattern;
use super::regex::{JsRegex, StepBudget};
use super::{Rules, RulesLimits, VERCEL_EDGE_FUNCTION};

/// Cases where the engine deliberately answers differently, with the reason.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        r#"regex "." "😀""#,
        "the engine matches Rust strings by code point; V8 matches by UTF-16 code unit, so `.` \
         takes half of an astral character there (a string no Rust value can hold). Paths are \
         ASCII once percent-encoded, so this only concerns has values with such characters",
    ),
    (
        r#"rule "redirects" {"destination":"/b","source":"/a","statusCode":600}"#,
        "Vercel's schema takes any status from 100 to 999; a Worker can only construct responses \
         with 200-599, so the edge refuses the rest at load rather than fail every request",
    ),
    (
        r#"rule "rewrites" {"destination":"/b","source":"/a","statusCode":404}"#,
        "a rewrite's statusCode overrides the status of the proxied response, which the adapter \
         does not do; the edge refuses it at load instead of silently ignoring it",
    ),
    (
        r#"rule "redirects" {"destination":"//ext.example/:x","source":"/a/:x"}"#,
        "the edge takes only a path on this host (one leading '/') or an absolute http(s) URL, \
         so that no value substituted into a path can make it another host; write \
         https://ext.example/:x",
    ),
    (
        r#"rule "redirects" {"destination":"b/:x","source":"/a/:x"}"#,
        "a relative destination: the edge takes only a path on this host or an absolute \
         http(s) URL (see //ext.example above)",
    ),
    (
        r#"rule "redirects" {"destination":"mailto:x@example.com","source":"/a"}"#,
        "a destination in another scheme: the edge takes only a path on this host or an absolute \
         http(s) URL (see //ext.example above)",
    ),
    (
        r#"rule "headers" {"headers":[{"key":"bad key","value":"v"}],"source":"/a"}"#,
        "no HTTP response can carry a header name with a space; the edge refuses the file at \
         load instead of failing each response",
    ),
];

fn budget() -> StepBudget {
    StepBudget { left: 10_000_000 }
}

fn strings(value: &Value) -> Option<Vec<Option<String>>> {
    value.as_array().map(|items| {
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// The engine's answer to a `match` case, in the oracle's shape.
fn answer_match(source: &str, path: &str) -> Value {
    let Ok(pattern) = SourcePattern::parse(source, &RulesLimits::default()) else {
        return serde_json::json!({ "valid": false });
    };
    let captures = pattern
        .captures(path, &mut budget())
        .ok()
        .flatten()
        .map(|found| {
            found
                .into_iter()
                .map(|v| v.map(str::to_owned))
                .collect::<Vec<_>>()
        });
    serde_json::json!({
        "valid": true,
        "regex": pattern.regex_source.replace("\\/", "/"),
        "captures": captures,
    })
}

/// The engine's answer to a `regex` case; the index in UTF-16 code units, as V8 counts.
fn answer_regex(pattern: &str, input: &str) -> Value {
    let Ok(regex) = JsRegex::new(pattern, 64, RulesLimits::DEFAULT_MAX_REGEX_INSTS) else {
        return serde_json::json!({ "valid": false });
    };
    let found = regex.captures(input, &mut budget()).ok().flatten();
    let matched = found.map(|found| {
        let start = found.span(0).map_or(0, |(start, _)| start);
        let index = input.get(..start).map_or(0, |s| s.encode_utf16().count());
        let groups: Vec<Option<String>> = (0..=regex.groups())
            .map(|g| found.get(input, g).map(str::to_owned))
            .collect();
        serde_json::json!({ "index": index, "groups": groups })
    });
    serde_json::json!({ "valid": true, "match": matched })
}

/// The engine's answer to a `rule` case: the one-rule file loaded, and its compiled route.
fn answer_rule(list: &str, rule: &Value) -> Value {
    let file = serde_json::json!({ list: [rule] }).to_string();
    let Ok(rules) = Rules::from_vercel_json(&file) else {
        return serde_json::json!({ "valid": false });
    };
    let normalize = |regex: &str| regex.replace("\\/", "/");
    match list {
        "redirects" => rules.redirects.first().map(|r| {
            serde_json::json!({
                "valid": true,
                "src": normalize(&r.matcher.source.regex_source),
                "location": r.destination.text,
                "status": r.status.as_u16(),
            })
        }),
        "rewrites" if rule["destination"] == VERCEL_EDGE_FUNCTION => None,
        "rewrites" => rules.rewrites.first().map(|r| {
            serde_json::json!({
                "valid": true,
                "src": normalize(&r.matcher.source.regex_source),
                "dest": r.destination.text,
            })
        }),
        _ => rules.headers.first().map(|r| {
            let headers: Vec<Value> = r
                .headers
                .iter()
                .map(|(name, template, _)| serde_json::json!([name.as_str(), template.text]))
                .collect();
            serde_json::json!({
                "valid": true,
                "src": normalize(&r.matcher.source.regex_source),
                "headers": headers,
            })
        }),
    }
    .unwrap_or_else(|| serde_json::json!({ "valid": true }))
}

/// Whether the engine's answer agrees with the oracle's (header names compared without case:
/// the engine keeps them lowercased, routing-utils as written).
fn agrees(case: &Value, answer: &Value) -> bool {
    let expect = &case["expect"];
    if expect["valid"] != answer["valid"] {
        return false;
    }
    if expect["valid"] == false {
        return true;
    }
    match case["kind"].as_str() {
        Some("rule")
            if case["list"] == "rewrites"
                && case["rule"]["destination"] == VERCEL_EDGE_FUNCTION =>
        {
            true
        }
        Some("rule") if case["list"] == "headers" => {
            let lower = |v: &Value| -> Vec<(String, String)> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|pair| {
                        (
                            pair[0].as_str().unwrap_or_default().to_ascii_lowercase(),
                            pair[1].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            };
            expect["src"] == answer["src"] && lower(&expect["headers"]) == lower(&answer["headers"])
        }
        Some("match") => {
            expect["regex"] == answer["regex"]
                && strings(&expect["captures"]) == strings(&answer["captures"])
        }
        _ => expect == answer,
    }
}

/// A case's name in [`DIFFERENCES`]. Object keys are sorted here, not by serde_json: whether
/// its maps keep insertion order depends on whether any crate in the build enables its
/// `preserve_order` feature (`cargo test -p edge` and `cargo test --workspace` differ).
fn key(case: &Value) -> String {
    match case["kind"].as_str() {
        Some("match") => format!("match {} {}", case["source"], case["path"]),
        Some("regex") => format!("regex {} {}", case["pattern"], case["input"]),
        _ => format!("rule {} {}", case["list"], sorted_json(&case["rule"])),
    }
}

fn sorted_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let fields: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), sorted_json(v)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(sorted_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

#[test]
fn agrees_with_path_to_regexp_6_1_0_and_routing_utils() {
    let oracle: Value = serde_json::from_str(include_str!("testdata/oracle.json")).unwrap();
    let cases = oracle["cases"].as_array().unwrap();
    let mut agreed = 0;
    let mut unlisted = Vec::new();
    let mut differing = Vec::new();
    for case in cases {
        let answer = match case["kind"].as_str().unwrap() {
            "match" => answer_match(
                case["source"].as_str().unwrap(),
                case["path"].as_str().unwrap(),
            ),
            "regex" => answer_regex(
                case["pattern"].as_str().unwrap(),
                case["input"].as_str().unwrap(),
            ),
            "rule" => answer_rule(case["list"].as_str().unwrap(), &case["rule"]),
            other => panic!("unknown case kind {other}"),
        };
        let key = key(case);
        if agrees(case, &answer) {
            agreed += 1;
            continue;
        }
        differing.push(key.clone());
        if !DIFFERENCES.iter().any(|(listed, _)| *listed == key) {
            unlisted.push(format!(
                "{key}\n    oracle: {}\n    engine: {answer}",
                case["expect"]
            ));
        }
    }
    let total = cases.len();
    let rate = 100.0 * agreed as f64 / total as f64;
    println!(
        "rules differential test: {agreed} of {total} cases agree with path-to-regexp {} / \
         @vercel/routing-utils {} / V8 ({rate:.2} %); {} listed differences:",
        oracle["versions"]["path-to-regexp"],
        oracle["versions"]["@vercel/routing-utils"],
        differing.len()
    );
    for (listed, reason) in DIFFERENCES {
        println!("  - {listed}: {reason}");
    }
    let stale: Vec<&str> = DIFFERENCES
        .iter()
        .map(|(listed, _)| *listed)
        .filter(|listed| !differing.iter().any(|d| d == listed))
        .collect();
    assert!(total >= 1000, "the corpus has {total} cases");
    assert!(
        unlisted.is_empty(),
        "{} cases disagree without a listed reason:\n{}",
        unlisted.len(),
        unlisted.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed differences that now agree: {stale:?}"
    );
    assert!(rate >= 99.0, "agreement {rate:.2} % is below 99 %");
}
