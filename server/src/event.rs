//! The feed's event and its two wire encodings.
//!
//! An event is encoded exactly once, when the producer makes it: the SSE frame
//! and the WebSocket text payload are kept as reference-counted bytes and every
//! subscriber sends the same allocation. Nothing on the per-subscriber path
//! formats or copies an event (see `hub`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::wire::{Protocol, Transport};

/// One tick of the feed, as the JSON both wires carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// Always `"tick"`: lets a WebSocket client tell ticks from `hello` and `gap`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Strictly increasing, starting at 1.
    pub id: u64,
    /// The scheduled time of the tick, RFC 3339 with nanoseconds, UTC.
    pub server_time: String,
    /// The scheduled time of the tick in nanoseconds since the Unix epoch.
    ///
    /// Scheduled, not actual: a producer that runs late shows up as latency at
    /// the receiver instead of hiding it (no coordinated omission).
    pub sent_unix_ns: u64,
    /// Filler up to the requested payload size, absent when none was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<String>,
}

/// Lost ids `from..=to`, announced instead of silently skipping them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub from: u64,
    pub to: u64,
}

/// One item for a subscriber: an event, or ids announced lost.
#[derive(Debug, Clone)]
pub enum Item {
    Event(SharedEvent),
    Gap(Gap),
}

/// How the server answered a resume request; sent in the `hello` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// No last id was given: the stream starts with live events.
    None,
    /// Every missed event was still in the replay ring and is sent again.
    Replay,
    /// Some missed events were older than the ring: a gap event names them.
    Gap,
    /// Some missed events were older than this instance's ring: they come
    /// from the shared feed's stream (`--feed-redis`), with a gap event for
    /// any the stream no longer holds.
    Archive,
    /// The last id was not a decimal number: ignored, the stream starts live.
    Malformed,
    /// The last id is newer than any event the feed made (a client of an
    /// earlier server run): ignored, the stream starts live.
    Future,
}

/// The first message on every stream: tells the client what the server saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    #[serde(rename = "type")]
    pub kind: String,
    /// `sse` or `ws`.
    pub transport: String,
    /// The protocol the server negotiated: `http/1.1`, `h2` or `h2c`. A page
    /// cannot read this for an open EventSource, so the server says it.
    pub protocol: String,
    /// Behind a reverse proxy, the protocol the *client* negotiated with the
    /// proxy (its ALPN: `h2` or `http/1.1`), as the proxy tells it in the
    /// `X-Client-Alpn` request header; absent without one. This is how the
    /// page shows that its WebSocket rode the page's HTTP/2 connection
    /// (RFC 8441) while the server itself saw an HTTP/1.1 upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_protocol: Option<String>,
    pub resume: Resume,
    /// The newest id the feed had made when the stream started.
    pub last_id: u64,
    pub rate_hz: f64,
}

impl Hello {
    /// The hello of a feed stream.
    pub fn new(
        transport: Transport,
        protocol: Protocol,
        resume: Resume,
        last_id: u64,
        rate_hz: f64,
    ) -> Self {
        Hello {
            kind: "hello".into(),
            transport: transport.as_str().into(),
            protocol: protocol.as_str().into(),
            edge_protocol: None,
            resume,
            last_id,
            rate_hz,
        }
    }

    /// The same hello, naming what the client negotiated with a proxy in
    /// front (see `edge_protocol`).
    pub fn behind_edge(self, edge_protocol: Option<&'static str>) -> Self {
        Hello {
            edge_protocol: edge_protocol.map(String::from),
            ..self
        }
    }
}

/// An event encoded for both wires, shared by every subscriber.
#[derive(Debug)]
pub struct EncodedEvent {
    pub id: u64,
    pub sent_unix_ns: u64,
    /// `id: n\nevent: tick\ndata: {json}\n\n`
    pub sse: Bytes,
    /// The JSON alone, one WebSocket text message.
    pub ws: ByteString,
}

/// A shared, encoded event: cloning is one reference-count increment.
pub type SharedEvent = Arc<EncodedEvent>;

/// The SSE comment sent on an idle stream so proxies and clients see life.
pub const SSE_KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// Smallest tick JSON is about this long; padding fills up from the real length.
impl Tick {
    pub fn new(id: u64, sent_unix_ns: u64) -> Self {
        let at = UNIX_EPOCH + Duration::from_nanos(sent_unix_ns);
        Tick {
            kind: "tick".into(),
            id,
            server_time: rfc3339(at),
            sent_unix_ns,
            pad: None,
        }
    }
}

/// RFC 3339 UTC with nanoseconds.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_nanos(at).to_string()
}

