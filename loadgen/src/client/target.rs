//! Where the feed server is: its plain and TLS listeners, how to trust its
//! certificate, which source addresses to connect from, and the endpoints
//! of its routes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::dial::{Dialer, SocketHook, SourceAddresses};
use super::endpoint::Endpoint;
use super::stats::ServerProbe;
use super::tls::{TlsConfigError, TlsSettings, Trust};

/// Connections one source address can hold to one destination, with margin
/// (the ephemeral port range here is about 28,000 ports).
pub const CONNECTIONS_PER_SOURCE: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{url}` is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("`{url}`: cannot resolve the host: {reason}")]
    Resolve { url: String, reason: String },
    #[error("`{url}` resolves to {addr}, which is not a loopback address: the load generator only loads loopback servers unless you pass --allow-remote")]
    NotLoopback { url: String, addr: SocketAddr },
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

/// The TLS side of a target.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    pub addr: SocketAddr,
    /// The host name the certificate must carry (`localhost` for the generated one).
    pub host: String,
    /// Browser-like: offers h2 and http/1.1, requires h2.
    pub h2: TlsSettings,
    /// HTTP/1.1 alone (WebSocket over TLS).
    pub http1: TlsSettings,
}

/// A server to load.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's plain listener: HTTP/1.1 and h2c streams, and `/stats`
    /// (read directly, also behind an edge).
    pub http_addr: SocketAddr,
    pub http_url: String,
    /// The TLS listener: the server's, or the edge's in front of it.
    pub tls: Option<TlsTarget>,
    pub https_url: Option<String>,
    /// How every socket to it is made, when not by default (e.g. inside a
    /// network namespace, over an emulated link).
    pub socket_hook: Option<Arc<dyn SocketHook>>,
    /// Streams go through a TLS-only edge proxy (nginx, HAProxy): every
    /// wire uses the TLS listener, and the server's hello names only the
    /// proxy's upstream hop (`http/1.1`).
    pub through_edge: bool,
}

impl Target {
    /// The embedded server on loopback: its certificate file is trusted,
    /// for the name `localhost`.
    pub fn embedded(
        http_addr: SocketAddr,
        https_addr: Option<SocketAddr>,
        cert: Option<std::path::PathBuf>,
    ) -> Result<Target, TargetError> {
        Target::embedded_as(http_addr, https_addr, cert, "localhost")
    }

    /// The embedded server, its certificate trusted for `tls_host` (a name
    /// or an address the certificate carries).
    pub fn embedded_as(
        http_addr: SocketAddr,
        https_addr: Option<SocketAddr>,
        cert: Option<std::path::PathBuf>,
        tls_host: &str,
    ) -> Result<Target, TargetError> {
        let tls = match (https_addr, cert) {
            (Some(addr), Some(cert)) => Some(tls_target(addr, tls_host, &Trust::CaFile(cert))?),
            _ => None,
        };
        Ok(Target {
            http_addr,
            http_url: format!("http://{http_addr}"),
            https_url: tls
                .as_ref()
                .map(|t| format!("https://{}:{}", host_in_url(&t.host), t.addr.port())),
            tls,
            socket_hook: None,
            through_edge: false,
        })
    }

    /// The same server reached through an edge proxy listening on
    /// `edge_addr` (TLS as `localhost`, trusting `cert`): streams go
    /// there, `/stats` still to the server's plain listener.
    pub fn via_edge(
        self,
        edge_addr: SocketAddr,
        cert: std::path::PathBuf,
    ) -> Result<Target, TargetError> {
        let tls = tls_target(edge_addr, "localhost", &Trust::CaFile(cert))?;
        Ok(Target {
            https_url: Some(format!("https://localhost:{}", edge_addr.port())),
            tls: Some(tls),
            through_edge: true,
            ..self
        })
    }

    /// Every socket to this target made by `hook` from now on.
    pub fn with_socket_hook(mut self, hook: Arc<dyn SocketHook>) -> Target {
        self.socket_hook = Some(hook);
        self
    }

    /// The dialer for `connections` streams: the target's socket hook, or
    /// plain sockets from as many source addresses as they need.
    pub fn dialer(&self, connections: usize) -> Dialer {
        match &self.socket_hook {
            Some(hook) => Dialer::shared(hook.clone()),
            None => Dialer::new(self.sources(connections)),
        }
    }

    /// The `/stats` probe of this server, through the target's socket hook.
    pub fn probe(&self) -> ServerProbe {
        ServerProbe::with_dialer(self.http_addr, self.dialer(1))
    }

    /// An external server given by URLs.
    pub async fn external(
        http_url: &str,
        https_url: Option<&str>,
        trust: Trust,
        allow_remote: bool,
    ) -> Result<Target, TargetError> {
        let (http_addr, _, http_url) = resolve(http_url, "http", allow_remote).await?;
        let (tls, https_url) = match https_url {
            Some(u) => {
                let (addr, host, url) = resolve(u, "https", allow_remote).await?;
                (Some(tls_target(addr, &host, &trust)?), Some(url))
            }
            None => (None, None),
        };
        Ok(Target {
            http_addr,
            http_url,
            https_url,
            tls,
            socket_hook: None,
            through_edge: false,
        })
    }

    /// Source addresses for `connections` streams: one unless a loopback
    /// target needs more ports than one address has.
    pub fn sources(&self, connections: usize) -> SourceAddresses {
        sources_toward(self.http_addr, connections)
    }

    /// `http://` on the plain listener (HTTP/1.1, or h2c by prior knowledge).
    pub fn plain(&self, path: &str) -> Endpoint {
        Endpoint::new(&format!("{}{path}", self.http_url), self.http_addr, None)
            .expect("a checked http:// URL and an absolute path make a URL")
    }

    /// `ws://` on the plain listener.
    pub fn ws(&self, path: &str) -> Endpoint {
        // `http_url` is normalised: it starts with `http://`.
        let authority = self.http_url.trim_start_matches("http://");
        Endpoint::new(&format!("ws://{authority}{path}"), self.http_addr, None)
            .expect("a checked http:// URL and an absolute path make a URL")
    }

    /// `https://` on the TLS listener, offering h2 like a browser and
    /// requiring it (`None` without a TLS listener).
    pub fn https_h2(&self, path: &str) -> Option<Endpoint> {
        let tls = self.tls.as_ref()?;
        Some(tls_endpoint("https", tls, path, tls.h2.clone()))
    }

    /// `https://` or `wss://` on the TLS listener, offering HTTP/1.1 alone.
    pub fn tls_http1(&self, scheme: &str, path: &str) -> Option<Endpoint> {
        let tls = self.tls.as_ref()?;
        Some(tls_endpoint(scheme, tls, path, tls.http1.clone()))
    }
}

