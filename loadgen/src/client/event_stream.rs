//! An incremental parser of `text/event-stream`, following the WHATWG HTML
//! standard's "Server-sent events" parsing rules to the letter.
//!
//! The load generator reads hundreds of thousands of small events a second, so
//! the parser is built for that:
//!
//! - Bytes arrive in whatever chunks the transport hands over, split anywhere
//!   (inside a CRLF, inside a UTF-8 sequence, inside the BOM). Only the bytes
//!   of an unfinished line are carried over to the next [`EventStreamParser::feed`].
//! - Nothing is allocated per event: the data, event type and last event id
//!   live in buffers that are cleared, not dropped, and an [`Item`] borrows
//!   from them, or from the chunk itself: an event's data line and event
//!   line lying whole in the chunk are dispatched from there, not copied
//!   (`Fields::chunk_line`). A complete line inside one chunk is parsed in
//!   place.
//! - Memory is bounded: a line or an event's data longer than the configured
//!   limit is an error, not an ever-growing buffer (a server that never sends
//!   a line end must not take the load generator down with it).
//!
//! Decoding: the standard decodes the whole stream as UTF-8 with replacement
//! before splitting lines. This parser splits on bytes first and decodes each
//! field value on its own, which gives the same text: every byte the splitting
//! looks at (CR, LF, `:`, space) is ASCII, and a UTF-8 decoder with
//! replacement (both WHATWG's and [`String::from_utf8_lossy`] replace
//! maximal subparts) never swallows an ASCII byte into an invalid sequence.
//! Valid UTF-8, the normal case, is borrowed as it is; only invalid input
//! goes through `from_utf8_lossy`.

use std::borrow::Cow;

use thiserror::Error;

/// The default limit on a line and on an event's data, in bytes.
pub const DEFAULT_MAX_SIZE: usize = 1024 * 1024;

/// The UTF-8 byte order mark, skipped once at the start of a stream.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// What the parser reports, borrowed from its buffers or from the chunk being
/// fed until the callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A dispatched event.
    Event {
        /// The `event` field, or `"message"` when there was none (or it was empty).
        event_type: &'a str,
        /// The `data` lines joined with `\n`.
        data: &'a str,
        /// The stream's last event id at dispatch (the most recent `id` field,
        /// which persists across events), `None` while it is empty: an empty
        /// id means "no id" to `EventSource` and is never sent as `Last-Event-ID`.
        id: Option<&'a str>,
    },
    /// A comment line, without its `:` and one following space if present.
    /// Browsers ignore these; the load generator counts them as keep-alives.
    Comment(&'a str),
    /// A valid `retry` field: the reconnection time in milliseconds (a value
    /// too large for `u64` saturates).
    Retry(u64),
}

/// Why a chunk could not be parsed. The stream should then be closed: the
/// parser has dropped its partial line and event and is not resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EventStreamError {
    /// No line end within `limit` bytes.
    #[error(
        "an event-stream line is longer than {limit} bytes: the server is not sending \
         line ends, or its events need a larger limit (EventStreamParser::with_max_size)"
    )]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// An event's `data` lines add up to more than `limit` bytes.
    #[error(
        "an event's data is larger than {limit} bytes: the server is not sending blank \
         lines between events, or its events need a larger limit (EventStreamParser::with_max_size)"
    )]
    EventTooLarge {
        /// The limit in force.
        limit: usize,
    },
}

/// The parser of one event stream. Create one per connection; call
/// [`reset`](Self::reset) to reuse it for a new stream (a reconnection).
#[derive(Debug)]
pub struct EventStreamParser {
    /// The unfinished line carried over from earlier chunks.
    partial: Vec<u8>,
    /// How many bytes of the BOM have been seen at stream start and held back,
    /// or `None` once the start of the stream has been settled.
    bom_seen: Option<usize>,
    /// The last chunk ended in CR: an LF starting the next chunk belongs to it.
    skip_lf: bool,
    fields: Fields,
}

