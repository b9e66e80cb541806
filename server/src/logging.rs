//! The server's logs: on stderr (stdout carries the banner, and the load
//! generator's ready line when it embeds the server), with colours only
//! when stderr is a terminal, and throttled so that no client can flood them.
//!
//! Our own code logs client mistakes (a malformed frame, a bad number, a
//! refused stream) at DEBUG; ERROR is for the server's own faults. actix's
//! internals are not ours to change: they log each malformed request at
//! ERROR, and every failed `accept` (EMFILE) every half second. [`Throttle`]
//! lets through the first line of each of their call sites per
//! [`THROTTLE_WINDOW`] and counts the rest (`/stats`
//! `process.log_lines_suppressed`).

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Level, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// At most one line per actix call site in this window.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(10);

static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Lines the throttle dropped since the process started.
pub fn suppressed() -> u64 {
    SUPPRESSED.load(Ordering::Relaxed)
}

/// Installs the subscriber: `RUST_LOG` (default `info`), stderr, colours on
/// a terminal only, actix's warnings and errors throttled. A second call
/// (another server in the same process) keeps the first.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(Throttle::default());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
}

/// A per-layer filter: lets through the first WARN or ERROR of each actix
/// call site per [`THROTTLE_WINDOW`] and counts the others.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Mutex<HashMap<Identifier, Instant>>,
}

impl Throttle {
    fn throttled(meta: &Metadata<'_>) -> bool {
        meta.is_event() && *meta.level() <= Level::WARN && meta.target().starts_with("actix_")
    }

    /// Whether a line from this call site may go out now.
    fn admit(&self, meta: &Metadata<'_>, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(&meta.callsite()) {
            Some(at) if now.duration_since(*at) < THROTTLE_WINDOW => {
                SUPPRESSED.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ => {
                last.insert(meta.callsite(), now);
                true
            }
        }
    }
}

impl<S> Filter<S> for Throttle {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        !Self::throttled(meta) || self.admit(meta, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_passes_one_line_per_window_and_counts_the_rest() {
        let throttle = Throttle::default();
        // Metadata of a real call site, as actix's would be.
        struct Cs;
        static CS: Cs = Cs;
        static META: Metadata<'static> = tracing::metadata!(
            name: "accept error",
            target: "actix_server::accept",
            level: Level::ERROR,
            fields: &[],
            callsite: &CS,
            kind: tracing::metadata::Kind::EVENT,
        );
        impl tracing::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                &META
            }
        }
        let before = suppressed();
        let t0 = Instant::now();
        assert!(throttle.admit(&META, t0));
        for ms in [1, 500, 9_000] {
            assert!(!throttle.admit(&META, t0 + Duration::from_millis(ms)));
        }
        assert!(throttle.admit(&META, t0 + THROTTLE_WINDOW));
        assert!(suppressed() - before >= 3);
        assert!(Throttle::throttled(&META));
    }
}
