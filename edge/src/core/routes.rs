//! The route table: which per-route policies (authentication, caching, rate limit) apply to a
//! request bound for the brain.
//!
//! Configured as JSON in the `ROUTES` variable (a wrangler `[vars]` array), matched in order,
//! first match wins; a request no entry matches gets the fallback route (optional
//! authentication, no caching, the rate-limit policy named `default` if one is defined).
//! `auth` is an `AuthPolicy` (`{"mode": "public"|"optional"|"required", "scopes": […],
//! "any_role": […]}`, default optional):
//!
//! ```json
//! [
//!   {"path": "/api/v1/admin/*", "auth": {"mode": "required", "scopes": ["admin"]}},
//!   {"path": "/api/v1/reports/*", "methods": ["GET"], "cache": {"ttl_secs": 60, "swr_secs": 30}},
//!   {"path": "/api/v1/threads/*", "auth": {"mode": "required"}, "rate_limit": "chat"}
//! ]
//! ```
//!
//! `path` is an exact path (`/api/v1/health`), a prefix ending in `/*` (matching the prefix
//! itself and everything below it), or `*` (everything). `methods` restricts the entry to those
//! methods (default: any). Named rate-limit policies come from `RATE_LIMITS`
//! (`[{"name": "chat", "limit": 20, "window_secs": 60}]`); a route naming an undefined policy
//! fails at load. An entry without `rate_limit` gets the `default` policy too, like the
//! fallback (an entry added for auth or caching never lifts the limit by accident);
//! `"rate_limit": null` lifts it.
//!
//! `"retryable": true` declares the route's requests safe to send twice (read-only `POST`s such
//! as the SQL and JSON query endpoints): after a connect failure the edge may then send one to
//! the next brain of the tenant's order, as it does for every `GET` and `HEAD` (see
//! `edge::core::brains`). Never mark a route that changes state — chat messages, uploads —
//! retryable: the first brain may have acted on the request before the connection broke.

use std::collections::BTreeMap;

use http::Method;
use serde::Deserialize;

use super::auth::AuthPolicy;
use super::cache::CachePolicy;
use super::policy_error::PolicyError;
use super::ratelimit::{RateLimitPolicy, policies_by_name};

/// Most entries in `ROUTES` (the table is scanned linearly per request).
pub const MAX_ROUTES: usize = 256;

/// The policy name the fallback route uses, when defined.
pub const DEFAULT_RATE_LIMIT: &str = "default";

/// Where an entry applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePath {
    Exact(String),
    /// `/a/b/*`: stored as `/a/b`; matches `/a/b` and `/a/b/…`.
    Prefix(String),
    Any,
}

impl RoutePath {
    fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(RoutePath::Any);
        }
        if !text.starts_with('/') {
            return Err("must start with '/' (or be '*')".to_owned());
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII".to_owned());
        }
        match text.strip_suffix("/*") {
            Some(prefix) if !prefix.contains('*') => Ok(RoutePath::Prefix(prefix.to_owned())),
            _ if text.contains('*') => Err("'*' may only end the path, as '/*'".to_owned()),
            _ => Ok(RoutePath::Exact(text.to_owned())),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            RoutePath::Any => true,
            RoutePath::Exact(exact) => path == exact,
            RoutePath::Prefix(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }
}

/// One entry of the table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: RoutePath,
    /// `None`: any method.
    pub methods: Option<Vec<Method>>,
    pub auth: AuthPolicy,
    pub cache: Option<CachePolicy>,
    pub rate_limit: Option<RateLimitPolicy>,
    /// Safe to send twice: retried at the next brain after a connect failure (`GET` and
    /// `HEAD` always are).
    pub retryable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    auth: Option<AuthPolicy>,
    #[serde(default)]
    cache: Option<CachePolicy>,
    /// Absent: the `default` policy, like the fallback route (a route entry added for auth or
    /// caching must not silently lift the limit); `null`: no limit; a name: that policy.
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<String>>,
    #[serde(default)]
    retryable: bool,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`, via `default`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// The parsed `ROUTES` and `RATE_LIMITS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
    fallback: Route,
}

