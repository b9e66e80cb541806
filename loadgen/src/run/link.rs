//! A scenario over an emulated link: the lab (two network namespaces and
//! the link emulator between them, from `netlab`), a certificate for the
//! server's address on the link, the socket hook that makes every
//! load-generator connection inside the client namespace, and the
//! emulator's figures for each hold.
//!
//! The embedded server runs as a child process inside the server
//! namespace, listening on the lab's server address (198.18.1.1) only; the
//! load generator stays in the root namespace and makes its sockets inside
//! the client namespace ([`netlab::NetnsSockets`]), bound round-robin to the
//! lab's client addresses; worker processes start inside the client
//! namespace. So every byte between them crosses the emulated link, and
//! nothing of the run is reachable from anywhere else.
//!
//! The [`LinkRun`] owns the lab: dropping it (the end of the scenario, an
//! error, a panic unwinding) removes both namespaces and their devices.
//! The socket hook holds the lab weakly, so a stray clone of a dialer can
//! never keep the namespaces alive.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use netlab::{EmulatorReport, EmulatorStats, Lab, LinkReport, LinkSpec, NetlabError, Netns};
use tokio::net::TcpSocket;

use super::live::lock;
use crate::client::SocketHook;

/// What happens at the edges of a wire's hold besides measuring it: over a
/// link the outage schedule starts with the hold, and the emulator's
/// figures are read for it.
pub trait HoldHooks: Send + Sync {
    fn hold_started(&self) {}
    fn hold_ended(&self) {}
}

/// A hold with nothing around it (loopback).
pub struct NoHooks;
impl HoldHooks for NoHooks {}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("a run over an emulated link (--link, a scenario's `link` table) needs the link emulator, which cannot run here: {0}; run it as root, on a kernel with /dev/net/tun")]
    Unsupported(NetlabError),
    #[error("starting the link emulator: {0}")]
    Lab(NetlabError),
    #[error("making a certificate for the server's address on the link: {0}")]
    Certificate(String),
    #[error("a run over an emulated link starts the embedded server itself, as a child process inside the server's network namespace: it cannot use {0}")]
    Server(&'static str),
}

/// Whether links can be emulated here; the reason if not.
pub fn link_support() -> Result<(), LinkError> {
    netlab::check_support().map_err(LinkError::Unsupported)
}

/// One scenario's link: see the module documentation.
pub struct LinkRun {
    /// The only strong reference: dropping the run removes the lab.
    lab: Arc<Lab>,
    certificate: LinkCertificate,
    /// The emulator's reading when the current hold started.
    hold_mark: Mutex<Option<EmulatorStats>>,
    /// The last hold's figures, and every hold's together.
    last_hold: Mutex<Option<EmulatorStats>>,
    holds: Mutex<Option<EmulatorStats>>,
}

impl LinkRun {
    /// Builds the lab for `spec` (its outages wait for the first hold).
    pub fn start(spec: &LinkSpec) -> Result<LinkRun, LinkError> {
        link_support()?;
        let certificate = LinkCertificate::generate(netlab::SERVER_ADDR.into())?;
        let lab = Lab::start(spec.clone()).map_err(LinkError::Lab)?;
        Ok(LinkRun {
            lab: Arc::new(lab),
            certificate,
            hold_mark: Mutex::new(None),
            last_hold: Mutex::new(None),
            holds: Mutex::new(None),
        })
    }

    /// The server's address on the link (198.18.1.1).
    pub fn server_addr(&self) -> IpAddr {
        self.lab.server_addr().into()
    }

    /// The server side's namespace, for the embedded server's process.
    pub fn server_netns(&self) -> &Netns {
        self.lab.server().netns()
    }

    /// The client side's namespace, for worker processes.
    pub fn client_netns(&self) -> &Netns {
        self.lab.client().netns()
    }

    /// Cut and restore the link by hand (a browser test cuts it mid-run).
    pub fn control(&self) -> &netlab::LinkControl {
        self.lab.control()
    }

    /// The client side's source addresses (198.18.0.1, ...).
    pub fn client_addrs(&self) -> Vec<IpAddr> {
        self.lab
            .client_addrs()
            .iter()
            .map(|a| IpAddr::from(*a))
            .collect()
    }

    /// PEM files of a certificate naming the server's address on the link
    /// (and `localhost`), and its key: the embedded server's `--tls-cert`
    /// and `--tls-key`, and what the clients trust.
    pub fn tls_files(&self) -> (PathBuf, PathBuf) {
        (self.certificate.cert.clone(), self.certificate.key.clone())
    }

    /// Makes every socket of a connection inside the client namespace.
    pub fn socket_hook(&self) -> Arc<dyn SocketHook> {
        Arc::new(ClientSideSockets {
            lab: Arc::downgrade(&self.lab),
            sources: self.client_addrs(),
        })
    }

    /// The figures of the last hold, if one ended.
    pub fn last_hold(&self) -> Option<EmulatorReport> {
        lock(&self.last_hold).as_ref().map(EmulatorStats::report)
    }

