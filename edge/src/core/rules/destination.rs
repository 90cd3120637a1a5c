//! Destinations and header values: compiled at load the way Vercel compiles them at deploy,
//! filled in per request the way its proxy substitutes them.
//!
//! **Load** (`@vercel/routing-utils`' `replaceSegments`/`safelyCompile`, ported): `:name`
//! parameters become `$n` (the n-th source parameter) or `$name` (a `has` parameter), through
//! path-to-regexp's `compile` and Node's URL parser, so `{:x}`, `:path*`, a parameter in the
//! host and the query's re-encoding come out as on Vercel. A rewrite whose path, host and
//! fragment use no parameter gets every parameter appended to its query (`?slug=$1`), an
//! unmatched one as an empty value.
//!
//! **Request**: `$n` and `$name` are replaced by the values matched. Values are inserted as
//! matched (a path parameter still percent-encoded), except that characters which could end the
//! URL part they land in, break out of it, or are not allowed in a header (controls, spaces,
//! `\`, `#`, non-ASCII, `?` in the path, `&` and `+` in the query) are percent-encoded; a value
//! landing in a host must be a plain host name. An internal destination that would leave this
//! host (`//host`) or holds dot segments is refused. The request's own query is merged in, the
//! destination's keys winning.

use super::node_url::{self, QueryValue, Url};
use super::pattern::{self, Key, Token};

/// Name of the unnamed parameters in routing-utils' index map.
const UN_NAMED: &str = "__UN_NAMED_SEGMENT__";

/// A value reference in a compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ref {
    /// `$n`: source parameter `n - 1`.
    Numbered(usize),
    /// `$name`: a `has` parameter.
    Named(String),
}

/// Which part of the URL a piece lands in (decides what gets encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Host,
    Path,
    /// Inside the destination's query: `&` and `+` are encoded too, so a value stays one value.
    Query,
    Fragment,
    Header,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Ref(Ref, Part),
}

/// The parameters of one rule, as routing-utils indexes them.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Source parameter names in order; `None` for unnamed ones.
    pub(crate) source: Vec<Option<String>>,
    /// `has` parameters: named groups of values, keys without a value, `host`.
    pub(crate) has: Vec<String>,
}

impl Params {
    /// routing-utils' `indexes`: name → `$n`/`$name`, in JavaScript property order (a `has`
    /// parameter overrides a source parameter of the same name).
    fn indexes(&self) -> Vec<(String, String)> {
        let mut indexes: Vec<(String, String)> = Vec::new();
        let mut set =
            |name: String, value: String| match indexes.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = value,
                None => indexes.push((name, value)),
            };
        for (i, name) in self.source.iter().enumerate() {
            set(
                name.clone().unwrap_or_else(|| UN_NAMED.to_owned()),
                format!("${}", i + 1),
            );
        }
        for name in &self.has {
            set(name.clone(), format!("${name}"));
        }
        // Integer-like names come first in a JavaScript object.
        indexes.sort_by_key(|(name, _)| !is_array_index(name));
        indexes
    }

    fn named_source(&self) -> impl Iterator<Item = &str> {
        self.source.iter().filter_map(|n| n.as_deref())
    }
}

fn is_array_index(name: &str) -> bool {
    name == "0"
        || (!name.starts_with('0')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_digit())
            && name.len() < 10)
}

/// A compiled destination (or header value): the template Vercel's proxy receives.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// The template as routing-utils writes it (`/blog/$1?x=$tenant`), for tests and the
    /// differential comparison.
    pub(crate) text: String,
    pieces: Vec<Piece>,
}

/// The values available to a template at evaluation time.
#[derive(Debug)]
pub(crate) struct Values<'a> {
    /// Source parameters, by position.
    pub(crate) source: &'a [Option<&'a str>],
    /// `has` parameters (later entries win).
    pub(crate) has: &'a [(&'a str, String)],
}

