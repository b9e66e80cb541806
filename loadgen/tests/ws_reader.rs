//! The WebSocket client over real sockets: against the real server on
//! port 0 (events in order over `ws://` and `wss://`, resume with the
//! resume query, ping/pong, echo, closes from either side), and against a
//! raw TCP peer in the test that sends a handshake and frames in pieces or
//! garbage (a first frame in the same segment as the 101, frames split at
//! every byte, a fragmented message, a ping whose pong is checked byte by
//! byte, a bad accept value, a refusal with a body, a masked frame, a bad
//! opcode, invalid UTF-8, a truncated frame): a clear error, no panic, the
//! messages before it read.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::client::{
    open_ws, ClientError, Dialer, Endpoint, ErrorKind, Opener, WsIncoming, WsStream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use support::{start_server, target, ticks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_and_a_reopened_socket_resumes_after_the_last_id() {
    let server = start_server(50.0);
    let t = target(&server);
    for opener in [
        Opener::ws(t.ws("/ws"), Dialer::default()),
        Opener::ws(t.tls_http1("wss", "/ws").unwrap(), Dialer::default()),
    ] {
        let mut stream = opener.open(0, None).await.expect("opens");
        let (ids, protocol) = ticks(&mut stream, 5).await;
        assert_eq!(protocol.as_deref(), Some("http/1.1"));
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        stream.close().await;

        let last = ids[2];
        let mut resumed = opener.open(1, Some(last)).await.expect("reopens");
        let (again, _) = ticks(&mut resumed, 3).await;
        assert_eq!(again[0], last + 1, "resumed right after {last}: {again:?}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_echo_and_closes_from_either_side() {
    let server = start_server(50.0);
    let t = target(&server);
    for endpoint in [t.ws("/ws/echo"), t.tls_http1("wss", "/ws/echo").unwrap()] {
        let mut ws = open_ws(&Dialer::default(), &endpoint, 0, endpoint.url())
            .await
            .expect("opens");
        let rtt = ws.ping_pong(Duration::from_secs(5)).await.expect("a pong");
        assert!(rtt < Duration::from_secs(5));
        // The last one larger than the read buffer at its largest (under the
        // server's 64 KiB frame limit).
        for text in ["one", "two ünïcödé", &"x".repeat(60_000)] {
            ws.send_text(text.to_string()).await.expect("sent");
            let echo = next_text(&mut ws).await;
            assert_eq!(echo.len(), text.len());
            assert_eq!(echo, text);
        }
        // Our close: the server answers it and the close returns.
        tokio::time::timeout(Duration::from_secs(3), ws.close())
            .await
            .expect("closes within its own wait");
    }
    // The server's close (a drop): the end of the socket, not an error.
    let feed = t.ws("/ws");
    let mut ws = open_ws(&Dialer::default(), &feed, 0, feed.url())
        .await
        .expect("opens");
    next_text(&mut ws).await;
    server.hub().drop_all();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Ok(Some(_)) => {}
                other => return other.map(|m| m.map(WsIncoming::into_owned)),
            }
        }
    })
    .await
    .expect("the close arrives");
    assert_eq!(end.expect("a clean close"), None);
    server.shutdown().await.unwrap();
}

/// The next text of `ws`, pings skipped.
async fn next_text(ws: &mut WsStream) -> String {
    let read = async {
        loop {
            match ws.next().await.expect("reads") {
                Some(WsIncoming::Text(t)) => return t.to_string(),
                Some(WsIncoming::Ping) => {}
                None => panic!("closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a message within 10 s")
}

/// The `101` a WebSocket server answers to `key`.
fn switch(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes()
}

/// A server frame: final, unmasked.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(n as u8),
        n @ 126..=65535 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

fn text(s: &str) -> Vec<u8> {
    frame(0x1, s.as_bytes())
}

/// A peer that reads the upgrade request, writes `answer(key)`, then
/// `pieces` one at a time with a pause between (each its own segment),
/// then holds the line or closes it. Its handle gives back every byte the
/// client sent after the request.
async fn raw_peer(
    answer: fn(&str) -> Vec<u8>,
    pieces: Vec<Vec<u8>>,
    hold: bool,
) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        sock.set_nodelay(true).unwrap();
        let (mut rd, mut wr) = sock.into_split();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client sent its whole request");
            request.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8(request).unwrap();
        let key = request
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_string())
            })
            .expect("a Sec-WebSocket-Key");
        // What the client sends from now on, until it closes (or 5 s).
        let sent = tokio::spawn(async move {
            let mut sent = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Ok(n) = rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sent.extend_from_slice(&buf[..n]);
                }
            })
            .await;
            sent
        });
        let _ = wr.write_all(&answer(&key)).await;
        for piece in pieces {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if wr.write_all(&piece).await.is_err() {
                break;
            }
        }
        if hold {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        drop(wr);
        sent.await.unwrap()
    });
    (addr, peer)
}

