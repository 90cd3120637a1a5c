//! `source` patterns in path-to-regexp syntax (version 6.1.0, the one Vercel vendors and compiles
//! vercel.json with: case-sensitive, strict about trailing slashes, `/` as the only delimiter),
//! translated to one anchored `regex-lite` expression at load time.
//!
//! Supported: literal text, `\` escapes, `:name` (one segment), `:name?`, `:name*`, `:name+`,
//! custom groups `:name(regex)` and bare `(regex)` (numbered), and `{…}` groups with optional
//! modifiers. Every parameter is one capture group, in order, so `$1`… address them by position.

use regex_lite::{Regex, RegexBuilder};

use super::RulesLimits;

/// A compiled `source`: the anchored regex and, per capture group, the parameter's name
/// (`None` for a bare `(regex)` group, addressed only as `$n`).
#[derive(Debug, Clone)]
pub(crate) struct SourcePattern {
    regex: Regex,
    keys: Vec<Option<String>>,
}

/// The values a matched source captured, one per parameter; `None` when an optional parameter
/// did not take part in the match.
pub(crate) type Captures<'p> = Vec<Option<&'p str>>;

impl SourcePattern {
    /// Compiles a `source`. The error is a sentence fit to follow the field name.
    pub(crate) fn parse(source: &str, limits: &RulesLimits) -> Result<Self, String> {
        if !source.starts_with('/') {
            return Err(format!("must start with '/' (got {source:?})"));
        }
        let tokens = parse_tokens(&lex(source)?)?;
        let mut regex = String::from("^");
        let mut keys = Vec::new();
        for token in &tokens {
            match token {
                Token::Literal(text) => regex.push_str(&escape_regex(text)),
                Token::Param(param) => {
                    let prefix = escape_regex(&param.prefix);
                    let suffix = escape_regex(&param.suffix);
                    let modifier = param.modifier.map(String::from).unwrap_or_default();
                    if param.pattern.is_empty() {
                        // A `{…}` group without a parameter: optional literal text, no capture.
                        regex.push_str(&format!("(?:{prefix}{suffix}){modifier}"));
                        continue;
                    }
                    keys.push(param.name.clone());
                    let pattern = &param.pattern;
                    let repeated = matches!(param.modifier, Some('*' | '+'));
                    if prefix.is_empty() && suffix.is_empty() {
                        if repeated {
                            regex.push_str(&format!("((?:{pattern}){modifier})"));
                        } else {
                            regex.push_str(&format!("({pattern}){modifier}"));
                        }
                    } else if repeated {
                        let optional = if param.modifier == Some('*') { "?" } else { "" };
                        regex.push_str(&format!(
                            "(?:{prefix}((?:{pattern})(?:{suffix}{prefix}(?:{pattern}))*){suffix}){optional}"
                        ));
                    } else {
                        regex.push_str(&format!("(?:{prefix}({pattern}){suffix}){modifier}"));
                    }
                }
            }
        }
        regex.push('$');
        let regex = compile_regex(&regex, limits)?;
        Ok(Self { regex, keys })
    }

    /// Names of the named parameters, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|key| key.as_deref())
    }

    /// Number of parameters (named and numbered), i.e. the highest valid `$n`.
    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Position (0-based) of the named parameter `name`, the last one if repeated.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.keys
            .iter()
            .rposition(|key| key.as_deref() == Some(name))
    }

    /// Matches the whole `path` (raw, still percent-encoded) and returns one value per parameter.
    pub(crate) fn captures<'p>(&self, path: &'p str) -> Option<Captures<'p>> {
        let found = self.regex.captures(path)?;
        Some(
            (1..=self.keys.len())
                .map(|group| found.get(group).map(|m| m.as_str()))
                .collect(),
        )
    }
}

/// Compiles `pattern` within the configured size and nesting bounds.
pub(crate) fn compile_regex(pattern: &str, limits: &RulesLimits) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(limits.max_regex_bytes)
        .nest_limit(limits.max_regex_nesting)
        .build()
        .map_err(|error| format!("is not a supported regular expression: {error}"))
}

