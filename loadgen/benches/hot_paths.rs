//! The per-event hot paths, one at a time, for `valgrind --tool=callgrind`
//! (see `instructions.sh` beside this file): instruction counts do not drift
//! with machine load the way CPU time on shared cores does.
//!
//! `hot_paths PATH EVENTS` sets the path up, then runs it EVENTS times on
//! one thread, with no timer and no runtime (every future is ready when
//! polled). The script runs each path twice with different counts and
//! divides the difference, so the set-up cancels out exactly. The events
//! carry no padding, the feed's default, unless the variable
//! `PAYLOAD_BYTES` pads them as `--payload-bytes` does.
//!
//! What each path covers, per event:
//! - `server-sse`: the tick encoded once (both wires' bytes), published to
//!   the hub (ring and broadcast channel), taken by one subscription,
//!   counted in its connection tally, and written as a chunk by actix-http's
//!   HTTP/1.1 codec into a write buffer.
//! - `server-ws`: the same up to the subscription, then sent through a real
//!   actix-ws session (its channel) and framed by the session's response
//!   body (actix-http's WebSocket codec), and copied into the HTTP/1.1 write
//!   buffer.
//! - `loadgen-sse`: one `id:/event:/data:` frame parsed by the SSE parser,
//!   decoded (id and send time only), queued and recorded the way the
//!   connection tasks do: into the connection's batch, and the batch into a
//!   recorder shard (behind a mutex) when it is due (every 10 events here:
//!   events 10 ms apart, a batch handed over at 100 ms).
//! - `loadgen-sse-h1`: the same, from the bytes the server writes on
//!   HTTP/1.1 (the frame as a chunk, framed by actix-http's codec): one
//!   read's worth decoded by the HTTP/1.1 chunked decoder, then parsed and
//!   recorded as on `loadgen-sse` (which stays as it was, to compare with
//!   earlier counts). Not in it: the reader's read-buffer bookkeeping per
//!   read (`ReadBuffer`), `H1Body::decode`'s match on the framing and its
//!   end-of-stream check, the `SseStream` loop around them, the socket
//!   read and the clock; and each read holds exactly one chunk, as when the
//!   reader keeps up.
//! - `loadgen-ws`: one unmasked text frame read by the load generator's
//!   WebSocket reader (`WsStream`: its buffer, its frame parser, its clock
//!   read per `read()`) from an in-memory socket, its text decoded in
//!   place and recorded the same way.
//!
//! Not covered: the kernel (socket reads and writes), wake-ups and
//! scheduling, TLS and HTTP/2 framing, and on `loadgen-sse` the clock read
//! (`loadgen-ws` has its one per `read()`, so its count since the
//! WebSocket reader of our own includes it and before did not).

use std::collections::VecDeque;
use std::io::{self, Cursor, Read};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::{FromRequest, HttpResponse};
use bytes::BytesMut;
use futures_util::FutureExt as _;
use loadgen::client::event_stream::EventStreamParser;
use loadgen::client::MessageDecoder as _;
use loadgen::client::{
    ChunkedDecoder, FeedEvents, FeedJson, Msg, RawEvent, SseDecode as _, WsIncoming, WsStream,
};
use loadgen::measure::{Arrival, IdTracker, RecordBatch, Recorder};
use server::event::encode_tick;
use server::hub::{Hub, Item, LastId};
use server::wire::{Protocol, Transport, Wire};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::codec::Encoder as _;

/// The event's payload size, as `--payload-bytes` sets it: the variable
/// `PAYLOAD_BYTES`, else the feed's default, no padding (a tick's JSON is
/// about 100 bytes).
fn payload_bytes() -> usize {
    match std::env::var("PAYLOAD_BYTES") {
        Ok(v) => match v.parse() {
            Ok(n) if n <= 1_000_000 => n,
            _ => {
                eprintln!("PAYLOAD_BYTES must be a whole number from 0 to 1000000, not {v:?}");
                std::process::exit(2);
            }
        },
        Err(_) => 0,
    }
}
/// A fixed clock: the counts must not depend on the time of day.
const T0_NS: u64 = 1_800_000_000_000_000_000;
const TICK_NS: u64 = 10_000_000;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let (Some(path), Some(events)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: hot_paths server-sse|server-ws|loadgen-sse|loadgen-sse-h1|loadgen-ws EVENTS"
        );
        std::process::exit(2);
    };
    let Ok(events) = events.parse::<u64>() else {
        eprintln!("EVENTS must be a whole number, not {events:?}");
        std::process::exit(2);
    };
    let payload_size = payload_bytes();
    let received = match path.as_str() {
        "server-sse" => server_sse(events, payload_size),
        "server-ws" => server_ws(events, payload_size),
        "loadgen-sse" => loadgen_sse(events, payload_size),
        "loadgen-sse-h1" => loadgen_sse_h1(events, payload_size),
        "loadgen-ws" => loadgen_ws(events, payload_size),
        other => {
            eprintln!("unknown path {other:?}");
            std::process::exit(2);
        }
    };
    // The work must not be optimised away, and must have been done.
    assert_eq!(received, events, "{path}: every event went through");
    println!("{path} {events}");
}

