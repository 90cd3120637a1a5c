//! Reading `vercel.json`: its routing keys become compiled [`Rules`]; everything else Vercel
//! knows (`$schema`, `functions`, `buildCommand`, …) is ignored. Inside a rule every key must be
//! known, so a typo fails the load instead of silently never matching.

use core::fmt;

use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::condition::{Condition, Operators, Scalar, Subject, ValueTest};
use super::destination::{self, Params};
use super::pattern::SourcePattern;
use super::regex::JsRegex;
use super::{HeaderRule, Matcher, RedirectRule, RewriteRule, Rules};

/// Bounds on a rules file, so that a hostile or runaway file cannot exhaust the isolate's
/// memory or CPU, at load or per request. The defaults admit every file Vercel accepts within
/// [`RulesLimits::DEFAULT_MAX_RULES`] rules (Vercel's schema allows 2048 per list; a project
/// with more should not ship them to the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesLimits {
    /// Largest accepted file.
    pub max_file_bytes: usize,
    /// Most rules across `redirects`, `rewrites` and `headers` together.
    pub max_rules: usize,
    /// Most regular expressions compiled in total (every `source` and every `has`/`missing`
    /// regex).
    pub max_patterns: usize,
    /// Longest `source`, `destination`, condition `key` or `value` (Vercel's limit: 4096).
    pub max_pattern_bytes: usize,
    /// Most items in one `has` or `missing` list (Vercel's limit: 16).
    pub max_conditions: usize,
    /// Most headers one `headers` rule sets.
    pub max_headers_per_rule: usize,
    /// Longest response header name (Vercel's limit: 256).
    pub max_header_name_bytes: usize,
    /// Longest response header value.
    pub max_header_value_bytes: usize,
    /// Most instructions one compiled regular expression may have (counted repetitions such as
    /// `(?:ab){1000}` are expanded).
    pub max_regex_insts: usize,
    /// Deepest group nesting of one regular expression.
    pub max_regex_nesting: u32,
    /// Work one request's evaluation may do, in regex engine steps (an instruction, or a
    /// character scanned). Past it the request is refused with 414 instead of burning the
    /// Worker's CPU; realistic files on paths of a few KB stay far below it (BENCHMARKS.md).
    pub max_evaluation_steps: u64,
}

impl RulesLimits {
    pub const DEFAULT_MAX_FILE_BYTES: usize = 512 * 1024;
    pub const DEFAULT_MAX_RULES: usize = 1024;
    pub const DEFAULT_MAX_PATTERNS: usize = 2048;
    pub const DEFAULT_MAX_PATTERN_BYTES: usize = 4096;
    pub const DEFAULT_MAX_CONDITIONS: usize = 16;
    pub const DEFAULT_MAX_HEADERS_PER_RULE: usize = 64;
    pub const DEFAULT_MAX_HEADER_NAME_BYTES: usize = 256;
    pub const DEFAULT_MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
    pub const DEFAULT_MAX_REGEX_INSTS: usize = 20_000;
    pub const DEFAULT_MAX_REGEX_NESTING: u32 = 64;
    pub const DEFAULT_MAX_EVALUATION_STEPS: u64 = 500_000;
}

impl Default for RulesLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_rules: Self::DEFAULT_MAX_RULES,
            max_patterns: Self::DEFAULT_MAX_PATTERNS,
            max_pattern_bytes: Self::DEFAULT_MAX_PATTERN_BYTES,
            max_conditions: Self::DEFAULT_MAX_CONDITIONS,
            max_headers_per_rule: Self::DEFAULT_MAX_HEADERS_PER_RULE,
            max_header_name_bytes: Self::DEFAULT_MAX_HEADER_NAME_BYTES,
            max_header_value_bytes: Self::DEFAULT_MAX_HEADER_VALUE_BYTES,
            max_regex_insts: Self::DEFAULT_MAX_REGEX_INSTS,
            max_regex_nesting: Self::DEFAULT_MAX_REGEX_NESTING,
            max_evaluation_steps: Self::DEFAULT_MAX_EVALUATION_STEPS,
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
const UNSUPPORTED_TOP_LEVEL: [(&str, &str); 2] = [
    (
        "routes",
        "(the legacy routing format) is not supported; use rewrites, redirects and headers",
    ),
    (
        "bulkRedirectsPath",
        "is not supported by the edge; list the redirects in vercel.json",
    ),
];

