//! One tick as a stream entry: the entry id is `<feed id>-0`, so ids are
//! the same on every instance and Redis itself refuses a second producer's
//! copy of an id (`XADD` needs an id above the stream's top); the fields
//! carry what re-encodes the event byte for byte on every instance.

use std::sync::Arc;

use redis::streams::StreamId;
use redis::Value;

use crate::config::MAX_PAYLOAD_BYTES;
use crate::event::{encode_tick, SharedEvent};

/// The field holding the tick's scheduled time.
pub const SENT_FIELD: &str = "sent_unix_ns";
/// The field holding the padding the JSON was made with.
pub const PAYLOAD_FIELD: &str = "payload_bytes";

/// A tick as the stream holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub sent_unix_ns: u64,
    pub payload_bytes: usize,
}

/// An entry some other writer put in the stream that is not a tick.
#[derive(Debug, thiserror::Error)]
#[error("stream entry `{id}`: {reason}")]
pub struct EntryError {
    id: String,
    reason: String,
}

/// The stream entry id of feed id `id`.
pub fn stream_id(id: u64) -> String {
    format!("{id}-0")
}

impl Entry {
    /// Reads an entry, refusing what no producer of this feed writes.
    pub fn parse(raw: &StreamId) -> Result<Entry, EntryError> {
        let bad = |reason: String| EntryError {
            id: crate::event::snippet(&raw.id),
            reason,
        };
        let id = match raw.id.split_once('-') {
            Some((ms, "0")) => ms.parse::<u64>().ok(),
            _ => None,
        }
        .filter(|&id| id > 0)
        .ok_or_else(|| bad("not a feed id (`<id>-0`)".into()))?;
        let field = |name: &str| -> Result<u64, EntryError> {
            let v = raw
                .map
                .get(name)
                .ok_or_else(|| bad(format!("no `{name}` field")))?;
            number(v).ok_or_else(|| bad(format!("`{name}` is not a whole number")))
        };
        let sent_unix_ns = field(SENT_FIELD)?;
        let payload_bytes = usize::try_from(field(PAYLOAD_FIELD)?)
            .ok()
            .filter(|&p| p <= MAX_PAYLOAD_BYTES)
            .ok_or_else(|| bad(format!("`{PAYLOAD_FIELD}` is over {MAX_PAYLOAD_BYTES}")))?;
        Ok(Entry {
            id,
            sent_unix_ns,
            payload_bytes,
        })
    }

    /// The event, encoded once for both wires on this instance.
    pub fn event(&self) -> SharedEvent {
        Arc::new(encode_tick(self.id, self.sent_unix_ns, self.payload_bytes))
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn raw(id: &str, fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: id.into(),
            map: fields
                .iter()
                .map(|(k, v)| (k.to_string(), Value::BulkString(v.as_bytes().to_vec())))
                .collect::<HashMap<_, _>>(),
            ..Default::default()
        }
    }

    #[test]
    fn a_tick_entry_reads_back() {
        let e = Entry::parse(&raw(
            "42-0",
            &[(SENT_FIELD, "1700000000000000000"), (PAYLOAD_FIELD, "256")],
        ))
        .unwrap();
        assert_eq!(e.id, 42);
        assert_eq!(stream_id(e.id), "42-0");
        let ev = e.event();
        assert_eq!(
            (ev.id, ev.sent_unix_ns, ev.ws.len()),
            (42, 1_700_000_000_000_000_000, 256)
        );
    }

    #[test]
    fn foreign_entries_are_errors_not_panics() {
        let ok = [(SENT_FIELD, "1"), (PAYLOAD_FIELD, "0")];
        for (id, fields) in [
            ("1700000000000-5", &ok[..]),
            ("0-0", &ok[..]),
            ("x", &ok[..]),
            ("3-0", &[(SENT_FIELD, "1")][..]),
            ("3-0", &[(SENT_FIELD, "-1"), (PAYLOAD_FIELD, "0")][..]),
            (
                "3-0",
                &[(SENT_FIELD, "1"), (PAYLOAD_FIELD, "99999999999")][..],
            ),
        ] {
            assert!(Entry::parse(&raw(id, fields)).is_err(), "{id} {fields:?}");
        }
    }
}
