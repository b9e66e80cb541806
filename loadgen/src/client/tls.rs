//! TLS for the clients: whom to trust (a CA file, or explicitly anything),
//! which ALPN protocols to offer, and which one the server must pick.
//!
//! The offer is part of what is measured: a browser offers `h2` and
//! `http/1.1` and lets the server choose; a WebSocket client over TLS must
//! offer `http/1.1` alone, or a server that speaks h2 picks it and the
//! HTTP/1.1 upgrade fails (no server here speaks RFC 8441).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The ALPN id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// How the load generator trusts the TLS listener.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Certificates in a PEM file (the embedded server's generated one, or --ca-cert).
    CaFile(std::path::PathBuf),
    /// `--insecure`: no verification at all.
    Insecure,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("reading the CA certificate {path}: {source} (pass the server's certificate with --ca-cert, or --insecure)")]
    Read {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the CA file {0} holds no usable certificate")]
    Empty(String),
}

/// TLS settings of one kind of connection.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Trust and the ALPN offer.
    pub config: Arc<ClientConfig>,
    /// The name the certificate must carry (`localhost` for the generated one).
    pub server_name: String,
    /// The protocol the server must negotiate; `None`: any, or none.
    pub require_alpn: Option<&'static [u8]>,
}

impl TlsSettings {
    /// Like a browser: offers `h2` then `http/1.1`, and requires `h2` (the
    /// server's choice is what the sse-h2 wire measures).
    pub fn h2(trust: &Trust, server_name: &str) -> Result<Self, TlsConfigError> {
        Ok(TlsSettings {
            config: client_config(trust, &[ALPN_H2, ALPN_HTTP1])?,
            server_name: server_name.to_string(),
            require_alpn: Some(ALPN_H2),
        })
    }

    /// HTTP/1.1 only: offers `http/1.1` alone, as a WebSocket client over
    /// TLS must (and an HTTP/1.1 event stream over TLS may).
    pub fn http1(trust: &Trust, server_name: &str) -> Result<Self, TlsConfigError> {
        Ok(TlsSettings {
            config: client_config(trust, &[ALPN_HTTP1])?,
            server_name: server_name.to_string(),
            require_alpn: None,
        })
    }

    /// The same trust and offer for another name (a host name the
    /// certificate also carries).
    pub fn for_name(&self, server_name: &str) -> Self {
        TlsSettings {
            server_name: server_name.to_string(),
            ..self.clone()
        }
    }
}

/// A client config offering `alpn` (in order).
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsConfigError> {
    server::tls::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let mut config = match trust {
        Trust::CaFile(path) => {
            let roots = load_roots(path)?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let shown = path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsConfigError::Read {
            path: shown.clone(),
            source,
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsConfigError::Empty(shown));
    }
    Ok(roots)
}

/// Accepts any certificate but still checks handshake signatures, so the
/// connection is encrypted as usual; only identity is not verified.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
