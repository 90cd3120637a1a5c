//! Property tests (standing in for fuzzing): loading and evaluating never panic, whatever the
//! file or the request, and what evaluation returns is always safe to put on the wire.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use crate::core::test_support::lossy_headers;

use super::pattern::SourcePattern;
use super::{RequestFacts, Rewrite, Rules, RulesLimits, escape_source_literal};

/// Fragments of path-to-regexp syntax, valid or not, to assemble sources and destinations from.
fn pattern_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("/:p".to_owned()),
        Just("/:path*".to_owned()),
        Just("/:rest+".to_owned()),
        Just("/:opt?".to_owned()),
        Just("/:id(\\\\d+)".to_owned()),
        Just("/(.*)".to_owned()),
        Just("{.:ext}?".to_owned()),
        Just("$1".to_owned()),
        Just("?q=:p".to_owned()),
        Just("#:p".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("*".to_owned()),
        Just("\\\\".to_owned()),
        Just("//".to_owned()),
        Just("%2e%2e".to_owned()),
        "[a-z.]{0,4}",
        "[ -~]{0,6}".prop_map(|s| s.replace(['"', '\\'], "")),
    ]
}

fn template() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            6 => Just("/"),
            2 => Just("https://ext.example/"),
            1 => Just(""),
            1 => Just("http://"),
            1 => Just("//"),
        ],
        prop::collection::vec(pattern_piece(), 0..5),
    )
        .prop_map(|(start, pieces)| format!("{start}{}", pieces.concat()))
}

