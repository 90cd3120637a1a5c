//! The syntax tree compiled to a program for the backtracking machine in `exec`.
//!
//! Two things keep matching cheap on long paths:
//! - a repetition of one character set (`[^/]+?`, `.*`, `\d+`) is one [`Inst::Loop`] that scans
//!   in a tight loop instead of one backtracking step per character;
//! - such a loop is made *possessive* (it never gives characters back) when nothing that can
//!   follow it starts with a character it matches: `[^/]+?` before `/` or the end, `.*` before
//!   the end. Giving characters back could not lead to another match there, so the result is
//!   the same; only the work is saved (PCRE calls this auto-possessification).

use super::class::{Class, ClassKind};
use super::parse::{Node, Parsed};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inst {
    Char(char),
    Class(usize),
    /// The character before the position (inside a look-behind, which matches backwards).
    CharBack(char),
    ClassBack(usize),
    /// Try `first`; when that fails, `second`.
    Split {
        first: usize,
        second: usize,
    },
    Jmp(usize),
    /// Record the position in a capture slot (`2 * group` start, `2 * group + 1` end).
    Save(usize),
    /// Forget the captures of slots `from..to` (JavaScript clears a quantified group's
    /// captures at each iteration).
    Reset {
        from: usize,
        to: usize,
    },
    /// Remember the position in a register, and fail unless the position moved since: an
    /// iteration beyond the minimum that matched the empty string fails, as in JavaScript.
    Mark(usize),
    Progress(usize),
    Start,
    End,
    WordBoundary(bool),
    Look {
        behind: bool,
        negated: bool,
        body: usize,
        next: usize,
    },
    /// The end of a look-around body: it matched.
    LookMatch,
    Backref {
        group: usize,
        backward: bool,
    },
    /// `min..=max` characters of a set, then `next`.
    Loop {
        class: usize,
        min: u32,
        max: Option<u32>,
        greedy: bool,
        possessive: bool,
        next: usize,
    },
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub(crate) insts: Vec<Inst>,
    pub(crate) classes: Vec<Class>,
    /// Capture slots: two per group, group 0 (the whole match) included.
    pub(crate) slots: usize,
    pub(crate) registers: usize,
    /// Starts with `^`: only a match at the start of the input is possible.
    pub(crate) anchored: bool,
}

pub(crate) fn compile(parsed: &Parsed, max_insts: usize) -> Result<Program, String> {
    let mut compiler = Compiler {
        insts: Vec::new(),
        classes: Vec::new(),
        registers: 0,
        max_insts,
    };
    compiler.push(Inst::Save(0))?;
    compiler.node(&parsed.node, false)?;
    compiler.push(Inst::Save(1))?;
    compiler.push(Inst::Match)?;
    let mut program = Program {
        insts: compiler.insts,
        classes: compiler.classes,
        slots: 2 * (parsed.groups + 1),
        registers: compiler.registers,
        anchored: starts_anchored(&parsed.node),
    };
    make_possessive(&mut program);
    Ok(program)
}

fn starts_anchored(node: &Node) -> bool {
    match node {
        Node::Start => true,
        Node::Concat(nodes) => nodes.first().is_some_and(starts_anchored),
        Node::Group(inner, _) => starts_anchored(inner),
        Node::Alternation(nodes) => !nodes.is_empty() && nodes.iter().all(starts_anchored),
        _ => false,
    }
}

struct Compiler {
    insts: Vec<Inst>,
    classes: Vec<Class>,
    registers: usize,
    max_insts: usize,
}

impl Compiler {
    fn push(&mut self, inst: Inst) -> Result<usize, String> {
        if self.insts.len() >= self.max_insts {
            return Err(format!(
                "compiles to more than {} instructions; simplify it",
                self.max_insts
            ));
        }
        self.insts.push(inst);
        Ok(self.insts.len() - 1)
    }

    fn set(&mut self, at: usize, inst: Inst) {
        if let Some(slot) = self.insts.get_mut(at) {
            *slot = inst;
        }
    }

    fn class(&mut self, class: Class) -> usize {
        if let Some(i) = self.classes.iter().position(|c| *c == class) {
            return i;
        }
        self.classes.push(class);
        self.classes.len() - 1
    }

