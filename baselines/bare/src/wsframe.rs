//! Server-to-client WebSocket frames, encoded to bytes once.
//!
//! Frames a server sends are not masked (RFC 6455 §5.1), so one encoded
//! frame is valid on every connection: the feed frames each tick once and
//! every subscriber writes the same bytes, batching several frames into one
//! `writev` when it is behind. tungstenite's `WebSocket` would instead copy
//! each message into a per-connection write buffer and flush it itself, which
//! rules out both sharing and batching; so tungstenite formats the frames
//! here and parses what clients send (see `ws`), and the write path is ours.

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};

fn encode(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    frame
        .format(&mut out)
        .expect("formatting a frame into a Vec cannot fail");
    Bytes::from(out)
}

/// A final text frame carrying `payload` (which must be UTF-8: callers pass
/// the feed's JSON).
pub fn text(payload: &str) -> Bytes {
    encode(Frame::message(
        payload.as_bytes().to_vec(),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// An empty ping: the keep-alive of an idle WebSocket.
pub fn ping() -> Bytes {
    encode(Frame::ping(Bytes::new()))
}

/// A close frame with a code and a short reason (at most 123 bytes).
pub fn close(code: CloseCode, reason: &'static str) -> Bytes {
    encode(Frame::close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unmasked_and_exact() {
        assert_eq!(&text("hi")[..], b"\x81\x02hi");
        assert_eq!(&ping()[..], b"\x89\x00");
        assert_eq!(&close(CloseCode::Away, "bye")[..], b"\x88\x05\x03\xe9bye");
        // 126..65535 bytes take a 16-bit length.
        let long = "x".repeat(300);
        let f = text(&long);
        assert_eq!(&f[..4], b"\x81\x7e\x01\x2c");
        assert_eq!(f.len(), 304);
    }
}
