//! `destination` templates: parsed and classified at load, filled in per request.
//!
//! Substitution follows Vercel: `:name` (an optional `*`/`+` modifier after it is dropped) is a
//! named parameter of the source or of a `has` condition (conditions win), `$n` the n-th source
//! parameter; anything else is literal. Values are inserted as matched (the path still
//! percent-encoded), except that characters which could end the URL part they land in, break
//! out of it, or are not allowed in a header (controls, spaces, `\`, `#`, non-ASCII, `?` in the
//! path, `&` and `+` in the query) are percent-encoded. An internal destination that would
//! still leave this host after substitution (`//host`) or holds dot segments is refused at
//! evaluation.

use super::condition::Param;
use super::pattern::Captures;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(String),
    Named(String),
    /// 0-based index into the source's parameters (written `$n`, 1-based).
    Numbered(usize),
}

/// Where a destination points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A path on this host (the adapter proxies `/api/*` to the brain).
    Internal,
    /// Another origin, `http(s)://authority`, fixed at load (never substituted).
    External { origin: String },
}

/// A parsed `destination`.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub(crate) target: Target,
    path: Vec<Piece>,
    query: Option<Vec<Piece>>,
    fragment: Option<Vec<Piece>>,
}

/// The parameters available to a destination at evaluation time.
#[derive(Debug)]
pub(crate) struct Values<'a, 'p, 'r> {
    /// Source parameters, by position.
    pub(crate) source: &'a Captures<'p>,
    /// Positions of the source's named parameters.
    pub(crate) source_names: &'a [(String, usize)],
    /// Parameters from `has` conditions; later entries win.
    pub(crate) conditions: &'a [Param<'r>],
}

impl Values<'_, '_, '_> {
    fn named(&self, name: &str) -> Option<&str> {
        if let Some((_, value)) = self.conditions.iter().rev().find(|(n, _)| *n == name) {
            return Some(value);
        }
        let position = self
            .source_names
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, position)| *position)?;
        self.source.get(position).copied().flatten()
    }

    fn numbered(&self, index: usize) -> Option<&str> {
        self.source.get(index).copied().flatten()
    }

    /// Every named parameter with a value: source first, then conditions (overriding).
    fn all_named(&self) -> Vec<(&str, &str)> {
        let mut all: Vec<(&str, &str)> = Vec::new();
        let source = self.source_names.iter().filter_map(|(name, position)| {
            let value = self.source.get(*position).copied().flatten()?;
            Some((name.as_str(), value))
        });
        let conditions = self.conditions.iter().map(|(n, v)| (*n, v.as_str()));
        for (name, value) in source.chain(conditions) {
            match all.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = value,
                None => all.push((name, value)),
            }
        }
        all
    }
}

/// A filled-in destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filled {
    /// For [`Target::Internal`] the path (and query); otherwise the absolute URL.
    pub(crate) without_fragment: String,
    pub(crate) fragment: Option<String>,
}

