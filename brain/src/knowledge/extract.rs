//! Document text extraction: what the chunker, the citations and every offset refer to.
//!
//! - Plain text and Markdown are kept verbatim (Markdown is readable as it is, and offsets then
//!   point straight into the uploaded file). Only a leading byte-order mark is dropped and line
//!   endings are normalised to `\n`.
//! - HTML is reduced to its text: tags removed, `<script>`, `<style>`, `<head>`, `<template>`
//!   and comments dropped, block elements become line breaks, entities decoded, runs of blanks
//!   collapsed.
//! - PDF: the text of every page through `lopdf` (pure Rust), pages separated by a blank line.
//!
//! Malformed input is an [`ExtractError`] naming the problem (invalid UTF-8 with its byte
//! offset, an unreadable or encrypted PDF, a document without any text).

use std::fmt;

/// The formats the knowledge base reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    Plain,
    Markdown,
    Html,
    Pdf,
}

impl DocumentFormat {
    /// From a media type (parameters ignored, case-insensitive).
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/plain" => Some(Self::Plain),
            "text/markdown" | "text/x-markdown" => Some(Self::Markdown),
            "text/html" | "application/xhtml+xml" => Some(Self::Html),
            "application/pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    /// From a file name's extension (multipart uploads without a useful content type).
    pub fn from_file_name(name: &str) -> Option<Self> {
        shared_types::knowledge::media::of_file_name(name).and_then(Self::from_media_type)
    }

    /// The canonical media type (`shared_types::knowledge::media`).
    pub fn media_type(self) -> &'static str {
        use shared_types::knowledge::media;
        match self {
            Self::Plain => media::PLAIN,
            Self::Markdown => media::MARKDOWN,
            Self::Html => media::HTML,
            Self::Pdf => media::PDF,
        }
    }
}

impl fmt::Display for DocumentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the {format} document is not valid UTF-8 (first invalid byte at offset {offset})")]
    InvalidUtf8 {
        format: DocumentFormat,
        offset: usize,
    },
    #[error("not a readable PDF: {0}")]
    Pdf(String),
    #[error("the document has no text")]
    Empty,
    /// Text documents hold no NUL characters (PostgreSQL's text cannot store them; refused
    /// alike on SQLite so the two never differ).
    #[error(
        "the {format} document contains a NUL character at byte {offset}; text documents \
         cannot hold NUL"
    )]
    Nul {
        format: DocumentFormat,
        offset: usize,
    },
}

/// Extracts the text of `bytes` in `format`.
pub fn extract_text(format: DocumentFormat, bytes: &[u8]) -> Result<String, ExtractError> {
    let text = match format {
        DocumentFormat::Plain | DocumentFormat::Markdown => {
            normalise(no_nul(format, utf8(format, bytes)?)?)
        }
        DocumentFormat::Html => html_to_text(&normalise(no_nul(format, utf8(format, bytes)?)?)),
        // NULs in a PDF's text are extraction artefacts (padding of fixed-width strings), not
        // content: dropped.
        DocumentFormat::Pdf => pdf_to_text(bytes)?.replace('\0', ""),
    };
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(text)
}

fn no_nul(format: DocumentFormat, text: &str) -> Result<&str, ExtractError> {
    match text.find('\0') {
        Some(offset) => Err(ExtractError::Nul { format, offset }),
        None => Ok(text),
    }
}

fn utf8(format: DocumentFormat, bytes: &[u8]) -> Result<&str, ExtractError> {
    std::str::from_utf8(bytes).map_err(|error| ExtractError::InvalidUtf8 {
        format,
        offset: error.valid_up_to(),
    })
}

/// Drops a byte-order mark and turns `\r\n` and lone `\r` into `\n`.
fn normalise(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Elements whose content is not text a reader sees.
const SKIPPED_ELEMENTS: [&str; 6] = ["script", "style", "head", "template", "noscript", "svg"];

/// Elements that start a new line of text.
const BLOCK_ELEMENTS: [&str; 30] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "section",
    "table",
    "tr",
];

/// A forgiving HTML-to-text reduction (no DOM): good for the documents people upload to a
/// knowledge base, and total (any UTF-8 input gives some text).
fn html_to_text(html: &str) -> String {
    let mut raw = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        raw.push_str(&decode_entities(&rest[..open]));
        rest = &rest[open..];
        // `<` not starting a tag (`a < b`) is text.
        let starts_tag = rest[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        if !starts_tag {
            raw.push('<');
            rest = &rest[1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else {
            // A lone `<` without a closing `>`: text, not a tag.
            raw.push_str(&decode_entities(rest));
            rest = "";
            break;
        };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            // `<!DOCTYPE …>`, `<?xml …?>` and the like.
            continue;
        }
        if !closing && SKIPPED_ELEMENTS.contains(&name.as_str()) && !tag.ends_with('/') {
            let end_tag = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&end_tag) {
                Some(position) => {
                    let after = &rest[position..];
                    after.find('>').map_or("", |end| &after[end + 1..])
                }
                None => "",
            };
            continue;
        }
        if BLOCK_ELEMENTS.contains(&name.as_str()) {
            raw.push('\n');
        } else if name == "td" || name == "th" {
            raw.push(' ');
        }
    }
    raw.push_str(&decode_entities(rest));
    tidy(&raw)
}

