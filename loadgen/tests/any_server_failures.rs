//! Any server that is not what the flags say, through the real binary: not
//! an event stream, no 101 for a WebSocket, garbage frames, a refused
//! connection, bad flags. Each gives a clear message naming the URL, exit
//! code 1 (2 for a usage error) and the partial result, never a panic.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::fields_server::{FieldsServer, Style};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn loadgen(args: &[&str], out: &Path) -> Output {
    support::run_binary(&["--connections", "2", "--duration", "1s"], args, out, &[]).await
}

/// Exit 1, no panic, result.json written and incomplete, its problems
/// naming every needle.
fn failed_with(out: &Output, dir: &Path, needles: &[&str]) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["complete"], false);
    let problems = result["problems"].to_string();
    for n in needles {
        assert!(problems.contains(n), "problems mention {n:?}: {problems}");
    }
    result
}

#[tokio::test]
async fn a_page_is_not_an_event_stream() {
    let server = FieldsServer::start(Style::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/html");
    let out = loadgen(&["--sse-url", &url], dir.path()).await;
    failed_with(
        &out,
        dir.path(),
        &[
            &url,
            "text/event-stream",
            "text/html",
            "not an event stream",
        ],
    );
}

#[tokio::test]
async fn a_websocket_url_without_101_says_so() {
    let server = FieldsServer::start(Style::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("ws://{}/html", server.addr);
    let out = loadgen(&["--ws-url", &url], dir.path()).await;
    failed_with(
        &out,
        dir.path(),
        &[&url, "instead of 101 Switching Protocols"],
    );
}

#[tokio::test]
async fn garbage_frames_are_errors_and_what_came_before_is_kept() {
    // A real handshake, a few good messages, then a frame with a reserved opcode.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let key = req
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("sec-websocket-key")
                            .then(|| v.trim().to_string())
                    })
                    .unwrap_or_default();
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let _ = sock
                    .write_all(format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n").as_bytes())
                    .await;
                for id in 1..=5u8 {
                    let text = format!("{{\"n\":{id}}}");
                    let mut frame = vec![0x81, text.len() as u8];
                    frame.extend_from_slice(text.as_bytes());
                    let _ = sock.write_all(&frame).await;
                }
                let _ = sock.write_all(&[0x8F, 0x02, 0xde, 0xad]).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("ws://{addr}/feed");
    let out = loadgen(&["--ws-url", &url, "--id-field", "/n"], dir.path()).await;
    let result = failed_with(&out, dir.path(), &["ws-h1", &url, "malformed stream"]);
    let events = result["scenarios"][0]["wires"][0]["recorder"]["counters"]["events"]
        .as_u64()
        .unwrap();
    assert!(
        events >= 5,
        "the good messages before the garbage are counted: {result}"
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/events");
    let out = loadgen(&["--sse-url", &url], dir.path()).await;
    failed_with(&out, dir.path(), &[&url, "connection failed"]);
}

#[test]
fn bad_flags_are_usage_errors_naming_the_flag() {
    for (args, needle) in [
        (
            vec!["--sse-url", "http://127.0.0.1:1/e", "--stamp-field", "ts"],
            "/ts",
        ),
        (
            vec!["--sse-url", "http://127.0.0.1:1/e", "--h2"],
            "https://",
        ),
        (vec!["--ws-url", "wss://localhost:1/ws"], "--insecure"),
        (
            vec!["--sse-url", "http://127.0.0.1:1/e", "--header", "nocolon"],
            "Name: value",
        ),
        (vec!["--stamp-field", "/ts"], "--sse-url"),
        (
            vec![
                "--sse-url",
                "http://127.0.0.1:1/e",
                "--stamp-unit",
                "minutes",
            ],
            "rfc3339",
        ),
        (
            vec![
                "--sse-url",
                "http://127.0.0.1:1/e",
                "--target",
                "http://127.0.0.1:1",
            ],
            "--target",
        ),
        (vec!["--stacks", "nginx"], "nginx"),
        (
            vec!["--stacks", "bare", "--target", "http://127.0.0.1:1"],
            "--target",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .arg("run")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
