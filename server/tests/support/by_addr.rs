//! The helpers that reach a server by its address (a server in a child
//! process, several of them sharing a feed) and the Redis those share.

use bytes::{Bytes, BytesMut};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::io::Write as _;
use tokio::net::TcpStream;

use super::{wrap, ChildServer, Feed, Response, Wire, Ws};

/// A request over HTTP/1.1 to `addr`.
pub(super) async fn get_h1(addr: std::net::SocketAddr, req: http::request::Builder) -> Response {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = req
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    wrap(res, conn, None)
}

/// A WebSocket to `/ws` on the plain listener at `addr`.
pub async fn ws_connect_at(addr: std::net::SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{addr}/ws{query}");
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    ws
}

impl Feed {
    /// Opens `/sse` (HTTP/1.1) or `/ws` on the plain listener at `addr`
    /// (a server in a child process), with an optional resume id.
    pub async fn open_at(addr: std::net::SocketAddr, wire: Wire, last_id: Option<&str>) -> Feed {
        match wire {
            Wire::WsH1 => {
                let q = last_id
                    .map(|id| format!("?lastEventId={id}"))
                    .unwrap_or_default();
                Feed::Ws(ws_connect_at(addr, &q).await)
            }
            Wire::SseH1 => {
                let mut req = http::Request::get("/sse");
                if let Some(id) = last_id {
                    req = req.header("Last-Event-ID", id);
                }
                let res = get_h1(addr, req).await;
                assert_eq!(res.status, 200);
                Feed::Sse {
                    res,
                    buf: BytesMut::new(),
                }
            }
            other => panic!("open_at serves the plain listener's HTTP/1.1 wires, not {other:?}"),
        }
    }
}

impl ChildServer {
    /// Kills it outright (SIGKILL): no shutdown, no lease given up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh `redis-server` child, or `None` after a loud SKIPPED line when
/// it is not installed (a failure instead when `WORKBENCH_REQUIRE_REDIS=1`).
pub fn redis_or_skip(test: &str) -> Option<server::redis_process::RedisProcess> {
    use server::redis_process::{RedisProcess, RedisProcessError};
    match RedisProcess::start() {
        Ok(r) => Some(r),
        Err(RedisProcessError::NotInstalled)
            if std::env::var("WORKBENCH_REQUIRE_REDIS").as_deref() != Ok("1") =>
        {
            // Straight to stderr: the harness captures `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test}: redis-server is not installed (install: apt-get install -y redis-server)"
            );
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}
