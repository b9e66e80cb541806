//! `--ws-max-frame` enforced on the bytes as they arrive, before anything
//! buffers a frame.
//!
//! actix-http's frame parser asks for the whole frame before it compares the
//! declared length with its limit, and actix-ws keeps every byte it reads
//! until then: a client that declares a 2^40-byte frame and streams zeros
//! grows the server by whatever it sends, and one that declares 2 GiB and
//! sends nothing holds its socket until the ping timeout. So the request's
//! payload is read through [`FrameLimit`] first. It follows the frame
//! boundaries (headers are at most 14 bytes; payloads are skipped, never
//! copied) and ends the stream with [`PayloadError::Overflow`] as soon as a
//! header, or the running total of a fragmented message, declares more than
//! the limit. The WebSocket session turns that error into a 1009 close.
//!
//! Frames before the offending one pass through unchanged, so a client loses
//! nothing it sent before its mistake.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Where the scanner is within the client's frames.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// Reading a header: the bytes seen so far.
    Header {
        bytes: [u8; MAX_HEADER],
        have: usize,
    },
    /// Inside a payload: how many bytes are left to skip.
    Payload { left: u64 },
}

/// The frame-boundary bookkeeping, apart from any stream so it is tested
/// on plain byte slices.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    max: u64,
    position: Position,
    /// Bytes declared so far by the data message being received (its first
    /// frame and every continuation); control frames do not count.
    message: u64,
}

/// A frame or message that declared more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooBig {
    /// Offset in the scanned slice where the offending frame's header starts
    /// (0 when it started in an earlier slice).
    pub frame_start: usize,
    /// What the frame or message declared.
    pub declared: u64,
}

impl FrameScanner {
    pub fn new(max_bytes: usize) -> Self {
        FrameScanner {
            max: max_bytes as u64,
            position: Position::Header {
                bytes: [0; MAX_HEADER],
                have: 0,
            },
            message: 0,
        }
    }

    /// Follows `chunk`'s frames; `Err` at the first header that declares too
    /// much. Costs a few comparisons per frame, nothing per payload byte.
    pub fn scan(&mut self, chunk: &[u8]) -> Result<(), TooBig> {
        let mut at = 0;
        while at < chunk.len() {
            match &mut self.position {
                Position::Payload { left } => {
                    let skip = (*left).min((chunk.len() - at) as u64);
                    *left -= skip;
                    at += skip as usize;
                    if *left == 0 {
                        self.position = Position::Header {
                            bytes: [0; MAX_HEADER],
                            have: 0,
                        };
                    }
                }
                Position::Header { bytes, have } => {
                    let header_start = at.saturating_sub(*have);
                    bytes[*have] = chunk[at];
                    *have += 1;
                    at += 1;
                    let Some((opcode, len)) = header_len(&bytes[..*have]) else {
                        continue;
                    };
                    // A continuation adds to the message under way; text and
                    // binary start one; control frames (and reserved opcodes,
                    // which actix refuses with 1002) are limited one by one.
                    let declared = if opcode == 0x0 {
                        self.message.saturating_add(len)
                    } else {
                        len
                    };
                    if declared > self.max {
                        return Err(TooBig {
                            frame_start: header_start,
                            declared,
                        });
                    }
                    if opcode <= 0x2 {
                        self.message = declared;
                    }
                    self.position = if len == 0 {
                        Position::Header {
                            bytes: [0; MAX_HEADER],
                            have: 0,
                        }
                    } else {
                        Position::Payload { left: len }
                    };
                }
            }
        }
        Ok(())
    }
}

/// The opcode and payload length of a complete header, or `None` while
/// more header bytes are needed.
fn header_len(h: &[u8]) -> Option<(u8, u64)> {
    if h.len() < 2 {
        return None;
    }
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let mask_len = if masked { 4 } else { 0 };
    let (len, len_bytes) = match h[1] & 0x7f {
        126 => (None, 2),
        127 => (None, 8),
        n => (Some(u64::from(n)), 0),
    };
    if h.len() < 2 + len_bytes + mask_len {
        return None;
    }
    let len = len.unwrap_or_else(|| {
        h[2..2 + len_bytes]
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b))
    });
    Some((opcode, len))
}

/// The request payload of a WebSocket, cut off at the first frame that
/// declares more than the limit (see the module docs).
pub struct FrameLimit<S> {
    inner: S,
    scanner: FrameScanner,
    /// The overflow to report once the frames before it went out.
    overflow_due: bool,
    done: bool,
}