/// Encodes one tick for both wires. `payload_bytes` pads the JSON up to that
/// many bytes (no padding when the bare JSON is already as long).
pub fn encode_tick(id: u64, sent_unix_ns: u64, payload_bytes: usize) -> EncodedEvent {
    let mut tick = Tick::new(id, sent_unix_ns);
    let bare = serde_json::to_string(&tick).expect("a Tick always serializes");
    let json = if payload_bytes > bare.len() {
        // `,"pad":""` is 9 bytes; whatever is left is filler.
        let fill = payload_bytes.saturating_sub(bare.len() + 9);
        tick.pad = Some("x".repeat(fill));
        serde_json::to_string(&tick).expect("a Tick always serializes")
    } else {
        bare
    };
    let mut sse = String::with_capacity(json.len() + 40);
    write!(sse, "id: {id}\nevent: tick\ndata: {json}\n\n").expect("writing to a String");
    EncodedEvent {
        id,
        sent_unix_ns,
        sse: Bytes::from(sse),
        ws: ByteString::from(json),
    }
}

/// The SSE frame of a gap; carries `id: to` so a reconnect resumes after it.
pub fn sse_gap(gap: Gap) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: gap\ndata: {}\n\n",
        gap.to,
        ws_gap(gap)
    ))
}

/// The WebSocket message of a gap.
pub fn ws_gap(gap: Gap) -> String {
    format!(r#"{{"type":"gap","from":{},"to":{}}}"#, gap.from, gap.to)
}

/// The JSON of a hello.
pub fn hello_json(hello: &Hello) -> String {
    serde_json::to_string(hello).expect("a Hello always serializes")
}

/// The SSE opening: the reconnect delay, then the hello event.
pub fn sse_hello(retry_ms: u64, hello: &Hello) -> Bytes {
    Bytes::from(format!(
        "retry: {retry_ms}\nevent: hello\ndata: {}\n\n",
        hello_json(hello)
    ))
}

/// Now, in nanoseconds since the Unix epoch (saturating: `u64` nanoseconds
/// last until the year 2554).
pub fn unix_now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// A feed message as a client reads it (the load generator, the tests).
///
/// The decoder lives beside the encoders so the JSON has one definition.
/// Borrowed from the input: decoding a tick allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Message<'a> {
    /// The first message of every stream: what the server negotiated.
    Hello {
        protocol: Cow<'a, str>,
        resume: Cow<'a, str>,
        last_id: u64,
    },
    Tick {
        id: u64,
        sent_unix_ns: u64,
    },
    Gap(Gap),
}

/// Every field any feed message has; absent ones are `None`.
#[derive(Debug, Deserialize)]
struct RawMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    id: Option<u64>,
    sent_unix_ns: Option<u64>,
    from: Option<u64>,
    to: Option<u64>,
    #[serde(borrow)]
    protocol: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resume: Option<Cow<'a, str>>,
    last_id: Option<u64>,
}

/// Decodes one JSON message (an SSE `data` or a WebSocket text message).
/// The error names what is wrong and quotes the start of the input.
///
/// A tick in the exact layout [`encode_tick`] writes is read without
/// serde ([`tick_in_encoder_layout`]): the load generator decodes every
/// event it receives, and the generic decoder, which also scans the fields
/// it does not use, was over half of its instructions per event
/// (`loadgen/benches/hot_paths.rs`). Anything else goes through serde.
pub fn decode(json: &str) -> Result<Message<'_>, String> {
    match tick_in_encoder_layout(json) {
        Some(tick) => Ok(tick),
        None => decode_any_layout(json),
    }
}