/// Misspelt routing keys: ignoring them as "not about routing" would silently drop rules.
const LIKELY_TYPOS: [(&str, &str); 8] = [
    ("rewrite", "rewrites"),
    ("redirect", "redirects"),
    ("header", "headers"),
    ("Rewrites", "rewrites"),
    ("Redirects", "redirects"),
    ("Headers", "headers"),
    ("cleanUrl", "cleanUrls"),
    ("trailingSlashes", "trailingSlash"),
];

/// Most rules of one list Vercel accepts.
const VERCEL_MAX_RULES_PER_LIST: usize = 2048;

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

    fn regex(&mut self, field: &str, pattern: &str) -> Result<JsRegex, RulesError> {
        self.pattern(field)?;
        JsRegex::is_valid_syntax(pattern, self.limits.max_regex_nesting).map_err(|reason| {
            error(
                field,
                format!("is not a valid JavaScript regular expression: {reason}"),
            )
        })?;
        JsRegex::new(
            &format!("^(?:{pattern})$"),
            self.limits.max_regex_nesting,
            self.limits.max_regex_insts,
        )
        .map_err(|reason| {
            error(
                field,
                format!("is not a supported regular expression: {reason}"),
            )
        })
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
        if root.contains_key(key) {
            return Err(error(key, reason));
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
    let mut rules = Rules {
        max_steps: limits.max_evaluation_steps,
        ..Rules::default()
    };
    let flag = |key: &str| -> Result<Option<bool>, RulesError> {
        match root.get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(error(key, "must be true or false")),
        }
    };
    rules.clean_urls = flag("cleanUrls")?.unwrap_or(false);
    rules.trailing_slash = flag("trailingSlash")?;
    rules.builtin = super::builtin::redirects(rules.clean_urls, rules.trailing_slash, limits)
        .map_err(|reason| error(FILE, reason))?;
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
    if items.len() > VERCEL_MAX_RULES_PER_LIST {
        return Err(error(
            key,
            format!(
                "has {} rules; Vercel accepts at most {VERCEL_MAX_RULES_PER_LIST}",
                items.len()
            ),
        ));
    }
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
    Ok(Matcher {
        source,
        has,
        missing,
    })
}

impl Matcher {
    /// The parameters a destination or header value of this rule may use.
    pub(super) fn params(&self) -> Params {
        let mut has: Vec<String> = Vec::new();
        for condition in &self.has {
            for name in condition.param_names() {
                if !has.iter().any(|n| n == name) {
                    has.push(name.to_owned());
                }
            }
        }
        Params {
            source: self.source.keys().to_vec(),
            has,
        }
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
    if items.len() > limits.max_conditions {
        return Err(error(
            format!("{field}.{key}"),
            format!(
                "has {} items; the limit is {} (as on Vercel)",
                items.len(),
                limits.max_conditions
            ),
        ));
    }
    let mut conditions = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("{field}.{key}[{index}]");
        let map = object(&field, item, &["type", "key", "value"], &[])?;
        let kind = required_string(&field, map, "type", limits.max_pattern_bytes)?;
        let key_name = match map.get("key") {
            Some(Value::Object(_)) => {
                return Err(error(
                    format!("{field}.key"),
                    "as an operator object is not supported by the edge; name the key",
                ));
            }
            _ => string(&field, map, "key", limits.max_pattern_bytes)?,
        };
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
        let value_field = format!("{field}.value");
        let test = match map.get("value") {
            None => ValueTest::Present,
            // As on Vercel, an empty `value` means "any value".
            Some(Value::String(value)) if value.is_empty() => ValueTest::Present,
            Some(Value::String(value)) => {
                if value.len() > limits.max_pattern_bytes {
                    return Err(error(
                        &value_field,
                        format!(
                            "is {} bytes long; the limit is {}",
                            value.len(),
                            limits.max_pattern_bytes
                        ),
                    ));
                }
                ValueTest::Regex(budget.regex(&value_field, value)?)
            }
            Some(Value::Object(ops)) => {
                ValueTest::Operators(Box::new(operators(&value_field, ops, budget)?))
            }
            Some(_) => {
                return Err(error(
                    &value_field,
                    "must be a string (a regex) or an operator object",
                ));
            }
        };
        if matches!(subject, Subject::Host) && matches!(test, ValueTest::Present) {
            return Err(error(&value_field, "is required for type host"));
        }
        // routing-utils: a `has` item without a value defines its key as a parameter.
        let presence_param = match (&test, key_name) {
            (ValueTest::Present, Some(name)) if key == "has" => Some(name.to_owned()),
            _ => None,
        };
        conditions.push(Condition {
            subject,
            test,
            presence_param,
        });
    }
    Ok(conditions)
}

