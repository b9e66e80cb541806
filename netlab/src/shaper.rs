//! The link model for one direction: given a packet's arrival time and
//! size, decide whether it is lost and when it leaves.
//!
//! Pure arithmetic over injected time and a seeded generator, so the model
//! is tested exactly without a network; the forwarder supplies real time.
//!
//! Order of effects, as on a real path: an outage or random loss takes the
//! packet first (it never occupies the bottleneck); the packet then waits
//! for the bottleneck behind those queued ahead of it (FIFO, serialization
//! time = size / rate; tail drop when the wait would exceed the queue
//! limit); it then propagates for `delay ± jitter`. Without `reorder` a
//! packet never leaves before the one ahead of it, so jitter bunches packets
//! instead of overtaking.

use std::time::{Duration, Instant};

use crate::spec::LinkSpec;

/// Why the model dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    Loss,
    Outage,
    Queue,
}

/// What happens to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Leave at this instant.
    Forward(Instant),
    Drop(DropReason),
}

/// One direction's link state.
#[derive(Debug)]
pub(crate) struct Shaper {
    spec: LinkSpec,
    loss: f64,
    rng: fastrand::Rng,
    /// When the bottleneck finishes sending what is queued.
    link_free_at: Option<Instant>,
    /// When the last admitted packet leaves (for the no-reordering rule).
    last_due: Option<Instant>,
}

impl Shaper {
    pub(crate) fn new(spec: LinkSpec, seed: u64) -> Self {
        Self {
            loss: spec.loss_fraction(),
            spec,
            rng: fastrand::Rng::with_seed(seed),
            link_free_at: None,
            last_due: None,
        }
    }

    /// Takes new settings; the queue and ordering state carry over, so
    /// packets admitted before keep their place.
    pub(crate) fn set_spec(&mut self, spec: LinkSpec) {
        self.loss = spec.loss_fraction();
        self.spec = spec;
    }

    pub(crate) fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// Decides the fate of a packet of `len` bytes that arrived at `now`;
    /// `link_down` is whether an outage holds at that moment.
    pub(crate) fn admit(&mut self, now: Instant, len: usize, link_down: bool) -> Verdict {
        if link_down {
            return Verdict::Drop(DropReason::Outage);
        }
        if self.loss > 0.0 && self.rng.f64() < self.loss {
            return Verdict::Drop(DropReason::Loss);
        }
        let mut departs = now;
        if let Some(rate) = self.spec.rate_bps {
            let start = self.link_free_at.map_or(now, |free| free.max(now));
            if start - now > self.spec.queue {
                return Verdict::Drop(DropReason::Queue);
            }
            let end = start + serialization_time(len, rate);
            self.link_free_at = Some(end);
            departs = end;
        }
        let mut due = departs + self.propagation_delay();
        if !self.spec.reorder {
            if let Some(last) = self.last_due {
                due = due.max(last);
            }
            self.last_due = Some(due);
        }
        Verdict::Forward(due)
    }

    /// `delay ± jitter`, uniform; validation guarantees jitter ≤ delay.
    fn propagation_delay(&mut self) -> Duration {
        let (delay, jitter) = (self.spec.delay, self.spec.jitter);
        if jitter.is_zero() {
            return delay;
        }
        let span = jitter.as_nanos() as u64 * 2;
        (delay - jitter) + Duration::from_nanos(self.rng.u64(0..=span))
    }
}

