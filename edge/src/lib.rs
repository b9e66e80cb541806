//! Real reverse proxies at the edge: Debian's nginx or HAProxy started as a
//! child process in front of a feed server, as production deployments run
//! SSE and WebSocket.
//!
//! The edge terminates TLS (ALPN `h2` and `http/1.1`) and speaks HTTP/1.1
//! to its upstream. Its config is `tuned` (what a careful operator writes),
//! `naive` (what a first tutorial gives) or a user's file, rendered from a
//! template ([`Placeholders`]) into a fresh directory with its own pid file,
//! logs and temp files, on a free loopback port: never the system service.
//! [`Edge`] reports what a load generator needs (URL, processes, their
//! memory and CPU, upstream connections held, the config text, the logs)
//! and stops the whole process tree when dropped.
//!
//! ```no_run
//! use edge::{Edge, EdgeKind, EdgeProfile, EdgeSpec};
//! let edge = Edge::start(EdgeSpec::new(EdgeKind::Haproxy, EdgeProfile::Tuned, "127.0.0.1:8080"))?;
//! println!("edge: {}", edge.url());
//! println!("trust: {}", edge.cert().cert_path.display());
//! # Ok::<(), edge::EdgeError>(())
//! ```
//!
//! [`read_h2_settings`] reads what an HTTP/2 server (an edge, or actix
//! directly) announces: SETTINGS_MAX_CONCURRENT_STREAMS and
//! SETTINGS_ENABLE_CONNECT_PROTOCOL.

mod cert;
mod error;
mod footprint;
mod h2_settings;
mod kind;
mod process;
mod profile;
mod running;
mod template;

pub use cert::{EdgeCert, LOOPBACK_NAMES};
pub use error::EdgeError;
pub use footprint::{connections_to, established_to, Footprint};
pub use h2_settings::{
    announced, parse_preface, preface_of, read_h2_settings, H2Settings, Preface, SettingsSniffer,
};
pub use kind::{installed_or_skip, EdgeKind};
pub use profile::EdgeProfile;
pub use running::{Edge, EdgeSpec};
pub use template::Placeholders;
