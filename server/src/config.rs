//! The server's configuration: one clap struct that is both the binary's CLI
//! and the library's config (the load generator embeds it too).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Serve one server-time feed over `/sse` and `/ws`, on HTTP/1.1, h2c and h2 (TLS).
#[derive(Debug, Clone, Parser)]
#[command(name = "server", version)]
pub struct ServerConfig {
    /// Plain listener: HTTP/1.1 and cleartext h2c (prior knowledge) on one port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,

    /// TLS listener: ALPN h2 and http/1.1.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub https: SocketAddr,

    /// Turn the TLS listener off.
    #[arg(long)]
    pub no_tls: bool,

    /// PEM certificate chain for the TLS listener (default: a generated
    /// self-signed certificate for localhost, 127.0.0.1 and ::1).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key matching --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where to write the generated certificate (default:
    /// sse-ws-workbench/cert-<pid>-<n>.pem in the system temp directory,
    /// removed when the server stops; the path is printed).
    #[arg(long)]
    pub cert_out: Option<PathBuf>,

    /// Feed rate in events per second (fractional allowed, e.g. 0.5).
    #[arg(long, default_value_t = 1.0, value_parser = parse_rate)]
    pub rate: f64,

    /// Pad each event's JSON to this many bytes (0: no padding).
    #[arg(long, default_value_t = 0, value_parser = within::<usize>(0, MAX_PAYLOAD_BYTES))]
    pub payload_bytes: usize,

    /// Events kept for resume (Last-Event-ID / lastEventId).
    #[arg(long, default_value_t = 1024, value_parser = within::<usize>(1, 1_000_000))]
    pub replay: usize,

    /// Events buffered for live fan-out before a slow subscriber is refilled
    /// from the replay ring.
    #[arg(long, default_value_t = 128, value_parser = within::<usize>(1, 1_000_000))]
    pub fanout_buffer: usize,

    /// The SSE `retry:` the server asks EventSource to wait before reconnecting (ms).
    #[arg(long, default_value_t = 1000, value_parser = within::<u64>(0, 3_600_000))]
    pub retry_ms: u64,

    /// Idle SSE keep-alive comment and WebSocket ping interval (seconds, or
    /// a duration such as 500ms). A WebSocket silent for twice this is closed.
    #[arg(long, default_value = "15", value_parser = parse_keepalive)]
    pub keepalive: Duration,

    /// Access-Control-Allow-Origin for /sse, /info and /stats.
    #[arg(long, default_value = "*")]
    pub cors_origin: String,

    /// Largest WebSocket frame or message accepted from a client (bytes);
    /// larger ones are closed with 1009.
    #[arg(long, default_value_t = 64 * 1024, value_parser = within::<usize>(16, 64 << 20))]
    pub ws_max_frame: usize,

    /// Streams (SSE and WS together) beyond which new ones get 503 and, on
    /// HTTP/1.1, a closed connection. Default: the open-file limit less a
    /// reserve for the listeners, the runtime's own files and a share kept
    /// for /stats, /metrics and the page (shown in /stats `limits`).
    #[arg(long, value_parser = within::<usize>(1, 10_000_000))]
    pub max_connections: Option<usize>,

    /// How long shutdown waits for connections to close (seconds or a duration).
    #[arg(long, default_value = "5", value_parser = duration_within("0s", "10min"))]
    pub shutdown_timeout: Duration,

    /// Worker threads (default: one per CPU the process may use; actix
    /// allows at most 512).
    #[arg(long, value_parser = within::<usize>(1, 512))]
    pub workers: Option<usize>,

    /// TCP accept backlog.
    #[arg(long, default_value_t = 4096, value_parser = within::<u32>(1, 65_535))]
    pub backlog: u32,

    /// HTTP/2 initial stream window (bytes, at most 2^31-1). actix exposes
    /// this and the connection window, but no SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long, value_parser = within::<u32>(1, MAX_H2_WINDOW))]
    pub h2_initial_window_size: Option<u32>,

    /// HTTP/2 initial connection window (bytes, at most 2^31-1).
    #[arg(long, value_parser = within::<u32>(1, MAX_H2_WINDOW))]
    pub h2_initial_connection_window_size: Option<u32>,

    /// Require `?token=` (or header `X-Admin-Token`) on admin routes. Without
    /// it, admin routes answer loopback clients only.
    #[arg(long)]
    pub admin_token: Option<String>,

    /// Chaos: drop about this fraction of the open streams every
    /// --chaos-every (0: off). Clients then reconnect and resume; also
    /// `POST /admin/drop?fraction=` once.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub chaos_drop_fraction: f64,

