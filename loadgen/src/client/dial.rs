//! The one dialer: every connection the load generator makes (feed streams,
//! HTTP/2 pool connections, requests, probes) starts here, so how a socket
//! is made, TLS, and the ALPN check are written once.
//!
//! How a socket is made is a per-connection hook ([`SocketHook`]):
//! [`SourceAddresses`] binds it to one of several loopback source addresses
//! (one address reaches only about 28,000 ephemeral ports per destination);
//! over an emulated link the run's hook creates it inside the client's
//! network namespace (`run::link`).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use super::endpoint::Endpoint;
use super::error::ClientError;
use super::io::Io;
use super::tls::TlsSettings;

/// Makes the socket of connection number `index` to `peer`, before it connects.
pub trait SocketHook: Send + Sync + fmt::Debug {
    fn socket(&self, peer: SocketAddr, index: usize) -> io::Result<TcpSocket>;
}

/// A fresh socket, bound round-robin (by connection index) to one of
/// `sources` when there are any.
#[derive(Debug, Clone, Default)]
pub struct SourceAddresses(pub Vec<IpAddr>);

impl SocketHook for SourceAddresses {
    fn socket(&self, peer: SocketAddr, index: usize) -> io::Result<TcpSocket> {
        let socket = if peer.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        if !self.0.is_empty() {
            let ip = self.0[index % self.0.len()];
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        Ok(socket)
    }
}

/// Opens TCP connections (through its [`SocketHook`]) and TLS over them.
/// Cheap to clone: clones share the hook.
#[derive(Debug, Clone)]
pub struct Dialer {
    hook: Arc<dyn SocketHook>,
}

impl Default for Dialer {
    /// Plain sockets, no source address.
    fn default() -> Self {
        Dialer::new(SourceAddresses::default())
    }
}

impl Dialer {
    pub fn new(hook: impl SocketHook + 'static) -> Self {
        Dialer {
            hook: Arc::new(hook),
        }
    }

    /// A dialer over a hook shared with others.
    pub fn shared(hook: Arc<dyn SocketHook>) -> Self {
        Dialer { hook }
    }

    /// Connection `index` to the endpoint: TCP, then TLS when the endpoint
    /// has TLS settings (with its ALPN requirement checked).
    pub async fn connect(&self, endpoint: &Endpoint, index: usize) -> Result<Io, ClientError> {
        let tcp = self.tcp(endpoint.addr(), index, endpoint.shown()).await?;
        match endpoint.tls() {
            None => Ok(Io::Plain(tcp)),
            Some(tls) => Ok(Io::Tls(Box::new(
                self.tls(tcp, tls, endpoint.shown()).await?,
            ))),
        }
    }

    /// A TCP connection to `peer` (`url` names it in errors).
    pub async fn tcp(
        &self,
        peer: SocketAddr,
        index: usize,
        url: &Arc<str>,
    ) -> Result<TcpStream, ClientError> {
        let err = |source| ClientError::Connect {
            url: url.clone(),
            source,
        };
        let socket = self.hook.socket(peer, index).map_err(err)?;
        let stream = socket.connect(peer).await.map_err(err)?;
        // Events are small and latency is what we measure.
        stream.set_nodelay(true).map_err(err)?;
        Ok(stream)
    }

    /// TLS over a connected socket, the negotiated ALPN checked against
    /// what `tls` requires.
    pub async fn tls(
        &self,
        tcp: TcpStream,
        tls: &TlsSettings,
        url: &Arc<str>,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
        let name = ServerName::try_from(tls.server_name.clone()).map_err(|e| ClientError::Tls {
            url: url.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        let stream = TlsConnector::from(tls.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|source| ClientError::Tls {
                url: url.clone(),
                source,
            })?;
        check_alpn(stream.get_ref().1.alpn_protocol(), tls.require_alpn, url)?;
        Ok(stream)
    }
}

/// The one ALPN check: the server negotiated what the wire needs.
pub fn check_alpn(
    got: Option<&[u8]>,
    want: Option<&'static [u8]>,
    url: &Arc<str>,
) -> Result<(), ClientError> {
    match want {
        Some(want) if got != Some(want) => Err(ClientError::protocol(
            url,
            format!(
                "the server did not negotiate {} over TLS (ALPN: {})",
                String::from_utf8_lossy(want),
                got.map(|a| String::from_utf8_lossy(a).into_owned())
                    .unwrap_or_else(|| "none".into())
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_mismatches_name_both_sides() {
        let url: Arc<str> = "https://localhost:1/sse".into();
        assert!(check_alpn(Some(b"h2"), Some(b"h2"), &url).is_ok());
        assert!(check_alpn(Some(b"http/1.1"), None, &url).is_ok());
        let e = check_alpn(Some(b"http/1.1"), Some(b"h2"), &url)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did not negotiate h2") && e.contains("ALPN: http/1.1"),
            "{e}"
        );
        let e = check_alpn(None, Some(b"h2"), &url).unwrap_err().to_string();
        assert!(e.contains("ALPN: none"), "{e}");
    }
}