/// An event's data line and event type, borrowed from the chunk being fed
/// instead of copied into [`Fields`]' buffers (see [`Fields::chunk_line`]).
#[derive(Debug, Default)]
struct Held<'c> {
    /// The event's one data line so far; the data buffer is then empty.
    data: Option<&'c str>,
    /// The event's type, in place of the event type buffer.
    event_type: Option<&'c str>,
}

/// The standard's per-stream buffers, apart from the line buffer so a line
/// borrowed from [`EventStreamParser::partial`] can be applied to them.
#[derive(Debug)]
struct Fields {
    /// Each data line followed by `\n`, as the standard specifies.
    data: String,
    event_type: String,
    last_event_id: String,
    max_size: usize,
}

impl Default for EventStreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStreamParser {
    /// A parser with the default limit of [`DEFAULT_MAX_SIZE`] bytes per line and per event.
    pub fn new() -> Self {
        Self::with_max_size(DEFAULT_MAX_SIZE)
    }

    /// A parser that rejects a line, or an event's data, longer than `max_size` bytes.
    pub fn with_max_size(max_size: usize) -> Self {
        Self {
            partial: Vec::new(),
            bom_seen: Some(0),
            skip_lf: false,
            fields: Fields {
                data: String::new(),
                event_type: String::new(),
                last_event_id: String::new(),
                max_size,
            },
        }
    }

    /// Forgets everything about the current stream, keeping the buffers'
    /// capacity, so the next byte is the start of a new stream.
    ///
    /// The standard gives every stream fresh buffers, the last event id
    /// included: a caller resuming with `Last-Event-ID` keeps its own copy
    /// (see [`last_event_id`](Self::last_event_id)) before resetting.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.bom_seen = Some(0);
        self.skip_lf = false;
        self.fields.data.clear();
        self.fields.event_type.clear();
        self.fields.last_event_id.clear();
    }

    /// The last event id buffer: the value of the most recent valid `id`
    /// field, even one in an event that was never dispatched.
    pub fn last_event_id(&self) -> &str {
        &self.fields.last_event_id
    }

    /// Parses the next chunk of the stream, calling `on_item` for every event,
    /// comment and retry it completes, in stream order.
    ///
    /// An unfinished line is kept for the next call; the end of the stream
    /// needs no call, since the standard discards an unfinished event.
    /// On error, items before the offending line have already been reported.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_item: impl FnMut(Item<'_>),
    ) -> Result<(), EventStreamError> {
        let result = self.feed_inner(chunk, &mut on_item);
        if result.is_err() {
            self.partial.clear();
            self.fields.data.clear();
            self.fields.event_type.clear();
        }
        result
    }

    fn feed_inner(
        &mut self,
        chunk: &[u8],
        on_item: &mut impl FnMut(Item<'_>),
    ) -> Result<(), EventStreamError> {
        let mut rest = self.skip_bom(chunk);
        if self.skip_lf {
            if let Some((&first, after)) = rest.split_first() {
                self.skip_lf = false;
                if first == b'\n' {
                    rest = after;
                }
            }
        }
        let limit = self.fields.max_size;
        // Field values borrowed from `chunk` (see `Fields::chunk_line`).
        let mut held = Held::default();
        // memchr looks at a word of bytes at a time: a byte loop was a
        // quarter of the instructions per event (benches/hot_paths.rs).
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            let line = &rest[..end];
            let was_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.partial.is_empty() {
                if line.len() > limit {
                    return Err(EventStreamError::LineTooLong { limit });
                }
                self.fields.chunk_line(line, &mut held, on_item)?;
            } else {
                if self.partial.len() + line.len() > limit {
                    return Err(EventStreamError::LineTooLong { limit });
                }
                self.partial.extend_from_slice(line);
                let result = self.fields.line(&self.partial, on_item);
                self.partial.clear();
                result?;
            }
        }
        self.fields.keep(&mut held);
        if self.partial.len() + rest.len() > limit {
            return Err(EventStreamError::LineTooLong { limit });
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Drops one leading BOM, however the chunks split it, and returns what
    /// is left of `chunk`. Bytes that turn out not to be a BOM are moved to
    /// the line buffer: they are not ASCII, so they cannot end a line.
    fn skip_bom<'c>(&mut self, chunk: &'c [u8]) -> &'c [u8] {
        let Some(mut seen) = self.bom_seen else {
            return chunk;
        };
        let mut rest = chunk;
        while let Some((&byte, after)) = rest.split_first() {
            if byte != BOM[seen] {
                self.partial.extend_from_slice(&BOM[..seen]);
                self.bom_seen = None;
                return rest;
            }
            rest = after;
            seen += 1;
            if seen == BOM.len() {
                self.bom_seen = None;
                return rest;
            }
        }
        self.bom_seen = Some(seen);
        rest
    }
}

