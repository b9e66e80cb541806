//! The HTTP/1.1 event-stream reader over real sockets: against the real
//! server on port 0 (events, resume with `Last-Event-ID`, a non-200
//! answer, TLS), and against a raw TCP peer in the test that sends a
//! response in pieces or garbage (a bad status line, a bad chunk size, a
//! truncated stream): a clear error, no panic, the events before it read.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::client::{
    open_h1, ClientError, Dialer, Endpoint, ErrorKind, NamedEvent, NamedEvents, Opener,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::{start_server, target, ticks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_and_a_reopened_stream_resumes_after_the_last_id() {
    let server = start_server(50.0);
    let t = target(&server);
    for opener in [
        Opener::sse_h1(t.plain("/sse"), Dialer::default()),
        Opener::sse_h1(t.tls_http1("https", "/sse").unwrap(), Dialer::default()),
    ] {
        let mut stream = opener.open(0, None).await.expect("opens");
        let (ids, protocol) = ticks(&mut stream, 5).await;
        assert_eq!(protocol.as_deref(), Some("http/1.1"));
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        drop(stream);

        let last = ids[2];
        let mut resumed = opener.open(1, Some(last)).await.expect("reopens");
        let (again, _) = ticks(&mut resumed, 3).await;
        assert_eq!(again[0], last + 1, "resumed right after {last}: {again:?}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_200_answer_is_an_error_with_its_status_and_body() {
    let server = start_server(50.0);
    let t = target(&server);
    let err = Opener::sse_h1(t.plain("/no-such-path"), Dialer::default())
        .open(0, None)
        .await
        .err()
        .expect("a 404 is not a stream");
    assert_eq!(err.kind(), ErrorKind::Http(404), "{err}");
    assert!(err.to_string().contains("/no-such-path"), "{err}");
    server.shutdown().await.unwrap();
}

/// A peer that reads the request, then writes `pieces` one at a time with
/// a pause between (each its own segment), then closes or holds the line.
async fn raw_peer(pieces: Vec<Vec<u8>>, hold: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = sock.read(&mut buf).await;
        for piece in pieces {
            if sock.write_all(&piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        if hold {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
    addr
}

/// What a stream from `pieces` yields: its events, then how it ended.
async fn read_all(pieces: &[&[u8]], hold: bool) -> (Vec<NamedEvent>, Result<(), ClientError>) {
    let addr = raw_peer(pieces.iter().map(|p| p.to_vec()).collect(), hold).await;
    let endpoint = Endpoint::new(&format!("http://{addr}/sse"), addr, None).unwrap();
    let read = async {
        let mut stream = open_h1(&Dialer::default(), &endpoint, 0, None, NamedEvents).await?;
        let mut events = Vec::new();
        loop {
            match stream.next().await {
                Ok(Some(e)) => events.push(e),
                Ok(None) => return Ok((events, Ok(()))),
                Err(e) => return Ok((events, Err(e))),
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => (Vec::new(), Err(e)),
        Err(_) => panic!("the reader hung"),
    }
}

fn data(events: &[NamedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

const CHUNKED_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn chunked_framing_split_anywhere_across_reads() {
    // Split inside the head, a chunk size, a chunk's data, its CRLF, an
    // event's line end, and the last chunk.
    let (events, end) = read_all(
        &[
            &CHUNKED_HEAD[..20],
            &CHUNKED_HEAD[20..],
            b"1",
            b"6\r\ndata: one\n\nd",
            b"ata",
            b": two\n\n\r",
            b"\n5;ext=1\r\n: x\n\n\r\n0\r",
            b"\n\r\n",
        ],
        true,
    )
    .await;
    assert_eq!(data(&events), ["one", "two"]);
    assert!(end.is_ok(), "the last chunk ends the stream: {end:?}");
}

#[tokio::test]
async fn length_and_close_delimited_bodies() {
    let body = b"data: a\n\ndata: b\n\n";
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (events, end) = read_all(&[head.as_bytes(), body], true).await;
    assert_eq!(data(&events), ["a", "b"]);
    assert!(end.is_ok(), "{end:?}");

    let (events, end) = read_all(
        &[
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n",
            body,
        ],
        false,
    )
    .await;
    assert_eq!(data(&events), ["a", "b"]);
    assert!(end.is_ok(), "a close ends a close-delimited body: {end:?}");
}

#[tokio::test]
async fn garbage_is_a_clear_error_after_the_events_before_it() {
    // A bad status line.
    let (events, end) = read_all(&[b"HTTP/1.1 two hundred\r\n\r\n"], true).await;
    assert!(events.is_empty());
    let err = end.expect_err("not HTTP");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(
        err.to_string().contains("invalid HTTP/1.1 response head"),
        "{err}"
    );

    // A bad chunk size after two events.
    let (events, end) = read_all(
        &[
            CHUNKED_HEAD,
            b"16\r\ndata: one\n\ndata: two\n\n\r\n",
            b"zz\r\nxx",
        ],
        true,
    )
    .await;
    assert_eq!(data(&events), ["one", "two"]);
    let err = end.expect_err("a bad chunk size");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("invalid chunk size line"), "{err}");

    // A chunk whose data is not followed by CRLF.
    let (events, end) = read_all(&[CHUNKED_HEAD, b"b\r\ndata: one\n\nXX"], true).await;
    assert_eq!(data(&events), ["one"]);
    assert_eq!(end.expect_err("no CRLF").kind(), ErrorKind::Protocol);

    // Truncated: the peer closes inside a chunk.
    let (events, end) = read_all(&[CHUNKED_HEAD, b"20\r\ndata: one\n\ndata: tw"], false).await;
    assert_eq!(data(&events), ["one"]);
    let err = end.expect_err("closed mid-chunk");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");

    // Truncated inside the head, and a close before any answer.
    for pieces in [&[&CHUNKED_HEAD[..30]][..], &[]] {
        let (_, end) = read_all(pieces, false).await;
        assert_eq!(end.expect_err("no head").kind(), ErrorKind::Closed);
    }

    // Not an event stream; an error status with its body.
    let (_, end) = read_all(
        &[b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 0\r\n\r\n"],
        true,
    )
    .await;
    assert!(
        matches!(end, Err(ClientError::ContentType { .. })),
        "{end:?}"
    );
    let (_, end) = read_all(
        &[b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"],
        true,
    )
    .await;
    match end {
        Err(ClientError::Status {
            status: 503, body, ..
        }) => assert_eq!(body, "busy"),
        other => panic!("{other:?}"),
    }
    // A redirect is an answer that is not a stream, as any other status.
    let (_, end) = read_all(
        &[b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"],
        true,
    )
    .await;
    assert_eq!(end.expect_err("not followed").kind(), ErrorKind::Http(307));
}

/// The response head is read into a buffer that grows while the head
/// fills it, up to 64 KiB: a head just under that is read (and the events
/// after it), one over is a clear error, not a buffer that grows for ever.
#[tokio::test]
async fn a_response_head_over_64_kib_is_refused_and_one_under_is_read() {
    let head = |padding: usize| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-padding: {}\r\n\r\n",
            "p".repeat(padding)
        )
    };
    let under = head(60 * 1024);
    let (events, end) = read_all(&[under.as_bytes(), b"data: a\n\n"], false).await;
    assert_eq!(data(&events), ["a"]);
    assert!(end.is_ok(), "{end:?}");

    let over = head(70 * 1024);
    let (events, end) = read_all(&[over.as_bytes()], true).await;
    assert!(events.is_empty());
    let err = end.expect_err("a head over 64 KiB");
    assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
}
