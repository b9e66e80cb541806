//! The real binary under a lowered open-file limit, and its logs: more
//! clients than descriptors must get 503s, never "Too many open files",
//! while `/stats`, `/metrics` and the page stay reachable; and no client can
//! flood the log.

mod support;

use std::time::Duration;

use support::ChildServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The open-file limit the server gets (soft and hard): the 256.
const OPEN_FILES: u64 = 256;

/// Opens `GET /sse` on a raw HTTP/1.1 connection; the status line, the
/// whole head, and the connection (or `None` if no head came in time).
async fn open_sse(addr: std::net::SocketAddr) -> Option<(u16, String, TcpStream)> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    tcp.write_all(b"GET /sse HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(20), read_head)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head, tcp))
}

/// Whether the server closed `tcp` (EOF after the body), within a bound.
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut sink = vec![0u8; 4096];
    let drain = async {
        loop {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .unwrap_or(false)
}

#[tokio::test]
async fn more_clients_than_descriptors_get_503_and_stats_stay_reachable() {
    let server = ChildServer::spawn(&[], Some(OPEN_FILES));
    let s = server.stats().await;
    let limits = &s["limits"];
    assert_eq!(limits["open_files_limit"], OPEN_FILES, "{s}");
    let max_streams = limits["max_streams"].as_u64().unwrap();
    assert!(max_streams < OPEN_FILES, "{limits}");
    // More than the process may hold, all at once.
    let clients = 320;
    let opens: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(open_sse(server.http_addr)))
        .collect();
    let mut held = Vec::new();
    let mut refused = Vec::new();
    let mut unanswered = 0;
    for open in opens {
        match open.await.unwrap() {
            Some((200, _, tcp)) => held.push(tcp),
            Some((503, head, tcp)) => {
                assert!(
                    head.to_ascii_lowercase().contains("retry-after: 1"),
                    "{head}"
                );
                refused.push(tcp);
            }
            Some((other, head, _)) => panic!("unexpected {other}: {head}"),
            None => unanswered += 1,
        }
    }
    // While every stream slot is taken, the server still answers these.
    for path in ["/stats", "/metrics", "/"] {
        let (status, _) = server
            .get(path)
            .await
            .unwrap_or_else(|| panic!("{path} did not answer with streams full"));
        assert_eq!(status, 200, "{path}");
    }
    let s = server.stats().await;
    let fds = s["process"]["open_fds"].as_u64().unwrap();
    eprintln!(
        "{clients} clients, limit {OPEN_FILES} files: {} streams held, {} refused with 503, \
         {unanswered} unanswered; server descriptors {fds}; stats refused {}",
        held.len(),
        refused.len(),
        s["refused"]
    );
    assert_eq!(held.len() as u64, max_streams, "every stream slot used");
    assert_eq!(unanswered, 0, "every client got an answer");
    assert_eq!(refused.len(), clients - held.len());
    assert!(fds <= OPEN_FILES, "{fds} descriptors");
    // A refused client's connection is closed, so it costs no descriptor.
    for tcp in refused.iter_mut().take(20) {
        assert!(
            closed_by_server(tcp).await,
            "a refused connection stays open"
        );
    }
    let logs = server.log_text();
    let storms = logs.matches("Too many open files").count();
    assert_eq!(storms, 0, "the server ran out of descriptors:\n{logs}");
    drop(held);
}

#[tokio::test]
async fn no_client_can_flood_the_log() {
    let server = ChildServer::spawn(&[], None);
    let before = server.log_text().lines().count();
    // Malformed requests, malformed frames and bad numbers, 100 of each.
    for i in 0..100 {
        let mut tcp = TcpStream::connect(server.http_addr).await.unwrap();
        let garbage: &[u8] = match i % 3 {
            0 => b"NOT HTTP AT ALL\r\n\r\n",
            1 => b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
            _ => b"GET /sse HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        };
        let _ = tcp.write_all(garbage).await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut sink)).await;
        let mut ws = support::RawWs::connect(server.http_addr, "/ws/echo", None).await;
        ws.send(&support::masked_frame(true, 0x3, b"")).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close_code()).await;
        let (status, _) = server.get("/admin/drop?fraction=7").await.unwrap();
        assert_eq!(status, 404, "admin routes are POST only");
    }
    let logs = server.log_text();
    let lines: Vec<&str> = logs.lines().skip(before).collect();
    eprintln!(
        "{} log lines after 300 bad requests:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(lines.len() <= 5, "a client flooded the log");
    assert!(!logs.contains('\u{1b}'), "colour codes in a log file");
    let s = server.stats().await;
    eprintln!(
        "log lines suppressed: {}",
        s["process"]["log_lines_suppressed"]
    );
}
