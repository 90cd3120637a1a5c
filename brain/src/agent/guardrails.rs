//! Per-agent input and output policies: blocked phrases (case-insensitive, whole words),
//! maximum lengths, PII redaction, and an optional moderation hook.
//!
//! Input is checked before the model sees it ([`Guardrails::check_input`]; PII is redacted
//! before the message is stored). Output streams through an [`OutputFilter`] that holds back a
//! window of text, so a blocked phrase is never emitted even partially, and redacts PII before
//! text leaves it. With a moderation hook, the whole text of each model call is held until the
//! hook passed it.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use regex::Regex;
use serde_json::{Value, json};
use shared_types::agent::{GuardrailsEntry, ModerationEntry};

use crate::llm::ApiKey;

/// The text replacing each PII match.
pub const REDACTED: &str = "[redacted]";
/// The refusal shown when the agent's configuration sets none.
pub const DEFAULT_REFUSAL: &str =
    "Sorry, I can't help with that request. It was blocked by this assistant's content policy.";

/// Default PII patterns: e-mail addresses, card numbers (13–19 digits, optional separators),
/// phone numbers (international or 3-3-4 groups). Matches of the last two count only as a
/// whole number (not the digits of a decimal such as `24.686030869999996` or `1234567890.5`,
/// which data answers are full of), and card numbers only when their Luhn checksum holds, as
/// every issued card number's does.
pub const DEFAULT_PII_PATTERNS: [&str; 3] = [
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    CARD_NUMBER_PATTERN,
    r"(?:\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b",
];
const CARD_NUMBER_PATTERN: &str = r"\b(?:\d[ -]?){12,18}\d\b";

/// Least text an [`OutputFilter`] holds back while streaming.
const MIN_HOLDBACK_CHARS: usize = 32;

/// A moderation verdict: `Some(categories)` when flagged.
pub type ModerationVerdict = Option<Vec<String>>;

