//! Runs the feed: scenarios wire by wire against a started server, each
//! wire's connections ramped, held, drained and measured, in this process
//! or spread over worker processes.
//!
//! - [`connection`]: the one read loop and reconnect loop (hooks per
//!   message), used here, by `scenarios` and by `limit`; `token_watch`:
//!   how that loop waits on the stop signals without polling them per event.
//! - [`feed`]: the feed connection's hook (records into recorder shards);
//!   `lanes`: the thread-per-core runtimes its connection tasks run on.
//! - [`driver`]: one wire in this process ([`WireRun`], [`run_wire`]);
//!   [`workers`]: one wire over several processes, each a [`worker`].
//! - [`spec`], [`live`], [`outcome`]: what a wire runs, shows while
//!   running, and measured.
//! - [`server`]: the one server starter; [`options`]: which server.
//! - [`link`]: a scenario over an emulated link (the lab, the server's
//!   place in it, the client side's socket hook, the hold's hooks).
//! - [`source`]: what a wire connects to (the feed server or any server);
//!   [`gauge`]: how the server's side is read (`/stats`, /proc, nothing).
//! - [`server`]: the one server starter (and the edge proxy in front of
//!   it); [`options`]: which server; [`proxy`]: the edge's figures.
//! - [`loaded`]: one wire against what is loaded, in one process or
//!   several; [`observer`]: what a progress view is told.
//! - [`stacks`]: the stacks (actix, bare, node) started in child processes,
//!   a scenario run on each.
//! - [`runner`]: scenarios end to end into a `result::RunResult`.
//! - [`shard`]: one load generator's share of a run spread over several
//!   (`--shard I/N`, `--start-at`).

pub mod connection;
pub mod driver;
pub mod feed;
pub mod gauge;
mod lanes;
pub mod link;
pub mod live;
pub mod loaded;
pub mod observer;
pub mod options;
pub mod outcome;
pub mod proxy;
pub mod runner;
pub mod server;
pub mod shard;
pub mod source;
pub mod spec;
pub mod stacks;
mod token_watch;
pub mod worker;
pub mod workers;

pub use driver::{run_wire, run_wire_on, WireRun};
pub use gauge::{RssSettling, ServerGauge};
pub use link::{link_support, remove_link_files, HoldHooks, LinkError, LinkRun, NoHooks};
pub use live::{Live, LiveSnapshot};
pub use loaded::{drive_wire, Loaded};
pub use observer::{Observer, Silent};
pub use options::{RunOptions, ServerChoice};
pub use outcome::{Finished, Held, WireOutcome};
pub use runner::run_scenarios;
pub use server::{serve, EmbeddedServer, Ready, ServerSettings, StartedServer};
pub use shard::Shard;
pub use source::Source;
pub use spec::{WireSpec, BROWSER_H2_STREAMS};
pub use stacks::{serve_bare, StackServer};
pub use worker::serve_worker;
