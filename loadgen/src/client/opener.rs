//! The one opener: opens feed stream number `index` on an endpoint,
//! resuming after an id, over the transport chosen when it was made.
//!
//! Each transport is a constructor and a variant: SSE over HTTP/1.1 (a
//! connection per stream), SSE over an HTTP/2 pool (TLS or h2c, as the
//! endpoint says), WebSocket over HTTP/1.1 (`ws://` or `wss://`). WebSocket
//! over HTTP/2 (RFC 8441 extended CONNECT on the pool's connections) would
//! be one more. How events become messages is the decoder's business
//! ([`MessageDecoder`], the feed's JSON unless told otherwise).

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
    SseH2(Box<H2Pool>),
    /// `resume_query`: how a WebSocket resumes (none: it reopens live).
    Ws {
        resume_query: Option<String>,
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
        let pool = Box::new(H2Pool::new(endpoint.clone(), dialer.clone(), pool_size));
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

    /// Decodes events with `decoder` instead of the feed's JSON.
    pub fn with_decoder(mut self, decoder: Arc<dyn MessageDecoder>) -> Opener {
        self.decoder = decoder;
        self
    }

    /// The opener of the feed server's `/sse` or `/ws` for a wire.
    pub fn for_wire(
        wire: Wire,
        target: &Target,
        dialer: Dialer,
        h2_pool_size: usize,
    ) -> Result<Opener, String> {
        Ok(match wire {
            Wire::SseH1 => Opener::sse_h1(target.plain("/sse"), dialer),
            Wire::SseH2c => Opener::sse_h2(target.plain("/sse"), dialer, h2_pool_size),
            Wire::SseH2 => {
                let endpoint = target.https_h2("/sse").ok_or(
                    "sse-h2 needs the TLS listener: give --tls-target https://host:port (the embedded server has one unless --no-tls)",
                )?;
                Opener::sse_h2(endpoint, dialer, h2_pool_size)
            }
            Wire::WsH1 => Opener::ws(target.ws("/ws"), dialer),
            Wire::WsH2 | Wire::WsH2c => {
                return Err(format!(
                "{wire}: WebSocket over HTTP/2 (RFC 8441) is not supported by this load generator"
            ))
            }
        })
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

    /// The protocol the handshake settled (ALPN over TLS is checked by the
    /// dialer), for servers that do not say it themselves.
    pub fn protocol(&self) -> &'static str {
        match &self.transport {
            Transport::SseH2(_) if self.endpoint.tls().is_some() => "h2",
            Transport::SseH2(_) => "h2c",
            Transport::SseH1 | Transport::Ws { .. } => "http/1.1",
        }
    }

    /// The HTTP/2 pool, for an HTTP/2 opener.
    pub fn h2_pool(&self) -> Option<&H2Pool> {
        match &self.transport {
            Transport::SseH2(pool) => Some(pool),
            _ => None,
        }
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
                SseStream::from_response(res, None, self.url().clone(), decode)
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
        }
    }
}
