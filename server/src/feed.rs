//! The producer: one task that ticks at the configured rate and publishes
//! each event, encoded once, to the hub.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::event::{encode_tick, unix_now_ns, EncodedEvent};
use crate::hub::Hub;

/// The feed's timing: when tick `id` is due, in both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    start_unix_ns: u64,
    period_ns: u64,
}

impl Schedule {
    pub fn new(rate_hz: f64) -> Self {
        Schedule {
            start: Instant::now(),
            start_unix_ns: unix_now_ns(),
            period_ns: period_ns(rate_hz),
        }
    }

    fn offset(&self, id: u64) -> Duration {
        Duration::from_nanos((id - 1).saturating_mul(self.period_ns))
    }

    /// When tick `id` (from 1) is due on the monotonic clock.
    pub fn due(&self, id: u64) -> Instant {
        self.start + self.offset(id)
    }

    /// The scheduled wall-clock time of tick `id`: what the event carries.
    pub fn sent_unix_ns(&self, id: u64) -> u64 {
        self.start_unix_ns + self.offset(id).as_nanos() as u64
    }
}

/// The tick period for a rate; rates are validated positive and finite by the CLI.
pub fn period_ns(rate_hz: f64) -> u64 {
    ((1e9 / rate_hz).round() as u64).max(1)
}

/// Ticks into the hub until `stop` is cancelled.
pub async fn run(hub: Arc<Hub>, rate_hz: f64, payload_bytes: usize, stop: CancellationToken) {
    tick(rate_hz, payload_bytes, stop, |event| {
        hub.publish(Arc::new(event))
    })
    .await;
}

/// Ticks until `stop` is cancelled, handing each event, encoded once, to
/// `publish` (the hub here; the bare baseline's fan-out there, so both
/// servers run the very same producer).
///
/// Each tick carries its *scheduled* time. When the producer falls behind (a
/// busy machine, a high rate) it catches up without sleeping, and the delay
/// is visible to every receiver as latency rather than silently absorbed.
pub async fn tick(
    rate_hz: f64,
    payload_bytes: usize,
    stop: CancellationToken,
    mut publish: impl FnMut(EncodedEvent),
) {
    let schedule = Schedule::new(rate_hz);
    let mut id: u64 = 0;
    loop {
        id += 1;
        let due = schedule.due(id);
        if due > Instant::now() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(due) => {}
            }
        } else if stop.is_cancelled() {
            break;
        } else if id.is_multiple_of(64) {
            // Far behind at a high rate: let other tasks on this thread run.
            tokio::task::yield_now().await;
        }
        publish(encode_tick(id, schedule.sent_unix_ns(id), payload_bytes));
    }
    tracing::debug!(last_id = id - 1, "feed stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Item, LastId};

    #[test]
    fn schedule_is_exact() {
        let s = Schedule::new(4.0);
        assert_eq!(s.sent_unix_ns(1), s.start_unix_ns);
        assert_eq!(s.sent_unix_ns(5) - s.sent_unix_ns(1), 1_000_000_000);
        assert_eq!(period_ns(0.5), 2_000_000_000);
        assert_eq!(period_ns(1000.0), 1_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_at_the_rate_with_scheduled_times() {
        let hub = Hub::new(16, 16, 4);
        let (mut sub, _) = hub.subscribe(LastId::None);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(hub.clone(), 10.0, 0, stop.clone()));
        let mut sent = Vec::new();
        for _ in 0..5 {
            match sub.next().await {
                Some(Item::Event(e)) => sent.push((e.id, e.sent_unix_ns)),
                other => panic!("unexpected {other:?}"),
            }
        }
        let ids: Vec<u64> = sent.iter().map(|s| s.0).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        for w in sent.windows(2) {
            assert_eq!(w[1].1 - w[0].1, 100_000_000);
        }
        stop.cancel();
        task.await.unwrap();
    }
}
