//! Parsing JavaScript regular expression syntax (ECMAScript 2024, no flags, so the Annex B
//! grammar of web browsers and Node: `]`, `{` and `}` may stand for themselves, `\c` without a
//! letter is a backslash and a `c`, `\8` is an `8`, `\1` without a first group is an octal
//! escape, …). A pattern V8 refuses is refused here with a similar reason, so a `source` that
//! Vercel would reject at deploy fails the load instead.

use super::class::{Class, ClassKind};

/// The syntax tree of one pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Empty,
    Char(char),
    /// `.`: anything but a line terminator.
    Dot,
    Class(Class),
    /// `^` (no `m` flag: the start of the input).
    Start,
    /// `$` (the end of the input).
    End,
    /// `\b` (`true`) or `\B` (`false`), with JavaScript's ASCII word characters.
    WordBoundary(bool),
    /// A capture group (1-based index) or a non-capturing one (`None`).
    Group(Box<Node>, Option<usize>),
    Look {
        behind: bool,
        negated: bool,
        node: Box<Node>,
    },
    /// Back-reference to a capture group (1-based).
    Backref(usize),
    Concat(Vec<Node>),
    Alternation(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        /// `None`: unbounded.
        max: Option<u32>,
        greedy: bool,
    },
}

/// A parsed pattern: the tree, its number of capture groups and their names.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) node: Node,
    pub(crate) groups: usize,
    /// `(name, group index)` of the named groups, in order.
    pub(crate) names: Vec<(String, usize)>,
}

/// Quantifier counts above this are clamped (V8 clamps at 2^31 − 1); the compiler's size limit
/// refuses what it cannot expand.
const MAX_COUNT: u32 = u32::MAX / 4;

pub(crate) fn parse(pattern: &str, max_nesting: u32) -> Result<Parsed, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let (groups, has_named) = count_groups(&chars);
    let mut parser = Parser {
        chars,
        at: 0,
        groups_total: groups,
        has_named,
        next_group: 0,
        names: Vec::new(),
        named_refs: Vec::new(),
        depth: 0,
        max_nesting,
    };
    let node = parser.disjunction()?;
    if parser.peek().is_some() {
        // Only a ')' stops the top-level disjunction early.
        return Err("has an unmatched ')'".to_owned());
    }
    for (name, _) in &parser.named_refs {
        if !parser.names.iter().any(|(n, _)| n == name) {
            return Err(format!("has an invalid named reference \\k<{name}>"));
        }
    }
    let names = parser.names.clone();
    let node = parser.resolve_named_refs(node);
    Ok(Parsed {
        node,
        groups,
        names,
    })
}

