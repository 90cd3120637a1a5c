//! A Server-Sent Events decoder (the WHATWG `text/event-stream` format), sans I/O: feed it bytes
//! as they arrive, take complete events out.
//!
//! Lines end with `\n`, `\r\n` or `\r`; `:` starts a comment (keep-alives); `data` lines join
//! with `\n`; an event is dispatched at a blank line when it has data. Every size is bounded
//! ([`SseDecoder::MAX_EVENT_BYTES`]): a server sending an endless line is an error, not unbounded
//! memory.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (absent means `message`).
    pub event: Option<String>,
    /// `id:` of this event, if it had one.
    pub id: Option<String>,
    pub data: String,
}

/// The decoder's only failure: an event (or a line) over the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseTooLarge {
    pub limit: usize,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous byte was `\r` (so a following `\n` belongs to the same line end).
    after_cr: bool,
    event: Option<String>,
    id: Option<String>,
    data: String,
    has_data: bool,
    /// Bytes of the current event so far (lines included).
    event_bytes: usize,
}

impl SseDecoder {
    /// Largest event accepted (all its lines together): 1 MiB. Chat chunks are small; a tool
    /// output is the largest thing the brain streams.
    pub const MAX_EVENT_BYTES: usize = 1 << 20;

    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`, appending every event they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    self.end_line(out);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(byte);
                    self.event_bytes += 1;
                    if self.event_bytes > Self::MAX_EVENT_BYTES {
                        return Err(SseTooLarge {
                            limit: Self::MAX_EVENT_BYTES,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    id: self.id.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event = None;
            self.id = None;
            self.data.clear();
            self.has_data = false;
            self.event_bytes = 0;
            return;
        }
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decode_in_pieces(text: &str, piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(piece) {
            decoder.push(chunk, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn events_decode_whatever_the_chunking_and_line_endings() {
        let text = ": keep-alive\n\nid: 1\ndata: {\"type\":\"start\"}\n\r\nevent: tick\r\nid: 2\r\ndata: a\r\ndata:b\r\r\ndata: [DONE]\n\n";
        let expected = vec![
            SseEvent {
                event: None,
                id: Some("1".into()),
                data: "{\"type\":\"start\"}".into(),
            },
            SseEvent {
                event: Some("tick".into()),
                id: Some("2".into()),
                data: "a\nb".into(),
            },
            SseEvent {
                event: None,
                id: None,
                data: "[DONE]".into(),
            },
        ];
        for piece in [1, 2, 3, 7, text.len()] {
            assert_eq!(decode_in_pieces(text, piece), expected, "piece {piece}");
        }
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert!(decode_in_pieces("data: half", 4).is_empty());
        assert!(decode_in_pieces("data: half\n", 4).is_empty());
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let big = vec![b'x'; SseDecoder::MAX_EVENT_BYTES + 1];
        assert_eq!(
            decoder.push(&big, &mut out),
            Err(SseTooLarge {
                limit: SseDecoder::MAX_EVENT_BYTES
            })
        );
    }
}