fn condition() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        3 => Just("header"),
        3 => Just("cookie"),
        3 => Just("query"),
        2 => Just("host"),
        1 => Just("other"),
    ];
    let key = prop_oneof![
        3 => Just("x-k"),
        3 => Just("k"),
        1 => Just("host"),
        1 => Just("bad key"),
    ];
    let value = prop_oneof![
        3 => Just(None),
        3 => Just(Some("(?<v>[a-z.]+)")),
        2 => Just(Some(".*")),
        1 => Just(Some("(")),
        2 => Just(Some("a|b")),
    ];
    (kind, prop::option::of(key), value).prop_map(|(kind, key, value)| {
        let mut fields = vec![format!(r#""type": "{kind}""#)];
        if let Some(key) = key {
            fields.push(format!(r#""key": "{key}""#));
        }
        if let Some(value) = value {
            fields.push(format!(r#""value": "{value}""#));
        }
        format!("{{{}}}", fields.join(", "))
    })
}

fn rule() -> impl Strategy<Value = (usize, String)> {
    (
        0..3usize,
        template(),
        template(),
        prop::collection::vec(condition(), 0..3),
        prop::collection::vec(condition(), 0..2),
        prop_oneof![
            Just(""),
            Just(r#", "permanent": false"#),
            Just(r#", "statusCode": 301"#)
        ],
    )
        .prop_map(|(list, source, destination, has, missing, extra)| {
            let json = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
            let conditions = format!(
                r#""has": [{}], "missing": [{}]"#,
                has.join(", "),
                missing.join(", ")
            );
            let body = match list {
                0 => format!(
                    r#"{{"source": {}, "destination": {}, {conditions}{extra}}}"#,
                    json(&source),
                    json(&destination)
                ),
                1 => format!(
                    r#"{{"source": {}, "destination": {}, {conditions}}}"#,
                    json(&source),
                    json(&destination)
                ),
                _ => format!(
                    r#"{{"source": {}, {conditions}, "headers": [{{"key": "x-v", "value": {}}}]}}"#,
                    json(&source),
                    json(&destination.replace('\n', ""))
                ),
            };
            (list, body)
        })
}

fn file_of(rules: &[(usize, String)]) -> String {
    let list = |wanted: usize| {
        rules
            .iter()
            .filter(|(list, _)| *list == wanted)
            .map(|(_, body)| body.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"{{"redirects": [{}], "rewrites": [{}], "headers": [{}]}}"#,
        list(0),
        list(1),
        list(2)
    )
}

fn rules_file() -> impl Strategy<Value = String> {
    prop::collection::vec(rule(), 0..6).prop_map(|rules| file_of(&rules))
}

/// A file made of those generated rules that load on their own (so the file loads).
fn loadable_rules() -> impl Strategy<Value = Rules> {
    prop::collection::vec(rule(), 1..10).prop_filter_map("no rule loads", |rules| {
        let loadable: Vec<(usize, String)> = rules
            .into_iter()
            .filter(|rule| Rules::from_vercel_json(&file_of(core::slice::from_ref(rule))).is_ok())
            .collect();
        Rules::from_vercel_json(&file_of(&loadable))
            .ok()
            .filter(|rules| !rules.is_empty())
    })
}

/// Rules that do load, covering every feature, to evaluate arbitrary requests against.
const RICH_RULES: &str = r#"{
  "redirects": [
    { "source": "/(.*)", "has": [{ "type": "query", "key": "to" }], "destination": "/:to/$1" },
    { "source": "/r/:p*", "has": [{ "type": "header", "key": "x-k", "value": "(?<v>.*)" }],
      "destination": "/x/:v/:p*?v=:v#:v", "permanent": false },
    { "source": "/e/:rest+", "destination": "https://ext.example/:rest+?k=:rest" }
  ],
  "rewrites": [
    { "source": "/w/(.*)", "destination": "/$1" },
    { "source": "/c/:p", "has": [{ "type": "cookie", "key": "c", "value": "(?<c>.*)" }],
      "destination": "/api/:c/:p" },
    { "source": "/h/:p?", "has": [{ "type": "host", "value": "(.*)" }], "destination": "/api/:host/:p" },
    { "source": "/:first/:rest*", "destination": "/api/v1/:first/:rest*" }
  ],
  "headers": [
    { "source": "/(.*)", "has": [{ "type": "header", "key": "x-k" }],
      "headers": [{ "key": "x-echo", "value": "got :xk" }] }
  ]
}"#;

fn path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("/w".to_owned()),
        Just("/r".to_owned()),
        Just("/e".to_owned()),
        Just("/c".to_owned()),
        Just("/h".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("\\".to_owned()),
        Just("evil.example".to_owned()),
        "[a-z0-9]{0,5}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| format!("/{}", pieces.concat()))
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        Just("x-k".to_owned()),
        Just("cookie".to_owned()),
        Just("host".to_owned()),
        "[a-z][a-z0-9-]{0,10}",
    ];
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        Just(b"c=//evil.example".to_vec()),
        Just(b"c=%0d%0aset-cookie:x".to_vec()),
        Just(b"..".to_vec()),
    ];
    prop::collection::vec((name, value), 0..6).prop_map(lossy_headers)
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("to=%2F%2Fevil.example".to_owned()),
        Just("to=..".to_owned()),
        "[a-z=&%0-9]{0,12}",
        any::<String>(),
    ]
}

/// Anything but visible ASCII: what a URL on the wire or a `Location` header must not hold raw.
fn not_visible_ascii(text: &str) -> bool {
    !text.bytes().all(|b| (0x21..0x7f).contains(&b))
}

fn dot_segment(path_and_query: &str) -> bool {
    let path = path_and_query.split('?').next().unwrap_or_default();
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

fn check_outcome(rules: &Rules, path: &str, query: &str, host: Option<&str>, headers: &HeaderMap) {
    let Ok(outcome) = rules.evaluate(&RequestFacts {
        path,
        query,
        host,
        headers,
    }) else {
        return;
    };
    if let Some(redirect) = &outcome.redirect {
        assert!(
            outcome.rewrite.is_none(),
            "a redirect comes without a rewrite"
        );
        assert!(
            !not_visible_ascii(&redirect.location),
            "{:?}",
            redirect.location
        );
        assert!(
            HeaderValue::from_str(&redirect.location).is_ok(),
            "{:?}",
            redirect.location
        );
        assert!(redirect.status.is_redirection());
        if !redirect.location.starts_with("http") {
            assert!(
                redirect.location.starts_with('/') && !redirect.location.starts_with("//"),
                "{:?}",
                redirect.location
            );
            assert!(!redirect.location.contains('\\'), "{:?}", redirect.location);
        }
    }
    match &outcome.rewrite {
        Some(Rewrite::Internal { path_and_query }) => {
            assert!(path_and_query.starts_with('/'), "{path_and_query:?}");
            assert!(!path_and_query.starts_with("//"), "{path_and_query:?}");
            assert!(!path_and_query.contains(['\\', '#']), "{path_and_query:?}");
            assert!(!not_visible_ascii(path_and_query), "{path_and_query:?}");
            assert!(!dot_segment(path_and_query), "{path_and_query:?}");
        }
        Some(Rewrite::External { url }) => {
            assert!(!not_visible_ascii(url), "{url:?}");
            assert!(url.to_ascii_lowercase().starts_with("http"), "{url:?}");
        }
        None => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_javascript_regex_runs_within_its_budget(
        pattern in "[ab()|*+?{}\\[\\]^$.\\\\0-9<>=!:kdwsbBcux,-]{0,20}",
        input in "[ab\n.é{}-]{0,24}",
    ) {
        if let Ok(regex) = super::regex::JsRegex::new(&pattern, 64, 20_000) {
            let mut budget = super::regex::StepBudget { left: 100_000 };
            let before = budget.left;
            let _ = regex.captures(&input, &mut budget);
            prop_assert!(budget.left <= before);
        }
    }

    #[test]
    fn deeply_nested_sources_are_refused_not_overflowing(depth in 65usize..3000) {
        let source = format!("/{}x{}", "(?:".repeat(depth), ")".repeat(depth));
        prop_assert!(SourcePattern::parse(&source, &RulesLimits::default()).is_err());
    }

    #[test]
    fn loading_never_panics_on_generated_rules(file in rules_file()) {
        let _ = Rules::from_vercel_json(&file);
    }

    #[test]
    fn loading_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = Rules::from_vercel_json(&text);
        let _ = SourcePattern::parse(&format!("/{text}"), &RulesLimits::default());
        let _ = super::regex::JsRegex::new(&text, 64, 20_000);
    }

    #[test]
    fn generated_rules_that_load_evaluate_safely(
        rules in loadable_rules(),
        path in path(),
        query in query(),
        headers in headers(),
    ) {
        check_outcome(&rules, &path, &query, Some("Edge.Example:8787"), &headers);
    }

    #[test]
    fn evaluation_is_safe_for_any_request(
        path in path(),
        query in query(),
        host in prop::option::of(prop_oneof![Just("a.example:1".to_owned()), any::<String>()]),
        headers in headers(),
    ) {
        let rules = Rules::from_vercel_json(RICH_RULES).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_outcome(&rules, &path, &query, host.as_deref(), &headers);
    }

    #[test]
    fn a_source_compiled_from_a_literal_path_matches_exactly_that_path(
        path in "/[ -~]{0,30}",
        other in "/[ -~]{0,30}",
    ) {
        let pattern = SourcePattern::parse(&escape_source_literal(&path), &RulesLimits::default())
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(pattern.key_count(), 0);
        let mut budget = super::regex::StepBudget { left: 1_000_000 };
        prop_assert!(pattern.captures(&path, &mut budget).unwrap().is_some());
        prop_assert_eq!(pattern.captures(&other, &mut budget).unwrap().is_some(), other == path);
        let longer = format!("{path}x");
        prop_assert!(pattern.captures(&longer, &mut budget).unwrap().is_none());
    }
}
