//! Rewrites, redirects and response headers from `vercel.json`, in Vercel's own format and
//! semantics, so one rules file drives both Vercel and the Cloudflare edge.
//!
//! [`Rules::from_vercel_json`] parses and compiles everything once (every malformed rule is
//! reported at load, naming it by list, index and field); [`Rules::evaluate`] then answers, for
//! one request, which headers to add, whether to redirect, and where to rewrite to. Evaluation
//! never fails and never panics.
//!
//! # Layout
//! - [`config`]: reading `vercel.json` and the [`RulesLimits`] that bound it.
//! - `pattern`: path-to-regexp `source` patterns compiled to `regex-lite`.
//! - `condition`: `has`/`missing` on headers, cookies, query and host.
//! - `destination`: destination templates, substitution and the host-escape checks.

mod condition;
pub mod config;
mod destination;
mod pattern;

#[cfg(test)]
mod properties;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

pub use config::{RulesError, RulesLimits};
pub use pattern::escape_source_literal;

use condition::{Condition, Param};
use destination::{Destination, Filled, Target, TextTemplate, Values};
use pattern::SourcePattern;

/// Path of the edge's own Vercel Edge Function (`api/edge.js`). A `vercel.json` rewrite to
/// exactly this destination is Vercel's routing *into* the edge (`/api/(.*)` → the function):
/// on Vercel the platform applies it before the edge runs, and the function still sees the
/// original URL, so inside the edge (on either platform) it would only send every API request
/// to `/api/edge`. The edge validates such rules like any other but does not apply them.
pub const VERCEL_EDGE_FUNCTION: &str = "/api/edge";

/// The parsed rules file.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    redirects: Vec<RedirectRule>,
    rewrites: Vec<RewriteRule>,
    headers: Vec<HeaderRule>,
    /// Rewrites to [`VERCEL_EDGE_FUNCTION`]: validated, counted, not applied by the edge.
    platform_rewrites: usize,
}

/// What the rules look at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The raw path, still percent-encoded, starting with `/`.
    pub path: &'a str,
    /// The raw query, without `?` (a leading one is ignored); empty when there is none.
    pub query: &'a str,
    /// The request's host (`Host` header or URL authority), with or without port.
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// What to do with a request according to the rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RulesOutcome {
    /// Answer with this redirect instead of serving the request. Never set together with
    /// `rewrite`.
    pub redirect: Option<Redirect>,
    /// Serve the request from here instead of its own path.
    pub rewrite: Option<Rewrite>,
    /// Response headers from every matching `headers` rule, in file order; each name appears
    /// once (a later rule overrides an earlier one). Set them on the response, whatever it is
    /// (redirect, rewritten or not).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// A redirect answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The `Location` value: a path on this host or an absolute `http(s)://` URL, with the
    /// request's query merged in. Always a valid header value (no CR, LF or other controls).
    pub location: String,
    /// 308/307 from `permanent` (default 308), or the rule's `statusCode`.
    pub status: StatusCode,
}

/// A rewrite target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// A path on this host, starting with a single `/`, without dot segments, with the
    /// request's query merged in. The adapter routes it as if requested (`/api/*` → brain).
    Internal { path_and_query: String },
    /// An absolute `http(s)://` URL on another origin, to proxy to.
    External { url: String },
}

