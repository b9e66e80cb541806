//! A client that stops reading costs bounded memory: SSE subscribers lag and
//! get a gap event naming what they lost; WebSockets are closed and counted.

mod support;

use std::time::Duration;

use support::start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fast_big_feed(c: &mut server::ServerConfig) {
    c.rate = 500.0;
    c.payload_bytes = 8 * 1024;
    c.replay = 64;
    c.fanout_buffer = 16;
    c.keepalive = Duration::from_millis(250);
}

#[tokio::test]
async fn a_stalled_sse_reader_gets_a_gap_when_it_reads_again() {
    let server = start(fast_big_feed);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(server.http_addr).await.unwrap();
    tcp.write_all(b"GET /sse HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // Stall: far more than the ring, the fan-out buffer and every socket
    // buffer can hold is produced meanwhile.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + support::STEP;
    let gap = loop {
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .expect("a gap event before the deadline")
            .unwrap();
        assert!(n > 0, "stream ended without a gap");
        // Search only the new bytes (plus an overlap for a split marker).
        let from = seen.len().saturating_sub(64);
        seen.extend_from_slice(&buf[..n]);
        if let Some(at) = find(&seen[from..], b"event: gap\ndata: ").map(|i| i + from) {
            let rest = &seen[at..];
            if let Some(end) = find(rest, b"\n\n") {
                break String::from_utf8_lossy(&rest[..end]).into_owned();
            }
        }
        // Keep only a tail so memory stays small in the test too.
        if seen.len() > 1 << 16 {
            seen.drain(..seen.len() - 4096);
        }
    };
    assert!(gap.contains("\"type\":\"gap\""), "{gap}");
    let s = support::stats(&server).await;
    assert!(s["slow_gaps"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["lagged"].as_u64().unwrap() >= 1, "{s}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stalled_ws_reader_is_disconnected_and_counted() {
    let server = start(fast_big_feed);
    let _ws = support::ws_connect(&server, "").await;
    // Never read (so never answer pings either). The server gives up after
    // the client timeout (2 x 250 ms): as a stuck send or as missing pongs,
    // whichever it notices first.
    let s = support::wait_stats(&server, "the stuck socket closed", |s| {
        let closed =
            s["slow_disconnects"].as_u64().unwrap_or(0) + s["ws_timeouts"].as_u64().unwrap_or(0);
        closed >= 1 && s["connections_open_total"] == 0
    })
    .await;
    assert_eq!(s["connections_open"]["ws_h1"], 0);
    server.shutdown().await.unwrap();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What a client that never reads sends to make the server write to it:
/// messages to echo, or one prompt for a long, fast answer.
async fn provoke(ws: &mut support::RawWs, path: &str) {
    let writes = async {
        if path == "/ws/chat" {
            let prompt =
                br#"{"type":"prompt","id":1,"prompt":"talk","tokens":100000,"rate":100000}"#;
            ws.send(&support::masked_frame(true, 0x1, prompt)).await;
        } else {
            let big = vec![b'x'; 32 * 1024];
            for _ in 0..256 {
                ws.send(&support::masked_frame(true, 0x1, &big)).await;
            }
        }
    };
    // The server stops reading once it is stuck: our writes then block.
    let _ = tokio::time::timeout(Duration::from_secs(2), writes).await;
}

#[rstest::rstest]
#[case::echo("/ws/echo")]
#[case::chat("/ws/chat")]
#[tokio::test]
async fn a_stalled_echo_or_chat_client_is_closed_and_counted(#[case] path: &str) {
    let server = start(|c| c.keepalive = Duration::from_millis(250));
    let mut ws = support::RawWs::connect(server.http_addr, path, Some(4096)).await;
    provoke(&mut ws, path).await;
    // Never read: the server gives up after the client timeout (2 x 250 ms).
    let s = support::wait_stats(&server, "the stuck socket closed", |s| {
        s["slow_disconnects"].as_u64().unwrap_or(0) + s["ws_timeouts"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    assert_eq!(server.hub().open_streams(), 0, "{path}: {s}");
    drop(ws);
    server.shutdown().await.unwrap();
}

#[rstest::rstest]
#[case::feed("/ws")]
#[case::echo("/ws/echo")]
#[case::chat("/ws/chat")]
#[tokio::test]
async fn drop_all_closes_a_stalled_websocket(#[case] path: &str) {
    // A long keep-alive: only drop-all can end these sockets in this test.
    let server = start(|c| {
        fast_big_feed(c);
        c.keepalive = Duration::from_secs(60);
    });
    let mut ws = support::RawWs::connect(server.http_addr, path, Some(4096)).await;
    provoke(&mut ws, path).await;
    // Long enough for every buffer between us to fill: the server is
    // then waiting on a send when the drop comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        server.hub().open_streams(),
        1,
        "{path}: still open before the drop"
    );
    assert_eq!(support::post(&server, "/admin/drop").await.0, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.hub().open_streams() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path}: drop-all did not close a stalled socket"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(ws);
    server.shutdown().await.unwrap();
}