/// A line's field name and value: the value after the first `:` and one
/// space, or empty when there is no `:`.
fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &b""[..]),
    }
}

impl Fields {
    /// [`line`](Self::line) for a line lying whole in the chunk being fed,
    /// which outlives the loop over its lines: an event's first `data` line
    /// and its `event` line, when they are valid UTF-8, are held (borrowed
    /// from the chunk) rather than copied into the buffers, and the blank
    /// line that ends the event dispatches them from there. A second `data`
    /// line, or the end of the chunk ([`keep`](Self::keep)), copies them into
    /// the buffers first, so the outcome is what copying at once gives. The
    /// feed's events have one data line and arrive whole, so neither is ever
    /// copied: a copy is cheap, but it writes to a buffer of the
    /// connection's, whose cache lines are cold by the time its next event
    /// comes (cachegrind: a first-level miss or more per copy).
    fn chunk_line<'c>(
        &mut self,
        line: &'c [u8],
        held: &mut Held<'c>,
        on_item: &mut impl FnMut(Item<'_>),
    ) -> Result<(), EventStreamError> {
        if line.is_empty() {
            self.dispatch(held, on_item);
            return Ok(());
        }
        let (name, value) = split_field(line);
        match name {
            b"data" => {
                if held.data.is_some() {
                    self.keep_data(held);
                } else if self.data.is_empty() {
                    if let Ok(text) = simdutf8::basic::from_utf8(value) {
                        // The data limit cannot be passed by one line: the
                        // line limit, the same number, counts `data:` too.
                        debug_assert!(text.len() < self.max_size);
                        held.data = Some(text);
                        return Ok(());
                    }
                }
            }
            b"event" => match std::str::from_utf8(value) {
                Ok(text) => {
                    held.event_type = Some(text);
                    return Ok(());
                }
                // Decoded with replacement into the buffer, which it replaces.
                Err(_) => held.event_type = None,
            },
            _ => {}
        }
        self.field(name, value, on_item)
    }

    /// Copies what is held (see [`chunk_line`](Self::chunk_line)) into the
    /// buffers, as [`line`](Self::line) would have.
    fn keep(&mut self, held: &mut Held<'_>) {
        self.keep_data(held);
        if let Some(text) = held.event_type.take() {
            self.event_type.clear();
            self.event_type.push_str(text);
        }
    }

    /// Copies a held data line into the data buffer (empty while a line is
    /// held; one line is within the data limit, see `chunk_line`).
    fn keep_data(&mut self, held: &mut Held<'_>) {
        if let Some(text) = held.data.take() {
            self.data.push_str(text);
            self.data.push('\n');
        }
    }