/// One PII pattern and what a match must also satisfy to count.
#[derive(Debug)]
struct PiiPattern {
    regex: Regex,
    check: NumberCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberCheck {
    None,
    /// Not digits of a longer number (a decimal's fraction or integer part).
    WholeNumber,
    /// [`NumberCheck::WholeNumber`] and a valid Luhn checksum.
    WholeNumberLuhn,
}

impl PiiPattern {
    fn redact(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for found in self.regex.find_iter(text) {
            let counts = match self.check {
                NumberCheck::None => true,
                NumberCheck::WholeNumber => whole_number(text, found.start(), found.end()),
                NumberCheck::WholeNumberLuhn => {
                    whole_number(text, found.start(), found.end()) && luhn_valid(found.as_str())
                }
            };
            if counts {
                out.push_str(&text[copied..found.start()]);
                out.push_str(REDACTED);
                copied = found.end();
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// False when `text[start..end]` continues a number: a digit followed by `.` or `,` before it,
/// or `.`/`,` and a digit after it.
fn whole_number(text: &str, start: usize, end: usize) -> bool {
    let before = &text.as_bytes()[..start];
    let after = &text.as_bytes()[end..];
    let continues_before = matches!(before, [.., digit, b'.' | b','] if digit.is_ascii_digit());
    let continues_after = matches!(after, [b'.' | b',', digit, ..] if digit.is_ascii_digit());
    !continues_before && !continues_after
}

/// The Luhn checksum of the digits in `candidate` (separators ignored).
fn luhn_valid(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &digit)| match position % 2 {
            0 => digit,
            _ if digit * 2 > 9 => digit * 2 - 9,
            _ => digit * 2,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A content moderation service.
pub trait Moderation: Send + Sync + Debug {
    fn check<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<ModerationVerdict, String>>;
}

/// The guardrails of one agent, compiled once at start.
#[derive(Debug)]
pub struct Guardrails {
    blocked: Option<Regex>,
    longest_phrase_chars: usize,
    pii: Vec<PiiPattern>,
    pub max_input_chars: usize,
    pub max_output_chars: usize,
    pub refusal_message: String,
    moderation: Option<Box<dyn Moderation>>,
}

impl Guardrails {
    /// Compiles the policies; bad patterns are errors naming them.
    pub fn from_entry(
        entry: &GuardrailsEntry,
        env: &dyn Fn(&str) -> Option<String>,
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let phrases: Vec<&str> = entry
            .blocked_phrases
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect();
        let blocked = if phrases.is_empty() {
            None
        } else {
            let alternatives: Vec<String> = phrases.iter().map(|p| phrase_pattern(p)).collect();
            Some(
                Regex::new(&format!("(?i)(?:{})", alternatives.join("|")))
                    .context("blocked_phrases do not compile")?,
            )
        };
        let longest_phrase_chars = phrases.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        let patterns: Vec<String> = if entry.redact_pii {
            match &entry.pii_patterns {
                Some(patterns) => patterns.clone(),
                None => DEFAULT_PII_PATTERNS
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
            }
        } else {
            Vec::new()
        };
        let mut pii = Vec::with_capacity(patterns.len());
        for pattern in &patterns {
            let regex = Regex::new(pattern)
                .with_context(|| format!("PII pattern `{pattern}` is not a valid regex"))?;
            // The built-in number patterns keep their checks when listed in `pii_patterns`.
            let check = if pattern == CARD_NUMBER_PATTERN {
                NumberCheck::WholeNumberLuhn
            } else if pattern == DEFAULT_PII_PATTERNS[2] {
                NumberCheck::WholeNumber
            } else {
                NumberCheck::None
            };
            pii.push(PiiPattern { regex, check });
        }
        if entry.max_input_chars == 0 || entry.max_output_chars == 0 {
            bail!("max_input_chars and max_output_chars must be at least 1");
        }
        let moderation =
            match &entry.moderation {
                Some(moderation) => Some(Box::new(OpenAiModeration::new(moderation, env, client)?)
                    as Box<dyn Moderation>),
                None => None,
            };
        Ok(Self {
            blocked,
            longest_phrase_chars,
            pii,
            max_input_chars: entry.max_input_chars as usize,
            max_output_chars: entry.max_output_chars as usize,
            refusal_message: entry
                .refusal_message
                .clone()
                .unwrap_or_else(|| DEFAULT_REFUSAL.to_owned()),
            moderation,
        })
    }

    /// Replaces the moderation hook (tests, other providers).
    pub fn set_moderation(&mut self, moderation: Option<Box<dyn Moderation>>) {
        self.moderation = moderation;
    }

    pub fn has_moderation(&self) -> bool {
        self.moderation.is_some()
    }

    /// `text` with every PII match replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for pattern in &self.pii {
            text = pattern.redact(&text);
        }
        text
    }

    /// The first blocked phrase in `text` that is complete (its right edge is followed by
    /// more text, or `text` is final).
    fn blocked_phrase(&self, text: &str, is_final: bool) -> Option<String> {
        let blocked = self.blocked.as_ref()?;
        blocked
            .find_iter(text)
            .find(|found| is_final || found.end() < text.len())
            .map(|found| {
                found
                    .as_str()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
            })
    }

    /// The pure input checks: length and blocked phrases. `Err(reason)` refuses.
    pub fn check_input_text(&self, text: &str) -> Result<(), String> {
        let chars = text.chars().count();
        if chars > self.max_input_chars {
            return Err(format!(
                "input of {chars} characters exceeds the limit of {}",
                self.max_input_chars
            ));
        }
        if let Some(phrase) = self.blocked_phrase(text, true) {
            return Err(format!("input contains the blocked phrase `{phrase}`"));
        }
        Ok(())
    }

    /// Every input check, the moderation hook included.
    pub async fn check_input(&self, text: &str) -> Result<(), String> {
        self.check_input_text(text)?;
        self.moderate("input", text).await
    }

    /// Runs the moderation hook (if any); a flag or an unreachable service refuses.
    pub async fn moderate(&self, what: &str, text: &str) -> Result<(), String> {
        let Some(moderation) = &self.moderation else {
            return Ok(());
        };
        match moderation.check(text).await {
            Ok(None) => Ok(()),
            Ok(Some(categories)) => Err(format!(
                "{what} flagged by moderation ({})",
                categories.join(", ")
            )),
            Err(error) => {
                tracing::warn!(%error, "moderation unavailable; refusing (fail closed)");
                Err(format!("{what} could not be moderated: {error}"))
            }
        }
    }

    fn holdback_chars(&self) -> usize {
        (self.longest_phrase_chars + 1).max(MIN_HOLDBACK_CHARS)
    }
}

/// Blocked phrase → regex: literal words, any whitespace between them, word boundaries where
/// the phrase starts or ends with a word character.
fn phrase_pattern(phrase: &str) -> String {
    let words: Vec<String> = phrase.split_whitespace().map(regex::escape).collect();
    let body = words.join(r"\s+");
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let start = if word_char(phrase.chars().next()) {
        r"\b"
    } else {
        ""
    };
    let end = if word_char(phrase.chars().last()) {
        r"\b"
    } else {
        ""
    };
    format!("{start}{body}{end}")
}

/// What an [`OutputFilter`] lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Safe text to emit now (may be empty).
    Emit(String),
    /// Blocked: emit nothing more of this output; the reason is for the log and the run.
    Blocked { emit: String, reason: String },
}

/// Streams a model's text through the output policies. Holds back the last
/// `max(longest phrase + 1, 32)` characters (never splitting a word), or everything when a
/// moderation hook must see the text first; `finish` releases the rest.
#[derive(Debug)]
pub struct OutputFilter<'a> {
    guardrails: &'a Guardrails,
    pending: String,
    emitted_chars: usize,
    hold_all: bool,
    blocked: bool,
}

impl<'a> OutputFilter<'a> {
    pub fn new(guardrails: &'a Guardrails) -> Self {
        Self {
            guardrails,
            pending: String::new(),
            emitted_chars: 0,
            hold_all: guardrails.has_moderation(),
            blocked: false,
        }
    }

