//! [`FieldDecoder`]: reads any server's events by where they keep their
//! send time and id (JSON pointers), for `--sse-url`/`--ws-url`.
//!
//! A missing or unreadable stamp is not an error here: the event is still
//! counted (arrival rate, gaps), with [`Stamp::Bad`] saying why it has no
//! latency; whoever holds the connection decides when too many of them
//! mean the settings are wrong.

use std::time::UNIX_EPOCH;

use super::json_fields::{as_string, decimal_to_ns, Pointer};
use super::message::{MessageDecoder, Msg, RawEvent, Stamp, StampError};
use crate::result::{AnyServer, StampUnit};

/// Any server's events, read through JSON pointers.
#[derive(Debug, Clone)]
pub struct FieldDecoder {
    stamp: Option<(Pointer, StampUnit)>,
    /// Where the id is inside the JSON; `None`: the SSE `id:` field
    /// (a WebSocket message then has none).
    id: Option<Pointer>,
    /// Only SSE events of this type count.
    event: Option<String>,
}

impl FieldDecoder {
    /// The decoder the settings describe (pointers checked). `--event`
    /// names an SSE event type: a WebSocket's decoder (`sse` false) has no
    /// types to filter on.
    pub fn new(any: &AnyServer, sse: bool) -> Result<FieldDecoder, String> {
        let stamp = match &any.stamp_field {
            Some(p) => Some((
                Pointer::parse(p).map_err(|e| format!("--stamp-field: {e}"))?,
                any.stamp_unit,
            )),
            None => None,
        };
        let id = match &any.id_field {
            Some(p) => Some(Pointer::parse(p).map_err(|e| format!("--id-field: {e}"))?),
            None => None,
        };
        Ok(FieldDecoder {
            stamp,
            id,
            event: if sse { any.event.clone() } else { None },
        })
    }

    /// The configured stamp, for messages: `/ts (ms)`.
    pub fn stamp_shown(&self) -> Option<String> {
        self.stamp.as_ref().map(|(p, u)| format!("{p} ({u})"))
    }

    fn stamp(&self, data: &str) -> Stamp {
        let Some((pointer, unit)) = &self.stamp else {
            return Stamp::Unstamped;
        };
        let raw = match pointer.find(data) {
            Ok(Some(raw)) => raw,
            Ok(None) => return Stamp::Bad(StampError::Absent),
            Err(_) => return Stamp::Bad(StampError::NotJson),
        };
        match read_stamp(raw, *unit) {
            Ok(ns) => Stamp::Sent(ns),
            Err(e) => Stamp::Bad(e),
        }
    }

    fn id(&self, event: &RawEvent<'_>) -> Option<u64> {
        match &self.id {
            None => event.id.and_then(|id| id.trim().parse().ok()),
            Some(pointer) => {
                let raw = pointer.find(event.data).ok()??;
                match as_string(raw) {
                    Some(s) => s.trim().parse().ok(),
                    None => raw.get().parse().ok(),
                }
            }
        }
    }
}

/// A stamp's value in `unit`: a number (or a string holding one), or a UTC
/// RFC 3339 date-time string.
fn read_stamp(raw: &serde_json::value::RawValue, unit: StampUnit) -> Result<u64, StampError> {
    let text = as_string(raw);
    match unit.digits_to_ns() {
        Some(digits) => decimal_to_ns(text.as_deref().unwrap_or(raw.get()), digits),
        None => {
            let s = text.ok_or(StampError::NotATime)?;
            let t = humantime::parse_rfc3339_weak(s.trim()).map_err(|_| StampError::NotATime)?;
            let ns = t
                .duration_since(UNIX_EPOCH)
                .map_err(|_| StampError::OutOfRange)?
                .as_nanos();
            u64::try_from(ns).map_err(|_| StampError::OutOfRange)
        }
    }
}

