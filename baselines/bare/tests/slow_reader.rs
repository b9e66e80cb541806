//! Slow readers: one that stops is closed and counted (memory stays
//! bounded); one that pauses gets everything pending, in order, in batched
//! writes, with nothing lost.

mod support;

use std::time::Duration;

use rstest::rstest;
use server::feed::period_ns;
use support::{
    assert_on_grid, connect, start_bare, FeedClient, SseClient, Tick, Wire, WsClient, STEP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WS_UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

#[rstest]
#[case::sse(Wire::Sse)]
#[case::ws(Wire::Ws)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_is_closed_and_counted(#[case] wire: Wire) {
    // 16 MB/s of feed against a reader that never reads: the socket fills
    // at once, then the subscriber falls 256 events (a quarter second) behind.
    let bare = start_bare(|c| {
        c.rate = 1000.0;
        c.payload_bytes = 16 * 1024;
        c.queue = 256;
    })
    .await;
    let mut tcp = connect(bare.addr, Some(4096)).await;
    let request: &[u8] = match wire {
        Wire::Sse => b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n",
        Wire::Ws => WS_UPGRADE,
    };
    tcp.write_all(request).await.unwrap();
    let s = support::wait_stats(bare.addr, "the stalled subscriber closed", |s| {
        s["lagged_closed"] == 1 && s["sse_open"] == 0 && s["ws_open"] == 0
    })
    .await;
    assert_eq!(s["streams_total"], 1, "{s}");
    // The client then reads what the kernel held for it, and the end.
    let mut held = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
            .await
            .expect("the closed stream ends within the step")
            .unwrap();
        if n == 0 {
            break;
        }
        held += n;
    }
    // Socket buffers, not the feed: 10 s of it would be 160 MB.
    assert!(
        held < 16 << 20,
        "{held} bytes were buffered for a reader that stopped"
    );
    // The other subscribers never noticed.
    let mut client = FeedClient::open(wire, bare.addr, None).await;
    client.ticks(3).await;
    bare.shutdown().await.unwrap();
}

#[rstest]
#[case::sse(Wire::Sse)]
#[case::ws(Wire::Ws)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_reader_gets_everything_pending_in_batches(#[case] wire: Wire) {
    // 4 MB/s; a 2 s pause produces 8 MB, more than the socket buffers hold
    // (at most 4 MB to send here, the reader's 4 KiB to receive), so
    // thousands of events wait in the server; the queue spans 8 s.
    let bare = start_bare(|c| {
        c.rate = 1000.0;
        c.payload_bytes = 4 * 1024;
        c.queue = 8192;
    })
    .await;
    let tcp = connect(bare.addr, Some(4096)).await;
    let mut client = match wire {
        Wire::Sse => FeedClient::Sse(Box::new(
            SseClient::open_on(tcp, bare.addr, "/sse", &[]).await,
        )),
        Wire::Ws => FeedClient::Ws(Box::new(WsClient::open_on(tcp, bare.addr, "").await)),
    };
    let first = client.ticks(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = support::stats(bare.addr).await;
    let target = before["last_id"].as_u64().unwrap() + 50;
    let mut ticks = first;
    while ticks.last().unwrap().id < target {
        let json = client.next_json().await.expect("the stream stays open");
        ticks.extend(Tick::from_json(&json));
    }
    assert_on_grid(&ticks, period_ns(1000.0));
    let after = support::stats(bare.addr).await;
    assert_eq!(after["lagged_closed"], 0, "{after}");
    let batch = after["max_frames_per_write"].as_u64().unwrap();
    assert!(batch > 1, "pending events went out one write each: {after}");
    eprintln!(
        "{} events after a 2 s pause, {} write calls carried {} frames, at most {batch} in one",
        ticks.len(),
        after["writes"],
        after["frames_written"]
    );
    bare.shutdown().await.unwrap();
}
