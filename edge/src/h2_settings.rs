//! What an HTTP/2 server announces in its SETTINGS: the streams a client
//! may open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS, what a
//! browser obeys) and whether it accepts WebSocket over HTTP/2
//! (SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441).
//!
//! HTTP/2 clients (hyper's included) do not say whether the server's first
//! SETTINGS frame has arrived: before it, they assume defaults. The server's
//! connection preface *is* that frame (RFC 9113 §3.4), so
//! [`SettingsSniffer`] wraps a connection's I/O and reads it as the bytes go
//! by to the HTTP/2 client, then steps aside. [`read_h2_settings`] does the
//! same on a connection of its own, sending only the client preface: the
//! upstream behind an edge sees no request.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::error::EdgeError;

/// The settings that matter here, as announced in the server's preface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS; `None` when not announced
    /// (unlimited: actix announces none).
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441).
    pub enable_connect_protocol: bool,
}

/// What the sniffer saw of the server's first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// Not complete yet.
    Pending,
    /// The server's SETTINGS.
    Settings(H2Settings),
    /// The first frame was not a SETTINGS frame, or the connection ended
    /// before it: not an HTTP/2 server.
    NotHttp2,
}

const FRAME_HEADER: usize = 9;
const TYPE_SETTINGS: u8 = 0x4;
const FLAG_ACK: u8 = 0x1;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
/// The largest first frame we wait for (the default SETTINGS_MAX_FRAME_SIZE).
const MAX_PREFACE: usize = 16_384;

/// Parses the server preface from the start of a connection's bytes:
/// `None` while more bytes are needed.
pub fn parse_preface(bytes: &[u8]) -> Option<Preface> {
    if bytes.len() < FRAME_HEADER {
        return None;
    }
    let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
    let (kind, flags) = (bytes[3], bytes[4]);
    if kind != TYPE_SETTINGS || flags & FLAG_ACK != 0 || !len.is_multiple_of(6) || len > MAX_PREFACE
    {
        return Some(Preface::NotHttp2);
    }
    let payload = bytes.get(FRAME_HEADER..FRAME_HEADER + len)?;
    let mut settings = H2Settings {
        max_concurrent_streams: None,
        enable_connect_protocol: false,
    };
    for entry in payload.chunks_exact(6) {
        let id = u16::from_be_bytes([entry[0], entry[1]]);
        let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
        match id {
            MAX_CONCURRENT_STREAMS => settings.max_concurrent_streams = Some(value),
            ENABLE_CONNECT_PROTOCOL => settings.enable_connect_protocol = value == 1,
            _ => {}
        }
    }
    Some(Preface::Settings(settings))
}

/// An I/O wrapper that reads the server's preface as it passes by. Once it
/// has it, reads go straight through (one branch per read).
#[derive(Debug)]
pub struct SettingsSniffer<T> {
    inner: T,
    seen: Option<Vec<u8>>,
    tx: watch::Sender<Preface>,
}

