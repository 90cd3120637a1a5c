//! `source` patterns: a line-by-line port of path-to-regexp 6.1.0 (`lexer`, `parse`,
//! `tokensToRegexp`), the version Vercel vendors, called with Vercel's options (`strict`,
//! `sensitive`, delimiter `/`), so that a source compiles to the very regular expression Vercel
//! builds (the differential test compares the two strings). That expression is then run by the
//! JavaScript regex engine in `regex`.
//!
//! Before the expression runs, a [`Prefilter`] checks the literal text the pattern requires (the
//! text before the first parameter, after the last one, and between them, in order): most rules
//! of a file fail there after a few bytes, whatever the path's length.

use super::RulesLimits;
use super::regex::{Exhausted, JsRegex, StepBudget};

/// A compiled `source`.
#[derive(Debug, Clone)]
pub(crate) struct SourcePattern {
    regex: JsRegex,
    /// Per capture group, the parameter's name (`None` for an unnamed `(regex)` group).
    keys: Vec<Option<String>>,
    prefilter: Prefilter,
    /// The regular expression's source, as path-to-regexp builds it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) regex_source: String,
}

/// The values a matched source captured, one per parameter; `None` when an optional parameter
/// did not take part in the match.
pub(crate) type Captures<'p> = Vec<Option<&'p str>>;

/// Literal text a path must contain for the pattern to match.
#[derive(Debug, Clone, Default)]
struct Prefilter {
    prefix: String,
    /// Text between parameters, in order.
    inner: Vec<String>,
    suffix: String,
}

impl Prefilter {
    fn of(tokens: &[Token]) -> Self {
        let mut filter = Self::default();
        let last = tokens.len().saturating_sub(1);
        for (i, token) in tokens.iter().enumerate() {
            let Token::Text(text) = token else { continue };
            if i == 0 {
                filter.prefix.clone_from(text);
            } else if i == last {
                filter.suffix.clone_from(text);
            } else {
                filter.inner.push(text.clone());
            }
        }
        filter
    }

