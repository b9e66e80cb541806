//! TCP and TLS connection set-up shared by every client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::client::ClientError;

/// Opens a TCP connection, from `source` when given (to spread many
/// connections over several loopback addresses: one source address reaches
/// only about 28,000 ephemeral ports per destination).
pub async fn connect_tcp(
    addr: SocketAddr,
    source: Option<IpAddr>,
    url: &Arc<str>,
) -> Result<TcpStream, ClientError> {
    let err = |source| ClientError::Connect {
        url: url.clone(),
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(err)?;
    }
    let stream = socket.connect(addr).await.map_err(err)?;
    // Events are small and latency is what we measure.
    stream.set_nodelay(true).map_err(err)?;
    Ok(stream)
}

/// TLS over a connected socket; returns the stream and the negotiated ALPN.
pub async fn connect_tls(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    url: &Arc<str>,
) -> Result<(TlsStream<TcpStream>, Option<Vec<u8>>), ClientError> {
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| ClientError::Tls {
        url: url.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| ClientError::Tls {
            url: url.clone(),
            source,
        })?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok((tls, alpn))
}
