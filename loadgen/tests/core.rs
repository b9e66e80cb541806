//! The connection core's options, over real sockets: TLS for WebSocket and
//! HTTP/1.1 event streams against the real server (ALPN `http/1.1` alone),
//! the per-connection socket hook, any URL path and query with extra
//! headers and resume, and a decoder of another server's events.

mod support;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use loadgen::client::{
    Dialer, Endpoint, FeedStream, MessageDecoder, Msg, Opener, RawEvent, SocketHook,
    SourceAddresses,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::{start_server, target};

/// The first messages of a stream, up to and including its first tick.
async fn until_tick(stream: &mut FeedStream) -> Vec<Msg> {
    let mut seen = Vec::new();
    let read = async {
        while let Some(msg) = stream.next().await.expect("the stream reads") {
            let tick = matches!(msg, Msg::Tick { .. });
            seen.push(msg);
            if tick {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a tick within 10 s");
    seen
}

fn hello_protocol(msgs: &[Msg]) -> Option<&str> {
    msgs.iter().find_map(|m| match m {
        Msg::Hello { protocol, .. } => Some(protocol.as_str()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_event_streams_over_tls_offer_http1_alone() {
    let server = start_server(50.0);
    let t = target(&server);
    let wss = t.tls_http1("wss", "/ws").expect("a TLS listener");
    assert!(wss.url().starts_with("wss://localhost:"), "{}", wss.url());
    let mut ws = Opener::ws(wss.clone(), Dialer::default())
        .open(0, None)
        .await
        .expect("WebSocket over TLS opens");
    let msgs = until_tick(&mut ws).await;
    assert_eq!(hello_protocol(&msgs), Some("http/1.1"), "{msgs:?}");
    ws.close().await;

    let https = t.tls_http1("https", "/sse").expect("a TLS listener");
    let mut sse = Opener::sse_h1(https, Dialer::default())
        .open(0, None)
        .await
        .expect("SSE over HTTP/1.1 over TLS opens");
    let msgs = until_tick(&mut sse).await;
    assert_eq!(hello_protocol(&msgs), Some("http/1.1"), "{msgs:?}");

    // Offering h2 as a browser does makes the server pick it, and the
    // HTTP/1.1 upgrade then fails: why a WebSocket offers http/1.1 alone.
    let h2_offer = t.https_h2("/ws").unwrap();
    let ws_url = format!("wss://localhost:{}/ws", server.https_addr.unwrap().port());
    let offered_h2 = Endpoint::new(&ws_url, h2_offer.addr(), h2_offer.tls().cloned()).unwrap();
    let err = Opener::ws(offered_h2, Dialer::default())
        .open(0, None)
        .await
        .err()
        .expect("a WebSocket upgrade over h2 fails");
    assert!(err.to_string().contains(&ws_url), "{err}");
    server.shutdown().await.unwrap();
}

/// Notes the connection index of every socket it makes.
#[derive(Debug, Default)]
struct Counted(Arc<Mutex<Vec<usize>>>);

impl SocketHook for Counted {
    fn socket(&self, peer: SocketAddr, index: usize) -> io::Result<tokio::net::TcpSocket> {
        self.0.lock().unwrap().push(index);
        SourceAddresses::default().socket(peer, index)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_is_made_by_the_dialers_hook() {
    let server = start_server(50.0);
    let t = target(&server);
    let indexes = Arc::new(Mutex::new(Vec::new()));
    let dialer = Dialer::new(Counted(indexes.clone()));
    for (wire_opener, n) in [
        (Opener::sse_h1(t.plain("/sse"), dialer.clone()), 3),
        (Opener::ws(t.ws("/ws"), dialer.clone()), 2),
        // Two pool connections (numbered by their slot) carry four streams.
        (
            Opener::sse_h2(t.https_h2("/sse").unwrap(), dialer.clone(), 2),
            4,
        ),
    ] {
        for i in 0..n {
            let mut s = wire_opener.open(10 + i, None).await.expect("opens");
            until_tick(&mut s).await;
        }
    }
    let indexes = indexes.lock().unwrap().clone();
    assert_eq!(indexes, vec![10, 11, 12, 10, 11, 0, 1], "{indexes:?}");
    server.shutdown().await.unwrap();
}

/// A peer that records each request head and answers with `reply`.
async fn recording_peer(reply: &'static [u8]) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).to_lowercase());
                let _ = sock.write_all(reply).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    (addr, heads)
}

/// Another server's events: `{"n": id, "t": sent in ms}`.
#[derive(Debug)]
struct MillisStamp;

impl MessageDecoder for MillisStamp {
    fn decode(&self, event: RawEvent<'_>, recv_unix_ns: u64) -> Result<Option<Msg>, String> {
        let v: serde_json::Value = serde_json::from_str(event.data).map_err(|e| e.to_string())?;
        let field = |k: &str| v[k].as_u64().ok_or(format!("no `{k}`"));
        Ok(Some(Msg::Tick {
            id: field("n")?,
            sent_unix_ns: field("t")? * 1_000_000,
            recv_unix_ns,
            bytes: event.data.len(),
        }))
    }
}

#[tokio::test]
async fn any_path_and_query_with_headers_and_resume_and_a_decoder_of_its_own() {
    let (addr, heads) = recording_peer(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nid: 7\ndata: {\"n\":8,\"t\":1000}\n\n",
    )
    .await;
    let endpoint = Endpoint::new(&format!("http://{addr}/feed/sse?room=a"), addr, None)
        .unwrap()
        .with_header(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer t0ken"),
        );
    let opener =
        Opener::sse_h1(endpoint.clone(), Dialer::default()).with_decoder(Arc::new(MillisStamp));
    let mut stream = opener.open(0, Some(7)).await.expect("opens");
    match stream.next().await.expect("reads") {
        Some(Msg::Tick {
            id: 8,
            sent_unix_ns: 1_000_000_000,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let head = heads.lock().unwrap()[0].clone();
    assert!(
        head.starts_with("get /feed/sse?room=a http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("authorization: bearer t0ken\r\n"), "{head}");
    assert!(head.contains("last-event-id: 7\r\n"), "{head}");

    // A WebSocket resumes by query, after the endpoint's own.
    let ws = Endpoint::new(&format!("ws://{addr}/feed/ws?room=a"), addr, None)
        .unwrap()
        .with_header(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer t0ken"),
        );
    let err = Opener::ws(ws, Dialer::default())
        .open(0, Some(7))
        .await
        .err();
    assert!(err.is_some(), "the peer does not upgrade");
    let head = heads.lock().unwrap()[1].clone();
    assert!(
        head.starts_with("get /feed/ws?room=a&lasteventid=7 http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("authorization: bearer t0ken\r\n"), "{head}");
}
