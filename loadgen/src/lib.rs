//! The load generator: opens many SSE and WS connections to the feed server
//! over HTTP/1.1, h2 (TLS) and h2c, and records what each receives.
//!
//! # Layout
//!
//! Layers run one way: a module uses only the ones listed above it (a test,
//! `tests/layers.rs`, fails on any import cycle between modules or files).
//!
//! - [`wire`]: the wire names, shared with the server.
//! - [`result`]: `result.json`'s schema and every scenario's settings (with
//!   the ranges every number is checked against); nothing about connections.
//! - [`client`]: the connection core: endpoints, the dialer (socket hook,
//!   TLS, ALPN), the SSE reader, the WebSocket client, the HTTP/2 pool, the
//!   opener, the typed `/stats` probe.
//! - [`measure`]: what connections measure: the recorder, id tracking,
//!   duration histograms; over an emulated link, stalls and outage recovery.
//! - [`run`]: the read and reconnect loops, the feed driver (one process or
//!   several), the server starter, a scenario's emulated link, the
//!   scenario runner.
//! - [`scenarios`] (chat, echo, faults) and [`limit`] (the browser model of
//!   the six-connection limit): runs beyond the feed, on the same core.
//! - [`doctor`]: checks a deployed endpoint for proxy and protocol
//!   pitfalls, on the same core.
//! - [`report`]: report.md, report.html (the Answer first, then every
//!   section with its charts), the runs index and the terminal's tables,
//!   from results alone.
//! - [`compare`], [`merge`]: two or more results into a comparison or one result.
//! - [`monitor`]: the live progress view.
//! - [`cli`]: the command line, parsed and checked into what to run.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod compare;
pub mod doctor;
pub mod limit;
pub mod measure;
pub mod merge;
pub mod monitor;
pub mod report;
pub mod result;
pub mod run;
pub mod scenarios;
pub mod wire;
