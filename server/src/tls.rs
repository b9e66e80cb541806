//! The TLS listener's certificate: loaded from files, or generated and
//! written out so curl, the load generator and a browser can trust it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rcgen::PublicKeyData as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the TLS certificate {path}: {source}")]
    ReadCert {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("reading the TLS key {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the TLS certificate file {0} holds no certificate")]
    NoCert(PathBuf),
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing the generated certificate to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("building the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate in use and how a client can trust it.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// PEM file of the certificate (the generated one, or --tls-cert).
    pub cert_path: PathBuf,
    /// base64(SHA-256(SubjectPublicKeyInfo)) of a generated certificate, for
    /// Chromium's `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: Option<String>,
}

/// The ALPN protocols offered, in order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Installs rustls's ring provider as the process default. Idempotent; call
/// it before building any TLS configuration (two providers compiled into one
/// binary make rustls panic otherwise).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the server's rustls configuration with ALPN h2 and http/1.1.
///
/// `cert_out` is where a generated certificate goes; ignored with files.
pub fn server_config(
    cert: Option<(&Path, &Path)>,
    cert_out: &Path,
) -> Result<(rustls::ServerConfig, CertInfo), TlsError> {
    install_crypto_provider();
    let (chain, key, info) = match cert {
        Some((cert_path, key_path)) => {
            let chain = CertificateDer::pem_file_iter(cert_path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|source| TlsError::ReadCert {
                    path: cert_path.into(),
                    source,
                })?;
            if chain.is_empty() {
                return Err(TlsError::NoCert(cert_path.into()));
            }
            let key =
                PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsError::ReadKey {
                    path: key_path.into(),
                    source,
                })?;
            let info = CertInfo {
                cert_path: cert_path.into(),
                spki_sha256: None,
            };
            (chain, key, info)
        }
        None => generate(cert_out)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok((config, info))
}

type Material = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    CertInfo,
);

/// A self-signed certificate for the loopback names, written as PEM.
fn generate(cert_out: &Path) -> Result<Material, TlsError> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let certified = rcgen::generate_simple_self_signed(names)?;
    let pem = certified.cert.pem();
    if let Some(dir) = cert_out.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: cert_out.into(),
            source,
        })?;
    }
    std::fs::write(cert_out, pem).map_err(|source| TlsError::Write {
        path: cert_out.into(),
        source,
    })?;
    let spki = certified.signing_key.subject_public_key_info();
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
    let info = CertInfo {
        cert_path: cert_out.into(),
        spki_sha256: Some(base64::engine::general_purpose::STANDARD.encode(digest.as_ref())),
    };
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(|e| rcgen::Error::PemError(e.to_string()))?;
    Ok((vec![certified.cert.der().clone()], key, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_written_and_usable() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/cert.pem");
        let (config, info) = server_config(None, &out).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(info.cert_path, out);
        assert_eq!(info.spki_sha256.unwrap().len(), 44);
        let pem = std::fs::read_to_string(&out).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        // The written file loads back as the configured certificate.
        let key_path = dir.path().join("none.pem");
        std::fs::write(&key_path, "").unwrap();
        let err = server_config(Some((&out, &key_path)), &out).unwrap_err();
        assert!(err.to_string().contains("reading the TLS key"), "{err}");
    }

    #[test]
    fn missing_files_name_the_path() {
        let err = server_config(
            Some((
                Path::new("/nonexistent/c.pem"),
                Path::new("/nonexistent/k.pem"),
            )),
            Path::new("/tmp/unused.pem"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
    }
}
