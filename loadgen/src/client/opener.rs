//! The one opener: opens feed stream number `index` on an endpoint,
//! resuming after an id, over the transport chosen when it was made.
//!
//! Each transport is a constructor and a variant: SSE over HTTP/1.1 (a
//! connection per stream), SSE over an HTTP/2 pool (TLS or h2c, as the
//! endpoint says), WebSocket over HTTP/1.1 (`ws://` or `wss://`), WebSocket
//! over HTTP/2 (RFC 8441 extended CONNECT on the pool's connections, shared
//! with any SSE streams of the pool). How events become messages is the
//! decoder's business ([`MessageDecoder`], the feed's JSON unless told
//! otherwise).

use std::sync::Arc;

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::ClientError;
use super::feed::FeedStream;
use super::h2::H2Pool;
use super::message::{FeedJson, MessageDecoder};
use super::request::sse_request;
use super::sse::{open_h1, FeedEvents, SseStream};
use super::target::Target;
use super::ws;
use crate::wire::Wire;

/// The query parameter a WebSocket resumes with (it has no `Last-Event-ID`).
pub const WS_RESUME_QUERY: &str = "lastEventId";

enum Transport {
    SseH1,
    SseH2(Arc<H2Pool>),
    /// `resume_query`: how a WebSocket resumes (none: it reopens live).
    Ws {
        resume_query: Option<String>,
    },
    WsH2 {
        pool: Arc<H2Pool>,
        resume_query: String,
    },
}

/// Opens streams of one kind.
pub struct Opener {
    transport: Transport,
    endpoint: Endpoint,
    dialer: Dialer,
    decoder: Arc<dyn MessageDecoder>,
}

impl Opener {
    fn new(transport: Transport, endpoint: Endpoint, dialer: Dialer) -> Opener {
        Opener {
            transport,
            endpoint,
            dialer,
            decoder: Arc::new(FeedJson),
        }
    }

    /// SSE over HTTP/1.1 (or HTTP/1.1 over TLS for an `https://` endpoint
    /// offering `http/1.1`): one connection per stream.
    pub fn sse_h1(endpoint: Endpoint, dialer: Dialer) -> Opener {
        Opener::new(Transport::SseH1, endpoint, dialer)
    }

    /// SSE over HTTP/2: TLS with ALPN h2 for an `https://` endpoint, h2c
    /// (prior knowledge) for `http://`; streams spread over `pool_size`
    /// connections.
    pub fn sse_h2(endpoint: Endpoint, dialer: Dialer, pool_size: usize) -> Opener {
        let pool = Arc::new(H2Pool::new(endpoint.clone(), dialer.clone(), pool_size));
        Opener::new(Transport::SseH2(pool), endpoint, dialer)
    }

    /// WebSocket over HTTP/1.1 (`ws://`, or `wss://` offering `http/1.1` alone).
    pub fn ws(endpoint: Endpoint, dialer: Dialer) -> Opener {
        Opener::ws_resuming(endpoint, dialer, Some(WS_RESUME_QUERY.to_string()))
    }

    /// A WebSocket that resumes with `?<resume_query>=<id>`, or reopens
    /// live without one (a server that says nothing of resuming).
    pub fn ws_resuming(endpoint: Endpoint, dialer: Dialer, resume_query: Option<String>) -> Opener {
        Opener::new(Transport::Ws { resume_query }, endpoint, dialer)
    }

    /// WebSocket over HTTP/2 (RFC 8441) to an `https://` endpoint offering
    /// ALPN h2, streams spread over `pool_size` connections.
    pub fn ws_h2(endpoint: Endpoint, dialer: Dialer, pool_size: usize) -> Opener {
        let pool = Arc::new(H2Pool::new(endpoint.clone(), dialer.clone(), pool_size));
        let resume_query = WS_RESUME_QUERY.to_string();
        Opener::new(Transport::WsH2 { pool, resume_query }, endpoint, dialer)
    }

    /// WebSocket over HTTP/2 at `path` on this opener's own HTTP/2
    /// connections (an SSE opener's pool): what a browser does for a
    /// `wss://` WebSocket to an origin whose h2 connection announced
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL. `None` for an HTTP/1.1 opener.
    pub fn ws_h2_sharing(&self, path: &str) -> Option<Opener> {
        let pool = self.h2_pool_shared()?.clone();
        let endpoint = self.endpoint.at(path);
        let resume_query = WS_RESUME_QUERY.to_string();
        Some(Opener::new(
            Transport::WsH2 { pool, resume_query },
            endpoint,
            self.dialer.clone(),
        ))
    }

    fn h2_pool_shared(&self) -> Option<&Arc<H2Pool>> {
        match &self.transport {
            Transport::SseH2(pool) | Transport::WsH2 { pool, .. } => Some(pool),
            _ => None,
        }
    }

    /// Decodes events with `decoder` instead of the feed's JSON.
    pub fn with_decoder(mut self, decoder: Arc<dyn MessageDecoder>) -> Opener {
        self.decoder = decoder;
        self
    }

