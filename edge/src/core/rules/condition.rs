//! `has` / `missing` conditions on a request's headers, cookies, query and host.
//!
//! A condition's `value` is a JavaScript regex matched against the whole value, or an operator
//! object (`eq`, `neq`, `inc`, `ninc`, `pre`, `suf`, `re`, `gt`, `gte`, `lt`, `lte`; every
//! operator given must hold). Parameters it defines for destinations, as routing-utils collects
//! them: the named groups of a regex (`value` or `re`), the key itself when there is no value,
//! and `host` for a host condition with a regex.

use std::borrow::Cow;

use http::HeaderName;
use http::header::COOKIE;

use super::RequestFacts;
use super::regex::{Exhausted, JsRegex, StepBudget};

/// What a condition looks at.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    Header(HeaderName),
    Cookie(String),
    Query(String),
    Host,
}

/// How the value is tested.
#[derive(Debug, Clone)]
pub(crate) enum ValueTest {
    /// No value: presence suffices.
    Present,
    /// A regex that must match the whole value.
    Regex(JsRegex),
    Operators(Box<Operators>),
}

/// An operator object; every field that is set must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Operators {
    pub(crate) eq: Option<Scalar>,
    pub(crate) neq: Option<String>,
    pub(crate) inc: Option<Vec<String>>,
    pub(crate) ninc: Option<Vec<String>>,
    pub(crate) pre: Option<String>,
    pub(crate) suf: Option<String>,
    pub(crate) re: Option<JsRegex>,
    pub(crate) gt: Option<f64>,
    pub(crate) gte: Option<f64>,
    pub(crate) lt: Option<f64>,
    pub(crate) lte: Option<f64>,
}

/// `eq` takes a string or a number.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Text(String),
    Number(f64),
}

/// One compiled `has`/`missing` item.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) subject: Subject,
    pub(crate) test: ValueTest,
    /// The parameter a valueless condition defines: its key as written.
    pub(crate) presence_param: Option<String>,
}

/// A parameter a matched condition contributes to destination substitution.
pub(crate) type Param<'r> = (&'r str, String);

impl Condition {
    /// The names this condition defines for destinations (routing-utils' `collectHasSegments`).
    pub(crate) fn param_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.presence_param.iter().map(String::as_str).collect();
        let regex = match &self.test {
            ValueTest::Regex(regex) => Some(regex),
            ValueTest::Operators(ops) => ops.re.as_ref(),
            ValueTest::Present => None,
        };
        if let Some(regex) = regex {
            names.extend(
                regex
                    .names()
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .filter(|name| is_collected_group_name(name)),
            );
            if matches!(self.subject, Subject::Host) {
                names.push("host");
            }
        }
        names
    }

    /// Checks the condition against the request; when it holds, returns the parameters it
    /// captured.
    pub(crate) fn check<'r>(
        &'r self,
        facts: &RequestFacts<'_>,
        budget: &mut StepBudget,
    ) -> Result<Option<Vec<Param<'r>>>, Exhausted> {
        let Some(actual) = self.actual(facts) else {
            return Ok(None);
        };
        let mut params = Vec::new();
        if let Some(name) = &self.presence_param {
            params.push((name.as_str(), actual.clone().into_owned()));
        }
        let regex = match &self.test {
            ValueTest::Present => return Ok(Some(params)),
            ValueTest::Regex(regex) => Some(regex),
            ValueTest::Operators(ops) => {
                if !ops.hold(&actual) {
                    return Ok(None);
                }
                ops.re.as_ref()
            }
        };
        if let Some(regex) = regex {
            let Some(found) = regex.captures(&actual, budget)? else {
                return Ok(None);
            };
            for (name, group) in regex.names() {
                if let Some(value) = found.get(&actual, *group)
                    && is_collected_group_name(name)
                {
                    params.push((name.as_str(), value.to_owned()));
                }
            }
            if matches!(self.subject, Subject::Host) {
                params.push(("host", actual.into_owned()));
            }
        }
        Ok(Some(params))
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

/// routing-utils collects named groups with `/\(\?<([a-zA-Z][a-zA-Z0-9_]*)>/`.
fn is_collected_group_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Operators {
    fn hold(&self, actual: &str) -> bool {
        let number = || parse_number(actual);
        let compare = |bound: Option<f64>, ok: fn(f64, f64) -> bool| {
            bound.is_none_or(|bound| number().is_some_and(|n| ok(n, bound)))
        };
        self.eq.as_ref().is_none_or(|eq| match eq {
            Scalar::Text(text) => actual == text,
            Scalar::Number(n) => number() == Some(*n),
        }) && self.neq.as_deref().is_none_or(|neq| actual != neq)
            && self
                .inc
                .as_ref()
                .is_none_or(|values| values.iter().any(|v| v == actual))
            && self
                .ninc
                .as_ref()
                .is_none_or(|values| !values.iter().any(|v| v == actual))
            && self
                .pre
                .as_deref()
                .is_none_or(|pre| actual.starts_with(pre))
            && self.suf.as_deref().is_none_or(|suf| actual.ends_with(suf))
            && compare(self.gt, |n, b| n > b)
            && compare(self.gte, |n, b| n >= b)
            && compare(self.lt, |n, b| n < b)
            && compare(self.lte, |n, b| n <= b)
    }
}

/// A decimal number (surrounding whitespace allowed); anything else is not a number, so a
/// numeric comparison with it fails.
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
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

    #[test]
    fn operators_all_hold_or_the_condition_fails() {
        let ops = Operators {
            pre: Some("v".to_owned()),
            ninc: Some(vec!["v0".to_owned()]),
            ..Operators::default()
        };
        assert!(ops.hold("v2") && !ops.hold("v0") && !ops.hold("x2"));
        let range = Operators {
            gte: Some(2.0),
            lt: Some(10.0),
            ..Operators::default()
        };
        assert!(range.hold("2") && range.hold(" 9.5 ") && !range.hold("10"));
        assert!(!range.hold("") && !range.hold("0x5") && !range.hold("five"));
        let eq = Operators {
            eq: Some(Scalar::Number(3.0)),
            ..Operators::default()
        };
        assert!(eq.hold("3") && eq.hold("3.0") && !eq.hold("3a"));
    }
}
