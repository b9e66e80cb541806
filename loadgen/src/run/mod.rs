//! Runs the feed: scenarios wire by wire against a started server, each
//! wire's connections ramped, held, drained and measured, in this process
//! or spread over worker processes.
//!
//! - [`connection`]: the one read loop and reconnect loop (hooks per
//!   message), used here, by `scenarios` and by `limit`.
//! - [`feed`]: the feed connection's hook (records into recorder shards).
//! - [`driver`]: one wire in this process ([`WireRun`], [`run_wire`]);
//!   [`workers`]: one wire over several processes, each a [`worker`].
//! - [`spec`], [`live`], [`outcome`]: what a wire runs, shows while
//!   running, and measured.
//! - [`server`]: the one server starter (and the edge proxy in front of
//!   it); [`options`]: which server; [`proxy`]: the edge's figures.
//! - [`runner`]: scenarios end to end into a `result::RunResult`.

pub mod connection;
pub mod driver;
pub mod feed;
pub mod live;
pub mod options;
pub mod outcome;
pub mod proxy;
pub mod runner;
pub mod server;
pub mod spec;
pub mod worker;
pub mod workers;

pub use driver::{run_wire, settle_after, WireRun};
pub use live::{Live, LiveSnapshot};
pub use options::{RunOptions, ServerChoice};
pub use outcome::{Finished, Held, WireOutcome};
pub use runner::{run_scenarios, Observer, Silent};
pub use server::{serve, EmbeddedServer, Ready, ServerSettings, StartedServer};
pub use spec::{WireSpec, BROWSER_H2_STREAMS};
pub use worker::serve_worker;