fn server_sse(events: u64, payload_size: usize) -> u64 {
    let hub = Hub::new(1024, 64, 10);
    let (mut sub, _) = hub.subscribe(LastId::None);
    let mut tally = hub
        .stats
        .open_stream(Wire::new(Transport::Sse, Protocol::Http1));
    let mut write_buf = BytesMut::with_capacity(8 * 1024);
    let mut codec = streaming_codec(&mut write_buf);
    counted(|| {
        let mut written = 0;
        for id in 1..=events {
            hub.publish(Arc::new(encode_tick(
                id,
                T0_NS + id * TICK_NS,
                payload_size,
            )));
            let Some(Some(Item::Event(ev))) = sub.next().now_or_never() else {
                panic!("the published event is ready");
            };
            tally.sent(ev.sse.len());
            codec
                .encode(
                    actix_http::h1::Message::Chunk(Some(ev.sse.clone())),
                    &mut write_buf,
                )
                .expect("a chunk encodes");
            // The socket took it all.
            write_buf.clear();
            written += 1;
        }
        written
    })
}

fn server_ws(events: u64, payload_size: usize) -> u64 {
    let hub = Hub::new(1024, 64, 10);
    let (mut sub, _) = hub.subscribe(LastId::None);
    let mut tally = hub
        .stats
        .open_stream(Wire::new(Transport::Ws, Protocol::Http1));
    let (req, mut payload) = actix_web::test::TestRequest::get()
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .to_http_parts();
    let body = actix_web::web::Payload::from_request(&req, &mut payload)
        .now_or_never()
        .expect("the payload extractor is ready")
        .expect("a payload");
    let (response, mut session, _incoming) =
        actix_ws::handle(&req, body).expect("the handshake headers are complete");
    let mut frames = pin!(response.into_body());
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut write_buf = BytesMut::with_capacity(8 * 1024);
    counted(|| {
        let mut written = 0;
        for id in 1..=events {
            hub.publish(Arc::new(encode_tick(
                id,
                T0_NS + id * TICK_NS,
                payload_size,
            )));
            let Some(Some(Item::Event(ev))) = sub.next().now_or_never() else {
                panic!("the published event is ready");
            };
            session
                .text(ev.ws.clone())
                .now_or_never()
                .expect("the session's channel has room")
                .expect("the session is open");
            tally.sent(ev.ws.len());
            let Poll::Ready(Some(Ok(frame))) = frames.as_mut().poll_next(&mut cx) else {
                panic!("the session's body has the frame");
            };
            // The upgraded connection's dispatcher copies the frame out.
            write_buf.extend_from_slice(&frame);
            write_buf.clear();
            written += 1;
        }
        written
    })
}

/// Runs the per-event loop: the script counts only what runs inside this
/// function (callgrind's `--toggle-collect`), so building the input (the
/// frames a reader parses) is left out.
#[inline(never)]
fn counted<T>(per_event_loop: impl FnOnce() -> T) -> T {
    std::hint::black_box(per_event_loop())
}

/// actix-http's HTTP/1.1 codec with a streamed response's head encoded
/// into `head`: the chunks it encodes next are framed as the server frames
/// an SSE body. The codec's config starts its date updater on a local set;
/// the loops run outside any runtime (no budget, no yield), so the updater
/// never runs inside them.
fn streaming_codec(head: &mut BytesMut) -> actix_http::h1::Codec {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut codec =
        tokio::task::LocalSet::new().block_on(&rt, async { actix_http::h1::Codec::default() });
    let response = HttpResponse::Ok().finish().drop_body();
    codec
        .encode(
            actix_http::h1::Message::Item((response.into(), BodySize::Stream)),
            head,
        )
        .expect("a response head encodes");
    codec
}

/// One tick as the server writes it, both wires.
fn ticks(events: u64, payload_size: usize) -> impl Iterator<Item = server::event::EncodedEvent> {
    (1..=events).map(move |id| encode_tick(id, T0_NS + id * TICK_NS, payload_size))
}

/// What one connection keeps while it records: its id tracker, its last
/// arrival and its batch of events not yet in the shard.
#[derive(Default)]
struct Connection {
    ids: IdTracker,
    last: Option<u64>,
    batch: RecordBatch,
}

/// Records one message the way a connection task does: into its batch,
/// and the batch into the shard (behind a mutex) when it is due.
fn record(shard: &Mutex<Recorder>, conn: &mut Connection, msg: Msg) -> u64 {
    let Msg::Tick {
        id,
        sent_unix_ns,
        recv_unix_ns,
        bytes,
    } = msg
    else {
        panic!("only ticks are sent: {msg:?}");
    };
    let arrival = Arrival {
        id: Some(id),
        sent_unix_ns: Some(sent_unix_ns),
        recv_unix_ns,
        bytes,
    };
    if conn.batch.add(&mut conn.ids, &mut conn.last, arrival) {
        shard.lock().expect("not poisoned").absorb(&mut conn.batch);
    }
    1
}

