//! A backtracking machine with JavaScript's semantics (leftmost, first alternative wins,
//! captures of the last iteration), on UTF-8 input, with a step budget: every instruction and
//! every character a loop scans costs one step, and a search that would exceed the budget stops
//! with [`Exhausted`] instead of running on.

use super::compile::{Inst, Program};

/// The step budget ran out before the search finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted;

/// "No position" in a capture slot.
const NONE: usize = usize::MAX;

/// Most ways back the machine keeps at once (about 5 MB): a search that needs more ends as if
/// the step budget ran out, so memory stays bounded as well as time.
const MAX_FRAMES: usize = 1 << 17;

enum Frame {
    /// Resume at `pc`, `pos`.
    Alt { pc: usize, pos: usize },
    /// Restore a capture slot.
    Slot { slot: usize, old: usize },
    /// Restore a register.
    Register { register: usize, old: usize },
    /// A greedy loop that consumed up to `pos`: give back one character (not below `min_pos`)
    /// and continue at `next`.
    Greedy {
        next: usize,
        min_pos: usize,
        pos: usize,
    },
    /// A lazy loop at `pos` after `count` characters: take one more and continue.
    Lazy { pc: usize, pos: usize, count: u32 },
}

pub(crate) struct Machine<'a> {
    program: &'a Program,
    hay: &'a [u8],
    pub(crate) slots: Vec<usize>,
    registers: Vec<usize>,
    stack: Vec<Frame>,
    /// Steps left (copied from the budget, written back when the search ends).
    steps: u64,
    budget: &'a mut u64,
}

/// The character starting at `pos` and its length.
#[inline]
fn char_at(hay: &[u8], pos: usize) -> Option<(char, usize)> {
    let first = *hay.get(pos)?;
    if first < 0x80 {
        return Some((char::from(first), 1));
    }
    let len = match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    };
    let bytes = hay.get(pos..pos + len)?;
    let c = core::str::from_utf8(bytes).ok()?.chars().next()?;
    Some((c, len))
}

/// The character ending at `pos` and its length.
#[inline]
fn char_before(hay: &[u8], pos: usize) -> Option<(char, usize)> {
    let mut start = pos.checked_sub(1)?;
    while start > 0 && hay.get(start).is_some_and(|b| b & 0xC0 == 0x80) {
        start -= 1;
    }
    char_at(hay, start).filter(|(_, len)| start + len == pos)
}

fn is_word(c: Option<(char, usize)>) -> bool {
    c.is_some_and(|(c, _)| c.is_ascii_alphanumeric() || c == '_')
}

impl<'a> Machine<'a> {
    pub(crate) fn new(program: &'a Program, hay: &'a str, budget: &'a mut u64) -> Self {
        Self {
            program,
            hay: hay.as_bytes(),
            slots: vec![NONE; program.slots],
            registers: vec![NONE; program.registers],
            stack: Vec::new(),
            steps: *budget,
            budget,
        }
    }

    /// Searches like `RegExp.prototype.exec`: the leftmost match, trying each start position.
    /// Returns the capture slots (`usize::MAX` for none) of the match.
    pub(crate) fn search(mut self) -> Result<Option<Vec<usize>>, Exhausted> {
        let found = self.search_inner();
        *self.budget = self.steps;
        found.map(|found| found.then_some(self.slots))
    }

    fn search_inner(&mut self) -> Result<bool, Exhausted> {
        let mut start = 0;
        loop {
            self.slots.iter_mut().for_each(|slot| *slot = NONE);
            if self.run(0, start)?.is_some() {
                return Ok(true);
            }
            if self.program.anchored {
                return Ok(false);
            }
            match char_at(self.hay, start) {
                Some((_, len)) => start += len,
                None => return Ok(false),
            }
        }
    }

    #[inline]
    fn spend(&mut self, steps: u64) -> Result<(), Exhausted> {
        match self.steps.checked_sub(steps) {
            Some(left) => {
                self.steps = left;
                Ok(())
            }
            None => {
                self.steps = 0;
                Err(Exhausted)
            }
        }
    }

    fn set_slot(&mut self, slot: usize, value: usize) {
        if let Some(current) = self.slots.get_mut(slot) {
            let old = core::mem::replace(current, value);
            self.stack.push(Frame::Slot { slot, old });
        }
    }

