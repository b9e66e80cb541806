//! A link emulator between two real kernels' worth of TCP: delay, jitter,
//! loss, a bottleneck rate and outages, for measuring SSE and WebSocket over
//! networks that are not loopback.
//!
//! # What it builds
//!
//! A [`Lab`] is two network namespaces, a *client* side and a *server*
//! side (`wbnet-<pid>-<n>-c` and `-s`), each with its loopback and one TUN
//! device (`wbtun0`), and two forwarder threads that move IP packets between
//! the devices, one per direction, applying the [`LinkSpec`]. Both ends are
//! the real kernel TCP stack (real retransmits, congestion control, RTO),
//! because this kernel has no `netem` (`tc qdisc … netem` answers "Specified
//! qdisc kind is unknown") and a model of TCP would not show what TCP does.
//!
//! Addresses come from the RFC 2544 benchmarking range 198.18.0.0/15 and
//! exist only inside the two namespaces: the server is [`SERVER_ADDR`]
//! (198.18.1.1), the client has [`LabConfig::client_addresses`] source
//! addresses from 198.18.0.1 (one address reaches only about 28,000
//! ephemeral ports per destination). Each namespace routes 198.18.0.0/15 to
//! its TUN device and has no other route, so nothing leaves the lab.
//!
//! # Root
//!
//! Creating namespaces needs CAP_SYS_ADMIN and TUN devices CAP_NET_ADMIN;
//! without them [`Lab::start`] fails with [`NetlabError::NotPrivileged`],
//! naming what is missing. [`check_support`] answers the same question
//! without building anything (tests use it to print `SKIPPED`).
//!
//! # Using it
//!
//! ```no_run
//! use std::net::SocketAddr;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let lab = netlab::Lab::start("delay=25ms,loss=1%,rate=10mbit".parse()?)?;
//!
//! // A child process (the embedded server, a browser) inside the server side:
//! let mut server = std::process::Command::new("server");
//! lab.server().netns().configure_command(&mut server);
//! // (tokio: `configure_tokio_command`.)
//!
//! // A connection from the client side, made on the caller's own runtime:
//! let target = SocketAddr::new(lab.server_addr().into(), 8080);
//! let socket = lab.client().sockets().tokio_tcp(&target)?;
//! socket.bind(SocketAddr::new(lab.client_addrs()[1].into(), 0))?;
//! let stream = socket.connect(target).await?;
//!
//! // The hold: outages count from here; figures for the hold alone.
//! let before = lab.stats();
//! lab.control().start_outages();
//! // ... run ...
//! let hold = lab.stats().since(&before);
//! let link_json = serde_json::to_value(lab.report(&hold))?;
//! # let _ = (stream, link_json); Ok(()) }
//! ```
//!
//! - Sockets: a socket's namespace is fixed when it is created, so
//!   [`NetnsSockets`] makes them on a helper thread inside the namespace and
//!   hands them back; `bind` and `connect` then work from any thread. The
//!   load generator's tokio runtime stays in the root namespace.
//! - Processes: [`Netns::configure_command`] makes a `Command`'s child enter
//!   the namespace between fork and exec. A process spawned *from* a thread
//!   inside a namespace starts there too: [`Netns::spawn_thread`] runs a
//!   whole test (a browser it launches and the DevTools connection it then
//!   opens to the browser's loopback port) inside the client side.
//! - Control: [`LinkControl::cut`] / [`LinkControl::restore`] take the link
//!   down and up by hand (every packet in both directions is dropped, also
//!   those already on their way); [`LinkControl::start_outages`] starts the
//!   [`Outage`] schedule; [`LinkControl::set_link`] swaps the settings
//!   between scenarios without rebuilding the lab.
//! - Figures: [`Lab::stats`] gives packets and bytes forwarded and dropped
//!   (by loss, outage, queue) per direction and the forwarder threads' CPU
//!   time; [`Lab::report`] turns them and the settings into result.json's
//!   `link` object ([`LinkReport`]).
//!
//! # Cleanup
//!
//! Dropping the [`Lab`] stops the forwarder, closes the TUN devices (the
//! kernel removes a TUN device with its last descriptor) and removes both
//! namespaces, also when a panic unwinds through it. A Ctrl-C handler that
//! exits without unwinding calls [`remove_own_namespaces`] first. A run
//! killed outright leaves its namespace names behind (its devices die with
//! it); the next [`Lab::start`] removes every `wbnet-<pid>-…` whose process
//! no longer exists, and never one of a live process.
//!
//! # The model
//!
//! Per direction and per packet: an outage or random loss drops it first;
//! then it waits behind the packets ahead of it for the bottleneck rate
//! (serialization time = size / rate), tail-dropped when that wait would
//! exceed the queue limit; then it propagates for `delay ± jitter`, never
//! overtaking the packet ahead unless `reorder=yes`. See [`LinkSpec`] for
//! the grammar (`delay=25ms,jitter=5ms,loss=1%,rate=10mbit`, outages
//! `2s@5s`). Packets are IPv4; IPv6 is turned off in both namespaces so
//! nothing but the caller's traffic crosses the link.

mod control;
mod delay_line;
mod device;
mod error;
mod forwarder;
mod lab;
pub mod netns;
mod privilege;
mod report;
mod shaper;
mod sockets;
pub mod spec;
mod stats;

pub use control::LinkControl;
pub use device::{PREFIX_LEN, TUN_NAME};
pub use error::NetlabError;
pub use lab::{
    Lab, LabConfig, Side, DEFAULT_CLIENT_ADDRS, DEFAULT_MTU, FIRST_CLIENT_ADDR, MAX_CLIENT_ADDRS,
    SERVER_ADDR,
};
pub use netns::{remove_own_namespaces, remove_stale_namespaces, Netns, NetnsThread};
pub use privilege::check_support;
pub use report::{LinkReport, OutageReport};
pub use sockets::NetnsSockets;
pub use spec::{LinkSpec, LinkSpecError, LinkTable, Outage};
pub use stats::{DirectionStats, EmulatorReport, EmulatorStats};
