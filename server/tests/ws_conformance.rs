//! `/ws/echo` against the RFC 6455 points the Autobahn suite probes (the
//! suite itself is Python 2 only and cannot run here): frames are written
//! raw after a real handshake, and the server's answer is read back.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::start;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const RSV1: u8 = 0x40;

/// One masked client frame (payloads under 126 bytes).
fn frame(fin: bool, flags: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![
        (if fin { 0x80 } else { 0 }) | flags | opcode,
        0x80 | payload.len() as u8,
    ];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

async fn echo_socket(server: &server::RunningServer) -> support::Ws {
    support::ws_connect(server, "/echo").await
}

async fn write_raw(ws: &mut support::Ws, frames: &[Vec<u8>]) {
    let bytes: Vec<u8> = frames.concat();
    ws.get_mut().write_all(&bytes).await.unwrap();
}

/// The next message other than a server ping.
async fn next(ws: &mut support::Ws) -> Message {
    loop {
        let msg = tokio::time::timeout(support::STEP, ws.next())
            .await
            .expect("an answer within the step")
            .expect("the socket is open")
            .expect("a valid frame from the server");
        if !matches!(msg, Message::Ping(_)) {
            return msg;
        }
    }
}

/// The server's close frame: its code.
async fn close_code(ws: &mut support::Ws) -> u16 {
    match next(ws).await {
        Message::Close(Some(f)) => f.code.into(),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn text_and_binary_come_back_unchanged() {
    let server = start(|_| {});
    let mut ws = echo_socket(&server).await;
    ws.send(Message::text("héllo")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("héllo"));
    let big = vec![7u8; 60 * 1024];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(big));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn fragments_are_reassembled_and_pings_between_them_answered() {
    let server = start(|_| {});
    let mut ws = echo_socket(&server).await;
    write_raw(
        &mut ws,
        &[
            frame(false, 0, TEXT, b"Hel"),
            frame(true, 0, PING, b"mid"),
            frame(false, 0, CONTINUATION, b"l"),
            frame(true, 0, CONTINUATION, b"o"),
        ],
    )
    .await;
    // The pong answers at once, before the message is complete.
    assert_eq!(next(&mut ws).await, Message::Pong("mid".into()));
    assert_eq!(next(&mut ws).await, Message::text("Hello"));
    // Binary fragments too.
    write_raw(
        &mut ws,
        &[
            frame(false, 0, BINARY, &[1, 2]),
            frame(true, 0, CONTINUATION, &[3]),
        ],
    )
    .await;
    assert_eq!(next(&mut ws).await, Message::binary(vec![1, 2, 3]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_text_is_closed_with_1007() {
    let server = start(|_| {});
    // Autobahn 6.3.1's payload: valid UTF-8 up to a surrogate (ED A0 80).
    let bad = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited";
    let mut ws = echo_socket(&server).await;
    write_raw(&mut ws, &[frame(true, 0, TEXT, bad)]).await;
    assert_eq!(close_code(&mut ws).await, 1007);
    // Split over fragments, the message is checked once whole.
    let mut ws = echo_socket(&server).await;
    write_raw(
        &mut ws,
        &[
            frame(false, 0, TEXT, &bad[..5]),
            frame(true, 0, CONTINUATION, &bad[5..]),
        ],
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 1007);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reserved_opcodes_and_rsv_bits_are_closed_with_1002() {
    let server = start(|_| {});
    for (what, raw) in [
        ("reserved data opcode 0x3", frame(true, 0, 0x3, b"")),
        ("reserved control opcode 0xB", frame(true, 0, 0xB, b"")),
        ("RSV1 without an extension", frame(true, RSV1, TEXT, b"x")),
        ("RSV3 without an extension", frame(true, 0x10, TEXT, b"x")),
        (
            "continuation with nothing to continue",
            frame(true, 0, CONTINUATION, b"x"),
        ),
        ("fragmented ping", frame(false, 0, PING, b"x")),
        (
            "close with reserved code 1005",
            frame(true, 0, CLOSE, &1005u16.to_be_bytes()),
        ),
    ] {
        let mut ws = echo_socket(&server).await;
        write_raw(&mut ws, &[raw]).await;
        assert_eq!(close_code(&mut ws).await, 1002, "{what}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_clean_close_is_echoed() {
    let server = start(|_| {});
    for code in [CloseCode::Normal, CloseCode::Away, CloseCode::Library(3000)] {
        let mut ws = echo_socket(&server).await;
        ws.send(Message::Close(Some(CloseFrame {
            code,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
        let echoed = tokio::time::timeout(support::STEP, ws.next())
            .await
            .expect("the server answers the close");
        match echoed {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), u16::from(code)),
            other => panic!("expected the close echoed, got {other:?}"),
        }
    }
    // An empty close is answered by an empty close.
    let mut ws = echo_socket(&server).await;
    write_raw(&mut ws, &[frame(true, 0, CLOSE, b"")]).await;
    assert_eq!(next(&mut ws).await, Message::Close(None));
    server.shutdown().await.unwrap();
}
