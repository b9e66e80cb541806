//! The real binary gives back what a load made it allocate: after 2,000
//! connections (sse-h1 and ws-h1) close, its RSS is back within 20 % of
//! idle within 10 s, and `/stats` shows the trims that did it.

mod support;

use std::time::{Duration, Instant};

use support::{ChildServer, Feed, Wire};

/// Connections opened per wire: enough to grow the heap by tens of MiB.
const PER_WIRE: usize = 1000;
/// The bound of the issue: back near idle within 10 s of the last close.
const SETTLE: Duration = Duration::from_secs(10);

fn rss(stats: &serde_json::Value) -> u64 {
    stats["process"]["rss_bytes"]
        .as_u64()
        .expect("rss in /stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_comes_back_near_idle_after_the_connections_close() {
    server::nofile::raise_open_files_limit();
    let server = ChildServer::spawn(&["--rate", "20"], None);
    // Let the first ticks fill what idle holds (ring, buffers) before
    // reading the idle figure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.stats().await;
    let trims_before = idle["process"]["allocator"]["trims"]
        .as_u64()
        .expect("the allocator's trims in /stats");

    let mut feeds = Vec::with_capacity(2 * PER_WIRE);
    for wire in [Wire::SseH1, Wire::WsH1] {
        for _ in 0..PER_WIRE {
            feeds.push(Feed::open_at(server.http_addr, wire, None).await);
        }
    }
    for feed in feeds.iter_mut().step_by(97) {
        assert!(feed.next_data().await.is_some(), "the feed flows");
    }
    let held = server.stats().await;
    assert_eq!(
        held["connections_open_total"].as_u64(),
        Some(2 * PER_WIRE as u64)
    );
    assert!(
        rss(&held) > rss(&idle) + (10 << 20),
        "the load was too small to show anything: idle {} held {}",
        rss(&idle),
        rss(&held)
    );

    drop(feeds);
    let closed_at = Instant::now();
    let after = loop {
        let s = server.stats().await;
        let back = s["connections_open_total"].as_u64() == Some(0)
            && rss(&s) as f64 <= rss(&idle) as f64 * 1.2;
        if back || closed_at.elapsed() > SETTLE {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "RSS idle {} KiB, held {} KiB, {:.1} s after the last close {} KiB; allocator {}",
        rss(&idle) >> 10,
        rss(&held) >> 10,
        closed_at.elapsed().as_secs_f64(),
        rss(&after) >> 10,
        after["process"]["allocator"]
    );
    assert_eq!(after["connections_open_total"].as_u64(), Some(0));
    assert!(
        rss(&after) as f64 <= rss(&idle) as f64 * 1.2,
        "RSS not back within 20 % of idle within {SETTLE:?}"
    );
    assert!(
        after["process"]["allocator"]["trims"].as_u64() > Some(trims_before),
        "no trim ran"
    );
}
