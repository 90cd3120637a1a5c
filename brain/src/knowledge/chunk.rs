//! Boundary-aware chunking with overlap, in chars.
//!
//! A chunk is at most `size` chars. Where a chunk must end before the text does, the cut goes
//! at the last paragraph break (`\n\n`) in the window's second half, else the last sentence end
//! (`.`, `!`, `?` followed by whitespace), else the last whitespace, else (one unbroken word of
//! `size` chars) exactly at `size`. The next chunk starts `overlap` chars before that cut,
//! moved forward to the start of a word, and always after the previous start, so chunking
//! terminates and every char is covered. Leading and trailing whitespace is trimmed off each
//! chunk by moving its offsets, never by changing its text: `text[start..end] == chunk`.

/// Chunk size and overlap in chars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    pub size: usize,
    pub overlap: usize,
}

impl ChunkConfig {
    pub const DEFAULT: Self = Self {
        size: 1000,
        overlap: 200,
    };

    /// Checks the pair: a size of at least 20 chars and an overlap below half the size (so
    /// every chunk moves the window forward by a meaningful amount).
    pub fn new(size: usize, overlap: usize) -> Result<Self, String> {
        if size < 20 {
            return Err(format!(
                "chunk size {size} is below the minimum of 20 chars"
            ));
        }
        if overlap * 2 >= size {
            return Err(format!(
                "chunk overlap {overlap} must be less than half the chunk size {size}"
            ));
        }
        Ok(Self { size, overlap })
    }
}

/// One chunk: chars `start..end` of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Splits `text` into chunks (see the module docs). Whitespace-only stretches give no chunk.
pub fn chunk_text(text: &str, config: ChunkConfig) -> Vec<Chunk> {
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len();
    let mut chunks = Vec::new();
    let mut start = skip_whitespace(&chars, 0);
    while start < len {
        let window_end = (start + config.size).min(len);
        let cut = if window_end == len {
            len
        } else {
            best_cut(&chars, start, window_end)
        };
        let end = trim_end(&chars, start, cut);
        if end > start {
            chunks.push(Chunk {
                start,
                end,
                text: chars[start..end].iter().collect(),
            });
        }
        if cut >= len {
            break;
        }
        let mut next = cut.saturating_sub(config.overlap).max(start + 1);
        // Start the overlap at a word: skip the rest of a word cut in half (unless the
        // overlap is all one word, as in unbroken text).
        if next > 0
            && next < cut
            && !chars[next - 1].is_whitespace()
            && let Some(space) = (next..cut).find(|&i| chars[i].is_whitespace())
        {
            next = space;
        }
        start = skip_whitespace(&chars, next.min(cut));
    }
    chunks
}

/// The end (exclusive) of a chunk starting at `start` that may reach `window_end` (< len).
fn best_cut(chars: &[char], start: usize, window_end: usize) -> usize {
    // Only look in the window's second half, so chunks stay near the target size.
    let earliest = start + (window_end - start) / 2;
    let mut sentence = None;
    let mut space = None;
    let mut i = window_end;
    while i > earliest {
        // A cut at `i` ends the chunk with chars[i - 1].
        let before = chars[i - 1];
        let at = chars[i];
        if before == '\n' && i >= 2 && chars[i - 2] == '\n' {
            return i;
        }
        if sentence.is_none() && at.is_whitespace() && matches!(before, '.' | '!' | '?' | ':' | ';')
        {
            sentence = Some(i);
        }
        if space.is_none() && at.is_whitespace() {
            space = Some(i);
        }
        i -= 1;
    }
    sentence.or(space).unwrap_or(window_end)
}

