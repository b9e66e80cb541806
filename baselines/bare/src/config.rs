//! The command line, which is also the library's configuration.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;

/// A minimal tokio SSE + WebSocket broadcaster: the feed of the workbench's
/// server with no web framework, as a ceiling to compare actix with.
#[derive(Debug, Clone, Parser)]
#[command(name = "bare", version)]
pub struct BareConfig {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one (the ready line says which).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// Ticks per second.
    #[arg(long, default_value_t = 1.0, value_parser = server::config::parse_rate)]
    pub rate: f64,
    /// Pad each tick's JSON up to this many bytes (0: no padding).
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// Events a subscriber may fall behind before it is closed and counted
    /// (`lagged_closed` in /stats). Rounded up to a power of two: the fan-out
    /// channel's size.
    #[arg(long, default_value_t = 1024, value_parser = parse_queue)]
    pub queue: usize,
    /// Events kept for `Last-Event-ID` / `lastEventId` resume. Keep it at
    /// least twice `--queue`, so a subscriber closed for lagging can resume
    /// without a gap.
    #[arg(long, default_value_t = 4096)]
    pub replay: usize,
    /// The `retry:` reconnect delay announced to SSE clients, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub retry_ms: u64,
    /// After this long without a write, send `: keep-alive` (SSE) or a ping
    /// (WebSocket). Seconds or a duration (`500ms`).
    #[arg(long, default_value = "15", value_parser = server::config::parse_duration)]
    pub keepalive: Duration,
    /// How long a client may take to send its request head.
    #[arg(long, default_value = "10", value_parser = server::config::parse_duration)]
    pub request_timeout: Duration,
    /// How long shutdown waits for connections to close.
    #[arg(long, default_value = "5", value_parser = server::config::parse_duration)]
    pub shutdown_timeout: Duration,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Keep running when stdin closes (by default a closed stdin stops the
    /// server, so a parent that dies takes it along). Needed when started
    /// in the background from a script, where stdin is /dev/null.
    #[arg(long)]
    pub ignore_stdin: bool,
}

impl BareConfig {
    /// Defaults on a free loopback port, not watching stdin: for tests and
    /// embedding.
    pub fn ephemeral() -> Self {
        BareConfig {
            port: 0,
            ignore_stdin: true,
            ..BareConfig::default()
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// How often a subscriber whose socket is full checks how far behind it
    /// is: a quarter of the time the queue spans, within 5 ms..250 ms.
    pub fn lag_check_every(&self) -> Duration {
        let span = self.queue as f64 / self.rate / 4.0;
        Duration::from_secs_f64(span.clamp(0.005, 0.25))
    }
}

impl Default for BareConfig {
    /// The documented defaults (those of `--help`).
    fn default() -> Self {
        BareConfig::parse_from(["bare"])
    }
}

fn parse_queue(s: &str) -> Result<usize, String> {
    let queue: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if (1..=1 << 20).contains(&queue) {
        Ok(queue.next_power_of_two())
    } else {
        Err(format!("queue must be from 1 to 1048576 events, got {s}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let c = BareConfig::default();
        assert_eq!(c.port, 8081);
        assert_eq!(c.queue, 1024);
        assert!(BareConfig::try_parse_from(["bare", "--rate", "0"]).is_err());
        assert!(BareConfig::try_parse_from(["bare", "--rate", "nan"]).is_err());
        assert!(BareConfig::try_parse_from(["bare", "--queue", "0"]).is_err());
        let c = BareConfig::try_parse_from(["bare", "--queue", "300"]).unwrap();
        assert_eq!(c.queue, 512);
        assert_eq!(BareConfig::ephemeral().listen_addr().port(), 0);
    }

    #[test]
    fn lag_checks_are_bounded() {
        let mut c = BareConfig {
            rate: 1000.0,
            queue: 256,
            ..BareConfig::default()
        };
        assert_eq!(c.lag_check_every(), Duration::from_millis(64));
        c.rate = 1.0;
        assert_eq!(c.lag_check_every(), Duration::from_millis(250));
        c.rate = 1e6;
        assert_eq!(c.lag_check_every(), Duration::from_millis(5));
    }
}
