//! `has` / `missing` conditions on a request's headers, cookies, query and host.

use std::borrow::Cow;

use http::HeaderName;
use http::header::COOKIE;
use regex_lite::Regex;

use super::RequestFacts;

/// What a condition looks at.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    Header(HeaderName),
    Cookie(String),
    Query(String),
    Host,
}

/// One compiled `has`/`missing` item.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) subject: Subject,
    /// Anchored (`^(?:value)$`) regex the value must match fully; `None`: presence suffices.
    pub(crate) value: Option<Regex>,
    /// The parameter this condition defines for the destination when it matches: the key itself
    /// (with characters other than `[A-Za-z0-9_]` removed) when there is no `value`.
    pub(crate) presence_param: Option<String>,
    /// For a `host` value without named groups, the whole host becomes the parameter `host`.
    pub(crate) host_param: bool,
}

/// A parameter a matched condition contributes to destination substitution.
pub(crate) type Param<'r> = (&'r str, String);

impl Condition {
    /// Checks the condition against the request; when it holds, returns the parameters it
    /// captured (named groups of `value`, or the presence parameter).
    pub(crate) fn check<'r>(&'r self, facts: &RequestFacts<'_>) -> Option<Vec<Param<'r>>> {
        let actual = self.actual(facts)?;
        let mut params = Vec::new();
        match &self.value {
            None => {
                if let Some(name) = &self.presence_param {
                    params.push((name.as_str(), actual.into_owned()));
                }
            }
            Some(regex) => {
                let found = regex.captures(&actual)?;
                let mut named = false;
                for name in regex.capture_names().flatten() {
                    named = true;
                    if let Some(value) = found.name(name) {
                        params.push((name, value.as_str().to_owned()));
                    }
                }
                if !named
                    && self.host_param
                    && let Some(whole) = found.get(0)
                {
                    params.push(("host", whole.as_str().to_owned()));
                }
            }
        }
        Some(params)
    }

    /// The request's value for this condition's subject, if present.
    fn actual<'f>(&self, facts: &RequestFacts<'f>) -> Option<Cow<'f, str>> {
        match &self.subject {
            Subject::Header(name) => {
                // Repeated fields combine into one value, as RFC 9110 §5.3 allows.
                let mut values = facts.headers.get_all(name).iter();
                let first = String::from_utf8_lossy(values.next()?.as_bytes());
                let mut combined = first;
                for value in values {
                    let owned = combined.to_mut();
                    owned.push_str(", ");
                    owned.push_str(&String::from_utf8_lossy(value.as_bytes()));
                }
                Some(combined)
            }
            Subject::Cookie(name) => cookie(facts, name).map(Cow::Owned),
            Subject::Query(name) => query_value(facts.query, name).map(Cow::Owned),
            Subject::Host => facts.host.map(|host| Cow::Owned(hostname(host))),
        }
    }
}

/// The first cookie called `name` in the request's `cookie` headers, percent-decoded.
fn cookie(facts: &RequestFacts<'_>, name: &str) -> Option<String> {
    facts
        .headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| header.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = String::from_utf8_lossy(pair);
            let (key, value) = pair.split_once('=')?;
            if key.trim() != name {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some(percent_decode(value, false))
        })
}

/// The last value of query parameter `name` (keys and values decoded, `+` as space), like the
/// query parsers of Node and Next.js; `""` for a key without `=`.
fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .rsplit('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true) == name).then(|| percent_decode(value, true))
        })
}

/// Host without port, lowercased (`[::1]:8080` → `[::1]`).
fn hostname(host: &str) -> String {
    let without_port = if host.starts_with('[') {
        host.split_once(']')
            .and_then(|(inside, _)| host.get(..=inside.len()))
            .unwrap_or(host)
    } else {
        host.split_once(':').map_or(host, |(name, _)| name)
    };
    without_port.to_ascii_lowercase()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); invalid escapes stay as
/// they are and invalid UTF-8 is replaced, so decoding never fails.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b'+', _, _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_and_the_last_one_wins() {
        assert_eq!(query_value("a=1&b=x+y%21&a=2", "a").as_deref(), Some("2"));
        assert_eq!(query_value("a=1&b=x+y%21", "b").as_deref(), Some("x y!"));
        assert_eq!(query_value("flag&x=1", "flag").as_deref(), Some(""));
        assert_eq!(query_value("x=1", "y"), None);
        assert_eq!(query_value("", "y"), None);
    }

    #[test]
    fn hostnames_lose_their_port_and_case() {
        assert_eq!(hostname("Example.COM:8443"), "example.com");
        assert_eq!(hostname("[::1]:8080"), "[::1]");
        assert_eq!(hostname("edge.example"), "edge.example");
    }

    #[test]
    fn percent_decoding_never_fails() {
        assert_eq!(percent_decode("a%20b%2", false), "a b%2");
        assert_eq!(percent_decode("%zz+", true), "%zz ");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }
}