impl<T> SettingsSniffer<T> {
    /// Wraps `inner`; the receiver sees [`Preface::Pending`] until the
    /// server's first frame is complete.
    pub fn new(inner: T) -> (SettingsSniffer<T>, watch::Receiver<Preface>) {
        let (tx, rx) = watch::channel(Preface::Pending);
        let sniffer = SettingsSniffer {
            inner,
            seen: Some(Vec::new()),
            tx,
        };
        (sniffer, rx)
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn observe(&mut self, new: &[u8]) {
        let Some(seen) = self.seen.as_mut() else {
            return;
        };
        seen.extend_from_slice(new);
        let outcome = if new.is_empty() {
            Some(Preface::NotHttp2)
        } else {
            parse_preface(seen)
        };
        if let Some(p) = outcome {
            self.seen = None;
            self.tx.send_replace(p);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SettingsSniffer<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.seen.is_some() {
            match &poll {
                Poll::Ready(Ok(())) => this.observe(&buf.filled()[before..]),
                Poll::Ready(Err(_)) => this.observe(&[]),
                Poll::Pending => {}
            }
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SettingsSniffer<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Waits until the sniffer has the server's first frame.
pub async fn announced(rx: &mut watch::Receiver<Preface>) -> Preface {
    match rx.wait_for(|p| *p != Preface::Pending).await {
        Ok(p) => *p,
        // The connection (and its sniffer) is gone without a preface.
        Err(_) => Preface::NotHttp2,
    }
}

/// The HTTP/2 client connection preface with an empty SETTINGS frame.
const CLIENT_PREFACE: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Connects to `addr` over TLS (SNI `server_name`, trusting the PEM
/// certificates in `ca`) with ALPN `h2`, sends the client preface and reads
/// the server's SETTINGS.
pub async fn read_h2_settings(
    addr: SocketAddr,
    server_name: &str,
    ca: &Path,
    timeout: Duration,
) -> Result<H2Settings, EdgeError> {
    tokio::time::timeout(timeout, read(addr, server_name, ca))
        .await
        .map_err(|_| EdgeError::Timeout {
            what: format!("reading the HTTP/2 SETTINGS of {addr}"),
            waited: timeout,
        })?
}

async fn read(addr: SocketAddr, server_name: &str, ca: &Path) -> Result<H2Settings, EdgeError> {
    let config = Arc::new(h2_client_config(ca)?);
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| EdgeError::Connect { addr, source })?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| EdgeError::TlsConfig(format!("server name `{server_name}`: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| EdgeError::Tls { addr, source })?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    if alpn.as_deref() != Some(b"h2") {
        return Err(EdgeError::NoH2 {
            addr,
            got: alpn.map_or("none".into(), |a| String::from_utf8_lossy(&a).into_owned()),
        });
    }
    match preface_of(tls)
        .await
        .map_err(|source| EdgeError::Tls { addr, source })?
    {
        Preface::Settings(s) => Ok(s),
        _ => Err(EdgeError::NoH2 {
            addr,
            got: "h2 by ALPN, but no SETTINGS frame first".into(),
        }),
    }
}

/// Sends the client preface on a connection that negotiated h2 (or speaks
/// h2c) and reads the server's first frame.
pub async fn preface_of<T: AsyncRead + AsyncWrite + Unpin>(io: T) -> io::Result<Preface> {
    let (mut io, mut rx) = SettingsSniffer::new(io);
    io.write_all(CLIENT_PREFACE).await?;
    io.flush().await?;
    let mut buf = [0u8; 4096];
    loop {
        let seen = *rx.borrow_and_update();
        if seen != Preface::Pending {
            return Ok(seen);
        }
        // The sniffer sees what is read (an end of stream included).
        let _read = io.read(&mut buf).await?;
    }
}

/// rustls (ring) trusting the PEM certificates in `ca`, ALPN `h2` only.
fn h2_client_config(ca: &Path) -> Result<rustls::ClientConfig, EdgeError> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| EdgeError::TlsConfig(format!("reading {}: {e}", ca.display())))?;
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| EdgeError::TlsConfig(format!("{}: {e}", ca.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EdgeError::TlsConfig(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend([kind, flags, 0, 0, 0, 0]);
        f.extend(payload);
        f
    }

    #[test]
    fn settings_are_read_from_the_first_frame() {
        let mut payload = vec![0, 3, 0, 0, 0, 100];
        payload.extend([0, 8, 0, 0, 0, 1]);
        payload.extend([0, 4, 0, 1, 0, 0]);
        let f = frame(4, 0, &payload);
        for cut in 0..f.len() {
            assert_eq!(parse_preface(&f[..cut]), None, "cut {cut}");
        }
        let want = H2Settings {
            max_concurrent_streams: Some(100),
            enable_connect_protocol: true,
        };
        assert_eq!(parse_preface(&f), Some(Preface::Settings(want)));
        let none = frame(4, 0, &[0, 4, 0, 1, 0, 0]);
        assert_eq!(
            parse_preface(&none),
            Some(Preface::Settings(H2Settings {
                max_concurrent_streams: None,
                enable_connect_protocol: false
            }))
        );
        assert_eq!(parse_preface(&frame(4, 1, &[])), Some(Preface::NotHttp2));
        assert_eq!(
            parse_preface(b"HTTP/1.1 400 Bad Request\r\n"),
            Some(Preface::NotHttp2)
        );
    }

    #[tokio::test]
    async fn the_sniffer_passes_bytes_through_and_publishes_once() {
        let (mut server, client) = tokio::io::duplex(64);
        let (mut sniffer, mut rx) = SettingsSniffer::new(client);
        let mut bytes = frame(4, 0, &[0, 3, 0, 0, 0, 128]);
        bytes.extend(frame(6, 0, &[0; 8]));
        let sent = bytes.clone();
        tokio::spawn(async move {
            for b in sent.chunks(5) {
                server.write_all(b).await.unwrap();
            }
        });
        let mut got = vec![0; bytes.len()];
        sniffer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, bytes);
        let p = announced(&mut rx).await;
        assert_eq!(
            p,
            Preface::Settings(H2Settings {
                max_concurrent_streams: Some(128),
                enable_connect_protocol: false
            })
        );
    }
}
