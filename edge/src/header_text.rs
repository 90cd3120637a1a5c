//! Header values across the JS boundary, byte for byte.
//!
//! HTTP header values are bytes; JavaScript sees them as strings, and the two runtimes the edge
//! runs in disagree on the mapping:
//! - **workerd** (Cloudflare) decodes incoming header bytes as UTF-8 (an invalid sequence
//!   becomes U+FFFD) and encodes outgoing header strings as UTF-8;
//! - **edge-runtime** (Vercel; Node's undici) treats them as ByteStrings, one char per byte
//!   (latin-1), both ways.
//!
//! Converting with one fixed rule double-encodes on the other runtime: a brain response header
//! `v=café` in UTF-8 would reach a workerd client as `v=cafÃ©`. So the adapter detects the
//! runtime once per isolate ([`Runtime::from_user_agent`]) and converts with [`decode`] and
//! [`encode`]. Pure functions, tested natively; only `worker.rs` calls them.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};

/// How the JS runtime maps header bytes to strings and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// UTF-8 both ways (workerd).
    Utf8,
    /// One char per byte, U+0000–U+00FF, both ways (Node/undici, Vercel's edge-runtime).
    Latin1,
}

impl Runtime {
    /// `navigator.userAgent` as the runtime reports it: workerd says `Cloudflare-Workers`;
    /// anything else (edge-runtime, or no navigator at all) is taken for the Fetch standard's
    /// ByteString semantics, which Node follows.
    pub fn from_user_agent(user_agent: Option<&str>) -> Self {
        if user_agent == Some("Cloudflare-Workers") {
            Self::Utf8
        } else {
            Self::Latin1
        }
    }
}

/// The bytes a header value had on the wire, from the string the runtime made of them; `None`
/// for a string the runtime cannot have produced (a char above U+00FF under [`Runtime::Latin1`]),
/// which the caller drops rather than guess at.
///
/// Under [`Runtime::Utf8`] bytes that were not UTF-8 arrive as U+FFFD already: the runtime lost
/// them before the edge could see them, and this returns the replacement's UTF-8.
pub fn decode(text: &str, runtime: Runtime) -> Option<Cow<'_, [u8]>> {
    if text.is_ascii() {
        return Some(Cow::Borrowed(text.as_bytes()));
    }
    match runtime {
        Runtime::Utf8 => Some(Cow::Borrowed(text.as_bytes())),
        Runtime::Latin1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
            .map(Cow::Owned),
    }
}