impl Values<'_> {
    fn get(&self, reference: &Ref) -> Option<&str> {
        match reference {
            Ref::Numbered(n) => self.source.get(*n).copied().flatten(),
            Ref::Named(name) => self
                .has
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// A filled-in destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filled {
    /// A path (and query) on this host, or an absolute `http(s)://` URL.
    pub(crate) without_fragment: String,
    pub(crate) fragment: Option<String>,
    pub(crate) external: bool,
}

/// Compiles a `destination` as routing-utils does. The error is a sentence fit to follow the
/// field name.
pub(crate) fn compile_destination(
    destination: &str,
    params: &Params,
    is_redirect: bool,
) -> Result<Template, String> {
    if let Some(c) = destination
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_control() || *c == ' ' || *c == '\\')
    {
        return Err(format!(
            "contains {c:?}; percent-encode it (got {destination:?})"
        ));
    }
    check_destination_params(destination, params)?;
    let text = replace_segments(destination, params, is_redirect)?;
    let template = Template::parse(&text, params, true);
    let lower = text.to_ascii_lowercase();
    let absolute = lower.starts_with("http://") || lower.starts_with("https://");
    let path_on_this_host = text.starts_with('/') && !text.starts_with("//");
    if !absolute && !path_on_this_host {
        return Err(format!(
            "must be a path starting with a single '/' or an absolute http(s):// URL \
             (got {destination:?})"
        ));
    }
    if lower.starts_with("http") {
        let authority = text
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
            .unwrap_or_default();
        if authority.is_empty() {
            return Err(format!("has no host (got {destination:?})"));
        }
        if authority.contains('@') {
            return Err(format!(
                "must not carry credentials in its URL (got {destination:?})"
            ));
        }
    }
    Ok(template)
}

/// routing-utils' `checkPatternSyntax` for destinations: every `:name` in the host, path and
/// query values must be a parameter of the source or of `has` (Vercel refuses the file at
/// deploy otherwise).
fn check_destination_params(destination: &str, params: &Params) -> Result<(), String> {
    let url = node_url::parse(destination);
    let mut used = Vec::new();
    let mut collect = |text: &str| {
        if let Ok(tokens) = pattern::parse(&format!("/{text}")) {
            for token in tokens {
                if let Token::Key(Key {
                    name: Some(name), ..
                }) = token
                {
                    used.push(name);
                }
            }
        }
    };
    collect(url.hostname.as_deref().unwrap_or_default());
    collect(url.pathname.as_deref().unwrap_or_default());
    for (_, value) in &url.query.0 {
        match value {
            QueryValue::One(v) => collect(v),
            QueryValue::Many(values) => collect(values.first().map_or("", String::as_str)),
        }
    }
    for name in used {
        if !params.named_source().any(|n| n == name) && !params.has.contains(&name) {
            return Err(format!(
                "uses the parameter :{name}, which neither the source nor has defines"
            ));
        }
    }
    Ok(())
}