    /// Whether `path` may match; costs about one step per 16 bytes compared.
    fn admits(&self, path: &str, budget: &mut StepBudget) -> Result<bool, Exhausted> {
        if !path.starts_with(&self.prefix) {
            return Ok(false);
        }
        let Some(middle_end) = path.len().checked_sub(self.suffix.len()) else {
            return Ok(false);
        };
        if middle_end < self.prefix.len() || !path.ends_with(&self.suffix) {
            return Ok(false);
        }
        let mut from = self.prefix.len();
        for text in &self.inner {
            let window = path.get(from..middle_end).unwrap_or_default();
            spend(budget, window.len() as u64 / 16 + 1)?;
            match window.find(text.as_str()) {
                Some(at) => from += at + text.len(),
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

fn spend(budget: &mut StepBudget, steps: u64) -> Result<(), Exhausted> {
    match budget.left.checked_sub(steps) {
        Some(left) => {
            budget.left = left;
            Ok(())
        }
        None => {
            budget.left = 0;
            Err(Exhausted)
        }
    }
}

impl SourcePattern {
    /// Compiles a `source`. The error is a sentence fit to follow the field name.
    pub(crate) fn parse(source: &str, limits: &RulesLimits) -> Result<Self, String> {
        // Vercel refuses at deploy a source that is not itself a valid JavaScript regex.
        JsRegex::is_valid_syntax(source, limits.max_regex_nesting)
            .map_err(|reason| format!("is not a valid JavaScript regular expression: {reason}"))?;
        let tokens = parse(source)?;
        let (regex_source, keys) = tokens_to_regex(&tokens);
        let regex = JsRegex::new(
            &regex_source,
            limits.max_regex_nesting,
            limits.max_regex_insts,
        )
        .map_err(|reason| format!("compiles to an invalid regular expression: {reason}"))?;
        Ok(Self {
            regex,
            keys,
            prefilter: Prefilter::of(&tokens),
            regex_source,
        })
    }

    /// A low-level route's regex (`^/(.*)\\/$`), as Vercel's `cleanUrls` and `trailingSlash`
    /// generate them: every group is an unnamed parameter.
    pub(crate) fn from_route_regex(
        regex_source: &str,
        limits: &RulesLimits,
    ) -> Result<Self, String> {
        let regex = JsRegex::new(
            regex_source,
            limits.max_regex_nesting,
            limits.max_regex_insts,
        )?;
        Ok(Self {
            keys: vec![None; regex.groups()],
            regex,
            prefilter: Prefilter::default(),
            regex_source: regex_source.to_owned(),
        })
    }

    /// Per parameter, its name (`None` for an unnamed one), in order.
    pub(crate) fn keys(&self) -> &[Option<String>] {
        &self.keys
    }

    /// Number of parameters (named and unnamed), i.e. the highest valid `$n`.
    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Matches the whole `path` (raw, still percent-encoded) and returns one value per parameter.
    pub(crate) fn captures<'p>(
        &self,
        path: &'p str,
        budget: &mut StepBudget,
    ) -> Result<Option<Captures<'p>>, Exhausted> {
        if !self.prefilter.admits(path, budget)? {
            return Ok(None);
        }
        let Some(found) = self.regex.captures(path, budget)? else {
            return Ok(None);
        };
        Ok(Some(
            (1..=self.keys.len())
                .map(|group| found.get(path, group))
                .collect(),
        ))
    }
}

/// Escapes `text` so that, as a `source`, it matches exactly itself.
pub fn escape_source_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            ':' | '*'
                | '+'
                | '?'
                | '('
                | ')'
                | '{'
                | '}'
                | '\\'
                | '['
                | ']'
                | '.'
                | '|'
                | '^'
                | '$'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// path-to-regexp's `escapeString`.
pub(crate) fn escape_string(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '.' | '+'
                | '*'
                | '?'
                | '='
                | '^'
                | '!'
                | ':'
                | '$'
                | '{'
                | '}'
                | '('
                | ')'
                | '['
                | ']'
                | '|'
                | '/'
                | '\\'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lexeme {
    Open,
    Close,
    Pattern(String),
    Name(String),
    Char(char),
    Escaped(char),
    Modifier(char),
    End,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// path-to-regexp's `lexer`. Errors carry its messages.
fn lex(source: &str) -> Result<Vec<(Lexeme, usize)>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexemes = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '*' | '+' | '?' => {
                lexemes.push((Lexeme::Modifier(c), i));
                i += 1;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err(format!("ends with a lone '\\' at character {i}"));
                };
                lexemes.push((Lexeme::Escaped(escaped), i));
                i += 2;
            }
            '{' => {
                lexemes.push((Lexeme::Open, i));
                i += 1;
            }
            '}' => {
                lexemes.push((Lexeme::Close, i));
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
                lexemes.push((Lexeme::Name(name.clone()), i));
                i += 1 + name.chars().count();
            }
            '(' => {
                let start = i;
                let mut count = 1usize;
                let mut pattern = String::new();
                let mut j = i + 1;
                if chars.get(j) == Some(&'?') {
                    return Err(format!(
                        "has a pattern starting with '?' at character {j}; wrap it: ((?:…))"
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
                        count -= 1;
                        if count == 0 {
                            j += 1;
                            break;
                        }
                    } else if p == '(' {
                        count += 1;
                        if chars.get(j + 1) != Some(&'?') {
                            return Err(format!(
                                "has a capturing group inside a pattern at character {j}; \
                                 use (?:…)"
                            ));
                        }
                    }
                    pattern.push(p);
                    j += 1;
                }
                if count != 0 {
                    return Err(format!("has an unbalanced pattern at character {start}"));
                }
                if pattern.is_empty() {
                    return Err(format!("has a missing pattern at character {start}"));
                }
                lexemes.push((Lexeme::Pattern(pattern), start));
                i = j;
            }
            _ => {
                lexemes.push((Lexeme::Char(c), i));
                i += 1;
            }
        }
    }
    lexemes.push((Lexeme::End, i));
    Ok(lexemes)
}

/// A parameter token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// The parameter's name; `None` for an unnamed `(regex)`. A `{…}` group with neither a name
    /// nor a pattern has an empty `pattern` (it captures nothing).
    pub(crate) name: Option<String>,
    pub(crate) prefix: String,
    pub(crate) suffix: String,
    pub(crate) pattern: String,
    pub(crate) modifier: Option<char>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Text(String),
    Key(Key),
}

/// The default pattern of a parameter with delimiter `/`: one non-empty segment.
const DEFAULT_PATTERN: &str = "[^\\/]+?";

