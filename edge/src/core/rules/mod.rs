//! Rewrites, redirects and response headers from `vercel.json`, in Vercel's own format and
//! semantics, so one rules file drives both Vercel and the Cloudflare edge.
//!
//! [`Rules::from_vercel_json`] parses and compiles everything once, refusing what Vercel
//! refuses at deploy (every malformed rule is reported, naming it by list, index and field);
//! [`Rules::evaluate`] then answers, for one request, which headers to add, whether to
//! redirect, and where to rewrite to. Evaluation never panics, and its work is bounded by a
//! step budget ([`RulesLimits::max_evaluation_steps`]).
//!
//! Order, as Vercel's routing-utils lays the routes out: the redirects of `cleanUrls` and
//! `trailingSlash`, then `redirects` (the first match answers, without header rules), then
//! every matching `headers` rule, then the first matching `rewrites` rule. `/.well-known` is
//! reserved: never redirected or rewritten.
//!
//! # Layout
//! - [`config`]: reading `vercel.json` and the [`RulesLimits`] that bound it.
//! - `pattern`: path-to-regexp 6.1.0 `source` patterns, with literal prefilters.
//! - `regex`: the JavaScript regex engine the patterns run on, with its step budget.
//! - `condition`: `has`/`missing` on headers, cookies, query and host.
//! - `destination` (with `node_url`): destinations and header values, compiled as
//!   routing-utils does, filled in with the host-escape checks.
//! - `builtin`: the redirects of `cleanUrls` and `trailingSlash`.

mod builtin;
mod condition;
pub mod config;
mod destination;
mod node_url;
mod pattern;
mod regex;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod properties;

use core::fmt;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

pub use config::{RulesError, RulesLimits};
pub use pattern::escape_source_literal;

use condition::{Condition, Param};
use destination::{Filled, Template, Values};
use pattern::SourcePattern;
use regex::{Exhausted, StepBudget};

/// Path of the edge's own Vercel Edge Function (`api/edge.js`). A `vercel.json` rewrite to
/// exactly this destination is Vercel's routing *into* the edge (`/api/(.*)` → the function):
/// on Vercel the platform applies it before the edge runs, and the function still sees the
/// original URL, so inside the edge (on either platform) it would only send every API request
/// to `/api/edge`. The edge validates such rules like any other but does not apply them.
pub const VERCEL_EDGE_FUNCTION: &str = "/api/edge";

/// The parsed rules file.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The redirects of `cleanUrls` and `trailingSlash`, before the file's own.
    builtin: Vec<RedirectRule>,
    redirects: Vec<RedirectRule>,
    rewrites: Vec<RewriteRule>,
    headers: Vec<HeaderRule>,
    clean_urls: bool,
    trailing_slash: Option<bool>,
    /// Rewrites to [`VERCEL_EDGE_FUNCTION`]: validated, counted, not applied by the edge.
    platform_rewrites: usize,
    /// [`RulesLimits::max_evaluation_steps`].
    max_steps: u64,
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
    /// `rewrite`, nor with `headers` (Vercel answers a redirect before its header rules).
    pub redirect: Option<Redirect>,
    /// Serve the request from here instead of its own path.
    pub rewrite: Option<Rewrite>,
    /// Response headers from every matching `headers` rule, in file order; each name appears
    /// once (a later rule overrides an earlier one). Set them on the response, whatever it is.
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

/// Evaluating the rules for this request would take more work than
/// [`RulesLimits::max_evaluation_steps`] allows: the path is too long for the file's patterns.
/// Answer 414.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesTooCostly {
    pub max_steps: u64,
}

impl fmt::Display for RulesTooCostly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the URL is too long for this deployment's vercel.json rules (matching it would take \
             more than {} steps)",
            self.max_steps
        )
    }
}

impl std::error::Error for RulesTooCostly {}

#[derive(Debug, Clone)]
struct Matcher {
    source: SourcePattern,
    has: Vec<Condition>,
    missing: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct RedirectRule {
    matcher: Matcher,
    destination: Template,
    status: StatusCode,
}

#[derive(Debug, Clone)]
struct RewriteRule {
    matcher: Matcher,
    destination: Template,
}

#[derive(Debug, Clone)]
struct HeaderRule {
    matcher: Matcher,
    /// Name, value template, and the value as written (used when the template is fixed).
    headers: Vec<(HeaderName, Template, HeaderValue)>,
}

/// A matched rule's parameters.
struct Matched<'p, 'r> {
    captures: pattern::Captures<'p>,
    has: Vec<Param<'r>>,
}

impl<'p, 'r> Matched<'p, 'r> {
    fn values(&self) -> Values<'_> {
        Values {
            source: &self.captures,
            has: &self.has,
        }
    }
}