/// routing-utils' `replaceSegments`.
fn replace_segments(
    destination: &str,
    params: &Params,
    is_redirect: bool,
) -> Result<String, String> {
    let can_need_replacing = (destination.contains(':') && params.named_source().next().is_some())
        || !params.has.is_empty()
        || !is_redirect;
    if !can_need_replacing {
        return Ok(destination.to_owned());
    }
    let indexes = params.indexes();
    let mut escaped = destination.to_owned();
    for name in params
        .source
        .iter()
        .map(|n| n.as_deref().unwrap_or(UN_NAMED))
        .chain(params.has.iter().map(String::as_str))
    {
        escaped = escaped.replace(&format!(":{name}"), &format!("__ESC_COLON_{name}"));
    }
    let mut url: Url = node_url::parse(&escaped);
    let pathname = unescape_segments(url.pathname.as_deref().unwrap_or_default());
    let hash = unescape_segments(url.hash.as_deref().unwrap_or_default());
    let hostname = unescape_segments(url.hostname.as_deref().unwrap_or_default());
    let mut dest_params: Vec<String> = Vec::new();
    for text in [&pathname, &hash, &hostname] {
        if let Ok(tokens) = pattern::parse(text) {
            dest_params.extend(tokens.into_iter().filter_map(|t| match t {
                Token::Key(Key {
                    name: Some(name), ..
                }) => Some(name),
                _ => None,
            }));
        }
    }
    url.pathname = Some(safely_compile(&pathname, &indexes, true)?);
    url.hash = (!hash.is_empty())
        .then(|| safely_compile(&hash, &indexes, true))
        .transpose()?;
    url.hostname = (!hostname.is_empty())
        .then(|| safely_compile(&hostname, &indexes, true))
        .transpose()?;
    for (_, value) in &mut url.query.0 {
        match value {
            QueryValue::One(v) => *v = safely_compile(&unescape_segments(v), &indexes, true)?,
            QueryValue::Many(values) => {
                for v in values {
                    *v = safely_compile(&unescape_segments(v), &indexes, true)?;
                }
            }
        }
    }
    let needs_query_updating =
        !is_redirect && !indexes.iter().any(|(name, _)| dest_params.contains(name));
    if needs_query_updating {
        for (name, reference) in &indexes {
            if !url.query.contains_key(name) && name != UN_NAMED {
                url.query
                    .insert(name.clone(), QueryValue::One(reference.clone()));
            }
        }
    }
    Ok(node_url::format(&url).replace("%24", "$"))
}

fn unescape_segments(text: &str) -> String {
    // `/__ESC_COLON_/gi`
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    const MARK: &str = "__esc_colon_";
    while !rest.is_empty() {
        if rest.len() >= MARK.len()
            && rest
                .get(..MARK.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(MARK))
        {
            out.push(':');
            rest = rest.get(MARK.len()..).unwrap_or_default();
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
    }
    out
}

/// path-to-regexp's `compile(value, { validate: false })(indexes)`; `None` where it throws.
fn p2r_compile(value: &str, indexes: &[(String, String)]) -> Option<String> {
    let tokens = pattern::parse(value).ok()?;
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Text(text) => out.push_str(&text),
            Token::Key(key) => {
                let found = key
                    .name
                    .as_deref()
                    .and_then(|name| indexes.iter().find(|(n, _)| n == name))
                    .map(|(_, v)| v.as_str());
                match found {
                    Some(v) => {
                        out.push_str(&key.prefix);
                        out.push_str(v);
                        out.push_str(&key.suffix);
                    }
                    // An optional parameter without a value is left out (a `{…}?` group with
                    // it); a required one throws.
                    None if matches!(key.modifier, Some('?' | '*')) => {}
                    None => return None,
                }
            }
        }
    }
    Some(out)
}

/// routing-utils' `safelyCompile`.
pub(crate) fn safely_compile(
    value: &str,
    indexes: &[(String, String)],
    attempt_direct: bool,
) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if attempt_direct && let Some(compiled) = p2r_compile(value, indexes) {
        return Ok(compiled);
    }
    let mut value = value.to_owned();
    for (key, _) in indexes {
        let colon_key = format!(":{key}");
        if !value.contains(&colon_key) {
            continue;
        }
        value = value
            .replace(
                &format!(":{key}*"),
                &format!(":{key}--ESCAPED_PARAM_ASTERISK"),
            )
            .replace(
                &format!(":{key}?"),
                &format!(":{key}--ESCAPED_PARAM_QUESTION"),
            )
            .replace(&format!(":{key}+"), &format!(":{key}--ESCAPED_PARAM_PLUS"));
        // `:key(?!\w)` → `--ESCAPED_PARAM_COLONkey`
        let mut out = String::with_capacity(value.len());
        let mut rest = value.as_str();
        while let Some(at) = rest.find(&colon_key) {
            let after = rest.get(at + colon_key.len()..).unwrap_or_default();
            let word_follows = after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            out.push_str(rest.get(..at).unwrap_or_default());
            if word_follows {
                out.push_str(&colon_key);
            } else {
                out.push_str("--ESCAPED_PARAM_COLON");
                out.push_str(key);
            }
            rest = after;
        }
        out.push_str(rest);
        value = out;
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, ':' | '*' | '?' | '+' | '(' | ')' | '{' | '}') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    let value = escaped
        .replace("--ESCAPED_PARAM_PLUS", "+")
        .replace("--ESCAPED_PARAM_COLON", ":")
        .replace("--ESCAPED_PARAM_QUESTION", "?")
        .replace("--ESCAPED_PARAM_ASTERISK", "*");
    let compiled = p2r_compile(&format!("/{value}"), indexes)
        .ok_or_else(|| "cannot be compiled (path-to-regexp refuses it)".to_owned())?;
    Ok(compiled.get(1..).unwrap_or_default().to_owned())
}

