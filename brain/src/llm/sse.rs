//! A Server-Sent Events decoder: bytes in, `(event, data)` frames out ([`SseDecoder`], pure),
//! and [`decode_events`], which runs a provider's [`FrameParser`] over an HTTP body.

use futures_util::{Stream, StreamExt, stream};

use super::{ProviderError, StreamEvent};

/// Turns SSE frames of one provider's protocol into events.
pub trait FrameParser: Send + 'static {
    fn parse_frame(&mut self, frame: &SseFrame) -> Result<Vec<StreamEvent>, String>;
    /// Whether the provider signalled the end of the answer (a finish reason, `[DONE]`,
    /// `message_stop`). A body that ends before that is a broken stream.
    fn finished(&self) -> bool;
}

/// The events of a streamed HTTP body. Transport errors, malformed frames and a body that ends
/// before the parser saw the provider's end marker become one final error item (a broken
/// connection must never look like a complete answer).
pub fn decode_events<P: FrameParser>(
    provider: String,
    response: reqwest::Response,
    parser: P,
) -> impl Stream<Item = Result<StreamEvent, ProviderError>> + Send + 'static {
    let body = response.bytes_stream();
    let state = (provider, SseDecoder::default(), parser, false);
    stream::unfold((body, state), |(mut body, mut state)| async move {
        let (provider, decoder, parser, done) = &mut state;
        if *done {
            return None;
        }
        let items: Vec<Result<StreamEvent, ProviderError>> = match body.next().await {
            Some(Ok(bytes)) => {
                let mut items = Vec::new();
                match decoder.feed(&bytes) {
                    Ok(frames) => {
                        for frame in frames {
                            match parser.parse_frame(&frame) {
                                Ok(events) => items.extend(events.into_iter().map(Ok)),
                                Err(message) => {
                                    items.push(Err(ProviderError::fatal(provider, message)));
                                    *done = true;
                                    break;
                                }
                            }
                        }
                    }
                    Err(message) => {
                        items.push(Err(ProviderError::fatal(provider, message)));
                        *done = true;
                    }
                }
                items
            }
            Some(Err(error)) => {
                *done = true;
                vec![Err(ProviderError::retryable(
                    provider,
                    format!(
                        "the stream broke: {}",
                        crate::telemetry::error_chain(&error)
                    ),
                ))]
            }
            None => {
                *done = true;
                if parser.finished() {
                    return None;
                }
                vec![Err(ProviderError::retryable(
                    provider,
                    "the stream ended before the model finished",
                ))]
            }
        };
        Some((stream::iter(items), (body, state)))
    })
    .flatten()
}

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFrame {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental decoder; feed it chunks as they arrive, in order.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
}

/// Largest event accepted; a provider sending more without a blank line is broken.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

impl SseDecoder {
    /// Appends `chunk` and returns every event it completed. Errors when one event exceeds
    /// 4 MiB or is not UTF-8.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseFrame>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut frames = Vec::new();
        while let Some((end, separator)) = find_blank_line(&self.buffer) {
            let block: Vec<u8> = self.buffer.drain(..end + separator).collect();
            let text = std::str::from_utf8(&block[..end])
                .map_err(|_| "an event is not UTF-8".to_owned())?;
            if let Some(frame) = parse_block(text) {
                frames.push(frame);
            }
        }
        if self.buffer.len() > MAX_EVENT_BYTES {
            return Err(format!("an event exceeds {MAX_EVENT_BYTES} bytes"));
        }
        Ok(frames)
    }
}

/// Position and length of the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    for (index, window) in buffer.windows(2).enumerate() {
        match window {
            b"\n\n" | b"\r\r" => return Some((index, 2)),
            b"\r\n" if buffer.get(index + 2..index + 4) == Some(b"\r\n") => {
                return Some((index, 4));
            }
            _ => {}
        }
    }
    None
}

fn parse_block(block: &str) -> Option<SseFrame> {
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue; // comment / keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() && event.is_none() {
        return None;
    }
    Some(SseFrame {
        event,
        data: data.join("\n"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_chunks_are_reassembled() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"event: ping\nda").unwrap().is_empty());
        let frames = decoder
            .feed(b"ta: {\"a\":1}\n\ndata: x\r\n\r\n: keep-alive\n\n")
            .unwrap();
        assert_eq!(
            frames,
            vec![
                SseFrame {
                    event: Some("ping".into()),
                    data: "{\"a\":1}".into()
                },
                SseFrame {
                    event: None,
                    data: "x".into()
                }
            ]
        );
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut decoder = SseDecoder::default();
        let frames = decoder.feed(b"data: a\ndata: b\n\n").unwrap();
        assert_eq!(frames[0].data, "a\nb");
    }
}