/// How long `len` bytes occupy a link of `rate` bits per second.
pub(crate) fn serialization_time(len: usize, rate_bps: u64) -> Duration {
    // len ≤ 64 KiB and rate ≥ 8 kbit/s: the product fits in u64 easily.
    Duration::from_nanos(len as u64 * 8 * 1_000_000_000 / rate_bps.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn due(v: Verdict) -> Instant {
        match v {
            Verdict::Forward(t) => t,
            Verdict::Drop(d) => panic!("dropped: {d:?}"),
        }
    }

    #[test]
    fn delay_only() {
        let mut s = Shaper::new("delay=25ms".parse().unwrap(), 1);
        let t0 = Instant::now();
        assert_eq!(due(s.admit(t0, 1500, false)), t0 + ms(25));
        assert_eq!(due(s.admit(t0 + ms(1), 60, false)), t0 + ms(26));
    }

    #[test]
    fn outage_drops_before_anything_else() {
        let mut s = Shaper::new("delay=25ms".parse().unwrap(), 1);
        assert_eq!(
            s.admit(Instant::now(), 100, true),
            Verdict::Drop(DropReason::Outage)
        );
    }

    #[test]
    fn rate_serializes_back_to_back_packets() {
        // 1 Mbit/s: 1250 bytes take 10 ms.
        let mut s = Shaper::new("rate=1mbit,delay=5ms".parse().unwrap(), 1);
        let t0 = Instant::now();
        assert_eq!(due(s.admit(t0, 1250, false)), t0 + ms(15));
        assert_eq!(due(s.admit(t0, 1250, false)), t0 + ms(25));
        assert_eq!(due(s.admit(t0, 1250, false)), t0 + ms(35));
        // A packet arriving after the link went idle starts at once.
        assert_eq!(due(s.admit(t0 + ms(100), 1250, false)), t0 + ms(115));
    }

    #[test]
    fn full_queue_tail_drops() {
        // 1 Mbit/s, 1250-byte packets take 10 ms; the queue holds 25 ms of wait.
        let mut s = Shaper::new("rate=1mbit,queue=25ms".parse().unwrap(), 1);
        let t0 = Instant::now();
        let verdicts: Vec<_> = (0..5).map(|_| s.admit(t0, 1250, false)).collect();
        // Waits: 0, 10, 20 ms accepted; 30 ms exceeds 25 ms.
        assert!(matches!(verdicts[2], Verdict::Forward(_)));
        assert_eq!(verdicts[3], Verdict::Drop(DropReason::Queue));
        assert_eq!(verdicts[4], Verdict::Drop(DropReason::Queue));
        // Once the queue drains, packets pass again.
        assert!(matches!(
            s.admit(t0 + ms(30), 1250, false),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn loss_is_near_the_fraction() {
        let mut s = Shaper::new("loss=3%".parse().unwrap(), 42);
        let t0 = Instant::now();
        let n = 100_000;
        let lost = (0..n)
            .filter(|_| s.admit(t0, 100, false) == Verdict::Drop(DropReason::Loss))
            .count();
        let fraction = lost as f64 / n as f64;
        assert!((fraction - 0.03).abs() < 0.003, "{fraction}");
    }

    #[test]
    fn jitter_stays_in_bounds_and_never_reorders() {
        let mut s = Shaper::new("delay=20ms,jitter=10ms".parse().unwrap(), 7);
        let t0 = Instant::now();
        let mut last = t0;
        for i in 0..10_000u64 {
            let arrival = t0 + Duration::from_micros(i * 100);
            let d = due(s.admit(arrival, 100, false));
            assert!(d >= arrival + ms(10), "never below delay - jitter");
            assert!(d >= last, "packet {i} overtook the one ahead");
            last = d;
        }
    }

    #[test]
    fn sparse_packets_see_the_whole_jitter_range() {
        // Packets further apart than 2 × jitter never catch up with each
        // other, so the clamp never applies and delays span delay ± jitter.
        let mut s = Shaper::new("delay=20ms,jitter=10ms".parse().unwrap(), 7);
        let t0 = Instant::now();
        let delays: Vec<Duration> = (0..2_000u64)
            .map(|i| {
                let arrival = t0 + ms(i * 25);
                due(s.admit(arrival, 100, false)) - arrival
            })
            .collect();
        assert!(delays.iter().all(|d| (ms(10)..=ms(30)).contains(d)));
        assert!(delays.iter().any(|d| *d < ms(12)));
        assert!(delays.iter().any(|d| *d > ms(28)));
    }

    #[test]
    fn reorder_lets_packets_overtake() {
        let mut s = Shaper::new("delay=20ms,jitter=10ms,reorder=yes".parse().unwrap(), 7);
        let t0 = Instant::now();
        let dues: Vec<_> = (0..1000u64)
            .map(|i| due(s.admit(t0 + Duration::from_micros(i * 100), 100, false)))
            .collect();
        assert!(dues.windows(2).any(|w| w[1] < w[0]));
        for (i, d) in dues.iter().enumerate() {
            let arrival = t0 + Duration::from_micros(i as u64 * 100);
            assert!(*d >= arrival + ms(10) && *d <= arrival + ms(30));
        }
    }

    #[test]
    fn serialization_time_of_mobile_link() {
        // 1.5 Mbit/s: a 1500-byte packet takes 8 ms.
        assert_eq!(serialization_time(1500, 1_500_000), ms(8));
    }
}