/// Counts capture groups (and whether any is named) before parsing, as `\10` means a
/// back-reference only when there are ten groups.
fn count_groups(chars: &[char]) -> (usize, bool) {
    let mut count = 0;
    let mut named = false;
    let mut in_class = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '(' if !in_class => {
                if chars.get(i + 1) != Some(&'?') {
                    count += 1;
                } else if chars.get(i + 2) == Some(&'<')
                    && !matches!(chars.get(i + 3), Some('=' | '!'))
                {
                    count += 1;
                    named = true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (count, named)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    groups_total: usize,
    has_named: bool,
    next_group: usize,
    names: Vec<(String, usize)>,
    /// Named back-references, resolved once every group is known (they may point forward):
    /// a placeholder index into this list is stored in the tree meanwhile.
    named_refs: Vec<(String, usize)>,
    depth: u32,
    max_nesting: u32,
}

/// Marks a [`Node::Backref`] whose index is a position in `named_refs`, not a group.
const NAMED_REF_BASE: usize = usize::MAX / 2;

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.at + offset).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn disjunction(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > self.max_nesting {
            return Err(format!(
                "nests groups deeper than {} levels",
                self.max_nesting
            ));
        }
        let mut alternatives = vec![self.alternative()?];
        while self.eat('|') {
            alternatives.push(self.alternative()?);
        }
        self.depth -= 1;
        Ok(if alternatives.len() == 1 {
            alternatives.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alternation(alternatives)
        })
    }

    fn alternative(&mut self) -> Result<Node, String> {
        let mut terms = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            terms.push(self.term()?);
        }
        Ok(match terms.len() {
            0 => Node::Empty,
            1 => terms.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(terms),
        })
    }

    fn term(&mut self) -> Result<Node, String> {
        let start = self.at;
        let (atom, quantifiable) = self.atom()?;
        let Some((min, max)) = self.quantifier()? else {
            return Ok(atom);
        };
        if !quantifiable {
            return Err(format!("has nothing to repeat at character {start}"));
        }
        let greedy = !self.eat('?');
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
            greedy,
        })
    }

    /// A quantifier at the current position, consumed; `None` when there is none.
    fn quantifier(&mut self) -> Result<Option<(u32, Option<u32>)>, String> {
        let found = match self.peek() {
            Some('*') => Some((0, None)),
            Some('+') => Some((1, None)),
            Some('?') => Some((0, Some(1))),
            Some('{') => {
                return match self.braced_quantifier() {
                    Some((end, min, max)) => {
                        if max.is_some_and(|max| max < min) {
                            return Err("has numbers out of order in a {} quantifier".to_owned());
                        }
                        self.at = end;
                        Ok(Some((min, max)))
                    }
                    None => Ok(None),
                };
            }
            _ => None,
        };
        if found.is_some() {
            self.at += 1;
        }
        Ok(found)
    }

    /// `{n}`, `{n,}` or `{n,m}` at the current position: (index after it, min, max).
    fn braced_quantifier(&self) -> Option<(usize, u32, Option<u32>)> {
        let mut i = self.at + 1;
        let number = |i: &mut usize| -> Option<u32> {
            let start = *i;
            let mut value: u64 = 0;
            while let Some(d) = self.chars.get(*i).and_then(|c| c.to_digit(10)) {
                value = (value * 10 + u64::from(d)).min(u64::from(MAX_COUNT));
                *i += 1;
            }
            (*i > start).then(|| u32::try_from(value).unwrap_or(MAX_COUNT))
        };
        let min = number(&mut i)?;
        let max = if self.chars.get(i) == Some(&',') {
            i += 1;
            if self.chars.get(i) == Some(&'}') {
                None
            } else {
                Some(number(&mut i)?)
            }
        } else {
            Some(min)
        };
        (self.chars.get(i) == Some(&'}')).then_some((i + 1, min, max))
    }

    /// One atom and whether a quantifier may follow it.
    fn atom(&mut self) -> Result<(Node, bool), String> {
        let start = self.at;
        let Some(c) = self.peek() else {
            return Ok((Node::Empty, false));
        };
        self.at += 1;
        let node = match c {
            '^' => return Ok((Node::Start, false)),
            '$' => return Ok((Node::End, false)),
            '.' => Node::Dot,
            '*' | '+' | '?' => return Err(format!("has nothing to repeat at character {start}")),
            '{' => {
                self.at = start;
                if self.braced_quantifier().is_some() {
                    return Err(format!("has nothing to repeat at character {start}"));
                }
                self.at = start + 1;
                Node::Char('{')
            }
            '(' => return self.group(start),
            '[' => Node::Class(self.class(start)?),
            '\\' => return self.atom_escape(start),
            c => Node::Char(c),
        };
        Ok((node, true))
    }

    fn group(&mut self, start: usize) -> Result<(Node, bool), String> {
        let (node, quantifiable) = if self.eat('?') {
            match self.peek() {
                Some(':') => {
                    self.at += 1;
                    (Node::Group(Box::new(self.disjunction()?), None), true)
                }
                Some(kind @ ('=' | '!')) => {
                    self.at += 1;
                    let body = self.disjunction()?;
                    // Annex B: a look-ahead may be quantified (a look-behind may not).
                    let look = Node::Look {
                        behind: false,
                        negated: kind == '!',
                        node: Box::new(body),
                    };
                    (look, true)
                }
                Some('<') if matches!(self.peek_at(1), Some('=' | '!')) => {
                    let negated = self.peek_at(1) == Some('!');
                    self.at += 2;
                    let body = self.disjunction()?;
                    let look = Node::Look {
                        behind: true,
                        negated,
                        node: Box::new(body),
                    };
                    (look, false)
                }
                Some('<') => {
                    self.at += 1;
                    let name = self.group_name()?;
                    if self.names.iter().any(|(n, _)| *n == name) {
                        return Err(format!("has a duplicate capture group name {name:?}"));
                    }
                    self.next_group += 1;
                    let index = self.next_group;
                    self.names.push((name, index));
                    (
                        Node::Group(Box::new(self.disjunction()?), Some(index)),
                        true,
                    )
                }
                _ => return Err(format!("has an invalid group at character {start}")),
            }
        } else {
            self.next_group += 1;
            let index = self.next_group;
            (
                Node::Group(Box::new(self.disjunction()?), Some(index)),
                true,
            )
        };
        if !self.eat(')') {
            return Err(format!("has an unterminated group at character {start}"));
        }
        Ok((node, quantifiable))
    }

    /// A group name after `(?<` or `\k<`, with its closing `>`.
    fn group_name(&mut self) -> Result<String, String> {
        let start = self.at;
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c == '>' {
                break;
            }
            let valid = if name.is_empty() {
                c == '$' || c == '_' || c.is_alphabetic()
            } else {
                c == '$' || c == '_' || c.is_alphanumeric()
            };
            if !valid {
                return Err(format!(
                    "has an invalid capture group name at character {start}"
                ));
            }
            name.push(c);
            self.at += 1;
        }
        if name.is_empty() || !self.eat('>') {
            return Err(format!(
                "has an invalid capture group name at character {start}"
            ));
        }
        Ok(name)
    }

    fn atom_escape(&mut self, start: usize) -> Result<(Node, bool), String> {
        let Some(c) = self.peek() else {
            return Err("ends with a lone '\\'".to_owned());
        };
        self.at += 1;
        let node = match c {
            'b' => return Ok((Node::WordBoundary(true), false)),
            'B' => return Ok((Node::WordBoundary(false), false)),
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => Node::Class(Class::escape(c)),
            '1'..='9' => {
                self.at -= 1;
                let digits_start = self.at;
                let mut value: usize = 0;
                while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
                    value = value.saturating_mul(10).saturating_add(d as usize);
                    self.at += 1;
                }
                if value <= self.groups_total {
                    Node::Backref(value)
                } else {
                    self.at = digits_start;
                    self.legacy_escape_after_backslash()
                }
            }
            'k' if self.has_named => {
                if !self.eat('<') {
                    return Err(format!(
                        "has an invalid named reference at character {start}"
                    ));
                }
                let name = self.group_name()?;
                self.named_refs.push((name, 0));
                Node::Backref(NAMED_REF_BASE + self.named_refs.len() - 1)
            }
            'c' => match self.peek() {
                Some(letter) if letter.is_ascii_alphabetic() => {
                    self.at += 1;
                    Node::Char(char::from((letter as u8) % 32))
                }
                // Annex B: `\c` not followed by a letter is a backslash, then `c` as itself.
                _ => {
                    self.at -= 1;
                    Node::Char('\\')
                }
            },
            _ => {
                self.at -= 1;
                self.character_escape(false)?
            }
        };
        Ok((node, true))
    }

    /// `\0`…`\7` octal (Annex B) or `\8`/`\9` as themselves; the `\` is already consumed.
    fn legacy_escape_after_backslash(&mut self) -> Node {
        let Some(first) = self.peek() else {
            return Node::Empty;
        };
        self.at += 1;
        match first.to_digit(8) {
            None => Node::Char(first),
            Some(d) => {
                let mut value = d;
                // Up to three octal digits, at most 0o377.
                let max_digits = if d <= 3 { 3 } else { 2 };
                let mut digits = 1;
                while digits < max_digits {
                    let Some(next) = self.peek().and_then(|c| c.to_digit(8)) else {
                        break;
                    };
                    value = value * 8 + next;
                    self.at += 1;
                    digits += 1;
                }
                Node::Char(char::from_u32(value).unwrap_or('\0'))
            }
        }
    }

    /// A CharacterEscape (the `\` consumed): control escapes, `\0`, hex and unicode escapes,
    /// Annex B octal, and identity escapes.
    fn character_escape(&mut self, in_class: bool) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err("ends with a lone '\\'".to_owned());
        };
        self.at += 1;
        let ch = match c {
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '0'..='9' => {
                self.at -= 1;
                return Ok(self.legacy_escape_after_backslash());
            }
            'x' => match self.hex(2) {
                Some(value) => char::from_u32(value).unwrap_or('x'),
                None => 'x',
            },
            'u' => match self.hex(4) {
                Some(high) if (0xD800..0xDC00).contains(&high) => {
                    // A surrogate pair written as two escapes is one character here.
                    let save = self.at;
                    let low = (self.eat('\\') && self.eat('u'))
                        .then(|| self.hex(4))
                        .flatten()
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    match low {
                        Some(low) => {
                            char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                                .unwrap_or('\u{FFFD}')
                        }
                        None => {
                            self.at = save;
                            // A lone surrogate: no Rust string holds one, so it never matches.
                            return Ok(Node::Class(Class::nothing()));
                        }
                    }
                }
                Some(value) => match char::from_u32(value) {
                    Some(c) => c,
                    None => return Ok(Node::Class(Class::nothing())),
                },
                None => 'u',
            },
            'k' if in_class && self.has_named => {
                return Err("has an invalid escape \\k in a character class".to_owned());
            }
            other => other,
        };
        Ok(Node::Char(ch))
    }

    fn hex(&mut self, digits: usize) -> Option<u32> {
        let mut value = 0;
        for offset in 0..digits {
            value = value * 16 + self.peek_at(offset)?.to_digit(16)?;
        }
        self.at += digits;
        Some(value)
    }

    fn class(&mut self, start: usize) -> Result<Class, String> {
        let negated = self.eat('^');
        let mut class = Class::empty();
        loop {
            let Some(c) = self.peek() else {
                return Err(format!(
                    "has an unterminated character class at character {start}"
                ));
            };
            if c == ']' {
                self.at += 1;
                break;
            }
            let first = self.class_atom()?;
            if self.peek() == Some('-') && !matches!(self.peek_at(1), Some(']') | None) {
                self.at += 1;
                let second = self.class_atom()?;
                match (&first, &second) {
                    (ClassAtom::Char(a), ClassAtom::Char(b)) => {
                        if a > b {
                            return Err(format!(
                                "has a range out of order in a character class at character {start}"
                            ));
                        }
                        class.add_range(*a, *b);
                    }
                    // Annex B: a range with a class escape at either end is the union of
                    // both ends and '-'.
                    _ => {
                        first.add_to(&mut class);
                        class.add_range('-', '-');
                        second.add_to(&mut class);
                    }
                }
            } else {
                first.add_to(&mut class);
            }
        }
        Ok(if negated { class.negated() } else { class })
    }

    fn class_atom(&mut self) -> Result<ClassAtom, String> {
        let Some(c) = self.peek() else {
            return Err("has an unterminated character class".to_owned());
        };
        self.at += 1;
        if c != '\\' {
            return Ok(ClassAtom::Char(c));
        }
        let Some(e) = self.peek() else {
            return Err("ends with a lone '\\'".to_owned());
        };
        self.at += 1;
        Ok(match e {
            'b' => ClassAtom::Char('\u{8}'),
            '-' => ClassAtom::Char('-'),
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => ClassAtom::Escape(Class::escape(e)),
            'c' => match self.peek() {
                // Annex B: digits and '_' are control letters inside a class.
                Some(letter) if letter.is_ascii_alphanumeric() || letter == '_' => {
                    self.at += 1;
                    ClassAtom::Char(char::from((letter as u8) % 32))
                }
                _ => {
                    self.at -= 1;
                    ClassAtom::Char('\\')
                }
            },
            _ => {
                self.at -= 1;
                match self.character_escape(true)? {
                    Node::Char(c) => ClassAtom::Char(c),
                    Node::Class(class) => ClassAtom::Escape(class),
                    _ => ClassAtom::Escape(Class::nothing()),
                }
            }
        })
    }

    fn resolve_named_refs(&self, node: Node) -> Node {
        let resolve = |node: Node| self.resolve_named_refs(node);
        match node {
            Node::Backref(index) if index >= NAMED_REF_BASE => {
                let group = self
                    .named_refs
                    .get(index - NAMED_REF_BASE)
                    .and_then(|(name, _)| self.names.iter().find(|(n, _)| n == name))
                    .map_or(0, |(_, group)| *group);
                Node::Backref(group)
            }
            Node::Group(inner, index) => Node::Group(Box::new(resolve(*inner)), index),
            Node::Look {
                behind,
                negated,
                node,
            } => Node::Look {
                behind,
                negated,
                node: Box::new(resolve(*node)),
            },
            Node::Concat(nodes) => Node::Concat(nodes.into_iter().map(resolve).collect()),
            Node::Alternation(nodes) => Node::Alternation(nodes.into_iter().map(resolve).collect()),
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => Node::Repeat {
                node: Box::new(resolve(*node)),
                min,
                max,
                greedy,
            },
            other => other,
        }
    }
}

enum ClassAtom {
    Char(char),
    Escape(Class),
}

impl ClassAtom {
    fn add_to(&self, class: &mut Class) {
        match self {
            ClassAtom::Char(c) => class.add_range(*c, *c),
            ClassAtom::Escape(escape) => class.add_class(escape),
        }
    }
}

impl Class {
    /// `\d`, `\D`, `\s`, `\S`, `\w`, `\W`.
    pub(crate) fn escape(c: char) -> Class {
        let base = match c.to_ascii_lowercase() {
            'd' => ClassKind::Digit,
            's' => ClassKind::Space,
            _ => ClassKind::Word,
        };
        let class = Class::of_kind(base);
        if c.is_ascii_uppercase() {
            class.negated()
        } else {
            class
        }
    }
}