#[derive(Debug, Clone)]
struct Matcher {
    source: SourcePattern,
    /// `(name, position)` of the source's named parameters.
    source_names: Vec<(String, usize)>,
    has: Vec<Condition>,
    missing: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct RedirectRule {
    matcher: Matcher,
    destination: Destination,
    status: StatusCode,
}

#[derive(Debug, Clone)]
struct RewriteRule {
    matcher: Matcher,
    destination: Destination,
}

#[derive(Debug, Clone)]
struct HeaderRule {
    matcher: Matcher,
    headers: Vec<(HeaderName, HeaderTemplate)>,
}

/// A header value, fixed or with `:name` parameters to fill in.
#[derive(Debug, Clone)]
enum HeaderTemplate {
    Fixed(HeaderValue),
    Substituted(TextTemplate),
}

/// A matched rule's parameters.
struct Matched<'p, 'r> {
    captures: pattern::Captures<'p>,
    conditions: Vec<Param<'r>>,
}

impl Matcher {
    fn matches<'p, 'r>(&'r self, facts: &RequestFacts<'p>) -> Option<Matched<'p, 'r>> {
        let captures = self.source.captures(facts.path)?;
        let mut conditions = Vec::new();
        for condition in &self.has {
            conditions.extend(condition.check(facts)?);
        }
        if self.missing.iter().any(|c| c.check(facts).is_some()) {
            return None;
        }
        Some(Matched {
            captures,
            conditions,
        })
    }

    fn values<'a, 'p, 'r>(&'a self, matched: &'a Matched<'p, 'r>) -> Values<'a, 'p, 'r> {
        Values {
            source: &matched.captures,
            source_names: &self.source_names,
            conditions: &matched.conditions,
        }
    }
}

impl Rules {
    /// Parses and compiles `vercel.json` with the default [`RulesLimits`].
    pub fn from_vercel_json(text: &str) -> Result<Self, RulesError> {
        Self::from_vercel_json_with_limits(text, &RulesLimits::default())
    }

    /// Parses and compiles `vercel.json` within `limits`.
    pub fn from_vercel_json_with_limits(
        text: &str,
        limits: &RulesLimits,
    ) -> Result<Self, RulesError> {
        config::parse(text, limits)
    }

    /// Number of `(redirects, rewrites, headers)` rules.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.redirects.len(),
            self.rewrites.len(),
            self.headers.len(),
        )
    }

    /// Number of rewrites into the edge's own Vercel function ([`VERCEL_EDGE_FUNCTION`]), which
    /// the edge does not apply.
    pub fn platform_rewrites(&self) -> usize {
        self.platform_rewrites
    }

    /// Whether the file defines no rule the edge applies.
    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.rewrites.is_empty() && self.headers.is_empty()
    }

    /// Applies the rules to one request: all matching header rules, then the first matching
    /// redirect, else the first matching rewrite. A rule whose filled-in destination would be
    /// unsafe (an internal path leaving the host or holding dot segments) is skipped.
    pub fn evaluate(&self, facts: &RequestFacts<'_>) -> RulesOutcome {
        let query = facts.query.strip_prefix('?').unwrap_or(facts.query);
        let facts = &RequestFacts { query, ..*facts };
        let mut outcome = RulesOutcome {
            headers: self.response_headers(facts),
            ..RulesOutcome::default()
        };
        for rule in &self.redirects {
            let Some(matched) = rule.matcher.matches(facts) else {
                continue;
            };
            let values = rule.matcher.values(&matched);
            if let Some(filled) = rule.destination.fill(&values, facts.query, false) {
                outcome.redirect = Some(Redirect {
                    location: with_fragment(filled),
                    status: rule.status,
                });
                return outcome;
            }
        }
        for rule in &self.rewrites {
            let Some(matched) = rule.matcher.matches(facts) else {
                continue;
            };
            let values = rule.matcher.values(&matched);
            if let Some(filled) = rule.destination.fill(&values, facts.query, true) {
                // A fragment never reaches a server: a rewrite drops it.
                outcome.rewrite = Some(match rule.destination.target {
                    Target::Internal => Rewrite::Internal {
                        path_and_query: filled.without_fragment,
                    },
                    Target::External { .. } => Rewrite::External {
                        url: filled.without_fragment,
                    },
                });
                return outcome;
            }
        }
        outcome
    }

    fn response_headers(&self, facts: &RequestFacts<'_>) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for rule in &self.headers {
            let Some(matched) = rule.matcher.matches(facts) else {
                continue;
            };
            for (name, template) in &rule.headers {
                let value = match template {
                    HeaderTemplate::Fixed(value) => Some(value.clone()),
                    HeaderTemplate::Substituted(template) => {
                        HeaderValue::try_from(template.render(&rule.matcher.values(&matched))).ok()
                    }
                };
                let Some(value) = value else { continue };
                match headers.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = value,
                    None => headers.push((name.clone(), value)),
                }
            }
        }
        headers
    }
}

