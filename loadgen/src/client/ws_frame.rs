//! WebSocket frames as a client sees them (RFC 6455 §5): a server's frame
//! header parsed at the front of the read buffer, where its payload lies
//! in that buffer, and the client's own frames written masked.
//!
//! The header's bit layout is tungstenite's ([`FrameHeader`]); what this
//! module adds is what a client must refuse from a server and tungstenite
//! leaves to its message layer: a masked frame, reserved bits without an
//! extension, a control frame that is fragmented or over 125 bytes, and a
//! declared length over the message limit, refused from the header alone
//! so nothing is buffered for it; and a close frame's body, checked as
//! tungstenite checked it (a status code a peer may send, a UTF-8
//! reason). Parsing allocates nothing: the payload is a range of the
//! caller's buffer (only a refusal's message is a `String`).

use std::io::Cursor;

use thiserror::Error;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The most payload a control frame (close, ping, pong) carries.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Text,
    Binary,
    Continuation,
    Close,
    Ping,
    Pong,
}

impl FrameKind {
    fn is_control(self) -> bool {
        matches!(self, FrameKind::Close | FrameKind::Ping | FrameKind::Pong)
    }

    fn opcode(self) -> OpCode {
        match self {
            FrameKind::Text => OpCode::Data(Data::Text),
            FrameKind::Binary => OpCode::Data(Data::Binary),
            FrameKind::Continuation => OpCode::Data(Data::Continue),
            FrameKind::Close => OpCode::Control(Control::Close),
            FrameKind::Ping => OpCode::Control(Control::Ping),
            FrameKind::Pong => OpCode::Control(Control::Pong),
        }
    }
}

/// A server frame's header, checked: the frame is `header_len` bytes of
/// header, then `payload_len` bytes of (unmasked) payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub kind: FrameKind,
    /// The last frame of its message.
    pub fin: bool,
    pub header_len: usize,
    pub payload_len: usize,
}

impl FrameHead {
    /// Header and payload together.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Why a server's frame is refused. The connection cannot go on after one:
/// the reader no longer knows where the next frame starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("a frame with the reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("a frame with reserved bits set ({0:#05b}) although no extension was negotiated")]
    ReservedBits(u8),
    #[error("a masked frame from the server (only clients mask, RFC 6455 §5.1)")]
    Masked,
    #[error("a {kind:?} frame of {len} bytes: control frames carry at most {MAX_CONTROL_PAYLOAD}")]
    ControlTooLarge { kind: FrameKind, len: u64 },
    #[error("a fragmented {0:?} frame: control frames cannot be fragmented")]
    ControlFragmented(FrameKind),
    #[error("a frame of {len} bytes, over the {max}-byte message limit")]
    TooLarge { len: u64, max: usize },
    #[error("an unreadable frame header: {0}")]
    Header(String),
}

/// The header of the frame at the start of `input`, checked; `Ok(None)`
/// while the header is incomplete (its payload need not have arrived).
/// A payload longer than `max_payload` is refused.
pub fn parse_head(input: &[u8], max_payload: usize) -> Result<Option<FrameHead>, FrameError> {
    let mut cursor = Cursor::new(input);
    let (header, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::InvalidOpcode(
            code,
        ))) => return Err(FrameError::ReservedOpcode(code)),
        Err(e) => return Err(FrameError::Header(e.to_string())),
    };
    let kind = match header.opcode {
        OpCode::Data(Data::Text) => FrameKind::Text,
        OpCode::Data(Data::Binary) => FrameKind::Binary,
        OpCode::Data(Data::Continue) => FrameKind::Continuation,
        OpCode::Control(Control::Close) => FrameKind::Close,
        OpCode::Control(Control::Ping) => FrameKind::Ping,
        OpCode::Control(Control::Pong) => FrameKind::Pong,
        OpCode::Data(Data::Reserved(code)) | OpCode::Control(Control::Reserved(code)) => {
            return Err(FrameError::ReservedOpcode(code))
        }
    };
    let rsv = u8::from(header.rsv1) << 2 | u8::from(header.rsv2) << 1 | u8::from(header.rsv3);
    if rsv != 0 {
        return Err(FrameError::ReservedBits(rsv));
    }
    if header.mask.is_some() {
        return Err(FrameError::Masked);
    }
    if kind.is_control() {
        if !header.is_final {
            return Err(FrameError::ControlFragmented(kind));
        }
        if len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(FrameError::ControlTooLarge { kind, len });
        }
    }
    let payload_len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= max_payload)
        .ok_or(FrameError::TooLarge {
            len,
            max: max_payload,
        })?;
    let header_len = usize::try_from(cursor.position()).expect("a header is at most 14 bytes long");
    Ok(Some(FrameHead {
        kind,
        fin: header.is_final,
        header_len,
        payload_len,
    }))
}