/// The layout of [`encode_tick`]'s JSON: `{"type":"tick","id":N,
/// "server_time":"…","sent_unix_ns":N}`, optionally with `,"pad":"…"`
/// before the brace. `None` for anything else (then serde decides): only
/// valid JSON matches, so the fast path never changes an outcome.
fn tick_in_encoder_layout(json: &str) -> Option<Message<'static>> {
    let rest = json.strip_prefix(r#"{"type":"tick","id":"#)?;
    let (id, rest) = json_u64(rest)?;
    let rest = plain_string_then(rest.strip_prefix(r#","server_time":""#)?)?;
    let (sent_unix_ns, rest) = json_u64(rest.strip_prefix(r#","sent_unix_ns":"#)?)?;
    let end = match rest.strip_prefix(r#","pad":""#) {
        Some(pad) => plain_string_then(pad)?,
        None => rest,
    };
    (end == "}").then_some(Message::Tick { id, sent_unix_ns })
}

/// A JSON number that is a whole `u64` (no sign, no leading zero, no
/// fraction or exponent: those are left to serde, and so is a number past
/// `u64::MAX`), and what follows it. One pass over the digits: counting
/// them first and then parsing them was a fifth of the reader's
/// instructions per tick (`loadgen/benches/hot_paths.rs`).
fn json_u64(s: &str) -> Option<(u64, &str)> {
    let bytes = s.as_bytes();
    let mut value = 0u64;
    let mut digits = 0;
    while let Some(digit) = bytes.get(digits).map(|b| b.wrapping_sub(b'0')) {
        if digit > 9 {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
        digits += 1;
    }
    if digits == 0
        || (digits > 1 && bytes[0] == b'0')
        || matches!(bytes.get(digits), Some(b'.' | b'e' | b'E'))
    {
        return None;
    }
    Some((value, s.get(digits..)?))
}

/// The rest of a JSON string without escapes or control characters, up to
/// and past its closing quote: what follows it.
fn plain_string_then(s: &str) -> Option<&str> {
    let end = memchr::memchr2(b'"', b'\\', s.as_bytes())?;
    let (text, rest) = s.as_bytes().split_at(end);
    (rest[0] == b'"' && !has_control(text)).then(|| &s[end + 1..])
}

/// Whether any byte is a control character (below 0x20, not allowed raw in
/// a JSON string). Sixteen bytes per step without an early exit inside
/// one, so the compiler makes each step one vector compare: byte by byte
/// with `any` it was the largest part of decoding a padded tick.
fn has_control(bytes: &[u8]) -> bool {
    let mut steps = bytes.chunks_exact(16);
    steps
        .by_ref()
        .any(|step| step.iter().fold(false, |found, &b| found | (b < 0x20)))
        || steps.remainder().iter().any(|&b| b < 0x20)
}

/// Any feed message, through serde.
fn decode_any_layout(json: &str) -> Result<Message<'_>, String> {
    let raw: RawMessage<'_> =
        serde_json::from_str(json).map_err(|e| format!("bad JSON ({e}): {}", snippet(json)))?;
    let missing = |field: &str| {
        format!(
            "a {} message without `{field}`: {}",
            raw.kind,
            snippet(json)
        )
    };
    match &*raw.kind {
        "tick" => Ok(Message::Tick {
            id: raw.id.ok_or_else(|| missing("id"))?,
            sent_unix_ns: raw.sent_unix_ns.ok_or_else(|| missing("sent_unix_ns"))?,
        }),
        "gap" => Ok(Message::Gap(Gap {
            from: raw.from.ok_or_else(|| missing("from"))?,
            to: raw.to.ok_or_else(|| missing("to"))?,
        })),
        "hello" => Ok(Message::Hello {
            protocol: raw.protocol.ok_or_else(|| missing("protocol"))?,
            resume: raw.resume.unwrap_or_default(),
            last_id: raw.last_id.unwrap_or(0),
        }),
        other => Err(format!("unknown message type `{other}`")),
    }
}

/// The start of a peer's text (at most 120 bytes), for an error message.
pub fn snippet(s: &str) -> String {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_encodes_once_for_both_wires() {
        let ev = encode_tick(7, 1_700_000_000_123_456_789, 0);
        let sse = std::str::from_utf8(&ev.sse).unwrap();
        assert!(sse.starts_with("id: 7\nevent: tick\ndata: {"));
        assert!(sse.ends_with("}\n\n"));
        let data = sse.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        assert_eq!(data, &*ev.ws);
        let tick: Tick = serde_json::from_str(&ev.ws).unwrap();
        assert_eq!(tick.id, 7);
        assert_eq!(tick.sent_unix_ns, 1_700_000_000_123_456_789);
        assert_eq!(tick.server_time, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(tick.pad, None);
    }

    #[test]
    fn padding_reaches_the_requested_size() {
        for size in [256, 1000, 4096] {
            let ev = encode_tick(123, 1_700_000_000_000_000_000, size);
            assert_eq!(ev.ws.len(), size, "payload of {size}");
        }
        // Smaller than the bare JSON: no padding at all.
        let ev = encode_tick(1, 1, 10);
        assert!(!ev.ws.contains("pad"));
    }

    #[test]
    fn gap_carries_the_last_missing_id() {
        let g = sse_gap(Gap { from: 3, to: 9 });
        assert_eq!(
            &g[..],
            b"id: 9\nevent: gap\ndata: {\"type\":\"gap\",\"from\":3,\"to\":9}\n\n"
        );
        let parsed: Gap = serde_json::from_str(&ws_gap(Gap { from: 3, to: 9 })).unwrap();
        assert_eq!(parsed, Gap { from: 3, to: 9 });
    }

    #[test]
    fn the_edge_protocol_is_named_only_behind_an_edge() {
        let direct = Hello::new(Transport::Ws, Protocol::Http1, Resume::None, 0, 1.0);
        assert!(!hello_json(&direct).contains("edge_protocol"));
        let behind = direct.behind_edge(Some("h2"));
        assert!(hello_json(&behind).contains(r#""edge_protocol":"h2""#));
    }

    #[test]
    fn every_encoding_decodes_to_what_was_encoded() {
        let ev = encode_tick(5, 10, 300);
        assert_eq!(
            decode(&ev.ws).unwrap(),
            Message::Tick {
                id: 5,
                sent_unix_ns: 10
            }
        );
        let gap = Gap { from: 3, to: 9 };
        assert_eq!(decode(&ws_gap(gap)).unwrap(), Message::Gap(gap));
        let hello = Hello {
            kind: "hello".into(),
            transport: "sse".into(),
            protocol: "h2".into(),
            edge_protocol: None,
            resume: Resume::Replay,
            last_id: 4,
            rate_hz: 1.0,
        };
        assert_eq!(
            decode(&hello_json(&hello)).unwrap(),
            Message::Hello {
                protocol: "h2".into(),
                resume: "replay".into(),
                last_id: 4
            }
        );
    }

    #[test]
    fn the_tick_fast_path_agrees_with_serde() {
        let mut ticks = Vec::new();
        for (id, sent) in [(1, 0), (7, 1_700_000_000_123_456_789), (u64::MAX, u64::MAX)] {
            for pad in [0, 150, 4096] {
                ticks.push(encode_tick(id, sent, pad).ws.to_string());
            }
        }
        for json in &ticks {
            assert!(tick_in_encoder_layout(json).is_some(), "{json}");
            assert_eq!(decode(json), decode_any_layout(json), "{json}");
        }
        // Near misses: left to serde, which accepts or refuses them itself.
        let t = r#"{"type":"tick","id":5,"server_time":"x","sent_unix_ns":9}"#;
        let near = [
            t.replace(":5,", ":05,"),
            t.replace(":5,", ":5.0,"),
            t.replace(":5,", ":5e0,"),
            t.replace(":5,", ":-5,"),
            t.replace(":5,", ":99999999999999999999,"),
            t.replace(":5,", ":18446744073709551616,"),
            t.replace(":9}", ":9 }"),
            t.replace(":9}", ":9}x"),
            t.replace(":9}", ":9,\"extra\":1}"),
            t.replace("\"x\"", "\"a\\\"b\""),
            t.replace("\"x\"", "\"a\u{1}b\""),
            t.replace(":9}", ":9,\"pad\":\"xx\\n\"}"),
            t.replace(":9}", ":9,\"pad\":\"xx\""),
            t.replace(":9}", ":"),
        ];
        for json in near.iter().map(String::as_str) {
            assert_eq!(tick_in_encoder_layout(json), None, "{json}");
            assert_eq!(decode(json), decode_any_layout(json), "{json}");
        }
    }

    #[test]
    fn a_control_character_anywhere_in_a_padded_tick_leaves_it_to_serde() {
        // Every place in the pad: inside a 16-byte step and in the rest.
        let plain = encode_tick(3, 4, 150).ws.to_string();
        let pad_at = plain.find(r#""pad":""#).expect("a padded tick") + 7;
        for at in pad_at..plain.len() - 2 {
            for control in [0u8, 0x0a, 0x1f] {
                let mut bytes = plain.clone().into_bytes();
                bytes[at] = control;
                let json = String::from_utf8(bytes).expect("still UTF-8");
                assert_eq!(tick_in_encoder_layout(&json), None, "{json:?}");
                assert!(decode(&json).is_err(), "serde refuses it too: {json:?}");
            }
        }
        for len in 0..40 {
            let text = " ".repeat(len);
            assert!(!has_control(text.as_bytes()), "{len} spaces");
            for at in 0..len {
                let mut bytes = text.clone().into_bytes();
                bytes[at] = 0x1f;
                assert!(has_control(&bytes), "0x1f at {at} of {len}");
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "nope",
            "{}",
            r#"{"type":"tick"}"#,
            r#"{"type":"boom"}"#,
            "[1,2]",
            "\u{0}",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(1000);
        assert!(decode(&long).unwrap_err().len() < 300);
        assert_eq!(snippet("é".repeat(100).as_str()).chars().count(), 61);
    }
}