    /// Runs from `pc` at `pos` until `Match`/`LookMatch` (the end position) or failure.
    fn run(&mut self, mut pc: usize, mut pos: usize) -> Result<Option<usize>, Exhausted> {
        let base = self.stack.len();
        loop {
            self.spend(1)?;
            let matched = match self.program.insts.get(pc) {
                None => false,
                Some(Inst::Match | Inst::LookMatch) => {
                    // Keep the slot values; drop the ways back (a match is final).
                    self.stack.truncate(base);
                    return Ok(Some(pos));
                }
                Some(Inst::Char(c)) if c.is_ascii() => {
                    let ok = self.hay.get(pos) == Some(&(*c as u8));
                    if ok {
                        pos += 1;
                        pc += 1;
                    }
                    ok
                }
                Some(Inst::Char(c)) => match char_at(self.hay, pos) {
                    Some((found, len)) if found == *c => {
                        pos += len;
                        pc += 1;
                        true
                    }
                    _ => false,
                },
                Some(Inst::Class(class)) => {
                    let class = self.program.classes.get(*class);
                    match char_at(self.hay, pos) {
                        Some((found, len)) if class.is_some_and(|c| c.contains(found)) => {
                            pos += len;
                            pc += 1;
                            true
                        }
                        _ => false,
                    }
                }
                Some(Inst::CharBack(c)) => match char_before(self.hay, pos) {
                    Some((found, len)) if found == *c => {
                        pos -= len;
                        pc += 1;
                        true
                    }
                    _ => false,
                },
                Some(Inst::ClassBack(class)) => {
                    let class = self.program.classes.get(*class);
                    match char_before(self.hay, pos) {
                        Some((found, len)) if class.is_some_and(|c| c.contains(found)) => {
                            pos -= len;
                            pc += 1;
                            true
                        }
                        _ => false,
                    }
                }
                Some(Inst::Split { first, second }) => {
                    self.stack.push(Frame::Alt { pc: *second, pos });
                    pc = *first;
                    true
                }
                Some(Inst::Jmp(to)) => {
                    pc = *to;
                    true
                }
                Some(Inst::Save(slot)) => {
                    self.set_slot(*slot, pos);
                    pc += 1;
                    true
                }
                Some(Inst::Reset { from, to }) => {
                    for slot in *from..*to {
                        if self.slots.get(slot).is_some_and(|v| *v != NONE) {
                            self.set_slot(slot, NONE);
                        }
                    }
                    pc += 1;
                    true
                }
                Some(Inst::Mark(register)) => {
                    if let Some(current) = self.registers.get_mut(*register) {
                        let old = core::mem::replace(current, pos);
                        self.stack.push(Frame::Register {
                            register: *register,
                            old,
                        });
                    }
                    pc += 1;
                    true
                }
                Some(Inst::Progress(register)) => {
                    pc += 1;
                    self.registers.get(*register) != Some(&pos)
                }
                Some(Inst::Start) => {
                    pc += 1;
                    pos == 0
                }
                Some(Inst::End) => {
                    pc += 1;
                    pos == self.hay.len()
                }
                Some(Inst::WordBoundary(yes)) => {
                    pc += 1;
                    let boundary =
                        is_word(char_before(self.hay, pos)) != is_word(char_at(self.hay, pos));
                    boundary == *yes
                }
                Some(Inst::Backref { group, backward }) => {
                    let (start, end) = (
                        self.slots.get(2 * group).copied().unwrap_or(NONE),
                        self.slots.get(2 * group + 1).copied().unwrap_or(NONE),
                    );
                    pc += 1;
                    if start == NONE || end == NONE || end < start {
                        // An unset group matches the empty string.
                        true
                    } else {
                        let len = end - start;
                        let captured = self.hay.get(start..end);
                        self.spend(len as u64)?;
                        if *backward {
                            let here = pos.checked_sub(len).and_then(|s| self.hay.get(s..pos));
                            let ok = captured.is_some() && here == captured;
                            if ok {
                                pos -= len;
                            }
                            ok
                        } else {
                            let here = self.hay.get(pos..pos + len);
                            let ok = captured.is_some() && here == captured;
                            if ok {
                                pos += len;
                            }
                            ok
                        }
                    }
                }
                Some(Inst::Look {
                    behind: _,
                    negated,
                    body,
                    next,
                }) => {
                    let (negated, body, next) = (*negated, *body, *next);
                    let before = self.slots.clone();
                    let found = self.run(body, pos)?.is_some();
                    if found && !negated {
                        // The captures made inside stay, and go on backtracking.
                        for (slot, old) in before.into_iter().enumerate() {
                            if self.slots.get(slot) != Some(&old) {
                                self.stack.push(Frame::Slot { slot, old });
                            }
                        }
                    } else {
                        self.slots = before;
                    }
                    pc = next;
                    found != negated
                }
                Some(Inst::Loop {
                    class,
                    min,
                    max,
                    greedy,
                    possessive,
                    next,
                }) => {
                    let (min, max, greedy, possessive, next) =
                        (*min, *max, *greedy, *possessive, *next);
                    let Some(class) = self.program.classes.get(*class) else {
                        return Ok(None);
                    };
                    let limit = if greedy || possessive {
                        max.unwrap_or(u32::MAX)
                    } else {
                        min
                    };
                    let mut count = 0u32;
                    let mut end = pos;
                    let mut min_pos = pos;
                    while count < limit {
                        let len = match self.hay.get(end) {
                            Some(&byte) if byte < 0x80 => {
                                if !class.contains_ascii(byte) {
                                    break;
                                }
                                1
                            }
                            _ => match char_at(self.hay, end) {
                                Some((c, len)) if class.contains(c) => len,
                                _ => break,
                            },
                        };
                        end += len;
                        count += 1;
                        if count == min {
                            min_pos = end;
                        }
                    }
                    self.spend(u64::from(count))?;
                    if count < min {
                        false
                    } else {
                        if !possessive {
                            if greedy && count > min {
                                self.stack.push(Frame::Greedy {
                                    next,
                                    min_pos,
                                    pos: end,
                                });
                            } else if !greedy && max.is_none_or(|max| count < max) {
                                self.stack.push(Frame::Lazy {
                                    pc,
                                    pos: end,
                                    count,
                                });
                            }
                        }
                        pos = end;
                        pc = next;
                        true
                    }
                }
            };
            if matched {
                if self.stack.len() > MAX_FRAMES {
                    self.steps = 0;
                    return Err(Exhausted);
                }
                continue;
            }
            // Backtrack to the most recent choice.
            loop {
                if self.stack.len() <= base {
                    return Ok(None);
                }
                let Some(frame) = self.stack.pop() else {
                    return Ok(None);
                };
                match frame {
                    Frame::Alt { pc: to, pos: at } => {
                        pc = to;
                        pos = at;
                        break;
                    }
                    Frame::Slot { slot, old } => {
                        if let Some(current) = self.slots.get_mut(slot) {
                            *current = old;
                        }
                    }
                    Frame::Register { register, old } => {
                        if let Some(current) = self.registers.get_mut(register) {
                            *current = old;
                        }
                    }
                    Frame::Greedy {
                        next,
                        min_pos,
                        pos: at,
                    } => {
                        let Some((_, len)) = char_before(self.hay, at) else {
                            continue;
                        };
                        let shorter = at - len;
                        if shorter < min_pos {
                            continue;
                        }
                        if shorter > min_pos {
                            self.stack.push(Frame::Greedy {
                                next,
                                min_pos,
                                pos: shorter,
                            });
                        }
                        pc = next;
                        pos = shorter;
                        break;
                    }
                    Frame::Lazy {
                        pc: at_pc,
                        pos: at,
                        count,
                    } => {
                        let Some(Inst::Loop {
                            class, max, next, ..
                        }) = self.program.insts.get(at_pc)
                        else {
                            continue;
                        };
                        let taken = self
                            .program
                            .classes
                            .get(*class)
                            .zip(char_at(self.hay, at))
                            .filter(|(class, (c, _))| class.contains(*c));
                        let Some((_, (_, len))) = taken else {
                            continue;
                        };
                        let count = count + 1;
                        if max.is_none_or(|max| count < max) {
                            self.stack.push(Frame::Lazy {
                                pc: at_pc,
                                pos: at + len,
                                count,
                            });
                        }
                        pc = *next;
                        pos = at + len;
                        break;
                    }
                }
            }
        }
    }
}
