//! JavaScript regular expressions, as Vercel evaluates `vercel.json` patterns: the `source`
//! regex path-to-regexp builds, custom parameter patterns like `:path((?!uk/).*)`, and
//! `has`/`missing` values. No flags (case-sensitive, `^`/`$` at the ends of the input, `.` stops
//! at line terminators); look-ahead, look-behind and back-references included.
//!
//! A small backtracking engine of its own rather than `regex-lite` (no look-around) or
//! `fancy-regex` (several hundred KB more wasm with `regex-automata`): it follows JavaScript
//! where the Rust engines differ (`\d`/`\w`/`\b` are ASCII, a quantified group's captures are
//! cleared at each iteration, Annex B syntax such as a literal `{` or `]`), and it bounds its
//! cost by counting steps against a [`StepBudget`] shared by all patterns of one request, so a
//! pattern that backtracks badly stops at the budget instead of burning the Worker's CPU.
//! BENCHMARKS.md has the numbers behind the choice.

mod class;
mod compile;
mod exec;
mod parse;

use compile::Program;
pub(crate) use exec::Exhausted;

/// Steps left for one request's evaluation: each instruction executed, and each character a
/// loop scans, costs one.
#[derive(Debug)]
pub(crate) struct StepBudget {
    pub(crate) left: u64,
}

/// A compiled JavaScript regular expression.
#[derive(Debug, Clone)]
pub(crate) struct JsRegex {
    program: Program,
    groups: usize,
    names: Vec<(String, usize)>,
}

/// Capture spans of one match, group 0 (the whole match) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Captures {
    slots: Vec<usize>,
}

impl Captures {
    /// The byte span of group `group` (0: the whole match), if it took part.
    pub(crate) fn span(&self, group: usize) -> Option<(usize, usize)> {
        let start = *self.slots.get(2 * group)?;
        let end = *self.slots.get(2 * group + 1)?;
        (start != usize::MAX && end != usize::MAX && start <= end).then_some((start, end))
    }

    /// The text of group `group` in `hay` (the string that was searched).
    pub(crate) fn get<'h>(&self, hay: &'h str, group: usize) -> Option<&'h str> {
        let (start, end) = self.span(group)?;
        hay.get(start..end)
    }
}

impl JsRegex {
    /// Compiles `pattern` (the text between the slashes of a JavaScript regex literal, without
    /// flags). Refused: what V8 refuses, groups nested deeper than `max_nesting`, and patterns
    /// whose program would exceed `max_insts` instructions (`(?:(?:ab){1000}){1000}`). The error is
    /// a sentence fit to follow "… is not a valid regular expression: ".
    pub(crate) fn new(pattern: &str, max_nesting: u32, max_insts: usize) -> Result<Self, String> {
        let parsed = parse::parse(pattern, max_nesting)?;
        let program = compile::compile(&parsed, max_insts)?;
        Ok(Self {
            program,
            groups: parsed.groups,
            names: parsed.names,
        })
    }

    /// Whether `pattern` is valid JavaScript regex syntax (what `new RegExp(pattern)` accepts),
    /// with groups nested at most `max_nesting` deep (the parser recurses per level).
    pub(crate) fn is_valid_syntax(pattern: &str, max_nesting: u32) -> Result<(), String> {
        parse::parse(pattern, max_nesting).map(|_| ())
    }

    /// Number of capture groups.
    pub(crate) fn groups(&self) -> usize {
        self.groups
    }

    /// `(name, group)` of the named groups.
    pub(crate) fn names(&self) -> &[(String, usize)] {
        &self.names
    }

