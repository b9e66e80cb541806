//! The edge's TLS certificate: one self-signed pair for the loopback names,
//! written as files that the proxy, the embedded server (`--tls-cert`,
//! `--tls-key`), the load generator and a browser all use, so a single
//! certificate is trusted everywhere.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::PublicKeyData as _;

use crate::error::EdgeError;

/// A certificate and key on disk, in the forms the proxies want.
#[derive(Debug, Clone)]
pub struct EdgeCert {
    /// PEM certificate (nginx `ssl_certificate`; trust it in clients).
    pub cert_path: PathBuf,
    /// PEM private key (nginx `ssl_certificate_key`; the server's `--tls-key`).
    pub key_path: PathBuf,
    /// Certificate then key in one PEM file: HAProxy's `crt`.
    pub cert_key_path: PathBuf,
    /// base64(SHA-256(SubjectPublicKeyInfo)) for Chromium's
    /// `--ignore-certificate-errors-spki-list` (generated certificates only).
    pub spki_sha256: Option<String>,
}

/// The names a loopback certificate covers.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl EdgeCert {
    /// Generates a self-signed certificate for `localhost`, `127.0.0.1` and
    /// `::1` into `dir` (`cert.pem`, `key.pem`, `cert-key.pem`; the key
    /// files readable by their owner only).
    pub fn generate(dir: &Path) -> Result<EdgeCert, EdgeError> {
        let names = LOOPBACK_NAMES.map(String::from).to_vec();
        let certified = rcgen::generate_simple_self_signed(names)?;
        let cert_pem = certified.cert.pem();
        let key_pem = certified.signing_key.serialize_pem();
        let spki = certified.signing_key.subject_public_key_info();
        let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
        let mut cert = EdgeCert::write(dir, &cert_pem, &key_pem)?;
        cert.spki_sha256 = Some(base64::engine::general_purpose::STANDARD.encode(digest));
        Ok(cert)
    }

    /// Uses an existing certificate and key; writes the combined file
    /// HAProxy needs into `dir`.
    pub fn from_files(cert: &Path, key: &Path, dir: &Path) -> Result<EdgeCert, EdgeError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| EdgeError::ReadFile {
                path: path.into(),
                source,
            })
        };
        EdgeCert::write(dir, &read(cert)?, &read(key)?)
    }

    fn write(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<EdgeCert, EdgeError> {
        let cert = EdgeCert {
            cert_path: dir.join("cert.pem"),
            key_path: dir.join("key.pem"),
            cert_key_path: dir.join("cert-key.pem"),
            spki_sha256: None,
        };
        write_file(&cert.cert_path, cert_pem, 0o644)?;
        write_file(&cert.key_path, key_pem, 0o600)?;
        let mut both = cert_pem.to_string();
        if !both.ends_with('\n') {
            both.push('\n');
        }
        both.push_str(key_pem);
        write_file(&cert.cert_key_path, &both, 0o600)?;
        Ok(cert)
    }
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), EdgeError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |source| EdgeError::WriteFile {
        path: path.into(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_hold_a_certificate_and_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let cert = EdgeCert::generate(dir.path()).unwrap();
        let c = std::fs::read_to_string(&cert.cert_path).unwrap();
        let k = std::fs::read_to_string(&cert.key_path).unwrap();
        let both = std::fs::read_to_string(&cert.cert_key_path).unwrap();
        assert!(c.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(k.contains("PRIVATE KEY-----"));
        assert_eq!(both, format!("{c}{k}"));
        assert_eq!(cert.spki_sha256.as_ref().unwrap().len(), 44);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cert.key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The same pair loads back from files (the server's --tls-cert/--tls-key).
        let other = tempfile::tempdir().unwrap();
        let again = EdgeCert::from_files(&cert.cert_path, &cert.key_path, other.path()).unwrap();
        assert_eq!(std::fs::read_to_string(again.cert_key_path).unwrap(), both);
        let err = EdgeCert::from_files(Path::new("/nonexistent.pem"), &cert.key_path, other.path())
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
    }
}
