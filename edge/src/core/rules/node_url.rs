//! The pieces of Node.js that Vercel's `@vercel/routing-utils` runs a destination through at
//! deploy (`url.parse(…, true)`, `url.format`, `querystring`), ported so that the edge turns a
//! destination into the same template Vercel does, quirks included: a query is decoded and
//! re-encoded (`?next=/a` becomes `?next=%2Fa`), `{`, `}`, `'`… are escaped outside the fast
//! path, integer-like query keys come first (JavaScript's property order).

/// A query value: one string or, for a repeated key, several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryValue {
    One(String),
    Many(Vec<String>),
}

/// A decoded query in JavaScript property order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query(pub(crate) Vec<(String, QueryValue)>);

impl Query {
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Adds a key the way assigning a property of a JavaScript object does.
    pub(crate) fn insert(&mut self, key: String, value: QueryValue) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => {
                self.0.push((key, value));
                self.sort_js();
            }
        }
    }

    /// Integer-like keys first, ascending; other keys in insertion order.
    fn sort_js(&mut self) {
        let index = |key: &str| -> Option<u32> {
            if key == "0" {
                return Some(0);
            }
            if key.starts_with('0') || key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            key.parse::<u32>().ok().filter(|n| *n < u32::MAX)
        };
        // A stable sort keeps the insertion order among non-index keys.
        self.0.sort_by_key(|(key, _)| match index(key) {
            Some(n) => (0, n),
            None => (1, 0),
        });
    }
}

/// `querystring.parse` (separators `&` and `=`, `+` as a space, at most 1000 keys).
pub(crate) fn parse_query(text: &str) -> Query {
    let mut query = Query::default();
    for (count, pair) in text.split('&').enumerate() {
        if count >= 1000 {
            break;
        }
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = unescape(&key.replace('+', " "));
        let value = unescape(&value.replace('+', " "));
        match query.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, QueryValue::One(first))) => {
                let first = core::mem::take(first);
                if let Some(entry) = query.0.iter_mut().find(|(k, _)| *k == key) {
                    entry.1 = QueryValue::Many(vec![first, value]);
                }
            }
            Some((_, QueryValue::Many(values))) => values.push(value),
            None => query.insert(key, QueryValue::One(value)),
        }
    }
    query
}

/// `querystring.unescape`: percent-decoding that never fails (malformed escapes stay; `+`
/// is left alone).
pub(crate) fn unescape(text: &str) -> String {
    super::condition::percent_decode(text, false)
}

/// `querystring.escape`.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"!'()*-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `querystring.stringify`.
pub(crate) fn stringify_query(query: &Query) -> String {
    let mut parts = Vec::new();
    for (key, value) in &query.0 {
        match value {
            QueryValue::One(value) => parts.push(format!("{}={}", escape(key), escape(value))),
            QueryValue::Many(values) => {
                for value in values {
                    parts.push(format!("{}={}", escape(key), escape(value)));
                }
            }
        }
    }
    parts.join("&")
}

/// The parts of a URL that `url.parse(text, true)` returns and `replaceSegments` uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) protocol: Option<String>,
    pub(crate) slashes: bool,
    pub(crate) auth: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) port: Option<String>,
    pub(crate) pathname: Option<String>,
    pub(crate) query: Query,
    /// With its leading `#`.
    pub(crate) hash: Option<String>,
}