/// Escapes `text` so that, as a `source`, it matches exactly itself.
pub fn escape_source_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, ':' | '*' | '+' | '?' | '(' | ')' | '{' | '}' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '.'
                | '+'
                | '*'
                | '?'
                | '('
                | ')'
                | '|'
                | '['
                | ']'
                | '{'
                | '}'
                | '^'
                | '$'
                | '#'
                | '&'
                | '-'
                | '~'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lexeme {
    Char(char),
    Escaped(char),
    Name(String),
    Pattern(String),
    Modifier(char),
    Open,
    Close,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn lex(source: &str) -> Result<Vec<Lexeme>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexemes = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '*' | '+' | '?' => {
                lexemes.push(Lexeme::Modifier(c));
                i += 1;
            }
            '\\' => {
                let escaped = chars
                    .get(i + 1)
                    .ok_or_else(|| format!("ends with a lone '\\' at character {i}"))?;
                lexemes.push(Lexeme::Escaped(*escaped));
                i += 2;
            }
            '{' => {
                lexemes.push(Lexeme::Open);
                i += 1;
            }
            '}' => {
                lexemes.push(Lexeme::Close);
                i += 1;
            }
            ':' => {
                let name: String = chars
                    .iter()
                    .skip(i + 1)
                    .take_while(|c| is_name_char(**c))
                    .collect();
                if name.is_empty() {
                    return Err(format!(
                        "has ':' without a parameter name at character {i} (escape it as '\\:')"
                    ));
                }
                i += 1 + name.chars().count();
                lexemes.push(Lexeme::Name(name));
            }
            '(' => {
                let start = i;
                let mut depth = 1usize;
                let mut pattern = String::new();
                let mut j = i + 1;
                if chars.get(j) == Some(&'?') {
                    return Err(format!(
                        "has a group starting with '?' at character {j}; wrap it: ((?:…))"
                    ));
                }
                while let Some(&p) = chars.get(j) {
                    if p == '\\' {
                        pattern.push(p);
                        if let Some(&next) = chars.get(j + 1) {
                            pattern.push(next);
                        }
                        j += 2;
                        continue;
                    }
                    if p == ')' {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    } else if p == '(' {
                        depth += 1;
                        match (chars.get(j + 1), chars.get(j + 2)) {
                            (Some('?'), Some('<')) | (Some('?'), Some('P')) => {
                                return Err(format!(
                                    "has a named group inside a pattern at character {j}; \
                                     name the parameter instead (:name(…))"
                                ));
                            }
                            (Some('?'), _) => {}
                            _ => {
                                return Err(format!(
                                    "has a capturing group inside a pattern at character {j}; \
                                     use (?:…)"
                                ));
                            }
                        }
                    }
                    pattern.push(p);
                    j += 1;
                }
                if depth != 0 {
                    return Err(format!("has an unbalanced '(' at character {start}"));
                }
                if pattern.is_empty() {
                    return Err(format!("has an empty group at character {start}"));
                }
                lexemes.push(Lexeme::Pattern(pattern));
                i = j;
            }
            _ => {
                lexemes.push(Lexeme::Char(c));
                i += 1;
            }
        }
    }
    Ok(lexemes)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    name: Option<String>,
    prefix: String,
    suffix: String,
    /// Regex text; empty for a `{…}` group that holds no parameter.
    pattern: String,
    modifier: Option<char>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Param(Param),
}

/// The default pattern of a parameter: one non-empty path segment.
const SEGMENT: &str = "[^/]+?";

