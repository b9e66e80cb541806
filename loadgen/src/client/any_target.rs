//! [`AnyTarget`]: any SSE or WebSocket server, from its URLs
//! (`--sse-url`, `--ws-url`): each resolved once into an endpoint with the
//! extra headers and TLS settings, and an opener per wire reading events
//! with a [`FieldDecoder`].

use std::net::SocketAddr;
use std::sync::Arc;

use super::dial::{Dialer, SourceAddresses};
use super::endpoint::Endpoint;
use super::field_decoder::FieldDecoder;
use super::opener::Opener;
use super::target::{locate, sources_toward, TargetError};
use super::tls::{TlsSettings, Trust};
use crate::result::{parse_header, AnyServer, SseProtocol};
use crate::wire::Wire;

/// Any server, ready to open streams to.
#[derive(Debug, Clone)]
pub struct AnyTarget {
    sse: Option<(Endpoint, SseProtocol)>,
    ws: Option<Endpoint>,
    sse_decoder: Arc<FieldDecoder>,
    ws_decoder: Arc<FieldDecoder>,
    ws_resume_query: Option<String>,
}

impl AnyTarget {
    /// Resolves the URLs (loopback only unless `allow_remote`), with the
    /// headers and TLS trust of `any`.
    pub async fn resolve(any: &AnyServer) -> Result<AnyTarget, TargetError> {
        let bad = |url: &str, reason: String| TargetError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let first = any.shown_url();
        any.validate().map_err(|e| bad(first, e))?;
        let sse_decoder = FieldDecoder::new(any, true).map_err(|e| bad(first, e))?;
        let ws_decoder = FieldDecoder::new(any, false).map_err(|e| bad(first, e))?;
        let trust = match (&any.ca_cert, any.insecure) {
            (Some(path), _) => Trust::CaFile(path.clone()),
            (None, _) => Trust::Insecure,
        };
        let headers = any
            .headers
            .iter()
            .map(|h| parse_header(h).map_err(|e| bad(first, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let endpoint = |url: &str, addr: SocketAddr, tls: Option<TlsSettings>| {
            let e = Endpoint::new(url, addr, tls).map_err(|e| bad(url, e.to_string()))?;
            Ok::<_, TargetError>(
                headers
                    .iter()
                    .fold(e, |e, (n, v)| e.with_header(n.clone(), v.clone())),
            )
        };
        let sse = match &any.sse_url {
            Some(url) => {
                let (addr, host, secure) = resolve(url, any.allow_remote).await?;
                let tls = match (secure, any.sse_protocol) {
                    (false, _) => None,
                    (true, SseProtocol::H2) => Some(TlsSettings::h2(&trust, &host)?),
                    (true, _) => Some(TlsSettings::http1(&trust, &host)?),
                };
                Some((endpoint(url, addr, tls)?, any.sse_protocol))
            }
            None => None,
        };
        let ws = match &any.ws_url {
            Some(url) => {
                let (addr, host, secure) = resolve(url, any.allow_remote).await?;
                let tls = if secure {
                    Some(TlsSettings::http1(&trust, &host)?)
                } else {
                    None
                };
                Some(endpoint(url, addr, tls)?)
            }
            None => None,
        };
        Ok(AnyTarget {
            sse,
            ws,
            sse_decoder: Arc::new(sse_decoder),
            ws_decoder: Arc::new(ws_decoder),
            ws_resume_query: any.ws_resume_query.clone(),
        })
    }

    /// The opener of a wire these URLs make.
    pub fn opener(
        &self,
        wire: Wire,
        dialer: Dialer,
        h2_pool_size: usize,
    ) -> Result<Opener, String> {
        let opener = match (wire, &self.sse, &self.ws) {
            (Wire::SseH1, Some((e, SseProtocol::H1)), _) => Opener::sse_h1(e.clone(), dialer),
            (Wire::SseH2, Some((e, SseProtocol::H2)), _)
            | (Wire::SseH2c, Some((e, SseProtocol::H2c)), _) => {
                Opener::sse_h2(e.clone(), dialer, h2_pool_size)
            }
            (Wire::WsH1, _, Some(e)) => {
                Opener::ws_resuming(e.clone(), dialer, self.ws_resume_query.clone())
            }
            _ => return Err(format!("{wire}: no URL given for it (--sse-url, --ws-url)")),
        };
        let decoder = if wire.is_ws() {
            &self.ws_decoder
        } else {
            &self.sse_decoder
        };
        Ok(opener.with_decoder(decoder.clone()))
    }

    /// Source addresses for `connections` streams of `wire`.
    pub fn sources(&self, wire: Wire, connections: usize) -> SourceAddresses {
        let addr = if wire.is_ws() {
            self.ws.as_ref().map(Endpoint::addr)
        } else {
            self.sse.as_ref().map(|(e, _)| e.addr())
        };
        addr.map_or_else(SourceAddresses::default, |a| sources_toward(a, connections))
    }

    /// The configured stamp (`/ts (ms)`), for messages.
    pub fn stamp_shown(&self) -> Option<String> {
        self.sse_decoder.stamp_shown()
    }
}

/// A URL's address, host and whether it is TLS.
async fn resolve(raw: &str, allow_remote: bool) -> Result<(SocketAddr, String, bool), TargetError> {
    let url = url::Url::parse(raw).map_err(|e| TargetError::BadUrl {
        url: raw.to_string(),
        reason: e.to_string(),
    })?;
    let secure = matches!(url.scheme(), "https" | "wss");
    let (addr, host) = locate(&url, raw, allow_remote).await?;
    Ok((addr, host, secure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_resolve_to_openers_of_their_wires() {
        let any = AnyServer {
            sse_url: Some("http://127.0.0.1:9/events?room=a".into()),
            sse_protocol: SseProtocol::H2c,
            ws_url: Some("ws://localhost:9/live".into()),
            headers: vec!["Authorization: Bearer x".into()],
            stall_ms: 1000,
            ..AnyServer::default()
        };
        let t = AnyTarget::resolve(&any).await.unwrap();
        let sse = t.opener(Wire::SseH2c, Dialer::default(), 2).unwrap();
        assert_eq!(&**sse.url(), "http://127.0.0.1:9/events?room=a");
        assert_eq!(sse.protocol(), "h2c");
        let ws = t.opener(Wire::WsH1, Dialer::default(), 1).unwrap();
        assert!(!ws.resumes(), "no resume query given");
        assert!(t.opener(Wire::SseH1, Dialer::default(), 1).is_err());
        let remote = AnyServer {
            ws_url: Some("ws://10.1.2.3:80/".into()),
            stall_ms: 1000,
            ..AnyServer::default()
        };
        let e = AnyTarget::resolve(&remote).await.unwrap_err();
        assert!(e.to_string().contains("--allow-remote"), "{e}");
    }
}