    /// The opener of the feed server's `/sse` or `/ws` for a wire. Behind
    /// an edge (TLS only), the HTTP/1.1 wires go over TLS offering
    /// `http/1.1` alone, and h2c has no way through.
    pub fn for_wire(
        wire: Wire,
        target: &Target,
        dialer: Dialer,
        h2_pool_size: usize,
    ) -> Result<Opener, String> {
        const NEEDS_TLS: &str = "needs the TLS listener: give --tls-target https://host:port (the embedded server has one unless --no-tls)";
        let tls_h1 = |scheme: &str, path: &str| {
            target
                .tls_http1(scheme, path)
                .ok_or_else(|| format!("{wire} {NEEDS_TLS}"))
        };
        let https_h2 = |path: &str| {
            target
                .https_h2(path)
                .ok_or_else(|| format!("{wire} {NEEDS_TLS}"))
        };
        Ok(match wire {
            Wire::SseH1 if target.through_edge => Opener::sse_h1(tls_h1("https", "/sse")?, dialer),
            Wire::WsH1 if target.through_edge => Opener::ws(tls_h1("wss", "/ws")?, dialer),
            Wire::SseH2c | Wire::WsH2c if target.through_edge => {
                return Err(format!(
                    "{wire}: the edge speaks TLS only; cleartext HTTP/2 (h2c) cannot go through it"
                ))
            }
            Wire::SseH1 => Opener::sse_h1(target.plain("/sse"), dialer),
            Wire::SseH2c => Opener::sse_h2(target.plain("/sse"), dialer, h2_pool_size),
            Wire::SseH2 => Opener::sse_h2(https_h2("/sse")?, dialer, h2_pool_size),
            Wire::WsH1 => Opener::ws(target.ws("/ws"), dialer),
            Wire::WsH2 => Opener::ws_h2(https_h2("/ws")?, dialer, h2_pool_size),
            Wire::WsH2c => {
                return Err(format!(
                "{wire}: WebSocket over cleartext HTTP/2 is not supported by this load generator (use ws-h2, over TLS)"
            ))
            }
        })
    }

    /// What this opener's own connections negotiate: `http/1.1` (plain, or
    /// TLS with ALPN `http/1.1`, which the dialer checks), `h2` (TLS, ALPN
    /// h2) or `h2c` (prior knowledge). Behind an edge the server's hello
    /// names only the upstream hop; this is the client's side, and for a
    /// server that sends no hello, the only protocol there is to report.
    pub fn protocol(&self) -> &'static str {
        match &self.transport {
            Transport::SseH1 | Transport::Ws { .. } => "http/1.1",
            Transport::SseH2(_) | Transport::WsH2 { .. } if self.endpoint.tls().is_some() => "h2",
            Transport::SseH2(_) | Transport::WsH2 { .. } => "h2c",
        }
    }

    /// The streams' URL, for messages.
    pub fn url(&self) -> &Arc<str> {
        self.endpoint.shown()
    }

    /// Whether a reopened stream resumes after the last id (SSE always
    /// sends `Last-Event-ID`; a WebSocket only with a resume query).
    pub fn resumes(&self) -> bool {
        !matches!(&self.transport, Transport::Ws { resume_query: None })
    }

    /// The HTTP/2 pool, for an HTTP/2 opener.
    pub fn h2_pool(&self) -> Option<&H2Pool> {
        self.h2_pool_shared().map(|p| p.as_ref())
    }

    /// The serial number of the HTTP/2 connection carrying stream `index`
    /// now (HTTP/2 openers only; every other stream has a connection of
    /// its own).
    pub fn h2_connection_of(&self, index: usize) -> Option<u64> {
        self.h2_pool().map(|pool| pool.connection_of(index))
    }

    /// What places stream `index` on a thread: its HTTP/2 pool slot (all
    /// streams of one pool connection then share the thread its I/O task
    /// runs on), or for every other wire the index itself.
    pub fn placement_key(&self, index: usize) -> usize {
        self.h2_pool().map_or(index, |pool| pool.slot_of(index))
    }

    /// HTTP/2 connections made so far (HTTP/2 openers only).
    pub fn h2_connections(&self) -> Option<u64> {
        self.h2_pool().map(H2Pool::connections_made)
    }

    /// Opens stream number `index`, resuming after `last_id` when given.
    pub async fn open(
        &self,
        index: usize,
        last_id: Option<u64>,
    ) -> Result<FeedStream, ClientError> {
        let decode = FeedEvents(self.decoder.clone());
        match &self.transport {
            Transport::SseH1 => open_h1(&self.dialer, &self.endpoint, index, last_id, decode)
                .await
                .map(FeedStream::Sse),
            Transport::SseH2(pool) => {
                let req = sse_request(&self.endpoint, true, last_id);
                let res = pool.send(index, req).await?;
                SseStream::from_response(res, self.url().clone(), decode)
                    .await
                    .map(FeedStream::Sse)
            }
            Transport::Ws { resume_query } => {
                let url = match (last_id, resume_query) {
                    (Some(id), Some(query)) => self.endpoint.url_with_query(query, &id.to_string()),
                    _ => self.endpoint.url().to_string(),
                };
                let ws = ws::open(&self.dialer, &self.endpoint, index, &url).await?;
                Ok(FeedStream::Ws {
                    ws,
                    decoder: self.decoder.clone(),
                })
            }
            Transport::WsH2 { pool, resume_query } => {
                let url = match last_id {
                    Some(id) => self.endpoint.url_with_query(resume_query, &id.to_string()),
                    None => self.endpoint.url().to_string(),
                };
                let ws = ws::open_h2(pool, index, &url).await?;
                Ok(FeedStream::Ws {
                    ws,
                    decoder: self.decoder.clone(),
                })
            }
        }
    }
}
