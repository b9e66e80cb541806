//! What a feed stream yields ([`Msg`]) and how one event's data becomes a
//! message ([`MessageDecoder`]).
//!
//! Decoding is a step of its own so a stream can read any server: today the
//! feed server's JSON ([`FeedJson`]); a decoder reading the stamp and id of
//! another server's events (JSON pointers, a time unit) is one more
//! implementation, given to the opener instead.

use std::fmt;

use server::event::Message;

/// One message from the feed, decoded just enough to measure it.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The first message of every stream: what the server negotiated.
    Hello {
        protocol: String,
        resume: String,
        last_id: u64,
    },
    Tick {
        id: u64,
        sent_unix_ns: u64,
        /// When the chunk that carried it was read (one clock read per chunk).
        recv_unix_ns: u64,
        bytes: usize,
    },
    Gap {
        from: u64,
        to: u64,
    },
    /// An event of another server, read through JSON pointers
    /// (`FieldDecoder`): its id and send time when it carries them.
    Event {
        id: Option<u64>,
        stamp: Stamp,
        recv_unix_ns: u64,
        bytes: usize,
    },
    /// An SSE keep-alive comment or a WebSocket ping.
    KeepAlive,
    /// The SSE `retry:` field, in milliseconds.
    Retry(u64),
}

/// Another server's send time for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Sent at this time, ns since the Unix epoch.
    Sent(u64),
    /// No stamp field was given: no latency is measured.
    Unstamped,
    /// The stamp field is absent from this event, or not a time.
    Bad(StampError),
}

/// Why an event's stamp could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    #[error("the stamp field is absent")]
    Absent,
    #[error("the event's data is not JSON")]
    NotJson,
    #[error("the stamp field is not a number (or, for rfc3339, a UTC date-time string)")]
    NotATime,
    #[error("the stamp is negative or beyond the year 2554 in nanoseconds")]
    OutOfRange,
}

/// One event as the wire delivered it: an SSE event's fields, or a
/// WebSocket text message (type `message`, no id field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent<'a> {
    /// The SSE `event` field (`message` when absent).
    pub event_type: &'a str,
    /// The SSE `id` field in force, if any.
    pub id: Option<&'a str>,
    /// The SSE `data` lines joined, or the WebSocket text.
    pub data: &'a str,
}

impl<'a> RawEvent<'a> {
    /// A WebSocket text message.
    pub fn text(data: &'a str) -> Self {
        RawEvent {
            event_type: "message",
            id: None,
            data,
        }
    }
}

/// Turns one event into a message. It runs once per event on the hot path,
/// with the data borrowed from the reader's buffers: a tick must not allocate.
pub trait MessageDecoder: Send + Sync + fmt::Debug {
    /// The message, `Ok(None)` for an event that is not one (skipped, not
    /// counted), or why the event is malformed.
    fn decode(&self, event: RawEvent<'_>, recv_unix_ns: u64) -> Result<Option<Msg>, String>;
}

/// The feed server's JSON (`server::event::decode`): ticks, gaps and the
/// hello, whatever the SSE event type.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedJson;

impl MessageDecoder for FeedJson {
    fn decode(&self, event: RawEvent<'_>, recv_unix_ns: u64) -> Result<Option<Msg>, String> {
        decode(event.data, recv_unix_ns).map(Some)
    }
}

/// Decodes one JSON message (an SSE `data` or a WS text message) with the
/// server's own decoder; ticks borrow from the input: no allocation per event.
pub fn decode(json: &str, recv_unix_ns: u64) -> Result<Msg, String> {
    Ok(match server::event::decode(json)? {
        Message::Tick { id, sent_unix_ns } => Msg::Tick {
            id,
            sent_unix_ns,
            recv_unix_ns,
            bytes: json.len(),
        },
        Message::Gap(g) => Msg::Gap {
            from: g.from,
            to: g.to,
        },
        Message::Hello {
            protocol,
            resume,
            last_id,
        } => Msg::Hello {
            protocol: protocol.into_owned(),
            resume: resume.into_owned(),
            last_id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_message() {
        let t = decode(
            r#"{"type":"tick","id":5,"server_time":"x","sent_unix_ns":10,"pad":"xx"}"#,
            20,
        )
        .unwrap();
        assert!(matches!(
            t,
            Msg::Tick {
                id: 5,
                sent_unix_ns: 10,
                recv_unix_ns: 20,
                ..
            }
        ));
        let g = decode(r#"{"type":"gap","from":3,"to":9}"#, 0).unwrap();
        assert_eq!(g, Msg::Gap { from: 3, to: 9 });
        let h = decode(
            r#"{"type":"hello","transport":"sse","protocol":"h2","resume":"none","last_id":4,"rate_hz":1.0}"#,
            0,
        )
        .unwrap();
        assert!(matches!(h, Msg::Hello { ref protocol, last_id: 4, .. } if protocol == "h2"));
    }
}