impl RouteTable {
    /// Parses the two variables (either may be absent). Errors name the entry and field, e.g.
    /// `ROUTES[2].rate_limit: no policy named "chat" in RATE_LIMITS`.
    pub fn parse(routes: Option<&str>, rate_limits: Option<&str>) -> Result<Self, PolicyError> {
        let policies = match rate_limits {
            None => BTreeMap::new(),
            Some(json) => {
                let list: Vec<RateLimitPolicy> = serde_json::from_str(json)
                    .map_err(|error| PolicyError::new("RATE_LIMITS", error.to_string()))?;
                policies_by_name(list).map_err(|error| {
                    PolicyError::new(format!("RATE_LIMITS{}", error.field), error.reason)
                })?
            }
        };
        let raw: Vec<RawRoute> = match routes {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json)
                .map_err(|error| PolicyError::new("ROUTES", error.to_string()))?,
        };
        if raw.len() > MAX_ROUTES {
            return Err(PolicyError::new(
                "ROUTES",
                format!("{} entries; at most {MAX_ROUTES}", raw.len()),
            ));
        }
        let mut table = Vec::with_capacity(raw.len());
        for (index, entry) in raw.into_iter().enumerate() {
            let field = |name: &str| format!("ROUTES[{index}].{name}");
            let path = RoutePath::parse(&entry.path)
                .map_err(|reason| PolicyError::new(field("path"), reason))?;
            let methods = match entry.methods {
                None => None,
                Some(names) if names.is_empty() => {
                    return Err(PolicyError::new(field("methods"), "must not be empty"));
                }
                Some(names) => Some(
                    names
                        .iter()
                        .map(|name| {
                            Method::from_bytes(name.to_ascii_uppercase().as_bytes()).map_err(|_| {
                                PolicyError::new(
                                    field("methods"),
                                    format!("{name:?} is not a method"),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let rate_limit = match entry.rate_limit {
                None => policies.get(DEFAULT_RATE_LIMIT).cloned(),
                Some(None) => None,
                Some(Some(name)) => Some(policies.get(&name).cloned().ok_or_else(|| {
                    PolicyError::new(
                        field("rate_limit"),
                        format!("no policy named {name:?} in RATE_LIMITS"),
                    )
                })?),
            };
            table.push(Route {
                path,
                methods,
                auth: entry.auth.unwrap_or(AuthPolicy::Optional),
                cache: entry.cache,
                rate_limit,
                retryable: entry.retryable,
            });
        }
        Ok(Self {
            routes: table,
            fallback: Route {
                path: RoutePath::Any,
                methods: None,
                auth: AuthPolicy::Optional,
                cache: None,
                rate_limit: policies.get(DEFAULT_RATE_LIMIT).cloned(),
                retryable: false,
            },
        })
    }

    /// True when some entry requires a bearer token (then `AUTH_CONFIG` must be set).
    pub fn requires_authentication(&self) -> bool {
        self.routes
            .iter()
            .any(|route| matches!(route.auth, AuthPolicy::Required { .. }))
    }

    /// The first entry matching `method` and `path`, else the fallback.
    pub fn select(&self, method: &Method, path: &str) -> &Route {
        self.routes
            .iter()
            .find(|route| {
                route.path.matches(path)
                    && route
                        .methods
                        .as_ref()
                        .is_none_or(|methods| methods.contains(method))
            })
            .unwrap_or(&self.fallback)
    }
}

impl Default for RouteTable {
    fn default() -> Self {
        // Parsing nothing cannot fail; the fallback alone.
        Self {
            routes: Vec::new(),
            fallback: Route {
                path: RoutePath::Any,
                methods: None,
                auth: AuthPolicy::Optional,
                cache: None,
                rate_limit: None,
                retryable: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const LIMITS: &str = r#"[{"name":"default","limit":100,"window_secs":60},
                             {"name":"chat","limit":5,"window_secs":60}]"#;

    #[test]
    fn first_match_wins_with_methods_and_prefixes() {
        let table = RouteTable::parse(
            Some(
                r#"[{"path":"/api/v1/reports/*","methods":["get"],"cache":{"ttl_secs":60}},
                    {"path":"/api/v1/threads/*","rate_limit":"chat"},
                    {"path":"/api/v1/exact"}]"#,
            ),
            Some(LIMITS),
        )
        .unwrap();
        let get = Method::GET;
        let post = Method::POST;
        assert!(table.select(&get, "/api/v1/reports").cache.is_some());
        assert!(table.select(&get, "/api/v1/reports/q1/x").cache.is_some());
        assert!(table.select(&post, "/api/v1/reports/q1").cache.is_none());
        assert!(table.select(&get, "/api/v1/reportsX").cache.is_none());
        assert_eq!(
            table
                .select(&post, "/api/v1/threads/t1/messages")
                .rate_limit
                .as_ref()
                .map(|p| p.name()),
            Some("chat")
        );
        assert_eq!(
            table.select(&get, "/api/v1/exact").path,
            RoutePath::Exact("/api/v1/exact".into())
        );
        let fallback = table.select(&get, "/api/v1/exact/more");
        assert_eq!(fallback.path, RoutePath::Any);
        assert_eq!(
            fallback.rate_limit.as_ref().map(|p| p.name()),
            Some("default")
        );
    }

    #[test]
    fn an_entry_without_rate_limit_keeps_the_default_one_and_null_lifts_it() {
        let table = RouteTable::parse(
            Some(
                r#"[{"path":"/api/v1/admin/*","auth":{"mode":"optional"}},
                    {"path":"/api/v1/open/*","rate_limit":null}]"#,
            ),
            Some(LIMITS),
        )
        .unwrap();
        let get = Method::GET;
        assert_eq!(
            table
                .select(&get, "/api/v1/admin/x")
                .rate_limit
                .as_ref()
                .map(|p| p.name()),
            Some("default")
        );
        assert!(table.select(&get, "/api/v1/open/x").rate_limit.is_none());
        // Without a `default` policy an entry has no limit unless it names one.
        let table = RouteTable::parse(Some(r#"[{"path":"/a"}]"#), None).unwrap();
        assert!(table.select(&get, "/a").rate_limit.is_none());
    }

    #[test]
    fn only_routes_that_say_so_are_retryable() {
        let table = RouteTable::parse(
            Some(
                r#"[{"path":"/api/v1/queries/*","methods":["POST"],"retryable":true},
                    {"path":"/api/v1/threads/*"}]"#,
            ),
            None,
        )
        .unwrap();
        assert!(table.select(&Method::POST, "/api/v1/queries/sql").retryable);
        assert!(
            !table
                .select(&Method::DELETE, "/api/v1/queries/sql")
                .retryable
        );
        assert!(
            !table
                .select(&Method::POST, "/api/v1/threads/t/messages")
                .retryable
        );
        assert!(!table.select(&Method::POST, "/api/v1/other").retryable);
        let error =
            RouteTable::parse(Some(r#"[{"path":"/a","retryable":"yes"}]"#), None).unwrap_err();
        assert_eq!(error.field, "ROUTES");
    }

    #[test]
    fn without_configuration_the_fallback_applies() {
        let table = RouteTable::parse(None, None).unwrap();
        let route = table.select(&Method::GET, "/api/x");
        assert_eq!(route.auth, AuthPolicy::Optional);
        assert!(route.cache.is_none() && route.rate_limit.is_none());
        assert_eq!(table, RouteTable::default());
    }

    #[test]
    fn bad_tables_fail_at_load_naming_the_entry_and_field() {
        for (routes, limits, field) in [
            (r#"[{"path":"api"}]"#, None, "ROUTES[0].path"),
            (r#"[{"path":"/a/*/b"}]"#, None, "ROUTES[0].path"),
            (r#"[{"path":"/a","methods":[]}]"#, None, "ROUTES[0].methods"),
            (
                r#"[{"path":"/a","methods":["G ET"]}]"#,
                None,
                "ROUTES[0].methods",
            ),
            (
                r#"[{"path":"/a"},{"path":"/b","rate_limit":"nope"}]"#,
                Some(LIMITS),
                "ROUTES[1].rate_limit",
            ),
            (r#"[{"path":"/a","unknown":1}]"#, None, "ROUTES"),
            (r#"[{"path":"/a","cache":{"ttl_secs":0}}]"#, None, "ROUTES"),
            ("not json", None, "ROUTES"),
            (
                "[]",
                Some(r#"[{"name":"x","limit":0,"window_secs":1}]"#),
                "RATE_LIMITS",
            ),
            (
                "[]",
                Some(
                    r#"[{"name":"x","limit":1,"window_secs":1},{"name":"x","limit":1,"window_secs":1}]"#,
                ),
                "RATE_LIMITS[1].name",
            ),
        ] {
            let error = RouteTable::parse(Some(routes), limits).unwrap_err();
            assert_eq!(error.field, field, "{routes} → {error}");
        }
    }
}