/// A `has`/`missing` operator object (`{"pre": "v", "ninc": ["v0"]}`).
fn operators(
    field: &str,
    map: &Map<String, Value>,
    budget: &mut Budget<'_>,
) -> Result<Operators, RulesError> {
    let limits = budget.limits;
    if map.is_empty() {
        return Err(error(field, "must hold at least one operator"));
    }
    let mut ops = Operators::default();
    for (name, value) in map {
        let at = format!("{field}.{name}");
        let text = |value: &Value| -> Result<String, RulesError> {
            match value {
                Value::String(s) if s.len() > limits.max_pattern_bytes => Err(error(
                    &at,
                    format!(
                        "is {} bytes long; the limit is {}",
                        s.len(),
                        limits.max_pattern_bytes
                    ),
                )),
                Value::String(s) => Ok(s.clone()),
                _ => Err(error(&at, "must be a string")),
            }
        };
        let texts = |value: &Value| -> Result<Vec<String>, RulesError> {
            match value {
                Value::Array(items) => items.iter().map(text).collect(),
                _ => Err(error(&at, "must be an array of strings")),
            }
        };
        let number = |value: &Value| -> Result<f64, RulesError> {
            value.as_f64().ok_or_else(|| error(&at, "must be a number"))
        };
        match name.as_str() {
            "eq" => {
                ops.eq = Some(match value {
                    Value::Number(n) => Scalar::Number(n.as_f64().unwrap_or(f64::NAN)),
                    other => Scalar::Text(text(other)?),
                });
            }
            "neq" => ops.neq = Some(text(value)?),
            "inc" => ops.inc = Some(texts(value)?),
            "ninc" => ops.ninc = Some(texts(value)?),
            "pre" => ops.pre = Some(text(value)?),
            "suf" => ops.suf = Some(text(value)?),
            "re" => ops.re = Some(budget.regex(&at, &text(value)?)?),
            "gt" => ops.gt = Some(number(value)?),
            "gte" => ops.gte = Some(number(value)?),
            "lt" => ops.lt = Some(number(value)?),
            "lte" => ops.lte = Some(number(value)?),
            _ => {
                return Err(error(
                    &at,
                    "is not an operator (expected one of: eq, neq, inc, ninc, pre, suf, re, gt, gte, lt, lte)",
                ));
            }
        }
    }
    Ok(ops)
}

fn destination(
    field: &str,
    map: &Map<String, Value>,
    matcher: &Matcher,
    limits: &RulesLimits,
    is_redirect: bool,
) -> Result<destination::Template, RulesError> {
    let text = required_string(field, map, "destination", limits.max_pattern_bytes)?;
    destination::compile_destination(text, &matcher.params(), is_redirect)
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
    let destination = destination(field, map, &matcher, budget.limits, true)?;
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
        // Vercel's schema takes any integer from 100 to 999; a Worker can answer 200–599.
        (None, Some(code)) => code
            .as_u64()
            .filter(|code| (200..=599).contains(code))
            .and_then(|code| u16::try_from(code).ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| {
                error(
                    format!("{field}.statusCode"),
                    format!(
                        "must be an integer from 200 to 599, the codes a response can carry \
                         (got {code})"
                    ),
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
        &[
            "statusCode",
            "env",
            "respectOriginCacheControl",
            "transforms",
        ],
    )?;
    let matcher = matcher(field, map, budget)?;
    let destination = destination(field, map, &matcher, budget.limits, false)?;
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
    let params = matcher.params();
    let mut headers = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("{field}.headers[{index}]");
        let map = object(&field, item, &["key", "value"], &[])?;
        let key = required_string(&field, map, "key", limits.max_header_name_bytes)?;
        let value = required_string(&field, map, "value", limits.max_header_value_bytes)?;
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| error(format!("{field}.key"), "is not a valid header name"))?;
        if !value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(error(
                format!("{field}.value"),
                "is not a valid header value (control characters or non-ASCII)",
            ));
        }
        let template = destination::compile_header_value(value, &params)
            .map_err(|reason| error(format!("{field}.value"), reason))?;
        let fixed = HeaderValue::from_str(&template.text).map_err(|_| {
            error(
                format!("{field}.value"),
                "is not a valid header value (control characters or non-ASCII)",
            )
        })?;
        headers.push((name, template, fixed));
    }
    Ok(HeaderRule { matcher, headers })
}
