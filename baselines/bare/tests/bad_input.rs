//! Bad requests and bad frames get a clear answer, are counted, and leave
//! the server serving.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::{exchange, start_bare, FeedClient, Wire, WsClient};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_status_that_says_why() {
    let bare = start_bare(|c| c.request_timeout = Duration::from_millis(300)).await;
    let addr = bare.addr;
    let huge = format!("GET /sse HTTP/1.1\r\nX-Big: {}\r\n\r\n", "y".repeat(10_000));
    let cases: [(&[u8], &str, &str); 5] = [
        (b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", "404 Not Found", "try /sse, /ws or /stats"),
        (b"POST /sse HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", "405 Method Not Allowed", "Allow: GET"),
        (b"\x16\x03\x01\x00garbage\r\n\r\n", "400 Bad Request", "malformed request head"),
        (huge.as_bytes(), "431 Request Header Fields Too Large", "larger than 8192 bytes"),
        (
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
            "400 Bad Request",
            "Sec-WebSocket-Key",
        ),
    ];
    for (request, status, says) in cases {
        let answer = exchange(addr, request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{answer}"
        );
        assert!(answer.contains(says), "{answer}");
    }
    // Silence: answered once the request timeout passes.
    let answer = exchange(addr, b"GET /sse HTTP/1.1\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    // A client that connects and leaves is no bad request.
    drop(support::connect(addr, None).await);
    let s = support::wait_stats(addr, "six bad requests", |s| s["bad_requests"] == 6).await;
    assert_eq!(s["streams_total"], 0, "{s}");
    // Still serving.
    let mut client = FeedClient::open(Wire::Sse, addr, None).await;
    client.ticks(2).await;
    bare.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_close_the_socket_with_a_code() {
    let bare = start_bare(|_| {}).await;
    for (garbage, code) in [
        // Unmasked client frame.
        (&b"\x81\x02hi"[..], 1002u16),
        // Reserved opcode.
        (b"\x8b\x80\x00\x00\x00\x00", 1002),
        // A frame declaring 1 GiB: refused from its header, nothing buffered.
        (
            b"\x82\xff\x00\x00\x00\x00\x40\x00\x00\x00\x01\x02\x03\x04",
            1009,
        ),
    ] {
        let mut ws = WsClient::open(bare.addr, "").await;
        ws.next_json().await.expect("a hello");
        ws.ws.get_mut().write_all(garbage).await.unwrap();
        assert_eq!(ws.close_code().await, Some(code), "after {garbage:?}");
    }
    let s = support::wait_stats(bare.addr, "every socket closed", |s| s["ws_open"] == 0).await;
    assert_eq!(s["client_closed"], 3, "{s}");
    // A ping is answered; the feed goes on.
    let mut ws = WsClient::open(bare.addr, "").await;
    ws.ws
        .send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    let pong = loop {
        match ws.ws.next().await.unwrap().unwrap() {
            Message::Pong(payload) => break payload,
            _ => continue,
        }
    };
    assert_eq!(&pong[..], b"are you there");
    ws.next_json().await.expect("the feed goes on");
    bare.shutdown().await.unwrap();
}
