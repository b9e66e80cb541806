//! Bad input and hard limits: WS close codes, 503 beyond max connections,
//! abruptly closed clients, admin access.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::{start, Feed, Wire};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Reads until the server's close frame; returns its code.
async fn close_code(ws: &mut support::Ws) -> CloseCode {
    loop {
        let msg = tokio::time::timeout(support::STEP, ws.next())
            .await
            .expect("the server closes within the step");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code,
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error before the close frame: {e}"),
        }
    }
}

#[tokio::test]
async fn oversized_ws_message_is_closed_with_1009() {
    let server = start(|c| c.ws_max_frame = 1024);
    let mut ws = support::ws_connect(&server, "").await;
    support::ws_send(&mut ws, Message::text("x".repeat(4096))).await;
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);
    support::wait_stats(&server, "the socket gone", |s| {
        s["connections_open_total"] == 0
    })
    .await;
    assert_eq!(support::stats(&server).await["ws_protocol_errors"], 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unmasked_client_frame_is_closed_with_1002() {
    let server = start(|_| {});
    let mut ws = support::ws_connect(&server, "").await;
    // A client frame must be masked (RFC 6455 5.1): this one is not.
    ws.get_mut()
        .write_all(&[0x81, 0x05, b'h', b'e', b'l', b'l', b'o'])
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Protocol);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reserved_opcode_is_closed_with_1002() {
    let server = start(|_| {});
    let mut ws = support::ws_connect(&server, "").await;
    // FIN + opcode 0x3 (reserved), masked, empty payload.
    ws.get_mut()
        .write_all(&[0x83, 0x80, 1, 2, 3, 4])
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Protocol);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_text_is_ignored_and_the_feed_goes_on() {
    let server = start(|_| {});
    let mut feed = Feed::open(&server, Wire::WsH1, None).await;
    feed.hello().await;
    if let Feed::Ws(ws) = &mut feed {
        support::ws_send(ws, Message::text("hello server")).await;
    }
    feed.next_data().await.unwrap();
    feed.next_data().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn beyond_max_connections_streams_get_503() {
    let server = start(|c| c.max_connections = Some(2));
    let mut a = Feed::open(&server, Wire::SseH1, None).await;
    let mut b = Feed::open(&server, Wire::WsH1, None).await;
    a.hello().await;
    b.hello().await;
    for wire in [Wire::SseH1, Wire::SseH2, Wire::SseH2c] {
        let res = support::get(&server, wire, "/sse", &[]).await;
        assert_eq!(res.status, 503, "{wire:?}");
        assert_eq!(res.headers["retry-after"], "1");
        assert!(res.text().await.contains("--max-connections"));
    }
    // WS is refused before the upgrade: a plain 503.
    let url = format!("ws://{}/ws", server.http_addr);
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 503),
        other => panic!("expected an HTTP 503, got {other}"),
    }
    assert_eq!(support::stats(&server).await["refused"], 4);
    // Closing one frees a slot.
    a.abort();
    support::wait_stats(&server, "one stream", |s| s["connections_open_total"] == 1).await;
    let mut c = Feed::open(&server, Wire::SseH2c, None).await;
    c.hello().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn abruptly_closed_clients_leave_no_subscriber_behind() {
    let server = start(|_| {});
    let mut feeds = Vec::new();
    for wire in support::Wire::ALL {
        for _ in 0..3 {
            let mut f = Feed::open(&server, wire, None).await;
            f.hello().await;
            feeds.push(f);
        }
    }
    support::wait_stats(&server, "12 open", |s| s["connections_open_total"] == 12).await;
    for f in feeds {
        f.abort();
    }
    support::wait_stats(&server, "every stream closed", |s| {
        s["connections_open_total"] == 0
    })
    .await;
    assert_eq!(server.hub().open_streams(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_every_stream_within_the_timeout() {
    let server = start(|c| c.shutdown_timeout = Duration::from_secs(2));
    let mut feeds = Vec::new();
    for wire in support::Wire::ALL {
        let mut f = Feed::open(&server, wire, None).await;
        f.hello().await;
        feeds.push(f);
    }
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    for mut f in feeds {
        // Each stream ends (SSE body finishes, WS gets a close) on its own.
        while f.next().await.is_some() {}
    }
    stopping.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn drop_all_closes_streams_and_they_resume() {
    let server = start(|_| {});
    let mut feed = Feed::open(&server, Wire::SseH1, None).await;
    feed.hello().await;
    let Some(support::Msg::Tick { id, .. }) = feed.next_data().await else {
        panic!("a tick")
    };
    let res = support::post(&server, "/admin/drop").await;
    assert_eq!(res.0, 200);
    assert_eq!(res.1["dropped"], 1);
    while feed.next().await.is_some() {}
    let mut again = Feed::open(&server, Wire::SseH1, Some(&id.to_string())).await;
    again.hello().await;
    let Some(support::Msg::Tick { id: next, .. }) = again.next_data().await else {
        panic!("a tick")
    };
    assert_eq!(next, id + 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_token_is_required_when_set() {
    let server = start(|c| c.admin_token = Some("s3cret".into()));
    assert_eq!(support::post(&server, "/admin/drop").await.0, 403);
    assert_eq!(
        support::post(&server, "/admin/drop?token=nope").await.0,
        403
    );
    assert_eq!(
        support::post(&server, "/admin/drop?token=s3cret").await.0,
        200
    );
    server.shutdown().await.unwrap();
}

/// A client that connects and sends nothing is closed on either port: the
/// plain port after waiting 5 s for its first bytes (which tell HTTP/1.1
/// from h2c), the TLS port after its handshake timeout (3 s). It does not
/// hold a connection task for ever. One that speaks within the 5 s is
/// served.
#[tokio::test]
async fn a_connection_that_says_nothing_is_closed() {
    use tokio::io::AsyncReadExt;
    let server = start(|_| {});
    let https = server.https_addr.expect("the TLS port is on by default");
    let silent = |port: &'static str, addr| async move {
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the {port} port still holds a silent client after 15 s"));
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the {port} port sent bytes to a silent client: {read:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "the {port} port closed a silent client at once ({:?}): it must wait for it",
            started.elapsed()
        );
    };
    let late = async {
        let mut tcp = tokio::net::TcpStream::connect(server.http_addr)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        tcp.write_all(b"GET /info HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(support::STEP, tcp.read_to_end(&mut answer))
            .await
            .expect("the late client's answer within the step")
            .expect("the late client's answer reads");
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "a client that spoke after 3 s was not served: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    };
    tokio::join!(
        silent("plain", server.http_addr),
        silent("TLS", https),
        late
    );
    server.shutdown().await.unwrap();
}

/// A graceful stop does not wait for a client that connected and said
/// nothing: the wait for its first bytes ends with the stop, as an idle
/// keep-alive connection's does, instead of holding the stop for the rest
/// of its 5 s.
#[tokio::test]
async fn a_silent_client_does_not_hold_the_stop() {
    let server = start(|c| c.shutdown_timeout = Duration::from_secs(20));
    let _silent = tokio::net::TcpStream::connect(server.http_addr)
        .await
        .unwrap();
    // The server has accepted it and waits for its first bytes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    server.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the stop waited {:?} for a silent client (its first-bytes limit is 5 s)",
        started.elapsed()
    );
}

/// A certificate generated at the default path is this run's temporary
/// file: gone when the server stops, whether shut down or dropped. One
/// written to `--cert-out` is the caller's, and stays.
#[tokio::test]
async fn the_generated_certificate_is_removed_when_the_server_stops() {
    let shut_down = start(|_| {});
    let dropped = start(|_| {});
    let paths = [&shut_down, &dropped].map(|s| s.cert_path().expect("TLS is on by default"));
    for path in &paths {
        assert!(path.exists(), "{} written at start", path.display());
    }
    shut_down.shutdown().await.unwrap();
    drop(dropped);
    for path in &paths {
        assert!(
            !path.exists(),
            "{} left after the server stopped",
            path.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cert.pem");
    let given = start(|c| c.cert_out = Some(out.clone()));
    assert_eq!(given.cert_path().as_deref(), Some(out.as_path()));
    assert!(out.exists(), "written to --cert-out");
    given.shutdown().await.unwrap();
    assert!(out.exists(), "a --cert-out certificate is kept");
}
