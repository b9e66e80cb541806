//! HTTP/1.1 body framing (RFC 9112 §6, §7.1) decoded in place: a
//! response body is chunked, of a known length, or runs to the close.
//!
//! The decoder is a state machine over whatever bytes a read returned: it
//! hands every run of body data to its caller as a slice of the read
//! buffer and keeps only a few numbers between reads, so the buffer never
//! has to hold a whole chunk, nor a whole event (the event-stream parser
//! carries an unfinished line itself). Nothing is copied or allocated per
//! chunk.

use thiserror::Error;

/// The most bytes a chunk extension or a trailer line may take: a peer
/// that never ends one must not keep the reader busy for ever.
const MAX_LINE: usize = 4096;

/// Why a body's framing could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("invalid chunk size line: byte {byte:#04x} where a hex digit, `;` or CRLF belongs")]
    ChunkSize { byte: u8 },
    #[error("invalid chunk size line: no hex digits before its end")]
    NoDigits,
    #[error("chunk size larger than 2^64-1")]
    ChunkTooLarge,
    #[error("chunk data not followed by CRLF (byte {byte:#04x})")]
    NoCrlfAfterData { byte: u8 },
    #[error("a chunk extension or trailer line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

/// Where the decoder is in a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the size's hex digits (`digits` so far).
    Size { size: u64, digits: u8 },
    /// After the digits: optional whitespace, then `;` or CR.
    SizeEnd { size: u64 },
    /// Inside a chunk extension (skipped), `len` bytes so far.
    Extension { size: u64, len: usize },
    /// The size line's CR seen: its LF next.
    SizeLf { size: u64 },
    /// `left` bytes of chunk data still to come.
    Data { left: u64 },
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// After the last (empty) chunk: trailer lines until an empty one.
    Trailer { len: usize },
    /// The body ended.
    Done,
}

/// The decoder of one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { size: 0, digits: 0 },
        }
    }
}

impl ChunkedDecoder {
    /// Whether the last chunk and the trailer have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, calling `on_data` with each run of body data in
    /// order. Every byte of `input` is consumed (bytes after the body's end
    /// are ignored: nothing follows a stream's response on its connection).
    pub fn decode(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<(), FramingError> {
        let mut at = 0;
        while at < input.len() {
            if let State::Data { left } = self.state {
                let take = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - at);
                on_data(&input[at..at + take]);
                at += take;
                let left = left - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { left }
                };
                continue;
            }
            if let Some((next, taken)) = whole_size_line(self.state, &input[at..]) {
                self.state = next;
                at += taken;
                continue;
            }
            self.state = self.step(input[at])?;
            at += 1;
        }
        Ok(())
    }

    /// The next state after one framing byte.
    fn step(&self, byte: u8) -> Result<State, FramingError> {
        Ok(match self.state {
            State::Size { size, digits } => match (byte as char).to_digit(16) {
                Some(d) => {
                    if size >> 60 != 0 {
                        return Err(FramingError::ChunkTooLarge);
                    }
                    State::Size {
                        size: size << 4 | u64::from(d),
                        digits: digits.saturating_add(1),
                    }
                }
                None if digits == 0 => {
                    return Err(match byte {
                        b'\r' | b'\n' | b';' => FramingError::NoDigits,
                        _ => FramingError::ChunkSize { byte },
                    })
                }
                None => after_size(size, byte)?,
            },
            State::SizeEnd { size } => after_size(size, byte)?,
            State::Extension { size, len } => match byte {
                b'\r' => State::SizeLf { size },
                _ if len >= MAX_LINE => return Err(FramingError::LineTooLong),
                _ => State::Extension { size, len: len + 1 },
            },
            State::SizeLf { size } => match byte {
                b'\n' if size == 0 => State::Trailer { len: 0 },
                b'\n' => State::Data { left: size },
                _ => return Err(FramingError::ChunkSize { byte }),
            },
            State::Data { .. } => unreachable!("data is taken in runs by decode"),
            State::DataCr => match byte {
                b'\r' => State::DataLf,
                _ => return Err(FramingError::NoCrlfAfterData { byte }),
            },
            State::DataLf => match byte {
                b'\n' => State::Size { size: 0, digits: 0 },
                _ => return Err(FramingError::NoCrlfAfterData { byte }),
            },
            State::Trailer { len } => match byte {
                b'\n' if len == 0 => State::Done,
                b'\n' => State::Trailer { len: 0 },
                b'\r' => State::Trailer { len },
                _ if len >= MAX_LINE => return Err(FramingError::LineTooLong),
                _ => State::Trailer { len: len + 1 },
            },
            State::Done => State::Done,
        })
    }
}