/// The string the runtime turns into exactly `bytes` on the wire.
///
/// Under [`Runtime::Utf8`] bytes that are not UTF-8 (a latin-1 `caf\xe9` from the brain) cannot
/// be sent as they are: workerd encodes every header string as UTF-8. Those sequences become
/// U+FFFD, the same thing workerd does to such bytes arriving from a client.
pub fn encode(bytes: &[u8], runtime: Runtime) -> Cow<'_, str> {
    match runtime {
        Runtime::Utf8 => String::from_utf8_lossy(bytes),
        Runtime::Latin1 if bytes.is_ascii() => String::from_utf8_lossy(bytes),
        Runtime::Latin1 => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// A header list in the lines format of `edge/js/headers.mjs` (`name\nvalue\n` per entry, as
/// the runtime's strings) as a `HeaderMap`; entries that are no valid header are dropped.
pub fn map_from_lines(lines: &str, runtime: Runtime) -> HeaderMap {
    let mut map = HeaderMap::new();
    let mut fields = lines.split('\n');
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let Some(bytes) = decode(value, runtime) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&bytes),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// `map` in the lines format, each value the string the runtime sends as exactly its bytes
/// ([`encode`]).
pub fn lines_of(map: &HeaderMap, runtime: Runtime) -> String {
    let mut lines = String::with_capacity(map.len() * 48);
    for (name, value) in map {
        lines.push_str(name.as_str());
        lines.push('\n');
        lines.push_str(&encode(value.as_bytes(), runtime));
        lines.push('\n');
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::core::rules::{RequestFacts, Rules};
    use http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    const RUNTIMES: [Runtime; 2] = [Runtime::Utf8, Runtime::Latin1];

    /// What a runtime puts on the wire for a string (the model of each runtime's behaviour).
    fn wire(text: &str, runtime: Runtime) -> Vec<u8> {
        match runtime {
            Runtime::Utf8 => text.as_bytes().to_vec(),
            Runtime::Latin1 => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap())
                .collect(),
        }
    }

    /// The string a runtime makes of bytes from the wire.
    fn from_wire(bytes: &[u8], runtime: Runtime) -> String {
        match runtime {
            Runtime::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Runtime::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        }
    }

    #[test]
    fn the_runtime_is_told_by_its_user_agent() {
        assert_eq!(
            Runtime::from_user_agent(Some("Cloudflare-Workers")),
            Runtime::Utf8
        );
        for other in [
            None,
            Some("Edge Runtime"),
            Some(""),
            Some("cloudflare-workers"),
        ] {
            assert_eq!(
                Runtime::from_user_agent(other),
                Runtime::Latin1,
                "{other:?}"
            );
        }
    }

    #[test]
    fn ascii_and_utf8_values_round_trip_on_both_runtimes() {
        for bytes in [
            &b"plain; q=1"[..],
            b"v=caf\xc3\xa9",
            "東京 ☃".as_bytes(),
            b"",
        ] {
            for runtime in RUNTIMES {
                // Outgoing: the wire carries exactly the bytes.
                let sent = encode(bytes, runtime);
                assert_eq!(wire(&sent, runtime), bytes, "{runtime:?} {bytes:?}");
                // Incoming: the edge recovers exactly the bytes.
                let received = from_wire(bytes, runtime);
                assert_eq!(decode(&received, runtime).unwrap().as_ref(), bytes);
            }
        }
    }

    #[test]
    fn latin1_only_bytes_round_trip_where_the_runtime_can_carry_them() {
        let bytes = b"v=caf\xe9 \xff\x80";
        // Node carries any byte.
        let sent = encode(bytes, Runtime::Latin1);
        assert_eq!(sent, "v=caf\u{e9} \u{ff}\u{80}");
        assert_eq!(wire(&sent, Runtime::Latin1), bytes);
        let received = from_wire(bytes, Runtime::Latin1);
        assert_eq!(decode(&received, Runtime::Latin1).unwrap().as_ref(), bytes);
        // workerd sends UTF-8 only: invalid sequences become U+FFFD, never double-encoded text.
        let sent = encode(bytes, Runtime::Utf8);
        assert_eq!(sent, "v=caf\u{fffd} \u{fffd}\u{fffd}");
        let received = from_wire(bytes, Runtime::Utf8);
        assert_eq!(
            decode(&received, Runtime::Utf8).unwrap().as_ref(),
            "v=caf\u{fffd} \u{fffd}\u{fffd}".as_bytes()
        );
    }

    #[test]
    fn a_string_no_byte_runtime_produces_is_refused_not_guessed() {
        assert_eq!(decode("v=\u{100}", Runtime::Latin1), None);
        assert_eq!(
            decode("v=\u{100}", Runtime::Utf8).unwrap().as_ref(),
            "v=\u{100}".as_bytes()
        );
    }

    #[test]
    fn rule_headers_with_non_ascii_parameters_are_ascii_so_never_double_encoded() {
        let rules = Rules::from_vercel_json(
            r#"{"headers": [{"source": "/p/:v", "has": [{"type": "header", "key": "x-v", "value": "(?<h>.*)"}],
                "headers": [{"key": "x-out", "value": "v=:v; h=:h"}]}]}"#,
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-v", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        for path in ["/p/caf%C3%A9", "/p/café"] {
            let outcome = rules
                .evaluate(&RequestFacts {
                    path,
                    query: "",
                    host: None,
                    headers: &headers,
                })
                .unwrap();
            let (_, value) = outcome
                .headers
                .iter()
                .find(|(name, _)| name == "x-out")
                .unwrap();
            let bytes = value.as_bytes();
            assert!(bytes.is_ascii(), "{path}: {value:?}");
            for runtime in RUNTIMES {
                assert_eq!(wire(&encode(bytes, runtime), runtime), bytes);
            }
        }
    }

    proptest! {
        #[test]
        fn any_header_bytes_survive_node_and_any_utf8_survives_workerd(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            text in "\\PC{0,32}",
        ) {
            let sent = encode(&bytes, Runtime::Latin1);
            prop_assert_eq!(wire(&sent, Runtime::Latin1), bytes.clone());
            let received = from_wire(&bytes, Runtime::Latin1);
            let decoded = decode(&received, Runtime::Latin1).unwrap().into_owned();
            prop_assert_eq!(decoded, bytes);
            let utf8 = text.as_bytes();
            prop_assert_eq!(wire(&encode(utf8, Runtime::Utf8), Runtime::Utf8), utf8);
            let received = from_wire(utf8, Runtime::Utf8);
            let decoded = decode(&received, Runtime::Utf8).unwrap().into_owned();
            prop_assert_eq!(decoded, utf8);
        }
    }
}