impl Destination {
    /// Parses `destination`; `known` are the parameter names the rule defines and `numbered`
    /// the number of source parameters. The error is a sentence fit to follow the field name.
    pub(crate) fn parse(
        destination: &str,
        known: &[&str],
        numbered: usize,
    ) -> Result<Self, String> {
        if let Some(c) = destination
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control() || *c == ' ' || *c == '\\')
        {
            return Err(format!(
                "contains {c:?}; percent-encode it (got {destination:?})"
            ));
        }
        let lower = destination.to_ascii_lowercase();
        let (target, rest) = if lower.starts_with("http://") || lower.starts_with("https://") {
            let scheme_end = destination.find("://").map_or(0, |i| i + 3);
            let rest = destination.get(scheme_end..).unwrap_or_default();
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = rest.get(..authority_end).unwrap_or_default();
            if authority.is_empty() {
                return Err(format!("has no host (got {destination:?})"));
            }
            if authority.contains('@') {
                return Err(format!(
                    "must not carry credentials in its URL (got {destination:?})"
                ));
            }
            if authority.contains('$')
                || parse_pieces(authority, known, numbered)
                    .iter()
                    .any(|p| !matches!(p, Piece::Literal(_)))
            {
                return Err(format!(
                    "substitutes a parameter into the host, which is not supported \
                     (got {destination:?})"
                ));
            }
            let origin_end = scheme_end + authority_end;
            let origin = destination.get(..origin_end).unwrap_or_default().to_owned();
            let rest = destination.get(origin_end..).unwrap_or_default();
            (Target::External { origin }, rest)
        } else if destination.starts_with('/') && !destination.starts_with("//") {
            (Target::Internal, destination)
        } else {
            return Err(format!(
                "must be a path starting with a single '/' or an absolute http(s):// URL \
                 (got {destination:?})"
            ));
        };
        let (rest, fragment) = match rest.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (rest, None),
        };
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Ok(Self {
            target,
            path: parse_pieces(path, known, numbered),
            query: query.map(|q| parse_pieces(q, known, numbered)),
            fragment: fragment.map(|f| parse_pieces(f, known, numbered)),
        })
    }

    /// Whether any named parameter is used outside the query (Vercel then leaves the rewrite's
    /// query alone; otherwise it appends every named parameter to it).
    fn uses_named_outside_query(&self) -> bool {
        self.path
            .iter()
            .chain(self.fragment.iter().flatten())
            .any(|piece| matches!(piece, Piece::Named(_)))
    }

    /// Fills the template in. `request_query` (raw, without `?`) is merged in: the
    /// destination's own keys win. For rewrites, named parameters unused by the path are added
    /// to the query, as Vercel does. `None` when the result would be unsafe (see module docs).
    pub(crate) fn fill(
        &self,
        values: &Values<'_, '_, '_>,
        request_query: &str,
        is_rewrite: bool,
    ) -> Option<Filled> {
        let mut path = String::new();
        render(&self.path, values, Part::Path, &mut path);
        if self.target == Target::Internal && !is_safe_internal_path(&path) {
            return None;
        }
        let mut pairs: Vec<String> = Vec::new();
        if let Some(query) = &self.query {
            let mut rendered = String::new();
            render(query, values, Part::Query, &mut rendered);
            pairs.extend(
                rendered
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
        }
        if is_rewrite && !self.uses_named_outside_query() {
            for (name, value) in values.all_named() {
                if !pairs.iter().any(|pair| query_key(pair) == name) {
                    pairs.push(format!("{name}={}", encode_query_value(value)));
                }
            }
        }
        let own_keys: Vec<String> = pairs.iter().map(|p| query_key(p).to_owned()).collect();
        pairs.extend(
            request_query
                .split('&')
                .filter(|pair| !pair.is_empty() && !own_keys.iter().any(|k| k == query_key(pair)))
                .map(|pair| encode(pair, Part::RequestQuery)),
        );
        let mut without_fragment = match &self.target {
            Target::Internal => path,
            Target::External { origin } => format!("{origin}{path}"),
        };
        if !pairs.is_empty() {
            without_fragment.push('?');
            without_fragment.push_str(&pairs.join("&"));
        }
        let fragment = self.fragment.as_ref().map(|pieces| {
            let mut fragment = String::new();
            render(pieces, values, Part::Fragment, &mut fragment);
            fragment
        });
        Some(Filled {
            without_fragment,
            fragment,
        })
    }
}

/// A response header value with `:name` parameters (numbered `$n` stay literal, as on
/// Vercel). Substituted values have their control characters percent-encoded.
#[derive(Debug, Clone)]
pub(crate) struct TextTemplate(Vec<Piece>);

impl TextTemplate {
    /// `None` when `text` uses none of the `known` parameters (it is then a fixed value).
    pub(crate) fn parse(text: &str, known: &[&str]) -> Option<Self> {
        let pieces = parse_pieces(text, known, 0);
        pieces
            .iter()
            .any(|piece| !matches!(piece, Piece::Literal(_)))
            .then_some(Self(pieces))
    }

    pub(crate) fn render(&self, values: &Values<'_, '_, '_>) -> String {
        let mut out = String::new();
        render(&self.0, values, Part::Header, &mut out);
        out
    }
}

/// Which part of the URL a substituted value lands in (decides what gets encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    /// A parameter inside the destination's query: `&` and `+` are encoded too, so a value
    /// stays one value (no injected parameters, no `+` turning into a space).
    Query,
    Fragment,
    Header,
    /// The request's own query, already encoded by the client: only made header-safe.
    RequestQuery,
}

fn render(pieces: &[Piece], values: &Values<'_, '_, '_>, part: Part, out: &mut String) {
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Named(name) => out.push_str(&encode(values.named(name).unwrap_or(""), part)),
            Piece::Numbered(index) => {
                out.push_str(&encode(values.numbered(*index).unwrap_or(""), part));
            }
        }
    }
}

