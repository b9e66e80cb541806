//! Chat answers and echo round trips, over every wire, with exact counts.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rstest::rstest;
use serde_json::Value;
use server::RunningServer;
use support::{start, Wire};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// `POST path` with a JSON body over the wire's HTTP version; the status and
/// the whole body as text.
async fn post_json(server: &RunningServer, wire: Wire, path: &str, body: &str) -> (u16, String) {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .header("host", server.http_addr.to_string());
    let body = Full::new(Bytes::from(body.to_string()));
    let res = match wire {
        Wire::SseH1 | Wire::WsH1 => {
            let tcp = TcpStream::connect(server.http_addr).await.unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(req.body(body).unwrap()).await.unwrap()
        }
        Wire::SseH2c => {
            let tcp = TcpStream::connect(server.http_addr).await.unwrap();
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let req = req.uri(format!("http://{}{path}", server.http_addr));
            send.send_request(req.body(body).unwrap()).await.unwrap()
        }
        Wire::SseH2 => {
            let addr = server.https_addr.unwrap();
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = tls_connector(server)
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .unwrap();
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let req = req.uri(format!("https://localhost:{}{path}", addr.port()));
            send.send_request(req.body(body).unwrap()).await.unwrap()
        }
    };
    let status = res.status().as_u16();
    let bytes = tokio::time::timeout(support::STEP, res.into_body().collect())
        .await
        .expect("the body ends within the step")
        .unwrap()
        .to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn tls_connector(server: &RunningServer) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    server::tls::install_crypto_provider();
    let pem = std::fs::read(server.cert_path().unwrap()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// `(event, data)` of every block of an event stream.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty() && !b.starts_with(':'))
        .map(|block| {
            let mut event = String::new();
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.into();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).unwrap();
                }
            }
            (event, data)
        })
        .collect()
}

#[rstest]
#[case::sse_h1(Wire::SseH1)]
#[case::sse_h2(Wire::SseH2)]
#[case::sse_h2c(Wire::SseH2c)]
#[tokio::test]
async fn sse_chat_streams_m_tokens_then_done_and_ends(#[case] wire: Wire) {
    let server = start(|_| {});
    let (status, text) = post_json(
        &server,
        wire,
        "/chat",
        r#"{"prompt":"why?","tokens":5,"rate":500}"#,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let got = events(&text);
    assert_eq!(got.len(), 6, "{text}");
    for (i, (event, data)) in got[..5].iter().enumerate() {
        assert_eq!(event, "token");
        assert_eq!(data["i"], i as u64);
    }
    assert_eq!(got[5].0, "done");
    assert_eq!(got[5].1["tokens"], 5);
    let (status, _) = post_json(&server, wire, "/chat", r#"{"tokens":1000000}"#).await;
    assert_eq!(status, 400);
    assert_eq!(support::stats(&server).await["chat_answers"], 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ws_chat_answers_each_prompt_on_one_socket() {
    let server = start(|_| {});
    let mut ws = support::ws_connect(&server, "/chat").await;
    for q in 1..=2u64 {
        let prompt = format!(r#"{{"type":"prompt","id":{q},"prompt":"hi","tokens":4,"rate":400}}"#);
        ws.send(Message::text(prompt)).await.unwrap();
        let mut tokens = 0;
        loop {
            let msg = tokio::time::timeout(support::STEP, ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["id"], q);
            match v["type"].as_str().unwrap() {
                "token" => {
                    assert_eq!(v["i"], tokens);
                    tokens += 1;
                }
                "done" => break,
                other => panic!("unexpected {other}: {v}"),
            }
        }
        assert_eq!(tokens, 4);
    }
    // A prompt while one streams is refused, and the first goes on.
    ws.send(Message::text(r#"{"id":7,"tokens":3,"rate":20}"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"id":8}"#)).await.unwrap();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("done 7") {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        seen.push(format!("{} {}", v["type"].as_str().unwrap(), v["id"]));
    }
    assert_eq!(seen, ["token 7", "error 8", "token 7", "token 7", "done 7"]);
    server.shutdown().await.unwrap();
}

#[rstest]
#[case::sse_h1(Wire::SseH1)]
#[case::sse_h2(Wire::SseH2)]
#[case::sse_h2c(Wire::SseH2c)]
#[tokio::test]
async fn sse_echo_replies_arrive_on_the_clients_stream_only(#[case] wire: Wire) {
    let server = start(|_| {});
    let mut mine = support::get(&server, wire, "/sse/echo?client=42", &[]).await;
    let mut other = support::get(&server, wire, "/sse/echo", &[]).await;
    assert_eq!(mine.status, 200);
    let mut text = String::new();
    while !text.contains("\n\n") {
        text.push_str(std::str::from_utf8(&mine.chunk().await.unwrap()).unwrap());
    }
    let hello = events(&text);
    assert_eq!(hello[0].1["client"], 42);
    assert_eq!(hello[0].1["protocol"], wire.protocol());
    let first = other.chunk().await.unwrap();
    let other_id = events(std::str::from_utf8(&first).unwrap())[0].1["client"].clone();
    assert_ne!(other_id, 42);
    for corr in 1..=5 {
        let body = format!(r#"{{"client":42,"corr":{corr},"sent_unix_ns":{corr}}}"#);
        assert_eq!(post_json(&server, wire, "/echo", &body).await.0, 202);
    }
    let mut text = String::new();
    while events(&text).len() < 5 {
        text.push_str(std::str::from_utf8(&mine.chunk().await.unwrap()).unwrap());
    }
    let got = events(&text);
    let corrs: Vec<u64> = got.iter().map(|e| e.1["corr"].as_u64().unwrap()).collect();
    assert_eq!(corrs, [1, 2, 3, 4, 5]);
    assert!(got.iter().all(|e| e.0 == "echo"));
    // Nothing for the other client; unknown clients and bad bodies refused.
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(200), other.chunk()).await;
    assert!(nothing.is_err(), "the other client got {nothing:?}");
    let unknown = r#"{"client":1,"corr":1,"sent_unix_ns":1}"#;
    assert_eq!(post_json(&server, wire, "/echo", unknown).await.0, 404);
    assert_eq!(post_json(&server, wire, "/echo", "nope").await.0, 400);
    let s = support::stats(&server).await;
    assert_eq!(
        (s["echo_replies"].as_u64(), s["echo_rejected"].as_u64()),
        (Some(5), Some(1))
    );
    server.shutdown().await.unwrap();
}