impl Matcher {
    fn matches<'p, 'r>(
        &'r self,
        facts: &RequestFacts<'p>,
        budget: &mut StepBudget,
    ) -> Result<Option<Matched<'p, 'r>>, Exhausted> {
        let Some(captures) = self.source.captures(facts.path, budget)? else {
            return Ok(None);
        };
        let mut has = Vec::new();
        for condition in &self.has {
            match condition.check(facts, budget)? {
                Some(params) => has.extend(params),
                None => return Ok(None),
            }
        }
        for condition in &self.missing {
            if condition.check(facts, budget)?.is_some() {
                return Ok(None);
            }
        }
        Ok(Some(Matched { captures, has }))
    }
}

/// Vercel reserves `/.well-known`: it is never redirected or rewritten.
fn is_well_known(path: &str) -> bool {
    path.strip_prefix("/.well-known")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
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
        self.builtin.is_empty()
            && self.redirects.is_empty()
            && self.rewrites.is_empty()
            && self.headers.is_empty()
    }

    /// Applies the rules to one request (see the module docs for the order). A rule whose
    /// filled-in destination would be unsafe (an internal path leaving the host or holding dot
    /// segments) is skipped.
    pub fn evaluate(&self, facts: &RequestFacts<'_>) -> Result<RulesOutcome, RulesTooCostly> {
        let mut budget = StepBudget {
            left: self.max_steps,
        };
        self.evaluate_within(facts, &mut budget)
            .map_err(|Exhausted| RulesTooCostly {
                max_steps: self.max_steps,
            })
    }

    fn evaluate_within(
        &self,
        facts: &RequestFacts<'_>,
        budget: &mut StepBudget,
    ) -> Result<RulesOutcome, Exhausted> {
        let query = facts.query.strip_prefix('?').unwrap_or(facts.query);
        let facts = &RequestFacts { query, ..*facts };
        let reserved = is_well_known(facts.path);
        if reserved && self.trailing_slash == Some(true) {
            // routing-utils' first trailingSlash route: it matches `/.well-known` and ends the
            // routing there, header rules included.
            return Ok(RulesOutcome::default());
        }
        if !reserved {
            for rule in self.builtin.iter().chain(&self.redirects) {
                let Some(matched) = rule.matcher.matches(facts, budget)? else {
                    continue;
                };
                if let Some(filled) = rule.destination.fill(&matched.values(), facts.query) {
                    return Ok(RulesOutcome {
                        redirect: Some(Redirect {
                            location: with_fragment(filled),
                            status: rule.status,
                        }),
                        ..RulesOutcome::default()
                    });
                }
            }
        }
        let mut outcome = RulesOutcome {
            headers: self.response_headers(facts, budget)?,
            ..RulesOutcome::default()
        };
        if reserved {
            return Ok(outcome);
        }
        for rule in &self.rewrites {
            let Some(matched) = rule.matcher.matches(facts, budget)? else {
                continue;
            };
            if let Some(filled) = rule.destination.fill(&matched.values(), facts.query) {
                // A fragment never reaches a server: a rewrite drops it.
                outcome.rewrite = Some(if filled.external {
                    Rewrite::External {
                        url: filled.without_fragment,
                    }
                } else {
                    Rewrite::Internal {
                        path_and_query: filled.without_fragment,
                    }
                });
                return Ok(outcome);
            }
        }
        Ok(outcome)
    }

    fn response_headers(
        &self,
        facts: &RequestFacts<'_>,
        budget: &mut StepBudget,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, Exhausted> {
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for rule in &self.headers {
            let Some(matched) = rule.matcher.matches(facts, budget)? else {
                continue;
            };
            for (name, template, fixed) in &rule.headers {
                let value = if template.is_fixed() {
                    Some(fixed.clone())
                } else {
                    HeaderValue::try_from(template.render_header(&matched.values())).ok()
                };
                let Some(value) = value else { continue };
                match headers.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = value,
                    None => headers.push((name.clone(), value)),
                }
            }
        }
        Ok(headers)
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
    use crate::core::test_support::headers as header_map;

    fn rules(json: &str) -> Rules {
        Rules::from_vercel_json(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn load_error(json: &str) -> String {
        match Rules::from_vercel_json(json) {
            Ok(_) => panic!("should be rejected: {json}"),
            Err(error) => error.to_string(),
        }
    }

    fn evaluate(rules: &Rules, url: &str, headers: &[(&str, &str)]) -> RulesOutcome {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let headers = header_map(headers);
        let host = headers.get("host").and_then(|h| h.to_str().ok());
        rules
            .evaluate(&RequestFacts {
                path,
                query,
                host,
                headers: &headers,
            })
            .unwrap()
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
            load_error(r#"{"rewrites": [{"source": "/api/(x", "destination": "/api/edge"}]}"#)
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
            4,
            "/api/(.*), /health, /auth/(.*) and /v1/(.*) route to the Vercel function"
        );
        for path in [
            "/api/v1/threads?limit=5",
            "/health",
            "/auth/login",
            "/api/edge",
        ] {
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
                "destination": "/u/$x-user-id" }
            ],
              "rewrites": [{ "source": "/r", "has": [{ "type": "header", "key": "x-user-id" }],
                "destination": "/api/u" }] }"#,
        );
        assert_eq!(
            evaluate(&rules, "/r", &[("x-user-id", "42")]).rewrite,
            internal("/api/u?x-user-id=42"),
            "the key keeps its name, as on Vercel"
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
                "redirects[1].source has '*' at character 3 that follows no parameter",
            ),
            (
                r#"{"redirects": [{"source": "/a", "destination": "b"}]}"#,
                "redirects[0].destination must be a path",
            ),
            (
                r#"{"redirects": [{"source": "/a", "destination": "/b", "statusCode": 600}]}"#,
                "redirects[0].statusCode must be an integer from 200 to 599",
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
                r#"{"headers": [{"source": "/a", "has": [{"type": "query", "key": "q", "value": {"eq": "1", "like": "x"}}], "headers": []}]}"#,
                "headers[0].has[0].value.like is not an operator",
            ),
            (
                r#"{"headers": [{"source": "/a", "has": [{"type": "query", "key": "q", "value": "(x"}], "headers": []}]}"#,
                "headers[0].has[0].value is not a valid JavaScript regular expression",
            ),
            (
                r#"{"redirects": [{"source": "/a/(x", "destination": "/b"}]}"#,
                "redirects[0].source is not a valid JavaScript regular expression",
            ),
            (
                r#"{"redirects": [{"source": "/a/:x", "destination": "/b/:y"}]}"#,
                "redirects[0].destination uses the parameter :y",
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
                r#"{"trailingSlash": "no"}"#,
                "trailingSlash must be true or false",
            ),
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
        let has = format!(
            r#"{{"headers": [{{"source": "/a", "has": [{}], "headers": []}}]}}"#,
            [r#"{"type": "query", "key": "q"}"#; 17].join(",")
        );
        assert!(
            load_error(&has)
                .starts_with("vercel.json: headers[0].has has 17 items; the limit is 16"),
            "{}",
            load_error(&has)
        );
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

    fn pairs(outcome: &RulesOutcome) -> Vec<(String, String)> {
        outcome
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn non_ascii_values_reach_header_values_percent_encoded_once() {
        let rules = rules(
            r#"{ "headers": [{ "source": "/a", "has": [{ "type": "query", "key": "v", "value": "(?<v>.*)" }],
                 "headers": [{ "key": "x-v", "value": "v=:v" }] }] }"#,
        );
        let outcome = evaluate(&rules, "/a?v=caf%C3%A9", &[]);
        assert_eq!(
            pairs(&outcome),
            [("x-v".to_owned(), "v=caf%C3%A9".to_owned())]
        );
    }

    #[test]
    fn well_known_paths_are_never_redirected_or_rewritten() {
        let rules = rules(
            r#"{ "redirects": [{ "source": "/:path*", "destination": "/moved/:path*" }],
                 "rewrites": [{ "source": "/(.*)", "destination": "/api/$1" }],
                 "headers": [{ "source": "/(.*)", "headers": [{ "key": "x-h", "value": "1" }] }] }"#,
        );
        for path in ["/.well-known", "/.well-known/acme-challenge/t"] {
            let outcome = evaluate(&rules, path, &[]);
            assert_eq!((outcome.redirect, outcome.rewrite), (None, None), "{path}");
            assert_eq!(outcome.headers.len(), 1, "header rules still apply");
        }
        assert!(evaluate(&rules, "/.well-knownx", &[]).redirect.is_some());
    }

    #[test]
    fn redirects_answer_without_the_header_rules() {
        let rules = rules(
            r#"{ "redirects": [{ "source": "/old", "destination": "/new" }],
                 "headers": [{ "source": "/(.*)", "headers": [{ "key": "x-h", "value": "1" }] }] }"#,
        );
        let outcome = evaluate(&rules, "/old", &[]);
        assert_eq!(outcome.redirect, redirect("/new", 308));
        assert!(outcome.headers.is_empty());
    }

    #[test]
    fn an_unmatched_optional_parameter_is_an_empty_query_value_of_a_rewrite() {
        let rules =
            rules(r#"{ "rewrites": [{ "source": "/docs/:page?", "destination": "/api/docs" }] }"#);
        assert_eq!(
            evaluate(&rules, "/docs", &[]).rewrite,
            internal("/api/docs?page=")
        );
        assert_eq!(
            evaluate(&rules, "/docs/x?a=1", &[]).rewrite,
            internal("/api/docs?page=x&a=1")
        );
    }

    #[test]
    fn parameters_follow_path_to_regexp_6_1_0_and_routing_utils() {
        let rules = rules(
            r#"{ "redirects": [
                 { "source": "/a-:x+", "destination": "/b/:x" },
                 { "source": "/c/:id", "destination": "/d/{:id}/e" },
                 { "source": "/f/:id", "destination": "https://:id.example.com/" }
               ],
               "headers": [{ "source": "/u/(\\d+)", "headers": [{ "key": "x-id", "value": "id=$1" }] }] }"#,
        );
        assert_eq!(
            evaluate(&rules, "/a-bcd", &[]).redirect,
            redirect("/b/d", 308)
        );
        assert_eq!(
            evaluate(&rules, "/c/7", &[]).redirect,
            redirect("/d/7/e", 308)
        );
        assert_eq!(
            evaluate(&rules, "/f/tenant-1", &[]).redirect,
            redirect("https://tenant-1.example.com/", 308)
        );
        assert_eq!(
            evaluate(&rules, "/f/a_b", &[]).redirect,
            None,
            "not a host name"
        );
        assert_eq!(
            pairs(&evaluate(&rules, "/u/42", &[])),
            [("x-id".to_owned(), "id=42".to_owned())]
        );
    }

    #[test]
    fn host_conditions_define_their_named_groups_and_host() {
        let rules = rules(
            r#"{ "redirects": [{ "source": "/(.*)",
                 "has": [{ "type": "host", "value": "(?<sub>[a-z]+)\\.example\\.com" }],
                 "destination": "https://:sub.example.org/$1?from=:host" }] }"#,
        );
        assert_eq!(
            evaluate(&rules, "/p", &[("host", "EU.example.com:443")]).redirect,
            redirect("https://eu.example.org/p?from=eu.example.com", 308)
        );
    }

    #[test]
    fn look_ahead_sources_work_as_in_vercels_documentation() {
        let rules = rules(
            r#"{ "redirects": [{ "source": "/:path((?!uk/).*)",
                 "has": [{ "type": "header", "key": "x-vercel-ip-country", "value": "GB" }],
                 "destination": "/uk/:path*", "permanent": false }] }"#,
        );
        let gb = [("x-vercel-ip-country", "GB")];
        assert_eq!(
            evaluate(&rules, "/shop/x", &gb).redirect,
            redirect("/uk/shop/x", 307)
        );
        assert_eq!(evaluate(&rules, "/uk/shop", &gb).redirect, None);
        assert_eq!(evaluate(&rules, "/shop/x", &[]).redirect, None);
    }

    #[test]
    fn operator_objects_select_rules() {
        let rules = rules(
            r#"{ "redirects": [
                 { "source": "/a", "has": [{ "type": "query", "key": "v", "value": { "pre": "v", "ninc": ["v0"] } }],
                   "destination": "/pre" },
                 { "source": "/a", "has": [{ "type": "header", "key": "x-n", "value": { "gte": 2, "lt": 10 } }],
                   "destination": "/range" },
                 { "source": "/a", "has": [{ "type": "cookie", "key": "c", "value": { "re": "(?<plan>pro|team)", "neq": "team" } }],
                   "destination": "/plan/:plan" },
                 { "source": "/a", "missing": [{ "type": "query", "key": "z", "value": { "eq": 1 } }],
                   "destination": "/no-z1" }
               ] }"#,
        );
        assert_eq!(
            evaluate(&rules, "/a?v=v2", &[]).redirect,
            redirect("/pre?v=v2", 308)
        );
        assert_eq!(
            evaluate(&rules, "/a?v=v0&z=1", &[("x-n", "3")]).redirect,
            redirect("/range?v=v0&z=1", 308)
        );
        assert_eq!(
            evaluate(&rules, "/a?z=1", &[("cookie", "c=pro")]).redirect,
            redirect("/plan/pro?z=1", 308)
        );
        assert_eq!(
            evaluate(&rules, "/a?z=1", &[("cookie", "c=team")]).redirect,
            None
        );
        assert_eq!(
            evaluate(&rules, "/a?z=2", &[]).redirect,
            redirect("/no-z1?z=2", 308)
        );
    }

    #[test]
    fn clean_urls_and_trailing_slash_redirect_as_on_vercel() {
        let clean = rules(r#"{ "cleanUrls": true }"#);
        assert_eq!(
            evaluate(&clean, "/about.html?x=1", &[]).redirect,
            redirect("/about?x=1", 308)
        );
        assert_eq!(
            evaluate(&clean, "/docs/index.html", &[]).redirect,
            redirect("/docs", 308)
        );
        assert_eq!(evaluate(&clean, "/index", &[]).redirect, redirect("/", 308));
        assert_eq!(evaluate(&clean, "/about", &[]).redirect, None);
        let no_slash = rules(r#"{ "trailingSlash": false }"#);
        assert_eq!(
            evaluate(&no_slash, "/a/b/", &[]).redirect,
            redirect("/a/b", 308)
        );
        assert_eq!(evaluate(&no_slash, "/", &[]).redirect, None);
        let slash = rules(
            r#"{ "trailingSlash": true, "cleanUrls": true,
                 "headers": [{ "source": "/(.*)", "headers": [{ "key": "x-h", "value": "1" }] }] }"#,
        );
        assert_eq!(
            evaluate(&slash, "/a/b", &[]).redirect,
            redirect("/a/b/", 308)
        );
        assert_eq!(
            evaluate(&slash, "/a/b.txt/", &[]).redirect,
            redirect("/a/b.txt", 308)
        );
        assert_eq!(
            evaluate(&slash, "/a.html", &[]).redirect,
            redirect("/a/", 308)
        );
        assert_eq!(evaluate(&slash, "/a/", &[]).redirect, None);
        assert_eq!(
            evaluate(&slash, "/.well-known/x", &[]),
            RulesOutcome::default(),
            "routing-utils' /.well-known route ends the routing"
        );
    }

    #[test]
    fn any_status_a_response_can_carry_is_a_redirect_status() {
        for code in [301, 302, 303, 307, 308, 300, 200, 404] {
            let rules = rules(&format!(
                r#"{{ "redirects": [{{ "source": "/a", "destination": "/b", "statusCode": {code} }}] }}"#
            ));
            assert_eq!(evaluate(&rules, "/a", &[]).redirect, redirect("/b", code));
        }
    }

    #[test]
    fn a_costly_path_is_refused_within_the_step_budget() {
        let rules = rules(
            r#"{ "headers": [{ "source": "/:x((?:a|a)+)-:y(z)", "headers": [{ "key": "x", "value": "1" }] }] }"#,
        );
        let path = format!("/{}-b", "a".repeat(5_000));
        let headers = HeaderMap::new();
        let outcome = rules.evaluate(&RequestFacts {
            path: &path,
            query: "",
            host: None,
            headers: &headers,
        });
        assert_eq!(
            outcome,
            Err(RulesTooCostly {
                max_steps: RulesLimits::DEFAULT_MAX_EVALUATION_STEPS
            })
        );
    }
}