    /// The leftmost match in `hay`, as `RegExp.prototype.exec` finds it.
    pub(crate) fn captures(
        &self,
        hay: &str,
        budget: &mut StepBudget,
    ) -> Result<Option<Captures>, Exhausted> {
        let machine = exec::Machine::new(&self.program, hay, &mut budget.left);
        Ok(machine.search()?.map(|slots| Captures { slots }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(pattern: &str, hay: &str) -> Option<Vec<Option<String>>> {
        let regex =
            JsRegex::new(pattern, 64, 100_000).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        let mut budget = StepBudget { left: 1_000_000 };
        let found = regex.captures(hay, &mut budget).unwrap()?;
        Some(
            (0..=regex.groups())
                .map(|g| found.get(hay, g).map(str::to_owned))
                .collect(),
        )
    }

    fn some(values: &[Option<&str>]) -> Option<Vec<Option<String>>> {
        Some(values.iter().map(|v| v.map(str::to_owned)).collect())
    }

    #[test]
    fn matches_like_javascript() {
        assert_eq!(
            exec("^/a/([^/]+?)$", "/a/bc"),
            some(&[Some("/a/bc"), Some("bc")])
        );
        assert_eq!(exec("^/a/([^/]+?)$", "/a/b/c"), None);
        assert_eq!(exec("b+", "abbbc"), some(&[Some("bbb")]));
        assert_eq!(exec("b+?", "abbbc"), some(&[Some("b")]));
        assert_eq!(
            exec("(a|ab)(c|bcd)(d*)", "abcd"),
            some(&[Some("abcd"), Some("a"), Some("bcd"), Some("")])
        );
        // 6.1.0's repeated parameter: the last iteration's capture.
        assert_eq!(
            exec("^\\/a-([^\\/]+?)+$", "/a-bcd"),
            some(&[Some("/a-bcd"), Some("d")])
        );
        // Captures inside a quantified group are cleared at each iteration.
        assert_eq!(exec("(?:(a)|b)+", "ab"), some(&[Some("ab"), None]));
        assert_eq!(
            exec("(z)((a+)?(b+)?(c))*", "zaacbbbcac"),
            some(&[
                Some("zaacbbbcac"),
                Some("z"),
                Some("ac"),
                Some("a"),
                None,
                Some("c")
            ])
        );
        // An empty iteration beyond the minimum fails.
        assert_eq!(exec("(a*)*", "b"), some(&[Some(""), None]));
        assert_eq!(exec("(a*)+", "b"), some(&[Some(""), Some("")]));
    }

    #[test]
    fn look_arounds_and_back_references() {
        assert_eq!(
            exec("^/((?!uk/).*)$", "/fr/x"),
            some(&[Some("/fr/x"), Some("fr/x")])
        );
        assert_eq!(exec("^/((?!uk/).*)$", "/uk/x"), None);
        assert_eq!(
            exec("^/((?!uk/).*)$", "/uk"),
            some(&[Some("/uk"), Some("uk")])
        );
        assert_eq!(
            exec("(?=(a+))a*b\\1", "baaabac"),
            some(&[Some("aba"), Some("a")])
        );
        assert_eq!(exec("(?<=\\$)\\d+", "cost $42"), some(&[Some("42")]));
        assert_eq!(exec("(?<!\\$)\\b\\d+", "$4 42"), some(&[Some("42")]));
        assert_eq!(
            exec("(?<=(\\d+)(\\d+))$", "1053"),
            some(&[Some(""), Some("1"), Some("053")])
        );
        assert_eq!(exec("(a)\\1", "aa"), some(&[Some("aa"), Some("a")]));
        assert_eq!(exec("\\1(a)", "aa"), some(&[Some("a"), Some("a")]));
        assert_eq!(exec("(?<x>a)\\k<x>", "xaa"), some(&[Some("aa"), Some("a")]));
    }

    #[test]
    fn annex_b_syntax_is_accepted_and_invalid_syntax_refused() {
        assert_eq!(exec("a{", "a{"), some(&[Some("a{")]));
        assert_eq!(exec("]}", "]}"), some(&[Some("]}")]));
        assert_eq!(exec("\\c1", "\\c1"), some(&[Some("\\c1")]));
        assert_eq!(exec("\\8", "8"), some(&[Some("8")]));
        assert_eq!(exec("\\101", "A"), some(&[Some("A")]));
        assert_eq!(exec("[\\d-z]", "-"), some(&[Some("-")]));
        assert_eq!(exec("[^]", "\n"), some(&[Some("\n")]));
        assert_eq!(exec("[]", "a"), None);
        assert_eq!(exec("\\d\\w\\s", "1é "), None, "\\w is ASCII");
        assert_eq!(exec(".", "\n"), None);
        for invalid in [
            "(",
            ")",
            "[a",
            "a**",
            "*",
            "+a",
            "{1}",
            "a{2,1}",
            "(?<n>a)(?<n>b)",
            "\\",
            "(?i)a",
            "[z-a]",
            "^*",
            "(?<=a)+",
            "\\k<x>(?<y>.)",
        ] {
            assert!(
                JsRegex::is_valid_syntax(invalid, 64).is_err(),
                "{invalid:?} should be refused"
            );
        }
        for valid in [
            "a{1,", "x{,5}", "\\k", "(?=a)*", "\\cx", "[\\b]", "\\u{12}", "(?:)", "a|", "\\/",
        ] {
            assert!(
                JsRegex::is_valid_syntax(valid, 64).is_ok(),
                "{valid:?} should be accepted"
            );
        }
    }

    #[test]
    fn the_budget_stops_catastrophic_backtracking() {
        let regex = JsRegex::new("^(?:a+)+b$", 64, 100_000).unwrap();
        let hay = "a".repeat(40);
        let mut budget = StepBudget { left: 100_000 };
        assert_eq!(regex.captures(&hay, &mut budget), Err(Exhausted));
        assert_eq!(budget.left, 0);
        let mut budget = StepBudget { left: 100_000 };
        let fine = JsRegex::new("^/([^/]+?)$", 64, 100_000).unwrap();
        let long = format!("/{}", "x".repeat(10_000));
        assert!(fine.captures(&long, &mut budget).unwrap().is_some());
        assert!(
            100_000 - budget.left < 10_100,
            "one scan: {}",
            100_000 - budget.left
        );
    }

    #[test]
    fn program_size_is_bounded() {
        assert!(JsRegex::new("(?:(?:ab){1000}){1000}", 64, 100_000).is_err());
        assert!(JsRegex::new(&"(".repeat(100), 64, 100_000).is_err());
    }
}