/// The SSE side of a reader: the event-stream parser, the feed's decoder
/// and the recording, as the connection tasks have them.
struct SseReader {
    shard: Mutex<Recorder>,
    conn: Connection,
    parser: EventStreamParser,
    decode: FeedEvents,
    pending: VecDeque<Msg>,
}

impl SseReader {
    fn new() -> Self {
        SseReader {
            shard: Mutex::new(Recorder::with_start_unix_ns(T0_NS)),
            conn: Connection::default(),
            parser: EventStreamParser::new(),
            decode: FeedEvents(Arc::new(FeedJson)),
            pending: VecDeque::new(),
        }
    }

    /// Parses one run of event-stream bytes received at `recv` and records
    /// its events; how many.
    #[inline(always)]
    fn read(&mut self, data: &[u8], recv: u64) -> u64 {
        let (decode, pending) = (&mut self.decode, &mut self.pending);
        self.parser
            .feed(data, |item| match decode.item(item, recv) {
                Ok(Some(msg)) => pending.push_back(msg),
                Ok(None) => {}
                Err(e) => panic!("a tick decodes: {e}"),
            })
            .expect("a well-formed frame");
        let mut recorded = 0;
        while let Some(msg) = self.pending.pop_front() {
            recorded += record(&self.shard, &mut self.conn, msg);
        }
        recorded
    }
}

/// When the `i`th event (from 0) is received: 1 ms after it was sent.
fn received_at(i: u64) -> u64 {
    T0_NS + (i + 1) * TICK_NS + 1_000_000
}

fn loadgen_sse(events: u64, payload_size: usize) -> u64 {
    // The frames are made first: the loop counts the reading side only.
    let frames: Vec<bytes::Bytes> = ticks(events, payload_size).map(|t| t.sse).collect();
    let mut reader = SseReader::new();
    counted(|| {
        let mut recorded = 0;
        for (i, frame) in frames.iter().enumerate() {
            recorded += reader.read(frame, received_at(i as u64));
        }
        recorded
    })
}

fn loadgen_sse_h1(events: u64, payload_size: usize) -> u64 {
    // Each frame as the server writes it on HTTP/1.1: a chunk, framed by
    // actix-http's codec (as on `server-sse`), one read's worth each.
    let mut head = BytesMut::new();
    let mut codec = streaming_codec(&mut head);
    let reads: Vec<bytes::Bytes> = ticks(events, payload_size)
        .map(|t| {
            let mut chunk = BytesMut::new();
            codec
                .encode(actix_http::h1::Message::Chunk(Some(t.sse)), &mut chunk)
                .expect("a chunk encodes");
            chunk.freeze()
        })
        .collect();
    let mut body = ChunkedDecoder::default();
    let mut reader = SseReader::new();
    counted(|| {
        let mut recorded = 0;
        for (i, read) in reads.iter().enumerate() {
            let recv = received_at(i as u64);
            body.decode(read, |data| recorded += reader.read(data, recv))
                .expect("a well-formed chunk");
        }
        recorded
    })
}

/// A socket whose reads come from memory and whose writes go nowhere:
/// every poll is ready, so the reader's futures complete when first polled.
struct MemorySocket(Cursor<Vec<u8>>);

impl AsyncRead for MemorySocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemorySocket {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn loadgen_ws(events: u64, payload_size: usize) -> u64 {
    // The server's frames, made by the server's codec.
    let mut codec = actix_http::ws::Codec::new();
    let mut wire = BytesMut::new();
    for t in ticks(events, payload_size) {
        codec
            .encode(actix_http::ws::Message::Text(t.ws), &mut wire)
            .expect("a text frame encodes");
    }
    let socket = MemorySocket(Cursor::new(wire.to_vec()));
    let mut ws = WsStream::from_upgraded(socket, "ws://bench/ws".into());
    let decoder = FeedJson;
    let shard = Mutex::new(Recorder::with_start_unix_ns(T0_NS));
    let mut conn = Connection::default();
    counted(|| {
        let mut recorded = 0;
        for i in 0..events {
            let recv = received_at(i);
            let next = ws.next().now_or_never().expect("memory is always ready");
            let text = match next.expect("a well-formed frame") {
                Some(WsIncoming::Text(text)) => text,
                other => panic!("only text frames are sent: {other:?}"),
            };
            let msg = decoder
                .decode(RawEvent::text(text), recv)
                .expect("a tick decodes")
                .expect("a tick is a message");
            recorded += record(&shard, &mut conn, msg);
        }
        recorded
    })
}