    /// The scenario's `link`: the settings and the emulator's figures over
    /// every hold so far.
    pub fn report(&self) -> LinkReport {
        let holds = *lock(&self.holds);
        let stats = holds.unwrap_or_else(|| {
            let now = self.lab.stats();
            now.since(&now)
        });
        self.lab.report(&stats)
    }

    /// Why the link may not have been what was asked: the forwarder
    /// stopped, or the emulator could not keep up (the kernel dropped
    /// packets before it read them).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.lab.is_forwarding() {
            out.push("the link emulator stopped forwarding (see the log): the link was down from then on".into());
        }
        if let Some(s) = *lock(&self.last_hold) {
            let overflow = s.total().dropped_overflow;
            if overflow > 0 {
                out.push(format!(
                    "the link emulator could not keep up: the kernel dropped {overflow} packets before it read them, so the emulator, not the emulated link, limited the run"
                ));
            }
        }
        out
    }
}

impl HoldHooks for LinkRun {
    fn hold_started(&self) {
        self.lab.control().start_outages();
        *lock(&self.hold_mark) = Some(self.lab.stats());
    }

    fn hold_ended(&self) {
        let now = self.lab.stats();
        let Some(mark) = lock(&self.hold_mark).take() else {
            return;
        };
        let hold = now.since(&mark);
        *lock(&self.last_hold) = Some(hold);
        let mut holds = lock(&self.holds);
        *holds = Some(match *holds {
            Some(earlier) => earlier.plus(&hold),
            None => hold,
        });
    }
}

/// Sockets inside the client namespace, bound round-robin (by connection
/// index) to the client side's addresses.
#[derive(Debug)]
struct ClientSideSockets {
    lab: Weak<Lab>,
    sources: Vec<IpAddr>,
}

impl SocketHook for ClientSideSockets {
    fn socket(&self, peer: SocketAddr, index: usize) -> io::Result<TcpSocket> {
        let lab = self.lab.upgrade().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the link emulator has stopped (its namespaces are gone)",
            )
        })?;
        let socket = lab.client().sockets().tokio_tcp(&peer)?;
        if let Some(ip) = self.sources.get(index % self.sources.len().max(1)) {
            socket.bind(SocketAddr::new(*ip, 0))?;
        }
        Ok(socket)
    }
}

/// A self-signed certificate for the server's address on the link, in a
/// temporary directory removed with it.
struct LinkCertificate {
    cert: PathBuf,
    key: PathBuf,
    dir: tempfile::TempDir,
}

/// The directories of this process's link certificates, for an exit that
/// skips destructors (a second Ctrl-C): see [`remove_link_files`].
static CERTIFICATE_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the link certificates' directories of this process now: for a
/// process about to exit without running destructors, which would leave
/// them in the temporary directory (as it removes its namespaces then).
pub fn remove_link_files() {
    for dir in lock(&CERTIFICATE_DIRS).drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Drop for LinkCertificate {
    fn drop(&mut self) {
        // The directory itself goes with `dir`.
        lock(&CERTIFICATE_DIRS).retain(|d| d != self.dir.path());
    }
}

impl LinkCertificate {
    fn generate(addr: IpAddr) -> Result<LinkCertificate, LinkError> {
        let bad = |e: &dyn std::fmt::Display| LinkError::Certificate(e.to_string());
        let certified =
            rcgen::generate_simple_self_signed(vec![addr.to_string(), "localhost".to_string()])
                .map_err(|e| bad(&e))?;
        let dir = tempfile::Builder::new()
            .prefix("sse-ws-workbench-link-")
            .tempdir()
            .map_err(|e| bad(&e))?;
        let write = |name: &str, pem: String| -> Result<PathBuf, LinkError> {
            let path = dir.path().join(name);
            std::fs::write(&path, pem)
                .map_err(|e| bad(&format!("writing {}: {e}", Path::display(&path))))?;
            Ok(path)
        };
        let cert = write("cert.pem", certified.cert.pem())?;
        let key = write("key.pem", certified.signing_key.serialize_pem())?;
        lock(&CERTIFICATE_DIRS).push(dir.path().to_path_buf());
        Ok(LinkCertificate { cert, key, dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_names_the_link_address_and_is_removed_with_its_run() {
        let c = LinkCertificate::generate(netlab::SERVER_ADDR.into()).unwrap();
        let pem = std::fs::read_to_string(&c.cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(std::fs::read_to_string(&c.key)
            .unwrap()
            .contains("PRIVATE KEY"));
        // The rustls client accepts it for the address.
        server::tls::install_crypto_provider();
        let settings = crate::client::TlsSettings::h2(
            &crate::client::Trust::CaFile(c.cert.clone()),
            "198.18.1.1",
        );
        assert!(settings.is_ok(), "{:?}", settings.err());
        let dir = c.cert.parent().unwrap().to_path_buf();
        drop(c);
        assert!(!dir.exists());
    }
}
