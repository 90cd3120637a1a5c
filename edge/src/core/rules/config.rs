//! Reading `vercel.json`: its routing keys become compiled [`Rules`]; everything else Vercel
//! knows (`$schema`, `functions`, `buildCommand`, …) is ignored. Inside a rule every key must be
//! known, so a typo fails the load instead of silently never matching.

use core::fmt;

use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::condition::{Condition, Subject};
use super::destination::{Destination, TextTemplate};
use super::pattern::{SourcePattern, compile_regex};
use super::{HeaderRule, HeaderTemplate, Matcher, RedirectRule, RewriteRule, Rules};

/// Bounds on a rules file, so that a hostile or runaway file cannot exhaust the isolate's
/// memory or CPU at load. The defaults admit every realistic file (Vercel's own schema allows
/// 2048 rules per list; a project with more should not ship them to the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesLimits {
    /// Largest accepted file.
    pub max_file_bytes: usize,
    /// Most rules across `redirects`, `rewrites` and `headers` together.
    pub max_rules: usize,
    /// Most regular expressions compiled in total (every `source` and every `has`/`missing`
    /// `value`).
    pub max_patterns: usize,
    /// Longest `source`, `destination`, condition `key` or `value` (Vercel's limit: 4096).
    pub max_pattern_bytes: usize,
    /// Most `has` plus `missing` items per rule (Vercel's limit: 16 each).
    pub max_conditions_per_rule: usize,
    /// Most headers one `headers` rule sets.
    pub max_headers_per_rule: usize,
    /// Longest response header name (Vercel's limit: 256).
    pub max_header_name_bytes: usize,
    /// Longest response header value.
    pub max_header_value_bytes: usize,
    /// `regex-lite` size limit of one compiled expression.
    pub max_regex_bytes: usize,
    /// `regex-lite` nesting limit of one expression.
    pub max_regex_nesting: u32,
}

impl RulesLimits {
    pub const DEFAULT_MAX_FILE_BYTES: usize = 512 * 1024;
    pub const DEFAULT_MAX_RULES: usize = 1024;
    pub const DEFAULT_MAX_PATTERNS: usize = 2048;
    pub const DEFAULT_MAX_PATTERN_BYTES: usize = 4096;
    pub const DEFAULT_MAX_CONDITIONS_PER_RULE: usize = 32;
    pub const DEFAULT_MAX_HEADERS_PER_RULE: usize = 64;
    pub const DEFAULT_MAX_HEADER_NAME_BYTES: usize = 256;
    pub const DEFAULT_MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
    pub const DEFAULT_MAX_REGEX_BYTES: usize = 64 * 1024;
    pub const DEFAULT_MAX_REGEX_NESTING: u32 = 64;
}

impl Default for RulesLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_rules: Self::DEFAULT_MAX_RULES,
            max_patterns: Self::DEFAULT_MAX_PATTERNS,
            max_pattern_bytes: Self::DEFAULT_MAX_PATTERN_BYTES,
            max_conditions_per_rule: Self::DEFAULT_MAX_CONDITIONS_PER_RULE,
            max_headers_per_rule: Self::DEFAULT_MAX_HEADERS_PER_RULE,
            max_header_name_bytes: Self::DEFAULT_MAX_HEADER_NAME_BYTES,
            max_header_value_bytes: Self::DEFAULT_MAX_HEADER_VALUE_BYTES,
            max_regex_bytes: Self::DEFAULT_MAX_REGEX_BYTES,
            max_regex_nesting: Self::DEFAULT_MAX_REGEX_NESTING,
        }
    }
}

