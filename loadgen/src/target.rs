//! Where the feed server is: its plain and TLS listeners, how to trust its
//! certificate, and which source addresses to connect from.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::h2_pool::H2Tls;
use crate::tls_config::{client_config, TlsConfigError, Trust};

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
#[derive(Clone)]
pub struct TlsTarget {
    pub addr: SocketAddr,
    pub h2: H2Tls,
}

/// A server to load.
#[derive(Clone)]
pub struct Target {
    pub http_addr: SocketAddr,
    pub http_url: String,
    pub tls: Option<TlsTarget>,
    pub https_url: Option<String>,
}

impl Target {
    /// The embedded server: its certificate file is trusted.
    pub fn embedded(
        http_addr: SocketAddr,
        https_addr: Option<SocketAddr>,
        cert: Option<std::path::PathBuf>,
    ) -> Result<Target, TargetError> {
        let tls = match (https_addr, cert) {
            (Some(addr), Some(cert)) => Some(tls_target(addr, "localhost", &Trust::CaFile(cert))?),
            _ => None,
        };
        Ok(Target {
            http_addr,
            http_url: format!("http://{http_addr}"),
            https_url: tls
                .as_ref()
                .map(|t| format!("https://localhost:{}", t.addr.port())),
            tls,
        })
    }

    /// An external server given by URLs.
    pub async fn external(
        http_url: &str,
        https_url: Option<&str>,
        trust: Trust,
        allow_remote: bool,
    ) -> Result<Target, TargetError> {
        let (http_addr, _) = resolve(http_url, "http", allow_remote).await?;
        let tls = match https_url {
            Some(u) => {
                let (addr, host) = resolve(u, "https", allow_remote).await?;
                Some(tls_target(addr, &host, &trust)?)
            }
            None => None,
        };
        Ok(Target {
            http_addr,
            http_url: http_url.trim_end_matches('/').to_string(),
            https_url: https_url.map(|u| u.trim_end_matches('/').to_string()),
            tls,
        })
    }

    /// Source addresses for `connections` streams: one unless a loopback
    /// target needs more ports than one address has.
    pub fn sources(&self, connections: usize) -> Vec<IpAddr> {
        let needed = connections.div_ceil(CONNECTIONS_PER_SOURCE);
        match self.http_addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() && needed > 1 => (1..=needed.min(250) as u8)
                .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn tls_target(addr: SocketAddr, host: &str, trust: &Trust) -> Result<TlsTarget, TargetError> {
    // Offer both, like a browser: the server's ALPN choice is part of what we measure.
    let config = client_config(trust, &[b"h2", b"http/1.1"])?;
    Ok(TlsTarget {
        addr,
        h2: H2Tls {
            config,
            server_name: host.to_string(),
        },
    })
}

async fn resolve(
    raw: &str,
    scheme: &str,
    allow_remote: bool,
) -> Result<(SocketAddr, String), TargetError> {
    let bad = |reason: String| TargetError::BadUrl {
        url: raw.to_string(),
        reason,
    };
    let url = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != scheme {
        return Err(bad(format!("expected an {scheme}:// URL")));
    }
    let host = url
        .host_str()
        .ok_or_else(|| bad("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| bad("no port".into()))?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| TargetError::Resolve {
            url: raw.to_string(),
            reason: e.to_string(),
        })?
        .next()
        .ok_or_else(|| TargetError::Resolve {
            url: raw.to_string(),
            reason: "no address".into(),
        })?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(TargetError::NotLoopback {
            url: raw.to_string(),
            addr,
        });
    }
    Ok((addr, host))
}

/// Shared by every connection of a run.
pub type SharedTarget = Arc<Target>;

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
        assert_eq!(t.http_addr.port(), 9);
        assert!(t.sources(100).is_empty());
        assert_eq!(t.sources(45_000).len(), 3);
    }
}
