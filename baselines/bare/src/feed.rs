//! The producer: ticks at the configured rate on the server's schedule and
//! encodes each event once, with the server's own encoder, so both stacks
//! put identical bytes on the wire.

use std::sync::Arc;

use server::event::encode_tick;
use server::feed::Schedule;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fanout::{Fanout, FeedEvent};

/// Ticks until `stop` is cancelled.
///
/// Each tick carries its *scheduled* time (`Schedule::sent_unix_ns`): a
/// producer that runs late catches up without sleeping, and the delay shows
/// at every receiver as latency instead of being absorbed.
pub async fn run(fanout: Arc<Fanout>, rate_hz: f64, payload_bytes: usize, stop: CancellationToken) {
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
            // Far behind at a high rate: let the subscribers on this thread run.
            tokio::task::yield_now().await;
        }
        let event = encode_tick(id, schedule.sent_unix_ns(id), payload_bytes);
        fanout.publish(Arc::new(FeedEvent::new(Arc::new(event))));
    }
    tracing::debug!(last_id = id - 1, "feed stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use server::hub::LastId;

    #[tokio::test(start_paused = true)]
    async fn ticks_on_the_schedule() {
        let fanout = Arc::new(Fanout::new(16, 16));
        let mut sub = fanout.subscribe(LastId::None);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(fanout.clone(), 10.0, 0, stop.clone()));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let e = sub.rx.recv().await.unwrap();
            seen.push((e.id(), e.event.sent_unix_ns));
        }
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
        for pair in seen.windows(2) {
            assert_eq!(pair[1].1 - pair[0].1, 100_000_000);
        }
        stop.cancel();
        task.await.unwrap();
    }
}