/// Why the rules file cannot be used: the field at fault (`redirects[2].has[0].value`, or
/// `vercel.json` for the file as a whole) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field == FILE {
            write!(f, "{FILE} {}", self.reason)
        } else {
            write!(f, "{FILE}: {} {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for RulesError {}

/// The `field` of errors about the file as a whole.
const FILE: &str = "vercel.json";

fn error(field: impl Into<String>, reason: impl Into<String>) -> RulesError {
    RulesError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Top-level keys about routing that the edge does not implement: refusing them is better
/// than behaving differently from Vercel.
const UNSUPPORTED_TOP_LEVEL: [(&str, &str); 4] = [
    (
        "routes",
        "(the legacy routing format) is not supported; use rewrites, redirects and headers",
    ),
    (
        "trailingSlash",
        "is not supported by the edge; write the redirect as a rule",
    ),
    (
        "bulkRedirectsPath",
        "is not supported by the edge; list the redirects in vercel.json",
    ),
    (
        "cleanUrls",
        "is not supported by the edge (it serves no files); remove it or set it to false",
    ),
];

/// Misspelt routing keys: ignoring them as "not about routing" would silently drop rules.
const LIKELY_TYPOS: [(&str, &str); 6] = [
    ("rewrite", "rewrites"),
    ("redirect", "redirects"),
    ("header", "headers"),
    ("Rewrites", "rewrites"),
    ("Redirects", "redirects"),
    ("Headers", "headers"),
];

struct Budget<'l> {
    limits: &'l RulesLimits,
    rules: usize,
    patterns: usize,
}

impl Budget<'_> {
    fn rule(&mut self, field: &str) -> Result<(), RulesError> {
        self.rules += 1;
        if self.rules > self.limits.max_rules {
            return Err(error(
                field,
                format!(
                    "exceeds the limit of {} rules in total",
                    self.limits.max_rules
                ),
            ));
        }
        Ok(())
    }

    fn pattern(&mut self, field: &str) -> Result<(), RulesError> {
        self.patterns += 1;
        if self.patterns > self.limits.max_patterns {
            return Err(error(
                field,
                format!(
                    "exceeds the limit of {} patterns in total",
                    self.limits.max_patterns
                ),
            ));
        }
        Ok(())
    }
}

pub(super) fn parse(text: &str, limits: &RulesLimits) -> Result<Rules, RulesError> {
    if text.len() > limits.max_file_bytes {
        return Err(error(
            FILE,
            format!(
                "is {} bytes; the limit is {}",
                text.len(),
                limits.max_file_bytes
            ),
        ));
    }
    let root: Value =
        serde_json::from_str(text).map_err(|e| error(FILE, format!("is not valid JSON: {e}")))?;
    let Value::Object(root) = root else {
        return Err(error(FILE, "must be a JSON object"));
    };
    for (key, reason) in UNSUPPORTED_TOP_LEVEL {
        match root.get(key) {
            None => {}
            Some(Value::Bool(false)) if key == "cleanUrls" => {}
            Some(_) => return Err(error(key, reason)),
        }
    }
    for (typo, meant) in LIKELY_TYPOS {
        if root.contains_key(typo) {
            return Err(error(
                typo,
                format!("is not a vercel.json key; did you mean {meant}?"),
            ));
        }
    }
    let mut budget = Budget {
        limits,
        rules: 0,
        patterns: 0,
    };
    let mut rules = Rules::default();
    for (index, rule) in list(&root, "redirects")? {
        let field = format!("redirects[{index}]");
        budget.rule(&field)?;
        rules
            .redirects
            .push(redirect_rule(&field, rule, &mut budget)?);
    }
    for (index, rule) in list(&root, "rewrites")? {
        let field = format!("rewrites[{index}]");
        budget.rule(&field)?;
        let compiled = rewrite_rule(&field, rule, &mut budget)?;
        if rule.get("destination").and_then(Value::as_str) == Some(super::VERCEL_EDGE_FUNCTION) {
            // Vercel's routing into this very function: validated above, not applied here.
            rules.platform_rewrites += 1;
        } else {
            rules.rewrites.push(compiled);
        }
    }
    for (index, rule) in list(&root, "headers")? {
        let field = format!("headers[{index}]");
        budget.rule(&field)?;
        rules.headers.push(header_rule(&field, rule, &mut budget)?);
    }
    Ok(rules)
}

/// The items of an optional array-valued key.
fn list<'v>(
    object: &'v Map<String, Value>,
    key: &str,
) -> Result<impl Iterator<Item = (usize, &'v Value)>, RulesError> {
    let items = match object.get(key) {
        None => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => return Err(error(key, "must be an array")),
    };
    Ok(items.iter().enumerate())
}

/// The rule as an object whose keys are all `allowed`; `unsupported` ones get a specific message.
fn object<'v>(
    field: &str,
    value: &'v Value,
    allowed: &[&str],
    unsupported: &[&str],
) -> Result<&'v Map<String, Value>, RulesError> {
    let Value::Object(map) = value else {
        return Err(error(field, "must be an object"));
    };
    for key in map.keys() {
        if unsupported.contains(&key.as_str()) {
            return Err(error(
                format!("{field}.{key}"),
                "is not supported by the edge",
            ));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(error(
                format!("{field}.{key}"),
                format!(
                    "is not a known key here (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(map)
}

fn string<'v>(
    field: &str,
    map: &'v Map<String, Value>,
    key: &str,
    max_bytes: usize,
) -> Result<Option<&'v str>, RulesError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() > max_bytes => Err(error(
            format!("{field}.{key}"),
            format!("is {} bytes long; the limit is {max_bytes}", s.len()),
        )),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error(format!("{field}.{key}"), "must be a string")),
    }
}