    /// The text held back so far (for moderation at the end of a model call).
    pub fn pending(&self) -> &str {
        &self.pending
    }

    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Blocks the rest of the output, dropping what is held back (a moderation flag).
    pub fn discard(&mut self) {
        self.blocked = true;
        self.pending.clear();
    }

    /// Adds a delta; returns what may be emitted now.
    pub fn push(&mut self, delta: &str) -> Filtered {
        if self.blocked {
            return Filtered::Emit(String::new());
        }
        self.pending.push_str(delta);
        self.release(false)
    }

    /// The model call ended: releases the rest (after the same checks).
    pub fn finish(&mut self) -> Filtered {
        if self.blocked {
            return Filtered::Emit(String::new());
        }
        self.release(true)
    }

    fn block(&mut self, emit: String, reason: String) -> Filtered {
        self.blocked = true;
        self.pending.clear();
        Filtered::Blocked { emit, reason }
    }

    fn release(&mut self, is_final: bool) -> Filtered {
        let guardrails = self.guardrails;
        if let Some(phrase) = guardrails.blocked_phrase(&self.pending, is_final) {
            return self.block(
                String::new(),
                format!("output contains the blocked phrase `{phrase}`"),
            );
        }
        let pending_chars = self.pending.chars().count();
        if self.emitted_chars + pending_chars > guardrails.max_output_chars {
            // Emit up to the limit (checked, redacted), then stop.
            let room = guardrails
                .max_output_chars
                .saturating_sub(self.emitted_chars);
            let cut = byte_index(&self.pending, room);
            let emit = guardrails.redact(&self.pending[..cut]);
            return self.block(
                emit,
                format!(
                    "output exceeds the limit of {} characters",
                    guardrails.max_output_chars
                ),
            );
        }
        if self.hold_all && !is_final {
            return Filtered::Emit(String::new());
        }
        let cut = if is_final {
            self.pending.len()
        } else {
            self.safe_cut()
        };
        if cut == 0 {
            return Filtered::Emit(String::new());
        }
        let rest = self.pending.split_off(cut);
        let ready = std::mem::replace(&mut self.pending, rest);
        self.emitted_chars += ready.chars().count();
        Filtered::Emit(guardrails.redact(&ready))
    }