/// routing-utils' `convertHeaders` for one value: `:name` parameters compiled when the rule has
/// any parameter and the value holds a ':'.
pub(crate) fn compile_header_value(value: &str, params: &Params) -> Result<Template, String> {
    let text = if (params.named_source().next().is_some() || !params.has.is_empty())
        && value.contains(':')
    {
        safely_compile(value, &params.indexes(), false)?
    } else {
        value.to_owned()
    };
    Ok(Template::parse(&text, params, false))
}

impl Template {
    /// A low-level route's destination (`/$1/`), whose source has `groups` unnamed groups.
    pub(crate) fn from_route(text: &str, groups: usize) -> Self {
        let params = Params {
            source: vec![None; groups],
            has: Vec::new(),
        };
        Self::parse(text, &params, true)
    }

    /// Splits a compiled template into text and `$n`/`$name` references, noting the URL part
    /// each reference lands in (`is_url`), or [`Part::Header`].
    fn parse(text: &str, params: &Params, is_url: bool) -> Self {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let lower = text.to_ascii_lowercase();
        let host_end = if is_url && (lower.starts_with("http://") || lower.starts_with("https://"))
        {
            let start = text.find("://").map_or(0, |i| i + 3);
            Some((
                start,
                start
                    + text
                        .get(start..)
                        .unwrap_or_default()
                        .find(['/', '?', '#'])
                        .unwrap_or(text.len() - start),
            ))
        } else {
            None
        };
        let mut part = if host_end.is_some() {
            Part::Host
        } else {
            Part::Path
        };
        let mut i = 0;
        while let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) {
            if is_url {
                if let Some((_, end)) = host_end
                    && i == end
                {
                    part = Part::Path;
                }
                match c {
                    '?' if matches!(part, Part::Path) => part = Part::Query,
                    '#' if !matches!(part, Part::Fragment) => part = Part::Fragment,
                    _ => {}
                }
            }
            if c == '$'
                && let Some((reference, len)) =
                    reference_at(text.get(i + 1..).unwrap_or_default(), params)
            {
                if !literal.is_empty() {
                    pieces.push(Piece::Text(core::mem::take(&mut literal)));
                }
                let part = if is_url { part } else { Part::Header };
                pieces.push(Piece::Ref(reference, part));
                i += 1 + len;
                continue;
            }
            literal.push(c);
            i += c.len_utf8();
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Self {
            text: text.to_owned(),
            pieces,
        }
    }

