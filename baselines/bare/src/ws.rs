//! WebSocket over HTTP/1.1: tungstenite checks the handshake and parses what
//! the client sends; the feed's frames are written pre-encoded (`wsframe`).
//!
//! A tungstenite `WebSocketContext` reads the client's frames from the bytes
//! the subscriber loop hands it: it unmasks them, answers pings and the
//! closing handshake, and refuses malformed or oversized frames. Its replies
//! are queued in the subscriber's outbox between whole feed frames, so
//! control and data frames never interleave mid-frame.

use std::io::{self, Read, Write};

use bytes::Bytes;
use server::event::{hello_json, ws_gap, EncodedEvent, Gap, Hello};
use tungstenite::error::Error as WsError;
use tungstenite::handshake::server::{create_response, write_response};
use tungstenite::http;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

use crate::fanout::FeedEvent;
use crate::outbox::Outbox;
use crate::stats::Transport;
use crate::subscriber::{Framing, Incoming};
use crate::wsframe;

/// The largest frame or message a client may send; anything bigger is
/// refused from its header (close 1009), before it is buffered.
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// The `101 Switching Protocols` answer to a valid upgrade request, or why
/// the request is not one (for a `400`).
pub fn handshake(request: &http::Request<()>) -> Result<Bytes, String> {
    let response = create_response(request).map_err(|e| format!("not a WebSocket upgrade: {e}"))?;
    let mut head = Vec::with_capacity(160);
    write_response(&mut head, &response).map_err(|e| format!("writing the handshake: {e}"))?;
    Ok(Bytes::from(head))
}

#[derive(Debug)]
pub struct WsFraming {
    context: WebSocketContext,
}

impl WsFraming {
    /// `early` is what the client sent after its request head.
    pub fn new(early: Vec<u8>) -> Self {
        let config = WebSocketConfig::default()
            // Clients of a feed send little (pings, a close): a small first
            // buffer, not tungstenite's 128 KiB.
            .read_buffer_size(512)
            .max_frame_size(Some(MAX_CLIENT_MESSAGE))
            .max_message_size(Some(MAX_CLIENT_MESSAGE));
        WsFraming {
            context: WebSocketContext::from_partially_read(early, Role::Server, Some(config)),
        }
    }
}

impl Framing for WsFraming {
    const TRANSPORT: Transport = Transport::Ws;

    fn event(&self, event: &FeedEvent) -> Bytes {
        event.ws_frame.clone()
    }

    fn replayed(&self, event: &EncodedEvent) -> Bytes {
        wsframe::text(&event.ws)
    }

    fn gap(&self, gap: Gap) -> Bytes {
        wsframe::text(&ws_gap(gap))
    }

    fn hello(&self, hello: &Hello) -> Bytes {
        wsframe::text(&hello_json(hello))
    }

    fn keepalive(&self) -> Bytes {
        Bytes::from_static(PING)
    }

    fn incoming(&mut self, bytes: &[u8], outbox: &mut Outbox) -> Incoming {
        let mut replies = Vec::new();
        let mut exchange = Exchange {
            input: bytes,
            output: &mut replies,
        };
        let incoming = loop {
            match self.context.read(&mut exchange) {
                // The feed ignores what clients say; pings and the close
                // are answered by the context itself.
                Ok(_) => continue,
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    break Incoming::Continue
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break Incoming::End,
                Err(e) => {
                    tracing::debug!(error = %e, "closing a WebSocket on a bad frame");
                    outbox.push(Bytes::from(replies));
                    outbox.push(wsframe::close(close_code(&e), "bad frame"));
                    return Incoming::End;
                }
            }
        };
        outbox.push(Bytes::from(replies));
        incoming
    }

    fn farewell(&self) -> Option<Bytes> {
        Some(wsframe::close(CloseCode::Away, "server shutting down"))
    }
}

/// An empty ping frame, the same bytes `wsframe::ping` makes.
const PING: &[u8] = b"\x89\x00";

fn close_code(error: &WsError) -> CloseCode {
    match error {
        WsError::Capacity(_) => CloseCode::Size,
        WsError::Utf8(_) => CloseCode::Invalid,
        WsError::Protocol(_) => CloseCode::Protocol,
        _ => CloseCode::Error,
    }
}

/// The context's stream: reads the bytes just received (then "would
/// block"), and collects what it writes (pongs, the close reply).
struct Exchange<'a> {
    input: &'a [u8],
    output: &'a mut Vec<u8>,
}

impl Read for Exchange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.input.read(buf)?;
        Ok(n)
    }
}

impl Write for Exchange<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_head;

    fn request(extra: &str) -> http::Request<()> {
        let raw = format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
        );
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn accepts_an_upgrade_and_names_what_is_missing() {
        let ok =
            request("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
        let head = String::from_utf8(handshake(&ok).unwrap().to_vec()).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // RFC 6455's own example key and answer.
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        let err = handshake(&request("Sec-WebSocket-Version: 13\r\n")).unwrap_err();
        assert!(err.contains("Sec-WebSocket-Key"), "{err}");
    }

    #[test]
    fn ping_is_answered_and_close_is_echoed() {
        assert_eq!(PING, &wsframe::ping()[..]);
        let mut ws = WsFraming::new(Vec::new());
        let mut outbox = Outbox::default();
        // A masked ping "hi" (mask 0), then a masked close 1000.
        let ping = b"\x89\x82\x00\x00\x00\x00hi";
        assert_eq!(ws.incoming(ping, &mut outbox), Incoming::Continue);
        let mut sent = Vec::new();
        outbox
            .write_with(|s| Write::write_vectored(&mut sent, s))
            .unwrap();
        assert_eq!(sent, b"\x8a\x02hi");
        let close = b"\x88\x82\x00\x00\x00\x00\x03\xe8";
        assert_eq!(ws.incoming(close, &mut outbox), Incoming::End);
        sent.clear();
        outbox
            .write_with(|s| Write::write_vectored(&mut sent, s))
            .unwrap();
        assert_eq!(sent, b"\x88\x02\x03\xe8");
    }

    #[test]
    fn garbage_and_oversized_frames_close_with_a_code() {
        for (bytes, code) in [
            // Unmasked client frame: a protocol error.
            (&b"\x81\x02hi"[..], 1002u16),
            // Reserved opcode 0x3.
            (b"\x83\x80\x00\x00\x00\x00", 1002),
            // A text frame that is not UTF-8.
            (b"\x81\x81\x00\x00\x00\x00\xff", 1007),
            // A declared 16 MiB frame, refused from its header.
            (
                b"\x82\xff\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00",
                1009,
            ),
        ] {
            let mut ws = WsFraming::new(Vec::new());
            let mut outbox = Outbox::default();
            assert_eq!(ws.incoming(bytes, &mut outbox), Incoming::End);
            let mut sent = Vec::new();
            while !outbox.is_empty() {
                outbox
                    .write_with(|s| Write::write_vectored(&mut sent, s))
                    .unwrap();
            }
            assert_eq!(sent[0], 0x88, "{sent:?}");
            assert_eq!(u16::from_be_bytes([sent[2], sent[3]]), code, "{sent:?}");
        }
    }
}