/// The common case between two chunks in one go, where the byte-wise
/// [`step`](ChunkedDecoder::step) would cost a call per byte: the CRLF
/// after the previous chunk's data (when it is due), a size line of hex
/// digits alone, and its CRLF, all within `input`. Returns the state after
/// them and how many bytes they took, or `None` to leave anything else (a
/// line split across reads, whitespace, an extension, a size of 16 digits
/// or more, garbage) to the byte-wise machine from the same state, once the
/// CRLF after the data, when whole, is taken: either way the body decodes
/// to the same state and data.
fn whole_size_line(state: State, input: &[u8]) -> Option<(State, usize)> {
    let start = match state {
        State::DataCr if input.starts_with(b"\r\n") => 2,
        State::Size { size: 0, digits: 0 } => 0,
        _ => return None,
    };
    // The CRLF after the data is taken anyway: a read often ends there.
    let just_the_crlf = (start == 2).then_some((State::Size { size: 0, digits: 0 }, 2));
    let mut at = start;
    let mut size = 0u64;
    while let Some(digit) = input.get(at).and_then(|&b| char::from(b).to_digit(16)) {
        if at - start == 15 {
            return just_the_crlf;
        }
        size = size << 4 | u64::from(digit);
        at += 1;
    }
    if at == start || input.get(at..at + 2) != Some(&b"\r\n"[..]) {
        return just_the_crlf;
    }
    let next = match size {
        0 => State::Trailer { len: 0 },
        left => State::Data { left },
    };
    Some((next, at + 2))
}

/// A byte after a chunk size's last digit: whitespace, the start of an
/// extension, or the line's CR.
fn after_size(size: u64, byte: u8) -> Result<State, FramingError> {
    Ok(match byte {
        b' ' | b'\t' => State::SizeEnd { size },
        b';' => State::Extension { size, len: 0 },
        b'\r' => State::SizeLf { size },
        _ => return Err(FramingError::ChunkSize { byte }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all<'a>(
        pieces: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Vec<u8>, bool), FramingError> {
        let mut decoder = ChunkedDecoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.decode(piece, |d| out.extend_from_slice(d))?;
        }
        Ok((out, decoder.is_done()))
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let body =
            b"5\r\nhello\r\n1A;name=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-t: 1\r\n\r\n";
        let (data, done) = decode_all([&body[..]]).unwrap();
        assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz");
        assert!(done);
    }

    #[test]
    fn size_lines_read_in_one_go_or_byte_by_byte_agree() {
        // Whitespace, an extension, 16 digits and a zero-padded size fall
        // back to the byte-wise machine; plain sizes are read in one go.
        let body = b"3\r\nabc\r\n2 \r\nde\r\n1;x=y\r\nf\r\n000000000000000000002\r\ngh\r\n00a\r\n0123456789\r\n0\r\n\r\n";
        let want = &b"abcdefgh0123456789"[..];
        let (data, done) = decode_all([&body[..]]).unwrap();
        assert_eq!((&data[..], done), (want, true));
        // Reads of one byte never take the fast path (it needs at least
        // two bytes, or three for a size line): the byte-wise machine alone.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let (data, done) = decode_all(bytes).unwrap();
        assert_eq!((&data[..], done), (want, true));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        let (data, done) = decode_all([&b"3\r\nabc\r\n4\r\nde"[..]]).unwrap();
        assert_eq!(data, b"abcde");
        assert!(!done);
    }

    #[test]
    fn garbage_is_an_error_naming_it() {
        for (body, want) in [
            (&b"zz\r\n"[..], FramingError::ChunkSize { byte: b'z' }),
            (b"\r\n", FramingError::NoDigits),
            (b"3x\r\n", FramingError::ChunkSize { byte: b'x' }),
            (b"3\rX", FramingError::ChunkSize { byte: b'X' }),
            (b"3\r\nabcX", FramingError::NoCrlfAfterData { byte: b'X' }),
            (b"11111111111111111\r\n", FramingError::ChunkTooLarge),
            // The same after a whole chunk, where the size line is read in
            // one go when it is well formed.
            (b"1\r\na\r\nzz\r\n", FramingError::ChunkSize { byte: b'z' }),
            (b"1\r\na\r\n\r\n", FramingError::NoDigits),
            (b"1\r\na\r\n2x\r\n", FramingError::ChunkSize { byte: b'x' }),
            (b"1\r\na\nX", FramingError::NoCrlfAfterData { byte: b'\n' }),
            (
                b"1\r\na\r\n11111111111111111\r\n",
                FramingError::ChunkTooLarge,
            ),
        ] {
            assert_eq!(decode_all([body]), Err(want), "{body:?}");
        }
        let long_extension = [&b"1;"[..], &[b'x'; MAX_LINE + 1]].concat();
        assert_eq!(
            decode_all([&long_extension[..]]),
            Err(FramingError::LineTooLong)
        );
    }

    proptest! {
        /// However the reads split it, a body decodes to the same data.
        #[test]
        fn any_split_gives_the_same_data(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..8),
            cuts in proptest::collection::vec(1usize..40, 1..50),
        ) {
            let mut body = Vec::new();
            for c in &chunks {
                body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                body.extend_from_slice(c);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            let mut pieces = Vec::new();
            let mut rest = &body[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at((*cut).min(rest.len()));
                pieces.push(a);
                rest = b;
            }
            let (data, done) = decode_all(pieces).unwrap();
            prop_assert_eq!(data, chunks.concat());
            prop_assert!(done);
        }
    }
}