    /// Whether the template uses any value (else it is fixed text).
    pub(crate) fn is_fixed(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// Renders a header value.
    pub(crate) fn render_header(&self, values: &Values<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Ref(reference, _) => {
                    out.push_str(&encode(values.get(reference).unwrap_or(""), Part::Header));
                }
            }
        }
        out
    }

    /// Fills a destination in. `request_query` (raw, without `?`) is merged in: the
    /// destination's own keys win. `None` when the result would be unsafe (see module docs).
    pub(crate) fn fill(&self, values: &Values<'_>, request_query: &str) -> Option<Filled> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Ref(reference, part) => {
                    let value = values.get(reference).unwrap_or("");
                    if *part == Part::Host
                        && !value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                    {
                        return None;
                    }
                    out.push_str(&encode(value, *part));
                }
            }
        }
        let (rest, fragment) = match out.split_once('#') {
            Some((rest, fragment)) => (rest.to_owned(), Some(fragment.to_owned())),
            None => (out, None),
        };
        let (path, own_query) = match rest.split_once('?') {
            Some((path, query)) => (path.to_owned(), query.to_owned()),
            None => (rest, String::new()),
        };
        let lower = path.to_ascii_lowercase();
        let external = lower.starts_with("http://") || lower.starts_with("https://");
        if external {
            let authority = path
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
                .unwrap_or_default();
            if authority.is_empty() || authority.contains(['@', '\\']) {
                return None;
            }
        } else if !is_safe_internal_path(&path) {
            return None;
        }
        let mut pairs: Vec<String> = own_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let own_keys: Vec<String> = pairs.iter().map(|p| query_key(p).to_owned()).collect();
        pairs.extend(
            request_query
                .split('&')
                .filter(|pair| !pair.is_empty() && !own_keys.iter().any(|k| k == query_key(pair)))
                .map(|pair| encode(pair, Part::Fragment).replace('#', "%23")),
        );
        let mut without_fragment = path;
        if !pairs.is_empty() {
            without_fragment.push('?');
            without_fragment.push_str(&pairs.join("&"));
        }
        Some(Filled {
            without_fragment,
            fragment,
            external,
        })
    }
}