fn with_fragment(filled: Filled) -> String {
    match filled.fragment {
        Some(fragment) => format!("{}#{fragment}", filled.without_fragment),
        None => filled.without_fragment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Rules {
        Rules::from_vercel_json(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn load_error(json: &str) -> String {
        match Rules::from_vercel_json(json) {
            Ok(_) => panic!("should be rejected: {json}"),
            Err(error) => error.to_string(),
        }
    }

    fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn evaluate(rules: &Rules, url: &str, headers: &[(&str, &str)]) -> RulesOutcome {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let headers = header_map(headers);
        let host = headers.get("host").and_then(|h| h.to_str().ok());
        rules.evaluate(&RequestFacts {
            path,
            query,
            host,
            headers: &headers,
        })
    }

    fn internal(path_and_query: &str) -> Option<Rewrite> {
        Some(Rewrite::Internal {
            path_and_query: path_and_query.to_owned(),
        })
    }

    fn redirect(location: &str, status: u16) -> Option<Redirect> {
        Some(Redirect {
            location: location.to_owned(),
            status: StatusCode::from_u16(status).unwrap(),
        })
    }

    #[test]
    fn rewrites_into_the_vercel_function_are_validated_but_not_applied() {
        let routed = rules(
            r#"{"rewrites": [
                {"source": "/api/(.*)", "destination": "/api/edge"},
                {"source": "/api/v1/:path*", "destination": "/api/v2/:path*"}]}"#,
        );
        assert_eq!(routed.counts(), (0, 1, 0));
        assert_eq!(routed.platform_rewrites(), 1);
        assert_eq!(
            evaluate(&routed, "/api/v1/x", &[]).rewrite,
            internal("/api/v2/x"),
            "the routing rule is skipped, the next one applies"
        );
        // Only the exact function path: anything else is an ordinary rewrite.
        let other = rules(r#"{"rewrites": [{"source": "/a", "destination": "/api/edge/x"}]}"#);
        assert_eq!((other.counts(), other.platform_rewrites()), ((0, 1, 0), 0));
        // Still validated like every rule.
        assert!(
            load_error(r#"{"rewrites": [{"source": "/api/(?!x)", "destination": "/api/edge"}]}"#)
                .starts_with("vercel.json: rewrites[0].source")
        );
    }

    const REPO_RULES: &str = include_str!("../../../../vercel.json");

    #[test]
    fn the_repository_vercel_json_loads_and_does_what_it_says() {
        let rules = rules(REPO_RULES);
        assert_eq!(rules.counts(), (1, 1, 1));
        assert_eq!(
            rules.platform_rewrites(),
            3,
            "/api/(.*), /health and /v1/(.*) route to the Vercel function"
        );
        for path in ["/api/v1/threads?limit=5", "/health", "/api/edge"] {
            let routed = evaluate(&rules, path, &[]);
            assert_eq!(routed.rewrite, None, "{path} is not rewritten by the edge");
            assert_eq!(routed.redirect, None, "{path}");
        }

        let moved = evaluate(&rules, "/old-api/v1/diag/echo?x=1", &[]);
        assert_eq!(moved.redirect, redirect("/api/v1/diag/echo?x=1", 308));
        assert_eq!(moved.rewrite, None);

        let short = evaluate(&rules, "/v1/diag/stream?events=3", &[]);
        assert_eq!(short.rewrite, internal("/api/v1/diag/stream?events=3"));
        assert_eq!(short.redirect, None);

        let untouched = evaluate(&rules, "/api/v1/diag/echo", &[]);
        assert_eq!((untouched.redirect, untouched.rewrite), (None, None));
        let names: Vec<&str> = untouched.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-content-type-options", "referrer-policy"]);
    }

    #[test]
    fn redirects_win_over_rewrites_and_the_first_match_wins() {
        let rules = rules(
            r#"{
              "rewrites": [{ "source": "/a", "destination": "/rewritten" }],
              "redirects": [
                { "source": "/a", "destination": "/first", "permanent": false },
                { "source": "/a", "destination": "/second" },
                { "source": "/b", "destination": "/moved", "statusCode": 301 }
              ]
            }"#,
        );
        let outcome = evaluate(&rules, "/a", &[]);
        assert_eq!(outcome.redirect, redirect("/first", 307));
        assert_eq!(outcome.rewrite, None);
        assert_eq!(
            evaluate(&rules, "/b", &[]).redirect,
            redirect("/moved", 301)
        );
    }

    #[test]
    fn rewrites_keep_the_query_and_reach_external_origins() {
        let rules = rules(
            r#"{ "rewrites": [
              { "source": "/ext/:path+", "destination": "https://api.example.com/v2/:path+?via=edge" },
              { "source": "/blog/:slug", "destination": "/api/posts" }
            ] }"#,
        );
        assert_eq!(
            evaluate(&rules, "/ext/a/b?via=client&k=v", &[]).rewrite,
            Some(Rewrite::External {
                url: "https://api.example.com/v2/a/b?via=edge&k=v".to_owned()
            })
        );
        assert_eq!(
            evaluate(&rules, "/blog/hello?page=2", &[]).rewrite,
            internal("/api/posts?slug=hello&page=2"),
            "an unused parameter reaches the rewrite's query, as on Vercel"
        );
    }

    #[test]
    fn has_and_missing_select_rules_and_feed_the_destination() {
        let rules = rules(
            r#"{ "rewrites": [
              { "source": "/app/:path*",
                "has": [
                  { "type": "header", "key": "X-Tenant", "value": "(?<tenant>[a-z]+)" },
                  { "type": "cookie", "key": "plan" },
                  { "type": "query", "key": "lang", "value": "en|fr" },
                  { "type": "host", "value": "(?<sub>[a-z]+)\\.example\\.com" }
                ],
                "missing": [{ "type": "cookie", "key": "legacy" }],
                "destination": "/api/:tenant/:sub/:plan/:path*" },
              { "source": "/app/:path*", "destination": "/api/fallback/:path*" }
            ] }"#,
        );
        let good = [
            ("host", "Eu.Example.com:443"),
            ("x-tenant", "acme"),
            ("cookie", "a=1; plan=pro%20plus"),
        ];
        assert_eq!(
            evaluate(&rules, "/app/x/y?lang=fr", &good).rewrite,
            internal("/api/acme/eu/pro%20plus/x/y?lang=fr")
        );
        let with_legacy = [
            ("host", "eu.example.com"),
            ("x-tenant", "acme"),
            ("cookie", "plan=pro"),
            ("cookie", "legacy=1"),
        ];
        assert_eq!(
            evaluate(&rules, "/app/x?lang=fr", &with_legacy).rewrite,
            internal("/api/fallback/x?lang=fr"),
            "missing cookie present: the first rule is skipped"
        );
        assert_eq!(
            evaluate(&rules, "/app/x?lang=de", &good).rewrite,
            internal("/api/fallback/x?lang=de"),
            "values must match in full"
        );
        assert_eq!(
            evaluate(
                &rules,
                "/app/x?lang=fr",
                &[("x-tenant", "ACME"), ("cookie", "plan=1")]
            )
            .rewrite,
            internal("/api/fallback/x?lang=fr")
        );
    }

    #[test]
    fn a_condition_without_value_or_with_an_empty_one_needs_only_presence() {
        let rules = rules(
            r#"{ "redirects": [
              { "source": "/a", "has": [{ "type": "query", "key": "ref", "value": "" }],
                "destination": "/b/:ref" },
              { "source": "/a", "has": [{ "type": "header", "key": "x-user-id" }],
                "destination": "/u/:xuserid" }
            ] }"#,
        );
        assert_eq!(
            evaluate(&rules, "/a?ref=mail", &[]).redirect,
            redirect("/b/mail?ref=mail", 308)
        );
        assert_eq!(
            evaluate(&rules, "/a", &[("x-user-id", "42")]).redirect,
            redirect("/u/42", 308)
        );
        assert_eq!(evaluate(&rules, "/a", &[]).redirect, None);
    }

    #[test]
    fn every_matching_header_rule_applies_in_order() {
        let rules = rules(
            r#"{ "headers": [
              { "source": "/(.*)", "headers": [
                  { "key": "X-Frame-Options", "value": "DENY" },
                  { "key": "Cache-Control", "value": "no-store" } ] },
              { "source": "/static/:file", "headers": [
                  { "key": "cache-control", "value": "public, max-age=60" },
                  { "key": "X-File", "value": "file=:file" } ] },
              { "source": "/(.*)", "missing": [{ "type": "header", "key": "x-debug" }],
                "headers": [{ "key": "X-Debug", "value": "off" }] }
            ] }"#,
        );
        let outcome = evaluate(&rules, "/static/app.js", &[("x-debug", "1")]);
        let pairs: Vec<(&str, &str)> = outcome
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("x-frame-options", "DENY"),
                ("cache-control", "public, max-age=60"),
                ("x-file", "file=app.js"),
            ]
        );
        assert_eq!(evaluate(&rules, "/", &[]).headers.len(), 3);
    }

    #[test]
    fn a_destination_that_would_leave_the_host_is_skipped() {
        let rules = rules(
            r#"{ "redirects": [
              { "source": "/(.*)", "destination": "/$1" }
            ] }"#,
        );
        assert_eq!(evaluate(&rules, "//evil.example/x", &[]).redirect, None);
        assert_eq!(
            evaluate(&rules, "/fine", &[]).redirect,
            redirect("/fine", 308)
        );
    }

    #[test]
    fn non_routing_top_level_keys_are_ignored() {
        let rules = rules(
            r#"{ "$schema": "x", "functions": {}, "buildCommand": "make", "outputDirectory": "out",
                 "regions": ["fra1"], "cleanUrls": false }"#,
        );
        assert!(rules.is_empty());
        assert!(evaluate(&rules, "/", &[]) == RulesOutcome::default());
    }

    #[test]
    fn malformed_rules_are_rejected_at_load_naming_the_rule_and_field() {
        for (json, expected) in [
            ("[]", "vercel.json must be a JSON object"),
            ("{", "vercel.json is not valid JSON"),
            (r#"{"rewrites": {}}"#, "rewrites must be an array"),
            (r#"{"rewrites": [1]}"#, "rewrites[0] must be an object"),
            (
                r#"{"rewrites": [{"source": "/a"}]}"#,
                "rewrites[0].destination is required",
            ),
            (
                r#"{"rewrites": [{"source": "/a", "destination": "/b", "desination": "/c"}]}"#,
                "rewrites[0].desination is not a known key",
            ),
            (
                r#"{"rewrites": [{"source": "/a", "destination": "/b", "statusCode": 200}]}"#,
                "rewrites[0].statusCode is not supported",
            ),
            (
                r#"{"redirects": [{"source": "/a", "destination": "/b"}, {"source": "/c/*", "destination": "/d"}]}"#,
                "redirects[1].source has '*' that follows no parameter",
            ),
            (
                r#"{"redirects": [{"source": "/a", "destination": "b"}]}"#,
                "redirects[0].destination must be a path",
            ),
            (
                r#"{"redirects": [{"source": "/a", "destination": "/b", "statusCode": 200}]}"#,
                "redirects[0].statusCode must be one of 301",
            ),
            (
                r#"{"redirects": [{"source": "/a", "destination": "/b", "statusCode": 301, "permanent": true}]}"#,
                "redirects[0] sets both permanent and statusCode",
            ),
            (
                r#"{"redirects": [{"source": "/a", "destination": "/b", "permanent": "yes"}]}"#,
                "redirects[0].permanent must be true or false",
            ),
            (
                r#"{"headers": [{"source": "/a", "has": [{"type": "ip", "key": "x"}], "headers": []}]}"#,
                "headers[0].has[0].type must be one of",
            ),
            (
                r#"{"headers": [{"source": "/a", "missing": [{"type": "query"}], "headers": []}]}"#,
                "headers[0].missing[0].key is required",
            ),
            (
                r#"{"headers": [{"source": "/a", "has": [{"type": "host"}], "headers": []}]}"#,
                "headers[0].has[0].value is required for type host",
            ),
            (
                r#"{"headers": [{"source": "/a", "has": [{"type": "query", "key": "q", "value": {"eq": "1"}}], "headers": []}]}"#,
                "headers[0].has[0].value as an operator object",
            ),
            (
                r#"{"headers": [{"source": "/a", "has": [{"type": "query", "key": "q", "value": "(?=x)"}], "headers": []}]}"#,
                "headers[0].has[0].value is not a supported regular expression",
            ),
            (
                r#"{"headers": [{"source": "/a", "headers": [{"key": "bad name", "value": "v"}]}]}"#,
                "headers[0].headers[0].key is not a valid header name",
            ),
            (
                r#"{"headers": [{"source": "/a", "headers": [{"key": "x", "value": "a\nb"}]}]}"#,
                "headers[0].headers[0].value is not a valid header value",
            ),
            (
                r#"{"routes": []}"#,
                "routes (the legacy routing format) is not supported",
            ),
            (
                r#"{"trailingSlash": false}"#,
                "trailingSlash is not supported",
            ),
            (r#"{"cleanUrls": true}"#, "cleanUrls is not supported"),
            (
                r#"{"redirect": []}"#,
                "redirect is not a vercel.json key; did you mean redirects?",
            ),
        ] {
            let message = load_error(json);
            let prefixed = format!("vercel.json: {expected}");
            let whole_file = expected.starts_with("vercel.json ");
            assert!(
                message.starts_with(if whole_file { expected } else { &prefixed }),
                "{json}\n  gave: {message}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn limits_bound_the_file() {
        let many = format!(
            r#"{{"rewrites": [{}]}}"#,
            [r#"{"source": "/a", "destination": "/b"}"#; 5].join(",")
        );
        let tight = RulesLimits {
            max_rules: 4,
            ..RulesLimits::default()
        };
        let error = Rules::from_vercel_json_with_limits(&many, &tight).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("vercel.json: rewrites[4] exceeds the limit of 4 rules in total")
        );
        let patterns = RulesLimits {
            max_patterns: 3,
            ..RulesLimits::default()
        };
        assert!(Rules::from_vercel_json_with_limits(&many, &patterns).is_err());
        let small = RulesLimits {
            max_file_bytes: 10,
            ..RulesLimits::default()
        };
        assert!(Rules::from_vercel_json_with_limits(&many, &small).is_err());
        let short = RulesLimits {
            max_pattern_bytes: 3,
            ..RulesLimits::default()
        };
        let error = Rules::from_vercel_json_with_limits(
            r#"{"rewrites": [{"source": "/abcd", "destination": "/b"}]}"#,
            &short,
        )
        .err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("vercel.json: rewrites[0].source is 5 bytes long; the limit is 3")
        );
        assert!(Rules::from_vercel_json_with_limits(&many, &RulesLimits::default()).is_ok());
    }
}