/// path-to-regexp's `parse` with `prefixes: "./"` and `delimiter: "/"`.
pub(crate) fn parse(source: &str) -> Result<Vec<Token>, String> {
    let lexemes = lex(source)?;
    let mut tokens = Vec::new();
    let mut path = String::new();
    let mut i = 0;
    let try_char = |i: &mut usize| match lexemes.get(*i) {
        Some((Lexeme::Char(c), _)) => {
            *i += 1;
            Some(*c)
        }
        _ => None,
    };
    let try_escaped = |i: &mut usize| match lexemes.get(*i) {
        Some((Lexeme::Escaped(c), _)) => {
            *i += 1;
            Some(*c)
        }
        _ => None,
    };
    let try_name = |i: &mut usize| match lexemes.get(*i) {
        Some((Lexeme::Name(name), _)) => {
            *i += 1;
            Some(name.clone())
        }
        _ => None,
    };
    let try_pattern = |i: &mut usize| match lexemes.get(*i) {
        Some((Lexeme::Pattern(pattern), _)) => {
            *i += 1;
            Some(pattern.clone())
        }
        _ => None,
    };
    let try_modifier = |i: &mut usize| match lexemes.get(*i) {
        Some((Lexeme::Modifier(m), _)) => {
            *i += 1;
            Some(*m)
        }
        _ => None,
    };
    let consume_text = |i: &mut usize| {
        let mut text = String::new();
        while let Some(c) = try_char(i).or_else(|| try_escaped(i)) {
            text.push(c);
        }
        text
    };
    while i < lexemes.len() {
        let char_before = try_char(&mut i);
        let name = try_name(&mut i);
        let pattern = try_pattern(&mut i);
        if name.is_some() || pattern.is_some() {
            let mut prefix = String::new();
            match char_before {
                Some(c @ ('.' | '/')) => prefix.push(c),
                Some(c) => path.push(c),
                None => {}
            }
            if !path.is_empty() {
                tokens.push(Token::Text(core::mem::take(&mut path)));
            }
            tokens.push(Token::Key(Key {
                name,
                prefix,
                suffix: String::new(),
                pattern: pattern.unwrap_or_else(|| DEFAULT_PATTERN.to_owned()),
                modifier: try_modifier(&mut i),
            }));
            continue;
        }
        if let Some(c) = char_before.or_else(|| try_escaped(&mut i)) {
            path.push(c);
            continue;
        }
        if !path.is_empty() {
            tokens.push(Token::Text(core::mem::take(&mut path)));
        }
        if let Some((Lexeme::Open, _)) = lexemes.get(i) {
            i += 1;
            let prefix = consume_text(&mut i);
            let name = try_name(&mut i);
            let pattern = try_pattern(&mut i);
            let suffix = consume_text(&mut i);
            match lexemes.get(i) {
                Some((Lexeme::Close, _)) => i += 1,
                Some((Lexeme::End, _)) | None => {
                    return Err("has a '{' group that is not closed by '}'".to_owned());
                }
                Some((found, at)) => {
                    return Err(format!(
                        "has {} at character {at} where '}}' was expected",
                        describe(found)
                    ));
                }
            }
            let pattern = match (&name, pattern) {
                (_, Some(pattern)) => pattern,
                (Some(_), None) => DEFAULT_PATTERN.to_owned(),
                (None, None) => String::new(),
            };
            tokens.push(Token::Key(Key {
                name,
                prefix,
                suffix,
                pattern,
                modifier: try_modifier(&mut i),
            }));
            continue;
        }
        match lexemes.get(i) {
            Some((Lexeme::End, _)) => i += 1,
            Some((Lexeme::Modifier(m), at)) => {
                return Err(format!(
                    "has '{m}' at character {at} that follows no parameter \
                     (use :name{m}, or escape it as '\\{m}')"
                ));
            }
            Some((found, at)) => {
                return Err(format!(
                    "has an unexpected {} at character {at}",
                    describe(found)
                ));
            }
            None => break,
        }
    }
    Ok(tokens)
}

fn describe(lexeme: &Lexeme) -> String {
    match lexeme {
        Lexeme::Open => "'{'".to_owned(),
        Lexeme::Close => "'}' without a matching '{'".to_owned(),
        Lexeme::Pattern(p) => format!("pattern ({p})"),
        Lexeme::Name(n) => format!("parameter :{n}"),
        Lexeme::Char(c) | Lexeme::Escaped(c) => format!("{c:?}"),
        Lexeme::Modifier(m) => format!("'{m}'"),
        Lexeme::End => "end".to_owned(),
    }
}

