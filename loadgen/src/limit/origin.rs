//! One origin as a browser reaches it: HTTP/1.1 (a new connection per pool
//! slot) or HTTP/2 (one TLS connection, made once, carrying every stream and
//! request of the origin: an HTTP/2 pool of one), plus the SETTINGS probe
//! that reads what the server announces (SETTINGS_MAX_CONCURRENT_STREAMS,
//! SETTINGS_ENABLE_CONNECT_PROTOCOL).
//!
//! Host names are pool keys, not addresses: every name resolves to the
//! server's listener, as several DNS names of one server would (`localhost`
//! and `127.0.0.1` are two pools in Chromium; the server listens on
//! 127.0.0.1 only, so `127.0.0.2` would not connect here).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use edge::{H2Settings, Preface};
use http_body_util::BodyExt;

use crate::client::{
    call_once, request, within, Body, ClientError, Dialer, Endpoint, Opener, SocketHook,
    SourceAddresses, TlsSettings,
};

/// How long a plain GET may take (the caller bounds the wait for a slot).
const GET_TIMEOUT: Duration = Duration::from_secs(60);
/// How long reading the server's SETTINGS may take.
const SETTINGS_TIMEOUT: Duration = Duration::from_secs(5);

/// Counts the sockets it makes: the TCP connections an HTTP/1.1 origin used.
#[derive(Debug, Default)]
struct CountedSockets(Arc<AtomicUsize>);

impl SocketHook for CountedSockets {
    fn socket(&self, peer: SocketAddr, index: usize) -> std::io::Result<tokio::net::TcpSocket> {
        self.0.fetch_add(1, Ordering::Relaxed);
        SourceAddresses::default().socket(peer, index)
    }
}

/// One (scheme, host, port) of one browser profile.
pub struct OriginClient {
    /// Opens the origin's `/sse`.
    opener: Opener,
    /// The origin itself (`http://localhost:8080/`).
    origin: Endpoint,
    dialer: Dialer,
    /// Sockets made (HTTP/2 counts its pool's connections instead).
    sockets: Arc<AtomicUsize>,
}

impl OriginClient {
    /// Plain HTTP/1.1 to `host` (a name for the pool; connects to `addr`).
    pub fn h1(addr: SocketAddr, host: &str) -> OriginClient {
        let origin = endpoint(&format!("http://{host}:{}/", addr.port()), addr, None);
        OriginClient::new(origin, |origin, dialer| {
            Opener::sse_h1(origin.at("/sse"), dialer)
        })
    }

    /// HTTP/2 over TLS to `host`, which the certificate must name.
    pub fn h2(addr: SocketAddr, host: &str, tls: &TlsSettings) -> OriginClient {
        let url = format!("https://{host}:{}/", addr.port());
        let origin = endpoint(&url, addr, Some(tls.for_name(host)));
        OriginClient::new(origin, |origin, dialer| {
            Opener::sse_h2(origin.at("/sse"), dialer, 1)
        })
    }

    fn new(origin: Endpoint, opener: impl FnOnce(&Endpoint, Dialer) -> Opener) -> OriginClient {
        let sockets = Arc::new(AtomicUsize::new(0));
        let dialer = Dialer::new(CountedSockets(sockets.clone()));
        OriginClient {
            opener: opener(&origin, dialer.clone()),
            origin,
            dialer,
            sockets,
        }
    }

    /// TCP connections made so far (HTTP/2: the origin's one, remade if it died).
    pub fn connections(&self) -> usize {
        match self.opener.h2_connections() {
            Some(n) => n as usize,
            None => self.sockets.load(Ordering::Relaxed),
        }
    }

    /// The opener of the origin's `/sse` (the caller holds the pool slot).
    pub fn opener(&self) -> &Opener {
        &self.opener
    }

    /// A plain `GET path`, body read to the end (the caller holds the slot).
    pub async fn get(&self, path: &str) -> Result<u16, ClientError> {
        let at = self.origin.at(path);
        match self.opener.h2_pool() {
            None => {
                let (status, _) = call_once(
                    &self.dialer,
                    &at,
                    http::Method::GET,
                    GET_TIMEOUT,
                    "waiting for a GET",
                )
                .await?;
                Ok(status)
            }
            Some(pool) => {
                let req = request(http::Method::GET, &at, true, Body::default());
                let res = pool.send(0, req).await?;
                let status = res.status().as_u16();
                res.into_body()
                    .collect()
                    .await
                    .map_err(|e| ClientError::http(at.shown(), e))?;
                Ok(status)
            }
        }
    }
}

fn endpoint(url: &str, addr: SocketAddr, tls: Option<TlsSettings>) -> Endpoint {
    Endpoint::new(url, addr, tls).expect("a host name from the model, a port and a path make a URL")
}

/// What the server announces in its HTTP/2 SETTINGS over TLS h2
/// (SETTINGS_MAX_CONCURRENT_STREAMS, `None` when absent as with actix, and
/// SETTINGS_ENABLE_CONNECT_PROTOCOL), read off a connection of its own:
/// hyper keeps the peer's settings to itself.
pub async fn announced_settings(origin: &Endpoint) -> Result<H2Settings, ClientError> {
    let url: Arc<str> = origin.shown().clone();
    let read = async {
        // The dialer checks that the server negotiated h2.
        let stream = Dialer::default().connect(origin, 0).await?;
        match edge::preface_of(stream).await {
            Ok(Preface::Settings(s)) => Ok(s),
            Ok(_) => Err(ClientError::protocol(&url, "no SETTINGS frame first")),
            Err(e) => Err(ClientError::protocol(
                &url,
                format!("reading SETTINGS: {e}"),
            )),
        }
    };
    within(
        SETTINGS_TIMEOUT,
        &url,
        "waiting for the server's HTTP/2 SETTINGS",
        read,
    )
    .await
}
