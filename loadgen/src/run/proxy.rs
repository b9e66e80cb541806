//! The edge proxy's figures around a wire's hold, read from /proc at the
//! same four moments as the server's `/stats`: before connecting, with the
//! connections held, at the end of the hold, after they closed.

use edge::Edge;

use crate::result::ProxyCost;

/// The proxy at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxySample {
    pub processes: usize,
    pub rss_bytes: u64,
    pub cpu_us: u64,
    /// Established connections to the upstream server.
    pub upstream: usize,
}

/// Reads the proxy now (a failed read of its sockets counts 0).
pub fn sample(edge: &Edge) -> ProxySample {
    let f = edge.footprint();
    ProxySample {
        processes: f.processes,
        rss_bytes: f.rss_bytes,
        cpu_us: u64::try_from(f.cpu.as_micros()).unwrap_or(u64::MAX),
        upstream: edge.upstream_connections().unwrap_or(0),
    }
}

/// The four readings of one wire run.
#[derive(Debug, Clone, Default)]
pub struct ProxySamples {
    pub before: Option<ProxySample>,
    pub held: Option<ProxySample>,
    pub end: Option<ProxySample>,
    pub after: Option<ProxySample>,
}

impl ProxySamples {
    /// Reads into `slot` if there is a proxy.
    pub fn take(slot: &mut Option<ProxySample>, edge: Option<&Edge>) {
        if let Some(e) = edge {
            *slot = Some(sample(e));
        }
    }

    /// The wire's proxy cost, when all four readings were taken.
    pub fn cost(&self, opened: usize, events: u64) -> Option<ProxyCost> {
        let (b, h, e, a) = (self.before?, self.held?, self.end?, self.after?);
        let cpu = e.cpu_us.saturating_sub(h.cpu_us);
        Some(ProxyCost {
            processes: h.processes,
            rss_before: b.rss_bytes,
            rss_held: h.rss_bytes,
            rss_after: a.rss_bytes,
            rss_per_connection: h.rss_bytes.saturating_sub(b.rss_bytes) as f64
                / opened.max(1) as f64,
            cpu_us_hold: cpu,
            cpu_us_per_event: if events == 0 {
                0.0
            } else {
                cpu as f64 / events as f64
            },
            upstream_connections: h.upstream,
            upstream_per_stream: h.upstream as f64 / opened.max(1) as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_needs_every_reading_and_divides_by_streams() {
        let s = |rss, cpu_us, upstream| ProxySample {
            processes: 2,
            rss_bytes: rss,
            cpu_us,
            upstream,
        };
        let mut samples = ProxySamples {
            before: Some(s(1_000, 0, 0)),
            held: Some(s(11_000, 500, 10)),
            end: Some(s(12_000, 2_500, 10)),
            after: None,
        };
        assert_eq!(samples.cost(10, 100), None);
        samples.after = Some(s(2_000, 2_600, 0));
        let c = samples.cost(10, 100).unwrap();
        assert_eq!(c.rss_per_connection, 1_000.0);
        assert_eq!(c.cpu_us_hold, 2_000);
        assert_eq!(c.cpu_us_per_event, 20.0);
        assert_eq!(c.upstream_per_stream, 1.0);
    }
}
