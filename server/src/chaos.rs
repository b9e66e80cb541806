//! Faults on purpose: drop a fraction of the streams now and then, or
//! "restart the listener", so clients show how they reconnect and resume.
//!
//! - **Drop a fraction** ([`Hub::drop_fraction`]): every stream took a bucket
//!   token at connect; cancelling whole buckets closes about that fraction,
//!   at no cost per event. Periodically with `--chaos-drop-fraction` and
//!   `--chaos-every` (off by default), or once with `POST /admin/drop?fraction=`.
//! - **Restart** (`POST /admin/restart?pause_ms=N`): every stream is closed
//!   and, for N ms, new requests to the stream routes are refused. actix
//!   cannot close and rebind a listener while it serves, so a restart is
//!   modelled in one of two ways (`mode=`):
//!   - `refuse` (default): `503` with `Retry-After`, what a load balancer in
//!     front of a restarting server answers. Idle keep-alive and HTTP/2
//!     connections stay open; only streams close. Note that a browser's
//!     EventSource gives up on a 503 (it retries only network errors).
//!   - `pause`: actix stops accepting connections (`ServerHandle::pause`)
//!     for N ms; new connections wait in the kernel's backlog and are served
//!     when it resumes, like a listener that came back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, DROP_BUCKETS};
use crate::state::AppState;

/// The longest restart pause the admin route accepts.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Shared fault state: whether the server is "restarting".
#[derive(Debug)]
pub struct Chaos {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which stream routes are refused (0: never).
    refuse_until_ns: AtomicU64,
    /// Set once the server runs: for `mode=pause`.
    handle: OnceLock<ServerHandle>,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            epoch: Instant::now(),
            refuse_until_ns: AtomicU64::new(0),
            handle: OnceLock::new(),
        }
    }
}

impl Chaos {
    /// Gives `mode=pause` the running server's handle.
    pub fn set_handle(&self, handle: ServerHandle) {
        let _ = self.handle.set(handle);
    }

    /// The running server's handle, once it runs.
    pub fn handle(&self) -> Option<ServerHandle> {
        self.handle.get().cloned()
    }

    /// Refuses stream routes for `pause` from now.
    pub fn refuse_for(&self, pause: Duration) {
        let until = self.epoch.elapsed() + pause;
        self.refuse_until_ns
            .store(until.as_nanos() as u64, Ordering::Release);
    }

    /// How much longer stream routes are refused, if they are.
    pub fn refusing(&self) -> Option<Duration> {
        let until = self.refuse_until_ns.load(Ordering::Acquire);
        if until == 0 {
            return None;
        }
        let now = self.epoch.elapsed().as_nanos() as u64;
        (until > now).then(|| Duration::from_nanos(until - now))
    }
}

/// Routes a restart refuses: every stream and request route, not the admin,
/// stats or page routes (so a load generator can still watch the server).
fn is_stream_route(path: &str) -> bool {
    ["/sse", "/ws", "/chat", "/echo"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Middleware: `503 Retry-After` on stream routes while restarting. Costs
/// one atomic load per request, nothing per event.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let refusing = req
        .app_data::<web::Data<Chaos>>()
        .and_then(|c| c.refusing())
        .filter(|_| is_stream_route(req.path()));
    if let Some(left) = refusing {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            state.hub.stats.counters.restart_refusals.inc();
        }
        let secs = left.as_secs_f64().ceil().max(1.0) as u64;
        let res = HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, secs.to_string()))
            .body(format!(
                "restarting: streams are refused for {} ms more (POST /admin/restart)\n",
                left.as_millis()
            ));
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Drops `fraction` of the streams every `every` until `stop` (the
/// `--chaos-drop-fraction` timer).
pub async fn run(hub: Arc<Hub>, fraction: f64, every: Duration, stop: CancellationToken) {
    let every = every.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let buckets = drop_fraction(&hub, fraction);
                tracing::info!(fraction, buckets, "chaos: dropped a fraction of the streams");
            }
        }
    }
}

/// Drops a fraction and counts it; returns the buckets dropped.
pub fn drop_fraction(hub: &Hub, fraction: f64) -> usize {
    hub.stats.counters.chaos_drops.inc();
    hub.drop_fraction(fraction)
}

/// The answer to a fraction drop.
#[derive(Debug, Serialize, Deserialize)]
pub struct FractionDropped {
    /// Streams open when the drop was asked.
    pub open: usize,
    pub fraction: f64,
    pub buckets_dropped: usize,
    pub buckets: usize,
}

/// `POST /admin/drop?fraction=f`: the body of the answer.
pub fn fraction_body(hub: &Hub, fraction: f64) -> FractionDropped {
    let open = hub.open_streams();
    let buckets_dropped = drop_fraction(hub, fraction);
    FractionDropped {
        open,
        fraction,
        buckets_dropped,
        buckets: DROP_BUCKETS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_expires() {
        let c = Chaos::default();
        assert!(c.refusing().is_none());
        c.refuse_for(Duration::from_millis(50));
        assert!(c.refusing().is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.refusing().is_none());
    }

    #[test]
    fn only_stream_routes_are_refused() {
        for p in ["/sse", "/sse/echo", "/ws", "/ws/chat", "/chat", "/echo"] {
            assert!(is_stream_route(p), "{p}");
        }
        for p in ["/stats", "/admin/restart", "/info", "/", "/metrics"] {
            assert!(!is_stream_route(p), "{p}");
        }
    }
}
