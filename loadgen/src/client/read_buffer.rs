//! The one read buffer of the load generator's own socket readers: the
//! HTTP/1.1 response reader (`h1_response`, event-stream bodies and the
//! WebSocket handshake's `101`) and the WebSocket reader (`ws`), which
//! takes it over from the first with the bytes that came after the `101`.
//!
//! Why one small buffer with a policy, rather than a fixed size: at 10,000
//! idle connections every KiB kept per connection is 10 MiB, yet under a
//! backlog a larger buffer takes the same bytes in fewer reads. So the
//! buffer rests at [`READ_START`], doubles while reads fill it (up to
//! [`READ_MAX`]), grows to hold a frame that needs more (the reader says so
//! with [`ReadBuffer::set_need`]), and goes back to rest after a short read,
//! keeping the bytes not yet parsed. A reader reads once into
//! [`ReadBuffer::free_space`] and says how much came
//! ([`ReadBuffer::filled`]); it parses in place, borrowing the unread
//! bytes and saying how many it used ([`ReadBuffer::consume`]).

use std::ops::Range;

/// The buffer's size at rest: a few events of the feed's default size.
/// Events need not fit: the event-stream parser carries an unfinished line
/// and a WebSocket frame that does not fit grows the buffer.
pub(super) const READ_START: usize = 1024;
/// The most the buffer grows to while reads fill it (a backlog: fewer
/// reads for the same bytes); it shrinks back to [`READ_START`] after.
/// hyper's floor, which capped the buffer before these readers.
pub(super) const READ_MAX: usize = 8 * 1024;

/// Bytes read from a socket and not yet parsed, in a buffer sized by the
/// policy above.
#[derive(Debug)]
pub struct ReadBuffer {
    /// Initialised to its length: reads go into it directly, with no
    /// zero-filling per read.
    buf: Vec<u8>,
    /// Bytes read but not yet parsed.
    unread: Range<usize>,
    /// The whole length of the item (a WebSocket frame) at the front of
    /// `unread` when it has not all arrived and needs more than the buffer
    /// holds, else 0.
    need: usize,
}

impl Default for ReadBuffer {
    fn default() -> ReadBuffer {
        ReadBuffer::new()
    }
}

impl ReadBuffer {
    /// An empty buffer at its resting size.
    pub fn new() -> ReadBuffer {
        ReadBuffer {
            buf: vec![0; READ_START],
            unread: 0..0,
            need: 0,
        }
    }