/// Percent-encodes what must not pass through raw into `part` (see module docs). Existing
/// `%XX` escapes are kept: values are already encoded as they came in the URL.
fn encode(value: &str, part: Part) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let unsafe_here = match byte {
            _ if part == Part::Header => byte < 0x20 || byte == 0x7f,
            b'?' => part == Part::Path,
            b'&' | b'+' => part == Part::Query,
            b'#' | b'\\' | b'"' | b'<' | b'>' | b'^' | b'`' | b'{' | b'|' | b'}' | b' ' => true,
            _ => !(0x21..0x7f).contains(&byte),
        };
        if unsafe_here {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(byte as char);
        }
    }
    out
}

/// A value appended as `name=value`: also encodes the separators of the query.
fn encode_query_value(value: &str) -> String {
    encode(value, Part::Query).replace('=', "%3D")
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

fn parse_pieces(text: &str, known: &[&str], numbered: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after = rest.get(c.len_utf8()..).unwrap_or_default();
        let run_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let run = after.get(..run_len).unwrap_or_default();
        let piece = match c {
            ':' if known.contains(&run) => Some(Piece::Named(run.to_owned())),
            '$' if !run.is_empty() && run.bytes().all(|b| b.is_ascii_digit()) => run
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=numbered).contains(n))
                .map(|n| Piece::Numbered(n - 1)),
            _ => None,
        };
        match piece {
            Some(piece) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
                rest = after.get(run_len..).unwrap_or_default();
                if matches!(pieces.last(), Some(Piece::Named(_))) && piece_modifier(rest).is_some()
                {
                    rest = rest.get(1..).unwrap_or_default();
                }
            }
            None => {
                literal.push(c);
                rest = after;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    pieces
}

