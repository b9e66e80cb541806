//! `loadgen limit`: the browser model of the six-connection limit.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::feed::EdgeArgs;
use super::numbers::{millis, ranged};
use super::server::ServerArgs;
use crate::result::{
    LimitCase, LimitSpec, Protocol, BROWSER_H1_PER_HOST, BROWSER_H2_DEFAULT_STREAMS,
};

/// `loadgen limit`: one browser-model configuration per protocol, or the
/// suite's matrix.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Origins to try, comma-separated: h1 (HTTP/1.1), h2 (HTTP/2 over TLS).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "h1,h2")]
    pub protocol: Vec<Protocol>,
    /// Tabs per browser profile (they share the profile's pools).
    #[arg(long, default_value_t = 1, value_parser = ranged(LimitCase::TABS))]
    pub tabs: usize,
    /// EventSources each tab opens.
    #[arg(long, default_value_t = 8, value_parser = ranged(LimitCase::STREAMS_PER_TAB))]
    pub streams_per_tab: usize,
    /// Browser profiles (each has its own pools, like an incognito window).
    #[arg(long, default_value_t = 1, value_parser = ranged(LimitCase::PROFILES))]
    pub profiles: usize,
    /// Host names the streams are spread over (sharding): 127.0.0.1,
    /// localhost, shard2.localhost... all reaching the one server.
    #[arg(long, default_value_t = 1, value_parser = ranged(LimitCase::HOSTS))]
    pub hosts: usize,
    /// WebSockets each tab opens alongside the streams.
    #[arg(long, default_value_t = 0, value_parser = ranged(LimitCase::WS_PER_TAB))]
    pub ws_per_tab: usize,
    /// The workaround: one stream per profile, fanned out to every tab.
    #[arg(long)]
    pub shared_stream: bool,
    /// HTTP/1.1 connections per (profile, scheme, host, port): Chromium's 6.
    #[arg(long, default_value_t = BROWSER_H1_PER_HOST, value_parser = ranged(LimitSpec::H1_PER_HOST))]
    pub h1_per_host: usize,
    /// HTTP/2 streams per connection when the server announces no
    /// SETTINGS_MAX_CONCURRENT_STREAMS (actix announces none): Chromium's 100.
    #[arg(long, default_value_t = BROWSER_H2_DEFAULT_STREAMS, value_parser = ranged(LimitSpec::H2_DEFAULT_STREAMS))]
    pub h2_default_streams: u32,
    /// How long the plain GET may wait before it counts as stalled.
    #[arg(long, default_value = "1500ms", value_parser = millis(LimitSpec::MILLIS))]
    pub get_cap: Duration,
    /// Run the suite's limit matrix instead of one configuration.
    #[arg(long)]
    pub suite: bool,
    /// Where to write result.json (default: results/<timestamp>-limit/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No summary table.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub edge: EdgeArgs,
}

impl LimitArgs {
    /// The model's settings from these flags, checked.
    pub fn spec(&self) -> Result<LimitSpec, String> {
        let mut spec = if self.suite {
            crate::limit::suite()
        } else {
            let mut protocols = self.protocol.clone();
            protocols.sort();
            protocols.dedup();
            LimitSpec {
                cases: protocols
                    .into_iter()
                    .map(|protocol| LimitCase {
                        protocol,
                        profiles: self.profiles,
                        tabs: self.tabs,
                        streams_per_tab: self.streams_per_tab,
                        hosts: self.hosts,
                        ws_per_tab: self.ws_per_tab,
                        shared_stream: self.shared_stream,
                    })
                    .collect(),
                get_cap_ms: self.get_cap.as_millis() as u64,
                ..Default::default()
            }
        };
        if let Some(kind) = &self.edge.edge {
            spec.edge = Some(kind.clone());
            spec.edge_config = Some(self.edge.edge_config.clone());
        }
        spec.h1_per_host = self.h1_per_host;
        spec.h2_default_streams = self.h2_default_streams;
        spec.validate().map_err(|e| {
            format!("{e} (--profiles, --tabs, --streams-per-tab, --ws-per-tab, --hosts)")
        })?;
        Ok(spec)
    }
}