/// `autoEscapeStr`: characters the legacy parser escapes wherever they appear.
fn auto_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("%09"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ' ' => out.push_str("%20"),
            '"' => out.push_str("%22"),
            '\'' => out.push_str("%27"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\\' => out.push_str("%5C"),
            '^' => out.push_str("%5E"),
            '`' => out.push_str("%60"),
            '{' => out.push_str("%7B"),
            '|' => out.push_str("%7C"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

/// The fast path of `url.parse`: `/^(\/\/?(?!\/)[^?\s]*)(\?[^\s]*)?$/`.
fn simple_path(rest: &str) -> Option<(&str, Option<&str>)> {
    let (path, search) = match rest.find('?') {
        Some(at) => (rest.get(..at)?, Some(rest.get(at..)?)),
        None => (rest, None),
    };
    let slashes = path.bytes().take_while(|b| *b == b'/').count();
    if !(1..=2).contains(&slashes) || rest.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    Some((path, search))
}

/// `url.parse(text, true)` for what a destination can be: a path, or an absolute URL.
pub(crate) fn parse(text: &str) -> Url {
    let mut url = Url::default();
    let trimmed = text.trim_matches(|c: char| (c as u32) < 33 || c == '\u{a0}' || c == '\u{feff}');
    // Backslashes before the query or hash become slashes; note '@' and '#' there.
    let mut rest = String::with_capacity(trimmed.len());
    let mut split = false;
    let mut has_hash = false;
    let mut has_at = false;
    for c in trimmed.chars() {
        if !split {
            match c {
                '@' => has_at = true,
                '#' => {
                    has_hash = true;
                    split = true;
                }
                '?' => split = true,
                _ => {}
            }
            rest.push(if c == '\\' { '/' } else { c });
        } else {
            if c == '#' {
                has_hash = true;
            }
            rest.push(c);
        }
    }
    if !has_hash
        && !has_at
        && let Some((path, search)) = simple_path(&rest)
    {
        url.pathname = Some(path.to_owned());
        if let Some(search) = search {
            url.query = parse_query(search.get(1..).unwrap_or_default());
        }
        return url;
    }
    let mut rest = rest.as_str();
    let proto_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')))
        .filter(|end| *end > 0 && rest.get(*end..).is_some_and(|r| r.starts_with(':')));
    let mut lower_proto = String::new();
    if let Some(end) = proto_len {
        lower_proto = rest.get(..=end).unwrap_or_default().to_ascii_lowercase();
        url.protocol = Some(lower_proto.clone());
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    let slashed = matches!(
        lower_proto.as_str(),
        "http:" | "https:" | "ftp:" | "gopher:" | "file:" | "ws:" | "wss:"
    );
    let host_pattern = || {
        // `/^\/\/[^@/]+@[^@/]+/`
        rest.strip_prefix("//").is_some_and(|r| {
            let user_end = r.find(['@', '/']);
            matches!(user_end, Some(at) if at > 0 && r.get(at..).is_some_and(|s| s.starts_with('@'))
                && r.get(at + 1..).is_some_and(|s| s.chars().next().is_some_and(|c| c != '@' && c != '/')))
        })
    };
    let mut slashes = false;
    if proto_len.is_some() || host_pattern() {
        slashes = rest.starts_with("//");
        if slashes && !matches!(lower_proto.as_str(), "javascript:") {
            rest = rest.get(2..).unwrap_or_default();
            url.slashes = true;
        }
    }
    let owned_rest;
    if lower_proto != "javascript:" && (slashes || (proto_len.is_some() && !slashed)) {
        let mut host_end = None;
        let mut at_sign = None;
        let mut non_host = None;
        for (i, c) in rest.char_indices() {
            match c {
                '\t' | '\n' | '\r' | ' ' | '"' | '%' | '\'' | ';' | '<' | '>' | '\\' | '^'
                | '`' | '{' | '|' | '}' => {
                    non_host.get_or_insert(i);
                }
                '#' | '/' | '?' => {
                    non_host.get_or_insert(i);
                    host_end = Some(i);
                }
                '@' => {
                    at_sign = Some(i);
                    non_host = None;
                }
                _ => {}
            }
            if host_end.is_some() {
                break;
            }
        }
        let mut start = 0;
        if let Some(at) = at_sign {
            url.auth = Some(unescape(rest.get(..at).unwrap_or_default()));
            start = at + 1;
        }
        let host = match non_host {
            None => {
                let host = rest.get(start..).unwrap_or_default();
                rest = "";
                host
            }
            Some(end) => {
                let host = rest.get(start..end).unwrap_or_default();
                rest = rest.get(end..).unwrap_or_default();
                host
            }
        };
        // parseHost: a trailing `:digits` is the port.
        let (hostname, port) = match host.rfind(':') {
            Some(colon)
                if host
                    .get(colon + 1..)
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
            {
                let port = host.get(colon + 1..).unwrap_or_default();
                (
                    host.get(..colon).unwrap_or_default(),
                    (!port.is_empty()).then(|| port.to_owned()),
                )
            }
            _ => (host, None),
        };
        url.port = port;
        let mut hostname = hostname.to_owned();
        // getHostname: a hostname ends at '/', '\', '#', '?' or ':'; the rest joins the path.
        if !(hostname.starts_with('[') && hostname.ends_with(']'))
            && let Some(bad) = hostname.find(['/', '\\', '#', '?', ':'])
        {
            owned_rest = format!("/{}{rest}", hostname.get(bad..).unwrap_or_default());
            hostname.truncate(bad);
            rest = owned_rest.as_str();
            url.hostname = Some(hostname.to_ascii_lowercase());
        } else {
            url.hostname = Some(if hostname.len() > 255 {
                String::new()
            } else {
                hostname.to_ascii_lowercase()
            });
        }
    }
    let escaped = auto_escape(rest);
    let rest = escaped.as_str();
    let hash_at = rest.find('#');
    if let Some(at) = hash_at {
        url.hash = Some(rest.get(at..).unwrap_or_default().to_owned());
    }
    let before_hash = rest
        .get(..hash_at.unwrap_or(rest.len()))
        .unwrap_or_default();
    let question = before_hash.find('?');
    if let Some(at) = question {
        url.query = parse_query(before_hash.get(at + 1..).unwrap_or_default());
    }
    let first = question.or(hash_at);
    match first {
        None if !rest.is_empty() => url.pathname = Some(rest.to_owned()),
        Some(at) if at > 0 => url.pathname = rest.get(..at).map(str::to_owned),
        _ => {}
    }
    if slashed && url.hostname.as_deref().is_some_and(|h| !h.is_empty()) && url.pathname.is_none() {
        url.pathname = Some("/".to_owned());
    }
    url
}

/// `url.format` of the parts `replaceSegments` passes (no `host`, no `search`).
pub(crate) fn format(url: &Url) -> String {
    let mut protocol = url.protocol.clone().unwrap_or_default();
    if !protocol.is_empty() && !protocol.ends_with(':') {
        protocol.push(':');
    }
    let mut host = String::new();
    if let Some(hostname) = url.hostname.as_deref().filter(|h| !h.is_empty()) {
        if let Some(auth) = &url.auth {
            host.push_str(&escape_auth(auth));
            host.push('@');
        }
        host.push_str(hostname);
        if let Some(port) = &url.port {
            host.push(':');
            host.push_str(port);
        }
    }
    let mut pathname = String::new();
    for c in url.pathname.as_deref().unwrap_or_default().chars() {
        match c {
            '#' => pathname.push_str("%23"),
            '?' => pathname.push_str("%3F"),
            c => pathname.push(c),
        }
    }
    let slashed = matches!(
        protocol.as_str(),
        "http:" | "https:" | "ftp:" | "gopher:" | "file:" | "ws:" | "wss:"
    );
    if url.slashes || (slashed && !host.is_empty()) {
        if !pathname.is_empty() && !pathname.starts_with('/') {
            pathname.insert(0, '/');
        }
        host.insert_str(0, "//");
    }
    let query = stringify_query(&url.query);
    let search = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.replace('#', "%23"))
    };
    let hash = match url.hash.as_deref() {
        Some(hash) if !hash.is_empty() && !hash.starts_with('#') => format!("#{hash}"),
        Some(hash) => hash.to_owned(),
        None => String::new(),
    };
    format!("{protocol}{host}{pathname}{search}{hash}")
}

fn escape_auth(auth: &str) -> String {
    let mut out = String::new();
    for byte in auth.bytes() {
        if byte.is_ascii_alphanumeric() || b"!$&'()*+,-.;=_~:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_re_encode_like_node() {
        let query = parse_query("b=1&2=x&a=%2Fp+q&b=2&flag");
        assert_eq!(stringify_query(&query), "2=x&b=1&b=2&a=%2Fp%20q&flag=");
        assert_eq!(escape("$1/é"), "%241%2F%C3%A9");
        assert_eq!(unescape("%zz%41"), "%zzA");
    }

    #[test]
    fn urls_parse_and_format_like_node() {
        let relative = parse("/a/{b}?x=1");
        assert_eq!(
            relative.pathname.as_deref(),
            Some("/a/{b}"),
            "the fast path escapes nothing"
        );
        let hashed = parse("/a/{b}#c");
        assert_eq!(hashed.pathname.as_deref(), Some("/a/%7Bb%7D"));
        assert_eq!(hashed.hash.as_deref(), Some("#c"));
        let absolute = parse("HTTPS://User@API.Example.com:8443/p?q=1#h");
        assert_eq!(absolute.protocol.as_deref(), Some("https:"));
        assert_eq!(absolute.hostname.as_deref(), Some("api.example.com"));
        assert_eq!(absolute.port.as_deref(), Some("8443"));
        assert_eq!(
            format(&absolute),
            "https://User@api.example.com:8443/p?q=1#h"
        );
        assert_eq!(format(&parse("https://x.example")), "https://x.example/");
    }
}