/// A path-to-regexp modifier after a named parameter (`:path*`), which substitution drops. `?`
/// never reaches here in a path: it starts the query.
fn piece_modifier(rest: &str) -> Option<char> {
    rest.chars().next().filter(|c| matches!(c, '*' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(
        destination: &str,
        names: &[(&str, usize)],
        source: &[Option<&str>],
        conditions: &[(&str, &str)],
        request_query: &str,
        is_rewrite: bool,
    ) -> Option<String> {
        let mut known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
        known.extend(conditions.iter().map(|(n, _)| *n));
        let parsed = Destination::parse(destination, &known, source.len())
            .unwrap_or_else(|e| panic!("{destination:?}: {e}"));
        let source_names: Vec<(String, usize)> =
            names.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect();
        let conditions: Vec<Param<'_>> = conditions
            .iter()
            .map(|(n, v)| (*n, (*v).to_owned()))
            .collect();
        let captures: Captures<'_> = source.to_vec();
        let values = Values {
            source: &captures,
            source_names: &source_names,
            conditions: &conditions,
        };
        parsed
            .fill(&values, request_query, is_rewrite)
            .map(|filled| match filled.fragment {
                Some(fragment) => format!("{}#{fragment}", filled.without_fragment),
                None => filled.without_fragment,
            })
    }

    #[test]
    fn named_and_numbered_parameters_are_substituted() {
        assert_eq!(
            fill("/api/:path*", &[("path", 0)], &[Some("a/b")], &[], "", true).as_deref(),
            Some("/api/a/b")
        );
        assert_eq!(
            fill("/x/$2/$1", &[], &[Some("a"), Some("b")], &[], "", false).as_deref(),
            Some("/x/b/a")
        );
        assert_eq!(
            fill("/p/:id", &[("id", 0)], &[None], &[], "", false).as_deref(),
            Some("/p/"),
            "an unmatched optional parameter is empty"
        );
        assert_eq!(
            fill("/:lang/home", &[], &[], &[("lang", "fr")], "", false).as_deref(),
            Some("/fr/home")
        );
        assert_eq!(
            fill(
                "/:id",
                &[("id", 0)],
                &[Some("src")],
                &[("id", "has")],
                "",
                false
            )
            .as_deref(),
            Some("/has"),
            "condition parameters override source parameters"
        );
    }

    #[test]
    fn unknown_parameters_ports_and_dollars_stay_literal() {
        assert_eq!(
            fill(
                "https://brain.example:8443/a/:nope/$9/$x",
                &[("id", 0)],
                &[Some("1")],
                &[],
                "",
                false
            )
            .as_deref(),
            Some("https://brain.example:8443/a/:nope/$9/$x")
        );
    }

    #[test]
    fn parameters_reach_the_query_and_the_request_query_is_merged() {
        assert_eq!(
            fill(
                "/search?q=:term&x=1",
                &[("term", 0)],
                &[Some("rust")],
                &[],
                "x=2&y=3",
                false
            )
            .as_deref(),
            Some("/search?q=rust&x=1&y=3"),
            "destination keys win, other request keys are kept"
        );
    }

    #[test]
    fn a_value_in_the_query_cannot_add_parameters() {
        assert_eq!(
            fill(
                "/s?q=:t",
                &[("t", 0)],
                &[Some("a&admin=1+x")],
                &[],
                "p=a+b",
                false
            )
            .as_deref(),
            Some("/s?q=a%26admin=1%2Bx&p=a+b"),
            "the request's own query passes as sent"
        );
    }

    #[test]
    fn rewrites_append_unused_parameters_to_the_query_but_redirects_do_not() {
        assert_eq!(
            fill("/news", &[("slug", 0)], &[Some("a&b")], &[], "page=2", true).as_deref(),
            Some("/news?slug=a%26b&page=2")
        );
        assert_eq!(
            fill("/news", &[("slug", 0)], &[Some("hello")], &[], "", false).as_deref(),
            Some("/news")
        );
        assert_eq!(
            fill(
                "/news/:slug",
                &[("slug", 0)],
                &[Some("hello")],
                &[],
                "",
                true
            )
            .as_deref(),
            Some("/news/hello")
        );
    }

    #[test]
    fn fragments_are_kept_for_the_caller() {
        assert_eq!(
            fill(
                "/docs#:code",
                &[("code", 0)],
                &[Some("404")],
                &[],
                "",
                false
            )
            .as_deref(),
            Some("/docs#404")
        );
    }

    #[test]
    fn substitution_cannot_leave_the_host_or_climb_out() {
        // `/(.*)` on `//evil.example` captures `/evil.example`.
        assert_eq!(
            fill("/$1", &[], &[Some("/evil.example")], &[], "", false),
            None
        );
        assert_eq!(
            fill(
                "/:p",
                &[("p", 0)],
                &[Some("\\evil.example")],
                &[],
                "",
                false
            )
            .as_deref(),
            Some("/%5Cevil.example"),
            "a backslash is encoded, never read as a slash"
        );
        assert_eq!(
            fill(
                "/api/v1/:p*",
                &[("p", 0)],
                &[Some("%2e%2E/admin")],
                &[],
                "",
                true
            ),
            None
        );
        assert_eq!(
            fill("/api/:p", &[], &[], &[("p", "..")], "", true),
            None,
            "condition values are checked too"
        );
        assert_eq!(
            fill("/a/:p", &[], &[], &[("p", "x?y#z\r\nq é")], "", false).as_deref(),
            Some("/a/x%3Fy%23z%0D%0Aq%20%C3%A9")
        );
    }

    #[test]
    fn destinations_are_classified_and_validated() {
        let internal = Destination::parse("/api/x", &[], 0).map(|d| d.target);
        assert_eq!(internal, Ok(Target::Internal));
        let external =
            Destination::parse("HTTPS://api.example.com/x?y=1", &[], 0).map(|d| d.target);
        assert_eq!(
            external,
            Ok(Target::External {
                origin: "HTTPS://api.example.com".to_owned()
            })
        );
        for (destination, needle) in [
            ("api/x", "must be a path"),
            ("//evil.example/x", "must be a path"),
            ("ftp://x/y", "must be a path"),
            ("https:///x", "no host"),
            ("https://user:pw@x/y", "credentials"),
            ("https://:sub.example.com/", "into the host"),
            ("https://$1.example.com/", "into the host"),
            ("/a b", "contains ' '"),
            ("/a\\b", "contains '\\\\'"),
            ("/caf\u{e9}", "contains '\u{e9}'"),
        ] {
            match Destination::parse(destination, &["sub"], 1) {
                Ok(_) => panic!("{destination:?} should be rejected"),
                Err(error) => assert!(error.contains(needle), "{destination:?}: {error}"),
            }
        }
    }
}
