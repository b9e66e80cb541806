//! Bad peers and failures, through the real binary: a clear message naming
//! the wire and the URL, exit code 1, the partial result still written,
//! never a panic.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const STATS: &str = r#"{"connections_open_total":0,"events_sent":0,"process":{"rss_bytes":1,"cpu_user_us":0,"cpu_system_us":0},"feed":{"rate_hz":1.0,"last_id":1,"payload_bytes":0}}"#;

/// What a misbehaving peer answers to `/sse` (after a valid `/stats`).
#[derive(Clone, Copy)]
enum Bad {
    NotFound,
    Html,
    GarbageEvents,
    WsGarbageFrame,
}

/// A real TCP server that answers /stats properly and /sse or /ws badly.
async fn bad_peer(kind: Bad) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply = |status: &str, ctype: &str, body: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                if req.starts_with("GET /stats") {
                    let _ = sock
                        .write_all(reply("200 OK", "application/json", STATS).as_bytes())
                        .await;
                    return;
                }
                match kind {
                    Bad::NotFound => {
                        let _ = sock
                            .write_all(
                                reply("404 Not Found", "text/plain", "no such thing").as_bytes(),
                            )
                            .await;
                    }
                    Bad::Html => {
                        let _ = sock
                            .write_all(reply("200 OK", "text/html", "<html>hi</html>").as_bytes())
                            .await;
                    }
                    Bad::GarbageEvents => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {not json\n\n\xff\xfe garbage\n\n")
                            .await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Bad::WsGarbageFrame => {
                        // A real handshake, then a frame with a reserved opcode.
                        let key = req
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("Sec-WebSocket-Key: ")
                                    .or_else(|| l.strip_prefix("sec-websocket-key: "))
                            })
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                            key.as_bytes(),
                        );
                        let _ = sock
                            .write_all(format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n").as_bytes())
                            .await;
                        let _ = sock.write_all(&[0x8F, 0x02, 0xde, 0xad]).await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                }
            });
        }
    });
    addr
}

/// Runs the binary with a short, small scenario.
async fn loadgen(args: &[&str], out: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args([
        "run",
        "--connections",
        "3",
        "--duration",
        "1s",
        "--quiet",
        "--out",
    ])
    .arg(out)
    .args(args);
    tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("loadgen finishes")
        .unwrap()
}

fn check_failed(out: &Output, dir: &Path, needles: &[&str]) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1\nstdout: {stdout}\nstderr: {stderr}"
    );
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("result.json")).expect("partial result written"),
    )
    .unwrap();
    assert_eq!(result["complete"], false);
    let problems = result["problems"].to_string();
    for n in needles {
        assert!(problems.contains(n), "problems mention {n:?}: {problems}");
    }
    result
}

#[tokio::test]
async fn refused_connection() {
    // A port with nothing behind it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let out = loadgen(&["--target", &url, "--wire", "sse-h1"], dir.path()).await;
    check_failed(&out, dir.path(), &[&url, "connection failed"]);
}

#[tokio::test]
async fn not_found() {
    let addr = bad_peer(Bad::NotFound).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}");
    let out = loadgen(&["--target", &url, "--wire", "sse-h1"], dir.path()).await;
    check_failed(&out, dir.path(), &["sse-h1", &format!("{url}/sse"), "404"]);
}

#[tokio::test]
async fn not_an_event_stream() {
    let addr = bad_peer(Bad::Html).await;
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen(
        &[
            "--target",
            &format!("http://{addr}"),
            "--wire",
            "sse-h1,sse-h2c",
        ],
        dir.path(),
    )
    .await;
    check_failed(
        &out,
        dir.path(),
        &["sse-h1", "text/event-stream", "text/html"],
    );
}

#[tokio::test]
async fn garbage_events() {
    let addr = bad_peer(Bad::GarbageEvents).await;
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen(
        &["--target", &format!("http://{addr}"), "--wire", "sse-h1"],
        dir.path(),
    )
    .await;
    check_failed(
        &out,
        dir.path(),
        &["sse-h1", "malformed stream", "bad JSON"],
    );
}

#[tokio::test]
async fn garbage_websocket_frames() {
    let addr = bad_peer(Bad::WsGarbageFrame).await;
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen(
        &["--target", &format!("http://{addr}"), "--wire", "ws-h1"],
        dir.path(),
    )
    .await;
    check_failed(&out, dir.path(), &["ws-h1", "malformed stream"]);
}

#[tokio::test]
async fn tls_failure_with_the_wrong_certificate() {
    let real = {
        let mut c = server::ServerConfig::ephemeral();
        c.rate = 10.0;
        server::run(c).unwrap()
    };
    // A certificate that is not the server's.
    let other =
        server::tls::server_config(None, &tempfile::tempdir().unwrap().keep().join("other.pem"))
            .unwrap()
            .1
            .cert_path;
    let dir = tempfile::tempdir().unwrap();
    let https = real.https_url().unwrap();
    let out = loadgen(
        &[
            "--target",
            &real.http_url(),
            "--tls-target",
            &https,
            "--ca-cert",
            other.to_str().unwrap(),
            "--wire",
            "sse-h2",
        ],
        dir.path(),
    )
    .await;
    check_failed(
        &out,
        dir.path(),
        &["sse-h2", "TLS handshake failed", "--ca-cert"],
    );
    real.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_that_dies_mid_run() {
    let real = {
        let mut c = server::ServerConfig::ephemeral();
        c.rate = 20.0;
        server::run(c).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let url = real.http_url();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args([
        "run",
        "--connections",
        "5",
        "--duration",
        "4s",
        "--quiet",
        "--wire",
        "ws-h1",
        "--target",
        &url,
        "--out",
    ])
    .arg(dir.path());
    let child = cmd.output();
    let killer = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        real.shutdown().await.unwrap();
    };
    let (out, ()) = tokio::join!(child, killer);
    let out = out.unwrap();
    let result = check_failed(&out, dir.path(), &[&url]);
    // What was measured before the server died is kept.
    let events = result["scenarios"][0]["wires"][0]["recorder"]["counters"]["events"]
        .as_u64()
        .unwrap();
    assert!(events > 0, "{result}");
}