    fn node(&mut self, node: &Node, back: bool) -> Result<(), String> {
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.push(if back {
                    Inst::CharBack(*c)
                } else {
                    Inst::Char(*c)
                })?;
            }
            Node::Dot | Node::Class(_) => {
                let class = match node {
                    Node::Class(class) => class.clone(),
                    _ => Class::of_kind(ClassKind::Dot),
                };
                let index = self.class(class);
                self.push(if back {
                    Inst::ClassBack(index)
                } else {
                    Inst::Class(index)
                })?;
            }
            Node::Start => {
                self.push(Inst::Start)?;
            }
            Node::End => {
                self.push(Inst::End)?;
            }
            Node::WordBoundary(yes) => {
                self.push(Inst::WordBoundary(*yes))?;
            }
            Node::Group(inner, None) => self.node(inner, back)?,
            Node::Group(inner, Some(group)) => {
                let (open, close) = if back {
                    (2 * group + 1, 2 * group)
                } else {
                    (2 * group, 2 * group + 1)
                };
                self.push(Inst::Save(open))?;
                self.node(inner, back)?;
                self.push(Inst::Save(close))?;
            }
            Node::Look {
                behind,
                negated,
                node,
            } => {
                let at = self.push(Inst::Match)?;
                self.node(node, *behind)?;
                self.push(Inst::LookMatch)?;
                let next = self.insts.len();
                self.set(
                    at,
                    Inst::Look {
                        behind: *behind,
                        negated: *negated,
                        body: at + 1,
                        next,
                    },
                );
            }
            Node::Backref(group) => {
                self.push(Inst::Backref {
                    group: *group,
                    backward: back,
                })?;
            }
            Node::Concat(nodes) => {
                if back {
                    for node in nodes.iter().rev() {
                        self.node(node, back)?;
                    }
                } else {
                    for node in nodes {
                        self.node(node, back)?;
                    }
                }
            }
            Node::Alternation(nodes) => {
                let mut jumps_to_end = Vec::new();
                let count = nodes.len();
                for (i, alternative) in nodes.iter().enumerate() {
                    if i + 1 < count {
                        let split = self.push(Inst::Match)?;
                        self.node(alternative, back)?;
                        jumps_to_end.push(self.push(Inst::Match)?);
                        let second = self.insts.len();
                        self.set(
                            split,
                            Inst::Split {
                                first: split + 1,
                                second,
                            },
                        );
                    } else {
                        self.node(alternative, back)?;
                    }
                }
                let end = self.insts.len();
                for jump in jumps_to_end {
                    self.set(jump, Inst::Jmp(end));
                }
            }
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => self.repeat(node, *min, *max, *greedy, back)?,
        }
        Ok(())
    }

    fn repeat(
        &mut self,
        node: &Node,
        min: u32,
        max: Option<u32>,
        greedy: bool,
        back: bool,
    ) -> Result<(), String> {
        if max == Some(0) {
            return Ok(());
        }
        if !back && let Some(class) = single_char_class(node) {
            let class = self.class(class);
            let at = self.push(Inst::Match)?;
            self.set(
                at,
                Inst::Loop {
                    class,
                    min,
                    max,
                    greedy,
                    possessive: false,
                    next: at + 1,
                },
            );
            return Ok(());
        }
        let groups = group_range(node);
        let nullable = can_match_empty(node);
        let budget_left = self.max_insts.saturating_sub(self.insts.len());
        let copies = u64::from(min) + u64::from(max.map_or(1, |max| max - min));
        if copies > budget_left as u64 {
            return Err(format!(
                "compiles to more than {} instructions; simplify it",
                self.max_insts
            ));
        }
        for _ in 0..min {
            self.iteration(node, groups, None, back)?;
        }
        match max {
            Some(max) if max == min => {}
            Some(max) => {
                // Each optional iteration: `Split(body, end)`, all jumping to one end.
                let mut splits = Vec::new();
                for _ in min..max {
                    splits.push(self.push(Inst::Match)?);
                    let register = nullable.then(|| self.register());
                    self.iteration(node, groups, register, back)?;
                }
                let end = self.insts.len();
                for split in splits {
                    self.set(split, split_to(split + 1, end, greedy));
                }
            }
            None => {
                let split = self.push(Inst::Match)?;
                let register = nullable.then(|| self.register());
                self.iteration(node, groups, register, back)?;
                self.push(Inst::Jmp(split))?;
                let end = self.insts.len();
                self.set(split, split_to(split + 1, end, greedy));
            }
        }
        Ok(())
    }

    fn register(&mut self) -> usize {
        self.registers += 1;
        self.registers - 1
    }

    /// One iteration of a repeated node: its groups cleared first, and (for an optional
    /// iteration of a node that can match the empty string) required to make progress.
    fn iteration(
        &mut self,
        node: &Node,
        groups: Option<(usize, usize)>,
        progress_register: Option<usize>,
        back: bool,
    ) -> Result<(), String> {
        if let Some((first, last)) = groups {
            self.push(Inst::Reset {
                from: 2 * first,
                to: 2 * last + 2,
            })?;
        }
        if let Some(register) = progress_register {
            self.push(Inst::Mark(register))?;
        }
        self.node(node, back)?;
        if let Some(register) = progress_register {
            self.push(Inst::Progress(register))?;
        }
        Ok(())
    }
}