fn required_string<'v>(
    field: &str,
    map: &'v Map<String, Value>,
    key: &str,
    max_bytes: usize,
) -> Result<&'v str, RulesError> {
    string(field, map, key, max_bytes)?
        .ok_or_else(|| error(format!("{field}.{key}"), "is required"))
}

fn matcher(
    field: &str,
    map: &Map<String, Value>,
    budget: &mut Budget<'_>,
) -> Result<Matcher, RulesError> {
    let limits = budget.limits;
    let source = required_string(field, map, "source", limits.max_pattern_bytes)?;
    budget.pattern(&format!("{field}.source"))?;
    let source = SourcePattern::parse(source, limits)
        .map_err(|reason| error(format!("{field}.source"), reason))?;
    let has = conditions(field, map, "has", budget)?;
    let missing = conditions(field, map, "missing", budget)?;
    if has.len() + missing.len() > limits.max_conditions_per_rule {
        return Err(error(
            field,
            format!(
                "has {} conditions; the limit is {}",
                has.len() + missing.len(),
                limits.max_conditions_per_rule
            ),
        ));
    }
    let source_names = source
        .names()
        .filter_map(|name| Some((name.to_owned(), source.position(name)?)))
        .collect();
    Ok(Matcher {
        source,
        source_names,
        has,
        missing,
    })
}

impl Matcher {
    /// Every parameter name a destination of this rule may use.
    fn known_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.source.names().collect();
        for condition in &self.has {
            names.extend(condition.presence_param.as_deref());
            if let Some(regex) = &condition.value {
                names.extend(regex.capture_names().flatten());
            }
            if condition.host_param {
                names.push("host");
            }
        }
        names
    }
}

fn conditions(
    field: &str,
    map: &Map<String, Value>,
    key: &str,
    budget: &mut Budget<'_>,
) -> Result<Vec<Condition>, RulesError> {
    let limits = budget.limits;
    let items = match map.get(key) {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(error(format!("{field}.{key}"), "must be an array")),
    };
    let mut conditions = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("{field}.{key}[{index}]");
        if conditions.len() >= limits.max_conditions_per_rule {
            return Err(error(
                &field,
                format!(
                    "exceeds the limit of {} conditions per rule",
                    limits.max_conditions_per_rule
                ),
            ));
        }
        let map = object(&field, item, &["type", "key", "value"], &[])?;
        if matches!(map.get("value"), Some(Value::Object(_))) {
            return Err(error(
                format!("{field}.value"),
                "as an operator object (eq, pre, …) is not supported by the edge; use a regex string",
            ));
        }
        let kind = required_string(&field, map, "type", limits.max_pattern_bytes)?;
        let key_name = string(&field, map, "key", limits.max_pattern_bytes)?;
        // As on Vercel, an empty `value` means "any value".
        let value =
            string(&field, map, "value", limits.max_pattern_bytes)?.filter(|v| !v.is_empty());
        let subject = match (kind, key_name) {
            ("host", None) => Subject::Host,
            ("host", Some(_)) => {
                return Err(error(
                    format!("{field}.key"),
                    "is not allowed for type host",
                ));
            }
            (_, None) if matches!(kind, "header" | "cookie" | "query") => {
                return Err(error(format!("{field}.key"), "is required"));
            }
            ("header", Some(name)) => Subject::Header(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| error(format!("{field}.key"), "is not a valid header name"))?,
            ),
            ("cookie", Some(name)) => Subject::Cookie(name.to_owned()),
            ("query", Some(name)) => Subject::Query(name.to_owned()),
            (other, _) => {
                return Err(error(
                    format!("{field}.type"),
                    format!("must be one of header, cookie, query, host (got {other:?})"),
                ));
            }
        };
        if matches!(subject, Subject::Host) && value.is_none() {
            return Err(error(format!("{field}.value"), "is required for type host"));
        }
        let regex = match value {
            None => None,
            Some(value) => {
                budget.pattern(&format!("{field}.value"))?;
                Some(
                    compile_regex(&format!("^(?:{value})$"), limits)
                        .map_err(|reason| error(format!("{field}.value"), reason))?,
                )
            }
        };
        let presence_param = match (&regex, key_name) {
            (None, Some(name)) => Some(
                name.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>(),
            )
            .filter(|name| !name.is_empty()),
            _ => None,
        };
        conditions.push(Condition {
            host_param: matches!(subject, Subject::Host),
            subject,
            value: regex,
            presence_param,
        });
    }
    Ok(conditions)
}

