//! The load generator: opens many SSE and WS connections to the feed server
//! over HTTP/1.1, h2 (TLS) and h2c, and records what each receives.

pub mod cli;
pub mod client;
pub mod compare;
pub mod connection;
pub mod driver;
pub mod embedded;
pub mod event_stream;
pub mod h2_pool;
pub mod limit;
pub mod merge;
pub mod monitor;
pub mod net;
pub mod printer;
pub mod probe;
pub mod recorder;
pub mod report;
pub mod result;
pub mod runner;
pub mod scenario;
pub mod scenarios;
pub mod sse_client;
pub mod target;
pub mod tls_config;
pub mod wire;
pub mod workers;
pub mod ws_client;
