//! The server's event counters, named once.
//!
//! One table ([`counters!`]) makes the struct the handlers increment, the
//! values `/stats` shows (same names as the fields) and the Prometheus
//! registration `/metrics` encodes (`workbench_<name>_total`, with the help
//! text beside the name here). Adding a counter is one line.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// Makes a counters struct, its values struct (same field names) and the
/// registration of every counter under its name and help text. Used here
/// for the server's counters and in `broker` for the shared feed's.
macro_rules! counters {
    ($(#[$doc:meta])* $counters:ident / $values:ident { $($name:ident: $help:literal,)* }) => {
        $(#[$doc])*
        ///
        /// Each is a prometheus-client counter, so `/metrics` encodes the
        /// very atomics that `/stats` reads.
        #[derive(Debug, Default)]
        pub struct $counters {
            $(#[doc = $help] pub $name: Counter,)*
        }

        /// Every counter's value at one moment, as `/stats` shows them.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct $values {
            $(#[doc = $help] pub $name: u64,)*
        }

        impl $counters {
            /// Registers every counter under its own name and help text.
            pub fn register(&self, registry: &mut Registry) {
                $(registry.register(stringify!($name), $help, self.$name.clone());)*
            }

            pub fn values(&self) -> $values {
                $values { $($name: self.$name.get(),)* }
            }
        }
    };
}
pub(crate) use counters;

counters! {
    /// Server-wide counters.
    Counters / CounterValues {
    resumes: "Streams that asked to resume",
    gaps: "Gap events sent",
    gap_ids: "Ids announced lost by gap events",
    malformed_resumes: "Resume ids that were not numbers",
    future_resumes: "Resume ids newer than the feed",
    refused: "Streams refused with 503 (max connections)",
    lagged: "Times a subscriber fell behind the fan-out buffer",
    slow_gaps: "Slow subscribers that fell behind the replay ring and got a gap",
    slow_disconnects: "WebSockets closed because they accepted nothing for the client timeout",
    ws_protocol_errors: "WebSockets closed for a protocol error",
    ws_oversized: "WebSockets closed with 1009: a frame or message declared more than --ws-max-frame",
    ws_timeouts: "WebSockets closed because pongs stopped",
    admin_drops: "Drop-all requests",
    chaos_drops: "Drops of a fraction of the streams",
    restarts: "Simulated listener restarts",
    restart_refusals: "Requests refused with 503 during a simulated restart",
    echo_replies: "Echo replies sent",
    echo_rejected: "POST /echo for an unknown client or a full queue",
    chat_answers: "Chat answers completed",
    bad_requests: "Requests answered 400 because a number or body was out of range or malformed",
}}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_metrics_use_the_same_names() {
        let c = Counters::default();
        c.gap_ids.inc_by(3);
        let json = serde_json::to_value(c.values()).expect("serializes");
        assert_eq!(json["gap_ids"], 3);
        let mut registry = Registry::with_prefix("workbench");
        c.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(text.contains("workbench_gap_ids_total 3"), "{text}");
        assert!(text.contains("# HELP workbench_refused Streams refused with 503"));
    }
}
