//! The shared feed's figures (`--feed-redis`): whether this instance leads,
//! whether Redis is reachable, how far it has read, and what happened, for
//! `/stats` (`broker`) and `/metrics` (`workbench_broker_*`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::counters::counters;

counters! {
    /// What the shared feed's tasks counted.
    BrokerCounters / BrokerCounterValues {
    connects: "Connections made to Redis (the first included)",
    disconnects: "Connections to Redis lost or given up (a reconnect with backoff follows)",
    redis_errors: "Redis commands that failed",
    takeovers: "Times this instance took the producer's lease",
    stepdowns: "Times this instance stopped producing (lease lost, renewal failed, Redis gone)",
    published: "Ticks this instance wrote to the stream as the producer",
    published_late: "Ticks written after the next one was already due (catching up after a failover or an outage)",
    duplicate_ids_refused: "Ticks Redis refused because another producer had written that id (no duplicate reaches the stream)",
    restored: "Events put back into an emptied stream (a restarted Redis) from this instance's ring",
    relayed: "Events read from the stream into this instance's hub",
    relay_gap_ids: "Ids the stream no longer held when this instance read past them (announced as gaps)",
    archive_reads: "Pages read from the stream for subscribers older than the ring",
    archive_events: "Events served from the stream to subscribers older than the ring",
    archive_failures: "Archive reads that failed (the subscriber's stream ended; it resumes later)",
}}

/// The shared feed's gauges and counters.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// 1 while this instance holds the producer's lease.
    pub leader: Gauge,
    /// 1 while the relay's connection to Redis is up.
    pub connected: Gauge,
    /// The newest id read from the stream.
    pub last_id_read: Gauge,
    pub counters: BrokerCounters,
}

impl BrokerStats {
    /// Registers every figure under `broker_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("broker");
        r.register(
            "leader",
            "1 while this instance produces the shared feed",
            self.leader.clone(),
        );
        r.register(
            "connected",
            "1 while the connection to Redis is up",
            self.connected.clone(),
        );
        r.register(
            "last_id_read",
            "Newest id read from the shared stream",
            self.last_id_read.clone(),
        );
        self.counters.register(r);
    }
}

/// The counters as `/stats` shows them.
pub type BrokerValues = BrokerCounterValues;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_figures_are_in_the_registry() {
        let b = BrokerStats::default();
        b.leader.set(1);
        b.counters.takeovers.inc();
        let mut registry = Registry::with_prefix("workbench");
        b.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(text.contains("workbench_broker_leader 1"), "{text}");
        assert!(
            text.contains("workbench_broker_takeovers_total 1"),
            "{text}"
        );
    }
}
