//! Hostile and careless WebSocket clients, through raw sockets on every
//! WebSocket route: a frame header that declares gigabytes must be closed
//! with 1009 before anything is buffered, and a closed WebSocket must close
//! its TCP connection even when the client never closes its side.
//!
//! The tests here read the process's RSS and descriptor count from `/stats`,
//! so they run one at a time.

mod support;

use std::time::Duration;

use rstest::rstest;
use support::{masked_frame, parse_server_frame, process_figures, start, ChildServer, RawWs};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// The figures read from `/stats` are the whole test process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// How soon after its close frame the server must close the TCP
/// connection: about 1 s (actix's linger), with room for a busy machine.
const CLOSE_BOUND: Duration = Duration::from_millis(2500);

/// A masked binary frame header declaring `len` bytes, with no payload.
fn huge_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[1, 2, 3, 4]);
    h
}

/// Streams zeros after a huge header until the server closes (bounded in
/// bytes and time) while reading the server's frames: the close code, when
/// it came, and how much was sent meanwhile.
async fn flood_until_closed(ws: RawWs) -> (Option<u16>, Duration, u64) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let RawWs { mut tcp, mut buf } = ws;
    let (mut r, mut w) = tcp.split();
    let reader = async {
        loop {
            if let Some((frame, used)) = parse_server_frame(&buf) {
                let _ = buf.split_to(used);
                if frame.opcode == 0x8 {
                    return (frame.close_code(), started.elapsed());
                }
                continue;
            }
            match tokio::time::timeout(CLOSE_BOUND, r.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return (None, started.elapsed()),
            }
        }
    };
    let writer = async {
        let zeros = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < 32 << 20 && started.elapsed() < Duration::from_secs(3) {
            match tokio::time::timeout(Duration::from_millis(500), w.write_all(&zeros)).await {
                Ok(Ok(())) => sent += zeros.len() as u64,
                _ => break,
            }
        }
        sent
    };
    let ((code, after), sent) = tokio::join!(reader, writer);
    (code, after, sent)
}

#[rstest]
#[case::feed("/ws")]
#[case::echo("/ws/echo")]
#[case::chat("/ws/chat")]
#[tokio::test]
async fn a_frame_declaring_2_pow_40_bytes_is_closed_with_1009_and_rss_stays_flat(
    #[case] path: &str,
) {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = start(|_| {});
    let (rss_before, _) = process_figures(&server).await;
    let mut floods = Vec::new();
    for _ in 0..4 {
        let mut ws = RawWs::connect(server.http_addr, path, None).await;
        ws.send(&huge_header(1 << 40)).await;
        floods.push(tokio::spawn(flood_until_closed(ws)));
    }
    let mut sent = 0;
    for flood in floods {
        let (code, after, bytes) = flood.await.unwrap();
        assert_eq!(code, Some(1009), "{path}: a 1009 close, after {after:?}");
        assert!(after < CLOSE_BOUND, "{path}: closed after {after:?}");
        sent += bytes;
    }
    let (rss_after, _) = process_figures(&server).await;
    let grew = rss_after.saturating_sub(rss_before);
    eprintln!(
        "{path}: RSS {} -> {} MiB while 4 clients sent {} MiB of a declared 2^40-byte frame",
        rss_before >> 20,
        rss_after >> 20,
        sent >> 20
    );
    assert!(grew < 16 << 20, "{path}: RSS grew by {} MiB", grew >> 20);
    let s = support::stats(&server).await;
    assert_eq!(s["ws_oversized"], 4, "{s}");
    assert_eq!(s["ws_protocol_errors"], 4, "{s}");
    server.shutdown().await.unwrap();
}

