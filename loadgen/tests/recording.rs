//! Connections record into batches handed to their thread's shard now and
//! then, not per event: nothing may be lost on the way. Against the real
//! server on port 0, over every wire, the test publishes the feed's events
//! itself (the server's own feed ticks once at start, then not for 1,000 s),
//! so it knows exactly what every connection was sent; the merged result
//! must hold every one of them, whether the connections end by draining to
//! the final id or are cancelled with events still in their batches. And
//! the live view must move while the run goes on.

mod support;

use std::sync::Arc;
use std::time::Duration;

use loadgen::client::Target;
use loadgen::run::{Live, Source, WireRun};
use loadgen::wire::Wire;
use rstest::rstest;
use server::event::{encode_tick, unix_now_ns};
use support::wire_spec;
use tokio_util::sync::CancellationToken;

/// Slow enough that the server's own feed publishes only its first tick.
const IDLE_RATE_HZ: f64 = 0.001;

fn start_server() -> server::RunningServer {
    let mut c = server::ServerConfig::ephemeral();
    c.rate = IDLE_RATE_HZ;
    c.workers = Some(2);
    c.shutdown_timeout = Duration::from_secs(3);
    server::run(c).expect("server starts")
}

/// Starts `connections` on `wire` and waits until all are open.
async fn open(
    server: &server::RunningServer,
    wire: Wire,
    connections: usize,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> WireRun {
    let target = Target::embedded(server.http_addr, server.https_addr, server.cert_path())
        .expect("a target for the embedded server");
    let source = Source::Feed(Arc::new(target));
    let mut run = WireRun::start(
        &source,
        wire_spec(wire, connections, Duration::ZERO, Duration::ZERO),
        live,
        cancel,
        0,
    )
    .expect("the run starts");
    assert_eq!(run.wait_connected().await, connections, "{wire}: all open");
    // A stream counts as open once its response arrived; give the server a
    // moment to subscribe the last ones before anything is published.
    tokio::time::sleep(Duration::from_millis(200)).await;
    run
}

/// Publishes the next `count` events, `every` apart; returns the last id.
async fn publish(server: &server::RunningServer, count: u64, every: Duration) -> u64 {
    let hub = server.hub();
    let first = hub.latest_id() + 1;
    for id in first..first + count {
        hub.publish(Arc::new(encode_tick(id, unix_now_ns(), 0)));
        tokio::time::sleep(every).await;
    }
    first + count - 1
}

/// Every event sent to every connection is in the merged result, once,
/// with its latency and its second of the per-second series.
fn assert_exact(wire: Wire, finished: &loadgen::run::Finished, expected: u64) {
    let r = loadgen::measure::Recorder::from_snapshot(&finished.recorder).expect("decodes");
    let c = r.counters();
    assert_eq!(c.events, expected, "{wire}: every event recorded");
    assert_eq!((c.lost, c.duplicates, c.no_id), (0, 0, 0), "{wire}: {c:?}");
    assert_eq!(
        r.latency_us().len(),
        expected,
        "{wire}: a latency per event"
    );
    assert_eq!(
        r.events_per_second().iter().sum::<u64>(),
        expected,
        "{wire}: every event in the per-second series"
    );
    assert!(c.errors.is_empty(), "{wire}: {:?}", c.errors);
}

#[rstest]
#[case::sse_h1(Wire::SseH1)]
#[case::sse_h2(Wire::SseH2)]
#[case::sse_h2c(Wire::SseH2c)]
#[case::ws_h1(Wire::WsH1)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_and_cancelled_connections_lose_no_recorded_event(#[case] wire: Wire) {
    let server = start_server();
    let n = 12;

    // Drained: bursts 1 ms apart (batches fill and wait) and pauses of
    // 150 ms (batches handed over at the next event), up to a final id.
    let run = open(
        &server,
        wire,
        n,
        Arc::new(Live::default()),
        CancellationToken::new(),
    )
    .await;
    let mut sent = 0;
    let mut last = 0;
    for burst in [1, 23, 5, 40] {
        last = publish(&server, burst, Duration::from_millis(1)).await;
        sent += burst;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let finished = run.finish(last).await;
    assert!(
        finished.problems.is_empty(),
        "{wire}: {:?}",
        finished.problems
    );
    assert_eq!(finished.missing_at_end, 0, "{wire}: all reached id {last}");
    assert_exact(wire, &finished, sent * n as u64);

    // Cancelled: a short burst after a pause leaves most of it in the
    // connections' batches (the first event goes at once, the rest wait
    // for the next event, which never comes); the stop hands them over.
    let live = Arc::new(Live::default());
    let cancel = CancellationToken::new();
    let run = open(&server, wire, n, live.clone(), cancel.clone()).await;
    let burst = 7;
    publish(&server, burst, Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = live.snapshot().events;
    assert!(
        shown < burst * n as u64,
        "{wire}: the live view showed {shown}: nothing was left in a batch, so the test tests nothing"
    );
    cancel.cancel();
    let finished = run.finish(0).await;
    assert_exact(wire, &finished, burst * n as u64);
    server.shutdown().await.expect("the server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_advances_while_events_arrive() {
    let server = start_server();
    let n = 10;
    let live = Arc::new(Live::default());
    let run = open(
        &server,
        Wire::SseH1,
        n,
        live.clone(),
        CancellationToken::new(),
    )
    .await;
    // 60 events 20 ms apart (50 per second per connection, the batches
    // handed over by age), the view read every 5 events.
    let (count, every) = (60u64, Duration::from_millis(20));
    let mut seen = Vec::new();
    let mut last = 0;
    for _ in 0..count / 5 {
        last = publish(&server, 5, every).await;
        seen.push(live.snapshot().events);
    }
    let moves = seen.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        seen.windows(2).all(|w| w[1] >= w[0]),
        "never backwards: {seen:?}"
    );
    assert!(moves >= 3, "the view moved while events arrived: {seen:?}");
    let total = count * n as u64;
    assert!(
        seen.last().is_some_and(|&s| s >= total / 2),
        "the view lags by well under half of a 1.2 s run: {seen:?} of {total}"
    );
    let finished = run.finish(last).await;
    assert_exact(Wire::SseH1, &finished, total);
    server.shutdown().await.expect("the server stops");
}

/// Connection tasks run on the load generator's own per-core runtimes,
/// which outlive any one caller: a run dropped before its finish (an error
/// in the driver, a cancelled caller) must still stop its connections,
/// or they would hold their streams (and reconnect) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_run_closes_its_connections() {
    let server = start_server();
    for wire in [Wire::SseH1, Wire::SseH2c, Wire::WsH1] {
        let run = open(
            &server,
            wire,
            20,
            Arc::new(Live::default()),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(server.hub().open_streams(), 20, "{wire}: 20 streams open");
        drop(run);
        // The feed is idle: the server finds a closed socket when it next
        // writes to it, so events are published while waiting.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            while server.hub().open_streams() > 0 {
                publish(&server, 1, Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{wire}: {} streams still open 10 s after the run was dropped",
            server.hub().open_streams()
        );
        // Still closed a moment later: nothing reconnected.
        publish(&server, 10, Duration::from_millis(30)).await;
        assert_eq!(
            server.hub().open_streams(),
            0,
            "{wire}: a connection came back"
        );
    }
}