/// Source addresses for `connections` streams to `peer`: one unless a
/// loopback peer needs more ports than one address has.
pub fn sources_toward(peer: SocketAddr, connections: usize) -> SourceAddresses {
    let needed = connections.div_ceil(CONNECTIONS_PER_SOURCE);
    SourceAddresses(match peer.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && needed > 1 => (1..=needed.min(250) as u8)
            .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .collect(),
        _ => Vec::new(),
    })
}

fn tls_endpoint(scheme: &str, tls: &TlsTarget, path: &str, settings: TlsSettings) -> Endpoint {
    let url = format!(
        "{scheme}://{}:{}{path}",
        host_in_url(&tls.host),
        tls.addr.port()
    );
    Endpoint::new(&url, tls.addr, Some(settings))
        .expect("a resolved host, a port and an absolute path make a URL")
}

/// An IPv6 address in a URL goes in brackets.
fn host_in_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn tls_target(addr: SocketAddr, host: &str, trust: &Trust) -> Result<TlsTarget, TargetError> {
    Ok(TlsTarget {
        addr,
        host: host.to_string(),
        h2: TlsSettings::h2(trust, host)?,
        http1: TlsSettings::http1(trust, host)?,
    })
}

/// The address, host name and normalised URL (lower-case scheme, no
/// trailing `/`) of a server's base URL.
async fn resolve(
    raw: &str,
    scheme: &str,
    allow_remote: bool,
) -> Result<(SocketAddr, String, String), TargetError> {
    let bad = |reason: String| TargetError::BadUrl {
        url: raw.to_string(),
        reason,
    };
    let url = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != scheme {
        return Err(bad(format!("expected an {scheme}:// URL")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a server's base URL has no query or fragment".into()));
    }
    let (addr, host) = locate(&url, raw, allow_remote).await?;
    let base = url.as_str().trim_end_matches('/').to_string();
    Ok((addr, host, base))
}

/// A parsed URL's socket address and host name (brackets off an IPv6
/// literal; path and query allowed), refused unless loopback or
/// `allow_remote`; `raw` names it in errors.
pub async fn locate(
    url: &url::Url,
    raw: &str,
    allow_remote: bool,
) -> Result<(SocketAddr, String), TargetError> {
    let bad = |reason: &str| TargetError::BadUrl {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let host = url
        .host_str()
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
    let resolve = |reason: String| TargetError::Resolve {
        url: raw.to_string(),
        reason,
    };
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| resolve(e.to_string()))?
        .next()
        .ok_or_else(|| resolve("no address".into()))?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(TargetError::NotLoopback {
            url: raw.to_string(),
            addr,
        });
    }
    Ok((addr, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_checked() {
        let e = Target::external("nope", None, Trust::Insecure, false)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a valid URL"), "{e}");
        let e = Target::external("https://127.0.0.1:1", None, Trust::Insecure, false)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("http://"), "{e}");
        let e = Target::external("http://10.1.2.3:80", None, Trust::Insecure, false)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("--allow-remote"), "{e}");
        let t = Target::external("http://127.0.0.1:9/", None, Trust::Insecure, false)
            .await
            .unwrap();
        assert_eq!(t.http_url, "http://127.0.0.1:9");
        // Whatever the spelling, the endpoints are well formed.
        let t2 = Target::external("HTTP://127.0.0.1:9/api/", None, Trust::Insecure, false)
            .await
            .unwrap();
        assert_eq!(t2.ws("/ws").url(), "ws://127.0.0.1:9/api/ws");
        assert_eq!(t2.plain("/sse").url(), "http://127.0.0.1:9/api/sse");
        let e = Target::external("http://127.0.0.1:9/?x=1", None, Trust::Insecure, false)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("no query"), "{e}");
        assert_eq!(t.http_addr.port(), 9);
        assert!(t.sources(100).0.is_empty());
        assert_eq!(t.sources(45_000).0.len(), 3);
    }
}