/// A reference after a `$`: the longest `has` parameter name there, else a source parameter
/// number (the longest prefix of the digits that names a parameter). With its length.
fn reference_at(rest: &str, params: &Params) -> Option<(Ref, usize)> {
    let named = params
        .has
        .iter()
        .filter(|name| !name.is_empty() && rest.starts_with(name.as_str()))
        .max_by_key(|name| name.len());
    if let Some(name) = named {
        return Some((Ref::Named(name.clone()), name.len()));
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (1..=digits.min(6)).rev().find_map(|len| {
        let n: usize = rest.get(..len)?.parse().ok()?;
        // `then`, not `then_some`: its argument is evaluated first, and `$0` would underflow.
        (n >= 1 && n <= params.source.len()).then(|| (Ref::Numbered(n - 1), len))
    })
}

/// Percent-encodes what must not pass through raw into `part` (see module docs). Existing
/// `%XX` escapes are kept: values are already encoded as they came in the URL.
fn encode(value: &str, part: Part) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let unsafe_here = match byte {
            // Header values are portable only in ASCII: workerd writes a header string as
            // UTF-8, Node (Vercel's runtime) as Latin-1.
            _ if part == Part::Header => !(0x20..0x7f).contains(&byte),
            b'?' => part == Part::Path,
            b'&' | b'+' => part == Part::Query,
            b'#' | b'\\' | b'"' | b'<' | b'>' | b'^' | b'`' | b'{' | b'|' | b'}' | b' ' => true,
            _ => !(0x21..0x7f).contains(&byte),
        };
        if unsafe_here {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

fn query_key(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(key, _)| key)
}

/// An internal path must start with exactly one `/` (else a browser or fetch reads `//host` as
/// another host) and contain no `.`/`..` segments, encoded or not (else it could climb out of
/// the prefix a rule maps to, e.g. `/api/v1/`).
pub(crate) fn is_safe_internal_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.split('/').any(|segment| {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            decoded == "." || decoded == ".."
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(source: &[Option<&str>], has: &[&str]) -> Params {
        Params {
            source: source.iter().map(|n| n.map(str::to_owned)).collect(),
            has: has.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    fn template(destination: &str, p: &Params, redirect: bool) -> String {
        compile_destination(destination, p, redirect)
            .unwrap_or_else(|e| panic!("{destination}: {e}"))
            .text
    }

    #[test]
    fn a_dollar_zero_names_no_parameter_and_does_not_underflow() {
        // Found by `generated_rules_that_load_evaluate_safely`: `$0` computed `0 - 1` (debug
        // builds panicked; release wrapped) before finding it names no parameter.
        let one = params(&[Some("a")], &[]);
        assert_eq!(reference_at("0", &one), None);
        assert_eq!(reference_at("00", &one), None);
        assert_eq!(reference_at("1", &one), Some((Ref::Numbered(0), 1)));
        assert_eq!(reference_at("0", &params(&[], &[])), None);
    }

    #[test]
    fn destinations_compile_like_routing_utils() {
        let path = params(&[Some("path")], &[]);
        assert_eq!(template("/uk/:path*", &path, true), "/uk/$1");
        assert_eq!(template("/new", &path, true), "/new");
        assert_eq!(template("/x/{:path}/y", &path, true), "/x/$1/y");
        let slug = params(&[Some("slug")], &[]);
        assert_eq!(template("/news", &slug, false), "/news?slug=$1");
        assert_eq!(template("/news/:slug", &slug, false), "/news/$1");
        assert_eq!(
            template("/s?q=:slug&next=/a", &slug, false),
            "/s?q=$1&next=%2Fa&slug=$1",
            "a parameter used only in the query does not stop the appending"
        );
        let host = params(&[Some("id")], &["sub"]);
        assert_eq!(
            template("https://:sub.example.com/:id", &host, true),
            "https://$sub.example.com/$1"
        );
        let valueless = params(&[], &["x-user-id"]);
        assert_eq!(template("/u", &valueless, false), "/u?x-user-id=$x-user-id");
    }

    #[test]
    fn undefined_parameters_are_refused() {
        let p = params(&[Some("a")], &[]);
        let error = compile_destination("/x/:b", &p, true)
            .err()
            .unwrap_or_default();
        assert!(error.contains(":b"), "{error}");
        assert!(compile_destination("/x?q=:c", &p, false).is_err());
    }

    fn fill(
        template: &Template,
        source: &[Option<&str>],
        has: &[(&str, &str)],
        query: &str,
    ) -> Option<String> {
        let has: Vec<(&str, String)> = has.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        let values = Values { source, has: &has };
        template
            .fill(&values, query)
            .map(|filled| match filled.fragment {
                Some(fragment) => format!("{}#{fragment}", filled.without_fragment),
                None => filled.without_fragment,
            })
    }

    #[test]
    fn values_are_substituted_encoded_for_their_part_and_checked() {
        let p = params(&[Some("p")], &["sub"]);
        let t = compile_destination("https://:sub.example.com/a/:p?x=:p#:p", &p, true).unwrap();
        assert_eq!(
            fill(&t, &[Some("b?c&d")], &[("sub", "eu")], "y=1").as_deref(),
            Some("https://eu.example.com/a/b%3Fc&d?x=b?c%26d&y=1#b?c&d")
        );
        assert_eq!(
            fill(&t, &[Some("b")], &[("sub", "evil.com/x")], ""),
            None,
            "a host value is a host name"
        );
        let internal = compile_destination("/:p", &p, true).unwrap();
        assert_eq!(fill(&internal, &[Some("/evil.example")], &[], ""), None);
        assert_eq!(fill(&internal, &[Some("%2e%2E")], &[], ""), None);
        let optional = compile_destination("/docs", &params(&[Some("page")], &[]), false).unwrap();
        assert_eq!(
            fill(&optional, &[None], &[], "a=1").as_deref(),
            Some("/docs?page=&a=1")
        );
    }

    #[test]
    fn header_values_substitute_numbered_and_named_parameters() {
        let p = params(&[Some("file")], &["v"]);
        let t = compile_header_value("file=:file; v=:v; raw=$1", &p).unwrap();
        assert_eq!(t.text, "file=$1; v=$v; raw=$1");
        let has = [("v", "caf\u{e9}\r\n".to_owned())];
        let values = Values {
            source: &[Some("a.js")],
            has: &has,
        };
        assert_eq!(
            t.render_header(&values),
            "file=a.js; v=caf%C3%A9%0D%0A; raw=a.js"
        );
        assert!(compile_header_value("no params", &p).unwrap().is_fixed());
    }
}