#[rstest]
#[case::feed("/ws")]
#[case::echo("/ws/echo")]
#[case::chat("/ws/chat")]
#[tokio::test]
async fn a_declared_2_gib_frame_with_no_payload_is_closed_at_once(#[case] path: &str) {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = start(|_| {});
    let mut ws = RawWs::connect(server.http_addr, path, None).await;
    let started = std::time::Instant::now();
    ws.send(&huge_header(2 << 30)).await;
    let code = tokio::time::timeout(CLOSE_BOUND, ws.close_code())
        .await
        .expect("the close comes at once, not at the ping timeout");
    assert_eq!(code, Some(1009), "{path}");
    eprintln!("{path}: 1009 after {:?}", started.elapsed());
    tokio::time::timeout(CLOSE_BOUND, ws.until_eof())
        .await
        .expect("then the socket closes");
    server.shutdown().await.unwrap();
}

/// What a client does before it stops: a clean close, or a frame the
/// server must refuse (1002), or one too big (1009).
#[derive(Debug, Clone, Copy)]
enum LastWords {
    Close,
    ReservedOpcode,
    TooBig,
}

impl LastWords {
    fn bytes(self) -> Vec<u8> {
        match self {
            LastWords::Close => masked_frame(true, 0x8, &1000u16.to_be_bytes()),
            LastWords::ReservedOpcode => masked_frame(true, 0x3, b""),
            LastWords::TooBig => huge_header(1 << 31),
        }
    }

    fn code(self) -> u16 {
        match self {
            LastWords::Close => 1000,
            LastWords::ReservedOpcode => 1002,
            LastWords::TooBig => 1009,
        }
    }
}

/// The server's descriptors, once they settle at `want` (or the last seen).
async fn fds_settle(server: &ChildServer, want: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let fds = server.stats().await["process"]["open_fds"]
            .as_u64()
            .unwrap();
        if fds <= want || tokio::time::Instant::now() > deadline {
            return fds;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[rstest]
#[case::feed("/ws")]
#[case::echo("/ws/echo")]
#[case::chat("/ws/chat")]
#[tokio::test]
async fn a_closed_websocket_closes_its_tcp_connection(#[case] path: &str) {
    const CLIENTS: usize = 60;
    // The binary in its own process: its descriptors are its own.
    let server = ChildServer::spawn(&[], None);
    let fds_idle = server.stats().await["process"]["open_fds"]
        .as_u64()
        .unwrap();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let words = [
            LastWords::Close,
            LastWords::ReservedOpcode,
            LastWords::TooBig,
        ][i % 3];
        clients.push((words, RawWs::connect(server.http_addr, path, None).await));
    }
    let fds_open = server.stats().await["process"]["open_fds"]
        .as_u64()
        .unwrap();
    // Every client says its last words, a few at a time over 0.6 s, and
    // never closes its side; each must see the server's close frame, then
    // EOF, within the bound.
    let mut waits = Vec::new();
    for (i, (words, mut ws)) in clients.into_iter().enumerate() {
        let pause = Duration::from_millis((i as u64 % 20) * 30);
        waits.push(tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            let started = std::time::Instant::now();
            ws.send(&words.bytes()).await;
            let code = tokio::time::timeout(CLOSE_BOUND, ws.close_code()).await;
            let eof = tokio::time::timeout(CLOSE_BOUND, ws.until_eof()).await;
            // Our side stays open until the checks are done.
            (words, code, eof.is_ok(), started.elapsed(), ws)
        }));
    }
    let mut ours = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut no_eof = 0;
    for wait in waits {
        let (words, code, eof, took, ws) = wait.await.unwrap();
        assert_eq!(code.ok().flatten(), Some(words.code()), "{path} {words:?}");
        if eof {
            slowest = slowest.max(took);
        } else {
            no_eof += 1;
        }
        ours.push(ws);
    }
    let fds_after = fds_settle(&server, fds_idle).await;
    eprintln!(
        "{path}: server descriptors idle {fds_idle}, with {CLIENTS} sockets {fds_open}, \
         after the closes {fds_after}; slowest EOF {slowest:?}; {no_eof} without EOF"
    );
    assert_eq!(no_eof, 0, "{path}: sockets left open by the server");
    assert_eq!(fds_after, fds_idle, "{path}: descriptors back to idle");
    drop(ours);
}