    /// Chaos: how often --chaos-drop-fraction strikes (seconds or a duration).
    #[arg(long, default_value = "10", value_parser = duration_within("10ms", "1day"))]
    pub chaos_every: Duration,

    /// `POST /chat`, `/ws/chat`: tokens per answer unless the prompt asks.
    #[arg(long, default_value_t = 32, value_parser = within::<u32>(0, CHAT_MAX_TOKENS))]
    pub chat_tokens: u32,

    /// `POST /chat`, `/ws/chat`: tokens per second unless the prompt asks.
    #[arg(long, default_value_t = 50.0, value_parser = parse_token_rate)]
    pub chat_token_rate: f64,

    /// Share one feed between server instances through Redis Streams
    /// (`redis://HOST:PORT/`): one instance produces (a lease in Redis),
    /// every instance relays the stream to its own clients, so a client
    /// resumes on any instance. Without it the feed is this process's own.
    #[arg(long, value_parser = parse_redis_url)]
    pub feed_redis: Option<String>,

    /// The shared feed's name in Redis: the stream is NAME, the producer's
    /// lease NAME:lease, the time grid NAME:grid.
    #[arg(long, default_value = "workbench:feed", value_parser = parse_feed_key)]
    pub feed_key: String,

    /// How long the producer's lease lasts unless renewed (every third of
    /// it): a producer that dies is replaced within about this.
    #[arg(long, default_value = "1s", value_parser = duration_within("100ms", "60s"))]
    pub feed_lease: Duration,

    /// Entries the shared stream keeps at least (`XADD … MAXLEN ~ N`): how
    /// far back a client can resume on any instance.
    #[arg(long, default_value_t = 100_000, value_parser = within::<usize>(16, 100_000_000))]
    pub feed_stream_max: usize,

    /// SO_REUSEPORT on the listeners: several server processes bind the
    /// same ports and the kernel spreads new connections among them.
    #[arg(long)]
    pub reuse_port: bool,

    /// `GET /sse/echo`: replies queued per client before `POST /echo` gets 503.
    #[arg(long, default_value_t = 256, value_parser = within::<usize>(1, 1_000_000))]
    pub echo_queue: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::parse_from(["server"])
    }
}

impl ServerConfig {
    /// Both listeners on ephemeral loopback ports and the certificate in a
    /// unique temp file: for tests and the embedded server.
    pub fn ephemeral() -> Self {
        ServerConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Default::default()
        }
    }
}

/// The largest `--payload-bytes`: an event is encoded once and kept in the
/// replay ring, so this times `--replay` is what the ring may hold.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// HTTP/2's largest flow-control window (RFC 9113, 6.9.1).
const MAX_H2_WINDOW: u32 = (1 << 31) - 1;

/// A parser for an integer flag that must lie in `min..=max`: an error
/// naming the range otherwise (clap exits with 2), never a clamp.
fn within<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |s: &str| {
        let n: T = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a whole number from {min} to {max}"))?;
        if n < min || n > max {
            return Err(format!("must be from {min} to {max}, got {s}"));
        }
        Ok(n)
    }
}

/// The slowest feed: one event every 1,000 s. Slower is not a feed, and a
/// rate near zero makes a period no clock can add.
pub const MIN_RATE: f64 = 0.001;
/// The fastest feed the producer is asked for.
pub const MAX_RATE: f64 = 1_000_000.0;

/// Events per second: from [`MIN_RATE`] to [`MAX_RATE`] (shared with the
/// `bare` baseline, which runs the same producer).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    // `contains` also rejects NaN.
    if (MIN_RATE..=MAX_RATE).contains(&r) {
        Ok(r)
    } else {
        Err(format!(
            "rate must be from {MIN_RATE} to {MAX_RATE} events/s, got {s}"
        ))
    }
}

/// The most tokens one chat answer may ask for (`POST /chat`, `/ws/chat`,
/// `--chat-tokens`).
pub const CHAT_MAX_TOKENS: u32 = 100_000;
/// The fastest token rate one answer may ask for (tokens/s).
pub const CHAT_MAX_RATE: f64 = 100_000.0;
/// The slowest token rate one answer may ask for (tokens/s): one token per
/// 100 s. Slower is not a chat, and a rate near zero makes a period no
/// clock can hold (`rate: 1e-300` panicked a worker).
pub const CHAT_MIN_RATE: f64 = 0.01;