/// What the client read from a peer: each text, `<ping>` for a ping, and
/// how the socket ended.
async fn read_all(addr: SocketAddr) -> (Vec<String>, Result<(), ClientError>) {
    let endpoint = Endpoint::new(&format!("ws://{addr}/ws"), addr, None).unwrap();
    let read = async {
        let mut ws = open_ws(&Dialer::default(), &endpoint, 0, endpoint.url()).await?;
        let mut got = Vec::new();
        loop {
            match ws.next().await {
                Ok(Some(WsIncoming::Text(t))) => got.push(t.to_string()),
                Ok(Some(WsIncoming::Ping)) => got.push("<ping>".into()),
                Ok(None) => return Ok((got, Ok(()))),
                Err(e) => return Ok((got, Err(e))),
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => (Vec::new(), Err(e)),
        Err(_) => panic!("the reader hung"),
    }
}

/// The client's frames in `bytes`: each must be masked; its opcode and
/// unmasked payload.
fn client_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(bytes[0] & 0xF0, 0x80, "final, no reserved bits: {bytes:?}");
        assert_eq!(bytes[1] & 0x80, 0x80, "every client frame is masked");
        let len = usize::from(bytes[1] & 0x7F);
        assert!(len <= 125, "small frames only here");
        let mask = [bytes[2], bytes[3], bytes[4], bytes[5]];
        let payload = bytes[6..6 + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        frames.push((bytes[0] & 0x0F, payload));
        bytes = &bytes[6 + len..];
    }
    frames
}

#[tokio::test]
async fn a_first_frame_in_the_same_segment_as_the_101_is_read() {
    let (addr, _) = raw_peer(
        |key| [switch(key), text("first"), text("second")].concat(),
        vec![text("third")],
        false,
    )
    .await;
    let (got, end) = read_all(addr).await;
    assert_eq!(got, ["first", "second", "third"]);
    assert_eq!(end.expect_err("no close frame").kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn frames_split_at_every_byte_arrive_whole() {
    let long = "y".repeat(300);
    let stream = [
        text("one"),
        frame(0x9, b"hi"),
        text(&long),
        // A fragmented message with a ping between its fragments.
        vec![0x01, 3, b'a', b'b', b'c'],
        frame(0x9, b""),
        vec![0x00, 2, b'd', b'e'],
        vec![0x80, 3, b'f', 0xC3, 0xA9],
        text("two"),
        frame(0x8, &[0x03, 0xE8]),
    ]
    .concat();
    let pieces = stream.iter().map(|b| vec![*b]).collect();
    let (addr, peer) = raw_peer(switch, pieces, true).await;
    let (got, end) = read_all(addr).await;
    assert_eq!(
        got,
        ["one", "<ping>", &long, "<ping>", "abcdefé", "two"],
        "in order, whole"
    );
    assert!(end.is_ok(), "the close frame ends the socket: {end:?}");
    let sent = client_frames(&peer.await.unwrap());
    assert_eq!(
        sent,
        [(0xA, b"hi".to_vec()), (0xA, vec![]), (0x8, vec![])],
        "a pong per ping, then the close answered"
    );
}

#[tokio::test]
async fn a_server_ping_is_answered_by_a_masked_pong() {
    let (addr, peer) = raw_peer(
        |key| [switch(key), frame(0x9, b"are you there")].concat(),
        vec![text("after")],
        false,
    )
    .await;
    let (got, _) = read_all(addr).await;
    assert_eq!(got, ["<ping>", "after"]);
    let sent = peer.await.unwrap();
    assert_eq!(sent[0], 0x8A, "a final pong");
    assert_eq!(sent[1], 0x80 | 13, "masked, the ping's 13 bytes");
    assert_eq!(
        client_frames(&sent),
        [(0xA, b"are you there".to_vec())],
        "the pong carries the ping's payload, masked"
    );
}

#[tokio::test]
async fn our_close_is_a_masked_close_frame() {
    let (addr, peer) = raw_peer(|key| [switch(key), text("hello")].concat(), vec![], true).await;
    let endpoint = Endpoint::new(&format!("ws://{addr}/ws"), addr, None).unwrap();
    let mut ws = open_ws(&Dialer::default(), &endpoint, 0, endpoint.url())
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, "hello");
    ws.close().await;
    assert_eq!(client_frames(&peer.await.unwrap()), [(0x8, vec![])]);
}

#[tokio::test]
async fn a_bad_handshake_is_a_clear_error() {
    // An accept value that is not the one for the key.
    let (addr, _) = raw_peer(
        |_| b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: c2VjcmV0\r\n\r\n".to_vec(),
        vec![],
        true,
    )
    .await;
    let (_, end) = read_all(addr).await;
    let err = end.expect_err("a wrong accept value");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("Sec-WebSocket-Accept"), "{err}");

    // A refusal with a body.
    let (addr, _) = raw_peer(
        |_| b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 14\r\n\r\nnot for you\r\n\r\n".to_vec(),
        vec![],
        true,
    )
    .await;
    let (_, end) = read_all(addr).await;
    match end {
        Err(ClientError::NoUpgrade { status, body, .. }) => {
            assert_eq!(status, 403);
            assert_eq!(body, "not for you");
        }
        other => panic!("{other:?}"),
    }
    // A 200 is not a switch either.
    let (addr, _) = raw_peer(
        |_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
        vec![],
        true,
    )
    .await;
    let (_, end) = read_all(addr).await;
    assert_eq!(end.expect_err("no upgrade").kind(), ErrorKind::Http(200));
}

#[tokio::test]
async fn long_texts_of_several_byte_characters_arrive_whole() {
    // Longer than the UTF-8 check's 64-byte step, with characters across
    // its step boundaries and in its tail.
    let texts = [
        format!("{}€{}", "a".repeat(62), "é".repeat(40)),
        format!("{}🦀", "ü".repeat(70)),
    ];
    let (addr, _) = raw_peer(switch, texts.iter().map(|t| text(t)).collect(), false).await;
    let (got, _) = read_all(addr).await;
    assert_eq!(got, texts);
}

#[tokio::test]
async fn garbage_frames_are_clear_errors_after_the_messages_before_them() {
    // Past one vector step of the UTF-8 check (64 bytes): the bad byte in
    // a full step.
    let mut long = vec![b'a'; 300];
    long[100] = 0xFF;
    // Past two steps, in the tail; a character cut short at the end.
    let mut tail = vec![b'a'; 130];
    tail[129] = 0xFF;
    let cut = [vec![b'a'; 100], "€".as_bytes()[..2].to_vec()].concat();
    let cases: [(Vec<u8>, &str); 12] = [
        (vec![0x81, 0x81, 1, 2, 3, 4, b'x'], "masked frame"),
        (text_bytes(&long), "not UTF-8"),
        (text_bytes(&tail), "not UTF-8"),
        (text_bytes(&cut), "not UTF-8"),
        (frame(0x8, &[0x03]), "1-byte body"),
        (frame(0x8, &1005u16.to_be_bytes()), "status code 1005"),
        (frame(0x8, &[0x03, 0xE8, 0xFF]), "reason is not UTF-8"),
        (vec![0x83, 0], "reserved opcode 0x3"),
        (text_bytes(&[b'a', 0xFF, b'b']), "not UTF-8"),
        (frame(0x2, b"bin"), "binary message of 3 bytes"),
        (vec![0xC1, 1, b'x'], "reserved bits"),
        (frame(0x0, b"more"), "continuation frame outside"),
    ];
    for (garbage, says) in cases {
        let (addr, _) = raw_peer(
            switch,
            vec![[text("before"), garbage.clone()].concat()],
            true,
        )
        .await;
        let (got, end) = read_all(addr).await;
        assert_eq!(got, ["before"], "{says}");
        let err = end.expect_err(says);
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert!(err.to_string().contains(says), "{says}: {err}");
        assert!(err.to_string().contains("ws://127.0.0.1:"), "{err}");
    }
    // A frame cut short by the end of the connection.
    let (addr, _) = raw_peer(switch, vec![text("before"), vec![0x81, 10, b'a']], false).await;
    let (got, end) = read_all(addr).await;
    assert_eq!(got, ["before"]);
    assert_eq!(end.expect_err("truncated").kind(), ErrorKind::Closed);
}

fn text_bytes(payload: &[u8]) -> Vec<u8> {
    frame(0x1, payload)
}