/// path-to-regexp's `tokensToRegexp` with `strict`, `sensitive`, `start` and `end`: the
/// expression's source and, per capture group, the parameter's name.
pub(crate) fn tokens_to_regex(tokens: &[Token]) -> (String, Vec<Option<String>>) {
    let mut route = String::from("^");
    let mut keys = Vec::new();
    for token in tokens {
        match token {
            Token::Text(text) => route.push_str(&escape_string(text)),
            Token::Key(key) => {
                let prefix = escape_string(&key.prefix);
                let suffix = escape_string(&key.suffix);
                let modifier = key.modifier.map(String::from).unwrap_or_default();
                let pattern = &key.pattern;
                if pattern.is_empty() {
                    route.push_str(&format!("(?:{prefix}{suffix}){modifier}"));
                    continue;
                }
                keys.push(key.name.clone());
                if prefix.is_empty() && suffix.is_empty() {
                    route.push_str(&format!("({pattern}){modifier}"));
                } else if matches!(key.modifier, Some('+' | '*')) {
                    let optional = if key.modifier == Some('*') { "?" } else { "" };
                    route.push_str(&format!(
                        "(?:{prefix}((?:{pattern})(?:{suffix}{prefix}(?:{pattern}))*){suffix}){optional}"
                    ));
                } else {
                    route.push_str(&format!("(?:{prefix}({pattern}){suffix}){modifier}"));
                }
            }
        }
    }
    route.push('$');
    (route, keys)
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
        let mut budget = StepBudget { left: 1_000_000 };
        compile(source)
            .captures(path, &mut budget)
            .unwrap()
            .map(|found| found.into_iter().map(|v| v.map(str::to_owned)).collect())
    }

    fn some(values: &[&str]) -> Option<Vec<Option<String>>> {
        Some(values.iter().map(|v| Some((*v).to_owned())).collect())
    }

    #[test]
    fn sources_compile_to_path_to_regexp_6_1_0_expressions() {
        for (source, expected) in [
            ("/about", "^\\/about$"),
            ("/blog/:slug", "^\\/blog(?:\\/([^\\/]+?))$"),
            (
                "/docs/:path*",
                "^\\/docs(?:\\/((?:[^\\/]+?)(?:\\/(?:[^\\/]+?))*))?$",
            ),
            ("/a-:x+", "^\\/a-([^\\/]+?)+$"),
            ("/file{.:ext}?", "^\\/file(?:\\.([^\\/]+?))?$"),
            ("/:path((?!uk/).*)", "^(?:\\/((?!uk/).*))$"),
            ("/old{-page}?", "^\\/old(?:-page)?$"),
        ] {
            assert_eq!(compile(source).regex_source, expected, "{source}");
        }
    }

    #[test]
    fn literal_sources_match_only_themselves_case_sensitively_and_strictly() {
        assert_eq!(captures("/about", "/about"), some(&[]));
        assert_eq!(captures("/about", "/About"), None);
        assert_eq!(captures("/about", "/about/"), None);
        assert_eq!(captures("/a.b", "/aXb"), None, "'.' is literal");
    }

    #[test]
    fn repeated_parameters_without_a_prefix_capture_the_last_iteration_as_in_6_1_0() {
        assert_eq!(captures("/a-:x+", "/a-bcd"), some(&["d"]));
        assert_eq!(captures("/docs/:path+", "/docs/a/b"), some(&["a/b"]));
    }

    #[test]
    fn look_ahead_in_a_parameter_pattern() {
        assert_eq!(captures("/:path((?!uk/).*)", "/fr/a"), some(&["fr/a"]));
        assert_eq!(captures("/:path((?!uk/).*)", "/uk/a"), None);
    }

    #[test]
    fn prefilters_reject_without_running_the_expression() {
        let pattern = compile("/blog/:y(\\d+)/posts/:slug.html");
        let mut budget = StepBudget { left: 1_000 };
        let long = format!("/blog/1/x/{}", "a".repeat(100_000));
        assert_eq!(pattern.captures(&long, &mut budget), Ok(None));
        assert!(budget.left > 990, "{}", budget.left);
    }

    #[test]
    fn escaped_specials_are_literal() {
        assert_eq!(captures("/a\\:b\\(c\\)\\*", "/a:b(c)*"), some(&[]));
        let literal = "/x:y/(z)*+?{w}";
        assert_eq!(
            captures(&escape_source_literal(literal), literal),
            some(&[])
        );
    }

    #[test]
    fn malformed_sources_are_rejected_with_a_reason() {
        let limits = RulesLimits::default();
        for (source, needle) in [
            ("/conf/*", "follows no parameter"),
            ("/a/:", "without a parameter name"),
            ("/a/(", "not a valid JavaScript regular expression"),
            ("/a/(x", "not a valid JavaScript regular expression"),
            ("/a/()", "missing pattern"),
            ("/a/((x))", "capturing group"),
            ("/a/(?:x)", "starting with '?'"),
            ("/a/{x", "not closed"),
            ("/a/x}", "without a matching"),
            ("/a\\", "not a valid JavaScript regular expression"),
            ("/:id([)", "not a valid JavaScript regular expression"),
            ("/a/**", "not a valid JavaScript regular expression"),
        ] {
            match SourcePattern::parse(source, &limits) {
                Ok(_) => panic!("{source:?} should be rejected"),
                Err(error) => assert!(error.contains(needle), "{source:?}: {error}"),
            }
        }
    }
}