/// Collapses blanks inside lines, trims lines, and keeps at most one empty line between
/// paragraphs (HTML block elements end up separated by one, which the chunker cuts at).
fn tidy(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_lines = 0usize;
    for line in raw.split('\n') {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        out.push_str(&line);
    }
    out
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let entity_end = rest
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .map(|(i, _)| i);
        let decoded = entity_end.and_then(|end| decode_entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "copy" => '©',
        "reg" => '®',
        "euro" => '€',
        "deg" => '°',
        _ => return None,
    })
}

fn pdf_to_text(bytes: &[u8]) -> Result<String, ExtractError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(ExtractError::Pdf(
            "the body does not start with the `%PDF-` header".to_owned(),
        ));
    }
    let document =
        lopdf::Document::load_mem(bytes).map_err(|error| ExtractError::Pdf(error.to_string()))?;
    if document.is_encrypted() {
        return Err(ExtractError::Pdf(
            "the PDF is encrypted; upload an unencrypted copy".to_owned(),
        ));
    }
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    if pages.is_empty() {
        return Err(ExtractError::Pdf("the PDF has no pages".to_owned()));
    }
    let mut texts = Vec::with_capacity(pages.len());
    for page in pages {
        let text = document
            .extract_text(&[page])
            .map_err(|error| ExtractError::Pdf(format!("page {page}: {error}")))?;
        texts.push(tidy(&text));
    }
    let text = texts
        .into_iter()
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    if text.is_empty() {
        return Err(ExtractError::Pdf(
            "the PDF has no extractable text (a scan? only text PDFs are supported)".to_owned(),
        ));
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_markdown_are_verbatim_but_for_line_endings() {
        let text = extract_text(
            DocumentFormat::Markdown,
            b"\xef\xbb\xbf# Title\r\n\r\nBody *x*",
        )
        .unwrap();
        assert_eq!(text, "# Title\n\nBody *x*");
        assert_eq!(
            extract_text(DocumentFormat::Plain, b"a  b\n").unwrap(),
            "a  b\n"
        );
    }

    #[test]
    fn invalid_utf8_names_the_offset() {
        let error = extract_text(DocumentFormat::Plain, b"abc\xffdef").unwrap_err();
        assert_eq!(
            error,
            ExtractError::InvalidUtf8 {
                format: DocumentFormat::Plain,
                offset: 3
            }
        );
        assert!(error.to_string().contains("offset 3"));
    }

    #[test]
    fn html_keeps_visible_text_only() {
        let html = "<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head>\
                    <body><h1>Returns</h1><p>Bring it back &amp; get a refund&#33;</p>\
                    <script>alert('x')</script><!-- hidden --><ul><li>one</li><li>two</li></ul>\
                    <p>a < b</p></body></html>";
        assert_eq!(
            extract_text(DocumentFormat::Html, html.as_bytes()).unwrap(),
            "Returns\n\nBring it back & get a refund!\n\none\n\ntwo\n\na < b"
        );
    }

    #[test]
    fn empty_and_broken_documents_are_refused() {
        assert_eq!(
            extract_text(DocumentFormat::Plain, b"  \n "),
            Err(ExtractError::Empty)
        );
        assert_eq!(
            extract_text(DocumentFormat::Html, b"<p> </p>"),
            Err(ExtractError::Empty)
        );
        assert!(matches!(
            extract_text(DocumentFormat::Pdf, b"hello"),
            Err(ExtractError::Pdf(_))
        ));
        assert!(matches!(
            extract_text(DocumentFormat::Pdf, b"%PDF-1.4\n1 0 obj <<"),
            Err(ExtractError::Pdf(_))
        ));
    }

    #[test]
    fn formats_from_media_types_and_names() {
        assert_eq!(
            DocumentFormat::from_media_type("Text/HTML; charset=utf-8"),
            Some(DocumentFormat::Html)
        );
        assert_eq!(DocumentFormat::from_media_type("image/png"), None);
        assert_eq!(
            DocumentFormat::from_file_name("guide.MD"),
            Some(DocumentFormat::Markdown)
        );
        assert_eq!(DocumentFormat::from_file_name("noext"), None);
    }
}