impl MessageDecoder for FieldDecoder {
    fn decode(&self, event: RawEvent<'_>, recv_unix_ns: u64) -> Result<Option<Msg>, String> {
        if let Some(wanted) = &self.event {
            if event.event_type != wanted {
                return Ok(None);
            }
        }
        Ok(Some(Msg::Event {
            id: self.id(&event),
            stamp: self.stamp(event.data),
            recv_unix_ns,
            bytes: event.data.len(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(
        stamp: Option<(&str, StampUnit)>,
        id: Option<&str>,
        event: Option<&str>,
    ) -> FieldDecoder {
        FieldDecoder::new(
            &AnyServer {
                sse_url: Some("http://127.0.0.1:1/".into()),
                stamp_field: stamp.map(|s| s.0.to_string()),
                stamp_unit: stamp.map_or(StampUnit::Ns, |s| s.1),
                id_field: id.map(String::from),
                event: event.map(String::from),
                ..AnyServer::default()
            },
            true,
        )
        .unwrap()
    }

    fn event<'a>(event_type: &'a str, id: Option<&'a str>, data: &'a str) -> RawEvent<'a> {
        RawEvent {
            event_type,
            id,
            data,
        }
    }

    fn parts(msg: Option<Msg>) -> (Option<u64>, Stamp) {
        match msg {
            Some(Msg::Event { id, stamp, .. }) => (id, stamp),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stamps_in_every_unit() {
        let ms = decoder(Some(("/at", StampUnit::Ms)), Some("/seq"), None);
        let m = ms
            .decode(RawEvent::text(r#"{"seq":"12","at":1764400000123.5}"#), 0)
            .unwrap();
        assert_eq!(parts(m), (Some(12), Stamp::Sent(1_764_400_000_123_500_000)));
        let iso = decoder(Some(("/t", StampUnit::Rfc3339)), None, None);
        let m = iso
            .decode(
                event(
                    "message",
                    Some("7"),
                    r#"{"t":"2026-11-29T06:00:00.000000123Z"}"#,
                ),
                0,
            )
            .unwrap();
        assert_eq!(parts(m), (Some(7), Stamp::Sent(1_795_932_000_000_000_123)));
        let ns = decoder(Some(("/n", StampUnit::Ns)), None, None);
        let m = ns
            .decode(RawEvent::text(r#"{"n":"1795932000000000123"}"#), 0)
            .unwrap();
        assert_eq!(parts(m), (None, Stamp::Sent(1_795_932_000_000_000_123)));
    }

    #[test]
    fn what_is_missing_is_said_not_guessed() {
        let d = decoder(Some(("/at", StampUnit::Ms)), None, None);
        let cases = [
            (r#"{"other":1}"#, Stamp::Bad(StampError::Absent)),
            (r#"{"at":"soon"}"#, Stamp::Bad(StampError::NotATime)),
            (r#"{"at":-3}"#, Stamp::Bad(StampError::OutOfRange)),
            ("ping", Stamp::Bad(StampError::NotJson)),
        ];
        for (data, want) in cases {
            let m = d.decode(event("message", Some("x"), data), 0).unwrap();
            assert_eq!(parts(m), (None, want), "{data}");
        }
        let bare = decoder(None, None, None);
        let m = bare
            .decode(event("message", Some("5"), "anything"), 0)
            .unwrap();
        assert_eq!(parts(m), (Some(5), Stamp::Unstamped));
    }

    #[test]
    fn other_event_types_are_skipped_when_one_is_named() {
        let d = decoder(None, None, Some("tick"));
        assert_eq!(d.decode(event("hello", None, "{}"), 0), Ok(None));
        assert!(d.decode(event("tick", None, "{}"), 0).unwrap().is_some());
        let any = AnyServer {
            event: Some("tick".into()),
            ..AnyServer::default()
        };
        let ws = FieldDecoder::new(&any, false).unwrap();
        assert!(
            ws.decode(RawEvent::text("{}"), 0).unwrap().is_some(),
            "no types on a WebSocket"
        );
    }
}