    /// The bytes read and not yet consumed.
    #[inline]
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.unread.clone()]
    }

    /// Marks the first `n` unread bytes used, and says where they are:
    /// [`consumed`](Self::consumed) reads them until the next fill, so a
    /// parser can hand out a slice of the buffer without copying it.
    #[inline]
    pub fn consume(&mut self, n: usize) -> Range<usize> {
        debug_assert!(n <= self.unread.len(), "consumes only what was read");
        let place = self.unread.start..self.unread.start + n;
        self.unread.start = place.end;
        place
    }

    /// Marks every unread byte used and returns them (valid until the next
    /// fill).
    #[inline]
    pub fn take_unread(&mut self) -> &[u8] {
        let place = std::mem::replace(&mut self.unread, 0..0);
        &self.buf[place]
    }

    /// The bytes at `place`, a range [`consume`](Self::consume) returned
    /// since the last fill.
    #[inline]
    pub fn consumed(&self, place: Range<usize>) -> &[u8] {
        &self.buf[place]
    }

    /// The whole length of the item at the front of the unread bytes when
    /// it has not all arrived (the next fill grows the buffer to hold it),
    /// or 0 when nothing is waiting for more.
    #[inline]
    pub fn set_need(&mut self, len: usize) {
        self.need = len;
    }

    /// Makes room for one read after the unread bytes, which are kept
    /// (moved to the front first), and returns the free part to read into;
    /// [`filled`](Self::filled) then says how much the read brought. Before
    /// the read, the buffer grows to the length set by
    /// [`set_need`](Self::set_need), or doubles if the unread bytes fill it.
    ///
    /// Two calls around the caller's own `read()` rather than one `async fn`
    /// taking the socket: a reader's future then holds no second future
    /// with its own references, so the connection task stays as small,
    /// and the per-event path as short, as when each reader did it inline.
    #[inline]
    pub fn free_space(&mut self) -> &mut [u8] {
        if self.unread.is_empty() {
            self.unread = 0..0;
        } else if self.unread.start > 0 {
            self.buf.copy_within(self.unread.clone(), 0);
            self.unread = 0..self.unread.len();
        }
        if self.need > self.buf.len() {
            self.buf.resize(self.need, 0);
        } else if self.unread.end == self.buf.len() {
            let larger = (self.buf.len() * 2).max(READ_START);
            self.buf.resize(larger, 0);
        }
        &mut self.buf[self.unread.end..]
    }

    /// Notes `n` bytes read into [`free_space`](Self::free_space) (0 at the
    /// end of the stream). A read that filled the space doubles the buffer
    /// (up to [`READ_MAX`]); a short one (half the resting size or less)
    /// shrinks it back to rest.
    #[inline]
    pub fn filled(&mut self, n: usize) {
        self.unread.end += n;
        debug_assert!(self.unread.end <= self.buf.len(), "read into the space");
        // A full read means more is waiting: a larger buffer takes it in
        // fewer reads. One that would have fitted in half the resting size
        // (an event or two) means the backlog is gone.
        if self.unread.end == self.buf.len() && self.buf.len() < READ_MAX {
            let larger = (self.buf.len() * 2).min(READ_MAX);
            self.buf.resize(larger, 0);
        } else if n <= READ_START / 2 {
            self.shrink_to_start();
        }
    }

    /// Back to the resting size, keeping the unread bytes, unless they or
    /// the item they begin need more.
    pub fn shrink_to_start(&mut self) {
        if self.buf.len() <= READ_START || self.unread.len() > READ_START || self.need > READ_START
        {
            return;
        }
        self.buf.copy_within(self.unread.clone(), 0);
        self.unread = 0..self.unread.len();
        self.buf.truncate(READ_START);
        self.buf.shrink_to_fit();
    }

    /// The buffer's size now (its bytes, read or free).
    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A pipe far larger than any test writes: every write completes at
    /// once, and a read returns what is there, up to the space given.
    fn pipe() -> (DuplexStream, DuplexStream) {
        duplex(1 << 20)
    }

    /// One read the way the readers do it: the bytes read.
    async fn fill(read: &mut ReadBuffer, io: &mut DuplexStream) -> usize {
        let n = io.read(read.free_space()).await.unwrap();
        read.filled(n);
        n
    }

    /// One read, expecting `n` bytes.
    async fn fill_expecting(read: &mut ReadBuffer, io: &mut DuplexStream, n: usize) {
        assert_eq!(fill(read, io).await, n);
    }

    #[tokio::test]
    async fn full_reads_double_it_up_to_the_cap() {
        let (mut peer, mut io) = pipe();
        let mut read = ReadBuffer::new();
        peer.write_all(&[b'x'; 64 * 1024]).await.unwrap();
        let mut sizes = Vec::new();
        for expected in [1024, 2048, 4096, 8192, 8192] {
            fill_expecting(&mut read, &mut io, expected).await;
            assert_eq!(read.take_unread(), &vec![b'x'; expected][..]);
            sizes.push(read.size());
        }
        assert_eq!(sizes, [2048, 4096, 8192, READ_MAX, READ_MAX]);
    }

    #[tokio::test]
    async fn unread_bytes_are_kept_and_a_buffer_they_fill_doubles_before_the_read() {
        let (mut peer, mut io) = pipe();
        let mut read = ReadBuffer::new();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        peer.write_all(&bytes).await.unwrap();
        // Nothing consumed: each read goes after the kept bytes.
        for expected in [1024, 1024, 2048, 4096] {
            fill_expecting(&mut read, &mut io, expected).await;
        }
        assert_eq!(read.size(), READ_MAX);
        assert_eq!(read.unread(), &bytes[..READ_MAX]);
        // Full of unread bytes: it doubles past the cap to make room.
        fill_expecting(&mut read, &mut io, 10_000 - READ_MAX).await;
        assert_eq!(read.size(), 2 * READ_MAX);
        assert_eq!(read.unread(), &bytes[..]);
        let place = read.consume(100);
        assert_eq!(read.consumed(place), &bytes[..100]);
        peer.write_all(b"tail!").await.unwrap();
        fill_expecting(&mut read, &mut io, 5).await;
        assert_eq!(&read.unread()[..9_900], &bytes[100..]);
        assert_eq!(&read.unread()[9_900..], b"tail!");
        assert_eq!(read.size(), 2 * READ_MAX, "too many unread bytes to shrink");
    }

    #[tokio::test]
    async fn a_need_beyond_the_cap_grows_it_to_hold_the_item() {
        let (mut peer, mut io) = pipe();
        let mut read = ReadBuffer::new();
        let item = vec![b'L'; 100_000];
        peer.write_all(&item[..10]).await.unwrap();
        fill_expecting(&mut read, &mut io, 10).await;
        read.set_need(item.len());
        peer.write_all(&item[10..]).await.unwrap();
        let mut reads = 0;
        while read.unread().len() < item.len() {
            fill(&mut read, &mut io).await;
            reads += 1;
        }
        assert_eq!(reads, 1, "one read once it had room for the whole item");
        assert_eq!(read.size(), item.len());
        assert_eq!(read.unread(), &item[..]);
    }

    #[tokio::test]
    async fn a_short_read_shrinks_it_back_keeping_unread_bytes() {
        let (mut peer, mut io) = pipe();
        let mut read = ReadBuffer::new();
        peer.write_all(&[b'x'; 1024 + 2048]).await.unwrap();
        fill_expecting(&mut read, &mut io, 1024).await;
        read.take_unread();
        fill_expecting(&mut read, &mut io, 2048).await;
        assert_eq!(read.size(), 4096);
        // A frame's start left unread, then a short read.
        read.consume(2048 - 300);
        peer.write_all(b"tail").await.unwrap();
        fill_expecting(&mut read, &mut io, 4).await;
        assert_eq!(read.size(), READ_START, "back to rest");
        let mut kept = vec![b'x'; 300];
        kept.extend_from_slice(b"tail");
        assert_eq!(read.unread(), &kept[..]);
    }

    #[tokio::test]
    async fn no_shrink_while_the_unread_bytes_or_the_need_exceed_the_resting_size() {
        let (mut peer, mut io) = pipe();
        let mut read = ReadBuffer::new();
        peer.write_all(&[b'x'; 2048]).await.unwrap();
        fill_expecting(&mut read, &mut io, 1024).await;
        fill_expecting(&mut read, &mut io, 1024).await;
        assert_eq!(read.size(), 4096);
        // 2049 unread bytes: a short read keeps the larger buffer.
        peer.write_all(b"a").await.unwrap();
        fill_expecting(&mut read, &mut io, 1).await;
        assert_eq!(read.size(), 4096, "the unread bytes need more than rest");
        assert_eq!(read.unread().len(), 2049);

        // Few unread bytes, but the frame they begin needs more than rest.
        read.consume(2049 - 10);
        read.set_need(2000);
        peer.write_all(b"b").await.unwrap();
        fill_expecting(&mut read, &mut io, 1).await;
        assert_eq!(read.size(), 4096, "the frame needs more than rest");
        assert_eq!(read.unread().len(), 11);

        // Once nothing waits for more, the next short read shrinks it.
        read.set_need(0);
        peer.write_all(b"c").await.unwrap();
        fill_expecting(&mut read, &mut io, 1).await;
        assert_eq!(read.size(), READ_START);
        assert_eq!(read.unread(), b"xxxxxxxxxabc");
    }

    #[tokio::test]
    async fn the_end_of_the_stream_reads_zero_and_keeps_the_unread_bytes() {
        let (mut peer, mut io) = pipe();
        let mut read = ReadBuffer::new();
        peer.write_all(b"last").await.unwrap();
        drop(peer);
        fill_expecting(&mut read, &mut io, 4).await;
        fill_expecting(&mut read, &mut io, 0).await;
        assert_eq!(read.unread(), b"last");
    }
}