impl<S> FrameLimit<S> {
    pub fn new(inner: S, max_bytes: usize) -> Self {
        FrameLimit {
            inner,
            scanner: FrameScanner::new(max_bytes),
            overflow_due: false,
            done: false,
        }
    }
}

impl<S> Stream for FrameLimit<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.overflow_due {
            this.done = true;
            return Poll::Ready(Some(Err(PayloadError::Overflow)));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.scanner.scan(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(too_big) => {
                    tracing::debug!(
                        declared = too_big.declared,
                        "a WebSocket frame declared more than --ws-max-frame"
                    );
                    if too_big.frame_start > 0 {
                        this.overflow_due = true;
                        Poll::Ready(Some(Ok(chunk.slice(..too_big.frame_start))))
                    } else {
                        this.done = true;
                        Poll::Ready(Some(Err(PayloadError::Overflow)))
                    }
                }
            },
            other => other,
        }
    }
}

/// Whether a WebSocket protocol error is [`FrameLimit`]'s overflow.
pub fn is_overflow(err: &actix_ws::ProtocolError) -> bool {
    match err {
        actix_ws::ProtocolError::Overflow => true,
        actix_ws::ProtocolError::Io(io) => io
            .get_ref()
            .and_then(|e| e.downcast_ref::<PayloadError>())
            .is_some_and(|e| matches!(e, PayloadError::Overflow)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header declaring `len` bytes.
    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut h = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(fin: bool, opcode: u8, payload_len: usize) -> Vec<u8> {
        let mut f = header(fin, opcode, payload_len as u64);
        f.extend(std::iter::repeat_n(0u8, payload_len));
        f
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let bytes = [
            frame(true, 0x1, 100),
            frame(true, 0x9, 5),
            frame(true, 0x2, 1000),
            frame(false, 0x1, 10),
            frame(true, 0x0, 10),
        ]
        .concat();
        for split in [1, 2, 3, 7, 13, 14, 500, bytes.len()] {
            let mut s = FrameScanner::new(1024);
            for part in bytes.chunks(split) {
                assert_eq!(s.scan(part), Ok(()), "split {split}");
            }
        }
    }

    #[test]
    fn a_huge_header_is_refused_before_its_payload() {
        let mut s = FrameScanner::new(64 * 1024);
        let mut bytes = frame(true, 0x1, 3);
        let start = bytes.len();
        bytes.extend(header(true, 0x2, 1 << 40));
        assert_eq!(
            s.scan(&bytes),
            Err(TooBig {
                frame_start: start,
                declared: 1 << 40
            })
        );
    }

    #[test]
    fn a_header_split_over_chunks_is_still_caught() {
        let h = header(true, 0x2, 2 << 30);
        let mut s = FrameScanner::new(1024);
        assert_eq!(s.scan(&h[..3]), Ok(()));
        assert_eq!(
            s.scan(&h[3..]).map_err(|e| e.declared),
            Err(2 << 30),
            "declared on completion"
        );
    }

    #[test]
    fn fragments_count_towards_one_message() {
        let mut s = FrameScanner::new(100);
        assert_eq!(s.scan(&frame(false, 0x1, 60)), Ok(()));
        // A ping between fragments does not count.
        assert_eq!(s.scan(&frame(true, 0x9, 50)), Ok(()));
        let err = s.scan(&frame(true, 0x0, 60)).unwrap_err();
        assert_eq!(err.declared, 120);
        // A new message starts the count again.
        let mut s = FrameScanner::new(100);
        assert_eq!(s.scan(&frame(true, 0x1, 90)), Ok(()));
        assert_eq!(s.scan(&frame(true, 0x1, 90)), Ok(()));
    }

    #[tokio::test]
    async fn the_stream_passes_earlier_frames_then_overflows() {
        use futures_util::StreamExt as _;
        let mut bytes = frame(true, 0x1, 4);
        let good = bytes.len();
        bytes.extend(header(true, 0x2, 1 << 20));
        bytes.extend([0u8; 100]);
        let inner = futures_util::stream::iter(vec![Ok(Bytes::from(bytes)), Ok(Bytes::new())]);
        let mut limited = FrameLimit::new(inner, 1024);
        assert_eq!(limited.next().await.unwrap().unwrap().len(), good);
        assert!(matches!(
            limited.next().await,
            Some(Err(PayloadError::Overflow))
        ));
        assert!(limited.next().await.is_none());
        let err = actix_ws::ProtocolError::Io(std::io::Error::other(PayloadError::Overflow));
        assert!(is_overflow(&err));
    }
}