    /// Where the emitted prefix may end: `holdback` characters before the end, moved back to
    /// a whitespace and before any PII match that would straddle it.
    fn safe_cut(&self) -> usize {
        let chars = self.pending.chars().count();
        let holdback = self.guardrails.holdback_chars();
        if chars <= holdback {
            return 0;
        }
        let mut cut = byte_index(&self.pending, chars - holdback);
        cut = self.pending[..cut]
            .rfind(char::is_whitespace)
            .map_or(0, |space| space + 1);
        for pattern in &self.guardrails.pii {
            for found in pattern.regex.find_iter(&self.pending) {
                if found.start() < cut && found.end() > cut {
                    cut = found.start();
                }
            }
        }
        cut
    }
}

/// Byte index of the `chars`-th character (or the end).
fn byte_index(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(index, _)| index)
}

/// OpenAI's moderation API: `POST {base_url}/moderations` with `{"model","input"}`;
/// `results[0].flagged` and the categories set to true.
#[derive(Debug)]
pub struct OpenAiModeration {
    endpoint: String,
    model: Option<String>,
    api_key: Option<ApiKey>,
    client: reqwest::Client,
    timeout: Duration,
}

impl OpenAiModeration {
    pub fn new(
        entry: &ModerationEntry,
        env: &dyn Fn(&str) -> Option<String>,
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        url::Url::parse(&entry.base_url).context("moderation base_url is not a URL")?;
        let api_key = match &entry.api_key_env {
            Some(variable) => Some(ApiKey::new(
                env(variable)
                    .filter(|key| !key.trim().is_empty())
                    .with_context(|| {
                        format!("the moderation API key variable `{variable}` is not set")
                    })?,
            )),
            None => None,
        };
        Ok(Self {
            endpoint: format!("{}/moderations", entry.base_url.trim_end_matches('/')),
            model: entry.model.clone(),
            api_key,
            client: client.clone(),
            timeout: Duration::from_millis(entry.timeout_ms.unwrap_or(10_000)),
        })
    }
}

impl Moderation for OpenAiModeration {
    fn check<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<ModerationVerdict, String>> {
        async move {
            let mut body = json!({"input": text});
            if let Some(model) = &self.model {
                body["model"] = Value::String(model.clone());
            }
            let mut request = self.client.post(&self.endpoint).json(&body);
            if let Some(key) = &self.api_key {
                let header = crate::llm::key_header("moderation", key, "Bearer ")
                    .map_err(|error| error.to_string())?;
                request = request.header(reqwest::header::AUTHORIZATION, header);
            }
            let response = crate::llm::send_provider_request(
                "moderation",
                request,
                self.timeout,
                self.api_key.as_ref(),
            )
            .await
            .map_err(|error| error.to_string())?;
            let answer: Value = tokio::time::timeout(self.timeout, response.json())
                .await
                .map_err(|_| "the moderation answer timed out".to_owned())?
                .map_err(|_| "the moderation answer is not JSON".to_owned())?;
            Ok(parse_moderation(&answer))
        }
        .boxed()
    }
}

/// `Some(flagged categories)` if any result is flagged.
fn parse_moderation(answer: &Value) -> ModerationVerdict {
    let results = answer.get("results").and_then(Value::as_array)?;
    let mut flagged = false;
    let mut categories = Vec::new();
    for result in results {
        if result.get("flagged").and_then(Value::as_bool) == Some(true) {
            flagged = true;
            if let Some(map) = result.get("categories").and_then(Value::as_object) {
                categories.extend(
                    map.iter()
                        .filter(|(_, value)| value.as_bool() == Some(true))
                        .map(|(name, _)| name.clone()),
                );
            }
        }
    }
    flagged.then_some(categories)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn guardrails(phrases: &[&str]) -> Guardrails {
        let entry = GuardrailsEntry {
            blocked_phrases: phrases.iter().map(|p| (*p).to_owned()).collect(),
            max_output_chars: 200,
            max_input_chars: 50,
            ..GuardrailsEntry::default()
        };
        // Run alone (a filtered `cargo test`), nothing else has installed it yet.
        crate::llm::install_tls_crypto();
        Guardrails::from_entry(&entry, &|_| None, &reqwest::Client::new()).unwrap()
    }

    fn stream(filter: &mut OutputFilter<'_>, deltas: &[&str]) -> (String, Option<String>) {
        let mut out = String::new();
        for delta in deltas {
            match filter.push(delta) {
                Filtered::Emit(text) => out.push_str(&text),
                Filtered::Blocked { emit, reason } => {
                    out.push_str(&emit);
                    return (out, Some(reason));
                }
            }
        }
        match filter.finish() {
            Filtered::Emit(text) => {
                out.push_str(&text);
                (out, None)
            }
            Filtered::Blocked { emit, reason } => {
                out.push_str(&emit);
                (out, Some(reason))
            }
        }
    }

    #[test]
    fn blocked_phrases_match_whole_words_case_insensitively() {
        let g = guardrails(&["secret plan", "zorg"]);
        assert!(g.check_input_text("tell me the SECRET   plan").is_err());
        assert!(g.check_input_text("Zorg!").is_err());
        assert!(g.check_input_text("zorgon and secret planning").is_ok());
        assert!(g.check_input_text(&"x".repeat(51)).is_err());
    }

    #[test]
    fn a_blocked_phrase_never_leaks_even_split_across_deltas() {
        let g = guardrails(&["forbidden fruit"]);
        let mut filter = OutputFilter::new(&g);
        let long = "word ".repeat(20);
        let (out, reason) = stream(
            &mut filter,
            &[&long, "and the forb", "idden fr", "uit is here ", &long],
        );
        assert!(reason.unwrap().contains("forbidden fruit"));
        assert!(!out.contains("forb"), "{out}");
        assert!(out.starts_with("word word"), "{out}");
    }

    #[test]
    fn a_phrase_prefix_of_a_longer_word_is_not_blocked() {
        let g = guardrails(&["class"]);
        let mut filter = OutputFilter::new(&g);
        let (out, reason) = stream(&mut filter, &["this is class", "ified information"]);
        assert_eq!(reason, None);
        assert_eq!(out, "this is classified information");
        let mut filter = OutputFilter::new(&g);
        assert!(stream(&mut filter, &["a class"]).1.is_some());
    }

    #[test]
    fn pii_is_redacted_in_input_and_streamed_output() {
        let g = guardrails(&[]);
        assert_eq!(
            g.redact("mail bob@example.com or call 555-123-4567, card 4111 1111 1111 1111"),
            "mail [redacted] or call [redacted], card [redacted]"
        );
        let mut filter = OutputFilter::new(&g);
        let (out, _) = stream(
            &mut filter,
            &[
                "Write to ali",
                "ce@exam",
                "ple.org today; the number is 4111-1111-",
                "1111-1111 and that is all there is to say about it.",
            ],
        );
        assert!(!out.contains("alice") && !out.contains("1111"), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 2, "{out}");
    }

    #[test]
    fn numbers_of_a_data_answer_are_not_mistaken_for_cards_or_phones() {
        let g = guardrails(&[]);
        for kept in [
            "The mean is 24.686030869999996.",
            "Revenue: 1234567890.50 in all, 6,038,732.80 in March.",
            "Totals 4111111111111111.5 and 0.4111111111111111",
            // 16 digits failing the Luhn check: an id, not a card.
            "order 4111111111111112",
        ] {
            assert_eq!(g.redact(kept), kept);
        }
        // Whole numbers still are: a card (Luhn-valid) and a phone at a sentence's end.
        assert_eq!(
            g.redact("Card 5500 0000 0000 0004. Call 555-123-4567."),
            "Card [redacted]. Call [redacted]."
        );
        assert_eq!(g.redact("(555) 123-4567, ok"), "[redacted], ok");
    }

    #[test]
    fn output_is_cut_at_its_length_limit() {
        let g = guardrails(&[]);
        let mut filter = OutputFilter::new(&g);
        let text = "abcd ".repeat(60);
        let (out, reason) = stream(&mut filter, &[&text]);
        assert!(reason.unwrap().contains("200 characters"));
        assert_eq!(out.chars().count(), 200);
    }

    #[test]
    fn moderation_answers_are_parsed() {
        let flagged = json!({"results": [{"flagged": true, "categories": {"violence": true, "hate": false}}]});
        assert_eq!(
            parse_moderation(&flagged),
            Some(vec!["violence".to_owned()])
        );
        assert_eq!(
            parse_moderation(&json!({"results": [{"flagged": false}]})),
            None
        );
    }

    #[test]
    fn bad_patterns_fail_at_load() {
        let entry = GuardrailsEntry {
            pii_patterns: Some(vec!["(".into()]),
            ..GuardrailsEntry::default()
        };
        let error = Guardrails::from_entry(&entry, &|_| None, &reqwest::Client::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a valid regex"), "{error}");
    }
}