    /// Applies one line (without its line end), as the standard's "process
    /// the field" and "dispatch the event" steps say.
    fn line(
        &mut self,
        line: &[u8],
        on_item: &mut impl FnMut(Item<'_>),
    ) -> Result<(), EventStreamError> {
        if line.is_empty() {
            self.dispatch(&mut Held::default(), on_item);
            return Ok(());
        }
        let (name, value) = split_field(line);
        self.field(name, value, on_item)
    }

    /// Processes one field of a line that is not blank.
    fn field(
        &mut self,
        name: &[u8],
        value: &[u8],
        on_item: &mut impl FnMut(Item<'_>),
    ) -> Result<(), EventStreamError> {
        match name {
            b"" => on_item(Item::Comment(&decode(value))),
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&decode(value));
            }
            b"data" => {
                // Checked after decoding: a replacement character is longer than the byte it replaces.
                let value = decode(value);
                if self.data.len() + value.len() + 1 > self.max_size {
                    return Err(EventStreamError::EventTooLarge {
                        limit: self.max_size,
                    });
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => {
                self.last_event_id.clear();
                self.last_event_id.push_str(&decode(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let millis = value.iter().fold(0u64, |acc, &d| {
                    acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                on_item(Item::Retry(millis));
            }
            _ => {}
        }
        Ok(())
    }

    /// A blank line: dispatch the event, if it has any data, with what is
    /// held (see [`chunk_line`](Self::chunk_line)) in place of the buffers.
    fn dispatch(&mut self, held: &mut Held<'_>, on_item: &mut impl FnMut(Item<'_>)) {
        let event_type = held.event_type.take().unwrap_or(&self.event_type);
        let data = match held.data.take() {
            Some(data) => Some(data),
            None if self.data.is_empty() => None,
            None => Some(self.data.strip_suffix('\n').unwrap_or(&self.data)),
        };
        if let Some(data) = data {
            emit(event_type, &self.last_event_id, data, on_item);
        }
        self.data.clear();
        self.event_type.clear();
    }
}

/// Reports an event with its data (the data buffer without its last `\n`).
fn emit(event_type: &str, last_event_id: &str, data: &str, on_item: &mut impl FnMut(Item<'_>)) {
    let event_type = match event_type {
        "" => "message",
        other => other,
    };
    let id = Some(last_event_id).filter(|id| !id.is_empty());
    on_item(Item::Event {
        event_type,
        data,
        id,
    });
}

/// UTF-8 with replacement: borrowed when valid, the common case.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned [`Item`], to collect and compare.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Event {
            event_type: String,
            data: String,
            id: Option<String>,
        },
        Comment(String),
        Retry(u64),
    }

    impl From<Item<'_>> for Owned {
        fn from(item: Item<'_>) -> Self {
            match item {
                Item::Event {
                    event_type,
                    data,
                    id,
                } => Owned::Event {
                    event_type: event_type.to_owned(),
                    data: data.to_owned(),
                    id: id.map(str::to_owned),
                },
                Item::Comment(text) => Owned::Comment(text.to_owned()),
                Item::Retry(ms) => Owned::Retry(ms),
            }
        }
    }

    fn event(event_type: &str, data: &str, id: Option<&str>) -> Owned {
        Owned::Event {
            event_type: event_type.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    fn message(data: &str, id: Option<&str>) -> Owned {
        event("message", data, id)
    }

    fn parse_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Owned> {
        let mut parser = EventStreamParser::new();
        let mut items = Vec::new();
        for chunk in chunks {
            parser
                .feed(chunk, |item| items.push(item.into()))
                .expect("within the default limit");
        }
        items
    }

    fn parse(bytes: &[u8]) -> Vec<Owned> {
        parse_chunks([bytes])
    }

    fn parse_bytewise(bytes: &[u8]) -> Vec<Owned> {
        parse_chunks(bytes.chunks(1))
    }

    /// A data or event line lying whole in its chunk is held, not copied
    /// (`Fields::chunk_line`); a stream read one byte at a time copies every
    /// line. Both must give the same items, whatever follows the held line.
    #[test]
    fn lines_held_from_their_chunk_give_what_copying_gives() {
        let stream: &[u8] = b"data: one\nid: 7\nevent: e\n: c\nretry: 5\nx: y\n\n\
                              data: a\ndata: b\n\ndata\n\ndata: \xff!\ndata: z\n\n\
                              event: first\nevent: second\ndata: c\n\n\
                              event: ok\nevent: \xff\ndata: d\n\nevent: unsent\n\n\
                              data: typeless\n\nevent: \xff\nevent: valid\ndata: f\n\n\
                              event:\ndata: e\n\n\
                              id: 8\nevent: kept\ndata: held at the chunk's end\n";
        let tail: &[u8] = b"data: then more\n\ndata: last\n\n";
        let expected = vec![
            Owned::Comment("c".into()),
            Owned::Retry(5),
            event("e", "one", Some("7")),
            message("a\nb", Some("7")),
            message("", Some("7")),
            message("\u{fffd}!\nz", Some("7")),
            event("second", "c", Some("7")),
            event("\u{fffd}", "d", Some("7")),
            message("typeless", Some("7")),
            event("valid", "f", Some("7")),
            message("e", Some("7")),
            event("kept", "held at the chunk's end\nthen more", Some("8")),
            message("last", Some("8")),
        ];
        assert_eq!(parse_chunks([stream, tail]), expected);
        let whole = [stream, tail].concat();
        assert_eq!(parse(&whole), expected);
        assert_eq!(parse_bytewise(&whole), expected);
        // Lines longer than one vector step of the UTF-8 check (64 bytes),
        // a bad byte early, late and in the tail past the last step.
        for at in [3, 70, 130, 199] {
            let mut value = vec![b'v'; 200];
            value[at] = 0xFF;
            let mut lossy = "v".repeat(200);
            lossy.replace_range(at..=at, "\u{fffd}");
            let line = [b"data: ".as_slice(), &value, b"\nid: ", &value, b"\n\n"].concat();
            let expected = vec![message(&lossy, Some(&lossy))];
            assert_eq!(parse(&line), expected, "bad byte at {at}");
            assert_eq!(parse_bytewise(&line), expected, "bad byte at {at}");
        }
        // Valid characters across the check's steps and in its tail; one
        // cut short at the end of a long line.
        let long = format!("{}€{}🦀", "a".repeat(62), "é".repeat(40));
        let line = format!("data: {long}\nid: {long}\n\n");
        let expected = vec![message(&long, Some(&long))];
        assert_eq!(parse(line.as_bytes()), expected);
        assert_eq!(parse_bytewise(line.as_bytes()), expected);
        let cut = [
            b"data: ".as_slice(),
            &[b'a'; 100],
            &"€".as_bytes()[..2],
            b"\n\n",
        ]
        .concat();
        let lossy = format!("{}\u{fffd}", "a".repeat(100));
        assert_eq!(parse(&cut), vec![message(&lossy, None)]);
        assert_eq!(parse_bytewise(&cut), vec![message(&lossy, None)]);
        // The data limit counts a held line as a copied one.
        let mut parser = EventStreamParser::with_max_size(16);
        let mut items = Vec::new();
        parser
            .feed(b"data:1234567\ndata:1234567\n\n", |i| {
                items.push(Owned::from(i))
            })
            .expect("two lines of 7 bytes and their line ends fit in 16");
        assert_eq!(
            parser.feed(b"data:1234567\ndata:12345678\n\n", |i| {
                items.push(Owned::from(i))
            }),
            Err(EventStreamError::EventTooLarge { limit: 16 })
        );
        assert_eq!(items, vec![message("1234567\n1234567", None)]);
    }

    #[test]
    fn spec_stock_example_joins_data_lines() {
        let items = parse(b"data: YHOO\ndata: +2\ndata: 10\n\n");
        assert_eq!(items, vec![message("YHOO\n+2\n10", None)]);
    }

    #[test]
    fn spec_test_stream_example() {
        let stream = b": test stream\n\ndata: first event\nid: 1\n\n\
                       data:second event\nid\n\ndata:  third event\n";
        let items = parse(stream);
        assert_eq!(
            items,
            vec![
                Owned::Comment("test stream".into()),
                message("first event", Some("1")),
                // A bare `id` empties the last event id.
                message("second event", None),
            ],
            "the third event has no blank line after it, so it is never dispatched"
        );
        let items = parse(b"data:  third event\n\n");
        assert_eq!(items, vec![message(" third event", None)], "one space only");
    }

    #[test]
    fn spec_empty_data_example() {
        let items = parse(b"data\n\ndata\ndata\n\ndata:");
        assert_eq!(items, vec![message("", None), message("\n", None)]);
    }

    #[test]
    fn spec_space_after_colon_is_optional() {
        let items = parse(b"data:test\n\ndata: test\n\n");
        assert_eq!(items, vec![message("test", None), message("test", None)]);
    }

    #[test]
    fn spec_event_types_example() {
        let stream = b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n\
                       event: add\ndata: 113411\n\n";
        let items = parse(stream);
        assert_eq!(
            items,
            vec![
                event("add", "73857293", None),
                event("remove", "2153", None),
                event("add", "113411", None),
            ]
        );
    }

    #[test]
    fn id_persists_and_nul_ids_are_ignored() {
        let stream = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\n\ndata: c\n\nid: x\0y\ndata: d\n\n";
        let items = parse(stream);
        assert_eq!(
            items,
            vec![
                message("a", Some("7")),
                message("b", Some("7")),
                message("c", Some("8")),
                message("d", Some("8")),
            ]
        );
    }

    #[test]
    fn blank_line_without_data_resets_the_event_type() {
        let items = parse(b"event: add\n\ndata: x\n\n");
        assert_eq!(items, vec![message("x", None)]);
    }

    #[test]
    fn retry_needs_only_digits() {
        let items = parse(b"retry: 3000\nretry: 3s\nretry:\nretry: -1\nretry:  5\nretry\n");
        assert_eq!(items, vec![Owned::Retry(3000)]);
        let items = parse(b"retry: 99999999999999999999999\n");
        assert_eq!(items, vec![Owned::Retry(u64::MAX)], "saturates");
    }

    #[test]
    fn comments_and_unknown_fields() {
        let items = parse(b": keep-alive\n:\n:no space\nfoo: bar\nDATA: x\ndata: y\n\n");
        assert_eq!(
            items,
            vec![
                Owned::Comment("keep-alive".into()),
                Owned::Comment(String::new()),
                Owned::Comment("no space".into()),
                message("y", None),
            ]
        );
    }

    #[test]
    fn value_keeps_later_colons() {
        let items = parse(b"data: {\"a\": 1}\n\n");
        assert_eq!(items, vec![message("{\"a\": 1}", None)]);
    }

    #[test]
    fn all_line_ends_agree() {
        let lf = b"id: 1\nevent: tick\ndata: a\ndata: b\n\n: ka\n".to_vec();
        let expected = vec![
            event("tick", "a\nb", Some("1")),
            Owned::Comment("ka".into()),
        ];
        for end in [&b"\r"[..], b"\r\n"] {
            let other: Vec<u8> = lf.split(|&b| b == b'\n').collect::<Vec<_>>().join(end);
            assert_eq!(parse(&other), expected);
            assert_eq!(parse_bytewise(&other), expected);
        }
        assert_eq!(parse(&lf), expected);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let items = parse_chunks([&b"data: a\r"[..], b"\n", b"\r", b"\ndata: b\r", b"\r"]);
        assert_eq!(items, vec![message("a", None), message("b", None)]);
        let items = parse_chunks([&b"data: a\r"[..], b"", b"\n\r\n"]);
        assert_eq!(
            items,
            vec![message("a", None)],
            "an empty chunk keeps the CR"
        );
        let items = parse_chunks([&b"data: a\r"[..], b"\r"]);
        assert_eq!(items, vec![message("a", None)], "CR CR is two line ends");
    }

    #[test]
    fn bom_is_skipped_once_even_when_split() {
        let stream = b"\xEF\xBB\xBFdata: x\n\n";
        assert_eq!(parse(stream), vec![message("x", None)]);
        assert_eq!(parse_bytewise(stream), vec![message("x", None)]);
        let twice = b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n";
        assert_eq!(
            parse(twice),
            vec![message("y", None)],
            "a second BOM is part of the field name"
        );
    }

    #[test]
    fn partial_bom_is_data() {
        let items = parse_chunks([&b"\xEF\xBB"[..], b"data: x\n\n"]);
        assert_eq!(items, vec![], "the field name is \u{FFFD}data");
        let items = parse_chunks([&b"\xEF"[..], b"\n:\xEF\xBB\n"]);
        assert_eq!(items, vec![Owned::Comment("\u{FFFD}".into())]);
    }

    #[test]
    fn invalid_utf8_is_replaced_even_when_split() {
        let stream = b"data: caf\xC3\xA9 \xFF\xE2\x82\n\n";
        let expected = vec![message("caf\u{e9} \u{FFFD}\u{FFFD}", None)];
        assert_eq!(parse(stream), expected);
        assert_eq!(parse_bytewise(stream), expected);
    }

    #[test]
    fn limits_are_enforced() {
        let mut parser = EventStreamParser::with_max_size(16);
        let mut items = Vec::new();
        let mut push = |item: Item<'_>| items.push(Owned::from(item));
        assert_eq!(parser.feed(b"data: 0123456789\n", &mut push), Ok(()));
        assert_eq!(
            parser.feed(b"data: 0123456789\n", &mut push),
            Err(EventStreamError::EventTooLarge { limit: 16 })
        );
        assert_eq!(parser.feed(b"data: 0123", &mut push), Ok(()));
        assert_eq!(
            parser.feed(b"456789abc", &mut push),
            Err(EventStreamError::LineTooLong { limit: 16 })
        );
        assert_eq!(
            parser.feed(b"0123456789abcdefg\n", &mut push),
            Err(EventStreamError::LineTooLong { limit: 16 })
        );
        assert_eq!(parser.feed(b"data: ok\n\n", &mut push), Ok(()));
        assert_eq!(items, vec![message("ok", None)]);
    }

    #[test]
    fn reset_starts_a_new_stream() {
        let mut parser = EventStreamParser::new();
        let mut items = Vec::new();
        let mut push = |item: Item<'_>| items.push(Owned::from(item));
        parser
            .feed(b"id: 5\ndata: a\n\ndata: half", &mut push)
            .expect("small");
        assert_eq!(parser.last_event_id(), "5");
        parser.reset();
        assert_eq!(parser.last_event_id(), "");
        parser
            .feed(b"\xEF\xBB\xBFdata: b\n\n", &mut push)
            .expect("small");
        assert_eq!(items, vec![message("a", Some("5")), message("b", None)]);
    }

    /// One block of a generated stream.
    #[derive(Debug, Clone)]
    enum Block {
        Event {
            event_type: Option<String>,
            data: Vec<String>,
            id: Option<String>,
        },
        /// An `id` line and a blank line: nothing dispatched, the id persists.
        IdOnly(String),
        Comment(String),
        Retry(u64),
    }

    fn line_text() -> impl Strategy<Value = String> {
        "[^\r\n]{0,12}"
    }

    fn block() -> impl Strategy<Value = Block> {
        let id = "[^\r\n\0]{0,6}";
        prop_oneof![
            4 => (
                proptest::option::of(line_text()),
                proptest::collection::vec(line_text(), 1..4),
                proptest::option::of(id),
            )
                .prop_map(|(event_type, data, id)| Block::Event { event_type, data, id }),
            1 => id.prop_map(Block::IdOnly),
            1 => line_text().prop_map(Block::Comment),
            1 => any::<u64>().prop_map(Block::Retry),
        ]
    }

    /// Serializes blocks to lines, and computes the items a parser must report.
    fn lines_and_items(blocks: &[Block]) -> (Vec<(String, String)>, Vec<Owned>) {
        let mut lines = Vec::new();
        let mut items = Vec::new();
        let mut last_id = String::new();
        // Without a space after the colon unless the value starts with one.
        let field = |name: &str, value: &str, spaced: bool| {
            let sep = if spaced || value.starts_with(' ') {
                ": "
            } else {
                ":"
            };
            (name.to_owned(), format!("{sep}{value}"))
        };
        for (i, block) in blocks.iter().enumerate() {
            let spaced = i % 2 == 0;
            match block {
                Block::Event {
                    event_type,
                    data,
                    id,
                } => {
                    if let Some(t) = event_type {
                        lines.push(field("event", t, spaced));
                    }
                    for d in data {
                        lines.push(field("data", d, spaced));
                    }
                    if let Some(id) = id {
                        lines.push(field("id", id, spaced));
                        last_id.clone_from(id);
                    }
                    lines.push((String::new(), String::new()));
                    let event_type = match event_type.as_deref() {
                        None | Some("") => "message",
                        Some(t) => t,
                    };
                    let id = Some(last_id.as_str()).filter(|id| !id.is_empty());
                    items.push(event(event_type, &data.join("\n"), id));
                }
                Block::IdOnly(id) => {
                    lines.push(field("id", id, spaced));
                    lines.push((String::new(), String::new()));
                    last_id.clone_from(id);
                }
                Block::Comment(text) => {
                    lines.push((String::new(), format!(": {text}")));
                    items.push(Owned::Comment(text.clone()));
                }
                Block::Retry(ms) => {
                    lines.push(field("retry", &ms.to_string(), spaced));
                    items.push(Owned::Retry(*ms));
                }
            }
        }
        (lines, items)
    }

    /// Joins lines with the chosen ends (0 LF, 1 CR, 2 CRLF). An empty line
    /// after a CR cannot end in LF: CR LF would read as one line end, so
    /// any serializer must pick another end there, and so does this one.
    fn serialize(lines: &[(String, String)], ends: &[u8], bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(BOM);
        }
        let mut after_cr = false;
        for (i, (name, rest)) in lines.iter().enumerate() {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(rest.as_bytes());
            let mut end = ends[i % ends.len()] % 3;
            if after_cr && name.is_empty() && rest.is_empty() && end == 0 {
                end = 1;
            }
            out.extend_from_slice(match end {
                0 => b"\n",
                1 => b"\r",
                _ => b"\r\n",
            });
            after_cr = end == 1;
        }
        out
    }

    fn split_at_points<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&bytes[start..cut]);
            start = cut;
        }
        chunks.push(&bytes[start..]);
        chunks
    }