fn split_to(body: usize, end: usize, greedy: bool) -> Inst {
    if greedy {
        Inst::Split {
            first: body,
            second: end,
        }
    } else {
        Inst::Split {
            first: end,
            second: body,
        }
    }
}

/// The set a node matches when it is exactly one character.
fn single_char_class(node: &Node) -> Option<Class> {
    match node {
        Node::Char(c) => Some(Class::single(*c)),
        Node::Dot => Some(Class::of_kind(ClassKind::Dot)),
        Node::Class(class) => Some(class.clone()),
        Node::Group(inner, None) => single_char_class(inner),
        _ => None,
    }
}

/// The first and last capture group inside `node`, if any.
fn group_range(node: &Node) -> Option<(usize, usize)> {
    let mut range: Option<(usize, usize)> = None;
    let mut add = |group: usize| {
        range = Some(match range {
            None => (group, group),
            Some((lo, hi)) => (lo.min(group), hi.max(group)),
        });
    };
    fn walk(node: &Node, add: &mut dyn FnMut(usize)) {
        match node {
            Node::Group(inner, index) => {
                if let Some(index) = index {
                    add(*index);
                }
                walk(inner, add);
            }
            Node::Look { node, .. } | Node::Repeat { node, .. } => walk(node, add),
            Node::Concat(nodes) | Node::Alternation(nodes) => {
                for node in nodes {
                    walk(node, add);
                }
            }
            _ => {}
        }
    }
    walk(node, &mut add);
    range
}

fn can_match_empty(node: &Node) -> bool {
    match node {
        Node::Char(_) | Node::Dot | Node::Class(_) => false,
        Node::Group(inner, _) => can_match_empty(inner),
        Node::Concat(nodes) => nodes.iter().all(can_match_empty),
        Node::Alternation(nodes) => nodes.iter().any(can_match_empty),
        Node::Repeat { node, min, .. } => *min == 0 || can_match_empty(node),
        // Assertions, look-arounds, back-references (to an empty capture) and Empty.
        _ => true,
    }
}

/// Marks every [`Inst::Loop`] possessive whose set is disjoint from whatever can follow it.
fn make_possessive(program: &mut Program) {
    let mut decisions = Vec::new();
    for (at, inst) in program.insts.iter().enumerate() {
        if let Inst::Loop { class, next, .. } = inst
            && let (Some(own), Some(following)) =
                (program.classes.get(*class), first_chars(program, *next))
            && !own.intersects(&following)
        {
            decisions.push(at);
        }
    }
    for at in decisions {
        if let Some(Inst::Loop { possessive, .. }) = program.insts.get_mut(at) {
            *possessive = true;
        }
    }
}

/// The characters a match continuing at `pc` can consume first, or `None` when it might
/// succeed without consuming one (other than at the end of the input) or the analysis cannot
/// tell (assertions, look-arounds, back-references).
fn first_chars(program: &Program, pc: usize) -> Option<Class> {
    let mut set = Class::empty();
    let mut seen = vec![false; program.insts.len()];
    let mut todo = vec![pc];
    while let Some(pc) = todo.pop() {
        match seen.get_mut(pc) {
            Some(true) => continue,
            Some(seen) => *seen = true,
            None => return None,
        }
        match program.insts.get(pc)? {
            Inst::Char(c) => set.add_range(*c, *c),
            Inst::Class(class) => set.add_class(program.classes.get(*class)?),
            Inst::Loop {
                class, min, next, ..
            } => {
                set.add_class(program.classes.get(*class)?);
                if *min == 0 {
                    todo.push(*next);
                }
            }
            Inst::Split { first, second } => {
                todo.push(*first);
                todo.push(*second);
            }
            Inst::Jmp(to) => todo.push(*to),
            Inst::Save(_) | Inst::Reset { .. } | Inst::Mark(_) | Inst::Progress(_) => {
                todo.push(pc + 1);
            }
            // `$` succeeds only where no character follows.
            Inst::End => {}
            _ => return None,
        }
    }
    Some(set)
}
