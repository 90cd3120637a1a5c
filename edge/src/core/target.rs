//! The request URL, parsed once per request: every stage (routing, rules, the cache key, the
//! request's origin) reads these borrowed parts instead of parsing the string again.

/// The parts of a request URL the core routes on, borrowed from the raw string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    pub scheme: Option<&'a str>,
    /// `host[:port]` of an absolute URL.
    pub authority: Option<&'a str>,
    /// Path only, starting with `/`.
    pub path: &'a str,
    /// Path plus `?query` if present; the fragment removed.
    pub path_and_query: &'a str,
}

impl<'a> RequestTarget<'a> {
    /// Parses the URL the runtime hands over (absolute, or a bare path and query); `None` if
    /// malformed.
    pub fn parse(url: &'a str) -> Option<Self> {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let (scheme, authority, path_and_query) = match url.split_once("://") {
            Some((scheme, rest)) if !scheme.contains('/') => {
                let valid_scheme = scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
                if !valid_scheme {
                    return None;
                }
                // An absolute URL without a path means the root.
                let (authority, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                (Some(scheme), Some(authority), path)
            }
            _ => (None, None, url),
        };
        if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
            return None;
        }
        // The runtime hands over serialized URLs: anything outside visible ASCII is malformed.
        if !path_and_query.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        Some(Self {
            scheme,
            authority,
            path,
            path_and_query,
        })
    }

    /// The query, without `?` (empty when there is none).
    pub fn query(&self) -> &'a str {
        self.path_and_query
            .split_once('?')
            .map_or("", |(_, query)| query)
    }
}
