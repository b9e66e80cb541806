//! Faults on purpose: dropping a fraction of the streams, the chaos timer,
//! and the simulated listener restart.

mod support;

use std::time::{Duration, Instant};

use support::{start, Feed, Wire};

#[tokio::test]
async fn admin_drop_with_a_fraction_closes_that_share_of_the_streams() {
    let server = start(|_| {});
    let n = server::hub::DROP_BUCKETS * 2;
    let mut feeds = Vec::new();
    for i in 0..n {
        let wire = if i % 2 == 0 { Wire::WsH1 } else { Wire::SseH1 };
        let mut f = Feed::open(&server, wire, None).await;
        f.hello().await;
        feeds.push(f);
    }
    let (status, body) = support::post(&server, "/admin/drop?fraction=0.5").await;
    assert_eq!(status, 200);
    assert_eq!(body["buckets_dropped"], server::hub::DROP_BUCKETS / 2);
    assert_eq!(body["open"], n);
    // Streams are dealt round-robin into the buckets: exactly half close.
    support::wait_stats(&server, "half the streams closed", |s| {
        s["connections_open_total"] == n / 2
    })
    .await;
    let s = support::stats(&server).await;
    assert_eq!(s["chaos_drops"], 1);
    let (status, _) = support::post(&server, "/admin/drop?fraction=2").await;
    assert_eq!(status, 400);
    drop(feeds);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_chaos_timer_drops_streams_and_they_resume() {
    let server = start(|c| {
        c.chaos_drop_fraction = 1.0;
        c.chaos_every = Duration::from_millis(300);
    });
    for wire in Wire::ALL {
        let mut feed = Feed::open(&server, wire, None).await;
        feed.hello().await;
        let mut last = 0;
        // The stream ends by itself within a few chaos periods.
        while let Some(m) = feed.next().await {
            if let support::Msg::Tick { id, .. } = m {
                last = id;
            }
        }
        assert!(last > 0, "{wire:?} got ticks before the drop");
        let mut again = Feed::open(&server, wire, Some(&last.to_string())).await;
        assert_eq!(again.hello().await["resume"], "replay");
        match again.next_data().await.unwrap() {
            support::Msg::Tick { id, .. } => assert_eq!(id, last + 1, "{wire:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        support::stats(&server).await["chaos_drops"]
            .as_u64()
            .unwrap()
            >= 4
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_closes_streams_and_refuses_new_ones_for_a_while() {
    let server = start(|_| {});
    let mut feed = Feed::open(&server, Wire::SseH1, None).await;
    feed.hello().await;
    let (status, body) = support::post(&server, "/admin/restart?pause_ms=600").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dropped"], 1);
    while feed.next().await.is_some() {}
    for wire in [Wire::SseH1, Wire::SseH2, Wire::SseH2c] {
        let res = support::get(&server, wire, "/sse", &[]).await;
        assert_eq!(res.status, 503, "{wire:?}");
        assert_eq!(res.headers["retry-after"], "1");
    }
    // The page, stats and admin routes still answer.
    assert!(
        support::stats(&server).await["restart_refusals"]
            .as_u64()
            .unwrap()
            >= 3
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut back = Feed::open(&server, Wire::WsH1, None).await;
    back.hello().await;
    assert_eq!(support::stats(&server).await["restarts"], 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_paused_listener_serves_new_connections_only_when_it_resumes() {
    let server = start(|_| {});
    let (status, body) = support::post(&server, "/admin/restart?pause_ms=400&mode=pause").await;
    assert_eq!(status, 200, "{body}");
    let t0 = Instant::now();
    let mut feed = Feed::open(&server, Wire::SseH1, None).await;
    feed.hello().await;
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    let (status, _) = support::post(&server, "/admin/restart?mode=sideways").await;
    assert_eq!(status, 400);
    server.shutdown().await.unwrap();
}
