//! Character sets: a bitmap for ASCII (paths are ASCII once percent-encoded, so this is the
//! hot case) and sorted ranges above it.

/// The predefined sets of JavaScript (without the `u` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassKind {
    /// `\d`: `[0-9]`.
    Digit,
    /// `\w`: `[A-Za-z0-9_]`.
    Word,
    /// `\s`: WhiteSpace and LineTerminator.
    Space,
    /// `.`: everything but a LineTerminator.
    Dot,
}

/// A set of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Class {
    ascii: u128,
    /// Disjoint, sorted, inclusive ranges of code points above 0x7F.
    upper: Vec<(u32, u32)>,
}

/// JavaScript's WhiteSpace and LineTerminator code points above ASCII.
const UPPER_SPACE: [(u32, u32); 8] = [
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
];

const MAX_CHAR: u32 = 0x10FFFF;

impl Class {
    pub(crate) fn empty() -> Self {
        Self {
            ascii: 0,
            upper: Vec::new(),
        }
    }

    /// A set that matches no character.
    pub(crate) fn nothing() -> Self {
        Self::empty()
    }

    pub(crate) fn of_kind(kind: ClassKind) -> Self {
        let mut class = Self::empty();
        match kind {
            ClassKind::Digit => class.add_range('0', '9'),
            ClassKind::Word => {
                class.add_range('0', '9');
                class.add_range('A', 'Z');
                class.add_range('a', 'z');
                class.add_range('_', '_');
            }
            ClassKind::Space => {
                for c in ['\t', '\n', '\u{b}', '\u{c}', '\r', ' '] {
                    class.add_range(c, c);
                }
                for (lo, hi) in UPPER_SPACE {
                    class.add_code_points(lo, hi);
                }
            }
            ClassKind::Dot => {
                class = Self::empty();
                for c in ['\n', '\r', '\u{2028}', '\u{2029}'] {
                    class.add_range(c, c);
                }
                class = class.negated();
            }
        }
        class
    }

    pub(crate) fn add_range(&mut self, lo: char, hi: char) {
        self.add_code_points(u32::from(lo), u32::from(hi));
    }

    fn add_code_points(&mut self, lo: u32, hi: u32) {
        for c in lo..=hi.min(0x7F) {
            self.ascii |= 1u128 << c;
        }
        let lo = lo.max(0x80);
        if lo > hi {
            return;
        }
        self.upper.push((lo, hi));
        self.upper.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.upper.len());
        for (lo, hi) in self.upper.drain(..) {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.upper = merged;
    }

    pub(crate) fn add_class(&mut self, other: &Class) {
        self.ascii |= other.ascii;
        for (lo, hi) in &other.upper {
            self.add_code_points(*lo, *hi);
        }
    }

    pub(crate) fn negated(&self) -> Self {
        let mut upper = Vec::new();
        let mut next = 0x80;
        for (lo, hi) in &self.upper {
            if *lo > next {
                upper.push((next, lo - 1));
            }
            next = hi + 1;
        }
        if next <= MAX_CHAR {
            upper.push((next, MAX_CHAR));
        }
        Self {
            ascii: !self.ascii,
            upper,
        }
    }

    /// [`Class::contains`] for an ASCII byte.
    #[inline]
    pub(crate) fn contains_ascii(&self, byte: u8) -> bool {
        byte < 128 && self.ascii & (1u128 << byte) != 0
    }

    #[inline]
    pub(crate) fn contains(&self, c: char) -> bool {
        let c = u32::from(c);
        if c < 128 {
            return self.ascii & (1u128 << c) != 0;
        }
        self.upper
            .binary_search_by(|(lo, hi)| {
                if *hi < c {
                    core::cmp::Ordering::Less
                } else if *lo > c {
                    core::cmp::Ordering::Greater
                } else {
                    core::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// Whether the two sets share a character.
    pub(crate) fn intersects(&self, other: &Class) -> bool {
        if self.ascii & other.ascii != 0 {
            return true;
        }
        self.upper
            .iter()
            .any(|(lo, hi)| other.upper.iter().any(|(olo, ohi)| lo <= ohi && olo <= hi))
    }

    /// The set of one character.
    pub(crate) fn single(c: char) -> Self {
        let mut class = Self::empty();
        class.add_range(c, c);
        class
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_sets_follow_javascript() {
        let word = Class::of_kind(ClassKind::Word);
        assert!(word.contains('_') && word.contains('Z') && !word.contains('é'));
        let space = Class::of_kind(ClassKind::Space);
        assert!(space.contains('\u{a0}') && space.contains('\u{feff}') && !space.contains('x'));
        let dot = Class::of_kind(ClassKind::Dot);
        assert!(dot.contains('é') && dot.contains('😀') && !dot.contains('\n'));
        assert!(!dot.contains('\u{2028}') && !dot.contains('\r'));
        let not_digit = Class::of_kind(ClassKind::Digit).negated();
        assert!(not_digit.contains('a') && !not_digit.contains('5'));
        assert!(not_digit.intersects(&Class::single('/')));
        assert!(!Class::single('/').intersects(&Class::of_kind(ClassKind::Word)));
    }
}