/// A token rate within what a prompt may ask.
fn parse_token_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (CHAT_MIN_RATE..=CHAT_MAX_RATE).contains(&r) {
        Ok(r)
    } else {
        Err(format!(
            "token rate must be from {CHAT_MIN_RATE} to {CHAT_MAX_RATE} tokens/s, got {s}"
        ))
    }
}

/// A Redis URL this build can connect to (`redis://`, or `unix://` for a
/// socket; no TLS).
fn parse_redis_url(s: &str) -> Result<String, String> {
    if !(s.starts_with("redis://") || s.starts_with("unix://")) {
        return Err(format!(
            "`{s}` is not a Redis URL: use redis://HOST:PORT/ (TLS is not built in)"
        ));
    }
    redis::Client::open(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("`{s}` is not a Redis URL: {e}"))
}

/// A key prefix: 1 to 200 printable characters without spaces.
fn parse_feed_key(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 200 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{s}`: a feed key is 1 to 200 characters, no spaces or control characters"
        ));
    }
    Ok(s.to_string())
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("a fraction is between 0 and 1, got {s}"))
    }
}

/// A keep-alive of at least 50 ms: zero would close every WebSocket at its
/// first heartbeat and spin the SSE keep-alive timer; at most an hour, so
/// timers built from it stay within what the clock can add.
fn parse_keepalive(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(50) {
        return Err(format!("keep-alive `{s}` is too short: use 50ms or more"));
    }
    if d > Duration::from_secs(3600) {
        return Err(format!("keep-alive `{s}` is too long: use 1h or less"));
    }
    Ok(d)
}

/// A parser for a duration flag that must lie in `min..=max` (humantime).
fn duration_within(
    min: &'static str,
    max: &'static str,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let d = parse_duration(s)?;
        let lo = humantime::parse_duration(min).expect("a valid bound");
        let hi = humantime::parse_duration(max).expect("a valid bound");
        if d < lo || d > hi {
            return Err(format!("must be from {min} to {max}, got {s}"));
        }
        Ok(d)
    }
}

/// Seconds as a plain number (`15`, `0.5`) or a humantime duration (`500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_docs() {
        let c = ServerConfig::default();
        assert_eq!(c.http.to_string(), "127.0.0.1:8080");
        assert_eq!(c.rate, 1.0);
        assert_eq!(c.replay, 1024);
        assert_eq!(c.retry_ms, 1000);
        assert_eq!(c.keepalive, Duration::from_secs(15));
        assert_eq!(c.ws_max_frame, 65536);
    }

    #[test]
    fn rates_and_durations_are_validated() {
        assert!(ServerConfig::try_parse_from(["s", "--rate", "0.5"]).is_ok());
        assert!(ServerConfig::try_parse_from(["s", "--rate", "0"]).is_err());
        assert!(ServerConfig::try_parse_from(["s", "--rate", "nan"]).is_err());
        assert!(ServerConfig::try_parse_from(["s", "--rate", "1e-300"]).is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(ServerConfig::try_parse_from(["s", "--keepalive", "0"]).is_err());
        assert!(ServerConfig::try_parse_from(["s", "--keepalive", "250ms"]).is_ok());
        assert!(ServerConfig::try_parse_from(["s", "--tls-cert", "a.pem"]).is_err());
        assert!(ServerConfig::try_parse_from(["s", "--keepalive", "1000000000000s"]).is_err());
        assert!(ServerConfig::try_parse_from(["s", "--chat-token-rate", "1e-300"]).is_err());
        assert!(ServerConfig::try_parse_from(["s", "--replay", "0"]).is_err());
        assert!(ServerConfig::try_parse_from(["s", "--backlog", "70000"]).is_err());
        let e = ServerConfig::try_parse_from(["s", "--fanout-buffer=-1"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("from 1 to 1000000"), "{e}");
    }

    #[test]
    fn shared_feed_flags_are_checked() {
        let c =
            ServerConfig::try_parse_from(["s", "--feed-redis", "redis://127.0.0.1:6379/"]).unwrap();
        assert_eq!(c.feed_key, "workbench:feed");
        assert_eq!(c.feed_lease, Duration::from_secs(1));
        assert!(!c.reuse_port);
        for bad in [
            vec!["--feed-redis", "http://x"],
            vec!["--feed-redis", "rediss://x:1/"],
            vec!["--feed-key", ""],
            vec!["--feed-key", "a b"],
            vec!["--feed-lease", "10ms"],
            vec!["--feed-stream-max", "1"],
        ] {
            let args = std::iter::once("s").chain(bad.iter().copied());
            let e = ServerConfig::try_parse_from(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert!(ServerConfig::default().feed_redis.is_none());
    }
}