/// Whether a close frame's body is one a server may send (RFC 6455
/// §5.5.1, §7.4): empty, or a status code other than the reserved and
/// never-sent ones (1005, 1006, 1015, below 1000, 1016–2999, 5000 and up)
/// followed by a UTF-8 reason.
pub fn check_close_body(body: &[u8]) -> Result<(), String> {
    match body {
        [] => Ok(()),
        [_] => Err("a close frame with a 1-byte body (a status code takes 2)".into()),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !CloseCode::from(code).is_allowed() {
                return Err(format!(
                    "a close frame with status code {code}, which a peer may not send"
                ));
            }
            std::str::from_utf8(reason)
                .map(|_| ())
                .map_err(|_| "a close frame whose reason is not UTF-8".into())
        }
    }
}

/// Appends a client frame to `out`: final, no extension, `payload` masked
/// with `mask` (RFC 6455 §5.3: every client frame is).
pub fn write_masked(out: &mut Vec<u8>, kind: FrameKind, payload: &[u8], mask: [u8; 4]) {
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: kind.opcode(),
        mask: Some(mask),
    };
    header
        .format(payload.len() as u64, out)
        .expect("writing into a Vec cannot fail");
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `bytes` with the mask, repeated from its first byte.
pub fn apply_mask(bytes: &mut [u8], mask: [u8; 4]) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A fresh masking key. RFC 6455 asks for an unpredictable one so that a
/// page's script cannot choose the bytes an intermediary sees; this
/// client's payloads are its own, so a fast generator is enough.
pub fn new_mask() -> [u8; 4] {
    fastrand::u32(..).to_ne_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    #[test]
    fn close_bodies_a_server_may_and_may_not_send() {
        let body = |code: u16, reason: &[u8]| [&code.to_be_bytes()[..], reason].concat();
        for ok in [
            vec![],
            body(1000, b""),
            body(1001, b"going away"),
            body(1011, b""),
            body(4000, b"app"),
        ] {
            assert_eq!(check_close_body(&ok), Ok(()), "{ok:?}");
        }
        for bad in [
            vec![3],
            body(999, b""),
            body(1005, b""),
            body(1006, b""),
            body(1015, b""),
            body(2000, b""),
            body(5000, b""),
            body(1000, &[0xFF]),
        ] {
            assert!(check_close_body(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_text_frame_of_each_length_form() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let mut frame = vec![0x81];
            match len {
                0..=125 => frame.push(len as u8),
                126..=65535 => {
                    frame.push(126);
                    frame.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    frame.push(127);
                    frame.extend_from_slice(&(len as u64).to_be_bytes());
                }
            }
            let header_len = frame.len();
            let head = parse_head(&frame, MAX).unwrap().unwrap();
            assert_eq!(
                head,
                FrameHead {
                    kind: FrameKind::Text,
                    fin: true,
                    header_len,
                    payload_len: len
                }
            );
            assert_eq!(parse_head(&frame[..header_len - 1], MAX), Ok(None));
        }
    }

    #[test]
    fn what_a_client_refuses() {
        let refused = |bytes: &[u8]| parse_head(bytes, MAX).unwrap_err();
        assert_eq!(refused(&[0x83, 0]), FrameError::ReservedOpcode(3));
        assert_eq!(refused(&[0x8F, 2]), FrameError::ReservedOpcode(0xF));
        assert_eq!(refused(&[0xC1, 0]), FrameError::ReservedBits(0b100));
        assert_eq!(refused(&[0x81, 0x81, 1, 2, 3, 4]), FrameError::Masked);
        assert_eq!(
            refused(&[0x09, 0]),
            FrameError::ControlFragmented(FrameKind::Ping)
        );
        assert_eq!(
            refused(&[0x89, 126, 0, 126]),
            FrameError::ControlTooLarge {
                kind: FrameKind::Ping,
                len: 126
            }
        );
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            refused(&huge),
            FrameError::TooLarge {
                len: u64::MAX,
                max: MAX
            }
        );
    }

    #[test]
    fn a_written_frame_parses_back_once_unmasked() {
        let mut out = Vec::new();
        let mask = [1, 2, 3, 4];
        write_masked(&mut out, FrameKind::Pong, b"workbench", mask);
        assert_eq!(out[0], 0x8A, "final pong");
        assert_eq!(out[1], 0x80 | 9, "masked, 9 bytes");
        assert_eq!(&out[2..6], &mask);
        let mut payload = out[6..].to_vec();
        apply_mask(&mut payload, mask);
        assert_eq!(payload, b"workbench");
    }

    proptest! {
        /// Any bytes: a header, not yet, or an error; never a panic, and a
        /// header never claims more than the limit.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(Some(head)) = parse_head(&bytes, 1000) {
                prop_assert!(head.payload_len <= 1000);
                prop_assert!(head.header_len <= 14);
            }
        }
    }
}