    proptest! {
        #[test]
        fn generated_streams_parse_back_whatever_the_chunks(
            blocks in proptest::collection::vec(block(), 0..12),
            ends in proptest::collection::vec(any::<u8>(), 1..8),
            bom in any::<bool>(),
            points in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let (lines, expected) = lines_and_items(&blocks);
            let bytes = serialize(&lines, &ends, bom);
            prop_assert_eq!(&parse(&bytes), &expected);
            prop_assert_eq!(&parse_chunks(split_at_points(&bytes, &points)), &expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_ignore_chunking(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' ')],
                0..256,
            ),
            points in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let whole = parse(&bytes);
            prop_assert_eq!(&parse_chunks(split_at_points(&bytes, &points)), &whole);
            prop_assert_eq!(&parse_bytewise(&bytes), &whole);
        }

        #[test]
        fn decoding_lines_equals_decoding_the_stream(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\n'), Just(b':'), Just(0xEF), Just(0xBB), Just(0xBF)],
                0..256,
            ),
        ) {
            let decoded = String::from_utf8_lossy(&bytes);
            prop_assert_eq!(parse(&bytes), parse(decoded.as_bytes()));
        }

        #[test]
        fn tiny_limits_error_instead_of_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..128),
            limit in 0usize..16,
            points in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut parser = EventStreamParser::with_max_size(limit);
            for chunk in split_at_points(&bytes, &points) {
                let _ = parser.feed(chunk, |_| {});
                prop_assert!(parser.partial.len() <= limit);
                prop_assert!(parser.fields.data.len() <= limit);
            }
        }
    }
}