fn destination(
    field: &str,
    map: &Map<String, Value>,
    matcher: &Matcher,
    limits: &RulesLimits,
) -> Result<Destination, RulesError> {
    let text = required_string(field, map, "destination", limits.max_pattern_bytes)?;
    Destination::parse(text, &matcher.known_names(), matcher.source.key_count())
        .map_err(|reason| error(format!("{field}.destination"), reason))
}

fn redirect_rule(
    field: &str,
    value: &Value,
    budget: &mut Budget<'_>,
) -> Result<RedirectRule, RulesError> {
    let map = object(
        field,
        value,
        &[
            "source",
            "destination",
            "permanent",
            "statusCode",
            "has",
            "missing",
        ],
        &["env"],
    )?;
    let matcher = matcher(field, map, budget)?;
    let destination = destination(field, map, &matcher, budget.limits)?;
    let status = match (map.get("permanent"), map.get("statusCode")) {
        (Some(_), Some(_)) => {
            return Err(error(
                field,
                "sets both permanent and statusCode; use one of them",
            ));
        }
        (Some(Value::Bool(true)) | None, None) => StatusCode::PERMANENT_REDIRECT,
        (Some(Value::Bool(false)), None) => StatusCode::TEMPORARY_REDIRECT,
        (Some(_), None) => {
            return Err(error(format!("{field}.permanent"), "must be true or false"));
        }
        (None, Some(code)) => code
            .as_u64()
            .filter(|code| matches!(code, 301 | 302 | 303 | 307 | 308))
            .and_then(|code| u16::try_from(code).ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| {
                error(
                    format!("{field}.statusCode"),
                    format!("must be one of 301, 302, 303, 307, 308 (got {code})"),
                )
            })?,
    };
    Ok(RedirectRule {
        matcher,
        destination,
        status,
    })
}

fn rewrite_rule(
    field: &str,
    value: &Value,
    budget: &mut Budget<'_>,
) -> Result<RewriteRule, RulesError> {
    let map = object(
        field,
        value,
        &["source", "destination", "has", "missing"],
        &["statusCode", "env", "respectOriginCacheControl"],
    )?;
    let matcher = matcher(field, map, budget)?;
    let destination = destination(field, map, &matcher, budget.limits)?;
    Ok(RewriteRule {
        matcher,
        destination,
    })
}

fn header_rule(
    field: &str,
    value: &Value,
    budget: &mut Budget<'_>,
) -> Result<HeaderRule, RulesError> {
    let limits = budget.limits;
    let map = object(field, value, &["source", "headers", "has", "missing"], &[])?;
    let matcher = matcher(field, map, budget)?;
    let items = match map.get("headers") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(error(format!("{field}.headers"), "must be an array")),
        None => return Err(error(format!("{field}.headers"), "is required")),
    };
    if items.len() > limits.max_headers_per_rule {
        return Err(error(
            format!("{field}.headers"),
            format!(
                "has {} entries; the limit is {}",
                items.len(),
                limits.max_headers_per_rule
            ),
        ));
    }
    let known = matcher.known_names();
    let mut headers = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("{field}.headers[{index}]");
        let map = object(&field, item, &["key", "value"], &[])?;
        let key = required_string(&field, map, "key", limits.max_header_name_bytes)?;
        let value = required_string(&field, map, "value", limits.max_header_value_bytes)?;
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| error(format!("{field}.key"), "is not a valid header name"))?;
        let fixed = HeaderValue::from_str(value).map_err(|_| {
            error(
                format!("{field}.value"),
                "is not a valid header value (control characters or non-ASCII)",
            )
        })?;
        let template = match TextTemplate::parse(value, &known) {
            Some(template) => HeaderTemplate::Substituted(template),
            None => HeaderTemplate::Fixed(fixed),
        };
        headers.push((name, template));
    }
    Ok(HeaderRule { matcher, headers })
}