fn skip_whitespace(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

fn trim_end(chars: &[char], start: usize, mut end: usize) -> usize {
    while end > start && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    end
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_invariants(text: &str, config: ChunkConfig, chunks: &[Chunk]) {
        let chars: Vec<char> = text.chars().collect();
        let mut covered = vec![false; chars.len()];
        for (i, chunk) in chunks.iter().enumerate() {
            assert!(chunk.end - chunk.start <= config.size, "chunk {i} too long");
            let slice: String = chars[chunk.start..chunk.end].iter().collect();
            assert_eq!(slice, chunk.text, "chunk {i} offsets");
            assert!(!chunk.text.starts_with(char::is_whitespace));
            assert!(!chunk.text.ends_with(char::is_whitespace));
            if i > 0 {
                assert!(chunk.start > chunks[i - 1].start, "chunk {i} moves forward");
            }
            covered[chunk.start..chunk.end].fill(true);
        }
        for (i, c) in chars.iter().enumerate() {
            assert!(
                covered[i] || c.is_whitespace(),
                "char {i} ({c:?}) not covered"
            );
        }
    }

    #[test]
    fn short_text_is_one_trimmed_chunk() {
        let text = "\n  Hello, world.  \n";
        let chunks = chunk_text(text, ChunkConfig::DEFAULT);
        assert_eq!(
            chunks,
            vec![Chunk {
                start: 3,
                end: 16,
                text: "Hello, world.".to_owned()
            }]
        );
        assert!(chunk_text(" \n\t ", ChunkConfig::DEFAULT).is_empty());
    }

    #[test]
    fn prefers_paragraphs_then_sentences_then_words() {
        let config = ChunkConfig::new(40, 10).unwrap();
        // A paragraph break inside the second half of the window wins.
        let text = "First paragraph is here.\n\nSecond one follows and is long enough.";
        let chunks = chunk_text(text, config);
        assert_eq!(chunks[0].text, "First paragraph is here.");
        check_invariants(text, config, &chunks);

        // No paragraph: the last sentence end.
        let text = "One short sentence. Two more words here and then more words";
        let chunks = chunk_text(text, config);
        assert_eq!(chunks[0].text, "One short sentence. Two more words here");
        check_invariants(text, config, &chunks);
        let text = "Alpha beta gamma. Delta epsilon zeta eta theta iota kappa";
        let chunks = chunk_text(text, config);
        assert_eq!(chunks[0].text, "Alpha beta gamma. Delta epsilon zeta eta");
        check_invariants(text, config, &chunks);
    }

    #[test]
    fn overlap_starts_at_a_word_and_unbroken_text_is_cut_hard() {
        let config = ChunkConfig::new(20, 5).unwrap();
        let text = "aaaa bbbb cccc dddd eeee ffff gggg hhhh";
        let chunks = chunk_text(text, config);
        check_invariants(text, config, &chunks);
        for chunk in &chunks[1..] {
            let before = text.chars().nth(chunk.start - 1).unwrap();
            assert!(before.is_whitespace(), "{chunk:?} starts mid-word");
        }
        let text = "x".repeat(50);
        let chunks = chunk_text(&text, config);
        check_invariants(&text, config, &chunks);
        assert_eq!(chunks[0].end, 20);
        assert_eq!(chunks[1].start, 15);
    }

    #[test]
    fn offsets_count_chars_not_bytes() {
        let config = ChunkConfig::new(20, 4).unwrap();
        let text = "Ünïcödé wörds ärë fïnë. Ëvërÿ öffsët cöünts chärs, nöt bÿtës.";
        let chunks = chunk_text(text, config);
        check_invariants(text, config, &chunks);
    }

    #[test]
    fn default_sizes_hold_on_long_text() {
        let sentence = "Customers may return unworn items within thirty days of purchase. ";
        let mut text = String::new();
        for paragraph in 0..40 {
            for _ in 0..(paragraph % 7 + 1) {
                text.push_str(sentence);
            }
            text.push_str("\n\n");
        }
        let chunks = chunk_text(&text, ChunkConfig::DEFAULT);
        check_invariants(&text, ChunkConfig::DEFAULT, &chunks);
        assert!(chunks.len() > 5);
        // Overlap: consecutive chunks share text.
        for pair in chunks.windows(2) {
            assert!(pair[1].start < pair[0].end, "{pair:?} do not overlap");
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(ChunkConfig::new(10, 0).is_err());
        assert!(ChunkConfig::new(100, 50).is_err());
        assert!(ChunkConfig::new(100, 49).is_ok());
    }
}