fn parse_tokens(lexemes: &[Lexeme]) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    let take_modifier = |i: &mut usize| match lexemes.get(*i) {
        Some(Lexeme::Modifier(m)) => {
            *i += 1;
            Some(*m)
        }
        _ => None,
    };
    while i < lexemes.len() {
        // A parameter, optionally preceded by one character that becomes its prefix ('/' or '.').
        let (char_before, offset) = match lexemes.get(i) {
            Some(Lexeme::Char(c)) => (Some(*c), 1),
            _ => (None, 0),
        };
        let (name, pattern) = match lexemes.get(i + offset) {
            Some(Lexeme::Name(name)) => match lexemes.get(i + offset + 1) {
                Some(Lexeme::Pattern(pattern)) => (Some(name.clone()), Some(pattern.clone())),
                _ => (Some(name.clone()), None),
            },
            Some(Lexeme::Pattern(pattern)) => (None, Some(pattern.clone())),
            _ => (None, None),
        };
        if name.is_some() || pattern.is_some() {
            i += offset + usize::from(name.is_some()) + usize::from(pattern.is_some());
            let mut prefix = String::new();
            match char_before {
                Some(c @ ('/' | '.')) => prefix.push(c),
                Some(c) => literal.push(c),
                None => {}
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(Token::Param(Param {
                name,
                prefix,
                suffix: String::new(),
                pattern: pattern.unwrap_or_else(|| SEGMENT.to_owned()),
                modifier: take_modifier(&mut i),
            }));
            continue;
        }
        if let Some(Lexeme::Char(c) | Lexeme::Escaped(c)) = lexemes.get(i) {
            literal.push(*c);
            i += 1;
            continue;
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut literal)));
        }
        match lexemes.get(i) {
            Some(Lexeme::Open) => {
                i += 1;
                let prefix = take_text(lexemes, &mut i);
                let name = match lexemes.get(i) {
                    Some(Lexeme::Name(name)) => {
                        i += 1;
                        Some(name.clone())
                    }
                    _ => None,
                };
                let pattern = match lexemes.get(i) {
                    Some(Lexeme::Pattern(pattern)) => {
                        i += 1;
                        Some(pattern.clone())
                    }
                    _ => None,
                };
                let suffix = take_text(lexemes, &mut i);
                if lexemes.get(i) != Some(&Lexeme::Close) {
                    return Err("has a '{' group that is not closed by '}'".to_owned());
                }
                i += 1;
                let pattern = match (&name, pattern) {
                    (_, Some(pattern)) => pattern,
                    (Some(_), None) => SEGMENT.to_owned(),
                    (None, None) => String::new(),
                };
                tokens.push(Token::Param(Param {
                    name,
                    prefix,
                    suffix,
                    pattern,
                    modifier: take_modifier(&mut i),
                }));
            }
            Some(Lexeme::Modifier(m)) => {
                return Err(format!(
                    "has '{m}' that follows no parameter (use :name{m}, or escape it as '\\{m}')"
                ));
            }
            Some(Lexeme::Close) => return Err("has a '}' without a matching '{'".to_owned()),
            Some(other) => return Err(format!("has an unexpected {other:?}")),
            None => {}
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

fn take_text(lexemes: &[Lexeme], i: &mut usize) -> String {
    let mut text = String::new();
    while let Some(Lexeme::Char(c) | Lexeme::Escaped(c)) = lexemes.get(*i) {
        text.push(*c);
        *i += 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(source: &str) -> SourcePattern {
        match SourcePattern::parse(source, &RulesLimits::default()) {
            Ok(pattern) => pattern,
            Err(error) => panic!("{source:?} did not compile: {error}"),
        }
    }

    fn captures(source: &str, path: &str) -> Option<Vec<Option<String>>> {
        compile(source)
            .captures(path)
            .map(|found| found.into_iter().map(|v| v.map(str::to_owned)).collect())
    }

    fn some(values: &[&str]) -> Option<Vec<Option<String>>> {
        Some(values.iter().map(|v| Some((*v).to_owned())).collect())
    }

    #[test]
    fn literal_sources_match_only_themselves_case_sensitively_and_strictly() {
        assert_eq!(captures("/about", "/about"), some(&[]));
        assert_eq!(captures("/about", "/About"), None);
        assert_eq!(captures("/about", "/about/"), None);
        assert_eq!(captures("/about", "/about/x"), None);
        assert_eq!(captures("/a.b", "/aXb"), None, "'.' is literal");
    }

    #[test]
    fn a_named_parameter_takes_exactly_one_segment() {
        assert_eq!(captures("/blog/:slug", "/blog/hello"), some(&["hello"]));
        assert_eq!(captures("/blog/:slug", "/blog/a/b"), None);
        assert_eq!(captures("/blog/:slug", "/blog/"), None);
        assert_eq!(
            captures("/u/:id/posts/:post", "/u/7/posts/9"),
            some(&["7", "9"])
        );
    }

    #[test]
    fn modifiers_make_parameters_optional_or_repeated() {
        assert_eq!(captures("/docs/:path*", "/docs"), Some(vec![None]));
        assert_eq!(captures("/docs/:path*", "/docs/a/b/c"), some(&["a/b/c"]));
        assert_eq!(captures("/docs/:path+", "/docs"), None);
        assert_eq!(captures("/docs/:path+", "/docs/a/b"), some(&["a/b"]));
        assert_eq!(captures("/docs/:page?", "/docs"), Some(vec![None]));
        assert_eq!(captures("/docs/:page?", "/docs/x"), some(&["x"]));
        assert_eq!(captures("/docs/:page?", "/docs/x/y"), None);
    }

    #[test]
    fn custom_and_bare_groups_use_their_own_regex() {
        assert_eq!(captures("/item/:id(\\d+)", "/item/42"), some(&["42"]));
        assert_eq!(captures("/item/:id(\\d+)", "/item/abc"), None);
        assert_eq!(captures("/(.*)", "/any/thing"), some(&["any/thing"]));
        assert_eq!(captures("/(.*)", "/"), some(&[""]));
        assert_eq!(captures("/:a(x|y)-(\\d+)", "/y-12"), some(&["y", "12"]));
        let pattern = compile("/:name/(.*)");
        assert_eq!(pattern.key_count(), 2);
        assert_eq!(pattern.names().collect::<Vec<_>>(), ["name"]);
        assert_eq!(pattern.position("name"), Some(0));
    }

    #[test]
    fn braces_group_optional_text() {
        assert_eq!(captures("/file{.:ext}?", "/file"), Some(vec![None]));
        assert_eq!(captures("/file{.:ext}?", "/file.png"), some(&["png"]));
        assert_eq!(captures("/old{-page}?", "/old-page"), some(&[]));
        assert_eq!(captures("/old{-page}?", "/old"), some(&[]));
    }

    #[test]
    fn matching_is_on_the_raw_encoded_path() {
        assert_eq!(captures("/a/:x", "/a/b%2Fc"), some(&["b%2Fc"]));
        assert_eq!(captures("/caf%C3%A9", "/caf%C3%A9"), some(&[]));
    }

    #[test]
    fn escaped_specials_are_literal() {
        assert_eq!(captures("/a\\:b\\(c\\)\\*", "/a:b(c)*"), some(&[]));
        let literal = "/x:y/(z)*+?{w}\\";
        assert_eq!(
            captures(&escape_source_literal(literal), literal),
            some(&[])
        );
    }

    /// Every (source, path) pair of a table produced by the reference implementation
    /// (`testdata/path-to-regexp-6.1.0.json`, from npm `path-to-regexp@6.1.0`, the version
    /// Vercel vendors, called with Vercel's options) matches here exactly when it matched
    /// there, with the same captures. (6.3.0 compiles some sources differently, with
    /// look-aheads; Vercel deliberately stayed on 6.1.0.)
    #[test]
    fn agrees_with_path_to_regexp_6() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("testdata/path-to-regexp-6.1.0.json")).unwrap();
        let strings = |key: &str| -> Vec<String> {
            table[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let expected: Vec<(String, String, Vec<Option<String>>)> = table["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let captures = m[2]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().map(str::to_owned))
                    .collect();
                (
                    m[0].as_str().unwrap().to_owned(),
                    m[1].as_str().unwrap().to_owned(),
                    captures,
                )
            })
            .collect();
        let mut compared = 0;
        for source in strings("sources") {
            for path in strings("paths") {
                let reference = expected
                    .iter()
                    .find(|(s, p, _)| *s == source && *p == path)
                    .map(|(_, _, captures)| captures.clone());
                assert_eq!(captures(&source, &path), reference, "{source} on {path}");
                compared += 1;
            }
        }
        assert!(compared > 500, "the table is not empty: {compared}");
    }

    #[test]
    fn malformed_sources_are_rejected_with_a_reason() {
        let limits = RulesLimits::default();
        for (source, needle) in [
            ("about", "must start with '/'"),
            ("/conf/*", "follows no parameter"),
            ("/a/:", "without a parameter name"),
            ("/a/(", "unbalanced"),
            ("/a/()", "empty group"),
            ("/a/((x))", "capturing group"),
            ("/a/((?<n>x))", "named group"),
            ("/a/(?:x)", "starting with '?'"),
            ("/a/{x", "not closed"),
            ("/a/x}", "without a matching"),
            ("/a\\", "lone"),
            ("/:path((?!uk/).*)", "not a supported regular expression"),
            ("/:id([)", "not a supported regular expression"),
        ] {
            match SourcePattern::parse(source, &limits) {
                Ok(_) => panic!("{source:?} should be rejected"),
                Err(error) => assert!(error.contains(needle), "{source:?}: {error}"),
            }
        }
    }

    #[test]
    fn regex_size_is_bounded() {
        let limits = RulesLimits {
            max_regex_bytes: 10_000,
            ..RulesLimits::default()
        };
        let error = SourcePattern::parse("/:x((?:a{1,100}){1,100})", &limits)
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("not a supported regular expression"),
            "{error}"
        );
    }
}
